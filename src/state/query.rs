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
    /// `--to-previous`: the newest fully completed release of the env older
    /// than the current one.
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
    /// `--to-previous`: nothing completed before the current release.
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
                    "no completed release of `{env}` is older than its current release {current}"
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

/// The release a rollback of `env` restores. `releases` is newest first.
///
/// # Errors
///
/// A [`RollbackError`] naming the release refused, or saying what is
/// missing.
pub fn rollback_target<'r>(
    releases: &'r [ReleaseSummary],
    env: &str,
    target: &RollbackTarget,
) -> Result<&'r ReleaseSummary, RollbackError> {
    // A release named by id is judged on its own first: "it is another
    // env's" says more than "this env has no releases".
    if let RollbackTarget::Release(id) = target {
        let chosen = releases
            .iter()
            .find(|r| r.id.to_string() == *id)
            .ok_or_else(|| RollbackError::UnknownRelease { id: id.clone() })?;
        if chosen.env != env {
            return Err(RollbackError::OtherEnv {
                id: chosen.id,
                env: chosen.env.clone(),
                wanted: env.to_owned(),
            });
        }
    }
    let current = current(releases, env).ok_or_else(|| RollbackError::NoReleases { env: env.to_owned() })?;
    let chosen = match target {
        RollbackTarget::Previous => deployments(releases, env)
            .filter(|r| r.id < current.id)
            .find(|r| r.status == ReleaseStatus::Completed)
            .ok_or_else(|| RollbackError::NoPrevious {
                env: env.to_owned(),
                current: current.id,
            })?,
        RollbackTarget::Release(id) => releases
            .iter()
            .find(|r| r.id.to_string() == *id)
            .ok_or_else(|| RollbackError::UnknownRelease { id: id.clone() })?,
        RollbackTarget::Version(version) => deployments(releases, env)
            .find(|r| r.version == *version && r.status == ReleaseStatus::Completed)
            .ok_or_else(|| RollbackError::NoVersion {
                env: env.to_owned(),
                version: version.clone(),
            })?,
    };
    if chosen.env != env {
        return Err(RollbackError::OtherEnv {
            id: chosen.id,
            env: chosen.env.clone(),
            wanted: env.to_owned(),
        });
    }
    if !chosen.is_deployment() {
        return Err(RollbackError::NotDeployment {
            id: chosen.id,
            workflow: chosen.workflow.clone(),
        });
    }
    if chosen.status != ReleaseStatus::Completed {
        return Err(RollbackError::NotCompleted {
            id: chosen.id,
            status: chosen.status,
        });
    }
    if chosen.id == current.id {
        return Err(RollbackError::Current {
            id: chosen.id,
            env: env.to_owned(),
        });
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(n: u64, env: &str, workflow: &str, version: &str, status: ReleaseStatus) -> ReleaseSummary {
        let at = Timestamp::from_millis(1_795_626_149_000 + n);
        ReleaseSummary {
            header: ReleaseHeader {
                id: ReleaseId::from_time(at),
                pipeline: "webapp".into(),
                workflow: workflow.into(),
                env: env.into(),
                version: version.into(),
                previous: None,
                rollback_of: None,
                started_at: at,
                commit: None,
                services: None,
                versions: std::collections::BTreeMap::new(),
                set_keys: Vec::new(),
                digest: None,
                user: None,
            },
            finished_at: Some(at),
            status,
            live: None,
        }
    }

    /// Newest first: prod v3 (failed, current), a build, staging v2,
    /// prod v2 (completed), prod v1 (completed).
    fn history() -> Vec<ReleaseSummary> {
        use ReleaseStatus::{Completed, Failed};
        vec![
            summary(5, "prod", "deploy", "v3", Failed),
            summary(4, "prod", "build", "v3", Completed),
            summary(3, "staging", "deploy", "v2", Completed),
            summary(2, "prod", "deploy", "v2", Completed),
            summary(1, "prod", "deploy", "v1", Completed),
        ]
    }

    fn id(n: usize) -> String {
        history()[n].id.to_string()
    }

    fn target(target: &RollbackTarget) -> Result<String, String> {
        let releases = history();
        rollback_target(&releases, "prod", target)
            .map(|r| r.version.clone())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn current_is_the_newest_deployment() {
        let releases = history();
        assert_eq!(current(&releases, "prod").unwrap().version, "v3");
        assert_eq!(current(&releases, "staging").unwrap().version, "v2");
        assert!(current(&releases, "dev").is_none());
    }

    #[test]
    fn rollback_rules() {
        assert_eq!(target(&RollbackTarget::Previous), Ok("v2".into()));
        assert_eq!(target(&RollbackTarget::Version("v1".into())), Ok("v1".into()));
        assert_eq!(target(&RollbackTarget::Release(id(4))), Ok("v1".into()));
        assert_eq!(
            target(&RollbackTarget::Release(id(0))),
            Err(format!("release {} is failed, not completed", id(0)))
        );
        assert_eq!(
            target(&RollbackTarget::Release(id(1))),
            Err(format!("release {} is a `build` run, not a deploy or rollback", id(1)))
        );
        assert_eq!(
            target(&RollbackTarget::Release(id(2))),
            Err(format!("release {} is a release of `staging`, not `prod`", id(2)))
        );
        assert_eq!(
            target(&RollbackTarget::Release("rel-x".into())),
            Err("unknown release `rel-x`".into())
        );
        assert_eq!(
            target(&RollbackTarget::Version("v3".into())),
            Err("no completed release of `prod` has version `v3`".into())
        );
        let releases = history();
        let error = rollback_target(&releases, "staging", &RollbackTarget::Previous).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "no completed release of `staging` is older than its current release {}",
                id(2)
            )
        );
        let error = rollback_target(&releases, "staging", &RollbackTarget::Release(id(2))).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("release {} is already the current release of `staging`", id(2))
        );
        let error = rollback_target(&releases, "dev", &RollbackTarget::Previous).unwrap_err();
        assert_eq!(error.to_string(), "env `dev` has no releases to roll back");
    }

    #[test]
    fn previous_skips_newer_and_failed() {
        use ReleaseStatus::{Completed, Failed};
        // Newest first: a completed rollback (current), then v2 failed, v1.
        let releases = vec![
            summary(3, "prod", "rollback", "v1", Completed),
            summary(2, "prod", "deploy", "v2", Failed),
            summary(1, "prod", "deploy", "v1", Completed),
        ];
        let chosen = rollback_target(&releases, "prod", &RollbackTarget::Previous).unwrap();
        assert_eq!(chosen.id, releases[2].id);
        let error = rollback_target(&releases, "prod", &RollbackTarget::Version("v1".into())).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("release {} is already the current release of `prod`", releases[0].id)
        );
    }
}
