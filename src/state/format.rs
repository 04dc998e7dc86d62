//! The file formats: one RON value per line.
//!
//! Every state file starts with a format line, `Format(version: 6)`, then
//! holds one value per line, each ending in `\n`, only ever appended. A
//! release log (`releases/<id>.ron`) continues with a [`LogLine::Release`]
//! header, one line per event and at last a [`LogLine::Finished`] line. An
//! env's index (`envs/<env>/index.ron`) holds an [`IndexLine::Reserved`]
//! line before a release's log is created, an [`IndexLine::Started`] line
//! once it is, and an [`IndexLine::Finished`] line (with the env's live
//! state after a deploy or rollback) when it ends. Files of versions 1 to
//! 5 read with their missing fields unknown (version 4 added the log's
//! `Spawned` lines and the reason `Log`; version 5 the undo lines, the
//! header's `undo` commands, `resumes` and `set_digests`, the log's
//! `CarriedOver` lines and the reasons `UndoFailed` and `CarriedOver`;
//! version 6 the log's `FailureCommand` lines).
//!
//! A last line without its `\n` is a *torn* line (the writer died during
//! the write, so it was never acknowledged): readers ignore it. Any other
//! line that does not parse is corruption, reported with the file and the
//! line number. `spec/state.md` shows real examples.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::clock::Timestamp;
use super::error::StateError;
use super::id::ReleaseId;
use super::release::ReleaseStatus;
use crate::engine::{Event, Process};

mod event;
mod header;
mod reason;

pub(crate) use event::event_lines;
pub(crate) use reason::StoredReason;

pub(crate) use header::{StoredCommit, StoredService, StoredServices, read_live, store_live};

/// The format version this code writes and the newest it reads.
pub(crate) const FORMAT_VERSION: u32 = 6;

/// The first line of every state file.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Head {
    /// `Format(version: 6)`.
    Format {
        /// See [`FORMAT_VERSION`].
        version: u32,
    },
}

/// A line of a release log after the format line.
// A line is parsed and converted at once: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum LogLine {
    /// The second line: what the release is, with its instances in plan
    /// order (events name instances by position in this list).
    Release {
        id: ReleaseId,
        pipeline: String,
        workflow: String,
        env: String,
        version: String,
        previous: Option<ReleaseId>,
        rollback_of: Option<ReleaseId>,
        started_at: Timestamp,
        instances: Vec<String>,
        /// Each instance's command, fully interpolated, in the order of
        /// `instances` (`None`: a marker phase). Absent before version 3.
        #[serde(default)]
        commands: Vec<Option<String>>,
        /// The positions in `instances` of `finally` phases' instances,
        /// whose failure does not fail the release (absent when none).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        finally: Vec<usize>,
        /// Each instance's `undo` command, in the order of `instances`,
        /// when the run undoes a failure (`undo on failure`); absent when
        /// it does not, or no instance has one (version 5 on).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        undo: Vec<Option<String>>,
        /// The boot of the machine that ran it (Linux's `boot_id`), which
        /// tells recovery whether writes not yet synced can have been lost.
        /// Version 1 logs have none.
        #[serde(default)]
        boot: Option<String>,
        /// The fields format version 3 added (absent from older files).
        #[serde(default)]
        commit: Option<StoredCommit>,
        #[serde(default)]
        services: Option<StoredServices>,
        #[serde(default)]
        versions: BTreeMap<String, String>,
        #[serde(default)]
        set_keys: Vec<String>,
        #[serde(default)]
        digest: Option<String>,
        #[serde(default)]
        user: Option<String>,
        /// The fields format version 5 added.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resumes: Option<ReleaseId>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        set_digests: BTreeMap<String, String>,
    },
    /// [`Event::Claimed`].
    Claimed { at: Timestamp, instance: usize },
    /// [`Event::FailureCommand`] (version 6 on).
    FailureCommand {
        at: Timestamp,
        instance: usize,
        command: String,
    },
    /// [`Event::Started`].
    Started {
        at: Timestamp,
        instance: usize,
        attempt: u32,
    },
    /// [`Event::Spawned`] (version 4 on).
    Spawned {
        at: Timestamp,
        instance: usize,
        attempt: u32,
        group: u32,
        start: u64,
    },
    /// [`Event::AttemptFailed`].
    AttemptFailed {
        at: Timestamp,
        instance: usize,
        attempt: u32,
        exit_code: Option<i32>,
        reason: StoredReason,
    },
    /// [`Event::Completed`].
    Completed {
        at: Timestamp,
        instance: usize,
        exit_code: Option<i32>,
    },
    /// [`Event::Failed`].
    Failed {
        at: Timestamp,
        instance: usize,
        exit_code: Option<i32>,
        reason: StoredReason,
    },
    /// [`Event::Skipped`].
    Skipped {
        at: Timestamp,
        instance: usize,
        reason: StoredReason,
    },
    /// [`Event::UndoStarted`] (version 5 on, as the four below).
    UndoStarted { at: Timestamp, instance: usize },
    /// [`Event::UndoSpawned`].
    UndoSpawned {
        at: Timestamp,
        instance: usize,
        group: u32,
        start: u64,
    },
    /// [`Event::Undone`].
    Undone {
        at: Timestamp,
        instance: usize,
        exit_code: Option<i32>,
    },
    /// [`Event::UndoFailed`].
    UndoFailed {
        at: Timestamp,
        instance: usize,
        exit_code: Option<i32>,
        reason: StoredReason,
    },
    /// [`Event::UndoNotAttempted`].
    UndoNotAttempted {
        at: Timestamp,
        instance: usize,
        reason: StoredReason,
    },
    /// [`Event::CarriedOver`] (version 5 on).
    CarriedOver {
        at: Timestamp,
        instance: usize,
        from: String,
    },
    /// The last line: the release is over.
    Finished { at: Timestamp },
}

