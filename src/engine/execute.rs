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
//!   as satisfied for its dependents. So is an instance whose service is
//!   unchanged (`unchanged == true`, reason `unchanged`). An instance
//!   downstream of a failure is skipped for the failure even if its
//!   condition is false.
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
//!   the last [`CLAIM_WINDOW`] (20 ms), or in the last three sync times if
//!   that is longer, wait to be used, at most [`CLAIM_AHEAD`] (32) × `jobs`.
//!   So commands that take milliseconds share syncs, and longer ones claim
//!   little more than the next. Only enabled instances with a command are
//!   claimed. The executor asks for a sync, after starting the step's
//!   commands, at once when one of the claims expected next, or of the
//!   first `jobs` claims in plan order plus one for every start of the last
//!   two sync times, is not covered by a sync already asked for, and
//!   otherwise within [`SYNC_DELAY`] (a sync time is the last sync's, or
//!   less when syncs got faster); when a command must start and its claim is not
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
//!   kept until it ends and passed on as one block (in calls of at most
//!   64 KiB of lines, one after the other), so instances' output is never
//!   interleaved. A block comes before the events of its attempt's end.
//!   Memory does not grow with the output: past its first 32 KiB an
//!   attempt's block is read back from its log when it ends, or from a
//!   spool file (unlinked at once) when it has no log or the log cannot be
//!   written. The summary's tail is its last 10 lines.
//! * **Logs.** With [`ExecuteOptions::log_dir`], each instance with a
//!   command has its whole output, every attempt, in
//!   `<log_dir>/<file>.log`, where `<file>` is the id with `[` made `.`,
//!   `]` dropped, and any character other than ASCII letters, digits, `_`
//!   and `-` written `%XX` (`build[api]` → `build.api.log`). Attempts after
//!   the first start with a line `--- attempt N ---`, and a failed attempt
//!   ends with a line `--- attempt N failed: … ---`. A log is written in
//!   blocks, after each poll of the attempt. A log file is
//!   created at an instance's first line of output (or failure line): an
//!   instance that prints nothing and succeeds has none. The directory is
//!   created; failing to create it is an error before anything runs. A log
//!   file that cannot be written is left out (the summary has no path).
//! * **Cancellation.** When the [`Cancel`] handle is cancelled (the CLI
//!   does so on Ctrl-C), every running command's process group gets
//!   `SIGTERM`, and `SIGKILL` once [`ExecuteOptions::grace`] has passed
//!   (or at once when the handle is cancelled again); each of those
//!   attempts is recorded `Failed` with reason `interrupted` (or
//!   `Completed` if it exited 0), an
//!   instance waiting for a retry is `Failed` (`interrupted`), every
//!   instance not started is `Skipped` (`interrupted`), nothing new starts,
//!   and the summary says [`Summary::interrupted`]. An attempt whose
//!   `Started` was being recorded when the handle was cancelled is not run
//!   and fails the same way. The executor notices a cancellation within
//!   50 ms even when no command is running (during a backoff).
//! * **Processes.** Right after a command starts, its process group and
//!   its leader's start time ([`Child::process`]) are recorded
//!   ([`Event::Spawned`], one `record` call of its own), so that a command
//!   that recovers a run killed outright can stop what it left running.
//! * **Recorder errors.** If `record` or a sync fails, recording stops and
//!   so does the run: nothing starts any more (no retry, no `finally`
//!   instance, no undo; an attempt whose start was being recorded is not
//!   run and ends `Failed`, `interrupted`), every instance not started is
//!   `Skipped` (`interrupted`), and the summary says
//!   [`Summary::interrupted`]. The attempts running are let finish (or
//!   time out, or be cancelled); the events from the failure on go to
//!   [`Recorder::keep`], so that a recorder whose storage comes back can
//!   still write the release's last state. Once nothing runs, the first
//!   error is returned.
//! * **Undo.** With [`ExecuteOptions::undo_on_failure`], a run that failed
//!   (not one interrupted) undoes its completed instances that have an
//!   `undo` command before its `finally` instances start: latest completed
//!   first, each after the undos of the instances that depend on it, up to
//!   `jobs` at once; each undo's `UndoStarted` is durable before its
//!   command starts, its process group is recorded (`UndoSpawned`), and a
//!   failed undo stops the undoing (see `schedule/undo.rs`).
//! * **Summary.** For each instance in plan order: its final status,
//!   attempts, exit code of the last attempt, reason, log path, the last 10
//!   lines of its last attempt's output if it failed, and its duration
//!   (first start to end).

