//! The state directory's layout, and reading it without a lock.
//!
//! ```text
//! <state>/
//!   pipelines/<pipeline>/
//!     releases/<id>.ron          one release log per run (every env's)
//!     logs/<id>/…                the executor's per-instance output
//!     envs/<env>/
//!       lock                     the env's lock (empty; never removed)
//!       holder.ron               who holds, or last held, it
//!       index.ron                the env's releases: started, finished
//!   index.ron, releases/, logs/  format version 2 state (read-only)
//! ```
//!
//! Readers ([`StateDir`], [`PipelineDir`]) never lock and never write:
//! they open files to read only, so they work on a read-only directory and
//! never make a writer wait or fail. A release whose run is still going
//! (or died, and no writer of its env came since) reads as `running`.
//! A finished release whose log is missing or ends before its finish line
//! is [`StateError::Damaged`], never served as `running` or unknown.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::backward::IndexHistory;
use super::error::{Damage, StateError};
use super::id::ReleaseId;
use super::journal::read_log;
use super::legacy;
use super::live::Live;
use super::query::ReleaseSummary;
use super::release::Release;

/// A state directory, for reading without a lock. A directory that does
/// not exist has no releases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    /// The state directory at `path` (usually `.stagecraft` beside the
    /// pipeline file).
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Its path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state of pipeline `name` in it.
    #[must_use]
    pub fn pipeline(&self, name: &str) -> PipelineDir {
        PipelineDir {
            root: self.path.clone(),
            name: name.to_owned(),
            dir: self.path.join("pipelines").join(name),
        }
    }

    /// The names of the pipelines with a history here (a directory under
    /// `pipelines/`, or releases in a format version 2 index), sorted.
    ///
    /// # Errors
    ///
    /// A directory or the legacy index cannot be read.
    pub fn pipelines(&self) -> Result<Vec<String>, StateError> {
        let mut names = legacy::pipelines(&self.path)?;
        let dir = self.path.join("pipelines");
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(StateError::io("read", &dir))?;
                    if entry.path().is_dir() {
                        names.insert(entry.file_name().to_string_lossy().into_owned());
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StateError::io("read", &dir)(e)),
        }
        Ok(names.into_iter().collect())
    }
}

/// One pipeline's state in a state directory: its releases in every env
/// (and those a format version 2 directory recorded for it), read without
/// a lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineDir {
    root: PathBuf,
    name: String,
    dir: PathBuf,
}

impl PipelineDir {
    /// The pipeline's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The state directory it is in.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `pipelines/<pipeline>`.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The directory of `env`'s lock and index.
    #[must_use]
    pub fn env_dir(&self, env: &str) -> PathBuf {
        self.dir.join("envs").join(env)
    }

    /// `env`'s index.
    #[must_use]
    pub fn index_path(&self, env: &str) -> PathBuf {
        self.env_dir(env).join("index.ron")
    }

    /// Where release `id`'s log is written.
    #[must_use]
    pub fn log_path(&self, id: ReleaseId) -> PathBuf {
        self.dir.join("releases").join(format!("{id}.ron"))
    }

    /// Where the executor keeps the output of release `id`'s instances (for
    /// a release recorded in format version 2, where it kept it then).
    #[must_use]
    pub fn output_dir(&self, id: ReleaseId) -> PathBuf {
        if !self.log_path(id).exists() && legacy::log_path(&self.root, id).exists() {
            return legacy::output_dir(&self.root, id);
        }
        self.dir.join("logs").join(id.to_string())
    }

    /// Whether release `id` has a log, here or in the legacy layout: its id
    /// is taken.
    pub(crate) fn id_taken(&self, id: ReleaseId) -> bool {
        self.log_path(id).exists() || legacy::log_path(&self.root, id).exists()
    }

