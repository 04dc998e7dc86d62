//! Recovery of releases whose run stopped without finishing them.
//!
//! A release log that has no finish line, found by a command that holds
//! the lock, belongs to a run that died (nobody else can be writing it). It
//! is repaired only by appending: each `running` instance becomes `failed`
//! and each `pending` one `skipped`, both with reason `interrupted`, then
//! the finish line, with one sync; then the index's finish line. The same
//! events end a run stopped by Ctrl-C ([`Journal::interrupt`]).
//!
//! A *claimed* pending instance is the exception. Its `Started` line is
//! written before its command starts but not synced (its durable claim
//! stands for it), so the log is exact unless the machine itself crashed:
//! when the log was written in an earlier boot (or the boot is unknown), a
//! claimed instance may have started with its `Started` line lost, and it
//! becomes `failed` (interrupted) like a running one, through `running`.
//!
//! A run killed outright may have left commands running: before marking
//! their instances interrupted, recovery stops their process groups (see
//! `orphans`), and says so.
//!
//! An instance `undoing` (its `undo` command ran) is handled as a running
//! one: its process group is stopped, and it becomes `undo_failed`
//! (interrupted). When the release undoes a failure (its log has `undo`
//! commands) and it failed, each completed instance whose undo did not
//! run is recorded not attempted (interrupted): recovery runs no command.
//!
//! [`Journal::interrupt`]: super::Journal::interrupt

use std::fmt;

use serde::Serialize;

use super::id::ReleaseId;
use super::orphans::Stopped;
use super::release::Release;
use super::status::PhaseStatus;
use crate::engine::{Event, Reason};

/// What recovery did to one release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Recovered {
    /// The release.
    pub release: ReleaseId,
    /// The instances that were running, now `failed` (interrupted).
    pub failed: Vec<String>,
    /// Of `failed`, those only claimed when the machine stopped: they may
    /// not have started at all.
    pub maybe_started: Vec<String>,
    /// The instances that had not started, now `skipped` (interrupted).
    pub skipped: Vec<String>,
    /// The instances whose undo was running, now `undo_failed`
    /// (interrupted).
    pub undo_failed: Vec<String>,
    /// The completed instances whose undo never ran, now recorded not
    /// attempted (interrupted).
    pub undo_not_attempted: Vec<String>,
    /// Of `skipped`, the instances of `finally` phases: they never ran
    /// (a run killed outright runs no `finally` phase).
    pub finally_not_run: Vec<String>,
    /// The process groups the dead run left running, stopped before the
    /// release was marked interrupted.
    pub stopped: Vec<Stopped>,
    /// The host the dead run ran on, when the state records it (the
    /// PostgreSQL state's lock holders, shared by every machine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl fmt::Display for Recovered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "release {} was interrupted", self.release)?;
        if let Some(host) = &self.host {
            write!(f, " on host `{host}`")?;
        }
        let mut parts: Vec<String> = self.stopped.iter().map(ToString::to_string).collect();
        if !self.failed.is_empty() {
            parts.push(format!("{} marked failed (interrupted)", self.failed.join(", ")));
        }
        if !self.maybe_started.is_empty() {
            // With a host (the shared state), the run died, whatever the
            // machine did: its writes not yet committed died with it.
            let stopped = if self.host.is_some() { "the run" } else { "the machine" };
            parts.push(format!(
                "{stopped} stopped as {} {} about to start, so {} may not have run",
                self.maybe_started.join(", "),
                if self.maybe_started.len() == 1 { "was" } else { "were" },
                if self.maybe_started.len() == 1 { "it" } else { "they" },
            ));
        }
        match self.skipped.len() {
            0 => {}
            1 => parts.push("1 not-started instance skipped".to_owned()),
            n => parts.push(format!("{n} not-started instances skipped")),
        }
        if !self.undo_failed.is_empty() {
            parts.push(format!(
                "the undo of {} marked failed (interrupted)",
                self.undo_failed.join(", ")
            ));
        }
        if !self.undo_not_attempted.is_empty() {
            parts.push(format!("not undone: {}", self.undo_not_attempted.join(", ")));
        }
        if !self.finally_not_run.is_empty() {
            parts.push(format!(
                "`finally` {} not run: {}",
                if self.finally_not_run.len() == 1 {
                    "phase"
                } else {
                    "phases"
                },
                self.finally_not_run.join(", ")
            ));
        }
        if !parts.is_empty() {
            write!(f, ": {}", parts.join(", "))?;
        }
        Ok(())
    }
}

