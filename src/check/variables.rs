//! Static checks of variable references: every `{{name}}` and every name in
//! a condition must be defined somewhere, `service` only where a service is
//! in scope, and no chain of values may lead back to itself in any env.
//!
//! Whether a name has a value in a *particular* env is known only when an env
//! is chosen; [`super::Scope`] reports that at plan time.

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::broken::Hidden;
use super::cycle;
use super::pipeline::Pipeline;
use super::{HashMap, HashSet, NameMap};
use crate::syntax::ast::{Template, VarRef};
use crate::syntax::{Code, Diagnostic, Span, did_you_mean, suggest};

/// Names every scope defines, whatever the file says.
pub(crate) const BUILTINS: &[&str] = &[
    "env", "version", "release", "pipeline", "workflow", "phase", "push", "outcome",
];

/// Where a reference appears, which decides whether `service` is in scope.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    /// A var, env value or service attribute: expanded where it is used, so
    /// `service` may appear and is checked at plan time.
    Value,
    /// A command or condition of a per-service phase.
    ServicePhase,
    /// A command or condition of a global phase.
    GlobalPhase,
}

/// Checks every reference; a name that only a broken declaration may define
/// (`hidden`) is not reported.
pub(super) fn check(pipeline: &Pipeline<'_>, hidden: &Hidden<'_>, diagnostics: &mut Vec<Diagnostic>) {
    let checker = Checker::new(pipeline, hidden);
    for value in pipeline.vars.values() {
        checker.template(value, Context::Value, diagnostics);
    }
    for env in pipeline.envs.values() {
        for value in env.values.values() {
            checker.template(value, Context::Value, diagnostics);
        }
    }
    for service in pipeline.services.values() {
        for attr in service.attrs.values() {
            checker.template(attr, Context::Value, diagnostics);
        }
    }
    for phase in pipeline.phases.values() {
        let context = if phase.per_service {
            Context::ServicePhase
        } else {
            Context::GlobalPhase
        };
        for command in phase.run.iter().chain(phase.undo.as_deref()) {
            checker.template(command, context, diagnostics);
        }
        if let Some(expr) = &phase.when {
            for var in expr.refs() {
                checker.reference(var, context, diagnostics);
            }
        }
    }
    cycles(pipeline, diagnostics);
}

struct Checker<'p> {
    pipeline: &'p Pipeline<'p>,
    /// Every name a scope may define, in a stable order for suggestions.
    known: Vec<&'p str>,
    known_set: HashSet<&'p str>,
    /// Names with a value (global or in some env) that leads to `service`.
    reaches_service: HashSet<&'p str>,
    /// What broken declarations may define.
    hidden: &'p Hidden<'p>,
}

impl<'p> Checker<'p> {
    fn new(pipeline: &'p Pipeline, hidden: &'p Hidden<'p>) -> Self {
        let mut known: Vec<&str> = pipeline.vars.keys().copied().collect();
        for env in pipeline.envs.values() {
            known.extend(env.values.keys().copied());
        }
        known.extend(BUILTINS);
        let mut known_set = HashSet::default();
        known.retain(|name| known_set.insert(*name));
        Self {
            pipeline,
            known,
            known_set,
            reaches_service: reaches_service(pipeline),
            hidden,
        }
    }

    fn template(&self, template: &Template, context: Context, diagnostics: &mut Vec<Diagnostic>) {
        for var in template.refs() {
            self.reference(var, context, diagnostics);
        }
    }

