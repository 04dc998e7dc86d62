//! The DAG of phase instances.
//!
//! Every phase becomes one node, or one per service with `for each
//! service`; nodes are created in declaration order (then service order),
//! so a node's index is its tie-break rank. Edges point from a dependency to
//! its dependent and remember the `after` that made them, which is where a
//! cycle diagnostic points. [`PhaseGraph::select`] cuts out a workflow's
//! instances (optionally only some services') and orders them.
//!
//! [`compile`] runs the whole front end: parse, check, build the graph.

mod order;

use petgraph::graph::{DiGraph, NodeIndex};

pub use order::Selection;

use crate::check::{self, PhaseId, Pipeline, ServiceId};
use crate::syntax::{self, Diagnostic, Span};

/// One instance of a phase: `build[api]`, or `migrate` for a global phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instance {
    /// The phase.
    pub phase: PhaseId,
    /// The service, for a per-service phase.
    pub service: Option<ServiceId>,
}

/// Why an edge exists: the `after` (of a phase or of a service) that says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    /// The dependency as written.
    pub span: Span,
}

/// Phase instances and their dependencies.
#[derive(Clone, Debug, Default)]
pub struct PhaseGraph {
    /// Dependency → dependent.
    pub graph: DiGraph<Instance, Edge, u32>,
    /// Index of each phase's first node; a per-service phase's instance for
    /// service `s` is `first[phase] + s`.
    first: Vec<u32>,
}

impl PhaseGraph {
    /// Builds the graph of a resolved pipeline and reports its cycles.
    #[must_use]
    pub fn build(pipeline: &Pipeline) -> (Self, Vec<Diagnostic>) {
        let services = pipeline.services.len();
        let mut this = Self::default();
        let per_phase = |decl: &crate::check::Phase<'_>| if decl.per_service { services } else { 1 };
        let phases = pipeline.phases.values();
        this.graph.reserve_nodes(phases.clone().map(per_phase).sum());
        this.graph
            .reserve_edges(phases.map(|decl| decl.after.len() * per_phase(decl)).sum());
        this.first.reserve(pipeline.phases.len());
        let mut next = 0u32;
        for (phase, decl) in pipeline.phases.values().enumerate() {
            this.first.push(next);
            if decl.per_service {
                for service in 0..services {
                    this.graph.add_node(Instance {
                        phase,
                        service: Some(service),
                    });
                }
                next += u32::try_from(services).unwrap_or(u32::MAX);
            } else {
                this.graph.add_node(Instance { phase, service: None });
                next += 1;
            }
        }
        for (phase, decl) in pipeline.phases.values().enumerate() {
            for dependency in &decl.after {
                let target = &pipeline.phases[dependency.phase];
                let edge = Edge { span: dependency.span };
                for dependent in this.instances(pipeline, phase) {
                    let source = match (dependency.service, target.per_service) {
                        (Some(service), _) => this.node(dependency.phase, Some(service)),
                        (None, true) => {
                            let Some(service) = this.graph[dependent].service else {
                                for source in this.instances(pipeline, dependency.phase) {
                                    this.graph.update_edge(source, dependent, edge);
                                }
                                continue;
                            };
                            this.node(dependency.phase, Some(service))
                        }
                        (None, false) => this.node(dependency.phase, None),
                    };
                    this.graph.update_edge(source, dependent, edge);
                }
            }
            if decl.per_service {
                for (service, service_decl) in pipeline.services.values().enumerate() {
                    for &(before, span) in &service_decl.after {
                        let source = this.node(phase, Some(before));
                        let dependent = this.node(phase, Some(service));
                        this.graph.update_edge(source, dependent, Edge { span });
                    }
                }
            }
        }
        let diagnostics = order::cycles(&this, pipeline);
        (this, diagnostics)
    }

    /// The node of an instance.
    #[must_use]
    pub(crate) fn node(&self, phase: PhaseId, service: Option<ServiceId>) -> NodeIndex {
        NodeIndex::new(self.first[phase] as usize + service.unwrap_or(0))
    }

    /// The nodes of every instance of `phase`, in service order.
    pub fn instances(&self, pipeline: &Pipeline, phase: PhaseId) -> impl Iterator<Item = NodeIndex> + use<> {
        let count = if pipeline.phases[phase].per_service {
            pipeline.services.len()
        } else {
            1
        };
        let first = self.first[phase] as usize;
        (first..first + count).map(NodeIndex::new)
    }

    /// The instance's id as users see it: `build[api]` or `migrate`.
    #[must_use]
    pub(crate) fn instance_id(&self, pipeline: &Pipeline, node: NodeIndex) -> String {
        instance_id(pipeline, self.graph[node])
    }
}

/// `build[api]` or `migrate`.
#[must_use]
pub(crate) fn instance_id(pipeline: &Pipeline<'_>, instance: Instance) -> String {
    let phase = &pipeline.phases[instance.phase].name.name;
    match instance.service {
        Some(service) => format!("{phase}[{}]", pipeline.services[service].name.name),
        None => (*phase).to_owned(),
    }
}

/// The front end's result for one file.
#[derive(Debug, Default)]
pub struct Compilation<'s> {
    /// The resolved pipeline (partial when there are errors: it holds the
    /// declarations that parsed). Always `Some` from [`compile`].
    pub pipeline: Option<Pipeline<'s>>,
    /// The instance graph (partial when there are errors).
    pub graph: Option<PhaseGraph>,
    /// Every problem found, ordered by position in the file.
    pub diagnostics: Vec<Diagnostic>,
    /// What each name resolved to.
    pub resolution: check::Resolution,
}

impl Compilation<'_> {
    /// Whether any diagnostic is an error.
    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses, checks and builds the graph of one file's source.
#[must_use]
pub fn compile(source: &str) -> Compilation<'_> {
    compile_parsed(syntax::parse(source))
}

/// Checks and builds the graph of a parsed file (for a caller that reads
/// the tree first, as the language server does for its outline).
#[must_use]
pub(crate) fn compile_parsed(parsed: syntax::Parsed<'_>) -> Compilation<'_> {
    let mut diagnostics = parsed.diagnostics;
    let checked = check::check(parsed.ast);
    diagnostics.extend(checked.diagnostics);
    let (graph, cycles) = PhaseGraph::build(&checked.pipeline);
    diagnostics.extend(cycles);
    diagnostics.sort_by_key(|d| (d.primary_span().map_or(0, Span::start), d.code));
    Compilation {
        pipeline: Some(checked.pipeline),
        graph: Some(graph),
        diagnostics,
        resolution: checked.resolution,
    }
}
