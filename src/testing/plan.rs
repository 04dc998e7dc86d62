//! Plans written by hand, for tests and benchmarks that drive the executor
//! or the state layer without compiling a pipeline.

use crate::engine::{Plan, PlannedInstance};

/// An enabled instance that runs `true`, at version `1.2`, waiting for the
/// instances at the positions in `after`. Its phase and service come from
/// its id: `rollout[web]` is phase `rollout` for service `web`, `migrate`
/// a global phase. Change a field with struct update syntax:
/// `PlannedInstance { command: None, ..instance("gate", &[0]) }`.
#[must_use]
pub fn instance(id: &str, after: &[usize]) -> PlannedInstance {
    let (phase, service) = match id.split_once('[') {
        Some((phase, service)) => (phase, Some(service.trim_end_matches(']').into())),
        None => (id, None),
    };
    PlannedInstance {
        id: id.into(),
        phase: phase.into(),
        service,
        after: after.to_vec(),
        command: Some("true".to_owned()),
        enabled: true,
        unchanged: false,
        version: "1.2".into(),
        timeout_ms: None,
        retry: 0,
        backoff_ms: 0,
        on_failure: None,
        undo: None,
    }
}

/// A plan of `instances`, which must be in an order where each comes after
/// those it waits for.
#[must_use]
pub fn plan(pipeline: &str, env: &str, workflow: &str, version: &str, instances: Vec<PlannedInstance>) -> Plan {
    Plan {
        pipeline: pipeline.to_owned(),
        env: env.to_owned(),
        workflow: workflow.to_owned(),
        version: version.to_owned(),
        instances,
        secrets: Vec::new(),
    }
}
