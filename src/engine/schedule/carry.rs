//! Instances carried over in a resumed run: recorded completed, without
//! running, once their dependencies are final; their dependents are
//! satisfied as by any completed instance.

use std::collections::BTreeSet;

use super::Run;
use crate::engine::event::{Event, Reason};
use crate::engine::summary::InstanceStatus;

/// What a resumed run carries over from the release it resumes: the
/// instances that completed there. Each is recorded completed
/// ([`Event::CarriedOver`]) once its dependencies are final, its command
/// does not run, and its dependents are satisfied. Empty for every other
/// run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CarryOver {
    /// The id of the release resumed.
    pub from: String,
    /// Positions in the plan of the instances carried over, ascending.
    pub instances: BTreeSet<usize>,
}

impl CarryOver {
    /// Whether the instance at `position` is carried over.
    #[must_use]
    pub fn carries(&self, position: usize) -> bool {
        self.instances.contains(&position)
    }
}

impl Run<'_> {
    /// Records the ready instance at `instance` carried over.
    pub(super) fn carry_over(&mut self, instance: usize) {
        self.ready.remove(&instance);
        let from = self.options.carry.from.clone();
        self.tracks[instance].reason = Some(Reason::CarriedOver(from.clone()));
        self.events.push(Event::CarriedOver { instance, from });
        self.finish(instance, InstanceStatus::Completed);
    }
}
