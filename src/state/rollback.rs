//! Which state a rollback restores, and what it changes per service.
//!
//! A rollback restores a *state*, not a version string: the target is a
//! release, and each service goes back to the version it had right after
//! that release (its [`Live`] state, kept with the release). The rules
//! (`spec/commands/rollback.md`):
//!
//! * `--to-release R`: R, which must be a completed deploy or rollback of
//!   the env and not its current release;
//! * `--to-version V`: the newest completed deploy or rollback with
//!   version V;
//! * `--to-previous`: the newest completed deploy or rollback older than
//!   the current release that was not *rolled away from* (a rollback to T
//!   rolls away every release between T and itself) and whose state
//!   differs from today's, for the services the rollback covers.
//!
//! [`restore`] walks the env's history newest first and stops at the
//! target, so its cost is the distance to the target, not the size of the
//! history. It reads nothing itself.

use std::collections::BTreeMap;

use super::error::StateError;
use super::id::ReleaseId;
use super::live::{Live, ServiceState};
use super::query::{ReleaseSummary, RollbackError, RollbackTarget};
use super::release::ReleaseStatus;

/// What a rollback will do: its target and each service's change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restore {
    /// The release whose state is restored.
    pub target: ReleaseSummary,
    /// The env's current release (the rollback's `previous`).
    pub current: ReleaseId,
    /// The services that change, sorted by name.
    pub changes: Vec<Change>,
    /// The services already at their target version (or that the target's
    /// state does not have): their instances are skipped as `unchanged`.
    pub unchanged: Vec<String>,
    /// Every covered service's version in the target's state.
    pub targets: BTreeMap<String, String>,
}

/// One service's change in a rollback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The service.
    pub service: String,
    /// Its state now (`None`: never deployed to the env).
    pub from: Option<ServiceState>,
    /// The version it goes back to.
    pub to: String,
}

impl Restore {
    /// The rollback's per-service versions: every service's target version
    /// that differs from the target release's version (so an unchanged
    /// service's instances, skipped, show the version it stays at).
    #[must_use]
    pub fn versions(&self) -> BTreeMap<String, String> {
        self.targets
            .iter()
            .filter(|(_, version)| **version != self.target.version)
            .map(|(service, version)| (service.clone(), version.clone()))
            .collect()
    }
}

/// Which services a rollback covers.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    /// Every service of the pipeline.
    pub services: &'a [String],
    /// `--services`: only these, and each of them runs even when it is
    /// already at its target version.
    pub selected: Option<&'a [String]>,
}

impl Scope<'_> {
    fn covers(&self, service: &str) -> bool {
        self.selected.map_or_else(
            || self.services.iter().any(|s| s == service),
            |selected| selected.iter().any(|s| s == service),
        )
    }

    fn names(&self, service: &str) -> bool {
        self.selected
            .is_some_and(|selected| selected.iter().any(|s| s == service))
    }
}

/// The state a rollback of `env` restores. `history` is the env's releases,
/// newest first (every workflow); `now` is what is live in the env today.
///
/// # Errors
///
/// The outer error is a state file that could not be read; the inner one a
/// refusal that names the release (or says what is missing).
pub fn restore(
    history: impl IntoIterator<Item = Result<ReleaseSummary, StateError>>,
    env: &str,
    now: &Live,
    target: &RollbackTarget,
    scope: Scope<'_>,
) -> Result<Result<Restore, RollbackError>, StateError> {
    let mut current: Option<ReleaseId> = None;
    // The oldest target of the rollbacks seen so far: a release newer than
    // it (and older than that rollback) was rolled away from.
    let mut rolled_back_to: Option<ReleaseId> = None;
    for release in history {
        let release = release?;
        if let RollbackTarget::Release(id) = target
            && release.id.to_string() == *id
        {
            return Ok(judge(release, current, env).map(|(r, current)| changes(r, current, now, scope)));
        }
        if !release.is_deployment() {
            continue;
        }
        let Some(current_id) = current else {
            current = Some(release.id);
            note_rollback(&release, &mut rolled_back_to);
            if let RollbackTarget::Version(version) = target
                && release.version == *version
                && release.status == ReleaseStatus::Completed
            {
                return Ok(Err(RollbackError::Current {
                    id: release.id,
                    env: env.to_owned(),
                }));
            }
            continue;
        };
        let rolled_away = rolled_back_to.is_some_and(|t| t < release.id);
        note_rollback(&release, &mut rolled_back_to);
        if release.status != ReleaseStatus::Completed {
            continue;
        }
        let found = match target {
            RollbackTarget::Version(version) => release.version == *version,
            RollbackTarget::Previous => !rolled_away && differs(&release, now, scope),
            RollbackTarget::Release(_) => false,
        };
        if found {
            return Ok(Ok(changes(release, current_id, now, scope)));
        }
    }
    Ok(Err(match (target, current) {
        (RollbackTarget::Release(id), _) => RollbackError::UnknownRelease { id: id.clone() },
        (_, None) => RollbackError::NoReleases { env: env.to_owned() },
        (RollbackTarget::Version(version), Some(_)) => RollbackError::NoVersion {
            env: env.to_owned(),
            version: version.clone(),
        },
        (RollbackTarget::Previous, Some(current)) => RollbackError::NoPrevious {
            env: env.to_owned(),
            current,
        },
    }))
}

