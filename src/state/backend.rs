//! One storage interface over the two backends: the state directory
//! (`file:PATH`, the default) and the PostgreSQL state (`postgres://…`).
//!
//! [`StateUrl`] says which; [`Backend`] opens it; [`PipelineState`] reads a
//! pipeline's history without a lock; [`EnvStore`] is one env under its
//! lock, for a run; [`Recording`] is a running release, the executor's
//! recorder. Each is an enum with one variant per backend: the commands
//! call them and never ask which backend answers. Both store the same
//! lines (a release's header and event lines are the release log's), so a
//! new event kind or status needs no backend-specific code.

use std::path::{Path, PathBuf};

use super::dir::{History, PipelineDir, StateDir};
use super::error::StateError;
use super::journal::Journal;
use super::live::Live;
use super::lock::{Holder, Wait};
use super::postgres::{self, PgHistory, PgJournal, PgPipeline, PgStore, Shared};
use super::query::ReleaseSummary;
use super::recovery::Recovered;
use super::release::{Release, ReleaseMeta};
use super::store::{Reap, Store};
use super::{Clock, ReleaseId};
use crate::engine::{Event, Plan, RecordError, Recorder, Syncer};

/// Where the state is: `file:PATH` or `postgres://…` (`postgresql://…`).
#[derive(Clone, PartialEq, Eq)]
pub enum StateUrl {
    /// A state directory.
    File(PathBuf),
    /// A PostgreSQL database, by its URL.
    Postgres(String),
}

impl std::fmt::Debug for StateUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "File({})", path.display()),
            Self::Postgres(url) => write!(f, "Postgres({})", postgres::redact(url)),
        }
    }
}

impl std::str::FromStr for StateUrl {
    type Err = String;

    /// `file:PATH` (also `file://PATH`), `postgres://…` or `postgresql://…`;
    /// anything else is refused, naming what is accepted (a password in the
    /// text is never repeated).
    fn from_str(text: &str) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix("file:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err("`file:` needs the state directory's path: `file:PATH`".to_owned());
            }
            return Ok(Self::File(PathBuf::from(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Self::Postgres(text.to_owned()));
        }
        let shown = postgres::redact(text);
        Err(match text.split_once(':') {
            Some((scheme, _)) if !scheme.is_empty() && !scheme.contains('/') => format!(
                "unsupported state URL `{shown}`: the scheme `{scheme}` is not one stagecraft keeps state in; use `file:PATH` or `postgres://USER@HOST/DB`"
            ),
            _ => format!("invalid state URL `{shown}`: use `file:PATH` or `postgres://USER@HOST/DB`"),
        })
    }
}

/// An open state, to read pipelines' histories or to open an env for a run.
#[derive(Debug)]
pub enum Backend {
    /// A state directory.
    File(StateDir),
    /// The PostgreSQL state: one connection (migrated), and the local state
    /// directory where this machine keeps its runs' output.
    Postgres {
        /// The connection.
        db: Shared,
        /// The local directory.
        local: PathBuf,
    },
}

impl Backend {
    /// Opens the state at `url`. For PostgreSQL this connects and brings the
    /// schema to this stagecraft's version; `local` is the directory where
    /// the output of runs on this machine goes (the default state directory
    /// beside the pipeline file).
    pub fn open(url: &StateUrl, local: &Path) -> Result<Self, StateError> {
        Ok(match url {
            StateUrl::File(path) => Self::File(StateDir::new(path)),
            StateUrl::Postgres(url) => Self::Postgres {
                db: postgres::open(url)?,
                local: local.to_owned(),
            },
        })
    }

