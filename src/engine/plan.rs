//! Plans: a workflow's instances for one env, in execution order, with
//! every command interpolated and every condition decided.

use indexmap::IndexMap;
use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

use crate::check::{Builtins, EnvId, Pipeline, Scope, ServiceId, Workflow};
use crate::graph::PhaseGraph;
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
    /// `--set key=value`, applied over everything else.
    pub set: IndexMap<String, String>,
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
    /// Variables that have no value in this env (and the like).
    Invalid(Vec<Diagnostic>),
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownEnv { name, .. } => write!(f, "invalid environment: {name}"),
            Self::UnknownWorkflow { name, .. } => write!(f, "unknown workflow: {name}"),
            Self::UnknownService { name, .. } => write!(f, "unknown service: {name}"),
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
}

/// One instance in a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedInstance {
    /// `build[api]` or `migrate`.
    pub id: String,
    /// The phase's name.
    pub phase: String,
    /// The service, for a per-service phase.
    pub service: Option<String>,
    /// Positions in [`Plan::instances`] of the instances it waits for (all
    /// earlier), ascending.
    pub after: Vec<usize>,
    /// The command, fully interpolated; `None` for a marker phase.
    pub command: Option<String>,
    /// The `when` result: a disabled instance is skipped and satisfies its
    /// dependents.
    pub enabled: bool,
    /// The timeout in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Extra attempts after a failure.
    pub retry: u32,
    /// Pause between attempts in milliseconds.
    pub backoff_ms: u64,
}

impl Plan {
    /// The ids of the instances `instance` waits for.
    pub(crate) fn after_ids(&self, instance: &PlannedInstance) -> impl Iterator<Item = &str> {
        instance
            .after
            .iter()
            .map(|&position| self.instances[position].id.as_str())
    }
}

impl Serialize for Plan {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut plan = serializer.serialize_struct("Plan", 5)?;
        plan.serialize_field("pipeline", &self.pipeline)?;
        plan.serialize_field("env", &self.env)?;
        plan.serialize_field("workflow", &self.workflow)?;
        plan.serialize_field("version", &self.version)?;
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
            timeout_ms: instance.timeout_ms,
            retry: instance.retry,
            backoff_ms: instance.backoff_ms,
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
    timeout_ms: Option<u64>,
    retry: u32,
    backoff_ms: u64,
}

struct AfterIds<'p>(&'p Plan, &'p [usize]);

impl Serialize for AfterIds<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.1.iter().map(|&position| &self.0.instances[position].id))
    }
}

/// Plans `request.workflow` of a checked, acyclic pipeline.
///
/// # Errors
///
/// An unknown env, workflow or service, or variables without a value in
/// the env.
pub fn plan(pipeline: &Pipeline, graph: &PhaseGraph, request: &PlanRequest) -> Result<Plan, PlanError> {
    let env = find_env(pipeline, &request.env)?;
    let workflow = find_workflow(pipeline, &request.workflow)?;
    let services = match &request.services {
        None => None,
        Some(names) => Some(find_services(pipeline, names)?),
    };
    let selection = graph.select(pipeline, Some(&workflow.phases), services.as_deref());
    let builtins = Builtins {
        version: request.version.clone(),
        release: request.release.clone(),
        workflow: request.workflow.clone(),
    };
    let mut problems: Vec<Diagnostic> = Vec::new();
    let mut report = |problem: Diagnostic| {
        if !problems.contains(&problem) {
            problems.push(problem);
        }
    };
    let mut instances = Vec::with_capacity(selection.order.len());
    for (&node, after) in selection.order.iter().zip(selection.after) {
        let instance = graph.graph[node];
        let phase = &pipeline.phases[instance.phase];
        let scope = Scope {
            pipeline,
            env,
            set: &request.set,
            builtins: &builtins,
            phase: Some(instance.phase),
            service: instance.service,
        };
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
        instances.push(PlannedInstance {
            id: graph.instance_id(pipeline, node),
            phase: phase.name.name.to_owned(),
            service: instance.service.map(|s| pipeline.services[s].name.name.to_owned()),
            after,
            command,
            enabled,
            timeout_ms: phase.timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            retry: phase.retry.count,
            backoff_ms: u64::try_from(phase.retry.backoff.as_millis()).unwrap_or(u64::MAX),
        });
    }
    if !problems.is_empty() {
        problems.sort_by_key(|d| d.primary_span().map_or(0, Span::start));
        return Err(PlanError::Invalid(problems));
    }
    Ok(Plan {
        pipeline: pipeline.name.to_owned(),
        env: request.env.clone(),
        workflow: request.workflow.clone(),
        version: request.version.clone(),
        instances,
    })
}

/// The env named `name`.
pub(super) fn find_env(pipeline: &Pipeline, name: &str) -> Result<EnvId, PlanError> {
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
    names
        .iter()
        .map(|name| {
            pipeline.service_id(name).ok_or_else(|| PlanError::UnknownService {
                name: name.clone(),
                help: did_you_mean(name, pipeline.services.keys().copied()),
            })
        })
        .collect()
}
