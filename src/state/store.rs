//! The state directory: reading it ([`StateDir`]) and, under its lock,
//! writing it ([`Store`]).
//!
//! ```text
//! .stagecraft/
//!   lock                      the lock file (empty; never removed)
//!   holder.ron                who holds, or last held, the lock
//!   index.ron                 one line when a release starts, one when it ends
//!   releases/<id>.ron         one release log per run
//!   logs/                     the executor's per-instance output logs
//! ```
//!
//! Listing releases and finding an env's current release read only the
//! index; loading a release reads only its log. `spec/state.md` documents
//! the formats and the durability rules.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::boot;
use super::clock::Clock;
use super::durable::{append, create_atomic, create_dir, cut_torn_tail, open_append};
use super::error::StateError;
use super::format::{self, IndexLine, LogLine, head_line, line};
use super::id::ReleaseId;
use super::journal::{Journal, read_log};
use super::lock::{Holder, Lock, Wait};
use super::query::{ReleaseSummary, current, is_deployment};
use super::recovery::{Recovered, interrupt_events};
use super::release::{Release, ReleaseHeader, ReleaseStatus};
use crate::engine::{Event, Plan};

/// The index file's name.
pub(crate) const INDEX_FILE: &str = "index.ron";
/// The directory of release logs.
pub(crate) const RELEASES_DIR: &str = "releases";
/// The directory of the executor's per-instance logs.
pub(crate) const LOGS_DIR: &str = "logs";

/// A state directory, for reading without the lock (`releases list`,
/// `releases show`). A directory that does not exist has no releases.
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

    /// The index file.
    #[must_use]
    pub fn index_path(&self) -> PathBuf {
        self.path.join(INDEX_FILE)
    }

    /// The log of release `id`.
    #[must_use]
    pub fn log_path(&self, id: ReleaseId) -> PathBuf {
        self.path.join(RELEASES_DIR).join(format!("{id}.ron"))
    }

    /// Where the executor keeps the output of release `id`'s instances.
    #[must_use]
    pub(crate) fn output_dir(&self, id: ReleaseId) -> PathBuf {
        self.path.join(LOGS_DIR).join(id.to_string())
    }

    /// Every release, newest first, optionally only `env`'s, from the index
    /// (and, for a release that has not finished, its log).
    ///
    /// # Errors
    ///
    /// A file cannot be read or is corrupt.
    pub fn releases(&self, env: Option<&str>) -> Result<Vec<ReleaseSummary>, StateError> {
        let path = self.index_path();
        if !path.exists() {
            return Ok(Vec::new());
        }
        let index = read_index(&path)?;
        let mut releases = Vec::new();
        for mut summary in index.summaries.into_iter().rev() {
            if env.is_some_and(|env| env != summary.env) {
                continue;
            }
            if summary.finished_at.is_none() {
                summary.status = read_log(&self.log_path(summary.id))?.release.status();
            }
            releases.push(summary);
        }
        Ok(releases)
    }

    /// Release `id` in full.
    ///
    /// # Errors
    ///
    /// [`StateError::UnknownRelease`] if there is no such release; the log
    /// cannot be read or is corrupt.
    pub fn release(&self, id: &str) -> Result<Release, StateError> {
        let unknown = || StateError::UnknownRelease { id: id.to_owned() };
        let parsed: ReleaseId = id.parse().map_err(|_| unknown())?;
        let path = self.log_path(parsed);
        if !path.exists() {
            return Err(unknown());
        }
        Ok(read_log(&path)?.release)
    }
}

/// The index read back: every release it knows, oldest first.
struct Index {
    summaries: Vec<ReleaseSummary>,
    torn: Option<u64>,
}

fn read_index(path: &Path) -> Result<Index, StateError> {
    let lines: format::Lines<IndexLine> = format::read(path)?;
    let mut summaries: Vec<ReleaseSummary> = Vec::with_capacity(lines.lines.len() / 2 + 1);
    // Position in `summaries` by id; ids only grow, so a binary search works.
    for (number, entry) in lines.lines {
        let corrupt = |message: String| StateError::Corrupt {
            path: path.to_owned(),
            line: number,
            message,
        };
        match entry {
            started @ IndexLine::Started { .. } => {
                // A `Started` line always has a header.
                let Some(header) = started.into_header() else { continue };
                if summaries.last().is_some_and(|last| last.id >= header.id) {
                    let id = header.id;
                    return Err(corrupt(format!("release {id} is not newer than the one before it")));
                }
                summaries.push(ReleaseSummary {
                    header,
                    finished_at: None,
                    status: ReleaseStatus::Running,
                });
            }
            IndexLine::Finished { id, at, status } => {
                let position = summaries
                    .binary_search_by_key(&id, |s| s.id)
                    .map_err(|_| corrupt(format!("release {id} finishes but never started")))?;
                let summary = &mut summaries[position];
                if summary.finished_at.is_some() {
                    return Err(corrupt(format!("release {id} finishes twice")));
                }
                summary.finished_at = Some(at);
                summary.status = status;
            }
        }
    }
    Ok(Index {
        summaries,
        torn: lines.torn,
    })
}

