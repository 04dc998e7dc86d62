//! Running one instance's command: the [`Runner`] trait and its running
//! [`Child`]ren, and the [`Cancel`] handle that stops what runs, with the
//! process groups it kills. The real runner is `shell`'s [`ShellRunner`];
//! tests use the `ScriptedRunner` of `scripted.rs`.
//!
//! # The job
//!
//! A [`Job`] is one attempt of one instance: its command, the directory to
//! run in (the pipeline file's directory), the variables to set, the
//! timeout and the run's [`Cancel`] handle. The runner passes the command's
//! output to a callback one line at a time (without the line break,
//! decoded as UTF-8 with invalid bytes replaced) and returns an
//! [`Outcome`]. The executor owns everything else (logs, retries, state).
//!
//! Every command sees the inherited environment, without
//! `STAGECRAFT_STATE_DIR` and `STAGECRAFT_FILE` (so that a command that
//! runs stagecraft for another pipeline gets that pipeline's own state
//! directory and file), plus
//! `STAGECRAFT_ENV`, `STAGECRAFT_VERSION`, `STAGECRAFT_RELEASE`,
//! `STAGECRAFT_PHASE`, `STAGECRAFT_SERVICE`, `STAGECRAFT_WORKFLOW`,
//! `STAGECRAFT_PIPELINE` (the `pipeline` name), `STAGECRAFT_ATTEMPT`
//! (1, then 2, 3, … for retries) and `STAGECRAFT_OUTCOME` (`success` or
//! `failure` in a `finally` phase, empty elsewhere).
//! `STAGECRAFT_SERVICE` is **always set**: to the service's name for a per-service instance, and to the empty
//! string for a global phase (so scripts under `set -u` can read it, and a
//! value inherited from an outer stagecraft never leaks in).

use std::borrow::Cow;
use std::io;
use std::os::fd::BorrowedFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;
use rustix::process::{Pid, Signal, kill_process_group};

use super::event::Process;

/// One attempt of one instance, as a runner sees it.
#[derive(Clone, Copy, Debug)]
pub struct Job<'a> {
    /// Position of the instance in the plan.
    pub instance: usize,
    /// The instance's id, `build[api]` or `migrate`.
    pub id: &'a str,
    /// 1 for the first attempt (`STAGECRAFT_ATTEMPT`).
    pub attempt: u32,
    /// The command, fully interpolated.
    pub command: &'a str,
    /// The directory to run in: the pipeline file's directory.
    pub dir: &'a Path,
    /// `STAGECRAFT_ENV`.
    pub env: &'a str,
    /// `STAGECRAFT_VERSION`.
    pub version: &'a str,
    /// `STAGECRAFT_RELEASE`.
    pub release: &'a str,
    /// `STAGECRAFT_PHASE`.
    pub phase: &'a str,
    /// `STAGECRAFT_SERVICE`; `None` for a global phase (set to empty).
    pub service: Option<&'a str>,
    /// `STAGECRAFT_WORKFLOW`.
    pub workflow: &'a str,
    /// `STAGECRAFT_PIPELINE`: the `pipeline` name.
    pub pipeline: &'a str,
    /// Kill the command's process group after this long.
    pub timeout: Option<Duration>,
    /// `STAGECRAFT_OUTCOME` in a `finally` phase: `success` or `failure`;
    /// `None` elsewhere (set to empty).
    pub outcome: Option<&'a str>,
    /// The run's cancellation handle.
    pub cancel: &'a Cancel,
}

impl<'a> Job<'a> {
    /// The variables every command sees, in addition to the inherited
    /// environment (see the module docs), in that order.
    /// `STAGECRAFT_SERVICE` is empty for a global phase.
    #[must_use]
    pub fn variables(&self) -> [(&'static str, Cow<'a, str>); 9] {
        let [
            env,
            version,
            release,
            phase,
            service,
            workflow,
            pipeline,
            attempt,
            outcome,
        ] = VARIABLES;
        [
            (env, Cow::Borrowed(self.env)),
            (version, Cow::Borrowed(self.version)),
            (release, Cow::Borrowed(self.release)),
            (phase, Cow::Borrowed(self.phase)),
            (service, Cow::Borrowed(self.service.unwrap_or(""))),
            (workflow, Cow::Borrowed(self.workflow)),
            (pipeline, Cow::Borrowed(self.pipeline)),
            (attempt, Cow::Owned(self.attempt.to_string())),
            (outcome, Cow::Borrowed(self.outcome.unwrap_or(""))),
        ]
    }
}

/// The names of [`Job::variables`], in order.
pub(super) const VARIABLES: [&str; 9] = [
    "STAGECRAFT_ENV",
    "STAGECRAFT_VERSION",
    "STAGECRAFT_RELEASE",
    "STAGECRAFT_PHASE",
    "STAGECRAFT_SERVICE",
    "STAGECRAFT_WORKFLOW",
    "STAGECRAFT_PIPELINE",
    "STAGECRAFT_ATTEMPT",
    "STAGECRAFT_OUTCOME",
];

