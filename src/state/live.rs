//! What is live in an env: for each service, the version that last
//! completed deploying it, and whether a newer release failed on it.
//!
//! [`Live`] is a value: the state of one env right after one release
//! finished. [`advance`] computes the next one from the previous one and a
//! finished release, by the rules of `spec/state.md` (*What is live*):
//!
//! * only `deploy` and `rollback` releases change it;
//! * a completed release makes every service it covered live at its
//!   version (a rollback's per-service version), except a service whose
//!   instances were all skipped as `unchanged`, which keeps its entry;
//! * a failed release marks each service it *touched* (one of the
//!   service's instances started) as failed at its version, keeping the
//!   last good version; services it did not touch keep their entry, and
//!   so do services it *undid* (see [`undid`]): they are back at their
//!   previous version.
//!
//! The state store keeps the `Live` after each deployment release with
//! that release, so what is live now, and what was live right after any
//! release, is read and never replayed.

use std::collections::BTreeMap;

use serde::Serialize;

use super::clock::Timestamp;
use super::id::ReleaseId;
use super::instance::InstanceRecord;
use super::release::{Release, ReleaseStatus};
use super::status::PhaseStatus;
use crate::engine::Reason;

/// The services a release covered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Services {
    /// Their names, sorted.
    pub names: Vec<String>,
    /// Whether they are every service of the pipeline (no `--services`).
    pub all: bool,
}

/// The state of one env's services right after a release.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Live {
    services: BTreeMap<String, ServiceState>,
}

/// One service's state in an env.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceState {
    /// The last good version: the one the newest release that completed
    /// deploying the service ran; `None` if none ever did.
    pub version: Option<String>,
    /// That release.
    pub release: Option<ReleaseId>,
    /// When it finished.
    pub at: Option<Timestamp>,
    /// Who ran it (`user@host`), when known.
    pub by: Option<String>,
    /// Set when the newest release that touched the service failed.
    pub failed: Option<FailedAt>,
}

/// A failed release that touched a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailedAt {
    /// The version it ran for the service.
    pub version: String,
    /// The release.
    pub release: ReleaseId,
}

impl Live {
    /// The services, by name.
    #[must_use]
    pub fn services(&self) -> &BTreeMap<String, ServiceState> {
        &self.services
    }

    /// One service's state.
    #[must_use]
    pub fn service(&self, name: &str) -> Option<&ServiceState> {
        self.services.get(name)
    }

    /// Whether nothing was ever deployed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// Builds a state from its entries (storage reads it back this way).
    #[must_use]
    pub fn from_services(services: impl IntoIterator<Item = (String, ServiceState)>) -> Self {
        Self {
            services: services.into_iter().collect(),
        }
    }

    /// Whether `self` and `other` would run the same versions: the same
    /// services, each at the same last good version and neither failed.
    /// A failed service never equals anything (its real state is not
    /// known), so a rollback after a failed release always has something
    /// to restore.
    #[must_use]
    pub fn same_versions(&self, other: &Self) -> bool {
        self.services.len() == other.services.len()
            && self.services.iter().zip(&other.services).all(|((a, sa), (b, sb))| {
                a == b && sa.failed.is_none() && sb.failed.is_none() && sa.version == sb.version
            })
    }
}

/// The version `release` ran for `service`: its per-service version (a
/// rollback), else its version.
#[must_use]
pub fn version_for<'r>(release: &'r Release, service: &str) -> &'r str {
    release.versions.get(service).map_or(&release.version, String::as_str)
}

/// The service of an instance id (`rollout[api]` → `api`), if it is a
/// per-service instance.
#[must_use]
pub fn service_of(instance: &str) -> Option<&str> {
    let open = instance.find('[')?;
    instance[open + 1..].strip_suffix(']')
}

