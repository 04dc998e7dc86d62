//! The run's state machine over the plan: which instance is ready,
//! started, ended or skipped, with retries, fail-fast and keep-going. No
//! threads and no processes: the executor hands it each attempt's end and
//! starts what it says (see the module docs of `execute` for the rules).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::event::{Event, Reason};
use super::output::{Grouped, log_name};
use super::plan::Plan;
use super::runner::{DEFAULT_GRACE, Outcome};
use super::secrets::Secrets;
use super::summary::InstanceStatus;
use super::sync::Claims;
pub use carry::CarryOver;

/// How to execute a plan.
#[derive(Clone, Debug)]
pub struct ExecuteOptions {
    /// Where commands run: the pipeline file's directory.
    pub dir: PathBuf,
    /// The release id (`STAGECRAFT_RELEASE`).
    pub release: String,
    /// How many commands may run at once; 0 is taken as 1.
    pub jobs: usize,
    /// Run everything that does not depend on a failure.
    pub keep_going: bool,
    /// Where to write one log file per instance (the CLI passes
    /// `<state>/logs/<release>`); `None` writes no logs.
    pub log_dir: Option<PathBuf>,
    /// Retry at once instead of waiting `backoff_ms` (tests).
    pub skip_backoff: bool,
    /// When the run is cancelled, how long running commands get between
    /// `SIGTERM` and `SIGKILL` (set on the [`Cancel`](super::Cancel)
    /// handle); [`DEFAULT_GRACE`] by default.
    pub grace: Duration,
    /// The run's secrets: their values are masked as `***` in everything
    /// kept of the commands' output (streamed, logged, in the summary).
    /// (The runner puts them in the commands' environment.)
    pub secrets: Secrets,
    /// When the run fails, undo its completed instances that have an
    /// `undo` (see `schedule/undo.rs`).
    pub undo_on_failure: bool,
    /// The instances carried over from the release this run resumes
    /// (`stagecraft resume`): recorded completed without running.
    pub carry: CarryOver,
}

impl Default for ExecuteOptions {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("."),
            release: String::new(),
            jobs: 1,
            keep_going: false,
            log_dir: None,
            skip_backoff: false,
            grace: DEFAULT_GRACE,
            secrets: Secrets::default(),
            undo_on_failure: false,
            carry: CarryOver::default(),
        }
    }
}

/// Where an instance is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// Some dependency is not final yet.
    Pending,
    /// Every dependency is satisfied; waiting for its turn.
    Ready,
    /// An attempt runs.
    Running,
    /// An attempt failed; the next starts at `due`.
    Backoff { attempt: u32, due: Instant },
    /// Final.
    Done(InstanceStatus),
}

/// What the executor knows of one instance.
pub(super) struct Track {
    pub(super) state: State,
    pub(super) attempts: u32,
    pub(super) exit_code: Option<i32>,
    pub(super) reason: Option<Reason>,
    pub(super) log: Option<PathBuf>,
    pub(super) log_ok: bool,
    pub(super) tail: Vec<String>,
    pub(super) started: Option<Instant>,
    pub(super) duration: Option<Duration>,
}

/// An attempt's end.
pub(super) struct Done {
    pub(super) instance: usize,
    pub(super) attempt: u32,
    pub(super) outcome: Outcome,
    /// Its output, when grouped (`jobs > 1`).
    pub(super) output: Grouped,
    pub(super) tail: Vec<String>,
    pub(super) log_ok: bool,
    /// Why its log is incomplete, if it is.
    pub(super) log_error: Option<String>,
    /// It is the instance's undo, not an attempt.
    pub(super) undo: bool,
}