/// A state directory under its lock: what a run writes through.
///
/// Opening it takes the lock, creates what is missing and recovers the
/// releases of runs that died. It is then the only writer until dropped.
#[derive(Debug)]
pub struct Store {
    dir: StateDir,
    clock: Clock,
    index: File,
    /// Every release, oldest first (all finished except the one a journal
    /// is writing).
    summaries: Vec<ReleaseSummary>,
    // Declared last: dropped (unlocked) after the files are closed.
    lock: Lock,
}

impl Store {
    /// Locks the state directory at `path` (creating it if needed), then
    /// recovers every release left unfinished by a run that died.
    ///
    /// # Errors
    ///
    /// [`StateError::Locked`] if another run holds the lock (after `wait`);
    /// a file cannot be read or written, or is corrupt.
    pub fn open(path: &Path, holder: &Holder, wait: Wait, clock: Clock) -> Result<(Self, Vec<Recovered>), StateError> {
        let lock = Lock::acquire(path, holder, wait)?;
        let dir = StateDir::new(path);
        create_dir(&path.join(RELEASES_DIR))?;
        let index_path = dir.index_path();
        if !index_path.exists() {
            create_atomic(&index_path, head_line().as_bytes())?;
        }
        let Index { summaries, torn } = read_index(&index_path)?;
        if let Some(complete) = torn {
            cut_torn_tail(&index_path, complete)?;
        }
        let index = open_append(&index_path)?;
        let mut store = Self {
            dir,
            clock,
            index,
            summaries,
            lock,
        };
        let recovered = store.recover()?;
        Ok((store, recovered))
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &StateDir {
        &self.dir
    }

    /// The clock the store takes times from.
    #[must_use]
    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The lock held.
    #[must_use]
    pub fn lock(&self) -> &Lock {
        &self.lock
    }

    /// Every release, newest first, optionally only `env`'s.
    #[must_use]
    pub fn releases(&self, env: Option<&str>) -> Vec<ReleaseSummary> {
        self.summaries
            .iter()
            .rev()
            .filter(|s| env.is_none_or(|env| env == s.env))
            .cloned()
            .collect()
    }

    /// Release `id` in full.
    ///
    /// # Errors
    ///
    /// See [`StateDir::release`].
    pub fn release(&self, id: &str) -> Result<Release, StateError> {
        self.dir.release(id)
    }

    /// The id the next release gets (nothing is written): the clock's id,
    /// or the successor of the newest release's id if that is not greater.
    #[must_use]
    pub fn next_id(&self) -> ReleaseId {
        ReleaseId::allocate(self.clock.now(), self.summaries.last().map(|s| s.id))
    }

    /// Starts release `id` (from [`next_id`](Self::next_id)) running
    /// `plan`: writes its log (atomically) and its index line, and returns
    /// the journal the executor records into. `previous` is the env's
    /// current release for a deploy or rollback.
    ///
    /// # Errors
    ///
    /// `id` is not newer than every release; a write failed.
    pub fn begin(
        &mut self,
        id: ReleaseId,
        plan: &Plan,
        rollback_of: Option<ReleaseId>,
    ) -> Result<Journal<'_>, StateError> {
        let path = self.dir.log_path(id);
        if self.summaries.last().is_some_and(|last| last.id >= id) {
            let error = std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "release id is not newer than the newest",
            );
            return Err(StateError::io("create", path)(error));
        }
        let previous = if is_deployment(&plan.workflow) {
            current(self.summaries.iter().rev(), &plan.env).map(|s| s.id)
        } else {
            None
        };
        let header = ReleaseHeader {
            id,
            pipeline: plan.pipeline.clone(),
            workflow: plan.workflow.clone(),
            env: plan.env.clone(),
            version: plan.version.clone(),
            previous,
            rollback_of,
            started_at: self.clock.now(),
        };
        let release = Release::new(header, plan.instances.iter().map(|p| p.id.clone()));
        self.start(&path, &release)?;
        Journal::open(self, path, release)
    }

    /// Writes a new release's log and its index line.
    fn start(&mut self, path: &Path, release: &Release) -> Result<(), StateError> {
        let instances = release.instances().iter().map(|i| i.id().to_owned()).collect();
        let header = LogLine::release(&release.header, instances, boot::current());
        create_atomic(path, format!("{}{}", head_line(), line(&header)).as_bytes())?;
        self.index_started(release)
    }

    fn index_started(&mut self, release: &Release) -> Result<(), StateError> {
        let text = line(&IndexLine::started(&release.header));
        append(&self.index, &self.dir.index_path(), text.as_bytes())?;
        let mut summary = ReleaseSummary::from(release);
        summary.finished_at = None;
        self.summaries.push(summary);
        Ok(())
    }

    /// Records in the index that `release` finished.
    pub(crate) fn finished(&mut self, release: &Release) -> Result<(), StateError> {
        let Some(at) = release.finished_at else {
            return Ok(());
        };
        let status = release.status();
        let text = line(&IndexLine::Finished {
            id: release.id,
            at,
            status,
        });
        append(&self.index, &self.dir.index_path(), text.as_bytes())?;
        if let Ok(position) = self.summaries.binary_search_by_key(&release.id, |s| s.id) {
            self.summaries[position].finished_at = Some(at);
            self.summaries[position].status = status;
        }
        Ok(())
    }

    /// Closes a release, the one way every release ends (a run that
    /// finishes, one interrupted, one recovered): applies `events` (those
    /// that end it; none when every instance is done), marks it finished
    /// now, has `write` append their lines and the finish line to its log
    /// (and make them durable), then records the end in the index.
    ///
    /// # Errors
    ///
    /// An event is illegal, an instance is still pending or running, or a
    /// write failed.
    pub(crate) fn close_release(
        &mut self,
        release: &mut Release,
        events: &[Event],
        write: impl FnOnce(&str) -> Result<(), StateError>,
    ) -> Result<(), StateError> {
        let at = self.clock.now();
        release.apply(events, at)?;
        release.finish(at)?;
        let mut text: String = events.iter().map(|event| line(&LogLine::event(event, at))).collect();
        text.push_str(&line(&LogLine::Finished { at }));
        write(&text)?;
        self.finished(release)
    }

    /// Finishes every release whose run died: those the index shows
    /// unfinished, and a log the index never heard of (the run died between
    /// writing its log and its index line).
    fn recover(&mut self) -> Result<Vec<Recovered>, StateError> {
        let known: BTreeSet<ReleaseId> = self.summaries.iter().map(|s| s.id).collect();
        let releases_dir = self.dir.path().join(RELEASES_DIR);
        let mut unindexed = Vec::new();
        for entry in std::fs::read_dir(&releases_dir).map_err(StateError::io("read", &releases_dir))? {
            let entry = entry.map_err(StateError::io("read", &releases_dir))?;
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".ron"))
                .and_then(|n| n.parse::<ReleaseId>().ok())
            else {
                continue;
            };
            if !known.contains(&id) {
                unindexed.push(id);
            }
        }
        unindexed.sort_unstable();
        for id in unindexed {
            let log = read_log(&self.dir.log_path(id))?;
            if self.summaries.last().is_some_and(|last| last.id > id) {
                // An older log the index lacks can only come from outside
                // stagecraft; adding it out of order would break the index.
                return Err(StateError::Corrupt {
                    path: self.dir.log_path(id),
                    line: 1,
                    message: "release log missing from the index".to_owned(),
                });
            }
            self.index_started(&log.release)?;
        }
        let unfinished: Vec<ReleaseId> = self
            .summaries
            .iter()
            .filter(|s| s.finished_at.is_none())
            .map(|s| s.id)
            .collect();
        let mut recovered = Vec::new();
        for id in unfinished {
            let path = self.dir.log_path(id);
            let log = read_log(&path)?;
            if let Some(complete) = log.torn {
                cut_torn_tail(&path, complete)?;
            }
            let mut release = log.release;
            if release.is_finished() {
                // Only the index's finish line was lost.
                self.finished(&release)?;
            } else {
                let lost = boot::may_have_lost_writes(log.boot.as_deref(), boot::current().as_deref());
                let (events, report) = interrupt_events(&release, lost);
                self.close_release(&mut release, &events, |text| {
                    append(&open_append(&path)?, &path, text.as_bytes())
                })?;
                recovered.push(report);
            }
        }
        Ok(recovered)
    }
}
