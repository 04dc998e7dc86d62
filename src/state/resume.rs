//! Resuming a failed release (`stagecraft resume`): which release, whether
//! it may be resumed, and what the new release carries over from it.
//!
//! A release may be resumed when it is its env's newest release, it failed
//! (or was interrupted), it ran a workflow that `resume` can run again
//! (`deploy` or one run by `run`), and the run that would resume it is
//! the same run: the same pipeline file (digest), version, services and
//! `--set` keys and values (compared by their digests, never the values).
//! Every difference is named. The new release then records the instances
//! that completed in it as completed, carried over, without running them
//! (`finally` instances always run again).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::backend::PipelineState;
use super::error::StateError;
use super::id::ReleaseId;
use super::live::covered;
use super::release::{Release, ReleaseStatus};
use super::status::PhaseStatus;
use crate::engine::{CarryOver, Plan};

/// What the run that would resume a release is: compared with the
/// release's own record.
#[derive(Clone, Copy, Debug)]
pub struct ResumeRequest<'a> {
    /// The env (`--env`).
    pub env: &'a str,
    /// The release named, if one was (else the env's newest).
    pub release: Option<&'a str>,
    /// The pipeline file's digest now ([`engine::digest`](crate::engine::digest)).
    pub digest: &'a str,
    /// The version now.
    pub version: &'a str,
    /// The services the run would cover, sorted.
    pub services: &'a [String],
    /// The digests of the `--set` values given now, by key
    /// ([`engine::set_digests`](crate::engine::set_digests)).
    pub set_digests: &'a BTreeMap<String, String>,
}

/// A release that may be resumed.
#[derive(Clone, Debug)]
pub struct Resume {
    /// The release resumed, in full.
    pub release: Release,
}

/// Why a release cannot be resumed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResumeError {
    /// The env has no release.
    NoReleases {
        /// The env.
        env: String,
    },
    /// No release of the pipeline has this id.
    UnknownRelease {
        /// The id given.
        id: String,
        /// The env's release id closest to it, if one is close.
        closest: Option<String>,
    },
    /// The release is of another env.
    OtherEnv {
        /// The release.
        id: ReleaseId,
        /// Its env.
        env: String,
        /// The env asked for.
        wanted: String,
    },
    /// The release did not fail: nothing to resume.
    NotFailed {
        /// The release.
        id: ReleaseId,
        /// Its status.
        status: ReleaseStatus,
        /// Whether it was named (else it is the env's newest).
        named: bool,
    },
    /// A newer release of the env exists.
    Newer {
        /// The release.
        id: ReleaseId,
        /// The env's newest release.
        newest: ReleaseId,
        /// Its workflow.
        workflow: String,
    },
    /// Its workflow is not one `resume` runs again.
    Workflow {
        /// The release.
        id: ReleaseId,
        /// Its workflow.
        workflow: String,
    },
    /// The run now differs from the release's.
    Differs {
        /// The release.
        id: ReleaseId,
        /// Every difference, in a fixed order.
        differences: Vec<Difference>,
    },
}

/// One way the run now differs from the release it would resume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Difference {
    /// The pipeline file changed (or the release recorded no digest).
    Digest {
        /// The release's digest, if recorded.
        then: Option<String>,
        /// The file's digest now.
        now: String,
    },
    /// Another version.
    Version {
        /// The release's.
        then: String,
        /// Now.
        now: String,
    },
    /// Other services.
    Services {
        /// The release's, sorted.
        then: Vec<String>,
        /// Now, sorted.
        now: Vec<String>,
    },
    /// A `--set` key given to the release and not now.
    SetMissing(String),
    /// A `--set` key given now and not to the release.
    SetExtra(String),
    /// A `--set` key given to both, with another value now.
    SetValue(String),
    /// A `--set` key whose value the release did not record (format
    /// version 4 and older): it cannot be compared.
    SetUnrecorded(String),
}