/// The executor's state, owned by the thread that called [`execute`].
pub(super) struct Run<'p> {
    pub(super) plan: &'p Plan,
    pub(super) options: &'p ExecuteOptions,
    pub(super) jobs: usize,
    pub(super) tracks: Vec<Track>,
    /// Per instance, how many dependencies are not final.
    pub(super) waiting: Vec<usize>,
    /// Per instance, the positions of the instances that depend on it.
    pub(super) dependents: Vec<Vec<usize>>,
    pub(super) ready: BTreeSet<usize>,
    /// Instances waiting for their next attempt.
    pub(super) backoff: Vec<usize>,
    /// Running or backing off: the slots in use.
    pub(super) running: BTreeSet<usize>,
    /// The events of the current step.
    pub(super) events: Vec<Event>,
    /// The instances claimed ahead.
    pub(super) claims: Claims,
    /// Attempts recorded as started, to spawn once recorded.
    pub(super) to_spawn: Vec<(usize, u32)>,
    pub(super) first_failed: Option<usize>,
    /// Fail-fast stopped the run.
    pub(super) stopping: bool,
    pub(super) interrupted: bool,
    /// Recording failed: nothing starts any more, not even `finally`.
    pub(super) unrecorded: bool,
    /// How many instances of phases that are not `finally` are not final.
    pub(super) main_left: usize,
    /// `finally` instances whose dependencies are final, held until the
    /// others have all ended.
    pub(super) held: Vec<usize>,
    /// Once every other instance has ended, whether the release failed
    /// (`{{outcome}}`): the `finally` instances are released then.
    pub(super) released: Option<bool>,
    /// The undos of a failed run.
    pub(super) undos: Undos,
}

impl<'p> Run<'p> {
    pub(super) fn new(plan: &'p Plan, options: &'p ExecuteOptions) -> Self {
        let count = plan.instances.len();
        let mut dependents = vec![Vec::new(); count];
        let mut waiting = Vec::with_capacity(count);
        let mut tracks = Vec::with_capacity(count);
        for (position, instance) in plan.instances.iter().enumerate() {
            for &dependency in &instance.after {
                dependents[dependency].push(position);
            }
            waiting.push(instance.after.len());
            let log = match (&options.log_dir, &instance.command) {
                (Some(dir), Some(_)) => Some(dir.join(format!("{}.log", log_name(&instance.id)))),
                _ => None,
            };
            tracks.push(Track {
                state: State::Pending,
                attempts: 0,
                exit_code: None,
                reason: None,
                log,
                log_ok: false,
                tail: Vec::new(),
                started: None,
                duration: None,
            });
        }
        let finally = |position: usize| plan.instances[position].is_finally();
        let (held, ready): (Vec<usize>, Vec<usize>) = (0..count)
            .filter(|&position| waiting[position] == 0)
            .partition(|&p| finally(p));
        let ready = ready.into_iter().collect::<BTreeSet<_>>();
        let main_left = (0..count).filter(|&position| !finally(position)).count();
        for &position in &ready {
            tracks[position].state = State::Ready;
        }
        let jobs = options.jobs.max(1);
        let mut run = Self {
            plan,
            options,
            jobs,
            tracks,
            waiting,
            dependents,
            ready,
            backoff: Vec::new(),
            running: BTreeSet::new(),
            events: Vec::new(),
            claims: Claims::new(jobs),
            to_spawn: Vec::new(),
            first_failed: None,
            stopping: false,
            interrupted: false,
            unrecorded: false,
            main_left,
            held,
            released: None,
            undos: Undos::default(),
        };
        run.release_finally();
        run
    }

