//! Questions about the history: summaries of releases, an env's current
//! release, and which release a rollback restores.
//!
//! The functions here are pure: they take the release list (newest first,
//! as [`PipelineDir::releases`](super::PipelineDir::releases) returns it)
//! and read nothing.

use std::fmt;
use std::ops::Deref;

use serde::Serialize;

use super::clock::Timestamp;
use super::id::ReleaseId;
use super::live::Live;
use super::release::{Release, ReleaseHeader, ReleaseStatus};

/// A release as the index knows it: everything but its instances. It
/// dereferences to its [`ReleaseHeader`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReleaseSummary {
    /// What it is.
    #[serde(flatten)]
    pub header: ReleaseHeader,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
    /// Its status.
    pub status: ReleaseStatus,
    /// What was live in its env right after it; `None` while it is
    /// unfinished, and for a workflow other than `deploy` and `rollback`.
    pub live: Option<Live>,
}

impl Deref for ReleaseSummary {
    type Target = ReleaseHeader;

    fn deref(&self) -> &ReleaseHeader {
        &self.header
    }
}

impl From<&Release> for ReleaseSummary {
    fn from(release: &Release) -> Self {
        Self {
            header: release.header.clone(),
            finished_at: release.finished_at,
            status: release.status(),
            live: None,
        }
    }
}

/// Whether runs of `workflow` are an env's releases (`deploy`, `rollback`).
#[must_use]
pub(crate) fn is_deployment(workflow: &str) -> bool {
    matches!(workflow, "deploy" | "rollback")
}

/// The current release of `env`: its newest deploy or rollback release,
/// whatever its status. `releases` is newest first.
#[must_use]
pub fn current<'r>(releases: impl IntoIterator<Item = &'r ReleaseSummary>, env: &str) -> Option<&'r ReleaseSummary> {
    deployments(releases, env).next()
}

/// `env`'s deploy and rollback releases, in the order of `releases`.
fn deployments<'r>(
    releases: impl IntoIterator<Item = &'r ReleaseSummary>,
    env: &str,
) -> impl Iterator<Item = &'r ReleaseSummary> {
    releases.into_iter().filter(move |r| r.env == env && r.is_deployment())
}

/// Which release a rollback restores (exactly one of the three flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RollbackTarget {
    /// `--to-previous`: undo the last change (see [`restore`](super::restore)).
    Previous,
    /// `--to-release ID`.
    Release(String),
    /// `--to-version V`: the newest completed release of the env with this
    /// version.
    Version(String),
}

/// Why a rollback target was refused. Each message names the release (or
/// the env and version when there is none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RollbackError {
    /// The env has no deploy or rollback release at all.
    NoReleases {
        /// The env.
        env: String,
    },
    /// `--to-previous`: no completed release before the current one, not
    /// rolled away from, left a state different from today's.
    NoPrevious {
        /// The env.
        env: String,
        /// Its current release.
        current: ReleaseId,
    },
    /// `--to-release`: no release has this id.
    UnknownRelease {
        /// The id given.
        id: String,
    },
    /// `--to-version`: no completed release of the env has this version.
    NoVersion {
        /// The env.
        env: String,
        /// The version given.
        version: String,
    },
    /// The target is another env's release.
    OtherEnv {
        /// The target.
        id: ReleaseId,
        /// Its env.
        env: String,
        /// The env asked for.
        wanted: String,
    },
    /// The target is a `build` (or other) run, not a deploy or rollback.
    NotDeployment {
        /// The target.
        id: ReleaseId,
        /// Its workflow.
        workflow: String,
    },
    /// The target did not complete.
    NotCompleted {
        /// The target.
        id: ReleaseId,
        /// Its status.
        status: ReleaseStatus,
    },
    /// The target is the env's current release.
    Current {
        /// The target.
        id: ReleaseId,
        /// The env.
        env: String,
    },
}

impl fmt::Display for RollbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoReleases { env } => write!(f, "env `{env}` has no releases to roll back"),
            Self::NoPrevious { env, current } => {
                write!(
                    f,
                    "nothing to roll back to: no completed release of `{env}` older than its current release \
                     {current} left a state different from today's"
                )
            }
            Self::UnknownRelease { id } => write!(f, "unknown release `{id}`"),
            Self::NoVersion { env, version } => write!(f, "no completed release of `{env}` has version `{version}`"),
            Self::OtherEnv { id, env, wanted } => write!(f, "release {id} is a release of `{env}`, not `{wanted}`"),
            Self::NotDeployment { id, workflow } => {
                write!(f, "release {id} is a `{workflow}` run, not a deploy or rollback")
            }
            Self::NotCompleted { id, status } => write!(f, "release {id} is {status}, not completed"),
            Self::Current { id, env } => write!(f, "release {id} is already the current release of `{env}`"),
        }
    }
}

impl std::error::Error for RollbackError {}