impl LogLine {
    /// The line for an event: what [`event_lines`] writes by hand for the
    /// events of every run (its tests check it against this), and the line
    /// it writes for the rarer ones (undo, carried over).
    pub(crate) fn event(event: &Event, at: Timestamp) -> Self {
        match event {
            &Event::Claimed { instance } => Self::Claimed { at, instance },
            &Event::Started { instance, attempt } => Self::Started { at, instance, attempt },
            &Event::Spawned {
                instance,
                attempt,
                process: Process { group, start },
            } => Self::Spawned {
                at,
                instance,
                attempt,
                group,
                start,
            },
            Event::AttemptFailed {
                instance,
                attempt,
                exit_code,
                reason,
            } => Self::AttemptFailed {
                at,
                instance: *instance,
                attempt: *attempt,
                exit_code: *exit_code,
                reason: reason.into(),
            },
            &Event::Completed { instance, exit_code } => Self::Completed {
                at,
                instance,
                exit_code,
            },
            Event::Failed {
                instance,
                exit_code,
                reason,
            } => Self::Failed {
                at,
                instance: *instance,
                exit_code: *exit_code,
                reason: reason.into(),
            },
            Event::Skipped { instance, reason } => Self::Skipped {
                at,
                instance: *instance,
                reason: reason.into(),
            },
            Event::UndoStarted { .. }
            | Event::UndoSpawned { .. }
            | Event::Undone { .. }
            | Event::UndoFailed { .. }
            | Event::UndoNotAttempted { .. } => Self::undo(event, at),
            Event::CarriedOver { instance, from } => Self::CarriedOver {
                at,
                instance: *instance,
                from: from.clone(),
            },
            Event::FailureCommand { instance, command } => Self::FailureCommand {
                at,
                instance: *instance,
                command: command.clone(),
            },
        }
    }

    /// The line for an undo event (version 5 on); `event` is one.
    fn undo(event: &Event, at: Timestamp) -> Self {
        match event {
            &Event::UndoStarted { instance } => Self::UndoStarted { at, instance },
            &Event::UndoSpawned {
                instance,
                process: Process { group, start },
            } => Self::UndoSpawned {
                at,
                instance,
                group,
                start,
            },
            &Event::Undone { instance, exit_code } => Self::Undone {
                at,
                instance,
                exit_code,
            },
            Event::UndoFailed {
                instance,
                exit_code,
                reason,
            } => Self::UndoFailed {
                at,
                instance: *instance,
                exit_code: *exit_code,
                reason: reason.into(),
            },
            Event::UndoNotAttempted { instance, reason } => Self::UndoNotAttempted {
                at,
                instance: *instance,
                reason: reason.into(),
            },
            _ => unreachable!("not an undo event: {event:?}"),
        }
    }

