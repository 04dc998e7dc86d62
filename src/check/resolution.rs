//! The resolution table: which declaration each name in the file refers
//! to, recorded while `check` resolves them, so that the language server
//! answers definition and references from the checker's own decisions
//! instead of matching names again.
//!
//! A declaration is identified by the span of its name. Several
//! declarations can make one thing: a variable is a global `var` and the
//! env values of the same name (an env value overrides the var), and
//! `{{service.attr}}` reads the attribute `attr` of every service. Those
//! share one *target*, the span of the first of them.

use crate::syntax::Span;
use crate::syntax::ast::{Template, VarRef};

use super::HashMap;
use super::pipeline::Pipeline;

/// What a name names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `pipeline NAME`.
    Pipeline,
    /// A global `var` or an env value, and `{{name}}` or a condition's name.
    Var,
    /// A secret, global or in an env (and `{{name}}` naming one, an error).
    Secret,
    /// An env, and `extends NAME`.
    Env,
    /// A service, `after NAME` in a service and `P[NAME]`.
    Service,
    /// A service attribute, and `{{service.NAME}}`.
    Attr,
    /// A phase, `after NAME`, `NAME[svc]` and a workflow's members.
    Phase,
    /// A workflow.
    Workflow,
}

impl Kind {
    /// The word for this kind in messages.
    #[must_use]
    pub const fn word(self) -> &'static str {
        match self {
            Kind::Pipeline => "pipeline",
            Kind::Var => "variable",
            Kind::Secret => "secret",
            Kind::Env => "env",
            Kind::Service => "service",
            Kind::Attr => "service attribute",
            Kind::Phase => "phase",
            Kind::Workflow => "workflow",
        }
    }
}

/// One name as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Name {
    /// What it names.
    pub kind: Kind,
    /// Where it is written.
    pub span: Span,
    /// The declaration it resolved to (see the module doc); `None` for a
    /// name that resolved to nothing (a typo, a built-in variable, a name
    /// only a broken declaration could declare).
    pub target: Option<Span>,
    /// Whether this is a declaration rather than a use.
    pub definition: bool,
}

/// Every name of a checked file, sorted by position.
#[derive(Clone, Debug, Default)]
pub struct Resolution {
    names: Vec<Name>,
}

impl Resolution {
    /// Every name, sorted by position.
    #[must_use]
    pub fn names(&self) -> &[Name] {
        &self.names
    }

    /// The name at byte `offset` (a cursor just after a name counts).
    #[must_use]
    pub fn at(&self, offset: usize) -> Option<Name> {
        let after = self.names.partition_point(|n| n.span.start() <= offset);
        self.names[..after]
            .iter()
            .rev()
            .take(2)
            .find(|n| n.span.contains(offset))
            .copied()
    }

    /// Every name that refers to the same thing as `of`, declarations
    /// included, in file order (only `of` when it resolved to nothing).
    pub fn same(&self, of: Name) -> impl Iterator<Item = Name> + '_ {
        let only = of.target.is_none().then_some(of);
        self.names
            .iter()
            .filter(move |n| of.target.is_some() && n.target == of.target)
            .copied()
            .chain(only)
    }

    /// Records a declaration that is its own target.
    pub(super) fn declare(&mut self, kind: Kind, span: Span) {
        self.refer(kind, span, Some(span), true);
    }

    /// Records a name.
    pub(super) fn refer(&mut self, kind: Kind, span: Span, target: Option<Span>, definition: bool) {
        self.names.push(Name {
            kind,
            span,
            target,
            definition,
        });
    }

    /// Sorts the table once everything is recorded.
    pub(super) fn finish(&mut self) {
        self.names.sort_by_key(|n| (n.span.start(), n.span.end()));
    }
}

/// The canonical declarations of variables and attributes, by name.
#[derive(Debug, Default)]
pub(super) struct Values<'s> {
    vars: HashMap<&'s str, Span>,
    attrs: HashMap<&'s str, Span>,
    secrets: HashMap<&'s str, Span>,
}

impl<'s> Values<'s> {
    /// Records the declaration of a variable (a global `var` or an env
    /// value) or, with `attr`, of a service attribute.
    pub(super) fn declare(&mut self, resolution: &mut Resolution, name: &'s str, span: Span, attr: bool) {
        let (map, kind) = if attr {
            (&mut self.attrs, Kind::Attr)
        } else {
            (&mut self.vars, Kind::Var)
        };
        let target = *map.entry(name).or_insert(span);
        resolution.refer(kind, span, Some(target), true);
    }

    /// Records the declaration of a secret (global or in an env): the
    /// declarations of one name share the first as their target.
    pub(super) fn declare_secret(&mut self, resolution: &mut Resolution, name: &'s str, span: Span) {
        let target = *self.secrets.entry(name).or_insert(span);
        resolution.refer(Kind::Secret, span, Some(target), true);
    }

    /// Records every use of a variable or attribute in the pipeline.
    pub(super) fn uses(&self, resolution: &mut Resolution, pipeline: &Pipeline<'_>) {
        let values = pipeline.envs.values().flat_map(|env| env.values.values());
        let attrs = pipeline.services.values().flat_map(|service| service.attrs.values());
        let commands = pipeline
            .phases
            .values()
            .flat_map(|phase| phase.run.iter().chain(phase.undo.as_deref()));
        for template in pipeline.vars.values().chain(values).chain(attrs).chain(commands) {
            self.template(resolution, template);
        }
        for expr in pipeline.phases.values().filter_map(|phase| phase.when.as_ref()) {
            for var in expr.refs() {
                self.reference(resolution, var);
            }
        }
    }

    /// Records the uses in a template.
    fn template(&self, resolution: &mut Resolution, template: &Template<'_>) {
        for var in template.refs() {
            self.reference(resolution, var);
        }
    }

    /// Records one use.
    fn reference(&self, resolution: &mut Resolution, var: &VarRef<'_>) {
        match var.attr {
            Some(attr) if var.name == "service" => {
                let end = var.span.end();
                let span = Span::new(end - attr.len(), end);
                resolution.refer(Kind::Attr, span, self.attrs.get(attr).copied(), false);
            }
            // `service` alone is the service in scope, not a variable.
            None if var.name == "service" => {}
            Some(_) => {}
            None => match (self.vars.get(var.name), self.secrets.get(var.name)) {
                (None, Some(&secret)) => resolution.refer(Kind::Secret, var.span, Some(secret), false),
                (var_target, _) => resolution.refer(Kind::Var, var.span, var_target.copied(), false),
            },
        }
    }
}
