//! Name resolution: declarations become the [`Pipeline`], references become
//! indices, and every dangling or repeated name becomes a diagnostic. A bad
//! reference is dropped after it is reported, so checking goes on and the
//! resolved pipeline never holds a dangling name.

use std::collections::HashMap;

use indexmap::IndexMap;
use indexmap::map::Entry;

use super::broken::Hidden;
use super::pipeline::{Dependency, Env, Phase, PhaseId, Pipeline, Retry, Service, ServiceId, Workflow};
use super::{duration, variables};
use crate::syntax::ast::{self, Assignment, Ast, Clause, ClauseKind, DeclKind, Ident, Raw, Template};
use crate::syntax::{Code, Diagnostic, Span, did_you_mean, suggest};

/// Resolves `ast`, appending every problem found to `diagnostics`. The
/// AST's templates and conditions move into the pipeline.
pub(super) fn resolve<'s>(ast: Ast<'s>, diagnostics: &mut Vec<Diagnostic>) -> Pipeline<'s> {
    let mut resolver = Resolver {
        diagnostics,
        pipeline: Pipeline::default(),
        hidden: Hidden::new(&ast.broken),
    };
    resolver.pipeline_name(&ast.pipelines);
    let declared = resolver.declare(ast);
    resolver.envs();
    resolver.services(declared.service_after);
    resolver.phases(declared.phase_clauses);
    resolver.workflows(declared.workflow_members);
    variables::check(&resolver.pipeline, &resolver.hidden, resolver.diagnostics);
    resolver.pipeline
}