/// Variables of the inherited environment that commands do not inherit:
/// the state directory and the pipeline file (`STAGECRAFT_FILE`, `-f`)
/// belong to this run's pipeline, not to a pipeline a command runs
/// stagecraft for.
pub(super) const NOT_INHERITED: [&str; 2] = ["STAGECRAFT_STATE_DIR", "STAGECRAFT_FILE"];

/// How one attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The command exited with this code; 0 is success.
    Exited(i32),
    /// The command was killed by this signal (not by stagecraft).
    Signalled(i32),
    /// The command ran past its timeout; its process group was killed.
    TimedOut,
    /// The run was cancelled (Ctrl-C) and the command was killed.
    Interrupted,
    /// The command could not be started.
    SpawnFailed(String),
}

impl Outcome {
    /// Whether the attempt succeeded (exit code 0).
    #[must_use]
    pub fn succeeded(&self) -> bool {
        matches!(self, Self::Exited(0))
    }
}

/// Runs attempts of instances' commands. The executor starts each attempt
/// and then drives every running one from its own thread, waiting for any
/// of their descriptors to become readable (as ninja does).
pub trait Runner: Send + Sync {
    /// Starts `job` and returns it running. A command that cannot start is
    /// an attempt that ends at its first poll ([`Outcome::SpawnFailed`]).
    fn start<'a>(&'a self, job: &Job<'a>) -> Box<dyn Child + 'a>;

    /// Runs `job` to its end on this thread, passing each line of its
    /// output to `output`.
    fn run(&self, job: &Job<'_>, output: &mut dyn FnMut(&str)) -> Outcome {
        let mut child = self.start(job);
        loop {
            if let Some(outcome) = child.poll(output) {
                return outcome;
            }
            let until = child.deadline().unwrap_or_else(|| Instant::now() + IDLE);
            let _ = wait_readable(child.fd().as_slice(), until.min(Instant::now() + IDLE));
        }
    }
}

/// One running attempt of a job, as [`Runner::start`] returns it (a process
/// for [`ShellRunner`](super::ShellRunner), or scripted). The executor calls [`poll`](Self::poll) when its
/// descriptor is readable, when its deadline has passed, and at least every
/// 50 ms; `poll` never blocks for long. It must end once the job's
/// [`Cancel`] handle is cancelled, at the latest when the cancellation's
/// grace has passed ([`Cancel::kill_deadline`]).
pub trait Child {
    /// The descriptor that becomes readable when the attempt has something
    /// to do (output, or its end), if it has one.
    fn fd(&self) -> Option<BorrowedFd<'_>>;

    /// When it must be polled even if nothing is readable (a timeout).
    fn deadline(&self) -> Option<Instant>;

    /// The process group it runs as, to record (none for a scripted
    /// child, or one that could not start).
    fn process(&self) -> Option<Process> {
        None
    }

    /// Passes on the output there is, acts on a deadline that has passed,
    /// and returns how the attempt ended once it has.
    fn poll(&mut self, output: &mut dyn FnMut(&str)) -> Option<Outcome>;
}

/// The longest [`Runner::run`] waits without polling its attempt.
const IDLE: Duration = Duration::from_millis(50);

