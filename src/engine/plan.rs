//! Plans: a workflow's instances for one env, in execution order, with
//! every command interpolated and every condition decided.

use std::fmt::Write as _;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

use super::event::Reason;

mod json;
use crate::check::{Builtins, EnvId, HashMap, Phase, PhaseId, Pipeline, Scope, ServiceId, Workflow};
use crate::graph::{Instance, PhaseGraph};
use crate::syntax::{Diagnostic, Span, did_you_mean};

/// What to plan.
#[derive(Clone, Debug, Default)]
pub struct PlanRequest {
    /// The env to plan for.
    pub env: String,
    /// The workflow to run.
    pub workflow: String,
    /// Keep only these services' instances (and every global phase).
    pub services: Option<Vec<String>>,
    /// `{{version}}`.
    pub version: String,
    /// `{{release}}`: the release id, or a placeholder when nothing runs.
    pub release: String,
    /// `{{push}}`: `true` for `deploy` and `build --push`.
    pub push: bool,
    /// `--set key=value`, applied over everything else. A built-in
    /// ([`SET_BUILTINS`]) is refused: [`PlanError::SetBuiltin`].
    pub set: IndexMap<String, String>,
    /// Per-service versions (a rollback that restores each service's own
    /// version): in a per-service instance of service S, `{{version}}` and
    /// `STAGECRAFT_VERSION` are `service_versions[S]` when S is a key, else
    /// [`version`](Self::version). Global instances always use `version`.
    pub service_versions: IndexMap<String, String>,
    /// Services left as they are: their per-service instances are planned
    /// as skipped with [`Reason::Unchanged`] and, like a condition skip,
    /// satisfy their dependents.
    pub unchanged: Vec<String>,
}

/// Why a plan could not be made.
#[derive(Debug)]
pub enum PlanError {
    /// `--env` names no env.
    UnknownEnv {
        /// The name given.
        name: String,
        /// The closest env name, if one is close.
        help: Option<String>,
    },
    /// The workflow does not exist.
    UnknownWorkflow {
        /// The name given.
        name: String,
        /// The closest workflow name, if one is close.
        help: Option<String>,
    },
    /// `--services` names no service.
    UnknownService {
        /// The name given.
        name: String,
        /// The closest service name, if one is close.
        help: Option<String>,
    },
    /// `--set` names a built-in, which only stagecraft or its own flag
    /// sets.
    SetBuiltin {
        /// The built-in's name.
        name: String,
    },
    /// Variables that have no value in this env (and the like).
    Invalid(Vec<Diagnostic>),
}

/// The built-ins `--set` cannot override, each with what sets it instead.
pub const SET_BUILTINS: [(&str, &str); 9] = [
    ("env", "use `--env`"),
    ("version", "use `--version`"),
    ("push", "use `build --push` (`deploy` always pushes)"),
    ("release", "it is set by stagecraft"),
    ("pipeline", "it is set by stagecraft"),
    ("workflow", "it is set by stagecraft"),
    ("phase", "it is set by stagecraft"),
    ("service", "it is set by stagecraft"),
    ("outcome", "it is set by stagecraft"),
];

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownEnv { name, .. } => write!(f, "invalid environment: {name}"),
            Self::UnknownWorkflow { name, .. } => write!(f, "unknown workflow: {name}"),
            Self::UnknownService { name, .. } => write!(f, "unknown service: {name}"),
            Self::SetBuiltin { name } => {
                let advice = SET_BUILTINS
                    .iter()
                    .find(|(builtin, _)| builtin == name)
                    .map_or("it is set by stagecraft", |(_, advice)| advice);
                write!(f, "`--set {name}` cannot set the built-in `{name}`: {advice}")
            }
            Self::Invalid(diagnostics) => write!(f, "{} problem(s) in the pipeline for this env", diagnostics.len()),
        }
    }
}

