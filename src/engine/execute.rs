//! Execution of a plan: [`execute`] walks a [`Plan`], runs each instance's
//! command through a [`Runner`], reports every change to a [`Recorder`] and
//! every line of output to an [`OutputSink`], and returns a [`Summary`].
//!
//! # Rules
//!
//! * **Order.** Instances start in plan order. An instance is *ready* when
//!   every instance in its `after` list is `completed` or `skipped` with
//!   reason `condition`. Among ready instances the one earliest in the plan
//!   goes first; with `jobs: 1` this is exactly the plan's order. Up to
//!   `jobs` commands run at once; the instances are started in plan order,
//!   and a ready instance never overtakes an earlier ready one, even a
//!   marker or a disabled one.
//! * **One thread.** The executor starts attempts through
//!   [`Runner::start`] and watches all of them from the calling thread,
//!   waiting until one of their descriptors is readable or a deadline
//!   passes (as ninja does), then polling every one. Attempts that end at
//!   the same wake-up are handled in plan order.
//! * **Conditions.** A ready instance whose `when` is false (`enabled ==
//!   false`) is `skipped` (reason `condition`) without running, and counts
//!   as satisfied for its dependents. An instance downstream of a failure
//!   is skipped for the failure even if its condition is false.
//! * **Markers.** A ready instance with no command is `Started` and
//!   `Completed` (exit code `None`) in the same step, without a runner.
//! * **Durability.** Events are handed to [`Recorder::record`] one *step*
//!   at a time. A step is everything that happens between two waits: the
//!   attempts that ended (all that ended while waiting, with their
//!   consequences: completions, failures, skips) and the attempts that start
//!   because of them. A recorder without a [`Syncer`] makes each step
//!   durable before `record` returns, and a command starts only after that.
//!   With a syncer (the state journal), `record` only writes, and a thread
//!   of the executor's syncs: one sync makes every step written before it
//!   durable.
//! * **Claims.** With a syncer, a command starts only once a durable record
//!   says it may: its [`Event::Claimed`], or else its `Started`. The
//!   executor claims ahead, in each step: the first `jobs` instances, in
//!   plan order, of those ready and those that would be ready if every
//!   running attempt succeeded (the ones expected to start next); then the
//!   next instances in plan order, until `jobs` plus as many as started in
//!   the last [`CLAIM_WINDOW`] (5 ms) wait to be used, at most
//!   [`CLAIM_AHEAD`] (8) × `jobs`. So commands that take milliseconds share
//!   syncs, and longer ones claim little more than the next. Only enabled
//!   instances with a command are claimed. The executor asks for a sync,
//!   after starting the step's commands, at once when one of the claims
//!   expected next or of the first `jobs` claims in plan order is not
//!   covered by a sync already asked for, and otherwise within
//!   [`SYNC_DELAY`]; when a command must start and its claim is not
//!   durable yet, it waits for the sync. So the sync runs while commands
//!   run, and a command that ends is usually followed at once by the next.
//!   A claim changes no status: a claimed instance that does not start
//!   (fail-fast, Ctrl-C) is skipped like any pending one. `execute` returns
//!   only once every step is durable.
//! * **Retries.** An attempt that fails (non-zero exit, killed by a signal,
//!   timeout, cannot start) is retried while attempts remain (`retry N`
//!   allows N + 1 attempts): `AttemptFailed` is recorded, then after
//!   `backoff_ms` (skipped with [`ExecuteOptions::skip_backoff`]) `Started`
//!   with the next attempt. The last failed attempt records `Failed`. An
//!   instance waiting for its next attempt keeps its `jobs` slot. An
//!   attempt that was interrupted is never retried.
//! * **Exit codes.** A command killed by a signal it did not get from
//!   stagecraft is reported with the shell's code, 128 + the signal, and
//!   reason `exit-code`. A timeout has no exit code and reason `timeout`; a
//!   command that could not start, reason `spawn`.
//! * **Fail-fast** (the default). When an instance fails, no new instance
//!   starts, and in the same step every instance not yet started becomes
//!   `skipped` with reason `Failed(<id of that instance>)`. With `jobs >
//!   1`, instances already running are **not** killed: they finish, with
//!   their retries, and are recorded as they end (so with `jobs > 1` a
//!   failed run may complete instances that `jobs: 1` would have skipped).
//!   The first instance to fail is [`Summary::first_failed`].
//! * **Keep going.** With [`ExecuteOptions::keep_going`], everything that
//!   does not depend on a failure still runs. An instance is decided once
//!   all of its dependencies are: if one of them failed, it is skipped with
//!   reason `Failed(<id>)` naming its first failed direct dependency (in
//!   `after` order), else the failed instance named by its first
//!   dependency skipped for a failure. This depends only on the plan and
//!   the outcomes, so the final state is the same for every `jobs`.
//! * **Same result for every `jobs`.** When nothing fails, or with
//!   `keep_going`, the final statuses, attempts, exit codes and reasons do
//!   not depend on `jobs`; only the order of events (and so of output
//!   blocks) may differ.
//! * **Output.** Each line of output goes to the log (below) and to the
//!   sink with the instance's position and id (the sink renders the
//!   prefix). With `jobs: 1` lines are passed on as they come, one per
//!   [`OutputSink::output`] call. With `jobs > 1` an attempt's lines are
//!   kept until it ends and passed on as one block, so instances' output is
//!   never interleaved. A block comes before the events of its attempt's
//!   end.
//! * **Logs.** With [`ExecuteOptions::log_dir`], each instance with a
//!   command has its whole output, every attempt, in
//!   `<log_dir>/<file>.log`, where `<file>` is the id with `[` made `.`,
//!   `]` dropped, and any character other than ASCII letters, digits, `_`
//!   and `-` written `%XX` (`build[api]` → `build.api.log`). Attempts after
//!   the first start with a line `--- attempt N ---`, and a failed attempt
//!   ends with a line `--- attempt N failed: … ---`. A log file is
//!   created at an instance's first line of output (or failure line): an
//!   instance that prints nothing and succeeds has none. The directory is
//!   created; failing to create it is an error before anything runs. A log
//!   file that cannot be written is left out (the summary has no path).
//! * **Cancellation.** When the [`Cancel`] handle is cancelled (the CLI
//!   does so on Ctrl-C), the runner kills every running command's process
//!   group; each of those attempts is recorded `Failed` with reason
//!   `interrupted` (or `Completed` if it succeeded before it was killed), an
//!   instance waiting for a retry is `Failed` (`interrupted`), every
//!   instance not started is `Skipped` (`interrupted`), nothing new starts,
//!   and the summary says [`Summary::interrupted`]. An attempt whose
//!   `Started` was being recorded when the handle was cancelled is not run
//!   and fails the same way. The executor notices a cancellation within
//!   50 ms even when no command is running (during a backoff).
//! * **Recorder errors.** If `record` or a sync fails, the run stops: the handle is
//!   cancelled (killing what runs; it stays cancelled), the executor waits
//!   for the running attempts to end without recording anything more, and
//!   returns the error.
//! * **Summary.** For each instance in plan order: its final status,
//!   attempts, exit code of the last attempt, reason, log path, the last 10
//!   lines of its last attempt's output if it failed, and its duration
//!   (first start to end).

