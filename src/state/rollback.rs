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
    /// The services already at their target version: their instances are
    /// skipped as `unchanged`.
    pub unchanged: Vec<String>,
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
    /// that differs from the target release's version.
    #[must_use]
    pub fn versions(&self) -> BTreeMap<String, String> {
        self.changes
            .iter()
            .filter(|c| c.to != self.target.version)
            .map(|c| (c.service.clone(), c.to.clone()))
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
    let then = target.live.clone().unwrap_or_default();
    for service in scope.services.iter().filter(|s| scope.covers(s)) {
        let to = then.service(service).and_then(|s| s.version.clone());
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
    }
}