/// A workflow's instances for one env, in execution order.
///
/// Serialised (JSON, RON) with each instance's `after` as ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The pipeline's name.
    pub pipeline: String,
    /// The env.
    pub env: String,
    /// The workflow.
    pub workflow: String,
    /// The version.
    pub version: String,
    /// Instances, in the order they run with `--jobs 1` (serialised as
    /// `phases`).
    pub instances: Vec<PlannedInstance>,
    /// The secrets of the env, in the order `check` lists them (omitted
    /// from JSON and RON when there is none). Never a value.
    pub secrets: Vec<PlannedSecret>,
}

/// A secret in a plan: the variable commands read and where its value is
/// read when the run starts, never the value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedSecret {
    /// The secret's name: commands read it as `$NAME`.
    pub name: String,
    /// `env` (stagecraft's own environment variable) or `file`.
    pub from: String,
    /// The variable's name or the file's path.
    pub source: String,
}

/// One instance in a plan.
///
/// The names and the version are shared (`Arc<str>`): every instance of a
/// phase holds the same name, a global phase's id is its name, and most
/// instances have the plan's version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedInstance {
    /// `build[api]` or `migrate`.
    pub id: Arc<str>,
    /// The phase's name.
    pub phase: Arc<str>,
    /// The service, for a per-service phase.
    pub service: Option<Arc<str>>,
    /// Positions in [`Plan::instances`] of the instances it waits for (all
    /// earlier), ascending.
    pub after: Vec<usize>,
    /// The command, fully interpolated; `None` for a marker phase.
    pub command: Option<String>,
    /// The `when` result: a disabled instance is skipped and satisfies its
    /// dependents.
    pub enabled: bool,
    /// Its service is in [`PlanRequest::unchanged`]: it is skipped (reason
    /// [`Reason::Unchanged`], whatever its condition) and satisfies its
    /// dependents.
    pub unchanged: bool,
    /// Its `{{version}}` and `STAGECRAFT_VERSION`: the plan's version, or
    /// its service's own from [`PlanRequest::service_versions`].
    pub version: Arc<str>,
    /// The timeout in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Extra attempts after a failure.
    pub retry: u32,
    /// Pause between attempts in milliseconds.
    pub backoff_ms: u64,
    /// For an instance of a `finally` phase, its command and condition
    /// when the release failed (`{{outcome}}` is `failure`); `command` and
    /// `enabled` above are those of a success. `None` for other phases.
    pub on_failure: Option<Box<OnFailure>>,
    /// Its `undo` command, fully interpolated as `command` is: what undoes
    /// it once it completed, when a failed release is undone.
    pub undo: Option<String>,
}

/// A `finally` instance's command and condition when the release failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnFailure {
    /// The command, with `{{outcome}}` = `failure`.
    pub command: Option<String>,
    /// The `when` result, with `outcome` = `failure`.
    pub enabled: bool,
}

impl PlannedInstance {
    /// Why it is skipped without running, if it is: its service is
    /// unchanged, else its condition is false.
    #[must_use]
    pub fn skip(&self) -> Option<Reason> {
        if self.unchanged {
            Some(Reason::Unchanged)
        } else if self.enabled {
            None
        } else {
            Some(Reason::Condition)
        }
    }

    /// Whether its phase is `finally`.
    #[must_use]
    pub fn is_finally(&self) -> bool {
        self.on_failure.is_some()
    }

    /// Why it is skipped when the release's other instances `failed` (or
    /// not), if it is: as [`skip`](Self::skip), with a `finally` phase's
    /// condition for that outcome.
    #[must_use]
    pub fn skip_on(&self, failed: bool) -> Option<Reason> {
        match &self.on_failure {
            Some(on_failure) if failed && !self.unchanged && !on_failure.enabled => Some(Reason::Condition),
            Some(_) if failed && !self.unchanged => None,
            _ => self.skip(),
        }
    }

