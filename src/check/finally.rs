//! `finally` phases and `after`: a `finally` phase runs once every other
//! instance of the workflow has ended, so `after` orders finally phases
//! among themselves only. A phase that is not `finally` cannot wait for
//! one (it would never run), and a `finally` phase need not wait for one
//! that is not (it always does).
//!
//! A `finally` phase has no `undo`: the undos of a failed release run
//! before the `finally` phases, so nothing would ever undo one.

use super::NameMap;
use super::pipeline::{Dependency, Phase, PhaseId};
use crate::syntax::{Code, Diagnostic, Span};

/// `undo` (at `undo`) in `finally` phase `name` (declared `finally` at
/// `finally`).
pub(super) fn undo_in_finally(name: &str, undo: Span, finally: Span) -> Diagnostic {
    Diagnostic::error(
        Code::UndoInFinally,
        format!("`finally` phase `{name}` cannot have an `undo`"),
    )
    .label(undo, "never run: undos run before `finally` phases")
    .label(finally, "declared `finally` here")
    .help("remove the `undo`, or do the clean-up in the `finally` phase's own command")
}

/// Reports each dependency of phase `id` that crosses between `finally`
/// and other phases.
pub(super) fn check_order(
    phases: &NameMap<&str, Phase<'_>>,
    id: PhaseId,
    after: &[Dependency],
    diagnostics: &mut Vec<Diagnostic>,
) {
    let phase = &phases[id];
    for dependency in after {
        let target = &phases[dependency.phase];
        let (name, other) = (phase.name.name, target.name.name);
        let diagnostic = match (phase.finally, target.finally) {
            (None, Some(finally)) => Diagnostic::error(
                Code::FinallyOrder,
                format!("phase `{name}` cannot run after `finally` phase `{other}`"),
            )
            .label(dependency.span, format!("`{other}` runs after every other phase"))
            .label(finally, "declared `finally` here")
            .help(format!(
                "remove `{other}` from the `after` list, or make `{name}` a `finally` phase too"
            )),
            (Some(_), None) => Diagnostic::error(
                Code::FinallyOrder,
                format!("`finally` phase `{name}` cannot wait for phase `{other}`"),
            )
            .label(
                dependency.span,
                format!("`{name}` already runs after every other phase"),
            )
            .help("remove it from the `after` list: in a `finally` phase, `after` orders `finally` phases only"),
            _ => continue,
        };
        diagnostics.push(diagnostic);
    }
}
