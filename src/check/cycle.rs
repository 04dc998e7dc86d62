//! The one cycle finder, behind every cycle diagnostic: env inheritance,
//! service order and variable cycles here in `check`, and dependency cycles
//! between phase instances in [`crate::graph`].
//!
//! A graph is given as adjacency lists: `edges[n]` holds the edges leaving
//! node `n`, each a target and a label (the span that made the edge, say),
//! in the order the search follows them. Both walks are iterative, so a
//! chain of 200,000 nodes does not overflow the stack.

use std::collections::VecDeque;

/// Edges leaving each node: `(target, label)`.
pub(crate) type Edges<E> = [Vec<(usize, E)>];

/// A cycle: each node on it with the label of the edge it leaves by, the
/// first node being the one the edge of the last leads to.
pub(crate) type Cycle<E> = Vec<(usize, E)>;

/// One cycle per strongly connected component that has one, components in
/// the order of their smallest node: the shortest cycle through that node
/// (the first found, following edges in order, among equally short ones).
pub(crate) fn shortest_cycles<E: Clone>(edges: &Edges<E>) -> Vec<Cycle<E>> {
    located_cycles(edges).into_iter().map(|(cycle, _)| cycle).collect()
}

/// Finds cycles and cuts each one's closing edge (the one leaving its last
/// node), again until none is left: afterwards `edges` is acyclic. Returns
/// every cycle found, as it was before its edge was cut.
pub(crate) fn break_cycles<E: Clone>(edges: &mut [Vec<(usize, E)>]) -> Vec<Cycle<E>> {
    let mut found = Vec::new();
    loop {
        let cycles = located_cycles(edges);
        if cycles.is_empty() {
            return found;
        }
        // One cycle per component, so no two closing edges leave the same
        // node: each index is still right when its edge is cut.
        for (cycle, (node, index)) in cycles {
            edges[node].remove(index);
            found.push(cycle);
        }
    }
}

/// [`shortest_cycles`], each with its closing edge as `(node, index in
/// edges[node])`.
fn located_cycles<E: Clone>(edges: &Edges<E>) -> Vec<(Cycle<E>, (usize, usize))> {
    let (component, count) = components(edges);
    let mut seen = vec![false; count];
    let mut cycles = Vec::new();
    for start in 0..edges.len() {
        let id = component[start];
        if std::mem::replace(&mut seen[id], true) {
            continue;
        }
        if let Some(path) = shortest_path(edges, start, |node| component[node] == id) {
            let closing = path[path.len() - 1];
            let cycle = path
                .iter()
                .map(|&(node, index)| (node, edges[node][index].1.clone()))
                .collect();
            cycles.push((cycle, closing));
        }
    }
    cycles
}

/// Breadth-first search from `start` back to it: the edges of the cycle as
/// `(node, index in edges[node])`, from `start` on.
fn shortest_path<E>(edges: &Edges<E>, start: usize, inside: impl Fn(usize) -> bool) -> Option<Vec<(usize, usize)>> {
    // For each node reached: the node and edge it was reached by.
    let mut parent: super::HashMap<usize, (usize, usize)> = super::HashMap::default();
    let mut queue = VecDeque::from([start]);
    let mut closing = None;
    'search: while let Some(node) = queue.pop_front() {
        for (index, &(next, _)) in edges[node].iter().enumerate() {
            if !inside(next) {
                continue;
            }
            if next == start {
                closing = Some((node, index));
                break 'search;
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = parent.entry(next) {
                slot.insert((node, index));
                queue.push_back(next);
            }
        }
    }
    let (mut node, index) = closing?;
    let mut path = vec![(node, index)];
    while node != start {
        let step = parent[&node];
        path.push(step);
        node = step.0;
    }
    path.reverse();
    Some(path)
}

/// The strongly connected components (Tarjan's algorithm, without
/// recursion): each node's component id, and how many there are.
fn components<E>(edges: &Edges<E>) -> (Vec<usize>, usize) {
    const UNVISITED: usize = usize::MAX;
    let count = edges.len();
    let mut index = vec![UNVISITED; count];
    let mut low = vec![0; count];
    let mut on_stack = vec![false; count];
    let mut stack = Vec::new();
    let mut component = vec![UNVISITED; count];
    let mut components = 0;
    let mut next_index = 0;
    for root in 0..count {
        if index[root] != UNVISITED {
            continue;
        }
        // The search's own stack: a node and the next of its edges to follow.
        let mut calls: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (node, ref mut edge)) = calls.last_mut() {
            if let Some(&(next, _)) = edges[node].get(*edge) {
                *edge += 1;
                if index[next] == UNVISITED {
                    index[next] = next_index;
                    low[next] = next_index;
                    next_index += 1;
                    stack.push(next);
                    on_stack[next] = true;
                    calls.push((next, 0));
                } else if on_stack[next] {
                    low[node] = low[node].min(index[next]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(caller, _)) = calls.last() {
                low[caller] = low[caller].min(low[node]);
            }
            if low[node] == index[node] {
                while let Some(member) = stack.pop() {
                    on_stack[member] = false;
                    component[member] = components;
                    if member == node {
                        break;
                    }
                }
                components += 1;
            }
        }
    }
    (component, components)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(usize, usize)], count: usize) -> Vec<Vec<(usize, (usize, usize))>> {
        let mut adjacency = vec![Vec::new(); count];
        for &(from, to) in edges {
            adjacency[from].push((to, (from, to)));
        }
        adjacency
    }

    fn nodes(cycle: &Cycle<(usize, usize)>) -> Vec<usize> {
        cycle.iter().map(|&(node, _)| node).collect()
    }

    #[test]
    fn one_shortest_cycle_per_component() {
        // 0 → 1 → 2 → 0 and 1 → 0 (shorter); 3 → 3; 4 → 5 (no cycle).
        let edges = graph(&[(0, 1), (1, 2), (2, 0), (1, 0), (3, 3), (4, 5)], 6);
        let cycles = shortest_cycles(&edges);
        assert_eq!(cycles.iter().map(nodes).collect::<Vec<_>>(), [vec![0, 1], vec![3]]);
        assert_eq!(cycles[0], [(0, (0, 1)), (1, (1, 0))]);
    }

    #[test]
    fn the_cycle_starts_at_its_smallest_node() {
        // Entered from 0 at 2: still reported from 1.
        let edges = graph(&[(0, 2), (2, 1), (1, 2)], 3);
        assert_eq!(
            shortest_cycles(&edges).iter().map(nodes).collect::<Vec<_>>(),
            [vec![1, 2]]
        );
    }

    #[test]
    fn breaking_reports_every_cycle_and_leaves_none() {
        // Two cycles sharing node 1: 0 ⇄ 1 and 1 ⇄ 2.
        let mut edges = graph(&[(0, 1), (1, 0), (1, 2), (2, 1)], 3);
        let cycles = break_cycles(&mut edges);
        assert_eq!(cycles.iter().map(nodes).collect::<Vec<_>>(), [vec![0, 1], vec![1, 2]]);
        assert!(shortest_cycles(&edges).is_empty());
        assert_eq!(edges[0], [(1, (0, 1))]);
    }

    #[test]
    fn long_chains_do_not_recurse() {
        let n = 200_000;
        let mut pairs: Vec<(usize, usize)> = (0..n - 1).map(|i| (i, i + 1)).collect();
        pairs.push((n - 1, 0));
        let cycles = shortest_cycles(&graph(&pairs, n));
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].len(), n);
    }
}
