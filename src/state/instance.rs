//! The record of one instance of a release: its status, attempts, exit
//! code, reason and transitions, changed only by applying engine events.

use serde::Serialize;

use super::clock::Timestamp;
use super::release::EventError;
use super::status::{PhaseStatus, transition};
use crate::engine::{Event, Process, Reason};

/// One instance of a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InstanceRecord {
    id: String,
    status: PhaseStatus,
    attempts: Vec<Attempt>,
    exit_code: Option<i32>,
    reason: Option<Reason>,
    transitions: Vec<Transition>,
    /// Its command as it ran, fully interpolated; `None` for a marker
    /// phase (or a release recorded before commands were).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) command: Option<String>,
    /// A durable claim says its command may have started (see
    /// [`Event::Claimed`]); only recovery looks at it.
    #[serde(skip)]
    claimed: bool,
    /// An instance of a `finally` phase: its failure does not fail the
    /// release (see [`Release::status`](super::Release::status)).
    #[serde(skip)]
    pub(super) finally: bool,
    /// Its undo, when the run undoes a failure and its phase has an
    /// `undo` command.
    #[serde(skip_serializing_if = "Option::is_none")]
    undo: Option<Undo>,
}

/// An instance's undo: its command and, once undone (or not), how that
/// went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Undo {
    /// The `undo` command, fully interpolated.
    pub command: String,
    /// When it started; `None` if it never did.
    pub started_at: Option<Timestamp>,
    /// When it ended; `None` while it runs (or if it never started).
    pub finished_at: Option<Timestamp>,
    /// Its exit code, if it exited.
    pub exit_code: Option<i32>,
    /// Why it failed, or why it was not attempted.
    pub reason: Option<Reason>,
    /// It was not started: an earlier undo failed, or the run was
    /// interrupted.
    pub not_attempted: bool,
    /// Its process group, once recorded.
    #[serde(skip)]
    pub process: Option<Process>,
}

/// One run of an instance's command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// 1 for the first.
    pub number: u32,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended; `None` while it runs.
    pub finished_at: Option<Timestamp>,
    /// Its exit code, if it exited.
    pub exit_code: Option<i32>,
    /// Why it failed, if it did.
    pub reason: Option<Reason>,
    /// Its process group and leader's start time, once recorded (format
    /// 4 on): what recovery stops if the run died while it ran.
    #[serde(skip)]
    pub process: Option<Process>,
}

/// One status change, as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Transition {
    /// The status before.
    pub from: PhaseStatus,
    /// The status after.
    pub to: PhaseStatus,
    /// When.
    pub at: Timestamp,
    /// The attempt it belongs to (0 for a skip: nothing was attempted).
    pub attempt: u32,
}

impl InstanceRecord {
    pub(super) fn new(id: String) -> Self {
        Self {
            id,
            status: PhaseStatus::Pending,
            attempts: Vec::new(),
            exit_code: None,
            reason: None,
            transitions: Vec::new(),
            command: None,
            claimed: false,
            finally: false,
            undo: None,
        }
    }

    /// Records its `undo` command (the run undoes a failure).
    pub(super) fn set_undo(&mut self, command: String) {
        self.undo = Some(Undo {
            command,
            started_at: None,
            finished_at: None,
            exit_code: None,
            reason: None,
            not_attempted: false,
            process: None,
        });
    }

    /// Its undo, when the run undoes a failure and it has an `undo`.
    #[must_use]
    pub fn undo(&self) -> Option<&Undo> {
        self.undo.as_ref()
    }

    /// Completed, with an undo that neither ran nor was marked not
    /// attempted.
    #[must_use]
    pub(crate) fn undo_pending(&self) -> bool {
        self.status == PhaseStatus::Completed
            && self
                .undo
                .as_ref()
                .is_some_and(|u| u.started_at.is_none() && !u.not_attempted)
    }

    /// `build[api]` or `migrate`.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its command as it ran (`None`: a marker phase, or a release
    /// recorded before commands were).
    #[must_use]
    pub fn command(&self) -> Option<&str> {
        self.command.as_deref()
    }

    /// Whether it is an instance of a `finally` phase.
    #[must_use]
    pub fn is_finally(&self) -> bool {
        self.finally
    }

    /// Its status.
    #[must_use]
    pub fn status(&self) -> PhaseStatus {
        self.status
    }

