//! Meaning: from an [`Ast`] to a resolved [`Pipeline`] or the list of
//! everything wrong with it.
//!
//! `check` resolves names (envs, services, phases, workflows), checks
//! clauses and durations, checks every variable reference and looks for
//! inheritance and variable cycles, checks secrets (`secrets`), reporting all problems of a file in one
//! pass, and records what each name resolved to ([`Resolution`], which the
//! language server answers definition and references from). Dependency
//! cycles between phase instances are found by [`crate::graph`], which sees
//! the instances, with the same finder (`cycle`). `Scope` expands
//! variables and evaluates conditions once an env is chosen.

mod broken;
pub(crate) mod cycle;
pub mod duration;
mod finally;
mod pipeline;
mod resolution;
mod resolve;
mod scope;
mod secrets;
mod variables;

pub use pipeline::{Dependency, Env, EnvId, Phase, PhaseId, Pipeline, Retry, Secret, Service, ServiceId, Workflow};
pub use resolution::{Kind, Name, Resolution};
pub(crate) use scope::{Builtins, Scope};
pub(crate) use variables::BUILTINS;

use crate::syntax::Diagnostic;
use crate::syntax::ast::Ast;

/// The hasher of the maps keyed by names: `SipHash`'s resistance to chosen
/// keys buys nothing for names from the user's own file, and it was a large
/// share of checking big pipelines. Fixed seed, so nothing depends on chance;
/// maps whose order reaches output are [`NameMap`]s, which keep insertion
/// order whatever the hasher.
pub type FastState = foldhash::fast::FixedState;
/// An insertion-ordered map with the [`FastState`] hasher.
pub type NameMap<K, V> = indexmap::IndexMap<K, V, FastState>;
/// A lookup-only hash map with the [`FastState`] hasher (never iterated
/// where order reaches output).
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, FastState>;
/// A lookup-only hash set with the [`FastState`] hasher.
pub(crate) type HashSet<K> = std::collections::HashSet<K, FastState>;

/// The outcome of checking one file.
#[derive(Debug)]
pub struct Checked<'s> {
    /// The resolved pipeline. With errors, references that failed to
    /// resolve are left out; do not execute it.
    pub pipeline: Pipeline<'s>,
    /// Errors and warnings, in the order found.
    pub diagnostics: Vec<Diagnostic>,
    /// What each name in the file resolved to.
    pub resolution: Resolution,
}

/// Checks a parsed file.
#[must_use]
pub fn check(ast: Ast<'_>) -> Checked<'_> {
    let mut diagnostics = Vec::new();
    let (pipeline, resolution) = resolve::resolve(ast, &mut diagnostics);
    Checked {
        pipeline,
        diagnostics,
        resolution,
    }
}
