//! The status of one instance and the one function that changes it.
//!
//! ```text
//! pending ──▶ running ──▶ completed
//!    │           └──────▶ failed
//!    └──────▶ skipped
//! ```
//!
//! Every other move is an [`IllegalTransition`]. Nothing else in the crate
//! assigns a status: a [`Release`](super::Release) changes one only through
//! [`transition`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where an instance is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhaseStatus {
    /// Not started yet.
    Pending,
    /// Its command is running (possibly a retry).
    Running,
    /// Its command exited 0, or it is a marker phase.
    Completed,
    /// Its last attempt failed, or it was interrupted while running.
    Failed,
    /// It never ran: its condition is false, something it needs failed, or
    /// the run was interrupted first.
    Skipped,
}

impl PhaseStatus {
    /// Every status, in life order.
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::Skipped,
    ];

    /// The lowercase name, as stored and shown.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

impl fmt::Display for PhaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status change that the state machine does not allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IllegalTransition {
    /// The instance, such as `build[api]`.
    pub instance: String,
    /// Its status.
    pub from: PhaseStatus,
    /// The status asked for.
    pub to: PhaseStatus,
}

impl fmt::Display for IllegalTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "illegal transition `{}` → `{}` for `{}`",
            self.from, self.to, self.instance
        )
    }
}

impl std::error::Error for IllegalTransition {}

/// Moves `instance` from `from` to `to`: the only way a status changes.
///
/// The legal moves are exactly `pending → running`, `running → completed`,
/// `running → failed`, `pending → skipped` and `pending → completed` (an
/// instance carried over from the release a `resume` resumes, which does
/// not run: [`Event::CarriedOver`](crate::engine::Event::CarriedOver));
/// staying put is not a move.
///
/// # Errors
///
/// Any other pair, naming the instance.
pub fn transition(instance: &str, from: PhaseStatus, to: PhaseStatus) -> Result<PhaseStatus, IllegalTransition> {
    use PhaseStatus::{Completed, Failed, Pending, Running, Skipped};
    match (from, to) {
        (Pending, Running | Skipped | Completed) | (Running, Completed | Failed) => Ok(to),
        _ => Err(IllegalTransition {
            instance: instance.to_owned(),
            from,
            to,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::PhaseStatus::{Completed, Failed, Pending, Running, Skipped};
    use super::*;

    /// Every one of the 25 pairs, with the expected answer written out.
    #[test]
    fn every_pair() {
        let table = [
            (Pending, Pending, false),
            (Pending, Running, true),
            (Pending, Completed, true),
            (Pending, Failed, false),
            (Pending, Skipped, true),
            (Running, Pending, false),
            (Running, Running, false),
            (Running, Completed, true),
            (Running, Failed, true),
            (Running, Skipped, false),
            (Completed, Pending, false),
            (Completed, Running, false),
            (Completed, Completed, false),
            (Completed, Failed, false),
            (Completed, Skipped, false),
            (Failed, Pending, false),
            (Failed, Running, false),
            (Failed, Completed, false),
            (Failed, Failed, false),
            (Failed, Skipped, false),
            (Skipped, Pending, false),
            (Skipped, Running, false),
            (Skipped, Completed, false),
            (Skipped, Failed, false),
            (Skipped, Skipped, false),
        ];
        assert_eq!(table.len(), 25);
        for from in PhaseStatus::ALL {
            for to in PhaseStatus::ALL {
                assert!(
                    table.iter().any(|&(f, t, _)| f == from && t == to),
                    "{from} → {to} missing"
                );
            }
        }
        for (from, to, legal) in table {
            let result = transition("build[api]", from, to);
            if legal {
                assert_eq!(result, Ok(to), "{from} → {to}");
            } else {
                let error = result.expect_err("illegal");
                assert_eq!(
                    error,
                    IllegalTransition {
                        instance: "build[api]".into(),
                        from,
                        to
                    }
                );
            }
        }
    }

    #[test]
    fn message_names_the_instance() {
        let error = transition("build[api]", Running, Pending).unwrap_err();
        assert_eq!(
            error.to_string(),
            "illegal transition `running` → `pending` for `build[api]`"
        );
    }
}