    /// The event on this line and its time, if it is an event line.
    pub(crate) fn to_event(&self) -> Option<(Event, Timestamp)> {
        Some(match self {
            Self::Release { .. } | Self::Finished { .. } => return None,
            &Self::Claimed { at, instance } => (Event::Claimed { instance }, at),
            &Self::Started { at, instance, attempt } => (Event::Started { instance, attempt }, at),
            &Self::Spawned {
                at,
                instance,
                attempt,
                group,
                start,
            } => (
                Event::Spawned {
                    instance,
                    attempt,
                    process: Process { group, start },
                },
                at,
            ),
            Self::AttemptFailed {
                at,
                instance,
                attempt,
                exit_code,
                reason,
            } => (
                Event::AttemptFailed {
                    instance: *instance,
                    attempt: *attempt,
                    exit_code: *exit_code,
                    reason: reason.into(),
                },
                *at,
            ),
            &Self::Completed {
                at,
                instance,
                exit_code,
            } => (Event::Completed { instance, exit_code }, at),
            Self::Failed {
                at,
                instance,
                exit_code,
                reason,
            } => (
                Event::Failed {
                    instance: *instance,
                    exit_code: *exit_code,
                    reason: reason.into(),
                },
                *at,
            ),
            Self::Skipped { at, instance, reason } => (
                Event::Skipped {
                    instance: *instance,
                    reason: reason.into(),
                },
                *at,
            ),
            Self::CarriedOver { at, instance, from } => (
                Event::CarriedOver {
                    instance: *instance,
                    from: from.clone(),
                },
                *at,
            ),
            Self::FailureCommand { at, instance, command } => (
                Event::FailureCommand {
                    instance: *instance,
                    command: command.clone(),
                },
                *at,
            ),
            Self::UndoStarted { .. }
            | Self::UndoSpawned { .. }
            | Self::Undone { .. }
            | Self::UndoFailed { .. }
            | Self::UndoNotAttempted { .. } => return self.undo_event(),
        })
    }

    /// The undo event on this line and its time (version 5 on).
    fn undo_event(&self) -> Option<(Event, Timestamp)> {
        Some(match self {
            &Self::UndoStarted { at, instance } => (Event::UndoStarted { instance }, at),
            &Self::UndoSpawned {
                at,
                instance,
                group,
                start,
            } => (
                Event::UndoSpawned {
                    instance,
                    process: Process { group, start },
                },
                at,
            ),
            &Self::Undone {
                at,
                instance,
                exit_code,
            } => (Event::Undone { instance, exit_code }, at),
            Self::UndoFailed {
                at,
                instance,
                exit_code,
                reason,
            } => (
                Event::UndoFailed {
                    instance: *instance,
                    exit_code: *exit_code,
                    reason: reason.into(),
                },
                *at,
            ),
            Self::UndoNotAttempted { at, instance, reason } => (
                Event::UndoNotAttempted {
                    instance: *instance,
                    reason: reason.into(),
                },
                *at,
            ),
            _ => return None,
        })
    }
}

/// A line of an index after the format line.
#[allow(clippy::large_enum_variant)] // as `LogLine`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum IndexLine {
    /// A run of this env is about to create the log of release `id` (which
    /// another env's run may have taken first): recovery looks for that log
    /// if no `Started` line follows (version 3 on).
    Reserved { id: ReleaseId },
    /// A release started (its log exists), with its whole header.
    Started {
        id: ReleaseId,
        pipeline: String,
        workflow: String,
        env: String,
        version: String,
        previous: Option<ReleaseId>,
        rollback_of: Option<ReleaseId>,
        at: Timestamp,
        /// The fields format version 3 added (absent from older files).
        #[serde(default)]
        commit: Option<StoredCommit>,
        #[serde(default)]
        services: Option<StoredServices>,
        #[serde(default)]
        versions: BTreeMap<String, String>,
        #[serde(default)]
        set_keys: Vec<String>,
        #[serde(default)]
        digest: Option<String>,
        #[serde(default)]
        user: Option<String>,
        /// The fields format version 5 added.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resumes: Option<ReleaseId>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        set_digests: BTreeMap<String, String>,
    },
    /// A release finished with this status; for a deploy or rollback, the
    /// env's live state right after it (version 3 on).
    Finished {
        id: ReleaseId,
        at: Timestamp,
        status: ReleaseStatus,
        #[serde(default)]
        live: Option<Vec<StoredService>>,
    },
}