use std::fs;
use std::os::fd::BorrowedFd;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use super::event::{Event, RecordError, Recorder};
use super::output::{Capture, OutputSink};
use super::plan::Plan;
use super::runner::{Cancel, Child, Job, Runner, wait_readable};
use super::schedule::{Done, ExecuteOptions, Run, undo_log};
use super::summary::Summary;
use super::sync::{Durability, Synced, spawn_syncer};

/// The longest the executor waits before looking at the cancel handle.
const POLL: Duration = Duration::from_millis(50);

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
    cancel.set_grace(options.grace);
    // `finally` commands run after a cancellation: under a handle of their
    // own, killed once the run's is killing (the grace passed, or a second
    // cancel).
    let finally_cancel = Cancel::new();
    let mut run = Run::new(plan, options);
    let syncer = recorder.syncer()?;
    thread::scope(|scope| {
        let (sender, answers) = mpsc::channel();
        let mut sync = Durability::new(plan.instances.len());
        if let Some(syncer) = syncer {
            sync.requests = Some(spawn_syncer(scope, syncer, sender)?);
        }
        let mut executor = Executor {
            runner,
            cancel,
            finally_cancel: &finally_cancel,
            recorder,
            sink,
            run: &mut run,
            sync,
            synced: answers,
            active: Vec::new(),
            ended: Vec::new(),
            failed: None,
        };
        executor.run()
    })?;
    Ok(run.summary(began.elapsed()))
}

/// The loop of [`execute`] and what it holds, on the calling thread.
struct Executor<'a, 'e> {
    runner: &'a dyn Runner,
    cancel: &'a Cancel,
    /// The handle `finally` commands run under.
    finally_cancel: &'a Cancel,
    recorder: &'e mut dyn Recorder,
    sink: &'e mut dyn OutputSink,
    run: &'e mut Run<'a>,
    sync: Durability,
    /// The sync thread's answers.
    synced: Receiver<Synced>,
    /// The attempts running.
    active: Vec<Running<'a>>,
    /// The attempts that ended and are not handled yet.
    ended: Vec<Done>,
    /// The first failure to record: nothing is recorded from then on.
    failed: Option<RecordError>,
}

impl Executor<'_, '_> {
    /// Runs step after step until nothing runs and every step is durable.
    fn run(&mut self) -> Result<(), RecordError> {
        let mut first = true;
        loop {
            if !first && self.ended.is_empty() {
                wait(&self.active, self.run.next_due().into_iter().chain(self.sync.due));
            }
            first = false;
            self.poll_all();
            if self.failed.is_none()
                && let Err(error) = self.sync.take_synced(&self.synced)
            {
                self.stop_recording(error);
            }
            self.cancel.enforce_grace();
            if self.cancel.is_killing() && !self.finally_cancel.is_cancelled() {
                self.finally_cancel.kill_now();
            }
            if self.cancel.is_cancelled() && !self.run.interrupted {
                self.run.interrupt();
            }
            self.handle_ended();
            let now = Instant::now();
            self.run.start_due(now);
            self.run.start_ready(now);
            if self.sync.requests.is_some() {
                self.run.claims.set_sync_time(self.sync.sync_time);
                self.run.claim_next(now);
            }
            self.record();
            self.spawn();
            if self.failed.is_none() {
                self.sync.request_for(&self.run.claims, Instant::now());
            }
            if self.run.running.is_empty() && self.ended.is_empty() {
                return self.end();
            }
        }
    }

    /// The run's end: everything recorded is durable before it returns, or
    /// the first failure to record is returned.
    fn end(&mut self) -> Result<(), RecordError> {
        if self.failed.is_none()
            && let Err(error) = self.sync.wait(self.sync.written, &self.synced)
        {
            self.stop_recording(error);
        }
        // What stopping added.
        self.record();
        self.failed.take().map_or(Ok(()), Err)
    }

