//! What happens to instances during a run, as the executor reports it.
//!
//! The executor knows nothing of storage: it hands every change to a
//! [`Recorder`] (implemented by `state`, which turns each into a typed
//! transition and writes it) and makes what was written durable through the
//! recorder's [`Syncer`], on a thread of its own. Changes that happen at one
//! step (an instance completes and the next one starts) are handed over
//! together, and one sync covers every step written before it.
//!
//! A command never starts before a durable record says it may: the
//! instance's [`Event::Claimed`] (or its `Started`) must be covered by a
//! finished sync. The executor claims the instances it will start next
//! while the current commands run, so the sync is off the critical path:
//! when a command ends, the next one's claim is usually durable already.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One change to one instance of the plan, by position in `Plan::instances`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// The instance may start from now on: the executor expects to start
    /// it next. Not a status change (it stays `pending`); once this is
    /// durable, its `Started` need not be before the command starts. If the
    /// run stops before it starts, it is skipped as any pending instance.
    Claimed {
        /// Position in the plan.
        instance: usize,
    },
    /// A `finally` instance of a failed (or interrupted) release runs this
    /// command, its phase's command with `{{outcome}}` = `failure`, not the
    /// one the release's header records for it (that of a success).
    /// Recorded just before its first `Started`, only when the two differ.
    /// Not a status change.
    FailureCommand {
        /// Position in the plan.
        instance: usize,
        /// The command, fully interpolated.
        command: String,
    },
    /// The instance's command is about to start (attempt 1), or about to be
    /// re-run (attempt 2, 3, …) after a failed attempt with retries left.
    /// Attempt 1 is the `pending → running` transition; later attempts keep
    /// the instance `running`.
    Started {
        /// Position in the plan.
        instance: usize,
        /// 1 for the first attempt.
        attempt: u32,
    },
    /// The attempt's command started, as this process: written right after
    /// the spawn (its `Started` is written before, when the process is not
    /// known yet), so that a command that recovers a run killed outright
    /// can find what it left running. Not a status change.
    Spawned {
        /// Position in the plan.
        instance: usize,
        /// The attempt it runs.
        attempt: u32,
        /// Its process group.
        process: Process,
    },
    /// An attempt failed and the instance will be retried.
    AttemptFailed {
        /// Position in the plan.
        instance: usize,
        /// The attempt that failed.
        attempt: u32,
        /// Its exit code, if it exited.
        exit_code: Option<i32>,
        /// Why it failed.
        reason: Reason,
    },
    /// `running → completed`: the command exited 0 (or the instance has no
    /// command: a marker phase starts and completes at once).
    Completed {
        /// Position in the plan.
        instance: usize,
        /// 0, or `None` for a marker phase.
        exit_code: Option<i32>,
    },
    /// `running → failed`: the last attempt failed.
    Failed {
        /// Position in the plan.
        instance: usize,
        /// Its exit code, if it exited.
        exit_code: Option<i32>,
        /// Why it failed.
        reason: Reason,
    },
    /// `pending → completed` without running: the instance completed in
    /// the release this one resumes (`stagecraft resume`), so its command
    /// does not run again and it satisfies its dependents. Its reason is
    /// [`Reason::CarriedOver`].
    CarriedOver {
        /// Position in the plan.
        instance: usize,
        /// The id of the release it completed in.
        from: String,
    },
    /// `pending → skipped`.
    Skipped {
        /// Position in the plan.
        instance: usize,
        /// Why it did not run.
        reason: Reason,
    },
    /// `completed → undoing`: the instance's `undo` command is about to
    /// start (a failed release is undone). Durable before the command
    /// starts.
    UndoStarted {
        /// Position in the plan.
        instance: usize,
    },
    /// The `undo` command started, as this process (as [`Event::Spawned`]
    /// for an attempt). Not a status change.
    UndoSpawned {
        /// Position in the plan.
        instance: usize,
        /// Its process group.
        process: Process,
    },
    /// `undoing → undone`: the `undo` command exited 0.
    Undone {
        /// Position in the plan.
        instance: usize,
        /// 0.
        exit_code: Option<i32>,
    },
    /// `undoing → undo_failed`: the `undo` command failed, timed out,
    /// could not start or was interrupted.
    UndoFailed {
        /// Position in the plan.
        instance: usize,
        /// Its exit code, if it exited.
        exit_code: Option<i32>,
        /// Why it failed.
        reason: Reason,
    },
    /// The instance's `undo` will not run: an earlier undo failed, or the
    /// run was interrupted. Not a status change (it stays `completed`).
    UndoNotAttempted {
        /// Position in the plan.
        instance: usize,
        /// [`Reason::UndoFailed`] or [`Reason::Interrupted`].
        reason: Reason,
    },
}