use std::collections::{BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::event::{Event, Reason, RecordError, Recorder};
use super::plan::Plan;
use super::runner::{Attempt, Cancel, Job, Outcome, Runner, wait_readable};
use super::sync::{Durability, spawn_syncer};

/// How many lines of a failed instance's output the summary keeps.
pub const TAIL_LINES: usize = 10;

/// The longest the executor waits before looking at the cancel handle.
const POLL: Duration = Duration::from_millis(50);

/// The most instances per job the executor keeps claimed ahead.
pub const CLAIM_AHEAD: usize = 8;

/// Claims ahead cover about as many starts as this long saw, so that short
/// commands share syncs and long ones claim little more than the next.
pub const CLAIM_WINDOW: Duration = Duration::from_millis(5);

/// The longest a recorded event waits for a sync when no claim needs one.
pub const SYNC_DELAY: Duration = Duration::from_millis(10);

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
        }
    }
}

/// Where the output of commands goes. Called on the thread that called
/// [`execute`].
pub trait OutputSink {
    /// Lines of output of the instance at position `instance` with id `id`:
    /// one line as it comes with `jobs: 1`, or a whole attempt's lines at
    /// once with `jobs > 1`.
    fn output(&mut self, instance: usize, id: &str, lines: &[String]);
}

impl<F: FnMut(usize, &str, &[String])> OutputSink for F {
    fn output(&mut self, instance: usize, id: &str, lines: &[String]) {
        self(instance, id, lines);
    }
}