/// The services `release` covered: as recorded, or (for a release recorded
/// before services were) the services named by its instances.
#[must_use]
pub fn covered(release: &Release) -> Vec<String> {
    if let Some(services) = &release.services {
        return services.names.clone();
    }
    let mut names: Vec<String> = release
        .instances()
        .iter()
        .filter_map(|i| service_of(i.id()))
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Whether a failed release undid what it did to a service, given the
/// service's instances: at least one of them was undone, and every other
/// one did not run, was skipped, or completed without an `undo` (none
/// failed, none has an undo that failed or was not attempted).
fn undid(instances: &[&InstanceRecord]) -> bool {
    instances.iter().any(|i| i.status() == PhaseStatus::Undone)
        && instances.iter().all(|i| match i.status() {
            PhaseStatus::Undone | PhaseStatus::Skipped | PhaseStatus::Pending => true,
            PhaseStatus::Completed => i.undo().is_none(),
            _ => false,
        })
}

/// The state of `release`'s env right after it finished, given the state
/// right before. A release that is not a deploy or rollback, or is not
/// finished, changes nothing.
#[must_use]
pub fn advance(before: &Live, release: &Release) -> Live {
    let mut after = before.clone();
    if !super::query::is_deployment(&release.workflow) {
        return after;
    }
    let Some(at) = release.finished_at else {
        return after;
    };
    let status = release.status();
    for service in covered(release) {
        let instances: Vec<_> = release
            .instances()
            .iter()
            .filter(|i| service_of(i.id()) == Some(service.as_str()))
            .collect();
        let version = version_for(release, &service).to_owned();
        match status {
            ReleaseStatus::Completed => {
                let unchanged = !instances.is_empty()
                    && instances
                        .iter()
                        .all(|i| i.status() == PhaseStatus::Skipped && i.reason() == Some(&Reason::Unchanged));
                if !unchanged {
                    after.services.insert(
                        service,
                        ServiceState {
                            version: Some(version),
                            release: Some(release.id),
                            at: Some(at),
                            by: release.user.clone(),
                            failed: None,
                        },
                    );
                }
            }
            ReleaseStatus::Failed => {
                if instances.iter().any(|i| !i.attempts().is_empty()) && !undid(&instances) {
                    let entry = after.services.entry(service).or_insert(ServiceState {
                        version: None,
                        release: None,
                        at: None,
                        by: None,
                        failed: None,
                    });
                    entry.failed = Some(FailedAt {
                        version,
                        release: release.id,
                    });
                }
            }
            ReleaseStatus::Pending | ReleaseStatus::Running => {}
        }
    }
    after
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Event;
    use crate::state::release::test_header;

    /// How one instance ended.
    #[derive(Clone, Copy)]
    enum End {
        Completed,
        Failed,
        Unchanged,
        NotRun,
    }

    /// Release `n` of `workflow` at `version`, its instances ending as
    /// given, finished.
    fn release(n: u64, workflow: &str, version: &str, instances: &[(&str, End)]) -> Release {
        let mut header = test_header(n, workflow, version);
        header.user = Some("ci@vm".into());
        let mut release = Release::new(header, instances.iter().map(|(id, _)| (*id).to_owned()));
        let at = release.started_at;
        for (instance, (_, end)) in instances.iter().enumerate() {
            let started = Event::Started { instance, attempt: 1 };
            let events = match end {
                End::Completed => vec![
                    started,
                    Event::Completed {
                        instance,
                        exit_code: Some(0),
                    },
                ],
                End::Failed => vec![
                    started,
                    Event::Failed {
                        instance,
                        exit_code: Some(1),
                        reason: Reason::ExitCode,
                    },
                ],
                End::Unchanged => vec![Event::Skipped {
                    instance,
                    reason: Reason::Unchanged,
                }],
                End::NotRun => vec![Event::Skipped {
                    instance,
                    reason: Reason::Failed("rollout[api]".into()),
                }],
            };
            release.apply(&events, at).unwrap();
        }
        release.finish(at).unwrap();
        release
    }

    fn all(names: &[&str]) -> Services {
        Services {
            names: names.iter().map(|&n| n.to_owned()).collect(),
            all: true,
        }
    }

    /// `service version [failed-version]` for each service.
    fn show(live: &Live) -> Vec<String> {
        live.services()
            .iter()
            .map(|(name, state)| {
                let mut text = format!("{name} {}", state.version.as_deref().unwrap_or("-"));
                if let Some(failed) = &state.failed {
                    text.push_str(" failed at ");
                    text.push_str(&failed.version);
                }
                text
            })
            .collect()
    }

    const BOTH: [(&str, End); 4] = [
        ("build[api]", End::Completed),
        ("build[web]", End::Completed),
        ("rollout[api]", End::Completed),
        ("rollout[web]", End::Completed),
    ];

    #[test]
    fn a_completed_deploy_makes_every_service_live() {
        let mut deploy = release(1, "deploy", "v1", &BOTH);
        deploy.header.services = Some(all(&["api", "web"]));
        let live = advance(&Live::default(), &deploy);
        assert_eq!(show(&live), ["api v1", "web v1"]);
        let api = live.service("api").unwrap();
        assert_eq!((api.release, api.by.as_deref()), (Some(deploy.id), Some("ci@vm")));
        // A build changes nothing.
        let build = release(2, "build", "v2", &BOTH);
        assert_eq!(advance(&live, &build), live);
    }

    #[test]
    fn a_partial_deploy_changes_only_its_services() {
        let v1 = advance(&Live::default(), &release(1, "deploy", "v1", &BOTH));
        let mut web = release(
            2,
            "deploy",
            "v2",
            &[("build[web]", End::Completed), ("rollout[web]", End::Completed)],
        );
        web.header.services = Some(Services {
            names: vec!["web".into()],
            all: false,
        });
        assert_eq!(show(&advance(&v1, &web)), ["api v1", "web v2"]);
        // Recorded before services were: its instances say which.
        web.header.services = None;
        assert_eq!(show(&advance(&v1, &web)), ["api v1", "web v2"]);
    }

    #[test]
    fn a_failed_release_marks_only_the_services_it_touched() {
        let v1 = advance(&Live::default(), &release(1, "deploy", "v1", &BOTH));
        let failed = release(
            2,
            "deploy",
            "v2",
            &[
                ("build[api]", End::Completed),
                ("rollout[api]", End::Failed),
                ("build[web]", End::NotRun),
                ("rollout[web]", End::NotRun),
            ],
        );
        let live = advance(&v1, &failed);
        assert_eq!(show(&live), ["api v1 failed at v2", "web v1"]);
        assert_eq!(live.service("api").unwrap().failed.as_ref().unwrap().release, failed.id);
        assert!(!live.same_versions(&v1), "a failed service is never the same");
        // A new service that failed on its first deploy has no good version.
        let first = release(3, "deploy", "v3", &[("rollout[db]", End::Failed)]);
        assert_eq!(show(&advance(&live, &first))[1], "db - failed at v3");
    }

    #[test]
    fn a_rollback_restores_per_service_versions_and_skips_unchanged() {
        let v1 = advance(&Live::default(), &release(1, "deploy", "v1", &BOTH));
        let v2 = advance(&v1, &release(2, "deploy", "v2", &BOTH));
        // Back to v1 for api; web was already at its target.
        let mut rollback = release(
            3,
            "rollback",
            "v1",
            &[("rollout[api]", End::Completed), ("rollout[web]", End::Unchanged)],
        );
        rollback.header.versions.insert("web".into(), "v2".into());
        assert_eq!(
            rollback.status(),
            ReleaseStatus::Completed,
            "an unchanged skip completes"
        );
        let live = advance(&v2, &rollback);
        assert_eq!(show(&live), ["api v1", "web v2"]);
        // The unchanged service keeps its entry: the release that made it live.
        assert_eq!(live.service("web"), v2.service("web"));
        assert_eq!(live.service("api").unwrap().release, Some(rollback.id));
        assert_eq!(version_for(&rollback, "web"), "v2");
        assert_eq!(version_for(&rollback, "api"), "v1");
    }

    #[test]
    fn instance_ids_name_their_service() {
        assert_eq!(service_of("rollout[api]"), Some("api"));
        assert_eq!(service_of("finalize"), None);
    }
}