    /// The envs with releases, sorted.
    ///
    /// # Errors
    ///
    /// A directory or the legacy index cannot be read.
    pub fn envs(&self) -> Result<Vec<String>, StateError> {
        let mut envs: BTreeSet<String> = legacy::envs(&self.root, &self.name)?.into_iter().collect();
        let dir = self.dir.join("envs");
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(StateError::io("read", &dir))?;
                    if entry.path().join("index.ron").exists() {
                        envs.extend(entry.file_name().to_str().map(str::to_owned));
                    }
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(StateError::io("read", &dir)(error)),
        }
        Ok(envs.into_iter().collect())
    }

    /// `env`'s releases, newest first, read lazily from the end of its
    /// index (then its legacy releases): taking the newest few costs the
    /// same whatever the history holds.
    ///
    /// # Errors
    ///
    /// Each item: a file cannot be read or is corrupt (nothing follows an
    /// error).
    pub fn history(&self, env: &str) -> History {
        History {
            dir: self.clone(),
            env: env.to_owned(),
            state: match IndexHistory::open(&self.index_path(env)) {
                Ok(index) => Stage::Index(Box::new(index)),
                Err(error) => Stage::Failed(Some(error)),
            },
        }
    }

    /// The newest `limit` releases (all with `None`), newest first, of
    /// `env`, or of every env merged by id.
    ///
    /// # Errors
    ///
    /// A file cannot be read or is corrupt.
    pub fn releases(&self, env: Option<&str>, limit: Option<usize>) -> Result<Vec<ReleaseSummary>, StateError> {
        let limit = limit.unwrap_or(usize::MAX);
        if let Some(env) = env {
            return self.history(env).take(limit).collect();
        }
        let mut histories: Vec<std::iter::Peekable<History>> =
            self.envs()?.iter().map(|env| self.history(env).peekable()).collect();
        let mut list = Vec::new();
        while list.len() < limit {
            // The history whose next release is the newest (errors first).
            let mut best: Option<(usize, Option<ReleaseId>)> = None;
            for (position, history) in histories.iter_mut().enumerate() {
                let key = match history.peek() {
                    None => continue,
                    Some(Err(_)) => None,
                    Some(Ok(summary)) => Some(summary.id),
                };
                let better = match (best, key) {
                    (None, _) | (Some((_, Some(_))), None) => true,
                    (Some((_, None)), _) => false,
                    (Some((_, Some(newest))), Some(id)) => id > newest,
                };
                if better {
                    best = Some((position, key));
                }
            }
            let Some((position, _)) = best else { break };
            if let Some(next) = histories[position].next() {
                list.push(next?);
            }
        }
        Ok(list)
    }

    /// What is live in `env` now: the state right after its newest finished
    /// deploy or rollback (empty if it has none).
    ///
    /// # Errors
    ///
    /// A file cannot be read or is corrupt.
    pub fn live(&self, env: &str) -> Result<Live, StateError> {
        for summary in self.history(env) {
            if let Some(live) = summary?.live {
                return Ok(live);
            }
        }
        Ok(Live::default())
    }

    /// `env`'s current release: its newest deploy or rollback, whatever its
    /// status.
    ///
    /// # Errors
    ///
    /// A file cannot be read or is corrupt.
    pub fn current(&self, env: &str) -> Result<Option<ReleaseSummary>, StateError> {
        for summary in self.history(env) {
            let summary = summary?;
            if summary.is_deployment() {
                return Ok(Some(summary));
            }
        }
        Ok(None)
    }

    /// Release `id` in full, from its log.
    ///
    /// The log is checked against the env's index when it does not show
    /// the release finished: a release the index says finished whose log
    /// ends before its finish line, or one the index lists whose log is
    /// missing, is [`StateError::Damaged`], never served as `running` or
    /// unknown. A log that shows its finish line is not compared with the
    /// index (that would read the index back to it).
    ///
    /// # Errors
    ///
    /// [`StateError::UnknownRelease`] if the pipeline has no such release;
    /// [`StateError::Damaged`]; the log cannot be read or is corrupt.
    pub fn release(&self, id: &str) -> Result<Release, StateError> {
        let unknown = || StateError::UnknownRelease { id: id.to_owned() };
        let parsed: ReleaseId = id.parse().map_err(|_| unknown())?;
        let path = self.log_path(parsed);
        if path.exists() {
            return self.checked_release(parsed, &path);
        }
        let legacy_path = legacy::log_path(&self.root, parsed);
        if legacy_path.exists() {
            let release = read_log(&legacy_path)?.release;
            if release.pipeline == self.name {
                return Ok(release);
            }
        }
        // An index that lists it vouches for a log (created before its
        // `Started` line: look again, in case a run was creating it).
        if self.indexed(parsed, None)?.is_some() && !path.exists() {
            return Err(damaged(path, parsed, Damage::Missing));
        }
        if path.exists() {
            return self.checked_release(parsed, &path);
        }
        Err(unknown())
    }

    /// Release `id` from its log at `path`; if the log does not show it
    /// finished, a release its index says finished is damaged.
    fn checked_release(&self, id: ReleaseId, path: &Path) -> Result<Release, StateError> {
        let release = read_log(path)?.release;
        if release.is_finished() {
            return Ok(release);
        }
        let Some(summary) = self.indexed(id, Some(&release.env))? else {
            return Ok(release);
        };
        if summary.finished_at.is_none() {
            // Running (or its run died): a torn last line is a writer
            // mid-write, not damage.
            return Ok(release);
        }
        // A run writes the log's finish line before the index's: read the
        // log again, in case it finished between the two reads.
        let again = read_log(path)?.release;
        if again.is_finished() {
            return Ok(again);
        }
        Err(damaged(path.to_owned(), id, Damage::EndsEarly(summary.status)))
    }

    /// Release `id` as the index of `env` (of any env with `None`) lists
    /// it, reading each index back only as far as `id`.
    fn indexed(&self, id: ReleaseId, env: Option<&str>) -> Result<Option<ReleaseSummary>, StateError> {
        let envs = match env {
            Some(env) => vec![env.to_owned()],
            None => self.envs()?,
        };
        for env in envs {
            for summary in IndexHistory::open(&self.index_path(&env))? {
                let summary = summary?;
                if summary.id == id {
                    return Ok(Some(summary));
                }
                if summary.id < id {
                    break;
                }
            }
        }
        Ok(None)
    }
}