    /// Recording failed: the run stops (see the module docs).
    fn stop_recording(&mut self, error: RecordError) {
        if self.failed.is_none() {
            self.failed = Some(error);
            // Ends the sync thread: nothing more is synced.
            self.sync.requests = None;
            self.sync.due = None;
            self.run.stop_recording();
        }
    }

    /// Records `events`, or, once recording failed, hands them to the
    /// recorder to keep.
    fn write(&mut self, events: &[Event]) {
        if self.failed.is_some() {
            self.recorder.keep(events);
            return;
        }
        match self.recorder.record(events) {
            Ok(()) => self.sync.wrote(events),
            Err(error) => self.stop_recording(error),
        }
    }

    /// Polls every running attempt, once.
    fn poll_all(&mut self) {
        let stream = self.run.jobs == 1;
        let mut position = 0;
        while position < self.active.len() {
            let sink = if stream { Some(&mut *self.sink) } else { None };
            match self.active[position].poll(self.run.plan, sink) {
                Some(done) => {
                    self.active.swap_remove(position);
                    self.ended.push(done);
                }
                None => position += 1,
            }
        }
    }

    /// Passes on the output kept of the attempts that ended and hands
    /// their ends to the schedule, in plan order, so that what is recorded
    /// does not depend on the order the polls found them in.
    fn handle_ended(&mut self) {
        self.ended.sort_unstable_by_key(|done| done.instance);
        for mut done in self.ended.drain(..) {
            let id = &self.run.plan.instances[done.instance].id;
            let undo = done.undo.then(|| format!("{id} undo"));
            let id = undo.as_deref().unwrap_or(id);
            std::mem::take(&mut done.output).deliver(done.instance, id, &mut *self.sink);
            self.run.ended(done);
        }
    }

    /// Records the step's events, if any.
    fn record(&mut self) {
        if !self.run.events.is_empty() {
            let events = std::mem::take(&mut self.run.events);
            self.write(&events);
            // Keeps the buffer's room, unless stopping added events.
            if self.run.events.is_empty() {
                self.run.events = events;
                self.run.events.clear();
            }
        }
    }

    /// Starts the attempts the step recorded, once their claims (or
    /// starts) are durable.
    fn spawn(&mut self) {
        let to_spawn = std::mem::take(&mut self.run.to_spawn);
        let undos = std::mem::take(&mut self.run.undos.to_spawn);
        let needed = to_spawn
            .iter()
            .map(|&(instance, _)| instance)
            .chain(undos.iter().copied())
            .map(|instance| self.sync.claimed[instance])
            .max();
        if self.failed.is_none()
            && let Err(error) = self.sync.wait(needed.unwrap_or(0), &self.synced)
        {
            self.stop_recording(error);
        }
        for instance in undos {
            self.spawn_undo(instance);
        }
        for (instance, attempt) in to_spawn {
            let cancel = if self.run.plan.instances[instance].is_finally() {
                self.finally_cancel
            } else {
                self.cancel
            };
            if cancel.is_cancelled() || self.failed.is_some() {
                // Cancelled, or recording failed, while the start was being
                // recorded.
                self.ended.push(Done::interrupted(instance, attempt));
                continue;
            }
            let running = Running::start(self.runner, cancel, self.run, instance, attempt);
            let process = running.child.process();
            self.active.push(running);
            if let Some(process) = process {
                // At once, so that a run killed from now on leaves its
                // group to the command that recovers it.
                self.write(&[Event::Spawned {
                    instance,
                    attempt,
                    process,
                }]);
            }
        }
    }
}

impl Executor<'_, '_> {
    /// Starts the undo of the instance at `instance`, its `UndoStarted`
    /// being durable.
    fn spawn_undo(&mut self, instance: usize) {
        if self.cancel.is_cancelled() || self.failed.is_some() {
            self.ended.push(Done {
                undo: true,
                ..Done::interrupted(instance, 1)
            });
            return;
        }
        let running = Running::start_undo(self.runner, self.cancel, self.run, instance);
        let process = running.child.process();
        self.active.push(running);
        if let Some(process) = process {
            self.write(&[Event::UndoSpawned { instance, process }]);
        }
    }
}

