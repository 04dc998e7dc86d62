//! Name resolution: declarations become the [`Pipeline`], references become
//! indices, and every dangling or repeated name becomes a diagnostic. A bad
//! reference is dropped after it is reported, so checking goes on and the
//! resolved pipeline never holds a dangling name.

use indexmap::map::Entry;

mod cycles;

use super::broken::Hidden;
use super::pipeline::{Dependency, Env, Phase, PhaseId, Pipeline, Retry, Service, ServiceId, Workflow};
use super::resolution::{Kind, Resolution, Values};
use super::{HashMap, NameMap, duration, secrets, variables};
use crate::syntax::ast::{self, Assignment, Ast, Clause, ClauseKind, DeclKind, Ident, Raw, Template};
use crate::syntax::{Code, Diagnostic, Span, did_you_mean, suggest};

/// Resolves `ast`, appending every problem found to `diagnostics` and
/// recording what each name resolved to. The AST's templates and
/// conditions move into the pipeline.
pub(super) fn resolve<'s>(ast: Ast<'s>, diagnostics: &mut Vec<Diagnostic>) -> (Pipeline<'s>, Resolution) {
    let mut resolver = Resolver {
        diagnostics,
        pipeline: Pipeline::default(),
        hidden: Hidden::new(&ast.broken),
        resolution: Resolution::default(),
        values: Values::default(),
    };
    resolver.pipeline_name(&ast.pipelines);
    let declared = resolver.declare(ast);
    resolver.envs();
    resolver.services(declared.service_after);
    resolver.phases(declared.phase_clauses);
    resolver.workflows(declared.workflow_members);
    variables::check(&resolver.pipeline, &resolver.hidden, resolver.diagnostics);
    secrets::clashes(&resolver.pipeline, resolver.diagnostics);
    resolver.values.uses(&mut resolver.resolution, &resolver.pipeline);
    resolver.resolution.finish();
    (resolver.pipeline, resolver.resolution)
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
    /// What each name resolved to.
    resolution: Resolution,
    /// The first declaration of each variable and attribute name.
    values: Values<'s>,
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
                self.resolution.declare(Kind::Pipeline, first.span);
                for again in rest {
                    self.resolution
                        .refer(Kind::Pipeline, again.span, Some(first.span), true);
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
        let mut var_names: HashMap<&'s str, Span> = HashMap::default();
        for var in ast.vars {
            self.values
                .declare(&mut self.resolution, var.name.name, var.name.span, false);
            if self.unique(Kind::Var, &var.name, var_names.get(var.name.name).copied()) {
                var_names.insert(var.name.name, var.name.span);
                self.pipeline.vars.insert(var.name.name, var.value);
            }
        }
        self.pipeline.secrets = secrets::lower(
            ast.secrets,
            None,
            &mut self.values,
            &mut self.resolution,
            self.diagnostics,
        );
        self.declare_envs(ast.envs);
        for decl in ast.services {
            let first = self.pipeline.services.get(decl.name.name).map(|s| s.name.span);
            if self.unique(Kind::Service, &decl.name, first) {
                let attrs = self.assignments(&format!("service `{}`", decl.name.name), decl.attrs, true);
                let service = Service {
                    name: decl.name,
                    attrs,
                    after: Vec::new(),
                };
                let (id, _) = self.pipeline.services.insert_full(decl.name.name, service);
                declared.service_after.push((id, decl.after));
            }
        }
        self.pipeline.phases.reserve(ast.phases.len());
        declared.phase_clauses.reserve(ast.phases.len());
        for decl in ast.phases {
            let first = self.pipeline.phases.get(decl.name.name).map(|p| p.name.span);
            if self.unique(Kind::Phase, &decl.name, first) {
                let phase = Phase {
                    name: decl.name,
                    per_service: false,
                    after: Vec::new(),
                    when: None,
                    run: None,
                    timeout: None,
                    retry: Retry::default(),
                    finally: None,
                    undo: None,
                };
                let (id, _) = self.pipeline.phases.insert_full(decl.name.name, phase);
                declared.phase_clauses.push((id, decl.clauses));
            }
        }
        for decl in ast.workflows {
            let first = self.pipeline.workflows.get(decl.name.name).map(|w| w.name.span);
            if self.unique(Kind::Workflow, &decl.name, first) {
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

    /// Enters each env with its values and secrets (a repeated env is
    /// reported, and its body not checked).
    fn declare_envs(&mut self, envs: Vec<ast::EnvDecl<'s>>) {
        for decl in envs {
            let first = self.pipeline.envs.get(decl.name.name).map(|e| e.name.span);
            if self.unique(Kind::Env, &decl.name, first) {
                let values = self.assignments(&format!("env `{}`", decl.name.name), decl.values, false);
                let secrets = secrets::lower(
                    decl.secrets,
                    Some(decl.name.name),
                    &mut self.values,
                    &mut self.resolution,
                    self.diagnostics,
                );
                let env = Env {
                    name: decl.name,
                    extends: decl.extends,
                    parent: None,
                    protected: decl.protected,
                    undo_on_failure: decl.undo_on_failure,
                    values,
                    secrets,
                };
                self.pipeline.envs.insert(decl.name.name, env);
            }
        }
    }

    /// Whether `name` is new; reports it as a duplicate of `first` if not.
    /// Records the declaration (a variable's is recorded by `values`).
    fn unique(&mut self, kind: Kind, name: &Ident<'s>, first: Option<Span>) -> bool {
        if kind != Kind::Var {
            self.resolution
                .refer(kind, name.span, Some(first.unwrap_or(name.span)), true);
        }
        let Some(first) = first else { return true };
        let kind = kind.word();
        self.diagnostics.push(
            Diagnostic::error(Code::DuplicateName, format!("duplicate {kind} `{}`", name.name))
                .label(name.span, format!("`{}` declared again here", name.name))
                .label(first, "first declared here")
                .help(format!("rename one of them; {kind} names are unique")),
        );
        false
    }

    /// The values of an env or (with `attrs`) the attributes of a service.
    fn assignments(
        &mut self,
        owner: &str,
        assignments: Vec<Assignment<'s>>,
        attrs: bool,
    ) -> NameMap<&'s str, Template<'s>> {
        let mut map: NameMap<&'s str, Template<'s>> = NameMap::default();
        let mut first_names: HashMap<&'s str, Span> = HashMap::default();
        for assignment in assignments {
            let name = assignment.name;
            self.values.declare(&mut self.resolution, name.name, name.span, attrs);
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
            let target = self.pipeline.envs.get(parent.name).map(|e| e.name.span);
            self.resolution.refer(Kind::Env, parent.span, target, false);
            match self.pipeline.env_id(parent.name) {
                Some(parent_id) => self.pipeline.envs[id].parent = Some(parent_id),
                None if self.hidden.may_declare(DeclKind::Env, parent.name) => {}
                None => self.diagnostics.push(
                    Diagnostic::error(
                        Code::UnknownEnv,
                        format!("env `{}` extends unknown env `{}`", env.name.name, parent.name),
                    )
                    .label(parent.span, "no env has this name")
                    .did_you_mean(parent.name, self.pipeline.envs.keys().copied()),
                ),
            }
        }
        self.break_env_cycles();
    }

    fn services(&mut self, service_after: Vec<(ServiceId, Vec<Ident<'s>>)>) {
        self.service_order(service_after);
        self.break_service_cycles();
    }

    fn service_order(&mut self, service_after: Vec<(ServiceId, Vec<Ident<'s>>)>) {
        for (id, after) in service_after {
            let name = self.pipeline.services[id].name;
            for other in after {
                let target = self.pipeline.services.get(other.name).map(|s| s.name.span);
                self.resolution.refer(Kind::Service, other.span, target, false);
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
                        .did_you_mean(other.name, self.pipeline.services.keys().copied()),
                    ),
                }
            }
        }
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
        let mut seen: [Option<Span>; 7] = [None; 7];
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
                ClauseKind::Finally => (5, "finally"),
                ClauseKind::Undo(_) => (6, "undo"),
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
                ClauseKind::Timeout(raw) => self.timeout(id, &raw),
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
                ClauseKind::Finally => self.pipeline.phases[id].finally = Some(clause.span),
                ClauseKind::Undo(command) => self.pipeline.phases[id].undo = Some(Box::new(command)),
                ClauseKind::After(_) => {}
            }
        }
        if let (Some(finally), Some(undo)) = (seen[5], seen[6]) {
            self.diagnostics
                .push(super::finally::undo_in_finally(name.name, undo, finally));
        }
        after
    }

    /// Takes in a phase's `timeout`, which may not be zero.
    fn timeout(&mut self, id: PhaseId, raw: &Raw<'s>) {
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
        // As many as written (most resolve): `push` would round each list up
        // to four, which the plan keeps alive to the end.
        let mut resolved = Vec::with_capacity(dependencies.len());
        for dependency in dependencies {
            let target = &dependency.phase;
            let span = phases.get(target.name).map(|p| p.name.span);
            self.resolution.refer(Kind::Phase, target.span, span, false);
            if let Some(service) = &dependency.service {
                let span = self.pipeline.services.get(service.name).map(|s| s.name.span);
                self.resolution.refer(Kind::Service, service.span, span, false);
            }
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
                    .did_you_mean(target.name, phases.keys().copied()),
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
                                .maybe_help(did_you_mean(&instance, candidates.iter().map(String::as_str)))
                                .suggestion(meant_service(&instance, target.name, &candidates)),
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
        super::finally::check_order(&self.pipeline.phases, id, &resolved, self.diagnostics);
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
            let mut first_listed: HashMap<PhaseId, Span> = HashMap::default();
            for member in phases {
                let span = self.pipeline.phases.get(member.name).map(|p| p.name.span);
                self.resolution.refer(Kind::Phase, member.span, span, false);
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
                        .did_you_mean(member.name, self.pipeline.phases.keys().copied()),
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

/// The service of the instance that `instance` (`P[svc]`, a typo) most
/// likely meant, among `candidates` (`P[api]`, …): what replaces `svc`.
fn meant_service(instance: &str, phase: &str, candidates: &[String]) -> Option<String> {
    let best = suggest(instance, candidates.iter().map(String::as_str))?;
    let service = best.strip_prefix(phase)?.strip_prefix('[')?.strip_suffix(']')?;
    Some(service.to_owned())
}
