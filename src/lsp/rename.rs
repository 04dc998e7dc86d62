//! Rename of a phase, env, service, variable, secret or service attribute
//! across the file, from the checker's resolution table: every declaration
//! and every use of the same thing (for a secret, also each `$NAME` and
//! `${NAME}` in a command). A new name is refused when it is not a name
//! (the syntax's rule), when something of the same namespace already has
//! it, when a built-in has it, or when a use that resolves to nothing (a
//! typo) has it, which the rename would quietly make resolve. Built-ins,
//! workflows, the pipeline and names that resolve to nothing cannot be
//! renamed, and nothing is renamed while a declaration does not parse (it
//! may use the name, and the table does not know its uses).

use super::document::{Analysis, Document};
use super::hover::shell_uses;
use crate::check::{BUILTINS, Kind, Name};
use crate::syntax::{Code, Span, is_ident};

/// Why a rename is refused: the message the editor shows.
pub(super) type Refusal = String;

/// Whether `name` can be renamed; the span to edit if so.
pub(super) fn prepare(document: &Document, analysis: &Analysis, name: Name) -> Result<Span, Refusal> {
    let text = document.slice(name.span);
    if analysis.diagnostics.iter().any(|d| d.code == Code::Syntax) {
        return Err(
            "the file has a syntax error: fix it first (a declaration that does not parse may use the name)".to_owned(),
        );
    }
    match name.kind {
        Kind::Pipeline | Kind::Workflow => {
            return Err(format!(
                "a {} cannot be renamed here: commands name it (only phases, envs, services, variables, secrets and service attributes can)",
                name.kind.word()
            ));
        }
        Kind::Var if is_builtin(text) => {
            return Err(format!("`{text}` is a built-in variable: it cannot be renamed"));
        }
        _ => {}
    }
    if name.target.is_none() {
        return Err(format!(
            "`{text}` names no declared {}: nothing to rename",
            name.kind.word()
        ));
    }
    Ok(name.span)
}

/// The spans to replace with `new` to rename `name` everywhere in the
/// file, in file order.
pub(super) fn rename(document: &Document, analysis: &Analysis, name: Name, new: &str) -> Result<Vec<Span>, Refusal> {
    prepare(document, analysis, name)?;
    if !is_ident(new) {
        return Err(format!(
            "`{new}` is not a valid name: a name starts with an ASCII letter or `_`, then ASCII letters, digits, `_` and `-`"
        ));
    }
    let values = matches!(name.kind, Kind::Var | Kind::Secret);
    if values && is_builtin(new) {
        return Err(format!("`{new}` is a built-in variable"));
    }
    if name.kind == Kind::Secret && (new.contains('-') || new.starts_with("STAGECRAFT_")) {
        return Err(format!(
            "`{new}` cannot be a secret's name: commands read a secret as `$NAME` (no `-`), and `STAGECRAFT_…` names are stagecraft's"
        ));
    }
    let old = document.slice(name.span);
    if new == old {
        return Ok(Vec::new());
    }
    // Variables and secrets share one namespace: `{{name}}` reads either.
    let clash = |kind: Kind| kind == name.kind || values && matches!(kind, Kind::Var | Kind::Secret);
    let declared = analysis.resolution.names().iter().filter(|n| n.definition);
    let declared = declared
        .map(|n| (n.kind, n.span))
        .chain(analysis.broken.iter().copied());
    if let Some((kind, _)) = declared
        .filter(|&(kind, _)| clash(kind))
        .find(|&(_, span)| document.slice(span) == new)
    {
        return Err(format!("a {} named `{new}` already exists", kind.word()));
    }
    if let Some(unresolved) = analysis
        .resolution
        .names()
        .iter()
        .find(|n| !n.definition && n.target.is_none() && clash(n.kind) && document.slice(n.span) == new)
    {
        return Err(format!(
            "`{new}` is used on line {} where no {} of that name is declared: renamed, that use would name this one; fix it first",
            document.range(unresolved.span).start.line + 1,
            unresolved.kind.word()
        ));
    }
    let mut spans: Vec<Span> = analysis.resolution.same(name).map(|n| n.span).collect();
    if name.kind == Kind::Secret {
        let uses = shell_uses(document, analysis);
        spans.extend(uses.iter().filter(|n| n.target == name.target).map(|n| n.span));
        spans.sort_by_key(|span| span.start());
    }
    Ok(spans)
}

/// A built-in variable, or `service` (the service in scope).
fn is_builtin(name: &str) -> bool {
    name == "service" || BUILTINS.contains(&name)
}