    /// Its attempts, in order.
    #[must_use]
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    /// The exit code of its last attempt, once it completed or failed.
    #[must_use]
    pub fn exit_code(&self) -> Option<i32> {
        self.exit_code
    }

    /// Why it failed or was skipped.
    #[must_use]
    pub fn reason(&self) -> Option<&Reason> {
        self.reason.as_ref()
    }

    /// Pending, but claimed: its command may start at any moment, so after
    /// a crash of the machine it may have started (see [`Event::Claimed`]).
    #[must_use]
    pub(crate) fn is_claimed(&self) -> bool {
        self.claimed && self.status == PhaseStatus::Pending
    }

    /// The process group of its attempt, or of its undo, that is running,
    /// if recorded.
    #[must_use]
    pub(crate) fn running_process(&self) -> Option<Process> {
        if self.status == PhaseStatus::Undoing {
            return self.undo.as_ref().and_then(|u| u.process);
        }
        let open = self.attempts.last().filter(|a| a.finished_at.is_none())?;
        open.process.filter(|_| self.status == PhaseStatus::Running)
    }

    /// Its status changes, in order.
    #[must_use]
    pub fn transitions(&self) -> &[Transition] {
        &self.transitions
    }

    fn attempt_count(&self) -> u32 {
        u32::try_from(self.attempts.len()).unwrap_or(u32::MAX)
    }

    /// The open attempt, if one is running.
    fn open_attempt(&mut self) -> Option<&mut Attempt> {
        self.attempts.last_mut().filter(|a| a.finished_at.is_none())
    }

    fn attempt_error(&self, message: String) -> EventError {
        EventError::Attempt {
            instance: self.id.clone(),
            message,
        }
    }

    fn change(&mut self, to: PhaseStatus, at: Timestamp, attempt: u32) -> Result<(), EventError> {
        let from = self.status;
        self.status = transition(&self.id, from, to)?;
        self.transitions.push(Transition { from, to, at, attempt });
        Ok(())
    }

    pub(super) fn apply(&mut self, event: &Event, at: Timestamp) -> Result<(), EventError> {
        match event {
            Event::Claimed { .. } => self.claim(),
            Event::FailureCommand { command, .. } => {
                if !self.finally || self.status != PhaseStatus::Pending {
                    return Err(self.attempt_error(
                        "a failure command recorded, but it is not a `finally` instance yet to start".to_owned(),
                    ));
                }
                self.command = Some(command.clone());
                Ok(())
            }
            &Event::Started { attempt, .. } => self.start(attempt, at),
            &Event::Spawned { attempt, process, .. } => {
                let Some(open) = self
                    .open_attempt()
                    .filter(|a| a.number == attempt && a.process.is_none())
                else {
                    return Err(self.attempt_error(format!("attempt {attempt} spawned but it is not running")));
                };
                open.process = Some(process);
                Ok(())
            }
            Event::AttemptFailed {
                attempt,
                exit_code,
                reason,
                ..
            } => self.fail_attempt(*attempt, *exit_code, reason, at),
            Event::Completed { exit_code, .. } => {
                if self.status == PhaseStatus::Pending {
                    // Only a carry-over completes what did not run.
                    return Err(self.attempt_error("completed with no attempt running".to_owned()));
                }
                self.change(PhaseStatus::Completed, at, self.attempt_count())?;
                let Some(open) = self.open_attempt() else {
                    return Err(self.attempt_error("completed with no attempt running".to_owned()));
                };
                open.finished_at = Some(at);
                open.exit_code = *exit_code;
                self.exit_code = *exit_code;
                Ok(())
            }
            Event::Failed { exit_code, reason, .. } => {
                self.change(PhaseStatus::Failed, at, self.attempt_count())?;
                // No attempt is open when it fails between attempts (during
                // a backoff), e.g. when interrupted.
                if let Some(open) = self.open_attempt() {
                    open.finished_at = Some(at);
                    open.exit_code = *exit_code;
                    open.reason = Some(reason.clone());
                }
                self.exit_code = *exit_code;
                self.reason = Some(reason.clone());
                Ok(())
            }
            Event::Skipped { reason, .. } => {
                self.change(PhaseStatus::Skipped, at, 0)?;
                self.reason = Some(reason.clone());
                Ok(())
            }
            Event::UndoStarted { .. }
            | Event::UndoSpawned { .. }
            | Event::Undone { .. }
            | Event::UndoFailed { .. }
            | Event::UndoNotAttempted { .. } => self.apply_undo(event, at),
            Event::CarriedOver { from, .. } => {
                // Nothing was attempted: attempt 0, as for a skip.
                self.change(PhaseStatus::Completed, at, 0)?;
                self.reason = Some(Reason::CarriedOver(from.clone()));
                Ok(())
            }
        }
    }

