//! What a run did: [`Summary`], one [`InstanceSummary`] per instance.

use std::path::PathBuf;
use std::time::Duration;

use super::event::Reason;

/// How many lines of a failed instance's output the summary keeps.
pub const TAIL_LINES: usize = 10;

/// How an instance ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceStatus {
    /// Its command exited 0 (or it is a marker).
    Completed,
    /// Its last attempt failed, or it was interrupted.
    Failed,
    /// It did not run.
    Skipped,
}

/// What happened to one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceSummary {
    /// The instance's id.
    pub id: String,
    /// How it ended.
    pub status: InstanceStatus,
    /// How many attempts started (0 when skipped).
    pub attempts: u32,
    /// The last attempt's exit code, if it exited.
    pub exit_code: Option<i32>,
    /// Why it failed or was skipped.
    pub reason: Option<Reason>,
    /// Its log file, if one was written.
    pub log: Option<PathBuf>,
    /// The last lines of the last attempt's output, when it failed.
    pub tail: Vec<String>,
    /// From its first start to its end; `None` when skipped.
    pub duration: Option<Duration>,
    /// Its phase is `finally`: its failure is reported but is not the
    /// run's.
    pub finally: bool,
    /// Its undo, when the failed run undid it (or did not attempt to).
    pub undo: Option<UndoSummary>,
}

/// How an instance's undo ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UndoStatus {
    /// Its `undo` command exited 0.
    Undone,
    /// Its `undo` command failed, which stopped the undoing.
    Failed,
    /// It was not started: an earlier undo failed, or the run was
    /// interrupted.
    NotAttempted,
}

/// What happened to one instance's undo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UndoSummary {
    /// How it ended.
    pub status: UndoStatus,
    /// The undo command's exit code, if it exited.
    pub exit_code: Option<i32>,
    /// Why it failed, or why it was not attempted.
    pub reason: Option<Reason>,
    /// Its log file (`<file>.undo.log`), if one was written.
    pub log: Option<PathBuf>,
    /// The last lines of its output, when it failed.
    pub tail: Vec<String>,
    /// How long it ran; `None` when not attempted.
    pub duration: Option<Duration>,
}

/// What a run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Every instance, in plan order.
    pub instances: Vec<InstanceSummary>,
    /// The position of the first instance to fail (not counting those
    /// failed by the interruption).
    pub first_failed: Option<usize>,
    /// Whether the run was cancelled.
    pub interrupted: bool,
    /// The instances the failed run was to undo, in reverse order of
    /// completion (empty when nothing was to be undone).
    pub undo_order: Vec<usize>,
    /// The whole run.
    pub duration: Duration,
}

impl Summary {
    /// Whether every instance completed or was skipped for its condition,
    /// not counting `finally` instances (whose failure is not the run's).
    #[must_use]
    pub fn succeeded(&self) -> bool {
        !self.interrupted
            && self
                .instances
                .iter()
                .all(|instance| instance.finally || instance.status != InstanceStatus::Failed)
    }

    /// The instances skipped because the instance at `failed` failed.
    pub fn skipped_because(&self, failed: usize) -> impl Iterator<Item = &InstanceSummary> {
        let id = self.instances.get(failed).map(|instance| instance.id.as_str());
        self.instances.iter().filter(move |instance| {
            instance.status == InstanceStatus::Skipped
                && matches!(&instance.reason, Some(Reason::Failed(name)) if Some(name.as_str()) == id)
        })
    }

    /// How many instances ended with `status`.
    #[must_use]
    pub fn count(&self, status: InstanceStatus) -> usize {
        self.instances
            .iter()
            .filter(|instance| instance.status == status)
            .count()
    }
}