    /// Its command when the release's other instances `failed` (or not).
    #[must_use]
    pub fn command_on(&self, failed: bool) -> Option<&str> {
        match &self.on_failure {
            Some(on_failure) if failed => on_failure.command.as_deref(),
            _ => self.command.as_deref(),
        }
    }
}

impl Plan {
    /// The ids of the instances `instance` waits for.
    pub(crate) fn after_ids(&self, instance: &PlannedInstance) -> impl Iterator<Item = &str> {
        instance.after.iter().map(|&position| &*self.instances[position].id)
    }
}

impl Serialize for Plan {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = if self.secrets.is_empty() { 5 } else { 6 };
        let mut plan = serializer.serialize_struct("Plan", fields)?;
        plan.serialize_field("pipeline", &self.pipeline)?;
        plan.serialize_field("env", &self.env)?;
        plan.serialize_field("workflow", &self.workflow)?;
        plan.serialize_field("version", &self.version)?;
        if self.secrets.is_empty() {
            plan.skip_field("secrets")?;
        } else {
            plan.serialize_field("secrets", &self.secrets)?;
        }
        plan.serialize_field("phases", &Instances(self))?;
        plan.end()
    }
}

/// The instances of a plan as they are serialised.
struct Instances<'p>(&'p Plan);

impl Serialize for Instances<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let plan = self.0;
        serializer.collect_seq(plan.instances.iter().map(|instance| InstanceOut {
            id: &instance.id,
            phase: &instance.phase,
            service: instance.service.as_deref(),
            after: AfterIds(plan, &instance.after),
            command: instance.command.as_deref(),
            enabled: instance.enabled,
            unchanged: instance.unchanged,
            version: &instance.version,
            timeout_ms: instance.timeout_ms,
            retry: instance.retry,
            backoff_ms: instance.backoff_ms,
            finally: instance.is_finally(),
            undo: instance.undo.as_deref(),
        }))
    }
}

#[derive(Serialize)]
#[serde(rename = "PlannedInstance")]
struct InstanceOut<'p> {
    id: &'p str,
    phase: &'p str,
    service: Option<&'p str>,
    after: AfterIds<'p>,
    command: Option<&'p str>,
    enabled: bool,
    unchanged: bool,
    version: &'p str,
    timeout_ms: Option<u64>,
    retry: u32,
    backoff_ms: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    finally: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    undo: Option<&'p str>,
}

struct AfterIds<'p>(&'p Plan, &'p [usize]);

impl Serialize for AfterIds<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.1.iter().map(|&position| &*self.0.instances[position].id))
    }
}