    /// Applies an undo event: `completed → undoing → undone | undo_failed`,
    /// or marks the undo not attempted.
    fn apply_undo(&mut self, event: &Event, at: Timestamp) -> Result<(), EventError> {
        let attempt = self.attempt_count();
        let status = self.status;
        let Some(undo) = self.undo.as_ref() else {
            return Err(self.attempt_error("undo recorded but it has no `undo` command".to_owned()));
        };
        let (started, process) = (undo.started_at.is_some(), undo.process.is_some());
        match event {
            Event::UndoStarted { .. } => {
                if undo.not_attempted {
                    return Err(self.attempt_error("undo started after it was not attempted".to_owned()));
                }
                self.change(PhaseStatus::Undoing, at, attempt)?;
            }
            Event::UndoSpawned { .. } if status != PhaseStatus::Undoing || process => {
                return Err(self.attempt_error("undo spawned but it is not running".to_owned()));
            }
            Event::UndoNotAttempted { .. } if status != PhaseStatus::Completed || started || undo.not_attempted => {
                return Err(self.attempt_error(format!("undo not attempted while `{status}`")));
            }
            Event::Undone { .. } => self.change(PhaseStatus::Undone, at, attempt)?,
            Event::UndoFailed { .. } => self.change(PhaseStatus::UndoFailed, at, attempt)?,
            _ => {}
        }
        let Some(undo) = self.undo.as_mut() else {
            return Ok(());
        };
        match event {
            Event::UndoStarted { .. } => undo.started_at = Some(at),
            &Event::UndoSpawned { process, .. } => undo.process = Some(process),
            &Event::Undone { exit_code, .. } => {
                undo.finished_at = Some(at);
                undo.exit_code = exit_code;
            }
            Event::UndoFailed { exit_code, reason, .. } => {
                undo.finished_at = Some(at);
                undo.exit_code = *exit_code;
                undo.reason = Some(reason.clone());
            }
            Event::UndoNotAttempted { reason, .. } => {
                undo.not_attempted = true;
                undo.reason = Some(reason.clone());
            }
            _ => {}
        }
        Ok(())
    }

    fn claim(&mut self) -> Result<(), EventError> {
        if self.status != PhaseStatus::Pending || self.claimed {
            let status = self.status;
            return Err(self.attempt_error(format!("claimed while `{status}`")));
        }
        self.claimed = true;
        Ok(())
    }

    fn start(&mut self, attempt: u32, at: Timestamp) -> Result<(), EventError> {
        let expected = self.attempt_count() + 1;
        if attempt == 1 {
            // Only a pending instance (which has no attempts) may start.
            self.change(PhaseStatus::Running, at, 1)?;
        } else {
            if self.status != PhaseStatus::Running {
                return Err(
                    transition(&self.id, self.status, PhaseStatus::Running).map_or_else(Into::into, |_| {
                        self.attempt_error(format!("attempt {attempt} started before attempt 1"))
                    }),
                );
            }
            if attempt != expected || self.attempts.last().is_some_and(|a| a.finished_at.is_none()) {
                return Err(self.attempt_error(format!(
                    "attempt {attempt} started while attempt {} is {}",
                    expected - 1,
                    if expected == attempt { "running" } else { "the last" }
                )));
            }
        }
        self.attempts.push(Attempt {
            number: attempt,
            started_at: at,
            finished_at: None,
            exit_code: None,
            reason: None,
            process: None,
        });
        Ok(())
    }

    fn fail_attempt(
        &mut self,
        attempt: u32,
        exit_code: Option<i32>,
        reason: &Reason,
        at: Timestamp,
    ) -> Result<(), EventError> {
        if self.status != PhaseStatus::Running {
            let status = self.status;
            return Err(self.attempt_error(format!("attempt {attempt} failed but it is `{status}`")));
        }
        let Some(open) = self.open_attempt().filter(|a| a.number == attempt) else {
            return Err(self.attempt_error(format!("attempt {attempt} failed but it is not running")));
        };
        open.finished_at = Some(at);
        open.exit_code = exit_code;
        open.reason = Some(reason.clone());
        Ok(())
    }
}