fn note_rollback(release: &ReleaseSummary, rolled_back_to: &mut Option<ReleaseId>) {
    if let Some(target) = release.rollback_of {
        *rolled_back_to = Some(rolled_back_to.map_or(target, |t| t.min(target)));
    }
}

/// A release named by id: it must be a completed deploy or rollback that
/// is not the current release (`current` is `None` when it is the newest
/// deployment, that is, the current release).
fn judge(
    release: ReleaseSummary,
    current: Option<ReleaseId>,
    env: &str,
) -> Result<(ReleaseSummary, ReleaseId), RollbackError> {
    if !release.is_deployment() {
        return Err(RollbackError::NotDeployment {
            id: release.id,
            workflow: release.workflow.clone(),
        });
    }
    if release.status != ReleaseStatus::Completed {
        return Err(RollbackError::NotCompleted {
            id: release.id,
            status: release.status,
        });
    }
    match current {
        Some(current) => Ok((release, current)),
        None => Err(RollbackError::Current {
            id: release.id,
            env: env.to_owned(),
        }),
    }
}

/// Whether the state right after `release` differs from `now` for a
/// covered service.
fn differs(release: &ReleaseSummary, now: &Live, scope: Scope<'_>) -> bool {
    let Some(then) = &release.live else {
        return false;
    };
    then.services()
        .iter()
        .filter(|(s, _)| scope.covers(s))
        .any(|(service, was)| {
            was.version.is_some()
                && now
                    .service(service)
                    .is_none_or(|is| is.failed.is_some() || is.version != was.version)
        })
}

