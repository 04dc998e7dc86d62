//! Undoing a failed release in the schedule: once every instance that is
//! not `finally` has ended, if the run failed (an instance failed; not an
//! interruption) and [`ExecuteOptions::undo_on_failure`] is set, each
//! completed instance with an `undo` command is undone, before the
//! `finally` instances are released.
//!
//! * **Order.** The undos are taken in reverse order of completion (the
//!   instance that completed last is undone first). The undo of `A` waits
//!   for the undo of every instance with an undo that depends on `A`,
//!   directly or through other instances (those all completed after `A`);
//!   two undos neither of which waits for the other are *independent*, and
//!   up to `jobs` of them run at once. With `jobs: 1` the order is exactly
//!   the reverse order of completion.
//! * **Failure.** An undo that fails (non-zero exit, timeout, cannot start)
//!   stops the undoing: no other undo starts, each undo not started is
//!   recorded not attempted ([`Reason::UndoFailed`] naming it), and the
//!   undos already running end as they do.
//! * **Interruption.** When the run is cancelled before or during the
//!   undoing, no undo starts: those not started are not attempted
//!   ([`Reason::Interrupted`]), and a running one is stopped like any
//!   command and ends `undo_failed` (interrupted).
//! * Each undo runs once (no retries), under the phase's `timeout`.
//!
//! [`ExecuteOptions::undo_on_failure`]: super::ExecuteOptions::undo_on_failure

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use super::super::event::{Event, Reason};
use super::super::output::log_name;
use super::super::summary::{UndoStatus, UndoSummary};
use super::{Done, Run, failure};

/// What the schedule knows of the undos.
#[derive(Debug, Default)]
pub(in crate::engine) struct Undos {
    /// The completed instances that have an `undo`, in the order they
    /// completed.
    pub(super) completed: Vec<usize>,
    /// The undoing, once begun (`None` before, and when there is nothing
    /// to undo).
    stage: Option<Stage>,
    /// The undoing is over (or was never needed).
    pub(super) over: bool,
    /// Undos recorded as started, to spawn once recorded.
    pub(in crate::engine) to_spawn: Vec<usize>,
    /// Per instance, how its undo ended (or that it was not attempted).
    pub(super) outcomes: BTreeMap<usize, UndoSummary>,
    /// The instances to undo, in reverse order of completion.
    pub(super) order: Vec<usize>,
}

/// The undoing, once begun. Undos are named by their rank in
/// [`Undos::order`].
#[derive(Debug)]
struct Stage {
    /// Per rank, how many undos that must come first have not ended.
    blockers: Vec<usize>,
    /// Per rank, the ranks that wait for its undo.
    waiters: Vec<Vec<usize>>,
    /// The ranks whose undo may start, lowest (latest completed) first.
    ready: BTreeSet<usize>,
    /// The ranks whose undo is not decided yet (neither started nor not
    /// attempted).
    undecided: BTreeSet<usize>,
    /// When each started undo started, by instance.
    started: BTreeMap<usize, Instant>,
    /// Undos that run.
    running: usize,
    /// Why no more undos start, once one failed or the run was cancelled.
    stopped: Option<Reason>,
}

