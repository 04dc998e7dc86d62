//! Releases: the record of one run, built by applying engine events.
//!
//! A [`Release`] is created with every instance `pending` and changes only
//! through [`Release::apply`], which turns each [`Event`] into a
//! [`transition`] (rejecting illegal moves) and keeps the attempts, exit
//! codes, reasons and the ordered list of transitions. Storage replays the
//! same events to rebuild a release from its log, so a release read back is
//! exactly the release that was recorded.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

use super::clock::Timestamp;
use super::id::ReleaseId;
use super::instance::InstanceRecord;
use super::live::Services;
use super::status::{IllegalTransition, PhaseStatus};
use crate::engine::{Event, Reason};

/// The status of a whole release, derived from its instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseStatus {
    /// Nothing has started.
    Pending,
    /// Unfinished, and nothing has failed.
    Running,
    /// Finished, every instance completed or skipped for its condition.
    Completed,
    /// An instance failed, or it finished without completing.
    Failed,
}

impl fmt::Display for ReleaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
        })
    }
}

/// What a release is: everything known about it when it starts.
///
/// This is the one list of a release's fields. [`Release`] and
/// [`ReleaseSummary`](super::ReleaseSummary) embed it (and dereference to
/// it), the state files store it (converted only in `state/format.rs`), and
/// the JSON of `releases list | show` is made from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReleaseHeader {
    /// Its id.
    pub id: ReleaseId,
    /// The pipeline's name.
    pub pipeline: String,
    /// The workflow run.
    pub workflow: String,
    /// The env.
    pub env: String,
    /// The version deployed.
    pub version: String,
    /// For a deploy or rollback: the env's newest deploy or rollback release
    /// before this one (its current release when this one started).
    pub previous: Option<ReleaseId>,
    /// For a rollback: the release whose version it restores.
    pub rollback_of: Option<ReleaseId>,
    /// When it started.
    pub started_at: Timestamp,
    /// The commit of the pipeline's repository it ran from, when known.
    pub commit: Option<Commit>,
    /// The services it covered; `None` for a release recorded before
    /// services were (format version 2 and older: see
    /// [`covered`](super::live::covered)).
    pub services: Option<Services>,
    /// The services whose version differs from `version` (a rollback's
    /// per-service versions), by service.
    pub versions: BTreeMap<String, String>,
    /// The keys given with `--set`, sorted (never their values).
    pub set_keys: Vec<String>,
    /// `sha256:<hex>` of the pipeline file, when known.
    pub digest: Option<String>,
    /// Who ran it, `user@host`, when known.
    pub user: Option<String>,
    /// For a `resume`: the failed release it resumes (whose completed
    /// instances it carried over).
    pub resumes: Option<ReleaseId>,
    /// Per key given with `--set`, the digest of its value (`sha256:<hex>`,
    /// never the value), so that `resume` can tell a changed value; empty
    /// for a release recorded before format version 5.
    pub set_digests: BTreeMap<String, String>,
}

/// A commit a release ran from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Commit {
    /// The full sha.
    pub sha: String,
    /// Whether the working tree had changes not committed.
    pub dirty: bool,
}

/// What the caller knows of a release when it starts, besides its plan:
/// the fields of [`ReleaseHeader`] the state layer does not compute.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReleaseMeta {
    /// See [`ReleaseHeader::rollback_of`].
    pub rollback_of: Option<ReleaseId>,
    /// See [`ReleaseHeader::commit`].
    pub commit: Option<Commit>,
    /// See [`ReleaseHeader::services`].
    pub services: Option<Services>,
    /// See [`ReleaseHeader::versions`].
    pub versions: BTreeMap<String, String>,
    /// See [`ReleaseHeader::set_keys`] (sorted here if they are not).
    pub set_keys: Vec<String>,
    /// See [`ReleaseHeader::digest`].
    pub digest: Option<String>,
    /// See [`ReleaseHeader::user`] ([`user_at_host`](super::user_at_host)).
    pub user: Option<String>,
    /// The run undoes a failure (`undo on failure`): its log records each
    /// instance's `undo` command, which recovery reads. It must agree with
    /// the executor's `ExecuteOptions::undo_on_failure`: the journal
    /// refuses the undo events of an instance whose undo is not recorded.
    pub undo_on_failure: bool,
    /// See [`ReleaseHeader::resumes`].
    pub resumes: Option<ReleaseId>,
    /// See [`ReleaseHeader::set_digests`].
    pub set_digests: BTreeMap<String, String>,
}