/// Plans `request.workflow` of a checked, acyclic pipeline.
///
/// # Errors
///
/// A built-in in `set`, an unknown env, workflow or service (in
/// `services`, `service_versions` or `unchanged`), or variables without a
/// value in the env.
pub fn plan(pipeline: &Pipeline, graph: &PhaseGraph, request: &PlanRequest) -> Result<Plan, PlanError> {
    if let Some(name) = request
        .set
        .keys()
        .find(|key| SET_BUILTINS.iter().any(|(name, _)| name == key))
    {
        return Err(PlanError::SetBuiltin { name: name.clone() });
    }
    let env = find_env(pipeline, &request.env)?;
    let workflow = find_workflow(pipeline, &request.workflow)?;
    let services = match &request.services {
        None => None,
        Some(names) => Some(find_services(pipeline, names)?),
    };
    let unchanged = find_services(pipeline, &request.unchanged)?;
    let builtins = Builtins {
        version: request.version.clone(),
        release: request.release.clone(),
        workflow: request.workflow.clone(),
        push: request.push,
        outcome: None,
    };
    let version: Arc<str> = Arc::from(request.version.as_str());
    // The built-ins and version of each service with a version of its own.
    let mut service_builtins: IndexMap<ServiceId, (Builtins, Arc<str>)> = IndexMap::new();
    for (name, version) in &request.service_versions {
        let own = Builtins {
            version: version.clone(),
            ..builtins.clone()
        };
        service_builtins.insert(find_service(pipeline, name)?, (own, Arc::from(version.as_str())));
    }
    let selection = graph.select(pipeline, Some(&workflow.phases), services.as_deref());
    let mut problems: Vec<Diagnostic> = Vec::new();
    let mut instances = Vec::with_capacity(selection.order.len());
    let mut shared = SharedNames::new(pipeline);
    for (&node, after) in selection.order.iter().zip(selection.after) {
        let Instance { phase, service } = graph.graph[node];
        let (builtins, version) = service
            .and_then(|s| service_builtins.get(&s))
            .map_or((&builtins, &version), |(builtins, version)| (builtins, version));
        let scope = Scope {
            pipeline,
            env,
            set: &request.set,
            builtins,
            phase: Some(phase),
            service,
        };
        let names = shared.names(pipeline, phase, service, version);
        let mut instance = plan_instance(&scope, &pipeline.phases[phase], names, after, &mut problems);
        instance.unchanged = service.is_some_and(|s| unchanged.contains(&s));
        instances.push(instance);
    }
    if !problems.is_empty() {
        problems.sort_by_key(|d| d.primary_span().map_or(0, Span::start));
        return Err(PlanError::Invalid(problems));
    }
    let instances = finally_last(instances);
    Ok(Plan {
        pipeline: pipeline.name.to_owned(),
        env: request.env.clone(),
        workflow: request.workflow.clone(),
        version: request.version.clone(),
        instances,
        secrets: pipeline
            .secrets_in(env)
            .into_iter()
            .map(|secret| PlannedSecret {
                name: secret.name.name.to_owned(),
                from: secret.from.keyword().to_owned(),
                source: secret.source.clone(),
            })
            .collect(),
    })
}

/// An instance's names and version, shared with the other instances
/// where they are the same.
struct Names {
    id: Arc<str>,
    phase: Arc<str>,
    service: Option<Arc<str>>,
    version: Arc<str>,
}

/// The names instances share, each made once: the services', and those of
/// the per-service phases (a global phase has one instance, whose id is
/// its name).
struct SharedNames {
    services: Vec<Arc<str>>,
    phases: HashMap<PhaseId, Arc<str>>,
    /// Where a per-service id is written before it is shared.
    id: String,
}

impl SharedNames {
    fn new(pipeline: &Pipeline) -> Self {
        Self {
            services: pipeline.services.keys().map(|&name| Arc::from(name)).collect(),
            phases: HashMap::default(),
            id: String::new(),
        }
    }

    /// The names of the instance of `phase` for `service`, at `version`.
    fn names(&mut self, pipeline: &Pipeline, phase: PhaseId, service: Option<ServiceId>, version: &Arc<str>) -> Names {
        let name = pipeline.phases[phase].name.name;
        let version = Arc::clone(version);
        let Some(service) = service else {
            let phase: Arc<str> = Arc::from(name);
            return Names {
                id: Arc::clone(&phase),
                phase,
                service: None,
                version,
            };
        };
        let service = Arc::clone(&self.services[service]);
        // As `graph::instance_id` writes it.
        self.id.clear();
        let _ = write!(self.id, "{name}[{service}]");
        Names {
            id: Arc::from(self.id.as_str()),
            phase: Arc::clone(self.phases.entry(phase).or_insert_with(|| Arc::from(name))),
            service: Some(service),
            version,
        }
    }
}