impl Run<'_> {
    /// Whether the undoing is over, beginning it when it is due: `true`
    /// when there is nothing (more) to undo.
    pub(super) fn undone(&mut self) -> bool {
        if self.undos.over {
            return true;
        }
        if self.undos.stage.is_none() {
            let failed = self.first_failed.is_some() || self.interrupted;
            if !self.options.undo_on_failure || !failed || self.undos.completed.is_empty() {
                self.undos.over = true;
                return true;
            }
            self.begin_undo();
            if self.interrupted {
                self.stop_undos(&Reason::Interrupted);
            }
        }
        let stage = self.undos.stage.as_ref();
        if stage.is_some_and(|stage| stage.running == 0 && stage.undecided.is_empty()) {
            self.undos.over = true;
        }
        self.undos.over
    }

    /// Orders the undos: reverse order of completion, each after the undos
    /// of the instances that depend on it.
    fn begin_undo(&mut self) {
        let order: Vec<usize> = self.undos.completed.iter().rev().copied().collect();
        let mut rank = vec![usize::MAX; self.tracks.len()];
        for (position, &instance) in order.iter().enumerate() {
            rank[instance] = position;
        }
        let mut blockers = vec![0; order.len()];
        let mut waiters = vec![Vec::new(); order.len()];
        // One walk over the dependents of each instance to undo; `seen`
        // holds the rank of the walk that last reached an instance.
        let mut seen = vec![usize::MAX; self.tracks.len()];
        for (first, &instance) in order.iter().enumerate() {
            let mut stack = vec![instance];
            while let Some(at) = stack.pop() {
                for &dependent in &self.dependents[at] {
                    if seen[dependent] == first {
                        continue;
                    }
                    seen[dependent] = first;
                    stack.push(dependent);
                    if rank[dependent] != usize::MAX {
                        blockers[first] += 1;
                        waiters[rank[dependent]].push(first);
                    }
                }
            }
        }
        let ready = (0..order.len()).filter(|&r| blockers[r] == 0).collect();
        self.undos.stage = Some(Stage {
            blockers,
            waiters,
            ready,
            undecided: (0..order.len()).collect(),
            started: BTreeMap::new(),
            running: 0,
            stopped: None,
        });
        self.undos.order = order;
    }

    /// Starts the ready undos, latest completed first, while there are
    /// free slots.
    pub(super) fn start_undos(&mut self, now: Instant) {
        let Some(stage) = self.undos.stage.as_mut() else {
            return;
        };
        while stage.stopped.is_none() && self.running.len() < self.jobs {
            let Some(rank) = stage.ready.pop_first() else {
                break;
            };
            let instance = self.undos.order[rank];
            stage.undecided.remove(&rank);
            stage.running += 1;
            stage.started.insert(instance, now);
            self.running.insert(instance);
            self.events.push(Event::UndoStarted { instance });
            self.undos.to_spawn.push(instance);
        }
    }

    /// No more undos start, for `reason`: each one not started is not
    /// attempted.
    pub(super) fn stop_undos(&mut self, reason: &Reason) {
        let Some(stage) = self.undos.stage.as_mut() else {
            return;
        };
        if stage.stopped.is_some() {
            return;
        }
        stage.stopped = Some(reason.clone());
        stage.ready.clear();
        for rank in std::mem::take(&mut stage.undecided) {
            let instance = self.undos.order[rank];
            self.events.push(Event::UndoNotAttempted {
                instance,
                reason: reason.clone(),
            });
            self.undos.outcomes.insert(
                instance,
                UndoSummary {
                    status: UndoStatus::NotAttempted,
                    exit_code: None,
                    reason: Some(reason.clone()),
                    log: None,
                    tail: Vec::new(),
                    duration: None,
                },
            );
        }
    }

    /// An undo ended.
    pub(super) fn undo_ended(&mut self, done: Done) {
        let Done {
            instance,
            outcome,
            tail,
            log_ok,
            log_error,
            ..
        } = done;
        self.running.remove(&instance);
        let failed = failure(&outcome).or_else(|| log_error.map(|error| (Some(0), Reason::Log(error))));
        let interrupted = self.interrupted;
        let Some(stage) = self.undos.stage.as_mut() else {
            return;
        };
        stage.running -= 1;
        let duration = stage.started.get(&instance).map(Instant::elapsed);
        let log = undo_log(self.options.log_dir.as_ref(), &self.plan.instances[instance].id).filter(|_| log_ok);
        let summary = if let Some((exit_code, reason)) = failed {
            let reason = if interrupted { Reason::Interrupted } else { reason };
            self.events.push(Event::UndoFailed {
                instance,
                exit_code,
                reason: reason.clone(),
            });
            UndoSummary {
                status: UndoStatus::Failed,
                exit_code,
                reason: Some(reason),
                log,
                tail,
                duration,
            }
        } else {
            self.events.push(Event::Undone {
                instance,
                exit_code: Some(0),
            });
            let rank = self.undos.order.iter().position(|&i| i == instance).unwrap_or(0);
            for &waiter in &stage.waiters[rank] {
                stage.blockers[waiter] -= 1;
                if stage.blockers[waiter] == 0 {
                    stage.ready.insert(waiter);
                }
            }
            UndoSummary {
                status: UndoStatus::Undone,
                exit_code: Some(0),
                reason: None,
                log,
                tail: Vec::new(),
                duration,
            }
        };
        let failed = summary.status == UndoStatus::Failed;
        self.undos.outcomes.insert(instance, summary);
        if failed {
            let id = self.plan.instances[instance].id.to_string();
            self.stop_undos(&Reason::UndoFailed(id));
        }
        self.release_finally();
    }
}

/// The log file of an instance's undo: `<file>.undo.log` beside its own.
pub(in crate::engine) fn undo_log(dir: Option<&PathBuf>, id: &str) -> Option<PathBuf> {
    dir.map(|dir| dir.join(format!("{}.undo.log", log_name(id))))
}

#[cfg(test)]
mod tests;
