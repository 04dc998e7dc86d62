//! Cycles among envs' `extends` and services' `after` lists: each is
//! reported once and cut, so walking an env chain ends and the instance
//! graph never inherits a service cycle.

use super::Resolver;
use crate::check::pipeline::ServiceId;
use crate::syntax::{Code, Diagnostic};

impl Resolver<'_, '_> {
    /// Reports each inheritance cycle once, at its `extends` clauses, and
    /// cuts it so that walking an env chain always ends.
    pub(super) fn break_env_cycles(&mut self) {
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

    /// Reports each cycle among services' `after` lists once and cuts it,
    /// so the instance graph never inherits it (with no per-service phase
    /// there would be no instance to show it on).
    pub(super) fn break_service_cycles(&mut self) {
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
}