    /// When the next retry is due, if one waits.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.backoff
            .iter()
            .filter_map(|&position| match self.tracks[position].state {
                State::Backoff { due, .. } => Some(due),
                _ => None,
            })
            .min()
    }

    /// An attempt ended.
    pub(super) fn ended(&mut self, done: Done) {
        if done.undo {
            return self.undo_ended(done);
        }
        let Done {
            instance,
            attempt,
            outcome,
            tail,
            log_ok,
            log_error,
            ..
        } = done;
        let plan = self.plan;
        let track = &mut self.tracks[instance];
        track.log_ok |= log_ok;
        // A command that succeeded but whose log was cut fails: the log
        // would say less than it did.
        let failed = failure(&outcome).or_else(|| log_error.map(|error| (Some(0), Reason::Log(error))));
        let Some((exit_code, reason)) = failed else {
            track.exit_code = Some(0);
            self.events.push(Event::Completed {
                instance,
                exit_code: Some(0),
            });
            self.running.remove(&instance);
            self.finish(instance, InstanceStatus::Completed);
            return;
        };
        let planned = &plan.instances[instance];
        // A `finally` command runs after the interruption: its own reason.
        let reason = if self.interrupted && !planned.is_finally() {
            Reason::Interrupted
        } else {
            reason
        };
        track.exit_code = exit_code;
        if !matches!(reason, Reason::Interrupted | Reason::Log(_)) && attempt <= planned.retry {
            self.events.push(Event::AttemptFailed {
                instance,
                attempt,
                exit_code,
                reason,
            });
            if self.options.skip_backoff || planned.backoff_ms == 0 {
                self.start(instance, attempt + 1);
            } else {
                let due = Instant::now() + Duration::from_millis(planned.backoff_ms);
                track.state = State::Backoff {
                    attempt: attempt + 1,
                    due,
                };
                self.backoff.push(instance);
            }
            return;
        }
        track.tail = tail;
        track.reason = Some(reason.clone());
        self.events.push(Event::Failed {
            instance,
            exit_code,
            reason,
        });
        self.running.remove(&instance);
        self.failed(instance);
    }

    /// `instance` is now failed: fail-fast, or decide its dependents.
    fn failed(&mut self, instance: usize) {
        if self.plan.instances[instance].is_finally() {
            // Reported, but it changes neither the outcome nor the run.
            self.finish(instance, InstanceStatus::Failed);
            return;
        }
        if !self.interrupted && self.first_failed.is_none() {
            self.first_failed = Some(instance);
        }
        if !self.options.keep_going && !self.stopping && !self.interrupted {
            self.stopping = true;
            self.halt(&Reason::Failed(self.plan.instances[instance].id.to_string()));
        }
        self.finish(instance, InstanceStatus::Failed);
    }

    /// Stops the run: every instance not started is skipped for `reason`,
    /// in plan order; on an interruption, every instance waiting for a
    /// retry fails.
    fn halt(&mut self, reason: &Reason) {
        let mut ended = Vec::new();
        for instance in 0..self.tracks.len() {
            match self.tracks[instance].state {
                State::Pending | State::Ready if self.plan.instances[instance].is_finally() && !self.unrecorded => {}
                State::Pending | State::Ready => {
                    self.tracks[instance].reason = Some(reason.clone());
                    self.tracks[instance].state = State::Done(InstanceStatus::Skipped);
                    self.claims.remove(instance);
                    self.events.push(Event::Skipped {
                        instance,
                        reason: reason.clone(),
                    });
                    ended.push(instance);
                }
                State::Backoff { .. } if self.interrupted => {
                    let track = &mut self.tracks[instance];
                    track.reason = Some(Reason::Interrupted);
                    track.exit_code = None;
                    self.events.push(Event::Failed {
                        instance,
                        exit_code: None,
                        reason: Reason::Interrupted,
                    });
                    self.running.remove(&instance);
                    ended.push(instance);
                }
                _ => {}
            }
        }
        let (plan, unrecorded) = (self.plan, self.unrecorded);
        self.ready
            .retain(|&instance| plan.instances[instance].is_finally() && !unrecorded);
        self.backoff
            .retain(|&instance| matches!(self.tracks[instance].state, State::Backoff { .. }));
        for instance in ended {
            let status = match self.tracks[instance].state {
                State::Done(status) => status,
                _ => InstanceStatus::Failed,
            };
            self.finish(instance, status);
        }
    }

    /// The run was cancelled.
    pub(super) fn interrupt(&mut self) {
        self.interrupted = true;
        self.halt(&Reason::Interrupted);
        self.stop_undos(&Reason::Interrupted);
    }

    /// Recording failed: the run is interrupted, and nothing starts any
    /// more, neither a `finally` instance nor an undo (no start could be
    /// recorded first); what runs is let finish.
    pub(super) fn stop_recording(&mut self) {
        self.unrecorded = true;
        self.held.clear();
        self.interrupt();
    }

    /// `instance` reached its final status: its dependents may be decided,
    /// and those skipped for a failure upstream in turn (without recursion:
    /// a long chain must not exhaust the stack).
    fn finish(&mut self, instance: usize, status: InstanceStatus) {
        let track = &mut self.tracks[instance];
        track.state = State::Done(status);
        track.duration = track.started.map(|started| started.elapsed());
        if status == InstanceStatus::Completed && self.plan.instances[instance].undo.is_some() {
            self.undos.completed.push(instance);
        }
        let mut ended = vec![instance];
        while let Some(done) = ended.pop() {
            if !self.plan.instances[done].is_finally() {
                self.main_left -= 1;
            }
            for position in 0..self.dependents[done].len() {
                let dependent = self.dependents[done][position];
                self.waiting[dependent] -= 1;
                if self.waiting[dependent] > 0 || self.tracks[dependent].state != State::Pending {
                    continue;
                }
                if let Some(id) = self.upstream_failure(dependent) {
                    let reason = Reason::Failed(id);
                    let track = &mut self.tracks[dependent];
                    track.reason = Some(reason.clone());
                    track.state = State::Done(InstanceStatus::Skipped);
                    self.claims.remove(dependent);
                    self.events.push(Event::Skipped {
                        instance: dependent,
                        reason,
                    });
                    ended.push(dependent);
                } else if self.plan.instances[dependent].is_finally() && self.released.is_none() {
                    self.held.push(dependent);
                } else {
                    self.tracks[dependent].state = State::Ready;
                    self.ready.insert(dependent);
                }
            }
        }
        self.release_finally();
    }

    /// For an instance whose dependencies are all final, the failed
    /// instance that keeps it from running: its first failed dependency, else
    /// the one named by its first dependency skipped for a failure.
    fn upstream_failure(&self, instance: usize) -> Option<String> {
        let after = &self.plan.instances[instance].after;
        let failed = after
            .iter()
            .find(|&&dependency| self.tracks[dependency].state == State::Done(InstanceStatus::Failed));
        if let Some(&dependency) = failed {
            return Some(self.plan.instances[dependency].id.to_string());
        }
        after.iter().find_map(
            |&dependency| match (&self.tracks[dependency].state, &self.tracks[dependency].reason) {
                (State::Done(InstanceStatus::Skipped), Some(Reason::Failed(id))) => Some(id.clone()),
                _ => None,
            },
        )
    }

    /// Starts the retries that are due.
    pub(super) fn start_due(&mut self, now: Instant) {
        if self.backoff.is_empty() {
            return;
        }
        let mut due: Vec<(usize, u32)> = self
            .backoff
            .iter()
            .filter_map(|&instance| match self.tracks[instance].state {
                State::Backoff { attempt, due } if due <= now => Some((instance, attempt)),
                _ => None,
            })
            .collect();
        due.sort_unstable();
        self.backoff
            .retain(|&instance| !due.iter().any(|&(position, _)| position == instance));
        for (instance, attempt) in due {
            self.start(instance, attempt);
        }
    }

    /// Starts ready instances in plan order while there are free slots.
    pub(super) fn start_ready(&mut self, now: Instant) {
        self.start_undos(now);
        // Once released, only `finally` instances are ready.
        if (self.stopping || self.interrupted) && self.released.is_none() {
            return;
        }
        let failed = self.failed_outcome();
        while let Some(&instance) = self.ready.first() {
            let planned = &self.plan.instances[instance];
            if self.options.carry.carries(instance) {
                self.carry_over(instance);
            } else if let Some(reason) = planned.skip_on(failed) {
                self.ready.remove(&instance);
                self.tracks[instance].reason = Some(reason.clone());
                self.events.push(Event::Skipped { instance, reason });
                self.finish(instance, InstanceStatus::Skipped);
            } else if planned.command_on(failed).is_none() {
                self.ready.remove(&instance);
                let track = &mut self.tracks[instance];
                track.attempts = 1;
                track.started = Some(now);
                self.events.push(Event::Started { instance, attempt: 1 });
                self.events.push(Event::Completed {
                    instance,
                    exit_code: None,
                });
                self.finish(instance, InstanceStatus::Completed);
            } else if self.running.len() < self.jobs {
                self.ready.remove(&instance);
                self.running.insert(instance);
                self.claims.started(now);
                self.tracks[instance].started = Some(now);
                self.start(instance, 1);
            } else {
                break;
            }
        }
    }

    /// Claims the instances expected to start soon (see `sync`, and the
    /// module docs of `execute`, *Claims*). Only instances that run a
    /// command are claimed.
    pub(super) fn claim_next(&mut self, now: Instant) {
        if self.stopping || self.interrupted {
            return;
        }
        let expected = self.expected_next();
        let (plan, tracks, failed) = (self.plan, &self.tracks, self.failed_outcome());
        let carry = &self.options.carry;
        let claimable = |instance: usize| {
            !carry.carries(instance)
                && runs_command(plan, instance, failed)
                && matches!(tracks[instance].state, State::Pending | State::Ready)
        };
        for instance in self.claims.claim(expected, tracks.len(), claimable, now) {
            self.events.push(Event::Claimed { instance });
        }
    }

    /// The instances expected to start next, in plan order: the first
    /// `jobs` of those ready now that run a command, and those that would be
    /// ready if every running attempt succeeded.
    fn expected_next(&self) -> BTreeSet<usize> {
        let mut next: BTreeSet<usize> = self
            .ready
            .iter()
            .copied()
            .filter(|&instance| {
                !self.options.carry.carries(instance) && runs_command(self.plan, instance, self.failed_outcome())
            })
            .take(self.jobs)
            .collect();
        for &running in &self.running {
            for &dependent in &self.dependents[running] {
                let unfinished = self.plan.instances[dependent]
                    .after
                    .iter()
                    .filter(|&&dependency| self.running.contains(&dependency))
                    .count();
                if self.tracks[dependent].state == State::Pending
                    && unfinished == self.waiting[dependent]
                    && !self.options.carry.carries(dependent)
                    && runs_command(self.plan, dependent, self.failed_outcome())
                {
                    next.insert(dependent);
                }
            }
        }
        next
    }

    /// Records the start of an attempt, to be spawned once recorded.
    fn start(&mut self, instance: usize, attempt: u32) {
        self.claims.remove(instance);
        self.record_failure_command(instance, attempt);
        let track = &mut self.tracks[instance];
        track.state = State::Running;
        track.attempts = attempt;
        self.events.push(Event::Started { instance, attempt });
        self.to_spawn.push((instance, attempt));
    }
}