/// What a declaration says beyond its name and values, kept aside until
/// every name is known.
struct Declared<'s> {
    service_after: Vec<(ServiceId, Vec<Ident<'s>>)>,
    phase_clauses: Vec<(PhaseId, Vec<Clause<'s>>)>,
    workflow_members: Vec<(usize, Vec<Ident<'s>>)>,
}

struct Resolver<'s, 'd> {
    diagnostics: &'d mut Vec<Diagnostic>,
    pipeline: Pipeline<'s>,
    /// What declarations that did not parse may have declared.
    hidden: Hidden<'s>,
}

impl<'s> Resolver<'s, '_> {
    fn pipeline_name(&mut self, names: &[Ident<'s>]) {
        match names {
            [] if self.hidden.any(DeclKind::Pipeline) => {}
            [] => self.diagnostics.push(
                Diagnostic::error(Code::MissingPipeline, "the file declares no pipeline")
                    .label(Span::new(0, 0), "expected `pipeline NAME` in this file")
                    .help("start the file with `pipeline my-app`"),
            ),
            [first, rest @ ..] => {
                self.pipeline.name = first.name;
                for again in rest {
                    self.diagnostics.push(
                        Diagnostic::error(Code::DuplicateName, "a file declares only one pipeline")
                            .label(again.span, format!("`{}` declared here", again.name))
                            .label(first.span, format!("`{}` already declared here", first.name))
                            .help("split the file, or remove one `pipeline` line"),
                    );
                }
            }
        }
    }

    /// Enters every declaration's name first, so references may point
    /// forward, and reports names declared twice (the first one wins; the
    /// body of a repeated declaration is not checked).
    fn declare(&mut self, ast: Ast<'s>) -> Declared<'s> {
        let mut declared = Declared {
            service_after: Vec::new(),
            phase_clauses: Vec::new(),
            workflow_members: Vec::new(),
        };
        let mut var_names: HashMap<&'s str, Span> = HashMap::new();
        for var in ast.vars {
            if self.unique("variable", &var.name, var_names.get(var.name.name).copied()) {
                var_names.insert(var.name.name, var.name.span);
                self.pipeline.vars.insert(var.name.name, var.value);
            }
        }
        for decl in ast.envs {
            let first = self.pipeline.envs.get(decl.name.name).map(|e| e.name.span);
            if self.unique("env", &decl.name, first) {
                let values = self.assignments(&format!("env `{}`", decl.name.name), decl.values);
                let env = Env {
                    name: decl.name,
                    extends: decl.extends,
                    parent: None,
                    values,
                };
                self.pipeline.envs.insert(decl.name.name, env);
            }
        }
        for decl in ast.services {
            let first = self.pipeline.services.get(decl.name.name).map(|s| s.name.span);
            if self.unique("service", &decl.name, first) {
                let attrs = self.assignments(&format!("service `{}`", decl.name.name), decl.attrs);
                let service = Service {
                    name: decl.name,
                    attrs,
                    after: Vec::new(),
                };
                let (id, _) = self.pipeline.services.insert_full(decl.name.name, service);
                declared.service_after.push((id, decl.after));
            }
        }
        for decl in ast.phases {
            let first = self.pipeline.phases.get(decl.name.name).map(|p| p.name.span);
            if self.unique("phase", &decl.name, first) {
                let phase = Phase {
                    name: decl.name,
                    per_service: false,
                    after: Vec::new(),
                    when: None,
                    run: None,
                    timeout: None,
                    retry: Retry::default(),
                };
                let (id, _) = self.pipeline.phases.insert_full(decl.name.name, phase);
                declared.phase_clauses.push((id, decl.clauses));
            }
        }
        for decl in ast.workflows {
            let first = self.pipeline.workflows.get(decl.name.name).map(|w| w.name.span);
            if self.unique("workflow", &decl.name, first) {
                let workflow = Workflow {
                    name: decl.name,
                    phases: Vec::new(),
                };
                let (id, _) = self.pipeline.workflows.insert_full(decl.name.name, workflow);
                declared.workflow_members.push((id, decl.phases));
            }
        }
        declared
    }

    /// Whether `name` is new; reports it as a duplicate of `first` if not.
    fn unique(&mut self, kind: &str, name: &Ident<'s>, first: Option<Span>) -> bool {
        let Some(first) = first else { return true };
        self.diagnostics.push(
            Diagnostic::error(Code::DuplicateName, format!("duplicate {kind} `{}`", name.name))
                .label(name.span, format!("`{}` declared again here", name.name))
                .label(first, "first declared here")
                .help(format!("rename one of them; {kind} names are unique")),
        );
        false
    }

    fn assignments(&mut self, owner: &str, assignments: Vec<Assignment<'s>>) -> IndexMap<&'s str, Template<'s>> {
        let mut map: IndexMap<&'s str, Template<'s>> = IndexMap::new();
        let mut first_names: HashMap<&'s str, Span> = HashMap::new();
        for assignment in assignments {
            match map.entry(assignment.name.name) {
                Entry::Occupied(_) => self.diagnostics.push(
                    Diagnostic::error(
                        Code::DuplicateName,
                        format!("{owner} sets `{}` twice", assignment.name.name),
                    )
                    .label(assignment.name.span, "set again here")
                    .label(first_names[assignment.name.name], "first set here")
                    .help("remove one of the two"),
                ),
                Entry::Vacant(slot) => {
                    first_names.insert(assignment.name.name, assignment.name.span);
                    slot.insert(assignment.value);
                }
            }
        }
        map
    }

    fn envs(&mut self) {
        for id in 0..self.pipeline.envs.len() {
            let env = &self.pipeline.envs[id];
            let Some(parent) = env.extends else { continue };
            match self.pipeline.env_id(parent.name) {
                Some(parent_id) => self.pipeline.envs[id].parent = Some(parent_id),
                None if self.hidden.may_declare(DeclKind::Env, parent.name) => {}
                None => self.diagnostics.push(
                    Diagnostic::error(
                        Code::UnknownEnv,
                        format!("env `{}` extends unknown env `{}`", env.name.name, parent.name),
                    )
                    .label(parent.span, "no env has this name")
                    .maybe_help(did_you_mean(parent.name, self.pipeline.envs.keys().copied())),
                ),
            }
        }
        self.break_env_cycles();
    }

    /// Reports each inheritance cycle once, at its `extends` clauses, and
    /// cuts it so that walking an env chain always ends.
    fn break_env_cycles(&mut self) {
        let count = self.pipeline.envs.len();
        // 0 = unvisited, 1 = on the current walk, 2 = done.
        let mut state = vec![0u8; count];
        for start in 0..count {
            let mut walk = Vec::new();
            let mut current = Some(start);
            while let Some(id) = current {
                match state[id] {
                    2 => break,
                    1 => {
                        let from = walk.iter().position(|&w| w == id).unwrap_or(0);
                        let cycle = walk[from..].to_vec();
                        self.report_env_cycle(&cycle);
                        let last = *cycle.last().unwrap_or(&id);
                        self.pipeline.envs[last].parent = None;
                        break;
                    }
                    _ => {
                        state[id] = 1;
                        walk.push(id);
                        current = self.pipeline.envs[id].parent;
                    }
                }
            }
            for id in walk {
                state[id] = 2;
            }
        }
    }

    fn report_env_cycle(&mut self, cycle: &[usize]) {
        let names: Vec<&str> = cycle.iter().map(|&id| self.pipeline.envs[id].name.name).collect();
        let mut path = names.join("` → `");
        path = format!("{path}` → `{}", names[0]);
        let mut diagnostic = Diagnostic::error(Code::EnvCycle, format!("env inheritance cycle: `{path}`"));
        for &id in cycle {
            let env = &self.pipeline.envs[id];
            let parent = env.parent.map_or("", |p| self.pipeline.envs[p].name.name);
            let span = env.extends.as_ref().map_or(env.name.span, |parent| parent.span);
            diagnostic = diagnostic.label(span, format!("`{}` extends `{parent}` here", env.name.name));
        }
        self.diagnostics
            .push(diagnostic.help("an env cannot inherit from itself, directly or through others"));
    }

    fn services(&mut self, service_after: Vec<(ServiceId, Vec<Ident<'s>>)>) {
        self.service_order(service_after);
        self.break_service_cycles();
    }

    fn service_order(&mut self, service_after: Vec<(ServiceId, Vec<Ident<'s>>)>) {
        for (id, after) in service_after {
            let name = self.pipeline.services[id].name;
            for other in after {
                if other.name == name.name {
                    self.diagnostics.push(
                        Diagnostic::error(
                            Code::SelfDependency,
                            format!("service `{}` comes after itself", other.name),
                        )
                        .label(other.span, "a service cannot wait for itself")
                        .help("remove it from the `after` list"),
                    );
                    continue;
                }
                match self.pipeline.service_id(other.name) {
                    Some(other_id) => self.pipeline.services[id].after.push((other_id, other.span)),
                    None if self.hidden.may_declare(DeclKind::Service, other.name) => {}
                    None => self.diagnostics.push(
                        Diagnostic::error(
                            Code::UnknownService,
                            format!("service `{}` comes after unknown service `{}`", name.name, other.name),
                        )
                        .label(other.span, "no service has this name")
                        .maybe_help(did_you_mean(other.name, self.pipeline.services.keys().copied())),
                    ),
                }
            }
        }
    }

    /// Reports each cycle among services' `after` lists once and cuts it,
    /// so the instance graph never inherits it (with no per-service phase
    /// there would be no instance to show it on).
    fn break_service_cycles(&mut self) {
        let count = self.pipeline.services.len();
        // 0 = unvisited, 1 = on the stack, 2 = done.
        let mut state = vec![0u8; count];
        for start in 0..count {
            // (service, index of the next `after` edge to follow)
            let mut stack: Vec<(ServiceId, usize)> = Vec::new();
            if state[start] != 0 {
                continue;
            }
            state[start] = 1;
            stack.push((start, 0));
            while let Some(&(node, next)) = stack.last() {
                let Some(&(before, _)) = self.pipeline.services[node].after.get(next) else {
                    state[node] = 2;
                    stack.pop();
                    continue;
                };
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                match state[before] {
                    0 => {
                        state[before] = 1;
                        stack.push((before, 0));
                    }
                    1 => {
                        let from = stack.iter().position(|&(n, _)| n == before).unwrap_or(0);
                        // Each entry's edge taken is `after[next - 1]`.
                        let edges: Vec<(ServiceId, usize)> = stack[from..].iter().map(|&(n, e)| (n, e - 1)).collect();
                        self.report_service_cycle(&edges);
                        self.pipeline.services[node].after.remove(next);
                        if let Some(top) = stack.last_mut() {
                            top.1 -= 1;
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn report_service_cycle(&mut self, edges: &[(ServiceId, usize)]) {
        let services = &self.pipeline.services;
        let mut names: Vec<&str> = edges.iter().map(|&(s, _)| services[s].name.name).collect();
        names.push(names[0]);
        let mut diagnostic = Diagnostic::error(
            Code::DependencyCycle,
            format!("service order cycle: `{}`", names.join("` → `")),
        );
        for &(service, edge) in edges {
            let (before, span) = services[service].after[edge];
            diagnostic = diagnostic.label(
                span,
                format!(
                    "`{}` comes after `{}` here",
                    services[service].name.name, services[before].name.name
                ),
            );
        }
        self.diagnostics
            .push(diagnostic.help("each arrow reads \"comes after\"; remove one of these `after` entries"));
    }

    fn phases(&mut self, phase_clauses: Vec<(PhaseId, Vec<Clause<'s>>)>) {
        let mut dependencies = Vec::with_capacity(phase_clauses.len());
        for (id, clauses) in phase_clauses {
            dependencies.push((id, self.phase_clauses(id, clauses)));
        }
        // `after` is resolved once every phase knows whether it is per-service.
        for (id, after) in dependencies {
            self.phase_dependencies(id, after);
        }
    }

    /// Takes in a phase's clauses and returns its `after` dependencies.
    fn phase_clauses(&mut self, id: PhaseId, clauses: Vec<Clause<'s>>) -> Vec<ast::Dependency<'s>> {
        let name = self.pipeline.phases[id].name;
        let mut after = Vec::new();
        let mut seen: [Option<Span>; 5] = [None; 5];
        for clause in clauses {
            let (kind, keyword) = match clause.kind {
                ClauseKind::ForEach => (0, "for each service"),
                // The first `after` list is kept as it is, not copied.
                ClauseKind::After(dependencies) if after.is_empty() => {
                    after = dependencies;
                    continue;
                }
                ClauseKind::After(dependencies) => {
                    after.extend(dependencies);
                    continue;
                }
                ClauseKind::When(_) => (1, "when"),
                ClauseKind::Run(_) => (2, "run"),
                ClauseKind::Timeout(_) => (3, "timeout"),
                ClauseKind::Retry { .. } => (4, "retry"),
            };
            if let Some(first) = seen[kind] {
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::DuplicateClause,
                        format!("phase `{}` has more than one `{keyword}`", name.name),
                    )
                    .label(clause.span, "repeated here")
                    .label(first, "first given here")
                    .help(format!("a phase takes at most one `{keyword}`")),
                );
                continue;
            }
            seen[kind] = Some(clause.span);
            match clause.kind {
                ClauseKind::ForEach => {
                    if self.pipeline.services.is_empty() && !self.hidden.any(DeclKind::Service) {
                        self.diagnostics.push(
                            Diagnostic::error(
                                Code::NoServices,
                                format!("phase `{}` runs for each service, but there are no services", name.name),
                            )
                            .label(clause.span, "this phase would have no instances")
                            .help("declare a `service`, or remove `for each service`"),
                        );
                    }
                    self.pipeline.phases[id].per_service = true;
                }
                ClauseKind::When(expr) => self.pipeline.phases[id].when = Some(expr),
                ClauseKind::Run(command) => self.pipeline.phases[id].run = Some(command),
                ClauseKind::Timeout(raw) => {
                    let timeout = self.duration(&raw, "timeout");
                    if timeout.is_some_and(|t| t.is_zero()) {
                        self.diagnostics.push(
                            Diagnostic::error(Code::InvalidDuration, "a timeout of zero would kill every command")
                                .label(raw.span, "zero")
                                .help("give a positive duration such as `30s`, or remove the timeout"),
                        );
                    } else {
                        self.pipeline.phases[id].timeout = timeout;
                    }
                }
                ClauseKind::Retry { count, backoff } => {
                    let parsed = count.text.parse::<u32>().ok().filter(|&n| n <= 1000);
                    if parsed.is_none() {
                        self.diagnostics.push(
                            Diagnostic::error(Code::InvalidCount, format!("`{}` is not a retry count", count.text))
                                .label(count.span, "expected a number of extra attempts")
                                .help("use a whole number from 0 to 1000"),
                        );
                    }
                    let backoff = backoff.as_ref().and_then(|raw| self.duration(raw, "backoff"));
                    self.pipeline.phases[id].retry = Retry {
                        count: parsed.unwrap_or(0),
                        backoff: backoff.unwrap_or_default(),
                    };
                }
                ClauseKind::After(_) => {}
            }
        }
        after
    }

    fn duration(&mut self, raw: &Raw<'s>, what: &str) -> Option<std::time::Duration> {
        match duration::parse(raw.text) {
            Ok(duration) => Some(duration),
            Err(problem) => {
                self.diagnostics.push(
                    Diagnostic::error(Code::InvalidDuration, format!("invalid {what} `{}`", raw.text))
                        .label(raw.span, problem)
                        .help("write a number and a unit: `500ms`, `30s`, `10m`, `1h`, or combined like `1m30s`"),
                );
                None
            }
        }
    }

    fn phase_dependencies(&mut self, id: PhaseId, dependencies: Vec<ast::Dependency<'s>>) {
        let phases = &self.pipeline.phases;
        let name = phases[id].name;
        let mut resolved = Vec::new();
        for dependency in dependencies {
            let target = &dependency.phase;
            if target.name == name.name {
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::SelfDependency,
                        format!("phase `{}` depends on itself", target.name),
                    )
                    .label(dependency.span, "a phase cannot wait for itself")
                    .help("remove it from the `after` list"),
                );
                continue;
            }
            let Some(target_id) = phases.get_index_of(target.name) else {
                if self.hidden.may_declare(DeclKind::Phase, target.name) {
                    continue;
                }
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::UnknownPhase,
                        format!("phase `{}` depends on unknown phase `{}`", name.name, target.name),
                    )
                    .label(target.span, "no phase has this name")
                    .maybe_help(did_you_mean(target.name, phases.keys().copied())),
                );
                continue;
            };
            let service = match &dependency.service {
                None => None,
                Some(service) => {
                    let instance = format!("{}[{}]", target.name, service.name);
                    if !phases[target_id].per_service {
                        self.diagnostics.push(
                            Diagnostic::error(Code::UnknownInstance, format!("unknown instance `{instance}`"))
                                .label(
                                    dependency.span,
                                    format!("`{}` does not run for each service", target.name),
                                )
                                .help(format!("depend on the whole phase: `after {}`", target.name)),
                        );
                        continue;
                    }
                    let Some(service_id) = self.pipeline.service_id(service.name) else {
                        if self.hidden.may_declare(DeclKind::Service, service.name) {
                            continue;
                        }
                        let candidates: Vec<String> = self
                            .pipeline
                            .services
                            .keys()
                            .map(|s| format!("{}[{s}]", target.name))
                            .collect();
                        self.diagnostics.push(
                            Diagnostic::error(Code::UnknownInstance, format!("unknown instance `{instance}`"))
                                .label(service.span, "no service has this name")
                                .maybe_help(did_you_mean(&instance, candidates.iter().map(String::as_str))),
                        );
                        continue;
                    };
                    Some(service_id)
                }
            };
            resolved.push(Dependency {
                phase: target_id,
                service,
                span: dependency.span,
            });
        }
        self.pipeline.phases[id].after = resolved;
    }

    fn workflows(&mut self, workflow_members: Vec<(usize, Vec<Ident<'s>>)>) {
        let mut listed = vec![false; self.pipeline.phases.len()];
        for (id, phases) in workflow_members {
            let name = self.pipeline.workflows[id].name;
            if phases.is_empty() {
                self.diagnostics.push(
                    Diagnostic::warning(Code::EmptyWorkflow, format!("workflow `{}` runs no phase", name.name))
                        .label(name.span, "this workflow is empty")
                        .help("list the phases it runs, e.g. `workflow deploy { build rollout }`"),
                );
            }
            let mut members: Vec<PhaseId> = Vec::new();
            // Where each phase was first listed in this workflow.
            let mut first_listed: HashMap<PhaseId, Span> = HashMap::new();
            for member in phases {
                let Some(phase) = self.pipeline.phases.get_index_of(member.name) else {
                    if self.hidden.may_declare(DeclKind::Phase, member.name) {
                        continue;
                    }
                    // The phase the typo meant is not also reported unused.
                    if let Some(meant) = suggest(member.name, self.pipeline.phases.keys().copied()) {
                        listed[self.pipeline.phases.get_index_of(meant).unwrap_or_default()] = true;
                    }
                    self.diagnostics.push(
                        Diagnostic::error(
                            Code::UnknownWorkflowMember,
                            format!("workflow `{}` lists unknown phase `{}`", name.name, member.name),
                        )
                        .label(member.span, "no phase has this name")
                        .maybe_help(did_you_mean(member.name, self.pipeline.phases.keys().copied())),
                    );
                    continue;
                };
                if let Some(&first) = first_listed.get(&phase) {
                    self.diagnostics.push(
                        Diagnostic::error(
                            Code::DuplicateName,
                            format!("workflow `{}` lists `{}` twice", name.name, member.name),
                        )
                        .label(member.span, "listed again here")
                        .label(first, "first listed here")
                        .help("remove one of the two"),
                    );
                    continue;
                }
                first_listed.insert(phase, member.span);
                members.push(phase);
                listed[phase] = true;
            }
            self.pipeline.workflows[id].phases = members;
        }
        for (phase, listed) in self.pipeline.phases.values().zip(listed) {
            // A broken workflow may list any phase.
            if !listed && !self.hidden.any(DeclKind::Workflow) {
                self.diagnostics.push(
                    Diagnostic::warning(
                        Code::UnusedPhase,
                        format!("phase `{}` is in no workflow", phase.name.name),
                    )
                    .label(phase.name.span, "no workflow runs this phase")
                    .help("add it to a workflow, or remove it"),
                );
            }
        }
    }
}