    /// What the state is, for messages: the directory's path or
    /// `host:port/dbname`.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::File(dir) => dir.path().display().to_string(),
            Self::Postgres { db, .. } => postgres::lock(db).target().to_owned(),
        }
    }

    /// The state of pipeline `name`.
    #[must_use]
    pub fn pipeline(&self, name: &str) -> PipelineState {
        match self {
            Self::File(dir) => PipelineState::File(dir.pipeline(name)),
            Self::Postgres { db, local } => PipelineState::Postgres(PgPipeline::new(db.clone(), name, local.clone())),
        }
    }

    /// The names of the pipelines with a history here, sorted.
    pub fn pipelines(&self) -> Result<Vec<String>, StateError> {
        match self {
            Self::File(dir) => dir.pipelines(),
            Self::Postgres { db, .. } => postgres::pipelines(db),
        }
    }

    /// Locks env `env` of pipeline `pipeline` for a run (waiting as `wait`
    /// says) and recovers its release whose run died (see `Store::open_with`).
    pub fn open_env(
        &self,
        pipeline: &str,
        env: &str,
        opening: &Opening<'_>,
    ) -> Result<(EnvStore, Vec<Recovered>), StateError> {
        let Opening {
            holder,
            wait,
            clock,
            reap,
        } = opening;
        match self {
            Self::File(dir) => {
                let (store, recovered) = Store::open_with(dir.path(), pipeline, env, holder, *wait, *clock, reap)?;
                Ok((EnvStore::File(store), recovered))
            }
            Self::Postgres { db, local } => {
                let reader = PgPipeline::new(db.clone(), pipeline, local.clone());
                let (store, recovered) = PgStore::open(reader, env, holder, *wait, *clock, reap)?;
                Ok((EnvStore::Postgres(store), recovered))
            }
        }
    }
}

/// How [`Backend::open_env`] takes the lock and recovers.
#[derive(Debug)]
pub struct Opening<'a> {
    /// Who takes the lock.
    pub holder: &'a Holder,
    /// How long to wait for it.
    pub wait: Wait,
    /// The clock.
    pub clock: Clock,
    /// How a dead run's commands are stopped.
    pub reap: &'a Reap<'a>,
}

/// One pipeline's history, read without a lock, in either backend.
#[derive(Clone, Debug)]
pub enum PipelineState {
    /// In a state directory.
    File(PipelineDir),
    /// In the PostgreSQL state.
    Postgres(PgPipeline),
}

impl PipelineState {
    /// The pipeline's name.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::File(dir) => dir.name(),
            Self::Postgres(pg) => pg.name(),
        }
    }

    /// The envs with releases, sorted.
    pub fn envs(&self) -> Result<Vec<String>, StateError> {
        match self {
            Self::File(dir) => dir.envs(),
            Self::Postgres(pg) => pg.envs(),
        }
    }

    /// `env`'s releases, newest first, read lazily.
    #[must_use]
    pub fn history(&self, env: &str) -> EnvHistory {
        match self {
            Self::File(dir) => EnvHistory::File(dir.history(env)),
            Self::Postgres(pg) => EnvHistory::Postgres(pg.history(env)),
        }
    }

    /// The newest `limit` releases (all with `None`), newest first, of `env`
    /// or of every env.
    pub fn releases(&self, env: Option<&str>, limit: Option<usize>) -> Result<Vec<ReleaseSummary>, StateError> {
        match self {
            Self::File(dir) => dir.releases(env, limit),
            Self::Postgres(pg) => pg.releases(env, limit),
        }
    }

    /// What is live in `env` now.
    pub fn live(&self, env: &str) -> Result<Live, StateError> {
        match self {
            Self::File(dir) => dir.live(env),
            Self::Postgres(pg) => pg.live(env),
        }
    }

    /// `env`'s current release.
    pub fn current(&self, env: &str) -> Result<Option<ReleaseSummary>, StateError> {
        match self {
            Self::File(dir) => dir.current(env),
            Self::Postgres(pg) => pg.current(env),
        }
    }

    /// Release `id` in full.
    pub fn release(&self, id: &str) -> Result<Release, StateError> {
        match self {
            Self::File(dir) => dir.release(id),
            Self::Postgres(pg) => pg.release(id),
        }
    }

    /// Where the executor keeps the output of release `id`'s instances.
    #[must_use]
    pub fn output_dir(&self, id: ReleaseId) -> PathBuf {
        match self {
            Self::File(dir) => dir.output_dir(id),
            Self::Postgres(pg) => pg.output_dir(id),
        }
    }
}

/// An env's releases, newest first, in either backend.
#[derive(Debug)]
pub enum EnvHistory {
    /// From a state directory.
    File(History),
    /// From the PostgreSQL state.
    Postgres(PgHistory),
}

