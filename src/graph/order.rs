//! Cycles and execution order.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet, VecDeque};

use petgraph::Direction;
use petgraph::algo::{kosaraju_scc, toposort};
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;

use super::PhaseGraph;
use crate::check::{Pipeline, ServiceId};
use crate::syntax::{Code, Diagnostic, Span};

/// Reports every dependency cycle once, with the whole cycle: each edge is
/// labelled at the `after` that made it. Cycles that differ only by service
/// (the same `after` clauses) are one diagnostic.
pub(super) fn cycles(graph: &PhaseGraph, pipeline: &Pipeline) -> Vec<Diagnostic> {
    let mut seen: HashSet<Vec<Span>> = HashSet::new();
    let mut diagnostics = Vec::new();
    // Both walks are iterative: a chain of 200,000 phases must not
    // overflow the stack (petgraph's `tarjan_scc` recurses).
    if toposort(&graph.graph, None).is_ok() {
        return diagnostics;
    }
    let mut components = kosaraju_scc(&graph.graph);
    components.retain(|c| c.len() > 1);
    for component in &mut components {
        component.sort_unstable();
    }
    components.sort_unstable();
    for component in components {
        let members: HashSet<NodeIndex> = component.iter().copied().collect();
        let path = shortest_cycle(graph, component[0], &members);
        let mut key: Vec<Span> = path.iter().map(|&(_, _, span)| span).collect();
        key.sort_unstable();
        key.dedup();
        if !seen.insert(key) {
            continue;
        }
        // Shown as "waits for" arrows, starting at the dependent.
        let path: Vec<_> = path.into_iter().rev().collect();
        let mut names: Vec<String> = path.iter().map(|&(_, to, _)| graph.instance_id(pipeline, to)).collect();
        names.push(names[0].clone());
        let mut diagnostic = Diagnostic::error(
            Code::DependencyCycle,
            format!("dependency cycle: `{}`", names.join("` → `")),
        );
        for &(from, to, span) in &path {
            diagnostic = diagnostic.label(
                span,
                format!(
                    "`{}` waits for `{}` here",
                    graph.instance_id(pipeline, to),
                    graph.instance_id(pipeline, from)
                ),
            );
        }
        diagnostics.push(
            diagnostic
                .help("each arrow reads \"waits for\"; remove one of these `after` dependencies to break the cycle"),
        );
    }
    diagnostics
}

/// The shortest cycle through `start` inside its component, as edges
/// `(from, to, span)` in dependency order.
fn shortest_cycle(
    graph: &PhaseGraph,
    start: NodeIndex,
    members: &HashSet<NodeIndex>,
) -> Vec<(NodeIndex, NodeIndex, Span)> {
    let mut parent: std::collections::HashMap<NodeIndex, (NodeIndex, Span)> = std::collections::HashMap::new();
    let mut queue = VecDeque::from([start]);
    let mut closing = None;
    'search: while let Some(node) = queue.pop_front() {
        let mut edges: Vec<_> = graph.graph.edges_directed(node, Direction::Outgoing).collect();
        edges.sort_by_key(EdgeRef::target);
        for edge in edges {
            let next = edge.target();
            if !members.contains(&next) {
                continue;
            }
            if next == start {
                closing = Some((node, edge.weight().span));
                break 'search;
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = parent.entry(next) {
                slot.insert((node, edge.weight().span));
                queue.push_back(next);
            }
        }
    }
    let Some((last, span)) = closing else { return Vec::new() };
    let mut path = vec![(last, start, span)];
    let mut node = last;
    while node != start {
        let (previous, span) = parent[&node];
        path.push((previous, node, span));
        node = previous;
    }
    path.reverse();
    path
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
        while let Some(Reverse(index)) = ready.pop() {
            let node = NodeIndex::new(index);
            position[index] = selection.order.len();
            let mut after: Vec<usize> = self
                .graph
                .neighbors_directed(node, Direction::Incoming)
                .filter(|n| keep[n.index()])
                .map(|n| position[n.index()])
                .collect();
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