/// The instance of `phase` named `names`, planned in `scope`; the problems
/// found are added to `problems` (once each).
fn plan_instance(
    scope: &Scope<'_>,
    phase: &Phase<'_>,
    names: Names,
    after: Vec<usize>,
    problems: &mut Vec<Diagnostic>,
) -> PlannedInstance {
    let mut report = |problem: Diagnostic| {
        if !problems.contains(&problem) {
            problems.push(problem);
        }
    };
    // A `finally` phase is decided for both outcomes (see `OnFailure`).
    let with_outcome = |outcome| Builtins {
        outcome: Some(outcome),
        ..scope.builtins.clone()
    };
    let success = phase.finally.map(|_| with_outcome("success"));
    let main = success.as_ref().map_or(*scope, |builtins| Scope { builtins, ..*scope });
    let (enabled, command) = decide(&main, phase, &mut report);
    let undo = phase.undo.as_ref().map(|undo| {
        main.expand(undo).unwrap_or_else(|problem| {
            report(problem);
            String::new()
        })
    });
    let on_failure = phase.finally.map(|_| {
        let builtins = with_outcome("failure");
        let (enabled, command) = decide(
            &Scope {
                builtins: &builtins,
                ..*scope
            },
            phase,
            &mut report,
        );
        Box::new(OnFailure { command, enabled })
    });
    PlannedInstance {
        id: names.id,
        phase: names.phase,
        service: names.service,
        after,
        command,
        enabled,
        unchanged: false,
        version: names.version,
        timeout_ms: phase.timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        retry: phase.retry.count,
        backoff_ms: u64::try_from(phase.retry.backoff.as_millis()).unwrap_or(u64::MAX),
        on_failure,
        undo,
    }
}

/// `instances` with the `finally` ones moved after all others, each group
/// in its order: neither group waits for the other (`check` sees to it),
/// so every instance still comes after those it waits for.
fn finally_last(instances: Vec<PlannedInstance>) -> Vec<PlannedInstance> {
    if !instances.iter().any(PlannedInstance::is_finally) {
        return instances;
    }
    let (main, finally): (Vec<_>, Vec<_>) = instances
        .into_iter()
        .enumerate()
        .partition(|(_, instance)| !instance.is_finally());
    let mut moved = vec![0; main.len() + finally.len()];
    for (new, (old, _)) in main.iter().chain(&finally).enumerate() {
        moved[*old] = new;
    }
    main.into_iter()
        .chain(finally)
        .map(|(_, mut instance)| {
            for position in &mut instance.after {
                *position = moved[*position];
            }
            instance
        })
        .collect()
}

/// A phase's condition and command in `scope`.
fn decide(scope: &Scope<'_>, phase: &Phase<'_>, report: &mut impl FnMut(Diagnostic)) -> (bool, Option<String>) {
    let enabled = match &phase.when {
        None => true,
        Some(expr) => scope.eval(expr).unwrap_or_else(|problem| {
            report(problem);
            false
        }),
    };
    let command = phase.run.as_ref().map(|run| {
        scope.expand(run).unwrap_or_else(|problem| {
            report(problem);
            String::new()
        })
    });
    (enabled, command)
}

/// The env named `name`.
pub(crate) fn find_env(pipeline: &Pipeline, name: &str) -> Result<EnvId, PlanError> {
    pipeline.env_id(name).ok_or_else(|| PlanError::UnknownEnv {
        name: name.to_owned(),
        help: did_you_mean(name, pipeline.envs.keys().copied()),
    })
}

/// The workflow named `name`.
pub(super) fn find_workflow<'p>(pipeline: &'p Pipeline<'_>, name: &str) -> Result<&'p Workflow<'p>, PlanError> {
    pipeline.workflows.get(name).ok_or_else(|| PlanError::UnknownWorkflow {
        name: name.to_owned(),
        help: did_you_mean(name, pipeline.workflows.keys().copied()),
    })
}

/// The services named in `--services`.
pub(super) fn find_services(pipeline: &Pipeline, names: &[String]) -> Result<Vec<ServiceId>, PlanError> {
    names.iter().map(|name| find_service(pipeline, name)).collect()
}

/// The service named `name`.
fn find_service(pipeline: &Pipeline, name: &str) -> Result<ServiceId, PlanError> {
    pipeline.service_id(name).ok_or_else(|| PlanError::UnknownService {
        name: name.to_owned(),
        help: did_you_mean(name, pipeline.services.keys().copied()),
    })
}

#[cfg(test)]
mod tests;