/// A sink that keeps every block of output in memory (tests), or drops it.
#[derive(Debug, Default)]
pub struct MemorySink {
    /// Each call, in order: the instance's id and its lines.
    pub blocks: Vec<(String, Vec<String>)>,
}

impl OutputSink for MemorySink {
    fn output(&mut self, _instance: usize, id: &str, lines: &[String]) {
        self.blocks.push((id.to_owned(), lines.to_vec()));
    }
}

/// How an instance ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceStatus {
    /// Its command exited 0 (or it is a marker).
    Completed,
    /// Its last attempt failed, or it was interrupted.
    Failed,
    /// It did not run.
    Skipped,
}

/// What happened to one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceSummary {
    /// The instance's id.
    pub id: String,
    /// How it ended.
    pub status: InstanceStatus,
    /// How many attempts started (0 when skipped).
    pub attempts: u32,
    /// The last attempt's exit code, if it exited.
    pub exit_code: Option<i32>,
    /// Why it failed or was skipped.
    pub reason: Option<Reason>,
    /// Its log file, if one was written.
    pub log: Option<PathBuf>,
    /// The last lines of the last attempt's output, when it failed.
    pub tail: Vec<String>,
    /// From its first start to its end; `None` when skipped.
    pub duration: Option<Duration>,
}

/// What a run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Every instance, in plan order.
    pub instances: Vec<InstanceSummary>,
    /// The position of the first instance to fail (not counting those
    /// failed by the interruption).
    pub first_failed: Option<usize>,
    /// Whether the run was cancelled.
    pub interrupted: bool,
    /// The whole run.
    pub duration: Duration,
}

impl Summary {
    /// Whether every instance completed or was skipped for its condition.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        !self.interrupted
            && self
                .instances
                .iter()
                .all(|instance| instance.status != InstanceStatus::Failed)
    }

    /// The instances skipped because the instance at `failed` failed.
    pub fn skipped_because(&self, failed: usize) -> impl Iterator<Item = &InstanceSummary> {
        let id = self.instances.get(failed).map(|instance| instance.id.as_str());
        self.instances.iter().filter(move |instance| {
            instance.status == InstanceStatus::Skipped
                && matches!(&instance.reason, Some(Reason::Failed(name)) if Some(name.as_str()) == id)
        })
    }

    /// How many instances ended with `status`.
    #[must_use]
    pub fn count(&self, status: InstanceStatus) -> usize {
        self.instances
            .iter()
            .filter(|instance| instance.status == status)
            .count()
    }
}

