//! The status of one instance and the one function that changes it.
//!
//! ```text
//! pending ──▶ running ──▶ completed ──▶ undoing ──▶ undone
//!    │           └──────▶ failed                └──────▶ undo_failed
//!    └──────▶ skipped
//! ```
//!
//! The last three are those of a failed release that is undone (`undo on
//! failure`): a completed instance with an `undo` command is `undoing`
//! while that command runs, then `undone` or `undo_failed`.
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
    /// It had completed, and its `undo` command is running.
    Undoing,
    /// Its `undo` command exited 0.
    Undone,
    /// Its `undo` command failed (or was interrupted).
    #[serde(rename = "undo_failed")]
    UndoFailed,
}

impl PhaseStatus {
    /// Every status, in life order.
    pub const ALL: [Self; 8] = [
        Self::Pending,
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::Skipped,
        Self::Undoing,
        Self::Undone,
        Self::UndoFailed,
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
            Self::Undoing => "undoing",
            Self::Undone => "undone",
            Self::UndoFailed => "undo_failed",
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
/// `running → failed`, `pending → skipped`, `pending → completed` (an
/// instance carried over from the release a `resume` resumes, which does
/// not run: [`Event::CarriedOver`](crate::engine::Event::CarriedOver)),
/// `completed → undoing`, `undoing → undone` and `undoing → undo_failed`;
/// staying put is not a move.
///
/// # Errors
///
/// Any other pair, naming the instance.
pub fn transition(instance: &str, from: PhaseStatus, to: PhaseStatus) -> Result<PhaseStatus, IllegalTransition> {
    use PhaseStatus::{Completed, Failed, Pending, Running, Skipped, UndoFailed, Undoing, Undone};
    match (from, to) {
        (Pending, Running | Skipped | Completed)
        | (Running, Completed | Failed)
        | (Completed, Undoing)
        | (Undoing, Undone | UndoFailed) => Ok(to),
        _ => Err(IllegalTransition {
            instance: instance.to_owned(),
            from,
            to,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::PhaseStatus::{Completed, Failed, Pending, Running, Skipped, UndoFailed, Undoing, Undone};
    use super::*;

    /// Every one of the 64 pairs, with the expected answer written out: one
    /// row per `from`, one column per `to`, in [`PhaseStatus::ALL`]'s order
    /// (`X` legal, `.` illegal).
    #[test]
    fn every_pair() {
        let table = [
            // pending running completed failed skipped undoing undone undo_failed
            (Pending, ". X X . X . . ."),
            (Running, ". . X X . . . ."),
            (Completed, ". . . . . X . ."),
            (Failed, ". . . . . . . ."),
            (Skipped, ". . . . . . . ."),
            (Undoing, ". . . . . . X X"),
            (Undone, ". . . . . . . ."),
            (UndoFailed, ". . . . . . . ."),
        ];
        assert_eq!(table.map(|(from, _)| from), PhaseStatus::ALL);
        let mut legal = 0;
        for (from, row) in table {
            let cells: Vec<&str> = row.split(' ').collect();
            assert_eq!(cells.len(), 8, "{from}");
            for (to, cell) in PhaseStatus::ALL.into_iter().zip(cells) {
                let result = transition("build[api]", from, to);
                if cell == "X" {
                    legal += 1;
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
        assert_eq!(legal, 8);
    }

    #[test]
    fn message_names_the_instance() {
        let error = transition("build[api]", Running, Pending).unwrap_err();
        assert_eq!(
            error.to_string(),
            "illegal transition `running` → `pending` for `build[api]`"
        );
    }

    #[test]
    fn names_as_stored_and_shown() {
        let names: Vec<&str> = PhaseStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "pending",
                "running",
                "completed",
                "failed",
                "skipped",
                "undoing",
                "undone",
                "undo_failed"
            ]
        );
        for status in PhaseStatus::ALL {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }
}