/// The per-service changes that bring `now` back to the state right after
/// `target`. A service the target's state does not have keeps its state.
fn changes(target: ReleaseSummary, current: ReleaseId, now: &Live, scope: Scope<'_>) -> Restore {
    let mut changes = Vec::new();
    let mut unchanged = Vec::new();
    let mut targets = BTreeMap::new();
    let then = target.live.clone().unwrap_or_default();
    for service in scope.services.iter().filter(|s| scope.covers(s)) {
        let to = then.service(service).and_then(|s| s.version.clone());
        if let Some(to) = &to {
            targets.insert(service.clone(), to.clone());
        }
        let from = now.service(service).cloned();
        match to {
            Some(to)
                if scope.names(service)
                    || from
                        .as_ref()
                        .is_none_or(|f| f.failed.is_some() || f.version.as_deref() != Some(&to)) =>
            {
                changes.push(Change {
                    service: service.clone(),
                    from,
                    to,
                });
            }
            _ => unchanged.push(service.clone()),
        }
    }
    Restore {
        target,
        current,
        changes,
        unchanged,
        targets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::release::test_header;

    const SERVICES: [&str; 3] = ["api", "web", "worker"];

    /// The history as a list, newest last while it is written.
    #[derive(Default)]
    struct History {
        releases: Vec<ReleaseSummary>,
        live: Live,
    }

    impl History {
        /// A finished deployment: `workflow` at `version`, leaving each of
        /// `services` at its version (`(service, version, failed)`).
        fn push(
            &mut self,
            workflow: &str,
            version: &str,
            status: ReleaseStatus,
            services: &[(&str, &str, bool)],
        ) -> ReleaseId {
            let n = u64::try_from(self.releases.len()).unwrap_or(0);
            let mut header = test_header(n, workflow, version);
            header.previous = self.releases.last().map(|r| r.id);
            let id = header.id;
            let mut entries: BTreeMap<String, ServiceState> = self.live.services().clone();
            for (service, version, failed) in services {
                let entry = entries.entry((*service).to_owned()).or_insert(ServiceState {
                    version: None,
                    release: None,
                    at: None,
                    by: None,
                    failed: None,
                });
                if *failed {
                    entry.failed = Some(super::super::live::FailedAt {
                        version: (*version).to_owned(),
                        release: id,
                    });
                } else {
                    entry.version = Some((*version).to_owned());
                    entry.release = Some(id);
                    entry.failed = None;
                }
            }
            self.live = Live::from_services(entries);
            self.releases.push(ReleaseSummary {
                finished_at: Some(header.started_at),
                header,
                status,
                live: Some(self.live.clone()),
            });
            id
        }

        fn deploy(&mut self, version: &str, services: &[&str]) -> ReleaseId {
            let entries: Vec<_> = services.iter().map(|s| (*s, version, false)).collect();
            self.push("deploy", version, ReleaseStatus::Completed, &entries)
        }

        /// Runs the rollback `restore` chooses, recording it like the CLI.
        fn roll_back(&mut self, target: &RollbackTarget) -> Result<Restore, String> {
            let chosen = self.restore(target)?;
            let entries: Vec<(String, String)> = chosen
                .changes
                .iter()
                .map(|c| (c.service.clone(), c.to.clone()))
                .collect();
            let entries: Vec<(&str, &str, bool)> =
                entries.iter().map(|(s, v)| (s.as_str(), v.as_str(), false)).collect();
            let id = self.push(
                "rollback",
                &chosen.target.version.clone(),
                ReleaseStatus::Completed,
                &entries,
            );
            let last = self.releases.last_mut().expect("just pushed");
            assert_eq!(last.id, id);
            last.header.rollback_of = Some(chosen.target.id);
            Ok(chosen)
        }

        fn restore(&self, target: &RollbackTarget) -> Result<Restore, String> {
            let services: Vec<String> = SERVICES.iter().map(|s| (*s).to_owned()).collect();
            let scope = Scope {
                services: &services,
                selected: None,
            };
            let history = self.releases.iter().rev().cloned().map(Ok);
            restore(history, "prod", &self.live, target, scope)
                .expect("no state error")
                .map_err(|e| e.to_string())
        }
    }

    fn changes(restore: &Restore) -> Vec<String> {
        restore
            .changes
            .iter()
            .map(|c| {
                let from = c.from.as_ref().and_then(|f| f.version.clone()).unwrap_or_default();
                format!("{} {from}->{}", c.service, c.to)
            })
            .collect()
    }

    #[test]
    fn partial_deploys_are_undone_one_change_at_a_time() {
        let mut history = History::default();
        let s1 = history.deploy("s1", &SERVICES);
        history.deploy("s2", &["web"]);
        history.deploy("s3", &["api"]);
        let first = history.roll_back(&RollbackTarget::Previous).unwrap();
        assert_eq!(changes(&first), ["api s3->s1"]);
        assert_eq!(first.unchanged, ["web", "worker"]);
        assert_eq!(
            first.versions(),
            BTreeMap::from([("api".into(), "s1".into()), ("worker".into(), "s1".into())])
        );
        let second = history.roll_back(&RollbackTarget::Previous).unwrap();
        assert_eq!(second.target.id, s1);
        assert_eq!(changes(&second), ["web s2->s1"]);
        let third = history.roll_back(&RollbackTarget::Previous).unwrap_err();
        assert!(third.starts_with("nothing to roll back to"), "{third}");
    }

    #[test]
    fn a_release_rolled_away_from_is_not_restored_by_previous() {
        let mut history = History::default();
        history.deploy("t1", &SERVICES);
        let t2 = history.deploy("t2", &SERVICES);
        history.roll_back(&RollbackTarget::Previous).unwrap();
        let again = history.restore(&RollbackTarget::Previous).unwrap_err();
        assert!(again.starts_with("nothing to roll back to"), "{again}");
        // Named, it is restored.
        let named = history.restore(&RollbackTarget::Release(t2.to_string())).unwrap();
        assert_eq!(changes(&named).len(), 3);
    }

    #[test]
    fn after_a_failed_release_the_last_good_state_is_restored() {
        let mut history = History::default();
        history.deploy("v1", &SERVICES);
        history.push("deploy", "v2", ReleaseStatus::Failed, &[("api", "v2", true)]);
        let chosen = history.restore(&RollbackTarget::Previous).unwrap();
        assert_eq!(changes(&chosen), ["api v1->v1"]);
        assert!(chosen.changes[0].from.as_ref().is_some_and(|f| f.failed.is_some()));
        assert_eq!(chosen.unchanged, ["web", "worker"]);
    }

    #[test]
    fn refusals_name_the_release() {
        let mut history = History::default();
        assert_eq!(
            history.restore(&RollbackTarget::Previous).unwrap_err(),
            "env `prod` has no releases to roll back"
        );
        let v1 = history.deploy("v1", &SERVICES);
        let failed = history.push("deploy", "v2", ReleaseStatus::Failed, &[("api", "v2", true)]);
        let build = history.push("build", "v3", ReleaseStatus::Completed, &[]);
        assert_eq!(
            history
                .restore(&RollbackTarget::Release(failed.to_string()))
                .unwrap_err(),
            format!("release {failed} is failed, not completed")
        );
        assert_eq!(
            history
                .restore(&RollbackTarget::Release(build.to_string()))
                .unwrap_err(),
            format!("release {build} is a `build` run, not a deploy or rollback")
        );
        assert_eq!(
            history.restore(&RollbackTarget::Version("v9".into())).unwrap_err(),
            "no completed release of `prod` has version `v9`"
        );
        assert_eq!(
            history.restore(&RollbackTarget::Release("rel-x".into())).unwrap_err(),
            "unknown release `rel-x`"
        );
        assert_eq!(
            history
                .restore(&RollbackTarget::Version("v1".into()))
                .unwrap()
                .target
                .id,
            v1
        );
        let v4 = history.deploy("v4", &SERVICES);
        assert_eq!(
            history.restore(&RollbackTarget::Release(v4.to_string())).unwrap_err(),
            format!("release {v4} is already the current release of `prod`")
        );
    }
}