/// Executes `plan`: see the module docs for the rules.
///
/// # Errors
///
/// The recorder failed (the run stopped there), or the log directory could
/// not be created (nothing ran).
pub fn execute(
    plan: &Plan,
    options: &ExecuteOptions,
    runner: &dyn Runner,
    recorder: &mut dyn Recorder,
    sink: &mut dyn OutputSink,
    cancel: &Cancel,
) -> Result<Summary, RecordError> {
    let began = Instant::now();
    if let Some(dir) = &options.log_dir {
        fs::create_dir_all(dir)
            .map_err(|error| RecordError(format!("cannot create the log directory {}: {error}", dir.display())))?;
    }
    let mut run = Run::new(plan, options);
    let syncer = recorder.syncer()?;
    thread::scope(|scope| {
        let (sender, receiver) = mpsc::channel();
        let mut sync = Durability::new(plan.phases.len());
        if let Some(syncer) = syncer {
            sync.requests = Some(spawn_syncer(scope, syncer, sender)?);
        }
        let mut active: Vec<Running<'_>> = Vec::new();
        let mut ended: Vec<Done> = Vec::new();
        let stream = run.jobs == 1;
        let stop = |error: RecordError| {
            cancel.cancel();
            Err(error)
        };
        let mut first = true;
        loop {
            if !first && ended.is_empty() {
                wait(&active, run.next_due().into_iter().chain(sync.due));
            }
            first = false;
            let mut position = 0;
            while position < active.len() {
                let sink = if stream { Some(&mut *sink) } else { None };
                match active[position].poll(plan, sink) {
                    Some(done) => {
                        active.swap_remove(position);
                        ended.push(done);
                    }
                    None => position += 1,
                }
            }
            for result in receiver.try_iter() {
                if let Err(error) = sync.synced(result) {
                    return stop(error);
                }
            }
            if sync.due.is_some_and(|due| due <= Instant::now()) {
                sync.request();
            }
            if cancel.is_cancelled() && !run.interrupted {
                run.interrupt();
            }
            // In plan order, so that what is recorded does not depend on
            // the order the polls found the ends in.
            ended.sort_unstable_by_key(|done| done.instance);
            for done in ended.drain(..) {
                run.handle(done, sink);
            }
            run.start_due(Instant::now());
            run.start_ready();
            if sync.requests.is_some() {
                run.claim_next(Instant::now());
            }
            if !run.events.is_empty() {
                if let Err(error) = recorder.record(&run.events) {
                    return stop(error);
                }
                sync.wrote(&run.events);
                run.events.clear();
            }
            let to_spawn = std::mem::take(&mut run.to_spawn);
            // A command starts only once its claim (or start) is durable.
            let needed = to_spawn.iter().map(|&(instance, _)| sync.claimed[instance]).max();
            if let Err(error) = sync.wait(needed.unwrap_or(0), &receiver) {
                return stop(error);
            }
            for (instance, attempt) in to_spawn {
                if cancel.is_cancelled() {
                    // Cancelled while the start was being recorded.
                    ended.push(Done::interrupted(instance, attempt));
                    continue;
                }
                active.push(Running::start(plan, options, runner, cancel, &run, instance, attempt));
            }
            // After the spawns, so that the sync thread does not compete with
            // them: at once if a claim expected next, or one of the first
            // `jobs` in plan order, is not covered by a sync asked for; else
            // soon.
            let uncovered = |i: &usize| sync.claimed[*i] > sync.requested;
            if run.imminent.iter().any(uncovered) || run.claims.iter().take(run.jobs).any(uncovered) {
                sync.request();
            } else {
                sync.request_by(Instant::now() + SYNC_DELAY);
            }
            if run.running.is_empty() && ended.is_empty() {
                // Everything recorded is durable before the run returns.
                return sync.wait(sync.written, &receiver).or_else(stop);
            }
        }
    })?;
    Ok(run.summary(began.elapsed()))
}

/// Waits until one of the attempts has something to do, a deadline passes
/// (theirs or one of `dues`), or [`POLL`] has passed.
fn wait(active: &[Running<'_>], dues: impl Iterator<Item = Instant>) {
    let now = Instant::now();
    // An attempt with neither a descriptor nor a deadline is polled at once.
    let at_once = active
        .iter()
        .any(|r| r.attempt.fd().is_none() && r.attempt.deadline().is_none());
    let until = active
        .iter()
        .filter_map(|r| r.attempt.deadline())
        .chain(dues)
        .fold(if at_once { now } else { now + POLL }, Instant::min);
    let fds: Vec<RawFd> = active.iter().filter_map(|r| r.attempt.fd()).collect();
    // A failed poll is a wake-up like any other: every attempt is polled.
    let _ = wait_readable(&fds, until);
}

/// Where an instance is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
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
struct Track {
    state: State,
    attempts: u32,
    exit_code: Option<i32>,
    reason: Option<Reason>,
    log: Option<PathBuf>,
    log_ok: bool,
    tail: Vec<String>,
    started: Option<Instant>,
    duration: Option<Duration>,
}

/// An attempt's end.
struct Done {
    instance: usize,
    attempt: u32,
    outcome: Outcome,
    /// Its output, when buffered (`jobs > 1`).
    lines: Vec<String>,
    tail: Vec<String>,
    log_ok: bool,
}

/// The executor's state, owned by the thread that called [`execute`].
struct Run<'p> {
    plan: &'p Plan,
    options: &'p ExecuteOptions,
    jobs: usize,
    tracks: Vec<Track>,
    /// Per instance, how many dependencies are not final.
    waiting: Vec<usize>,
    /// Per instance, the positions of the instances that depend on it.
    dependents: Vec<Vec<usize>>,
    ready: BTreeSet<usize>,
    /// Instances waiting for their next attempt.
    backoff: Vec<usize>,
    /// Running or backing off: the slots in use.
    running: BTreeSet<usize>,
    /// The events of the current step.
    events: Vec<Event>,
    /// Instances claimed and not yet started or skipped.
    claims: BTreeSet<usize>,
    /// Every instance before this position was considered for a claim.
    cursor: usize,
    /// The claimed instances expected to start first.
    imminent: Vec<usize>,
    /// When the instances started in the last [`CLAIM_WINDOW`] did.
    recent: VecDeque<Instant>,
    /// Attempts recorded as started, to spawn once recorded.
    to_spawn: Vec<(usize, u32)>,
    first_failed: Option<usize>,
    /// Fail-fast stopped the run.
    stopping: bool,
    interrupted: bool,
}

