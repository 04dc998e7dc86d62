//! Name resolution: declarations become the [`Pipeline`], references become
//! indices, and every dangling or repeated name becomes a diagnostic. A bad
//! reference is dropped after it is reported, so checking goes on and the
//! resolved pipeline never holds a dangling name.

use std::collections::HashMap;

use indexmap::IndexMap;
use indexmap::map::Entry;

use super::pipeline::{Dependency, Env, Phase, Pipeline, Retry, Service, Workflow};
use super::{duration, variables};
use crate::syntax::ast::{Assignment, Ast, ClauseKind, Ident, PhaseDecl, Raw, Template};
use crate::syntax::{Code, Diagnostic, Span, did_you_mean};

/// Resolves `ast`, appending every problem found to `diagnostics`.
pub(super) fn resolve(ast: &Ast, diagnostics: &mut Vec<Diagnostic>) -> Pipeline {
    let mut resolver = Resolver {
        diagnostics,
        pipeline: Pipeline::default(),
    };
    resolver.pipeline_name(&ast.pipelines);
    resolver.declare(ast);
    resolver.envs(ast);
    resolver.services(ast);
    resolver.phases(ast);
    resolver.workflows(ast);
    variables::check(ast, &resolver.pipeline, resolver.diagnostics);
    resolver.pipeline
}

struct Resolver<'d> {
    diagnostics: &'d mut Vec<Diagnostic>,
    pipeline: Pipeline,
}