impl ReleaseHeader {
    /// Whether it is one of its env's releases: a `deploy` or `rollback`
    /// run.
    #[must_use]
    pub fn is_deployment(&self) -> bool {
        super::query::is_deployment(&self.workflow)
    }
}

/// The record of one run of a workflow in an env: its header, its
/// instances and when it finished. It dereferences to its
/// [`ReleaseHeader`] (`release.id`, `release.env`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Release {
    /// What it is.
    #[serde(flatten)]
    pub header: ReleaseHeader,
    /// When it finished; `None` while it runs (or if its writer died and it
    /// was not recovered yet).
    pub finished_at: Option<Timestamp>,
    instances: Vec<InstanceRecord>,
}

impl Deref for Release {
    type Target = ReleaseHeader;

    fn deref(&self) -> &ReleaseHeader {
        &self.header
    }
}

impl Release {
    /// A release with every instance `pending`, in plan order.
    #[must_use]
    pub fn new(header: ReleaseHeader, instances: impl IntoIterator<Item = String>) -> Self {
        Self {
            header,
            finished_at: None,
            instances: instances.into_iter().map(InstanceRecord::new).collect(),
        }
    }

    /// Marks the instances at `positions` as those of `finally` phases,
    /// whose failure is shown but does not fail the release.
    pub(crate) fn set_finally(&mut self, positions: &[usize]) {
        for &position in positions {
            if let Some(instance) = self.instances.get_mut(position) {
                instance.finally = true;
            }
        }
    }

    /// Records each instance's `undo` command, in plan order (the run
    /// undoes a failure). Extra or missing entries are ignored.
    pub(crate) fn set_undo(&mut self, commands: Vec<Option<String>>) {
        for (instance, command) in self.instances.iter_mut().zip(commands) {
            if let Some(command) = command {
                instance.set_undo(command);
            }
        }
    }

    /// Records each instance's command, in plan order (`None`: a marker
    /// phase, or a release recorded before commands were). Extra or
    /// missing entries are ignored.
    pub(crate) fn set_commands(&mut self, commands: Vec<Option<String>>) {
        for (instance, command) in self.instances.iter_mut().zip(commands) {
            instance.command = command;
        }
    }

    /// The instances, in plan order.
    #[must_use]
    pub fn instances(&self) -> &[InstanceRecord] {
        &self.instances
    }