/// Waits until one of the attempts has something to do, a deadline passes
/// (theirs or one of `dues`), or [`POLL`] has passed.
fn wait(active: &[Running<'_>], dues: impl Iterator<Item = Instant>) {
    let now = Instant::now();
    // An attempt with neither a descriptor nor a deadline is polled at once.
    let at_once = active
        .iter()
        .any(|r| r.child.fd().is_none() && r.child.deadline().is_none());
    let until = active
        .iter()
        .filter_map(|r| r.child.deadline())
        .chain(dues)
        .fold(if at_once { now } else { now + POLL }, Instant::min);
    let fds: Vec<BorrowedFd<'_>> = active.iter().filter_map(|r| r.child.fd()).collect();
    // A failed poll is a wake-up like any other: every attempt is polled.
    let _ = wait_readable(&fds, until);
}

/// An attempt that runs, with what the executor keeps of its output.
struct Running<'a> {
    instance: usize,
    number: u32,
    child: Box<dyn Child + 'a>,
    output: Capture,
    /// The instance's undo, whose output lines are labelled `<id> undo`.
    undo: Option<String>,
}

impl<'a> Running<'a> {
    fn start(runner: &'a dyn Runner, cancel: &'a Cancel, run: &Run<'a>, instance: usize, number: u32) -> Self {
        let planned = &run.plan.instances[instance];
        let command = planned.command_on(run.failed_outcome()).unwrap_or("");
        let outcome = if planned.is_finally() { run.outcome() } else { None };
        let job = job(run, instance, number, command, outcome, cancel);
        Self {
            instance,
            number,
            child: runner.start(&job),
            output: Capture::new(run.tracks[instance].log.clone(), number, run.options.secrets.values()),
            undo: None,
        }
    }

    /// Starts the undo of the instance at `instance`: its `undo` command,
    /// as its first attempt would run, logged to `<file>.undo.log`.
    fn start_undo(runner: &'a dyn Runner, cancel: &'a Cancel, run: &Run<'a>, instance: usize) -> Self {
        let (plan, options) = (run.plan, run.options);
        let planned = &plan.instances[instance];
        let job = job(run, instance, 1, planned.undo.as_deref().unwrap_or(""), None, cancel);
        let log = undo_log(options.log_dir.as_ref(), &planned.id);
        Self {
            instance,
            number: 1,
            child: runner.start(&job),
            output: Capture::new(log, 1, options.secrets.values()),
            undo: Some(format!("{} undo", planned.id)),
        }
    }

    /// Polls the attempt, passing each line to `stream` (or keeping them
    /// when there is none); its end, once it has ended.
    fn poll<'s>(&mut self, plan: &Plan, mut stream: Option<&mut (dyn OutputSink + 's)>) -> Option<Done> {
        let Self {
            instance,
            child,
            output,
            undo,
            ..
        } = self;
        let id = undo.as_deref().unwrap_or(&plan.instances[*instance].id);
        let polled = child.poll(&mut |line: &str| output.line(*instance, id, line, stream.as_deref_mut()));
        let Some(outcome) = polled else {
            output.flush();
            return None;
        };
        output.end(*instance, id, stream);
        let (output, tail, log_ok, log_error) = self.output.finish(self.number, &outcome);
        Some(Done {
            instance: self.instance,
            attempt: self.number,
            outcome,
            output,
            tail,
            log_ok,
            log_error,
            undo: self.undo.is_some(),
        })
    }
}

/// The job that runs `command` as attempt `attempt` of the instance at
/// `instance` (or its undo): the instance's variables, directory and
/// timeout.
fn job<'a>(
    run: &Run<'a>,
    instance: usize,
    attempt: u32,
    command: &'a str,
    outcome: Option<&'a str>,
    cancel: &'a Cancel,
) -> Job<'a> {
    let (plan, options) = (run.plan, run.options);
    let planned = &plan.instances[instance];
    Job {
        instance,
        id: &planned.id,
        attempt,
        command,
        dir: &options.dir,
        env: &plan.env,
        version: &planned.version,
        release: &options.release,
        phase: &planned.phase,
        service: planned.service.as_deref(),
        workflow: &plan.workflow,
        pipeline: &plan.pipeline,
        timeout: planned.timeout_ms.map(Duration::from_millis),
        outcome,
        cancel,
    }
}