/// Whether the instance at `instance` runs a command (it is not skipped
/// and not a marker).
fn runs_command(plan: &Plan, instance: usize, failed: bool) -> bool {
    let planned = &plan.instances[instance];
    planned.skip_on(failed).is_none() && planned.command_on(failed).is_some()
}

/// `None` for a success, else the exit code and reason of a failure.
pub(super) fn failure(outcome: &Outcome) -> Option<(Option<i32>, Reason)> {
    match outcome {
        Outcome::Exited(0) => None,
        Outcome::Exited(code) => Some((Some(*code), Reason::ExitCode)),
        Outcome::Signalled(signal) => Some((Some(128 + signal), Reason::ExitCode)),
        Outcome::TimedOut => Some((None, Reason::Timeout)),
        Outcome::Interrupted => Some((None, Reason::Interrupted)),
        Outcome::SpawnFailed(message) => Some((None, Reason::Spawn(message.clone()))),
    }
}

impl Done {
    /// An attempt not started because the run was cancelled.
    pub(super) fn interrupted(instance: usize, attempt: u32) -> Self {
        Self {
            instance,
            attempt,
            outcome: Outcome::Interrupted,
            output: Grouped::default(),
            tail: Vec::new(),
            log_ok: false,
            log_error: None,
            undo: false,
        }
    }
}

mod carry;
mod finally;
mod summary;
mod undo;
pub(super) use undo::{Undos, undo_log};
#[cfg(test)]
mod tests;