    /// Whether the release is finished.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.finished_at.is_some()
    }

    /// The release's status, derived from its instances other than those
    /// of `finally` phases: failed if any failed; completed once finished
    /// with every one completed or skipped for its condition or as
    /// `unchanged` (failed if finished otherwise); pending while nothing has
    /// started; running otherwise.
    #[must_use]
    pub fn status(&self) -> ReleaseStatus {
        // A `finally` instance's failure is shown, not the release's outcome.
        let main = || self.instances.iter().filter(|i| !i.finally);
        if main().any(|i| i.status() == PhaseStatus::Failed) {
            return ReleaseStatus::Failed;
        }
        if self.is_finished() {
            let done = main().all(|i| {
                i.status() == PhaseStatus::Completed
                    || (i.status() == PhaseStatus::Skipped
                        && matches!(i.reason(), Some(Reason::Condition | Reason::Unchanged)))
            });
            return if done {
                ReleaseStatus::Completed
            } else {
                ReleaseStatus::Failed
            };
        }
        if self.instances.iter().all(|i| i.status() == PhaseStatus::Pending) {
            ReleaseStatus::Pending
        } else {
            ReleaseStatus::Running
        }
    }

    /// Applies events that happened together at `at`: all of them, or
    /// (on an error) none.
    ///
    /// # Errors
    ///
    /// An event names no instance, asks for an illegal transition, or does
    /// not fit the instance's attempts; or the release is finished.
    pub fn apply(&mut self, events: &[Event], at: Timestamp) -> Result<(), EventError> {
        if self.is_finished() {
            return Err(EventError::Finished { release: self.id });
        }
        // Work on copies of the few instances touched, so a rejected event
        // leaves the release as it was.
        let mut touched: Vec<(usize, InstanceRecord)> = Vec::new();
        for event in events {
            let position = event.instance();
            let slot = if let Some(slot) = touched.iter().position(|(p, _)| *p == position) {
                slot
            } else {
                let record = self.instances.get(position).ok_or(EventError::UnknownInstance {
                    position,
                    count: self.instances.len(),
                })?;
                touched.push((position, record.clone()));
                touched.len() - 1
            };
            touched[slot].1.apply(event, at)?;
        }
        for (position, record) in touched {
            self.instances[position] = record;
        }
        Ok(())
    }

    /// The instances not yet done: `(running, pending)` positions, an
    /// instance `undoing` counting as running.
    #[must_use]
    pub(crate) fn unsettled(&self) -> (Vec<usize>, Vec<usize>) {
        let mut running = Vec::new();
        let mut pending = Vec::new();
        for (position, instance) in self.instances.iter().enumerate() {
            match instance.status() {
                PhaseStatus::Running | PhaseStatus::Undoing => running.push(position),
                PhaseStatus::Pending => pending.push(position),
                _ => {}
            }
        }
        (running, pending)
    }

    /// Marks the release finished at `at`.
    ///
    /// # Errors
    ///
    /// It is already finished, or an instance is still pending or running.
    pub fn finish(&mut self, at: Timestamp) -> Result<(), EventError> {
        if self.is_finished() {
            return Err(EventError::Finished { release: self.id });
        }
        let (running, pending) = self.unsettled();
        if let Some(&position) = running.first().or(pending.first()) {
            let instance = &self.instances[position];
            return Err(EventError::Unsettled {
                release: self.id,
                instance: instance.id().to_owned(),
                status: instance.status(),
            });
        }
        self.finished_at = Some(at);
        Ok(())
    }
}

/// An event that cannot be applied to a release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventError {
    /// The status change is not allowed.
    Illegal(IllegalTransition),
    /// The event names a position past the end of the plan.
    UnknownInstance {
        /// The position.
        position: usize,
        /// How many instances the release has.
        count: usize,
    },
    /// The attempt numbers do not fit.
    Attempt {
        /// The instance.
        instance: String,
        /// What is wrong.
        message: String,
    },
    /// The release is finished: nothing more can happen to it.
    Finished {
        /// The release.
        release: ReleaseId,
    },
    /// The release cannot finish: an instance is not done.
    Unsettled {
        /// The release.
        release: ReleaseId,
        /// The first instance not done.
        instance: String,
        /// Its status.
        status: PhaseStatus,
    },
}

impl From<IllegalTransition> for EventError {
    fn from(error: IllegalTransition) -> Self {
        Self::Illegal(error)
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Illegal(error) => error.fmt(f),
            Self::UnknownInstance { position, count } => {
                write!(
                    f,
                    "event for instance {position}, but the release has {count} instance(s)"
                )
            }
            Self::Attempt { instance, message } => write!(f, "`{instance}`: {message}"),
            Self::Finished { release } => write!(f, "release {release} is already finished"),
            Self::Unsettled {
                release,
                instance,
                status,
            } => {
                write!(f, "release {release} cannot finish: `{instance}` is still `{status}`")
            }
        }
    }
}

impl std::error::Error for EventError {}

/// A header for tests: release `n` (its id is `n` ms after a fixed time)
/// of `workflow` at `version` in `prod`, every other field unknown.
#[cfg(test)]
pub(crate) fn test_header(n: u64, workflow: &str, version: &str) -> ReleaseHeader {
    let at = Timestamp::from_millis(1_795_626_149_000 + n);
    ReleaseHeader {
        id: ReleaseId::from_time(at),
        pipeline: "webapp".into(),
        workflow: workflow.into(),
        env: "prod".into(),
        version: version.into(),
        previous: None,
        rollback_of: None,
        started_at: at,
        commit: None,
        services: None,
        versions: BTreeMap::new(),
        set_keys: Vec::new(),
        digest: None,
        user: None,
        resumes: None,
        set_digests: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests;
