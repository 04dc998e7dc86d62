//! The resolved pipeline: every name is an index that exists.
//!
//! Templates and conditions keep variable *names*, because a variable is
//! expanded in the scope where it is used (the env, the phase, the service);
//! `check` has already verified that each name is defined somewhere.

use std::time::Duration;

use super::NameMap;
use crate::syntax::Span;
use crate::syntax::ast::{Expr, Ident, SecretFrom, Template};

/// Index of an env in [`Pipeline::envs`].
pub type EnvId = usize;
/// Index of a service in [`Pipeline::services`].
pub type ServiceId = usize;
/// Index of a phase in [`Pipeline::phases`].
pub type PhaseId = usize;

/// A pipeline whose names all resolve. Maps keep declaration order, which is
/// what breaks ties in execution order.
#[derive(Clone, Debug, Default)]
pub struct Pipeline<'s> {
    /// `pipeline NAME`.
    pub name: &'s str,
    /// Global variables.
    pub vars: NameMap<&'s str, Template<'s>>,
    /// Global secrets (an env's own override them).
    pub secrets: NameMap<&'s str, Secret<'s>>,
    /// Environments.
    pub envs: NameMap<&'s str, Env<'s>>,
    /// Services.
    pub services: NameMap<&'s str, Service<'s>>,
    /// Phases.
    pub phases: NameMap<&'s str, Phase<'s>>,
    /// Workflows.
    pub workflows: NameMap<&'s str, Workflow<'s>>,
}

/// An environment.
#[derive(Clone, Debug)]
pub struct Env<'s> {
    /// Its name as declared.
    pub name: Ident<'s>,
    /// `extends PARENT` as written.
    pub extends: Option<Ident<'s>>,
    /// The env it extends, if any (never part of a cycle).
    pub parent: Option<EnvId>,
    /// `protected`, where the env itself says so (see
    /// [`Pipeline::is_protected`] for what it inherits).
    pub protected: Option<Span>,
    /// `undo on failure`, where the env itself says so (see
    /// [`Pipeline::undoes_on_failure`] for what it inherits).
    pub undo_on_failure: Option<Span>,
    /// Values it sets or overrides.
    pub values: NameMap<&'s str, Template<'s>>,
    /// Secrets it declares or overrides.
    pub secrets: NameMap<&'s str, Secret<'s>>,
}

/// A secret: a name commands see as an environment variable, and where its
/// value is read when a run starts. Never the value itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secret<'s> {
    /// Its name as declared.
    pub name: Ident<'s>,
    /// An environment variable of stagecraft's, or a file.
    pub from: SecretFrom,
    /// The variable's name or the file's path.
    pub source: String,
}

impl std::fmt::Display for Secret<'_> {
    /// `<secret from env VAR>` or `<secret from file PATH>`: what plans
    /// show in place of the value.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<secret from {} {}>", self.from.keyword(), self.source)
    }
}

/// A service.
#[derive(Clone, Debug)]
pub struct Service<'s> {
    /// Its name as declared.
    pub name: Ident<'s>,
    /// Attributes, readable as `{{service.NAME}}`.
    pub attrs: NameMap<&'s str, Template<'s>>,
    /// Services whose instances precede this one's, with the place it says so.
    pub after: Vec<(ServiceId, Span)>,
}

/// A phase.
#[derive(Clone, Debug)]
pub struct Phase<'s> {
    /// Its name as declared.
    pub name: Ident<'s>,
    /// `for each service`: one instance per service instead of one.
    pub per_service: bool,
    /// Dependencies, in source order.
    pub after: Vec<Dependency>,
    /// The condition; `None` is always true.
    pub when: Option<Box<Expr<'s>>>,
    /// The command; `None` makes a marker phase.
    pub run: Option<Template<'s>>,
    /// Kill the command after this long.
    pub timeout: Option<Duration>,
    /// Re-run policy on failure.
    pub retry: Retry,
    /// `finally`, where it is written: the phase runs after every other
    /// instance of the workflow has ended, whatever happened.
    pub finally: Option<Span>,
    /// `undo "…"`: the command that undoes an instance's `run` when a
    /// failed release is undone.
    pub undo: Option<Box<Template<'s>>>,
}

/// `after P` or `after P[svc]`, resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dependency {
    /// The phase depended on.
    pub phase: PhaseId,
    /// One instance of it, for `P[svc]`.
    pub service: Option<ServiceId>,
    /// The dependency as written, where cycle diagnostics point.
    pub span: Span,
}

/// `retry N backoff D`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retry {
    /// Extra attempts after the first.
    pub count: u32,
    /// Pause between attempts.
    pub backoff: Duration,
}

/// A workflow.
#[derive(Clone, Debug)]
pub struct Workflow<'s> {
    /// Its name as declared.
    pub name: Ident<'s>,
    /// The phases it runs, in the order listed (order does not affect the
    /// plan, which follows dependencies and declaration order).
    pub phases: Vec<PhaseId>,
}

impl<'s> Pipeline<'s> {
    /// The env named `name`.
    #[must_use]
    pub(crate) fn env_id(&self, name: &str) -> Option<EnvId> {
        self.envs.get_index_of(name)
    }

    /// The service named `name`.
    #[must_use]
    pub(crate) fn service_id(&self, name: &str) -> Option<ServiceId> {
        self.services.get_index_of(name)
    }

    /// Whether running in `env` must be confirmed: it or an env it
    /// extends says `protected`.
    #[must_use]
    pub fn is_protected(&self, env: EnvId) -> bool {
        self.env_chain(env).any(|e| e.protected.is_some())
    }

    /// Whether a failed release in `env` is undone: it or an env it
    /// extends says `undo on failure`.
    #[must_use]
    pub fn undoes_on_failure(&self, env: EnvId) -> bool {
        self.env_chain(env).any(|e| e.undo_on_failure.is_some())
    }

    /// The workflows that run `phase`, in declaration order.
    pub fn workflows_with(&self, phase: PhaseId) -> impl Iterator<Item = &'s str> + '_ {
        self.workflows
            .values()
            .filter(move |w| w.phases.contains(&phase))
            .map(|w| w.name.name)
    }

    /// The secrets commands see in `env`: the global ones, each overridden
    /// by the nearest declaration of its name along the env's chain; in
    /// declaration order, globals first.
    #[must_use]
    pub fn secrets_in(&self, env: EnvId) -> Vec<&Secret<'s>> {
        let mut secrets: NameMap<&str, &Secret<'s>> = self.secrets.iter().map(|(k, v)| (*k, v)).collect();
        let chain: Vec<&Env<'s>> = self.env_chain(env).collect();
        for env in chain.into_iter().rev() {
            secrets.extend(env.secrets.iter().map(|(k, v)| (*k, v)));
        }
        secrets.into_values().collect()
    }

    /// Whether some scope declares a secret named `name`.
    #[must_use]
    pub fn is_secret(&self, name: &str) -> bool {
        self.secrets.contains_key(name) || self.envs.values().any(|env| env.secrets.contains_key(name))
    }

    /// The env chain from `env` up through its parents.
    pub(crate) fn env_chain(&self, env: EnvId) -> impl Iterator<Item = &Env<'s>> {
        std::iter::successors(Some(env), |&id| self.envs[id].parent).map(|id| &self.envs[id])
    }
}
