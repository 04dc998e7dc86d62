//! `finally` instances in the schedule: held back until every other
//! instance of the run has ended (completed, failed or skipped, also after
//! fail-fast, a timeout or an interruption) and the undos of a failed run
//! are over (see `undo`), then released with the run's
//! outcome, which decides their condition and command (`{{outcome}}`).

use super::{Run, State};
use crate::engine::Event;

impl Run<'_> {
    /// Releases the held `finally` instances once no other instance is
    /// left and the undoing is over, deciding the outcome then.
    pub(super) fn release_finally(&mut self) {
        if self.main_left > 0 || self.released.is_some() || self.unrecorded || !self.undone() {
            return;
        }
        self.released = Some(self.first_failed.is_some() || self.interrupted);
        for instance in std::mem::take(&mut self.held) {
            self.tracks[instance].state = State::Ready;
            self.ready.insert(instance);
        }
    }

    /// Before the first attempt of a `finally` instance that runs for a
    /// failure: records the command it runs when it is not its success's,
    /// which the release's header holds ([`Event::FailureCommand`]).
    pub(super) fn record_failure_command(&mut self, instance: usize, attempt: u32) {
        let planned = &self.plan.instances[instance];
        if let Some(command) = planned.command_on(true)
            && attempt == 1
            && self.failed_outcome()
            && planned.is_finally()
            && planned.command.as_deref() != Some(command)
        {
            self.events.push(Event::FailureCommand {
                instance,
                command: command.to_owned(),
            });
        }
    }

    /// Whether the other instances failed (or were interrupted), once
    /// known; `false` before.
    pub(in crate::engine) fn failed_outcome(&self) -> bool {
        self.released.unwrap_or(false)
    }

    /// The outcome the `finally` instances see: `success` or `failure`;
    /// `None` before they are released.
    pub(in crate::engine) fn outcome(&self) -> Option<&'static str> {
        self.released.map(|failed| if failed { "failure" } else { "success" })
    }
}