impl Resolver<'_> {
    fn pipeline_name(&mut self, names: &[Ident]) {
        match names {
            [] => self.diagnostics.push(
                Diagnostic::error(Code::MissingPipeline, "the file declares no pipeline")
                    .label(Span::new(0, 0), "expected `pipeline NAME` in this file")
                    .help("start the file with `pipeline my-app`"),
            ),
            [first, rest @ ..] => {
                self.pipeline.name.clone_from(&first.name);
                for again in rest {
                    self.diagnostics.push(
                        Diagnostic::error(Code::DuplicateName, "a file declares one pipeline")
                            .label(again.span, format!("`{}` declared here", again.name))
                            .label(first.span, format!("`{}` already declared here", first.name))
                            .help("split the file, or remove one `pipeline` line"),
                    );
                }
            }
        }
    }

    /// Enters every declaration's name first, so references may point
    /// forward, and reports names declared twice (the first one wins).
    fn declare(&mut self, ast: &Ast) {
        for var in &ast.vars {
            if self.unique(
                "variable",
                &var.name,
                self.pipeline.vars.get(&var.name.name).map(|t| t.span),
            ) {
                self.pipeline.vars.insert(var.name.name.clone(), var.value.clone());
            }
        }
        for decl in &ast.envs {
            let first = self.pipeline.envs.get(&decl.name.name).map(|e| e.name.span);
            if self.unique("env", &decl.name, first) {
                let values = self.assignments(&format!("env `{}`", decl.name.name), &decl.values);
                let env = Env {
                    name: decl.name.clone(),
                    extends: decl.extends.clone(),
                    parent: None,
                    values,
                };
                self.pipeline.envs.insert(decl.name.name.clone(), env);
            }
        }
        for decl in &ast.services {
            let first = self.pipeline.services.get(&decl.name.name).map(|s| s.name.span);
            if self.unique("service", &decl.name, first) {
                let attrs = self.assignments(&format!("service `{}`", decl.name.name), &decl.attrs);
                let service = Service {
                    name: decl.name.clone(),
                    attrs,
                    after: Vec::new(),
                };
                self.pipeline.services.insert(decl.name.name.clone(), service);
            }
        }
        for decl in &ast.phases {
            let first = self.pipeline.phases.get(&decl.name.name).map(|p| p.name.span);
            if self.unique("phase", &decl.name, first) {
                let phase = Phase {
                    name: decl.name.clone(),
                    per_service: false,
                    after: Vec::new(),
                    when: None,
                    run: None,
                    timeout: None,
                    retry: Retry::default(),
                };
                self.pipeline.phases.insert(decl.name.name.clone(), phase);
            }
        }
        for decl in &ast.workflows {
            let first = self.pipeline.workflows.get(&decl.name.name).map(|w| w.name.span);
            if self.unique("workflow", &decl.name, first) {
                let workflow = Workflow {
                    name: decl.name.clone(),
                    phases: Vec::new(),
                };
                self.pipeline.workflows.insert(decl.name.name.clone(), workflow);
            }
        }
    }

    /// Whether `name` is new; reports it as a duplicate of `first` if not.
    fn unique(&mut self, kind: &str, name: &Ident, first: Option<Span>) -> bool {
        let Some(first) = first else { return true };
        self.diagnostics.push(
            Diagnostic::error(Code::DuplicateName, format!("duplicate {kind} `{}`", name.name))
                .label(name.span, format!("`{}` declared again here", name.name))
                .label(first, "first declared here")
                .help(format!("rename one of them; {kind} names are unique")),
        );
        false
    }

    fn assignments(&mut self, owner: &str, assignments: &[Assignment]) -> IndexMap<String, Template> {
        let mut map: IndexMap<String, Template> = IndexMap::new();
        for assignment in assignments {
            match map.entry(assignment.name.name.clone()) {
                Entry::Occupied(first) => self.diagnostics.push(
                    Diagnostic::error(
                        Code::DuplicateName,
                        format!("{owner} sets `{}` twice", assignment.name.name),
                    )
                    .label(assignment.name.span, "set again here")
                    .label(first.get().span, "first set here")
                    .help("remove one of the two"),
                ),
                Entry::Vacant(slot) => {
                    slot.insert(assignment.value.clone());
                }
            }
        }
        map
    }

    fn envs(&mut self, ast: &Ast) {
        for decl in &ast.envs {
            let Some(parent) = &decl.extends else { continue };
            let Some(id) = Self::own(&self.pipeline.envs, &decl.name) else {
                continue;
            };
            match self.pipeline.env_id(&parent.name) {
                Some(parent_id) => self.pipeline.envs[id].parent = Some(parent_id),
                None => self.diagnostics.push(
                    Diagnostic::error(
                        Code::UnknownEnv,
                        format!("env `{}` extends unknown env `{}`", decl.name.name, parent.name),
                    )
                    .label(parent.span, "no env has this name")
                    .maybe_help(did_you_mean(
                        &parent.name,
                        self.pipeline.envs.keys().map(String::as_str),
                    )),
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
        let names: Vec<&str> = cycle
            .iter()
            .map(|&id| self.pipeline.envs[id].name.name.as_str())
            .collect();
        let mut path = names.join("` → `");
        path = format!("{path}` → `{}", names[0]);
        let mut diagnostic = Diagnostic::error(Code::EnvCycle, format!("env inheritance cycle: `{path}`"));
        for &id in cycle {
            let env = &self.pipeline.envs[id];
            let parent = env.parent.map_or("", |p| self.pipeline.envs[p].name.name.as_str());
            let span = env.extends.as_ref().map_or(env.name.span, |parent| parent.span);
            diagnostic = diagnostic.label(span, format!("`{}` extends `{parent}` here", env.name.name));
        }
        self.diagnostics
            .push(diagnostic.help("an env cannot inherit from itself, directly or through others"));
    }

    fn services(&mut self, ast: &Ast) {
        for decl in &ast.services {
            let Some(id) = Self::own(&self.pipeline.services, &decl.name) else {
                continue;
            };
            for other in &decl.after {
                if other.name == decl.name.name {
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
                match self.pipeline.service_id(&other.name) {
                    Some(other_id) => self.pipeline.services[id].after.push((other_id, other.span)),
                    None => self.diagnostics.push(
                        Diagnostic::error(
                            Code::UnknownService,
                            format!(
                                "service `{}` comes after unknown service `{}`",
                                decl.name.name, other.name
                            ),
                        )
                        .label(other.span, "no service has this name")
                        .maybe_help(did_you_mean(
                            &other.name,
                            self.pipeline.services.keys().map(String::as_str),
                        )),
                    ),
                }
            }
        }
    }

    fn phases(&mut self, ast: &Ast) {
        for decl in &ast.phases {
            if let Some(id) = Self::own(&self.pipeline.phases, &decl.name) {
                self.phase_clauses(id, decl);
            }
        }
        // `after` is resolved once every phase knows whether it is per-service.
        for decl in &ast.phases {
            if let Some(id) = Self::own(&self.pipeline.phases, &decl.name) {
                self.phase_dependencies(id, decl);
            }
        }
    }

    fn phase_clauses(&mut self, id: usize, decl: &PhaseDecl) {
        let mut seen: HashMap<&'static str, Span> = HashMap::new();
        for clause in &decl.clauses {
            let keyword = match &clause.kind {
                ClauseKind::ForEach => "for each service",
                ClauseKind::After(_) => continue,
                ClauseKind::When(_) => "when",
                ClauseKind::Run(_) => "run",
                ClauseKind::Timeout(_) => "timeout",
                ClauseKind::Retry { .. } => "retry",
            };
            if let Some(&first) = seen.get(keyword) {
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::DuplicateClause,
                        format!("phase `{}` has more than one `{keyword}`", decl.name.name),
                    )
                    .label(clause.span, "repeated here")
                    .label(first, "first given here")
                    .help(format!("a phase takes at most one `{keyword}`")),
                );
                continue;
            }
            seen.insert(keyword, clause.span);
            match &clause.kind {
                ClauseKind::ForEach => {
                    if self.pipeline.services.is_empty() {
                        self.diagnostics.push(
                            Diagnostic::error(
                                Code::NoServices,
                                format!(
                                    "phase `{}` runs for each service, but there are no services",
                                    decl.name.name
                                ),
                            )
                            .label(clause.span, "this phase would have no instances")
                            .help("declare a `service`, or remove `for each service`"),
                        );
                    }
                    self.pipeline.phases[id].per_service = true;
                }
                ClauseKind::When(expr) => self.pipeline.phases[id].when = Some(expr.clone()),
                ClauseKind::Run(command) => self.pipeline.phases[id].run = Some(command.clone()),
                ClauseKind::Timeout(raw) => {
                    let timeout = self.duration(raw, "timeout");
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
    }

    fn duration(&mut self, raw: &Raw, what: &str) -> Option<std::time::Duration> {
        match duration::parse(&raw.text) {
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

    fn phase_dependencies(&mut self, id: usize, decl: &PhaseDecl) {
        let phases = &self.pipeline.phases;
        let mut resolved = Vec::new();
        for clause in &decl.clauses {
            let ClauseKind::After(dependencies) = &clause.kind else {
                continue;
            };
            for dependency in dependencies {
                let target = &dependency.phase;
                if target.name == decl.name.name {
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
                let Some(target_id) = phases.get_index_of(&target.name) else {
                    self.diagnostics.push(
                        Diagnostic::error(
                            Code::UnknownPhase,
                            format!("phase `{}` depends on unknown phase `{}`", decl.name.name, target.name),
                        )
                        .label(target.span, "no phase has this name")
                        .maybe_help(did_you_mean(&target.name, phases.keys().map(String::as_str))),
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
                        let Some(service_id) = self.pipeline.service_id(&service.name) else {
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
        }
        self.pipeline.phases[id].after = resolved;
    }

    fn workflows(&mut self, ast: &Ast) {
        let mut listed = vec![false; self.pipeline.phases.len()];
        for decl in &ast.workflows {
            let Some(id) = Self::own(&self.pipeline.workflows, &decl.name) else {
                continue;
            };
            if decl.phases.is_empty() {
                self.diagnostics.push(
                    Diagnostic::warning(
                        Code::EmptyWorkflow,
                        format!("workflow `{}` runs no phase", decl.name.name),
                    )
                    .label(decl.name.span, "this workflow is empty")
                    .help("list the phases it runs, e.g. `workflow deploy { build rollout }`"),
                );
            }
            let mut members: Vec<(usize, Span)> = Vec::new();
            // Where each phase was first listed in this workflow.
            let mut first_listed: HashMap<usize, Span> = HashMap::new();
            for member in &decl.phases {
                let Some(phase) = self.pipeline.phases.get_index_of(&member.name) else {
                    self.diagnostics.push(
                        Diagnostic::error(
                            Code::UnknownWorkflowMember,
                            format!("workflow `{}` lists unknown phase `{}`", decl.name.name, member.name),
                        )
                        .label(member.span, "no phase has this name")
                        .maybe_help(did_you_mean(
                            &member.name,
                            self.pipeline.phases.keys().map(String::as_str),
                        )),
                    );
                    continue;
                };
                if let Some(&first) = first_listed.get(&phase) {
                    self.diagnostics.push(
                        Diagnostic::error(
                            Code::DuplicateName,
                            format!("workflow `{}` lists `{}` twice", decl.name.name, member.name),
                        )
                        .label(member.span, "listed again here")
                        .label(first, "first listed here")
                        .help("remove one of the two"),
                    );
                    continue;
                }
                first_listed.insert(phase, member.span);
                members.push((phase, member.span));
                listed[phase] = true;
            }
            self.pipeline.workflows[id].phases = members.into_iter().map(|(phase, _)| phase).collect();
        }
        for (phase, listed) in self.pipeline.phases.values().zip(listed) {
            if !listed {
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

    /// The index of the declaration `name` itself: `None` for a duplicate
    /// (already reported), whose body is not checked twice.
    fn own<T: Declared>(map: &IndexMap<String, T>, name: &Ident) -> Option<usize> {
        let (id, _, item) = map.get_full(&name.name)?;
        (item.declared_at() == name.span).then_some(id)
    }
}

/// A resolved declaration that remembers where its name was written.
trait Declared {
    fn declared_at(&self) -> Span;
}

macro_rules! declared {
    ($($ty:ty),*) => {$(
        impl Declared for $ty {
            fn declared_at(&self) -> Span {
                self.name.span
            }
        }
    )*};
}

declared!(Env, Service, Phase, Workflow);