impl<'p> Run<'p> {
    fn new(plan: &'p Plan, options: &'p ExecuteOptions) -> Self {
        let count = plan.phases.len();
        let mut dependents = vec![Vec::new(); count];
        let mut waiting = Vec::with_capacity(count);
        let mut tracks = Vec::with_capacity(count);
        for (position, instance) in plan.phases.iter().enumerate() {
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
        let ready = (0..count)
            .filter(|&position| waiting[position] == 0)
            .collect::<BTreeSet<_>>();
        for &position in &ready {
            tracks[position].state = State::Ready;
        }
        Self {
            plan,
            options,
            jobs: options.jobs.max(1),
            tracks,
            waiting,
            dependents,
            ready,
            backoff: Vec::new(),
            running: BTreeSet::new(),
            events: Vec::new(),
            claims: BTreeSet::new(),
            cursor: 0,
            imminent: Vec::new(),
            recent: VecDeque::new(),
            to_spawn: Vec::new(),
            first_failed: None,
            stopping: false,
            interrupted: false,
        }
    }

    /// When the next retry is due, if one waits.
    fn next_due(&self) -> Option<Instant> {
        self.backoff
            .iter()
            .filter_map(|&position| match self.tracks[position].state {
                State::Backoff { due, .. } => Some(due),
                _ => None,
            })
            .min()
    }

    fn handle(&mut self, done: Done, sink: &mut dyn OutputSink) {
        if !done.lines.is_empty() {
            sink.output(done.instance, &self.plan.phases[done.instance].id, &done.lines);
        }
        self.ended(done);
    }

    /// An attempt ended.
    fn ended(&mut self, done: Done) {
        let Done {
            instance,
            attempt,
            outcome,
            tail,
            log_ok,
            ..
        } = done;
        let plan = self.plan;
        let track = &mut self.tracks[instance];
        track.log_ok |= log_ok;
        let Some((exit_code, reason)) = failure(&outcome) else {
            track.exit_code = Some(0);
            self.events.push(Event::Completed {
                instance,
                exit_code: Some(0),
            });
            self.running.remove(&instance);
            self.finish(instance, InstanceStatus::Completed);
            return;
        };
        let reason = if self.interrupted { Reason::Interrupted } else { reason };
        track.exit_code = exit_code;
        let planned = &plan.phases[instance];
        if reason != Reason::Interrupted && attempt <= planned.retry {
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
        if !self.interrupted && self.first_failed.is_none() {
            self.first_failed = Some(instance);
        }
        if !self.options.keep_going && !self.stopping && !self.interrupted {
            self.stopping = true;
            self.halt(&Reason::Failed(self.plan.phases[instance].id.clone()));
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
                State::Pending | State::Ready => {
                    self.tracks[instance].reason = Some(reason.clone());
                    self.tracks[instance].state = State::Done(InstanceStatus::Skipped);
                    self.unclaim(instance);
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
        self.ready.clear();
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
    fn interrupt(&mut self) {
        self.interrupted = true;
        self.halt(&Reason::Interrupted);
    }

    /// `instance` reached its final status: its dependents may be decided,
    /// and those skipped for a failure upstream in turn (without recursion:
    /// a long chain must not exhaust the stack).
    fn finish(&mut self, instance: usize, status: InstanceStatus) {
        let track = &mut self.tracks[instance];
        track.state = State::Done(status);
        track.duration = track.started.map(|started| started.elapsed());
        let mut ended = vec![instance];
        while let Some(done) = ended.pop() {
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
                    self.claims.remove(&dependent);
                    self.events.push(Event::Skipped {
                        instance: dependent,
                        reason,
                    });
                    ended.push(dependent);
                } else {
                    self.tracks[dependent].state = State::Ready;
                    self.ready.insert(dependent);
                }
            }
        }
    }

    /// For an instance whose dependencies are all final, the failed
    /// instance that keeps it from running: its first failed dependency, else
    /// the one named by its first dependency skipped for a failure.
    fn upstream_failure(&self, instance: usize) -> Option<String> {
        let after = &self.plan.phases[instance].after;
        let failed = after
            .iter()
            .find(|&&dependency| self.tracks[dependency].state == State::Done(InstanceStatus::Failed));
        if let Some(&dependency) = failed {
            return Some(self.plan.phases[dependency].id.clone());
        }
        after.iter().find_map(
            |&dependency| match (&self.tracks[dependency].state, &self.tracks[dependency].reason) {
                (State::Done(InstanceStatus::Skipped), Some(Reason::Failed(id))) => Some(id.clone()),
                _ => None,
            },
        )
    }

    /// Starts the retries that are due.
    fn start_due(&mut self, now: Instant) {
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
    fn start_ready(&mut self) {
        if self.stopping || self.interrupted {
            return;
        }
        while let Some(&instance) = self.ready.first() {
            let planned = &self.plan.phases[instance];
            if !planned.enabled {
                self.ready.remove(&instance);
                self.tracks[instance].reason = Some(Reason::Condition);
                self.events.push(Event::Skipped {
                    instance,
                    reason: Reason::Condition,
                });
                self.finish(instance, InstanceStatus::Skipped);
            } else if planned.command.is_none() {
                self.ready.remove(&instance);
                let track = &mut self.tracks[instance];
                track.attempts = 1;
                track.started = Some(Instant::now());
                self.events.push(Event::Started { instance, attempt: 1 });
                self.events.push(Event::Completed {
                    instance,
                    exit_code: None,
                });
                self.finish(instance, InstanceStatus::Completed);
            } else if self.running.len() < self.jobs {
                self.ready.remove(&instance);
                self.running.insert(instance);
                self.started_now(Instant::now());
                self.tracks[instance].started = Some(Instant::now());
                self.start(instance, 1);
            } else {
                break;
            }
        }
    }

    /// Claims the instances expected to start soon (see the module docs):
    /// the first `jobs`, in plan order, of those ready now and those that
    /// would be ready if every running attempt succeeded; then the next
    /// instances in plan order, until `jobs` plus the number of starts in
    /// the last [`CLAIM_WINDOW`] are claimed, at most [`CLAIM_AHEAD`] ×
    /// `jobs`. Only instances that run a command are claimed.
    fn claim_next(&mut self, now: Instant) {
        if self.stopping || self.interrupted {
            return;
        }
        self.forget_starts_before(now);
        let ahead = (self.jobs + self.recent.len()).min(CLAIM_AHEAD * self.jobs);
        let runs = |instance: usize| {
            let planned = &self.plan.phases[instance];
            planned.enabled && planned.command.is_some()
        };
        let mut next: BTreeSet<usize> = self
            .ready
            .iter()
            .copied()
            .filter(|&i| runs(i))
            .take(self.jobs)
            .collect();
        for &running in &self.running {
            for &dependent in &self.dependents[running] {
                let unfinished = self.plan.phases[dependent]
                    .after
                    .iter()
                    .filter(|&&dependency| self.running.contains(&dependency))
                    .count();
                if self.tracks[dependent].state == State::Pending
                    && unfinished == self.waiting[dependent]
                    && runs(dependent)
                {
                    next.insert(dependent);
                }
            }
        }
        self.imminent.clear();
        for instance in next.into_iter().take(self.jobs) {
            self.imminent.push(instance);
            if self.claims.insert(instance) {
                self.events.push(Event::Claimed { instance });
            }
        }
        while self.claims.len() < ahead && self.cursor < self.tracks.len() {
            let instance = self.cursor;
            self.cursor += 1;
            if runs(instance)
                && matches!(self.tracks[instance].state, State::Pending | State::Ready)
                && self.claims.insert(instance)
            {
                self.events.push(Event::Claimed { instance });
            }
        }
    }

    /// An instance started (for [`claim_next`](Self::claim_next)).
    fn started_now(&mut self, now: Instant) {
        self.forget_starts_before(now);
        self.recent.push_back(now);
    }

    /// Keeps only the starts of the [`CLAIM_WINDOW`] before `now`.
    fn forget_starts_before(&mut self, now: Instant) {
        while self
            .recent
            .front()
            .is_some_and(|&start| now.duration_since(start) > CLAIM_WINDOW)
        {
            self.recent.pop_front();
        }
    }

    /// `instance` started or was skipped: its claim, if any, is used up.
    fn unclaim(&mut self, instance: usize) {
        self.claims.remove(&instance);
    }

    /// Records the start of an attempt, to be spawned once recorded.
    fn start(&mut self, instance: usize, attempt: u32) {
        self.unclaim(instance);
        let track = &mut self.tracks[instance];
        track.state = State::Running;
        track.attempts = attempt;
        self.events.push(Event::Started { instance, attempt });
        self.to_spawn.push((instance, attempt));
    }

    fn summary(self, duration: Duration) -> Summary {
        let instances = self
            .tracks
            .into_iter()
            .zip(&self.plan.phases)
            .map(|(track, planned)| {
                let status = match track.state {
                    State::Done(status) => status,
                    // Unreachable: the run ends when nothing is active, and
                    // then every instance is final.
                    _ => InstanceStatus::Skipped,
                };
                InstanceSummary {
                    id: planned.id.clone(),
                    status,
                    attempts: track.attempts,
                    exit_code: track.exit_code,
                    reason: track.reason,
                    log: track.log.filter(|_| track.log_ok),
                    tail: track.tail,
                    duration: track.duration,
                }
            })
            .collect();
        Summary {
            instances,
            first_failed: self.first_failed,
            interrupted: self.interrupted,
            duration,
        }
    }
}

/// `None` for a success, else the exit code and reason of a failure.
fn failure(outcome: &Outcome) -> Option<(Option<i32>, Reason)> {
    match outcome {
        Outcome::Exited(0) => None,
        Outcome::Exited(code) => Some((Some(*code), Reason::ExitCode)),
        Outcome::Signalled(signal) => Some((Some(128 + signal), Reason::ExitCode)),
        Outcome::TimedOut => Some((None, Reason::Timeout)),
        Outcome::Interrupted => Some((None, Reason::Interrupted)),
        Outcome::SpawnFailed(message) => Some((None, Reason::Spawn(message.clone()))),
    }
}

/// The log file name for an instance id: `build[api]` → `build.api`.
fn log_name(id: &str) -> String {
    let mut name = String::with_capacity(id.len());
    for c in id.chars() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-' => name.push(c),
            '[' => name.push('.'),
            ']' => {}
            _ => {
                let mut bytes = [0; 4];
                for byte in c.encode_utf8(&mut bytes).bytes() {
                    let _ = write!(name, "%{byte:02X}");
                }
            }
        }
    }
    name
}

/// An attempt that runs, with what the executor keeps of it.
struct Running<'a> {
    instance: usize,
    number: u32,
    attempt: Box<dyn Attempt + 'a>,
    log: LogFile,
    tail: VecDeque<String>,
    /// Its output, kept until it ends when `jobs > 1`.
    lines: Vec<String>,
}

impl<'a> Running<'a> {
    fn start(
        plan: &'a Plan,
        options: &'a ExecuteOptions,
        runner: &'a dyn Runner,
        cancel: &'a Cancel,
        run: &Run<'_>,
        instance: usize,
        number: u32,
    ) -> Self {
        let planned = &plan.phases[instance];
        let job = Job {
            instance,
            id: &planned.id,
            attempt: number,
            command: planned.command.as_deref().unwrap_or(""),
            dir: &options.dir,
            env: &plan.env,
            version: &plan.version,
            release: &options.release,
            phase: &planned.phase,
            service: planned.service.as_deref(),
            timeout: planned.timeout_ms.map(Duration::from_millis),
            cancel,
        };
        Self {
            instance,
            number,
            attempt: runner.start(&job),
            log: LogFile {
                path: run.tracks[instance].log.clone(),
                attempt: number,
                file: None,
            },
            tail: VecDeque::with_capacity(TAIL_LINES),
            lines: Vec::new(),
        }
    }