    fn reference(&self, var: &VarRef, context: Context, diagnostics: &mut Vec<Diagnostic>) {
        if var.name == "service" {
            self.service_reference(var, context, diagnostics);
        } else if let Some(attr) = &var.attr {
            diagnostics.push(
                Diagnostic::error(Code::UnknownVariable, format!("unknown variable `{}.{attr}`", var.name))
                    .label(var.span, "only `service` has attributes")
                    .help(format!("did you mean `service.{attr}`?")),
            );
        } else if context == Context::GlobalPhase && self.reaches_service.contains(var.name) {
            diagnostics.push(
                Diagnostic::error(
                    Code::ServiceOutsideForEach,
                    format!(
                        "`{}` uses `service`, which is only defined in a phase that runs for each service",
                        var.name
                    ),
                )
                .label(var.span, "this phase runs once, not per service")
                .help("add `for each service` to the phase, or use a value that does not mention `service`"),
            );
        } else if !self.known_set.contains(var.name) && self.pipeline.is_secret(var.name) {
            diagnostics.push(secret_interpolation(var));
        } else if !self.known_set.contains(var.name) && !self.hidden.may_define_variable(var.name) {
            let mut candidates = self.known.clone();
            if context != Context::GlobalPhase {
                candidates.push("service");
            }
            let secrets = self.pipeline.secrets.keys().copied();
            let secrets = secrets.chain(self.pipeline.envs.values().flat_map(|env| env.secrets.keys().copied()));
            candidates.extend(secrets);
            let (help, meant) = match suggest(var.name, candidates) {
                Some(secret) if !self.known_set.contains(secret) && self.pipeline.is_secret(secret) => (
                    format!("`{secret}` is a secret: a command reads it as `${secret}`"),
                    None,
                ),
                Some(name) => (format!("did you mean `{name}`?"), Some(name.to_owned())),
                None => (
                    format!("declare it with `var {} = \"…\"` or set it in an env", var.name),
                    None,
                ),
            };
            diagnostics.push(
                Diagnostic::error(Code::UnknownVariable, format!("unknown variable `{}`", var.name))
                    .label(var.span, "not a var, an env value or a built-in")
                    .help(help)
                    .suggestion(meant),
            );
        }
    }

    fn service_reference(&self, var: &VarRef, context: Context, diagnostics: &mut Vec<Diagnostic>) {
        if context == Context::GlobalPhase {
            diagnostics.push(
                Diagnostic::error(
                    Code::ServiceOutsideForEach,
                    format!(
                        "`{}` is only defined in a phase that runs for each service",
                        var.display()
                    ),
                )
                .label(var.span, "this phase runs once, not per service")
                .help("add `for each service` to the phase, or name the service directly"),
            );
            return;
        }
        let Some(attr) = &var.attr else { return };
        let services = self.pipeline.services.values();
        let lacking: Vec<&str> = match context {
            Context::ServicePhase => services
                .filter(|s| !s.attrs.contains_key(attr))
                .map(|s| s.name.name)
                .collect(),
            // In a value, the attribute must exist on at least one service;
            // whether the service in scope has it is known at plan time.
            _ if self.pipeline.services.values().any(|s| s.attrs.contains_key(attr)) => Vec::new(),
            _ => self.pipeline.services.keys().copied().collect(),
        };
        if lacking.is_empty() {
            return;
        }
        let attrs: BTreeSet<&str> = self
            .pipeline
            .services
            .values()
            .flat_map(|s| s.attrs.keys().copied())
            .collect();
        let list = lacking.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ");
        diagnostics.push(
            Diagnostic::error(Code::UnknownAttribute, format!("unknown service attribute `{attr}`"))
                .label(var.span, format!("not set by service {list}"))
                .help(
                    did_you_mean(attr, attrs.iter().copied())
                        .unwrap_or_else(|| format!("set `{attr} = \"…\"` in each service block")),
                )
                .suggestion(suggest(attr, attrs.iter().copied()).map(|meant| format!("service.{meant}"))),
        );
    }
}

/// `{{name}}` where `name` is a secret: its value would be written into
/// the command line (and the process table).
fn secret_interpolation(var: &VarRef) -> Diagnostic {
    let name = var.name;
    Diagnostic::error(
        Code::SecretInterpolation,
        format!("secret `{name}` cannot be interpolated"),
    )
    .label(var.span, "this would write the secret's value into the command")
    .help(format!(
        "use `${name}` in the command: it runs with the secret in its environment"
    ))
}

/// The names some value of which (global or in any env) mentions `service`,
/// directly or through other names.
fn reaches_service<'p>(pipeline: &'p Pipeline<'p>) -> HashSet<&'p str> {
    let definitions = pipeline
        .vars
        .iter()
        .chain(pipeline.envs.values().flat_map(|env| env.values.iter()));
    // Who mentions each name, and the names that mention `service` itself.
    let mut mentioned_by: HashMap<&str, Vec<&str>> = HashMap::default();
    let mut reached: HashSet<&str> = HashSet::default();
    let mut queue: Vec<&str> = Vec::new();
    for (&name, template) in definitions {
        for var in template.refs() {
            if var.name == "service" {
                if reached.insert(name) {
                    queue.push(name);
                }
            } else {
                mentioned_by.entry(var.name).or_default().push(name);
            }
        }
    }
    while let Some(name) = queue.pop() {
        for &user in mentioned_by.get(name).map_or(&[][..], Vec::as_slice) {
            if reached.insert(user) {
                queue.push(user);
            }
        }
    }
    reached
}

