//! Cycles and execution order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use petgraph::Direction;
use petgraph::algo::toposort;
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;

use super::PhaseGraph;
use crate::check::{Pipeline, ServiceId, cycle};
use crate::syntax::{Code, Diagnostic, Span};

/// Reports every dependency cycle once, with the whole cycle: each edge is
/// labelled at the `after` that made it. Cycles that differ only by service
/// (the same `after` clauses) are one diagnostic. Each set of instances
/// that wait for each other shows its shortest cycle through its first
/// instance (see [`cycle::shortest_cycles`]).
pub(super) fn cycles(graph: &PhaseGraph, pipeline: &Pipeline) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    if toposort(&graph.graph, None).is_ok() {
        return diagnostics;
    }
    // Edges dependency → dependent, each node's in target order.
    let edges: Vec<Vec<(usize, Span)>> = graph
        .graph
        .node_indices()
        .map(|node| {
            let mut edges: Vec<_> = graph
                .graph
                .edges_directed(node, Direction::Outgoing)
                .map(|edge| (edge.target().index(), edge.weight().span))
                .collect();
            edges.sort_by_key(|&(target, _)| target);
            edges
        })
        .collect();
    let mut seen: crate::check::HashSet<Vec<Span>> = crate::check::HashSet::default();
    for path in cycle::shortest_cycles(&edges) {
        let mut key: Vec<Span> = path.iter().map(|&(_, span)| span).collect();
        key.sort_unstable();
        key.dedup();
        if !seen.insert(key) {
            continue;
        }
        diagnostics.push(report(graph, pipeline, &path));
    }
    diagnostics
}

/// A cycle of edges `(dependency, span)` in dependency order, shown as
/// "waits for" arrows starting at its first instance.
fn report(graph: &PhaseGraph, pipeline: &Pipeline, path: &[(usize, Span)]) -> Diagnostic {
    let id = |node: usize| graph.instance_id(pipeline, NodeIndex::new(node));
    // Each edge as (dependency, dependent, span), last edge first.
    let waits: Vec<(usize, usize, Span)> = (0..path.len())
        .rev()
        .map(|position| (path[position].0, path[(position + 1) % path.len()].0, path[position].1))
        .collect();
    let mut names: Vec<String> = waits.iter().map(|&(_, to, _)| id(to)).collect();
    names.push(names[0].clone());
    let mut diagnostic = Diagnostic::error(
        Code::DependencyCycle,
        format!("dependency cycle: `{}`", names.join("` → `")),
    );
    for &(from, to, span) in &waits {
        diagnostic = diagnostic.label(span, format!("`{}` waits for `{}` here", id(to), id(from)));
    }
    diagnostic.help("each arrow reads \"waits for\"; remove one of these `after` dependencies to break the cycle")
}

/// A workflow's instances in execution order, with their dependencies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Nodes in execution order.
    pub order: Vec<NodeIndex>,
    /// For each position in `order`, the positions of its dependencies
    /// (all earlier), ascending.
    pub after: Vec<Vec<usize>>,
}

impl PhaseGraph {
    /// The instances of `phases` (all phases when `None`), keeping only the
    /// given services' instances and every global one, in a topological
    /// order whose ties go to the earlier node (declaration order, then
    /// service order). Edges to instances left out are dropped.
    ///
    /// The graph must be acyclic (no `dependency-cycle` diagnostic); nodes
    /// on a cycle would be left out.
    #[must_use]
    pub fn select(&self, pipeline: &Pipeline, phases: Option<&[usize]>, services: Option<&[ServiceId]>) -> Selection {
        let count = self.graph.node_count();
        let mut keep = vec![phases.is_none(); count];
        if let Some(phases) = phases {
            for &phase in phases {
                for node in self.instances(pipeline, phase) {
                    keep[node.index()] = true;
                }
            }
        }
        if let Some(services) = services {
            for (index, kept) in keep.iter_mut().enumerate() {
                if let Some(service) = self.graph[NodeIndex::new(index)].service {
                    *kept &= services.contains(&service);
                }
            }
        }
        let mut waiting = vec![0usize; count];
        for edge in self.graph.raw_edges() {
            if keep[edge.source().index()] && keep[edge.target().index()] {
                waiting[edge.target().index()] += 1;
            }
        }
        let mut ready: BinaryHeap<Reverse<usize>> = (0..count)
            .filter(|&n| keep[n] && waiting[n] == 0)
            .map(Reverse)
            .collect();
        let mut position = vec![usize::MAX; count];
        let mut selection = Selection::default();
        selection.order.reserve(count);
        selection.after.reserve(count);
        while let Some(Reverse(index)) = ready.pop() {
            let node = NodeIndex::new(index);
            position[index] = selection.order.len();
            // Exactly as long as needed (a plan keeps every list to the
            // end; `collect` from a filter would start at four).
            let kept = |n: &NodeIndex| keep[n.index()];
            let incoming = || self.graph.neighbors_directed(node, Direction::Incoming).filter(kept);
            let mut after: Vec<usize> = Vec::with_capacity(incoming().count());
            after.extend(incoming().map(|n| position[n.index()]));
            after.sort_unstable();
            after.dedup();
            selection.order.push(node);
            selection.after.push(after);
            for next in self.graph.neighbors_directed(node, Direction::Outgoing) {
                let next = next.index();
                if keep[next] {
                    waiting[next] -= 1;
                    if waiting[next] == 0 {
                        ready.push(Reverse(next));
                    }
                }
            }
        }
        selection
    }
}
