//! Recovery of releases whose run stopped without finishing them.
//!
//! A release log that has no finish line, found by a command that holds
//! the lock, belongs to a run that died (nobody else can be writing it). It
//! is repaired only by appending: each `running` instance becomes `failed`
//! and each `pending` one `skipped`, both with reason `interrupted`, then
//! the finish line, with one sync; then the index's finish line. The same
//! events end a run stopped by Ctrl-C ([`Journal::interrupt`]).
//!
//! [`Journal::interrupt`]: super::Journal::interrupt

use std::fmt;

use serde::Serialize;

use super::release::{Release, ReleaseId};
use crate::engine::{Event, Reason};

/// What recovery did to one release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Recovered {
    /// The release.
    pub release: ReleaseId,
    /// The instances that were running, now `failed` (interrupted).
    pub failed: Vec<String>,
    /// The instances that had not started, now `skipped` (interrupted).
    pub skipped: Vec<String>,
}

impl fmt::Display for Recovered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "release {} was interrupted", self.release)?;
        let mut parts = Vec::new();
        if !self.failed.is_empty() {
            parts.push(format!("{} marked failed (interrupted)", self.failed.join(", ")));
        }
        match self.skipped.len() {
            0 => {}
            1 => parts.push("1 not-started instance skipped".to_owned()),
            n => parts.push(format!("{n} not-started instances skipped")),
        }
        if !parts.is_empty() {
            write!(f, ": {}", parts.join(", "))?;
        }
        Ok(())
    }
}

/// The events that end `release` as interrupted, and their description.
pub(crate) fn interrupt_events(release: &Release) -> (Vec<Event>, Recovered) {
    let (running, pending) = release.unsettled();
    let name = |&position: &usize| release.instances()[position].id().to_owned();
    let recovered = Recovered {
        release: release.id,
        failed: running.iter().map(name).collect(),
        skipped: pending.iter().map(name).collect(),
    };
    let events = running
        .into_iter()
        .map(|instance| Event::Failed {
            instance,
            exit_code: None,
            reason: Reason::Interrupted,
        })
        .chain(pending.into_iter().map(|instance| Event::Skipped {
            instance,
            reason: Reason::Interrupted,
        }))
        .collect();
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
            skipped: vec!["a".into(), "b".into(), "c".into()],
        };
        assert_eq!(
            recovered.to_string(),
            "release rel-20261125-170229123 was interrupted: build[api] marked failed (interrupted), 3 not-started instances skipped"
        );
        let recovered = Recovered {
            release,
            failed: vec![],
            skipped: vec!["a".into()],
        };
        assert_eq!(
            recovered.to_string(),
            "release rel-20261125-170229123 was interrupted: 1 not-started instance skipped"
        );
    }
}
