//! How a [`Reason`] is stored in a release log.

use serde::{Deserialize, Serialize};

use crate::engine::Reason;

/// [`Reason`] as stored: the same variants, spelled as RON identifiers
/// (`ExitCode`, `Failed("build[api]")`), so the engine's serde names do not
/// leak into the file format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoredReason {
    Condition,
    Unchanged,
    ExitCode,
    Timeout,
    Spawn(String),
    Interrupted,
    Failed(String),
    /// Version 4 on.
    Log(String),
    /// Version 5 on, as the one below.
    UndoFailed(String),
    CarriedOver(String),
}

impl From<&Reason> for StoredReason {
    fn from(reason: &Reason) -> Self {
        match reason {
            Reason::Condition => Self::Condition,
            Reason::Unchanged => Self::Unchanged,
            Reason::ExitCode => Self::ExitCode,
            Reason::Timeout => Self::Timeout,
            Reason::Spawn(error) => Self::Spawn(error.clone()),
            Reason::Interrupted => Self::Interrupted,
            Reason::Failed(instance) => Self::Failed(instance.clone()),
            Reason::Log(error) => Self::Log(error.clone()),
            Reason::UndoFailed(instance) => Self::UndoFailed(instance.clone()),
            Reason::CarriedOver(release) => Self::CarriedOver(release.clone()),
        }
    }
}

impl From<&StoredReason> for Reason {
    fn from(reason: &StoredReason) -> Self {
        match reason {
            StoredReason::Condition => Self::Condition,
            StoredReason::Unchanged => Self::Unchanged,
            StoredReason::ExitCode => Self::ExitCode,
            StoredReason::Timeout => Self::Timeout,
            StoredReason::Spawn(error) => Self::Spawn(error.clone()),
            StoredReason::Interrupted => Self::Interrupted,
            StoredReason::Failed(instance) => Self::Failed(instance.clone()),
            StoredReason::Log(error) => Self::Log(error.clone()),
            StoredReason::UndoFailed(instance) => Self::UndoFailed(instance.clone()),
            StoredReason::CarriedOver(release) => Self::CarriedOver(release.clone()),
        }
    }
}