impl Difference {
    /// The difference in words, naming the release.
    #[must_use]
    pub fn describe(&self, release: ReleaseId) -> String {
        let short = |digest: &str| {
            let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
            hex.chars().take(12).collect::<String>()
        };
        let list = |names: &[String]| {
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        };
        match self {
            Self::Digest { then: Some(then), now } => format!(
                "the pipeline file changed since {release} (digest {} then, {} now)",
                short(then),
                short(now)
            ),
            Self::Digest { then: None, .. } => {
                format!("{release} did not record the pipeline file's digest, so it cannot be compared")
            }
            Self::Version { then, now } => format!("version: {release} ran `{then}`, this run would be `{now}`"),
            Self::Services { then, now } => format!(
                "services: {release} covered {}, this run would cover {}",
                list(then),
                list(now)
            ),
            Self::SetMissing(key) => format!("--set {key}: given to {release}, not now"),
            Self::SetExtra(key) => format!("--set {key}: not given to {release}"),
            Self::SetValue(key) => format!("--set {key}: value differs from {release}"),
            Self::SetUnrecorded(key) => {
                format!("--set {key}: {release} did not record its value, so it cannot be compared")
            }
        }
    }
}

impl fmt::Display for ResumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoReleases { env } => write!(f, "env `{env}` has no release to resume"),
            Self::UnknownRelease { id, .. } => write!(f, "no release `{id}`"),
            Self::OtherEnv { id, env, wanted } => {
                write!(f, "release {id} is of env `{env}`, not `{wanted}`")
            }
            Self::NotFailed { id, status, named } => {
                let what = if *named {
                    format!("release {id}")
                } else {
                    format!("the env's newest release, {id},")
                };
                match status {
                    ReleaseStatus::Completed => write!(f, "nothing to resume: {what} completed"),
                    ReleaseStatus::Running | ReleaseStatus::Pending => {
                        write!(f, "{what} is not finished: it is still running, or its run died")
                    }
                    ReleaseStatus::Failed => write!(f, "{what} failed"),
                }
            }
            Self::Newer { id, newest, workflow } => {
                write!(
                    f,
                    "release {id} is not the env's newest: {workflow} release {newest} came after it"
                )
            }
            Self::Workflow { id, workflow } => {
                write!(f, "release {id} ran `{workflow}`, which `resume` does not run again")
            }
            Self::Differs { id, differences } => {
                let count = differences.len();
                write!(
                    f,
                    "release {id} cannot be resumed: this run differs from it ({count} difference{})",
                    if count == 1 { "" } else { "s" }
                )
            }
        }
    }
}

impl std::error::Error for ResumeError {}

/// The release `request` resumes, if it may be resumed. `dir` is read
/// without a lock: a run that resumes calls this again under the env's lock.
///
/// # Errors
///
/// The outer error is a state file that could not be read; the inner one
/// says why the release cannot be resumed.
pub fn resumable(dir: &PipelineState, request: &ResumeRequest<'_>) -> Result<Result<Resume, ResumeError>, StateError> {
    let newest = dir.history(request.env).next().transpose()?;
    Ok(
        match find(dir, request.env, request.release, newest.as_ref().map(|n| n.id))? {
            Ok(release) => judge(release, newest.as_ref().map(|n| (n.id, n.workflow.as_str())), request),
            Err(error) => Err(error),
        },
    )
}

/// The release a resume of `env` names (`release`), else the env's
/// newest, without judging whether it may be resumed: what a run needs
/// before it takes the lock (its workflow), when the release may still be
/// unfinished (its run died, and recovery under the lock will finish it).
///
/// # Errors
///
/// As [`resumable`]; the inner error is an unknown release, or an env
/// without releases.
pub fn resume_target(
    dir: &PipelineState,
    env: &str,
    release: Option<&str>,
) -> Result<Result<Release, ResumeError>, StateError> {
    let newest = dir.history(env).next().transpose()?;
    find(dir, env, release, newest.map(|n| n.id))
}

/// Release `release` of the pipeline, else `env`'s newest (`newest`).
fn find(
    dir: &PipelineState,
    env: &str,
    release: Option<&str>,
    newest: Option<ReleaseId>,
) -> Result<Result<Release, ResumeError>, StateError> {
    let id = match (release, newest) {
        (Some(id), _) => id.to_owned(),
        (None, Some(newest)) => newest.to_string(),
        (None, None) => return Ok(Err(ResumeError::NoReleases { env: env.to_owned() })),
    };
    match dir.release(&id) {
        Ok(release) => Ok(Ok(release)),
        Err(StateError::UnknownRelease { .. }) => Ok(Err(ResumeError::UnknownRelease {
            closest: closest(dir, env, &id)?,
            id,
        })),
        Err(error) => Err(error),
    }
}