    /// Polls the attempt, passing each line to `stream` (or keeping them
    /// when there is none); its end, once it has ended.
    fn poll<'s>(&mut self, plan: &Plan, mut stream: Option<&mut (dyn OutputSink + 's)>) -> Option<Done> {
        let Self {
            instance,
            attempt,
            log,
            tail,
            lines,
            ..
        } = self;
        let id = &plan.phases[*instance].id;
        let outcome = attempt.poll(&mut |line: &str| {
            log.line(line);
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.to_owned());
            match &mut stream {
                Some(sink) => sink.output(*instance, id, &[line.to_owned()]),
                None => lines.push(line.to_owned()),
            }
        })?;
        if let Some((_, reason)) = failure(&outcome) {
            let how = match outcome {
                Outcome::Exited(code) => format!("exit code {code}"),
                Outcome::Signalled(signal) => format!("killed by signal {signal}"),
                _ => reason.to_string(),
            };
            self.log.line(&format!("--- attempt {} failed: {how} ---", self.number));
        }
        Some(Done {
            instance: self.instance,
            attempt: self.number,
            outcome,
            lines: std::mem::take(&mut self.lines),
            tail: std::mem::take(&mut self.tail).into(),
            log_ok: self.log.file.is_some(),
        })
    }
}

impl Done {
    /// An attempt not started because the run was cancelled.
    fn interrupted(instance: usize, attempt: u32) -> Self {
        Self {
            instance,
            attempt,
            outcome: Outcome::Interrupted,
            lines: Vec::new(),
            tail: Vec::new(),
            log_ok: false,
        }
    }
}