/// Reports each cycle among values once. A scope is what one expansion can
/// see: the globals, an env over them, and a service's attributes (written
/// `service.NAME`) over either; a cycle is reported in the first scope it
/// shows in, naming the env or service when it needs one.
fn cycles(pipeline: &Pipeline, diagnostics: &mut Vec<Diagnostic>) {
    let globals: Scope = pipeline.vars.iter().map(|(k, v)| (Cow::Borrowed(*k), v)).collect();
    let mut scopes: Vec<(String, Scope)> = vec![(String::new(), globals.clone())];
    for id in 0..pipeline.envs.len() {
        let mut scope = globals.clone();
        let chain: Vec<_> = pipeline.env_chain(id).collect();
        for env in chain.into_iter().rev() {
            scope.extend(env.values.iter().map(|(k, v)| (Cow::Borrowed(*k), v)));
        }
        scopes.push((format!(" in env `{}`", pipeline.envs[id].name.name), scope));
    }
    let mut finder = CycleFinder {
        reported: HashSet::default(),
        diagnostics,
    };
    for (place, scope) in &scopes {
        finder.run(scope, place);
    }
    for service in pipeline.services.values() {
        let attrs = service
            .attrs
            .iter()
            .map(|(k, v)| (Cow::Owned(format!("service.{k}")), v));
        for (place, scope) in &scopes {
            let mut scope = scope.clone();
            scope.extend(attrs.clone());
            let place = format!("{place} in service `{}`", service.name.name);
            finder.run(&scope, &place);
        }
    }
}

/// Values visible together, by the name a reference uses for them.
type Scope<'p> = NameMap<Cow<'p, str>, &'p Template<'p>>;

/// The name in a scope that a reference points at.
fn key<'v>(var: &VarRef<'v>) -> Cow<'v, str> {
    match var.attr {
        None => Cow::Borrowed(var.name),
        Some(attr) => Cow::Owned(format!("{}.{attr}", var.name)),
    }
}

/// Reports the cycles among the values of each scope, each once.
struct CycleFinder<'d> {
    /// Cycles already reported, by their reference spans.
    reported: HashSet<Vec<Span>>,
    diagnostics: &'d mut Vec<Diagnostic>,
}

impl CycleFinder<'_> {
    fn run(&mut self, scope: &Scope<'_>, place: &str) {
        // Each value's references to values of the scope, in source order.
        let mut edges: Vec<Vec<(usize, VarRef<'_>)>> = (0..scope.len())
            .map(|node| {
                scope[node]
                    .refs()
                    .filter_map(|var| scope.get_index_of(key(var).as_ref()).map(|next| (next, *var)))
                    .collect()
            })
            .collect();
        for cycle in cycle::break_cycles(&mut edges) {
            self.report(scope, &cycle, place);
        }
    }

    fn report(&mut self, scope: &Scope<'_>, edges: &[(usize, VarRef<'_>)], place: &str) {
        let mut spans: Vec<Span> = edges.iter().map(|(_, var)| var.span).collect();
        spans.sort_unstable();
        if !self.reported.insert(spans) {
            return;
        }
        let name = |node: usize| scope.get_index(node).map_or("", |(k, _)| k.as_ref());
        let names: Vec<&str> = edges.iter().map(|&(node, _)| name(node)).collect();
        let message = if let [single] = names.as_slice() {
            format!("`{single}` refers to itself{place}")
        } else {
            format!(
                "variables refer to each other in a cycle{place}: `{}` → `{}`",
                names.join("` → `"),
                names[0]
            )
        };
        let mut diagnostic = Diagnostic::error(Code::VariableCycle, message);
        for &(node, var) in edges {
            diagnostic = diagnostic.label(var.span, format!("`{}` uses `{}` here", name(node), var.display()));
        }
        self.diagnostics
            .push(diagnostic.help("a value cannot contain itself; replace one reference with literal text"));
    }
}