impl Event {
    /// The instance the event is about.
    #[must_use]
    pub fn instance(&self) -> usize {
        match self {
            Self::Claimed { instance }
            | Self::FailureCommand { instance, .. }
            | Self::Started { instance, .. }
            | Self::Spawned { instance, .. }
            | Self::AttemptFailed { instance, .. }
            | Self::Completed { instance, .. }
            | Self::Failed { instance, .. }
            | Self::CarriedOver { instance, .. }
            | Self::Skipped { instance, .. }
            | Self::UndoStarted { instance }
            | Self::UndoSpawned { instance, .. }
            | Self::Undone { instance, .. }
            | Self::UndoFailed { instance, .. }
            | Self::UndoNotAttempted { instance, .. } => *instance,
        }
    }
}

/// A command's process group as it started: the group id (the pid of the
/// process spawned, which leads it) and that process's start time, in
/// clock ticks after boot (`/proc/PID/stat`, field 22), so that a pid used
/// again by another process is never taken for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// The process group id: the leader's pid.
    pub group: u32,
    /// The leader's start time, in clock ticks after boot.
    pub start: u64,
}

/// Why an instance failed or was skipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Skipped: its `when` condition is false.
    Condition,
    /// Skipped: its service is left as it is (a rollback that restores
    /// only the services that changed). Like a condition skip, it
    /// satisfies its dependents.
    Unchanged,
    /// Failed: the command exited with a non-zero code.
    ExitCode,
    /// Failed: the command ran past its `timeout` and its process group
    /// was killed.
    Timeout,
    /// Failed: the command could not be started.
    Spawn(String),
    /// Failed: the run was interrupted while it ran (Ctrl-C, or the process
    /// died and a later command found it `running`). Skipped: the run was
    /// interrupted before it started.
    Interrupted,
    /// Skipped: the named instance failed first (fail-fast), or, with
    /// `--keep-going`, this instance depends on it.
    Failed(String),
    /// Failed: the command's output could not be written to its log (the
    /// disk is full, …), so the log would have been cut short.
    Log(String),
    /// Undo not attempted: the undo of the named instance failed, which
    /// stops the undoing.
    UndoFailed(String),
    /// Completed without running: it completed in the named release, which
    /// this one resumes.
    CarriedOver(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Condition => f.write_str("condition"),
            Self::Unchanged => f.write_str("unchanged"),
            Self::ExitCode => f.write_str("exit code"),
            Self::Timeout => f.write_str("timeout"),
            Self::Spawn(error) => write!(f, "could not start: {error}"),
            Self::Interrupted => f.write_str("interrupted"),
            Self::Failed(instance) => write!(f, "{instance} failed"),
            Self::Log(error) => write!(f, "log not written: {error}"),
            Self::UndoFailed(instance) => write!(f, "the undo of {instance} failed"),
            Self::CarriedOver(release) => write!(f, "carried over from {release}"),
        }
    }
}

/// Where the executor reports events. An error stops the run: nothing more
/// starts, what runs is let finish, and the events from then on go to
/// [`keep`](Recorder::keep) instead (see `execute`'s module docs).
pub trait Recorder {
    /// Records events that happened at one step, in order. They are durable
    /// when this returns, unless [`syncer`](Self::syncer) gives a syncer:
    /// then they are durable once a sync that starts after this returns
    /// has finished.
    ///
    /// # Errors
    ///
    /// The events could not be recorded (an illegal transition, or storage
    /// failed).
    fn record(&mut self, events: &[Event]) -> Result<(), RecordError>;

    /// What makes recorded events durable, if `record` does not: the
    /// executor calls it from a thread of its own while it goes on.
    fn syncer(&mut self) -> Result<Option<Box<dyn Syncer>>, RecordError> {
        Ok(None)
    }

    /// Events that happened after `record` or a sync failed, in order. The
    /// executor records nothing more; a recorder that can write them once
    /// its storage is back keeps them, with the batch whose `record`
    /// failed and those a failed sync did not cover.
    fn keep(&mut self, events: &[Event]) {
        let _ = events;
    }
}

/// Makes every event recorded before the call durable.
pub trait Syncer: Send {
    /// Syncs.
    ///
    /// # Errors
    ///
    /// Storage failed: the events since the last successful sync may be
    /// lost.
    fn sync(&mut self) -> Result<(), RecordError>;
}

/// A recorder's failure, with its message as it should be shown.
#[derive(Debug)]
pub struct RecordError(pub String);

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RecordError {}