/// The events that end `release` as interrupted, and their description.
/// `lost_writes`: the machine may have crashed since the log was written,
/// so claimed instances may have started (see the module docs).
pub(crate) fn interrupt_events(release: &Release, lost_writes: bool) -> (Vec<Event>, Recovered) {
    let (running, pending) = release.unsettled();
    let (maybe_started, pending): (Vec<usize>, Vec<usize>) = pending
        .into_iter()
        .partition(|&position| lost_writes && release.instances()[position].is_claimed());
    let instances = release.instances();
    let name = |&position: &usize| instances[position].id().to_owned();
    let (undoing, running): (Vec<usize>, Vec<usize>) = running
        .into_iter()
        .partition(|&position| instances[position].status() == PhaseStatus::Undoing);
    let mut failed: Vec<usize> = running.iter().chain(&maybe_started).copied().collect();
    failed.sort_unstable();
    // The release fails, and so would have been undone.
    let fails = instances
        .iter()
        .any(|i| !i.finally && !matches!(i.status(), PhaseStatus::Completed | PhaseStatus::Skipped));
    let not_attempted: Vec<usize> = (0..instances.len())
        .filter(|&position| fails && instances[position].undo_pending())
        .collect();
    let recovered = Recovered {
        release: release.id,
        failed: failed.iter().map(name).collect(),
        maybe_started: maybe_started.iter().map(name).collect(),
        skipped: pending.iter().map(name).collect(),
        undo_failed: undoing.iter().map(name).collect(),
        undo_not_attempted: not_attempted.iter().map(name).collect(),
        finally_not_run: pending
            .iter()
            .filter(|&&position| release.instances()[position].finally)
            .map(name)
            .collect(),
        stopped: Vec::new(),
        host: None,
    };
    let mut events: Vec<Event> = undoing
        .into_iter()
        .map(|instance| Event::UndoFailed {
            instance,
            exit_code: None,
            reason: Reason::Interrupted,
        })
        .collect();
    events.extend(not_attempted.into_iter().map(|instance| Event::UndoNotAttempted {
        instance,
        reason: Reason::Interrupted,
    }));
    for instance in failed {
        if maybe_started.contains(&instance) {
            events.push(Event::Started { instance, attempt: 1 });
        }
        events.push(Event::Failed {
            instance,
            exit_code: None,
            reason: Reason::Interrupted,
        });
    }
    events.extend(pending.into_iter().map(|instance| Event::Skipped {
        instance,
        reason: Reason::Interrupted,
    }));
    (events, recovered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message() {
        let release: ReleaseId = "rel-20261125-170229123".parse().unwrap();
        let recovered = Recovered {
            release,
            failed: vec!["build[api]".into()],
            maybe_started: vec![],
            skipped: vec!["a".into(), "b".into(), "c".into()],
            undo_failed: vec![],
            undo_not_attempted: vec![],
            finally_not_run: vec![],
            stopped: vec![],
            host: None,
        };
        assert_eq!(
            recovered.to_string(),
            "release rel-20261125-170229123 was interrupted: build[api] marked failed (interrupted), 3 not-started instances skipped"
        );
        let recovered = Recovered {
            release,
            failed: vec![],
            maybe_started: vec![],
            skipped: vec!["a".into()],
            undo_failed: vec![],
            undo_not_attempted: vec![],
            finally_not_run: vec![],
            stopped: vec![Stopped {
                instance: "migrate".into(),
                group: 4242,
                processes: 1,
                killed: false,
            }],
            host: Some("ci-7".into()),
        };
        assert_eq!(
            recovered.to_string(),
            "release rel-20261125-170229123 was interrupted on host `ci-7`: migrate was still running (process group 4242) and was stopped (`SIGTERM`), 1 not-started instance skipped"
        );
        let recovered = Recovered {
            release,
            failed: vec!["a".into(), "b".into()],
            maybe_started: vec!["b".into()],
            skipped: vec![],
            undo_failed: vec![],
            undo_not_attempted: vec![],
            finally_not_run: vec![],
            stopped: vec![],
            host: None,
        };
        assert_eq!(
            recovered.to_string(),
            "release rel-20261125-170229123 was interrupted: a, b marked failed (interrupted), the machine stopped as b was about to start, so it may not have run"
        );
        let recovered = Recovered {
            release,
            failed: vec!["deploy".into()],
            maybe_started: vec![],
            skipped: vec!["notify".into(), "cleanup".into()],
            undo_failed: vec![],
            undo_not_attempted: vec![],
            finally_not_run: vec!["notify".into(), "cleanup".into()],
            stopped: vec![],
            host: None,
        };
        assert_eq!(
            recovered.to_string(),
            "release rel-20261125-170229123 was interrupted: deploy marked failed (interrupted), 2 not-started instances skipped, `finally` phases not run: notify, cleanup"
        );
    }
}