fn damaged(path: PathBuf, id: ReleaseId, damage: Damage) -> StateError {
    StateError::Damaged { path, id, damage }
}

/// An env's releases, newest first: see [`PipelineDir::history`].
#[derive(Debug)]
pub struct History {
    dir: PipelineDir,
    env: String,
    state: Stage,
}

#[derive(Debug)]
enum Stage {
    Index(Box<IndexHistory>),
    Legacy(std::vec::IntoIter<ReleaseSummary>),
    Failed(Option<StateError>),
}

impl Iterator for History {
    type Item = Result<ReleaseSummary, StateError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match &mut self.state {
                Stage::Index(index) => match index.next() {
                    Some(Ok(mut summary)) => {
                        if summary.finished_at.is_none() {
                            // Running, or its run died: its log says how far
                            // it got.
                            let path = self.dir.log_path(summary.id);
                            match read_log(&path) {
                                Ok(log) => summary.status = log.release.status(),
                                Err(StateError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                                    self.state = Stage::Failed(Some(damaged(path, summary.id, Damage::Missing)));
                                }
                                Err(error) => self.state = Stage::Failed(Some(error)),
                            }
                            if matches!(self.state, Stage::Failed(_)) {
                                continue;
                            }
                        }
                        return Some(Ok(summary));
                    }
                    Some(Err(error)) => self.state = Stage::Failed(Some(error)),
                    None => {
                        self.state = match legacy::history(&self.dir.root, &self.dir.name, &self.env) {
                            Ok(list) => Stage::Legacy(list.into_iter()),
                            Err(error) => Stage::Failed(Some(error)),
                        }
                    }
                },
                Stage::Legacy(list) => return list.next().map(Ok),
                Stage::Failed(error) => return error.take().map(Err),
            }
        }
    }
}
