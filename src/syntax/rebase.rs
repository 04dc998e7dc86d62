//! Moving a declaration's tree between versions of a text, for the
//! incremental parse: [`Detach`] makes a declaration own what it borrowed
//! (names keep only their spans, literal text is copied), and [`Attach`]
//! borrows it back from a later text, where the same declaration may have
//! moved, with its spans moved alike.
//!
//! Every node is rebuilt field by field (no `..` in the literals), so a new
//! field in the tree cannot be forgotten here.

use std::borrow::Cow;

use super::ast::{
    Assignment, Broken, Clause, ClauseKind, Dependency, EnvDecl, Expr, Ident, Item, Part, PhaseDecl, Raw, SecretDecl,
    ServiceDecl, Template, VarRef, WorkflowDecl,
};
use super::{Diagnostic, Span};

/// How spans, names and literal text move.
pub(super) trait Rebase<'x, 'b> {
    /// The span in the target.
    fn span(&self, span: Span) -> Span;
    /// The name at `span` (already moved).
    fn name(&self, span: Span) -> &'b str;
    /// Literal text of a string.
    fn text(&self, text: &'x str) -> Cow<'b, str>;
}

/// From a parsed text to the owned form (spans stay those of that text).
pub(super) struct Detach;

impl<'x> Rebase<'x, 'static> for Detach {
    fn span(&self, span: Span) -> Span {
        span
    }

    fn name(&self, _: Span) -> &'static str {
        ""
    }

    fn text(&self, text: &'x str) -> Cow<'static, str> {
        Cow::Owned(text.to_owned())
    }
}

/// From the owned form to a text where the declaration is `delta` bytes
/// from where it was parsed.
pub(super) struct Attach<'b> {
    /// The text.
    pub(super) text: &'b str,
    /// How far the declaration moved.
    pub(super) delta: isize,
}

impl<'b> Rebase<'b, 'b> for Attach<'b> {
    fn span(&self, span: Span) -> Span {
        Span::new(
            span.start().saturating_add_signed(self.delta),
            span.end().saturating_add_signed(self.delta),
        )
    }

    fn name(&self, span: Span) -> &'b str {
        self.text.get(span.start()..span.end()).unwrap_or_default()
    }

    fn text(&self, text: &'b str) -> Cow<'b, str> {
        Cow::Borrowed(text)
    }
}

/// A top-level declaration.
pub(super) fn item<'x, 'b>(item: &'x Item<'_>, m: &impl Rebase<'x, 'b>) -> Item<'b> {
    match item {
        Item::Pipeline(name) => Item::Pipeline(ident(name, m)),
        Item::Var(var) => Item::Var(assignment(var, m)),
        Item::Env(env) => Item::Env(EnvDecl {
            name: ident(&env.name, m),
            extends: env.extends.as_ref().map(|e| ident(e, m)),
            protected: env.protected.map(|span| m.span(span)),
            undo_on_failure: env.undo_on_failure.map(|span| m.span(span)),
            values: env.values.iter().map(|v| assignment(v, m)).collect(),
            secrets: env.secrets.iter().map(|s| secret(s, m)).collect(),
        }),
        Item::Secret(decl) => Item::Secret(secret(decl, m)),
        Item::Service(service) => Item::Service(ServiceDecl {
            name: ident(&service.name, m),
            attrs: service.attrs.iter().map(|a| assignment(a, m)).collect(),
            after: service.after.iter().map(|a| ident(a, m)).collect(),
        }),
        Item::Phase(phase) => Item::Phase(PhaseDecl {
            name: ident(&phase.name, m),
            clauses: exact(phase.clauses.iter().map(|c| clause(c, m))),
        }),
        Item::Workflow(workflow) => Item::Workflow(WorkflowDecl {
            name: ident(&workflow.name, m),
            phases: exact(workflow.phases.iter().map(|p| ident(p, m))),
        }),
        Item::Broken(broken) => Item::Broken(Broken {
            kind: broken.kind,
            name: broken.name.as_ref().map(|n| ident(n, m)),
            span: m.span(broken.span),
        }),
    }
}

