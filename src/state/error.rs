//! [`StateError`]: everything that can go wrong with the state directory
//! or the PostgreSQL state.
//!
//! Every variant names the file, directory or database involved; the CLI shows the
//! message as is and exits 4 (`UnknownRelease` is a user error, exit 1).
//! [`Damage`] says what is wrong with a release log the index vouches for.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::lock::Holder;
use super::release::{EventError, ReleaseStatus};

/// A failure reading, writing or locking the state.
#[derive(Debug)]
pub enum StateError {
    /// A file or directory could not be read, written or synced.
    Io {
        /// What was being done: `read`, `create`, `append to`, `sync`, ….
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A complete line of a state file does not parse, or the file is not
    /// shaped as it should be. Nothing is overwritten or deleted.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The file was written by a newer stagecraft.
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// Its format version.
        version: u32,
    },
    /// Another run holds the lock.
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, if its holder file could be read.
        holder: Option<Holder>,
    },
    /// Another run (of another env of the pipeline) created the log of
    /// this release id first: take the next id and begin again.
    IdTaken {
        /// The id taken.
        id: super::ReleaseId,
    },
    /// A run whose recording failed came back to write its release's last
    /// state, but another command had recorded the release interrupted
    /// meanwhile.
    Finished {
        /// The release.
        id: super::ReleaseId,
    },
    /// No release has this id.
    UnknownRelease {
        /// The id asked for.
        id: String,
    },
    /// The env's index records release `id`, but its log does not hold it:
    /// the log is missing, or ends before the finish line the index
    /// records (cut short, its last newline lost, its end overwritten).
    /// Nothing is repaired: the log stays as it is for a person to look at.
    Damaged {
        /// The release log.
        path: PathBuf,
        /// The release.
        id: super::ReleaseId,
        /// What is wrong with it.
        damage: Damage,
    },
    /// The executor reported an event that does not fit the release.
    Event(EventError),
    /// A run of the env killed outright left commands running that did
    /// not end on `SIGTERM` nor on `SIGKILL` (another user's processes,
    /// say): its release stays unfinished, and no new run of the env
    /// starts while they run.
    StillRunning {
        /// The release they belong to.
        id: super::ReleaseId,
        /// The env.
        env: String,
        /// Each instance still running, its process group and the pids
        /// of its processes still running.
        running: Vec<(String, u32, Vec<u32>)>,
    },
    /// The PostgreSQL state could not be reached, read or written: the
    /// connection failed or timed out, a statement failed, or the schema is
    /// newer than this stagecraft knows.
    Database {
        /// What was being done: `connect to`, `migrate`, `lock an env in`, ….
        action: &'static str,
        /// The server and database (`host:port/dbname`, never a password).
        target: String,
        /// The server's or the driver's message.
        message: String,
    },
    /// `state copy` found a history where it was to copy one.
    NotEmpty {
        /// The target (a directory, or `host:port/dbname`).
        target: String,
        /// The pipelines with a history there.
        pipelines: Vec<String>,
    },
    /// `state copy` could not carry a release, or the copy does not read
    /// the same as the original.
    CopyDiffers {
        /// The pipeline.
        pipeline: String,
        /// What differs.
        message: String,
    },
    /// A row of the PostgreSQL state does not have the shape stagecraft
    /// writes (a header or event line that does not parse, a release whose
    /// events are not legal transitions). Nothing is changed.
    CorruptRow {
        /// The table.
        table: &'static str,
        /// The row's key: its key columns and their values.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// What is wrong with a damaged release log (see [`StateError::Damaged`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// The log is missing.
    Missing,
    /// The index says the release finished, with this status, but its log
    /// ends before its finish line.
    EndsEarly(ReleaseStatus),
}

impl StateError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { action, path, source }
    }
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { action, path, source } => write!(f, "cannot {action} `{}`: {source}", path.display()),
            Self::Corrupt { path, line, message } => {
                write!(f, "corrupt state file `{}` at line {line}: {message}", path.display())
            }
            Self::UnsupportedFormat { path, version } => write!(
                f,
                "state file `{}` has format version {version}, newer than this stagecraft reads ({})",
                path.display(),
                super::format::FORMAT_VERSION
            ),
            Self::Locked { path, holder } => {
                match env_of_lock(path) {
                    Some((pipeline, env)) => {
                        write!(f, "env `{env}` of pipeline `{pipeline}` is locked by another run")?;
                    }
                    None => write!(f, "state directory `{}` is locked by another run", parent(path))?,
                }
                match holder {
                    Some(holder) => write!(f, ": {holder}"),
                    None => f.write_str(" (holder unknown)"),
                }
            }
            Self::Damaged {
                path,
                id,
                damage: Damage::Missing,
            } => write!(f, "the log of release {id} is missing: `{}`", path.display()),
            Self::Damaged {
                path,
                id,
                damage: Damage::EndsEarly(status),
            } => write!(
                f,
                "the index says release {id} finished ({status}) but its log `{}` ends before its finish line",
                path.display()
            ),
            Self::IdTaken { id } => write!(f, "release id {id} was taken by another run"),
            Self::UnknownRelease { id } => write!(f, "unknown release `{id}`"),
            Self::Finished { id } => write!(f, "another command has recorded release {id} interrupted meanwhile"),
            Self::Event(error) => error.fmt(f),
            Self::StillRunning { id, env, running } => {
                write!(f, "release {id} left commands running that did not stop on `SIGKILL`: ")?;
                for (position, (instance, group, pids)) in running.iter().enumerate() {
                    let pids: Vec<String> = pids.iter().map(ToString::to_string).collect();
                    let separator = if position == 0 { "" } else { ", " };
                    write!(
                        f,
                        "{separator}{instance} (process group {group}, pids {})",
                        pids.join(" ")
                    )?;
                }
                write!(f, "; no new run of `{env}` starts while they run")
            }
            Self::Database {
                action,
                target,
                message,
            } => {
                write!(f, "cannot {action} the PostgreSQL state `{target}`: {message}")
            }
            Self::NotEmpty { target, pipelines } => write!(
                f,
                "`{target}` already holds the history of {}",
                pipelines
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::CopyDiffers { pipeline, message } => {
                write!(f, "cannot copy the history of `{pipeline}`: {message}")
            }
            Self::CorruptRow { table, key, message } => {
                write!(f, "corrupt row of PostgreSQL table `{table}` ({key}): {message}")
            }
        }
    }
}

/// The pipeline and env of a lock at `…/pipelines/<pipeline>/envs/<env>/lock`.
fn env_of_lock(path: &std::path::Path) -> Option<(String, String)> {
    let names: Vec<String> = path
        .iter()
        .rev()
        .take(5)
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    match names.as_slice() {
        [_, env, envs, pipeline, pipelines] if envs == "envs" && pipelines == "pipelines" => {
            Some((pipeline.clone(), env.clone()))
        }
        _ => None,
    }
}

fn parent(path: &std::path::Path) -> String {
    path.parent()
        .map_or_else(|| path.display().to_string(), |dir| dir.display().to_string())
}

impl std::error::Error for StateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Event(error) => Some(error),
            _ => None,
        }
    }
}

impl From<EventError> for StateError {
    fn from(error: EventError) -> Self {
        Self::Event(error)
    }
}