impl Iterator for EnvHistory {
    type Item = Result<ReleaseSummary, StateError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::File(history) => history.next(),
            Self::Postgres(history) => history.next(),
        }
    }
}

/// One env under its lock, for a run, in either backend.
#[derive(Debug)]
pub enum EnvStore {
    /// In a state directory.
    File(Store),
    /// In the PostgreSQL state.
    Postgres(PgStore),
}

impl EnvStore {
    /// What is live in the env now.
    #[must_use]
    pub fn live(&self) -> &Live {
        match self {
            Self::File(store) => store.live(),
            Self::Postgres(store) => store.live(),
        }
    }

    /// The pipeline's history, to read.
    #[must_use]
    pub fn reader(&self) -> PipelineState {
        match self {
            Self::File(store) => PipelineState::File(store.dir().clone()),
            Self::Postgres(store) => PipelineState::Postgres(store.reader().clone()),
        }
    }

    /// Where the env's runs on this machine write long commands' scripts.
    #[must_use]
    pub fn script_dir(&self) -> PathBuf {
        match self {
            Self::File(store) => store.script_dir(),
            Self::Postgres(store) => store.script_dir(),
        }
    }

    /// Starts a release with the next id, planned by `plan_for` (see
    /// `Store::begin_with`).
    pub fn begin_with<E: From<StateError>>(
        &mut self,
        meta: &ReleaseMeta,
        plan_for: impl FnMut(ReleaseId) -> Result<Plan, E>,
    ) -> Result<(Recording<'_>, Plan), E> {
        match self {
            Self::File(store) => {
                let (journal, plan) = store.begin_with(meta, plan_for)?;
                Ok((Recording::File(journal), plan))
            }
            Self::Postgres(store) => {
                let (journal, plan) = store.begin_with(meta, plan_for)?;
                Ok((Recording::Postgres(journal), plan))
            }
        }
    }
}

/// A running release, in either backend: the executor's recorder.
#[derive(Debug)]
pub enum Recording<'s> {
    /// A release log in a state directory.
    File(Journal<'s>),
    /// A release in the PostgreSQL state.
    Postgres(PgJournal<'s>),
}

impl Recording<'_> {
    /// The release as recorded so far.
    #[must_use]
    pub fn release(&self) -> &Release {
        match self {
            Self::File(journal) => journal.release(),
            Self::Postgres(journal) => journal.release(),
        }
    }

    /// Applies events that happened together and makes them durable.
    pub fn append(&mut self, events: &[Event]) -> Result<(), StateError> {
        match self {
            Self::File(journal) => journal.append(events),
            Self::Postgres(journal) => journal.append(events),
        }
    }

    /// Finishes the release.
    pub fn finish(self) -> Result<Release, StateError> {
        match self {
            Self::File(journal) => journal.finish(),
            Self::Postgres(journal) => journal.finish(),
        }
    }

    /// Ends an interrupted run (Ctrl-C).
    pub fn interrupt(self) -> Result<(Release, Recovered), StateError> {
        match self {
            Self::File(journal) => journal.interrupt(),
            Self::Postgres(journal) => journal.interrupt(),
        }
    }

    /// Ends a run whose recording failed, once its storage answers again
    /// (trying for up to `patience`): writes what was held back and records
    /// the release interrupted.
    pub fn salvage(self, patience: std::time::Duration) -> Result<(Release, Recovered), StateError> {
        match self {
            Self::File(journal) => journal.salvage(patience),
            Self::Postgres(journal) => journal.salvage(patience),
        }
    }
}

impl Recorder for Recording<'_> {
    fn record(&mut self, events: &[Event]) -> Result<(), RecordError> {
        match self {
            Self::File(journal) => journal.record(events),
            Self::Postgres(journal) => journal.record(events),
        }
    }

    fn syncer(&mut self) -> Result<Option<Box<dyn Syncer>>, RecordError> {
        match self {
            Self::File(journal) => Recorder::syncer(journal),
            Self::Postgres(journal) => Recorder::syncer(journal),
        }
    }

    fn keep(&mut self, events: &[Event]) {
        match self {
            Self::File(journal) => journal.keep(events),
            Self::Postgres(journal) => journal.keep(events),
        }
    }
}
