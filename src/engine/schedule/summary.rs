//! The summary of a run, from the schedule's state at its end.

use std::time::Duration;

use super::Run;
use super::State;
use crate::engine::summary::{InstanceStatus, InstanceSummary, Summary};

impl Run<'_> {
    pub(in crate::engine) fn summary(mut self, duration: Duration) -> Summary {
        let mut undos = std::mem::take(&mut self.undos.outcomes);
        let instances = self
            .tracks
            .into_iter()
            .zip(&self.plan.instances)
            .enumerate()
            .map(|(position, (track, planned))| {
                let status = match track.state {
                    State::Done(status) => status,
                    // Unreachable: the run ends when nothing is active, and
                    // then every instance is final.
                    _ => InstanceStatus::Skipped,
                };
                InstanceSummary {
                    id: planned.id.to_string(),
                    status,
                    attempts: track.attempts,
                    exit_code: track.exit_code,
                    reason: track.reason,
                    log: track.log.filter(|_| track.log_ok),
                    tail: track.tail,
                    duration: track.duration,
                    finally: planned.is_finally(),
                    undo: undos.remove(&position),
                }
            })
            .collect();
        Summary {
            instances,
            first_failed: self.first_failed,
            interrupted: self.interrupted,
            undo_order: self.undos.order,
            duration,
        }
    }
}
