//! The dependency graph as `stagecraft graph` shows it: a workflow's (or
//! every) instance and edge, with conditions decided when an env is given.

use indexmap::IndexMap;

use super::plan::{PlanError, find_env, find_workflow};
use crate::check::{Builtins, Pipeline, Scope};
use crate::graph::PhaseGraph;
use crate::syntax::Diagnostic;

/// Nodes in execution order and the edges between them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphView {
    /// The pipeline's name.
    pub pipeline: String,
    /// The instances.
    pub nodes: Vec<ViewNode>,
    /// `(dependency, dependent)` as positions in `nodes`.
    pub edges: Vec<(usize, usize)>,
}

/// One instance in a [`GraphView`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewNode {
    /// `build[api]` or `migrate`.
    pub id: String,
    /// Whether its phase has a command (a marker phase has none).
    pub command: bool,
    /// The `when` result, when an env was given.
    pub enabled: Option<bool>,
}

/// The graph of `workflow` (every phase when `None`), with conditions
/// evaluated for `env` when one is given.
///
/// # Errors
///
/// An unknown env or workflow, or a condition naming a variable with no
/// value in the env.
pub fn graph_view(
    pipeline: &Pipeline,
    graph: &PhaseGraph,
    workflow: Option<&str>,
    env: Option<&str>,
) -> Result<GraphView, PlanError> {
    let env = env.map(|name| find_env(pipeline, name)).transpose()?;
    let phases = workflow
        .map(|name| find_workflow(pipeline, name).map(|w| w.phases.as_slice()))
        .transpose()?;
    let selection = graph.select(pipeline, phases, None);
    let set = IndexMap::new();
    let builtins = Builtins {
        version: "unknown".to_owned(),
        release: "dry-run".to_owned(),
        workflow: workflow.unwrap_or_default().to_owned(),
        push: false,
        // The view shows a `finally` phase as it runs after a success.
        outcome: Some("success"),
    };
    let mut problems: Vec<Diagnostic> = Vec::new();
    let mut nodes = Vec::with_capacity(selection.order.len());
    for &node in &selection.order {
        let instance = graph.graph[node];
        let phase = &pipeline.phases[instance.phase];
        let enabled = env.map(|env| {
            let scope = Scope {
                pipeline,
                env,
                set: &set,
                builtins: &builtins,
                phase: Some(instance.phase),
                service: instance.service,
            };
            phase.when.as_ref().is_none_or(|expr| {
                scope.eval(expr).unwrap_or_else(|problem| {
                    if !problems.contains(&problem) {
                        problems.push(problem);
                    }
                    false
                })
            })
        });
        nodes.push(ViewNode {
            id: graph.instance_id(pipeline, node),
            command: phase.run.is_some(),
            enabled,
        });
    }
    if !problems.is_empty() {
        return Err(PlanError::Invalid(problems));
    }
    let edges = selection
        .after
        .iter()
        .enumerate()
        .flat_map(|(dependent, after)| after.iter().map(move |&dependency| (dependency, dependent)))
        .collect();
    Ok(GraphView {
        pipeline: pipeline.name.to_owned(),
        nodes,
        edges,
    })
}
