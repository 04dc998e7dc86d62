//! Cycles among envs' `extends` and services' `after` lists: each is
//! reported once and cut, so walking an env chain ends and the instance
//! graph never inherits a service cycle.

use super::Resolver;
use crate::check::cycle;
use crate::check::pipeline::ServiceId;
use crate::syntax::{Code, Diagnostic, Span};

impl Resolver<'_, '_> {
    /// Reports each inheritance cycle once, at its `extends` clauses, and
    /// cuts it so that walking an env chain always ends.
    pub(super) fn break_env_cycles(&mut self) {
        let mut edges: Vec<Vec<(usize, ())>> = self
            .pipeline
            .envs
            .values()
            .map(|env| env.parent.map(|p| (p, ())).into_iter().collect())
            .collect();
        let cycles = cycle::break_cycles(&mut edges);
        for cycle in cycles {
            let nodes: Vec<usize> = cycle.iter().map(|&(id, ())| id).collect();
            self.report_env_cycle(&nodes);
        }
        for (env, parent) in self.pipeline.envs.values_mut().zip(edges) {
            env.parent = parent.first().map(|&(p, ())| p);
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
        let mut edges: Vec<Vec<(ServiceId, Span)>> = self
            .pipeline
            .services
            .values()
            .map(|service| service.after.clone())
            .collect();
        for cycle in cycle::break_cycles(&mut edges) {
            self.report_service_cycle(&cycle);
        }
        for (service, after) in self.pipeline.services.values_mut().zip(edges) {
            service.after = after;
        }
    }

    /// `cycle`: each service with the `after` entry it waits by, as written.
    fn report_service_cycle(&mut self, cycle: &[(ServiceId, Span)]) {
        let services = &self.pipeline.services;
        let mut names: Vec<&str> = cycle.iter().map(|&(s, _)| services[s].name.name).collect();
        names.push(names[0]);
        let mut diagnostic = Diagnostic::error(
            Code::DependencyCycle,
            format!("service order cycle: `{}`", names.join("` → `")),
        );
        for (position, &(service, span)) in cycle.iter().enumerate() {
            let before = cycle[(position + 1) % cycle.len()].0;
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