/// The env's release id closest to `id`, among its newest hundred.
fn closest(dir: &PipelineState, env: &str, id: &str) -> Result<Option<String>, StateError> {
    let ids = dir
        .history(env)
        .take(100)
        .map(|summary| summary.map(|s| s.id.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(crate::syntax::suggest(id, ids.iter().map(String::as_str)).map(str::to_owned))
}

/// Whether `release` may be resumed, given the env's newest release.
fn judge(
    release: Release,
    newest: Option<(ReleaseId, &str)>,
    request: &ResumeRequest<'_>,
) -> Result<Resume, ResumeError> {
    let id = release.id;
    if release.env != request.env {
        return Err(ResumeError::OtherEnv {
            id,
            env: release.env.clone(),
            wanted: request.env.to_owned(),
        });
    }
    // An unfinished release (its run goes on, or died) is `running` here.
    let status = Some(release.status())
        .filter(|_| release.is_finished())
        .unwrap_or(ReleaseStatus::Running);
    if status != ReleaseStatus::Failed {
        return Err(ResumeError::NotFailed {
            id,
            status,
            named: request.release.is_some(),
        });
    }
    if matches!(release.workflow.as_str(), "rollback" | "build") {
        return Err(ResumeError::Workflow {
            id,
            workflow: release.workflow.clone(),
        });
    }
    if let Some((newest, workflow)) = newest.filter(|(newest, _)| *newest != id) {
        return Err(ResumeError::Newer {
            id,
            newest,
            workflow: workflow.to_owned(),
        });
    }
    let differences = differences(&release, request);
    if !differences.is_empty() {
        return Err(ResumeError::Differs { id, differences });
    }
    Ok(Resume { release })
}

/// How the run `request` describes differs from `release`'s.
fn differences(release: &Release, request: &ResumeRequest<'_>) -> Vec<Difference> {
    let mut found = Vec::new();
    if release.digest.as_deref() != Some(request.digest) {
        found.push(Difference::Digest {
            then: release.digest.clone(),
            now: request.digest.to_owned(),
        });
    }
    if release.version != request.version {
        found.push(Difference::Version {
            then: release.version.clone(),
            now: request.version.to_owned(),
        });
    }
    let then = covered(release);
    if then != request.services {
        found.push(Difference::Services {
            then,
            now: request.services.to_vec(),
        });
    }
    let keys: BTreeSet<&String> = release.set_keys.iter().chain(request.set_digests.keys()).collect();
    for key in keys {
        let given = release.set_keys.contains(key);
        let difference = match (given, release.set_digests.get(key), request.set_digests.get(key)) {
            (true, _, None) => Difference::SetMissing(key.clone()),
            (false, _, Some(_)) => Difference::SetExtra(key.clone()),
            (true, None, Some(_)) => Difference::SetUnrecorded(key.clone()),
            (true, Some(then), Some(now)) if then != now => Difference::SetValue(key.clone()),
            _ => continue,
        };
        found.push(difference);
    }
    found
}

impl Resume {
    /// The ids of the instances carried over: those that completed in the
    /// release resumed, but for `finally` instances (which run again), in
    /// plan order.
    #[must_use]
    pub fn carried(&self) -> Vec<&str> {
        self.release
            .instances()
            .iter()
            .filter(|i| i.status() == PhaseStatus::Completed && !i.finally)
            .map(super::InstanceRecord::id)
            .collect()
    }

    /// What the run of `plan` carries over: the positions in it of the
    /// [`carried`](Self::carried) instances.
    #[must_use]
    pub fn carry(&self, plan: &Plan) -> CarryOver {
        let carried: BTreeSet<&str> = self.carried().into_iter().collect();
        CarryOver {
            from: self.release.id.to_string(),
            instances: (0..plan.instances.len())
                .filter(|&p| !plan.instances[p].is_finally() && carried.contains(&*plan.instances[p].id))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::live::Services;
    use crate::state::release::test_header;

    fn release(set: &[(&str, Option<&str>)]) -> Release {
        let mut header = test_header(1, "deploy", "v2");
        header.digest = Some("sha256:aaaa".into());
        header.services = Some(Services {
            names: vec!["api".into(), "web".into()],
            all: true,
        });
        header.set_keys = set.iter().map(|(k, _)| (*k).to_owned()).collect();
        header.set_digests = set
            .iter()
            .filter_map(|(k, d)| d.map(|d| ((*k).to_owned(), d.to_owned())))
            .collect();
        Release::new(header, ["build[api]".to_owned()])
    }

    #[test]
    fn every_difference_is_named_in_order() {
        let release = release(&[("image", Some("sha256:1")), ("old", None), ("region", Some("sha256:2"))]);
        let services = ["api".to_owned()];
        let now: BTreeMap<String, String> = [("image", "sha256:9"), ("new", "sha256:3"), ("old", "sha256:4")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let request = ResumeRequest {
            env: "prod",
            release: None,
            digest: "sha256:bbbb",
            version: "v3",
            services: &services,
            set_digests: &now,
        };
        let id = release.id;
        let described: Vec<String> = differences(&release, &request).iter().map(|d| d.describe(id)).collect();
        assert_eq!(
            described,
            [
                format!("the pipeline file changed since {id} (digest aaaa then, bbbb now)"),
                format!("version: {id} ran `v2`, this run would be `v3`"),
                format!("services: {id} covered api, web, this run would cover api"),
                format!("--set image: value differs from {id}"),
                format!("--set new: not given to {id}"),
                format!("--set old: {id} did not record its value, so it cannot be compared"),
                format!("--set region: given to {id}, not now"),
            ]
        );
        let same: BTreeMap<String, String> = [("image", "sha256:1"), ("region", "sha256:2")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let services = ["api".to_owned(), "web".to_owned()];
        let release = self::release(&[("image", Some("sha256:1")), ("region", Some("sha256:2"))]);
        let request = ResumeRequest {
            digest: "sha256:aaaa",
            version: "v2",
            services: &services,
            set_digests: &same,
            ..request
        };
        assert_eq!(differences(&release, &request), []);
    }

    #[test]
    fn what_completed_is_carried_over_but_finally_instances_run_again() {
        use crate::engine::{Event, OnFailure, PlannedInstance, Reason};
        use crate::state::clock::Timestamp;
        let ids = ["build[api]", "migrate", "rollout[api]", "notify"];
        let mut release = Release::new(test_header(1, "deploy", "v2"), ids.map(str::to_owned));
        release.set_finally(&[3]);
        let at = Timestamp::from_millis(1_795_626_149_100);
        let started = |instance| Event::Started { instance, attempt: 1 };
        let completed = |instance| Event::Completed {
            instance,
            exit_code: Some(0),
        };
        let events = [
            started(0),
            completed(0),
            Event::CarriedOver {
                instance: 1,
                from: "rel-older".into(),
            },
            started(2),
            Event::Failed {
                instance: 2,
                exit_code: Some(1),
                reason: Reason::ExitCode,
            },
            started(3),
            completed(3),
        ];
        release.apply(&events, at).unwrap();
        release.finish(at).unwrap();
        assert_eq!(release.status(), ReleaseStatus::Failed);
        let resume = Resume { release };
        assert_eq!(
            resume.carried(),
            ["build[api]", "migrate"],
            "carried again, finally not"
        );
        // In the new plan, by id: the finally instance runs again.
        let finally = PlannedInstance {
            on_failure: Some(Box::new(OnFailure {
                command: Some("true".into()),
                enabled: true,
            })),
            ..crate::testing::instance("notify", &[])
        };
        let plan = crate::testing::plan(
            "webapp",
            "prod",
            "deploy",
            "v2",
            vec![
                crate::testing::instance("build[api]", &[]),
                crate::testing::instance("migrate", &[0]),
                crate::testing::instance("rollout[api]", &[1]),
                finally,
            ],
        );
        let carry = resume.carry(&plan);
        assert_eq!(carry.from, resume.release.id.to_string());
        assert_eq!(carry.instances.into_iter().collect::<Vec<_>>(), [0, 1]);
    }
}
