//! Releases: the record of one run, built by applying engine events.
//!
//! A [`Release`] is created with every instance `pending` and changes only
//! through [`Release::apply`], which turns each [`Event`] into a
//! [`transition`] (rejecting illegal moves) and keeps the attempts, exit
//! codes, reasons and the ordered list of transitions. Storage replays the
//! same events to rebuild a release from its log, so a release read back is
//! exactly the release that was recorded.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use super::clock::Timestamp;
use super::status::{IllegalTransition, PhaseStatus, transition};
use crate::engine::{Event, Reason};

/// A release id: `rel-YYYYMMDD-HHMMSSmmm` from the clock (UTC), with a
/// suffix `-001` … `-999` when that millisecond is already taken (or the
/// clock went back).
///
/// Ids are allocated under the state lock as the larger of the id of "now"
/// and the successor of the newest existing id, so they are unique and
/// strictly increasing; comparing ids, or their text, is comparing their
/// age.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReleaseId {
    at: Timestamp,
    sequence: u16,
}

/// The largest suffix; the successor of `…-999` is the next millisecond.
const MAX_SEQUENCE: u16 = 999;

impl ReleaseId {
    /// The id for a run starting at `at`, with no suffix.
    #[must_use]
    pub fn from_time(at: Timestamp) -> Self {
        Self { at, sequence: 0 }
    }

    /// The smallest id greater than this one.
    #[must_use]
    pub fn successor(self) -> Self {
        if self.sequence < MAX_SEQUENCE {
            Self {
                at: self.at,
                sequence: self.sequence + 1,
            }
        } else {
            Self::from_time(Timestamp::from_millis(self.at.as_millis() + 1))
        }
    }

    /// The id for a run starting at `now` when `newest` is the newest id in
    /// the state: the id of `now`, or the successor of `newest` if that is
    /// not greater.
    #[must_use]
    pub fn allocate(now: Timestamp, newest: Option<Self>) -> Self {
        let id = Self::from_time(now);
        match newest {
            Some(newest) if newest >= id => newest.successor(),
            _ => id,
        }
    }

    /// The time in the id (of the clock when it was allocated, or later).
    #[must_use]
    pub fn time(self) -> Timestamp {
        self.at
    }
}

impl fmt::Display for ReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rel-{}", self.at.compact())?;
        if self.sequence > 0 {
            write!(f, "-{:03}", self.sequence)?;
        }
        Ok(())
    }
}

/// Text that is not a release id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidReleaseId(pub String);

impl fmt::Display for InvalidReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid release id `{}` (expected `rel-YYYYMMDD-HHMMSSmmm`)", self.0)
    }
}

impl std::error::Error for InvalidReleaseId {}

impl FromStr for ReleaseId {
    type Err = InvalidReleaseId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidReleaseId(text.to_owned());
        let rest = text.strip_prefix("rel-").ok_or_else(invalid)?;
        let bytes = rest.as_bytes();
        let digits = |range: std::ops::Range<usize>| bytes.get(range).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
        if !(digits(0..8) && bytes.get(8) == Some(&b'-') && digits(9..18)) {
            return Err(invalid());
        }
        let sequence = match &rest[18..] {
            "" => 0,
            suffix => {
                let number = suffix.strip_prefix('-').filter(|n| n.len() == 3).ok_or_else(invalid)?;
                let sequence: u16 = number.parse().map_err(|_| invalid())?;
                if sequence == 0 || !digits(19..22) {
                    return Err(invalid());
                }
                sequence
            }
        };
        let d = |range: std::ops::Range<usize>| &rest[range];
        let time = format!(
            "{}-{}-{}T{}:{}:{}.{}Z",
            d(0..4),
            d(4..6),
            d(6..8),
            d(9..11),
            d(11..13),
            d(13..15),
            d(15..18)
        );
        let at = Timestamp::parse(&time).map_err(|_| invalid())?;
        Ok(Self { at, sequence })
    }
}

impl Serialize for ReleaseId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ReleaseId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

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

/// The record of one run of a workflow in an env.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Release {
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
    /// When it finished; `None` while it runs (or if its writer died and it
    /// was not recovered yet).
    pub finished_at: Option<Timestamp>,
    instances: Vec<InstanceRecord>,
}