/// An instance's log, opened at its first line: an instance that prints
/// nothing and succeeds leaves no file (creating thousands of empty files
/// costs a run of `true`s more than anything else but the processes).
struct LogFile {
    path: Option<PathBuf>,
    attempt: u32,
    file: Option<File>,
}

impl LogFile {
    fn line(&mut self, line: &str) {
        if self.file.is_none() {
            // Not retried: a log that cannot be opened is left out.
            self.file = self.path.take().and_then(|path| open_log(&path, self.attempt));
        }
        if let Some(file) = &mut self.file {
            let _ = writeln!(file, "{line}");
        }
    }
}

fn open_log(path: &Path, attempt: u32) -> Option<File> {
    let mut file = if attempt == 1 {
        File::create(path).ok()?
    } else {
        OpenOptions::new().create(true).append(true).open(path).ok()?
    };
    if attempt > 1 {
        writeln!(file, "--- attempt {attempt} ---").ok()?;
    }
    Some(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_names_are_safe_and_distinct() {
        assert_eq!(log_name("build[api]"), "build.api");
        assert_eq!(log_name("migrate_pre"), "migrate_pre");
        assert_eq!(log_name("a/b"), "a%2Fb");
        assert_eq!(log_name("a.b"), "a%2Eb");
        assert_eq!(log_name("é"), "%C3%A9");
    }

    #[test]
    fn signals_are_reported_as_the_shell_would() {
        assert_eq!(failure(&Outcome::Signalled(9)), Some((Some(137), Reason::ExitCode)));
        assert_eq!(failure(&Outcome::Exited(0)), None);
        assert_eq!(failure(&Outcome::TimedOut), Some((None, Reason::Timeout)));
    }
}