/// One value as a line of text, ending in `\n`.
pub(crate) fn line<T: Serialize>(value: &T) -> String {
    let config = ron::ser::PrettyConfig::new()
        .new_line("")
        .indentor("")
        .separator(" ")
        .compact_arrays(true)
        .compact_structs(true)
        .struct_names(true);
    // Serialising these types cannot fail: no maps with non-string keys, no
    // non-finite floats.
    let mut text = ron::ser::to_string_pretty(value, config).expect("state lines serialise");
    text.push('\n');
    text
}

/// The format line, as written at the top of every file.
pub(crate) fn head_line() -> String {
    line(&Head::Format {
        version: FORMAT_VERSION,
    })
}

/// Checks a file's first line (without its `\n`): a format line of a
/// version this code reads. Returns the version.
pub(crate) fn check_head(path: &Path, first: &[u8]) -> Result<u32, StateError> {
    let head: Head = std::str::from_utf8(first)
        .ok()
        .and_then(|text| ron::from_str(text).ok())
        .ok_or_else(|| StateError::Corrupt {
            path: PathBuf::from(path),
            line: 1,
            message: "no format line (expected `Format(version: N)`)".to_owned(),
        })?;
    let Head::Format { version } = head;
    if version > FORMAT_VERSION || version == 0 {
        return Err(StateError::UnsupportedFormat {
            path: PathBuf::from(path),
            version,
        });
    }
    Ok(version)
}

/// Parses one complete line (without its `\n`) as a `T`; `number` names it
/// in the error.
pub(crate) fn parse_line<T: DeserializeOwned>(path: &Path, number: usize, raw: &[u8]) -> Result<T, StateError> {
    let corrupt = |message: String| StateError::Corrupt {
        path: PathBuf::from(path),
        line: number,
        message,
    };
    let text = std::str::from_utf8(raw).map_err(|_| corrupt("not UTF-8 text".to_owned()))?;
    ron::from_str(text).map_err(|error| corrupt(error.to_string()))
}

/// A state file read back.
#[derive(Debug)]
pub(crate) struct Lines<T> {
    /// The lines after the format line, with their line numbers (1-based).
    pub(crate) lines: Vec<(usize, T)>,
    /// The length of the complete lines, when a torn last line follows them.
    pub(crate) torn: Option<u64>,
}

/// Reads a state file: checks its format line, parses every complete line
/// and ignores a torn last line.
pub(crate) fn read<T: DeserializeOwned>(path: &Path) -> Result<Lines<T>, StateError> {
    let bytes = std::fs::read(path).map_err(StateError::io("read", path))?;
    parse(path, &bytes)
}

/// [`read`] on bytes already read.
pub(crate) fn parse<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<Lines<T>, StateError> {
    let corrupt = |line: usize, message: String| StateError::Corrupt {
        path: PathBuf::from(path),
        line,
        message,
    };
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |end| end + 1);
    let torn = (complete < bytes.len()).then_some(complete as u64);
    if complete == 0 {
        return Err(corrupt(1, "no format line (expected `Format(version: N)`)".to_owned()));
    }
    // Complete lines, without their `\n`.
    let mut raw_lines = bytes[..complete - 1].split(|&b| b == b'\n');
    check_head(path, raw_lines.next().unwrap_or_default())?;
    let mut lines = Vec::new();
    for (index, raw) in raw_lines.enumerate() {
        let number = index + 2;
        lines.push((number, parse_line(path, number, raw)?));
    }
    Ok(Lines { lines, torn })
}

#[cfg(test)]
mod tests;