/// What a release is about, before anything runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseHeader {
    /// Its id.
    pub id: ReleaseId,
    /// The pipeline's name.
    pub pipeline: String,
    /// The workflow run.
    pub workflow: String,
    /// The env.
    pub env: String,
    /// The version.
    pub version: String,
    /// See [`Release::previous`].
    pub previous: Option<ReleaseId>,
    /// See [`Release::rollback_of`].
    pub rollback_of: Option<ReleaseId>,
    /// When it started.
    pub started_at: Timestamp,
}

impl Release {
    /// A release with every instance `pending`, in plan order.
    #[must_use]
    pub fn new(header: ReleaseHeader, instances: impl IntoIterator<Item = String>) -> Self {
        Self {
            id: header.id,
            pipeline: header.pipeline,
            workflow: header.workflow,
            env: header.env,
            version: header.version,
            previous: header.previous,
            rollback_of: header.rollback_of,
            started_at: header.started_at,
            finished_at: None,
            instances: instances.into_iter().map(InstanceRecord::new).collect(),
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

    /// The release's status, derived from its instances: failed if any
    /// failed; completed once finished with every instance completed or
    /// skipped for its condition (failed if finished otherwise); pending
    /// while nothing has started; running otherwise.
    #[must_use]
    pub fn status(&self) -> ReleaseStatus {
        if self.instances.iter().any(|i| i.status == PhaseStatus::Failed) {
            return ReleaseStatus::Failed;
        }
        if self.is_finished() {
            let done = self.instances.iter().all(|i| {
                i.status == PhaseStatus::Completed
                    || (i.status == PhaseStatus::Skipped && i.reason == Some(Reason::Condition))
            });
            return if done {
                ReleaseStatus::Completed
            } else {
                ReleaseStatus::Failed
            };
        }
        if self.instances.iter().all(|i| i.status == PhaseStatus::Pending) {
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

    /// The instances not yet done: `(running, pending)` positions.
    #[must_use]
    pub fn unsettled(&self) -> (Vec<usize>, Vec<usize>) {
        let mut running = Vec::new();
        let mut pending = Vec::new();
        for (position, instance) in self.instances.iter().enumerate() {
            match instance.status {
                PhaseStatus::Running => running.push(position),
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
                instance: instance.id.clone(),
                status: instance.status,
            });
        }
        self.finished_at = Some(at);
        Ok(())
    }
}

/// One instance of a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InstanceRecord {
    id: String,
    status: PhaseStatus,
    attempts: Vec<Attempt>,
    exit_code: Option<i32>,
    reason: Option<Reason>,
    transitions: Vec<Transition>,
    /// A durable claim says its command may have started (see
    /// [`Event::Claimed`]); only recovery looks at it.
    #[serde(skip)]
    claimed: bool,
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
    fn new(id: String) -> Self {
        Self {
            id,
            status: PhaseStatus::Pending,
            attempts: Vec::new(),
            exit_code: None,
            reason: None,
            transitions: Vec::new(),
            claimed: false,
        }
    }

    /// `build[api]` or `migrate`.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
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
    pub fn is_claimed(&self) -> bool {
        self.claimed && self.status == PhaseStatus::Pending
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

    fn apply(&mut self, event: &Event, at: Timestamp) -> Result<(), EventError> {
        match event {
            Event::Claimed { .. } => {
                if self.status != PhaseStatus::Pending || self.claimed {
                    let status = self.status;
                    return Err(self.attempt_error(format!("claimed while `{status}`")));
                }
                self.claimed = true;
            }
            Event::Started { attempt, .. } => {
                let expected = self.attempt_count() + 1;
                if *attempt == 1 {
                    // Only a pending instance (which has no attempts) may start.
                    self.change(PhaseStatus::Running, at, 1)?;
                } else {
                    if self.status != PhaseStatus::Running {
                        return Err(transition(&self.id, self.status, PhaseStatus::Running)
                            .map_or_else(Into::into, |_| {
                                self.attempt_error(format!("attempt {attempt} started before attempt 1"))
                            }));
                    }
                    if *attempt != expected || self.attempts.last().is_some_and(|a| a.finished_at.is_none()) {
                        return Err(self.attempt_error(format!(
                            "attempt {attempt} started while attempt {} is {}",
                            expected - 1,
                            if expected == *attempt { "running" } else { "the last" }
                        )));
                    }
                }
                self.attempts.push(Attempt {
                    number: *attempt,
                    started_at: at,
                    finished_at: None,
                    exit_code: None,
                    reason: None,
                });
            }
            Event::AttemptFailed {
                attempt,
                exit_code,
                reason,
                ..
            } => {
                if self.status != PhaseStatus::Running {
                    let status = self.status;
                    return Err(self.attempt_error(format!("attempt {attempt} failed but it is `{status}`")));
                }
                let Some(open) = self.open_attempt().filter(|a| a.number == *attempt) else {
                    return Err(self.attempt_error(format!("attempt {attempt} failed but it is not running")));
                };
                open.finished_at = Some(at);
                open.exit_code = *exit_code;
                open.reason = Some(reason.clone());
            }
            Event::Completed { exit_code, .. } => {
                self.change(PhaseStatus::Completed, at, self.attempt_count())?;
                let Some(open) = self.open_attempt() else {
                    return Err(self.attempt_error("completed with no attempt running".to_owned()));
                };
                open.finished_at = Some(at);
                open.exit_code = *exit_code;
                self.exit_code = *exit_code;
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
            }
            Event::Skipped { reason, .. } => {
                self.change(PhaseStatus::Skipped, at, 0)?;
                self.reason = Some(reason.clone());
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: u64) -> Timestamp {
        Timestamp::from_millis(1_795_626_149_000 + millis)
    }

    fn release(ids: &[&str]) -> Release {
        let header = ReleaseHeader {
            id: ReleaseId::from_time(at(0)),
            pipeline: "webapp".into(),
            workflow: "deploy".into(),
            env: "prod".into(),
            version: "v1".into(),
            previous: None,
            rollback_of: None,
            started_at: at(0),
        };
        Release::new(header, ids.iter().map(|&id| id.to_owned()))
    }

    #[test]
    fn ids_print_parse_and_order() {
        let id = ReleaseId::from_time(Timestamp::parse("2026-11-25T17:02:29.123Z").unwrap());
        assert_eq!(id.to_string(), "rel-20261125-170229123");
        assert_eq!(id.successor().to_string(), "rel-20261125-170229123-001");
        assert_eq!(
            "rel-20261125-170229123-001".parse::<ReleaseId>().unwrap(),
            id.successor()
        );
        assert_eq!("rel-20261125-170229123".parse::<ReleaseId>().unwrap(), id);
        for bad in [
            "rel-2026",
            "rel-20261125-170229123-000",
            "rel-20261125-170229123-1",
            "x",
            "rel-20261325-170229123",
        ] {
            assert!(bad.parse::<ReleaseId>().is_err(), "{bad}");
        }
        let mut last = id;
        for _ in 0..1200 {
            let next = last.successor();
            assert!(
                next > last && next.to_string() > last.to_string(),
                "{next} after {last}"
            );
            last = next;
        }
        assert_eq!(last.to_string(), "rel-20261125-170229124-200");
    }

    #[test]
    fn allocation_never_goes_back() {
        let newest = ReleaseId::from_time(at(500));
        assert_eq!(
            ReleaseId::allocate(at(900), Some(newest)),
            ReleaseId::from_time(at(900))
        );
        assert_eq!(ReleaseId::allocate(at(500), Some(newest)), newest.successor());
        assert_eq!(ReleaseId::allocate(at(100), Some(newest)), newest.successor());
        assert_eq!(ReleaseId::allocate(at(100), None), ReleaseId::from_time(at(100)));
    }

    #[test]
    fn events_become_transitions() {
        let mut release = release(&["build[api]", "push[api]", "finalize"]);
        assert_eq!(release.status(), ReleaseStatus::Pending);
        release
            .apply(
                &[Event::Started {
                    instance: 0,
                    attempt: 1,
                }],
                at(1),
            )
            .unwrap();
        assert_eq!(release.status(), ReleaseStatus::Running);
        let failed = Event::AttemptFailed {
            instance: 0,
            attempt: 1,
            exit_code: Some(2),
            reason: Reason::ExitCode,
        };
        release.apply(&[failed], at(2)).unwrap();
        assert_eq!(release.instances()[0].status(), PhaseStatus::Running);
        release
            .apply(
                &[Event::Started {
                    instance: 0,
                    attempt: 2,
                }],
                at(3),
            )
            .unwrap();
        release
            .apply(
                &[
                    Event::Completed {
                        instance: 0,
                        exit_code: Some(0),
                    },
                    Event::Skipped {
                        instance: 1,
                        reason: Reason::Condition,
                    },
                    Event::Started {
                        instance: 2,
                        attempt: 1,
                    },
                ],
                at(4),
            )
            .unwrap();
        release
            .apply(
                &[Event::Completed {
                    instance: 2,
                    exit_code: None,
                }],
                at(4),
            )
            .unwrap();
        let build = &release.instances()[0];
        assert_eq!(build.attempts().len(), 2);
        assert_eq!(build.attempts()[0].exit_code, Some(2));
        assert_eq!(build.exit_code(), Some(0));
        let steps: Vec<_> = build.transitions().iter().map(|t| (t.from, t.to, t.attempt)).collect();
        assert_eq!(
            steps,
            [
                (PhaseStatus::Pending, PhaseStatus::Running, 1),
                (PhaseStatus::Running, PhaseStatus::Completed, 2)
            ]
        );
        assert_eq!(release.instances()[1].transitions()[0].attempt, 0);
        assert_eq!(release.status(), ReleaseStatus::Running);
        release.finish(at(5)).unwrap();
        assert_eq!(release.status(), ReleaseStatus::Completed);
        assert!(matches!(release.apply(&[], at(6)), Err(EventError::Finished { .. })));
    }

    #[test]
    fn illegal_events_are_rejected_whole() {
        let mut release = release(&["build[api]", "rollout[api]"]);
        let before = release.clone();
        let error = release
            .apply(
                &[
                    Event::Started {
                        instance: 0,
                        attempt: 1,
                    },
                    Event::Completed {
                        instance: 1,
                        exit_code: Some(0),
                    },
                ],
                at(1),
            )
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "illegal transition `pending` → `completed` for `rollout[api]`"
        );
        assert_eq!(release, before, "nothing applied");
        let error = release
            .apply(
                &[Event::Skipped {
                    instance: 7,
                    reason: Reason::Condition,
                }],
                at(1),
            )
            .unwrap_err();
        assert!(matches!(error, EventError::UnknownInstance { position: 7, count: 2 }));
        release
            .apply(
                &[Event::Started {
                    instance: 0,
                    attempt: 1,
                }],
                at(1),
            )
            .unwrap();
        let error = release
            .apply(
                &[Event::Started {
                    instance: 0,
                    attempt: 2,
                }],
                at(2),
            )
            .unwrap_err();
        assert!(matches!(error, EventError::Attempt { .. }), "{error}");
        let error = release
            .apply(
                &[Event::Started {
                    instance: 0,
                    attempt: 1,
                }],
                at(2),
            )
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "illegal transition `running` → `running` for `build[api]`"
        );
        let error = release.finish(at(3)).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("release {} cannot finish: `build[api]` is still `running`", release.id)
        );
    }

    #[test]
    fn failure_and_unfinished_statuses() {
        let mut release = release(&["a", "b"]);
        release
            .apply(
                &[Event::Started {
                    instance: 0,
                    attempt: 1,
                }],
                at(1),
            )
            .unwrap();
        release
            .apply(
                &[Event::Failed {
                    instance: 0,
                    exit_code: Some(1),
                    reason: Reason::ExitCode,
                }],
                at(2),
            )
            .unwrap();
        assert_eq!(release.status(), ReleaseStatus::Failed);
        release
            .apply(
                &[Event::Skipped {
                    instance: 1,
                    reason: Reason::Failed("a".into()),
                }],
                at(2),
            )
            .unwrap();
        release.finish(at(3)).unwrap();
        assert_eq!(release.status(), ReleaseStatus::Failed);

        let mut interrupted = self::release(&["a"]);
        interrupted
            .apply(
                &[Event::Skipped {
                    instance: 0,
                    reason: Reason::Interrupted,
                }],
                at(1),
            )
            .unwrap();
        interrupted.finish(at(1)).unwrap();
        assert_eq!(
            interrupted.status(),
            ReleaseStatus::Failed,
            "finished without completing"
        );
    }
}