/// A diagnostic with its labels' spans moved.
pub(super) fn diagnostic(diagnostic: &Diagnostic, span: impl Fn(Span) -> Span) -> Diagnostic {
    let mut out = diagnostic.clone();
    for label in &mut out.labels {
        label.span = span(label.span);
    }
    out
}

fn ident<'x, 'b>(ident: &Ident<'_>, m: &impl Rebase<'x, 'b>) -> Ident<'b> {
    let span = m.span(ident.span);
    Ident {
        name: m.name(span),
        span,
    }
}

fn raw<'x, 'b>(raw: &Raw<'_>, m: &impl Rebase<'x, 'b>) -> Raw<'b> {
    let span = m.span(raw.span);
    Raw {
        text: m.name(span),
        span,
    }
}

fn assignment<'x, 'b>(assignment: &'x Assignment<'_>, m: &impl Rebase<'x, 'b>) -> Assignment<'b> {
    Assignment {
        name: ident(&assignment.name, m),
        value: template(&assignment.value, m),
    }
}

fn secret<'x, 'b>(secret: &'x SecretDecl<'_>, m: &impl Rebase<'x, 'b>) -> SecretDecl<'b> {
    SecretDecl {
        name: ident(&secret.name, m),
        from: secret.from,
        source: template(&secret.source, m),
        span: m.span(secret.span),
    }
}

fn clause<'x, 'b>(clause: &'x Clause<'_>, m: &impl Rebase<'x, 'b>) -> Clause<'b> {
    let kind = match &clause.kind {
        ClauseKind::ForEach => ClauseKind::ForEach,
        ClauseKind::Finally => ClauseKind::Finally,
        ClauseKind::After(after) => ClauseKind::After(exact(after.iter().map(|d| Dependency {
            phase: ident(&d.phase, m),
            service: d.service.as_ref().map(|s| Box::new(ident(s, m))),
            span: m.span(d.span),
        }))),
        ClauseKind::When(condition) => ClauseKind::When(Box::new(expr(condition, m))),
        ClauseKind::Run(command) => ClauseKind::Run(template(command, m)),
        ClauseKind::Undo(command) => ClauseKind::Undo(template(command, m)),
        ClauseKind::Timeout(duration) => ClauseKind::Timeout(raw(duration, m)),
        ClauseKind::Retry { count, backoff } => ClauseKind::Retry {
            count: raw(count, m),
            backoff: backoff.as_ref().map(|b| Box::new(raw(b, m))),
        },
    };
    Clause {
        kind,
        span: m.span(clause.span),
    }
}

fn template<'x, 'b>(template: &'x Template<'_>, m: &impl Rebase<'x, 'b>) -> Template<'b> {
    Template {
        parts: exact(template.parts.iter().map(|part| match part {
            Part::Text(text) => Part::Text(m.text(text.as_ref())),
            Part::Var(var) => Part::Var(var_ref(var, m)),
        })),
        span: m.span(template.span),
    }
}

/// `name` or `name.attr`: both are read again from the text at the span.
fn var_ref<'x, 'b>(var: &VarRef<'_>, m: &impl Rebase<'x, 'b>) -> VarRef<'b> {
    let span = m.span(var.span);
    let text = m.name(span);
    let (name, attr) = match text.split_once('.') {
        Some((name, attr)) => (name, Some(attr)),
        None => (text, None),
    };
    VarRef { name, attr, span }
}

fn expr<'x, 'b>(e: &'x Expr<'_>, m: &impl Rebase<'x, 'b>) -> Expr<'b> {
    match e {
        Expr::Var(var) => Expr::Var(var_ref(var, m)),
        Expr::Str(t) => Expr::Str(template(t, m)),
        Expr::Not(inner) => Expr::Not(Box::new(expr(inner, m))),
        Expr::Binary { op, lhs, rhs } => Expr::Binary {
            op: *op,
            lhs: Box::new(expr(lhs, m)),
            rhs: Box::new(expr(rhs, m)),
        },
    }
}

/// Collects into a `Vec` of exactly the iterator's length.
fn exact<T>(items: impl ExactSizeIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::with_capacity(items.len());
    out.extend(items);
    out
}