/// Waits until one of `fds` is readable (or at its end), or until `until`
/// (a signal ends the wait early).
///
/// # Errors
///
/// `poll` failed.
pub(crate) fn wait_readable(fds: &[BorrowedFd<'_>], until: Instant) -> io::Result<()> {
    let mut polls: Vec<PollFd<'_>> = fds
        .iter()
        .map(|&fd| PollFd::from_borrowed_fd(fd, PollFlags::IN))
        .collect();
    // A wait too long for a timespec is a wait without end.
    let timeout = Timespec::try_from(until.saturating_duration_since(Instant::now())).ok();
    match poll(&mut polls, timeout.as_ref()) {
        Ok(_) | Err(Errno::INTR) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// How long cancelled commands get between `SIGTERM` and `SIGKILL`, unless
/// told otherwise ([`ExecuteOptions::grace`](super::ExecuteOptions::grace)).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// A run's cancellation handle: cloned freely, shared with the Ctrl-C
/// handler. Cancelling sends `SIGTERM` to the process group of every
/// command running under it, `SIGKILL` once the grace has passed (or at
/// once, when cancelled a second time), and tells the executor to stop.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<CancelInner>);

#[derive(Debug, Default)]
struct CancelInner {
    cancelled: AtomicBool,
    state: Mutex<CancelState>,
}

#[derive(Debug)]
struct CancelState {
    /// Process groups of the commands running now.
    groups: Vec<Pid>,
    grace: Duration,
    /// When the grace ends, once cancelled.
    kill_at: Option<Instant>,
    /// Every group gets `SIGKILL`, now and when it registers.
    killing: bool,
}

impl Default for CancelState {
    fn default() -> Self {
        Self {
            groups: Vec::new(),
            grace: DEFAULT_GRACE,
            kill_at: None,
            killing: false,
        }
    }
}

impl Cancel {
    /// A handle that is not cancelled, with a grace of [`DEFAULT_GRACE`].
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets how long cancelled commands get between `SIGTERM` and
    /// `SIGKILL`; a cancellation already under way keeps its deadline.
    pub fn set_grace(&self, grace: Duration) {
        self.state().grace = grace;
    }

    /// Cancels the run: sends `SIGTERM` to the process group of every
    /// command running under this handle, and of every one registered
    /// later, and `SIGKILL` once the grace has passed (see
    /// [`Cancel::enforce_grace`]). Called again, kills at once
    /// ([`Cancel::kill_now`]). Safe to call from any thread.
    pub fn cancel(&self) {
        let mut state = self.state();
        if self.0.cancelled.swap(true, Ordering::SeqCst) || state.grace.is_zero() {
            drop(state);
            self.kill_now();
            return;
        }
        state.kill_at = Some(Instant::now() + state.grace);
        for &group in &state.groups {
            signal_group(group, Signal::TERM);
        }
    }

    /// Cancels the run and kills (`SIGKILL`) every process group running
    /// under this handle, and every one registered later, without grace.
    pub fn kill_now(&self) {
        let mut state = self.state();
        self.0.cancelled.store(true, Ordering::SeqCst);
        state.killing = true;
        for &group in &state.groups {
            signal_group(group, Signal::KILL);
        }
    }

    /// Whether the handle kills without grace: [`Cancel::kill_now`], a
    /// second cancel, or the grace has passed.
    #[must_use]
    pub fn is_killing(&self) -> bool {
        self.is_cancelled() && self.state().killing
    }

    /// Whether [`Cancel::cancel`] (or [`Cancel::kill_now`]) was called.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// When the grace of a cancellation ends, while it runs: the running
    /// attempts' [`Child::deadline`] (so that [`Cancel::enforce_grace`] is
    /// called then).
    #[must_use]
    pub fn kill_deadline(&self) -> Option<Instant> {
        if !self.is_cancelled() {
            // Every running attempt asks at every wait: no lock then.
            return None;
        }
        let state = self.state();
        state.kill_at.filter(|_| !state.killing)
    }

    /// Kills at once if the grace of a cancellation has passed. Runners'
    /// children call it when polled, and the executor at every step.
    pub fn enforce_grace(&self) {
        if self.kill_deadline().is_some_and(|at| at <= Instant::now()) {
            self.kill_now();
        }
    }

    /// Registers the process group `group` (a child spawned in a new
    /// group: its pid) as running, until the returned guard is dropped;
    /// drop it before reaping the child. If the handle is already
    /// cancelled, the group gets `SIGTERM` at once (`SIGKILL` once the
    /// grace has passed).
    #[must_use]
    pub(super) fn register(&self, group: Pid) -> ProcessGroup<'_> {
        let mut state = self.state();
        state.groups.push(group);
        if state.killing {
            signal_group(group, Signal::KILL);
        } else if self.is_cancelled() {
            signal_group(group, Signal::TERM);
        }
        ProcessGroup { cancel: self, group }
    }

    fn state(&self) -> MutexGuard<'_, CancelState> {
        self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running process group registered with a [`Cancel`] handle; dropping
/// it unregisters the group.
#[derive(Debug)]
pub(super) struct ProcessGroup<'c> {
    cancel: &'c Cancel,
    group: Pid,
}

impl ProcessGroup<'_> {
    /// Sends `signal` to every process in the group.
    pub(super) fn signal(&self, signal: Signal) {
        signal_group(self.group, signal);
    }
}

impl Drop for ProcessGroup<'_> {
    fn drop(&mut self) {
        let groups = &mut self.cancel.state().groups;
        if let Some(position) = groups.iter().position(|&group| group == self.group) {
            groups.swap_remove(position);
        }
    }
}

/// Sends `signal` to the process group `group`; a group that is gone
/// already is fine. Never to the group of `init`.
fn signal_group(group: Pid, signal: Signal) {
    if group != Pid::INIT {
        // ESRCH, a group that is gone, is deliberately ignored.
        let _ = kill_process_group(group, signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_handle_stays_cancelled() {
        let cancel = Cancel::new();
        assert!(!cancel.is_cancelled());
        cancel.clone().cancel();
        assert!(cancel.is_cancelled());
        cancel.cancel();
        assert!(cancel.is_cancelled());
    }

    #[test]
    fn a_cancel_waits_out_the_grace_and_a_second_kills_at_once() {
        let cancel = Cancel::new();
        cancel.set_grace(Duration::from_secs(60));
        assert_eq!(cancel.kill_deadline(), None);
        cancel.cancel();
        let deadline = cancel.kill_deadline().expect("a grace runs");
        assert!(deadline > Instant::now() + Duration::from_secs(50));
        cancel.enforce_grace();
        assert_eq!(cancel.kill_deadline(), Some(deadline));
        cancel.cancel();
        assert_eq!(cancel.kill_deadline(), None, "killing at once");
    }

    #[test]
    fn the_grace_ends_in_a_kill() {
        let cancel = Cancel::new();
        cancel.set_grace(Duration::from_millis(1));
        cancel.cancel();
        std::thread::sleep(Duration::from_millis(5));
        cancel.enforce_grace();
        assert_eq!(cancel.kill_deadline(), None);
        assert!(cancel.is_cancelled());
    }
}
