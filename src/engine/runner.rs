//! Running one instance's command: the [`Runner`] trait and its running
//! [`Attempt`]s, the real [`ShellRunner`], and the [`Cancel`] handle that
//! stops what runs. (Tests use the `ScriptedRunner` of `scripted.rs`.)
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
//! Every command sees the inherited environment plus `STAGECRAFT_ENV`,
//! `STAGECRAFT_VERSION`, `STAGECRAFT_RELEASE`, `STAGECRAFT_PHASE` and
//! `STAGECRAFT_SERVICE`. `STAGECRAFT_SERVICE` is **always set**: to the
//! service's name for a per-service instance, and to the empty string for a
//! global phase (so scripts under `set -u` can read it, and a value
//! inherited from an outer stagecraft never leaks in).
//!
//! # How [`ShellRunner`] runs a command
//!
//! * The command runs as `/bin/sh -c COMMAND`, started with
//!   `posix_spawn` (as ninja does; see `spawn.rs`) in its own process group
//!   (so the group id is the child's pid), with stdin from `/dev/null`,
//!   `SIGPIPE` back to its default and the inherited environment as it was
//!   when the runner was made, plus the variables above. Because the group is not the terminal's foreground
//!   group, Ctrl-C reaches only stagecraft, which then kills the groups
//!   (see below).
//! * **Direct spawn.** A command with no shell syntax at all is spawned
//!   directly, without `sh`: it must be words separated by spaces or tabs,
//!   each made only of ASCII letters, digits and `-_./=:,+@%`, the first
//!   word holding no `=` (an assignment) and not being a shell keyword or a
//!   builtin whose behaviour differs from a program of that name (`cd`,
//!   `exit`, `export`, `echo`, `:`, …, see `SHELL_WORDS`). Anything else
//!   (quotes, `$`, globs, `;`, `|`, `&`, redirections, newlines, `~`, `#`,
//!   backslashes, brackets, braces, non-ASCII, …) goes through `sh -c`. If
//!   the direct spawn fails (program not found, not executable), the
//!   command is run through `sh -c` after all, so the error message and the
//!   exit code (127, 126) are exactly the shell's.
//! * **Output.** stdout and stderr are the write ends of *one* pipe, so
//!   their lines reach the callback in the order the command wrote them.
//!   The runner reads until every process holding the pipe has closed it
//!   (like ninja): a background process that keeps the output open keeps
//!   the instance running until it exits, or until the timeout. Lines
//!   longer than 64 KiB are split.
//! * **Timeout.** When the timeout passes, the whole process group gets
//!   `SIGTERM`; if the pipe is still open [`ShellRunner::grace`] later (2 s
//!   by default), the group gets `SIGKILL`. In every case the group gets a
//!   final `SIGKILL` before the leader is reaped, so nothing started by a
//!   timed-out command outlives it. The outcome is [`Outcome::TimedOut`].
//! * **Cancellation.** [`Cancel::cancel`] (called by the CLI on Ctrl-C)
//!   sends `SIGKILL` at once to the process group of every command running
//!   under that handle — a hard stop, without the grace a timeout gets —
//!   and makes every later registration kill its group at once. A command
//!   that ends unsuccessfully once the handle is cancelled is reported as
//!   [`Outcome::Interrupted`].
//! * A process group is only signalled while its leader is not yet reaped,
//!   so its id cannot have been reused by an unrelated process.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::spawn::Spawner;

/// One attempt of one instance, as a runner sees it.
#[derive(Clone, Copy, Debug)]
pub struct Job<'a> {
    /// Position of the instance in the plan.
    pub instance: usize,
    /// The instance's id, `build[api]` or `migrate`.
    pub id: &'a str,
    /// 1 for the first attempt.
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
    /// Kill the command's process group after this long.
    pub timeout: Option<Duration>,
    /// The run's cancellation handle.
    pub cancel: &'a Cancel,
}

impl<'a> Job<'a> {
    /// The variables every command sees, in addition to the inherited
    /// environment. `STAGECRAFT_SERVICE` is empty for a global phase.
    #[must_use]
    pub fn variables(&self) -> [(&'static str, &'a str); 5] {
        let [env, version, release, phase, service] = VARIABLES;
        [
            (env, self.env),
            (version, self.version),
            (release, self.release),
            (phase, self.phase),
            (service, self.service.unwrap_or("")),
        ]
    }
}

/// The names of [`Job::variables`], in order.
const VARIABLES: [&str; 5] = [
    "STAGECRAFT_ENV",
    "STAGECRAFT_VERSION",
    "STAGECRAFT_RELEASE",
    "STAGECRAFT_PHASE",
    "STAGECRAFT_SERVICE",
];

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
    fn start<'a>(&'a self, job: &Job<'a>) -> Box<dyn Attempt + 'a>;

    /// Runs `job` to its end on this thread, passing each line of its
    /// output to `output`.
    fn run(&self, job: &Job<'_>, output: &mut dyn FnMut(&str)) -> Outcome {
        let mut attempt = self.start(job);
        loop {
            if let Some(outcome) = attempt.poll(output) {
                return outcome;
            }
            let until = attempt.deadline().unwrap_or_else(|| Instant::now() + IDLE);
            let _ = wait_readable(attempt.fd().as_slice(), until.min(Instant::now() + IDLE));
        }
    }
}

/// One running attempt. The executor calls [`poll`](Self::poll) when its
/// descriptor is readable, when its deadline has passed, and at least every
/// 50 ms; `poll` never blocks for long. It must end promptly once the job's
/// [`Cancel`] handle is cancelled.
pub trait Attempt {
    /// The descriptor that becomes readable when the attempt has something
    /// to do (output, or its end), if it has one.
    fn fd(&self) -> Option<RawFd>;

    /// When it must be polled even if nothing is readable (a timeout).
    fn deadline(&self) -> Option<Instant>;

    /// Passes on the output there is, acts on a deadline that has passed,
    /// and returns how the attempt ended once it has.
    fn poll(&mut self, output: &mut dyn FnMut(&str)) -> Option<Outcome>;
}

/// The longest [`Runner::run`] waits without polling its attempt.
const IDLE: Duration = Duration::from_millis(50);

/// Waits until one of `fds` is readable (or at its end), or until `until`.
/// Returns which are readable (none when the time passed or a signal came).
///
/// # Errors
///
/// `poll` failed.
pub(crate) fn wait_readable(fds: &[RawFd], until: Instant) -> io::Result<Vec<bool>> {
    let wait = until.saturating_duration_since(Instant::now());
    // Round up, so that a wait never ends before `until`.
    let timeout = i32::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
    let mut polls: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let count = libc::nfds_t::try_from(polls.len()).unwrap_or(libc::nfds_t::MAX);
    // SAFETY: `polls` is a valid array of `count` initialised pollfds for
    // the whole call.
    let ready = unsafe { libc::poll(polls.as_mut_ptr(), count, timeout) };
    if ready < 0 {
        let error = io::Error::last_os_error();
        if error.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(error);
    }
    Ok(polls.iter().map(|poll| poll.revents != 0).collect())
}

/// A run's cancellation handle: cloned freely, shared with the Ctrl-C
/// handler. Cancelling kills the process group of every command running
/// under it and tells the executor to stop.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<CancelInner>);

#[derive(Debug, Default)]
struct CancelInner {
    cancelled: AtomicBool,
    /// Process groups of the commands running now.
    groups: Mutex<Vec<libc::pid_t>>,
}

impl Cancel {
    /// A handle that is not cancelled.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels the run: kills (`SIGKILL`) the process group of every
    /// command running under this handle, and of every one registered
    /// later. Safe to call from any thread, any number of times.
    pub fn cancel(&self) {
        let groups = self.groups();
        self.0.cancelled.store(true, Ordering::SeqCst);
        for &group in groups.iter() {
            signal_group(group, libc::SIGKILL);
        }
    }

    /// Whether [`Cancel::cancel`] was called.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// Registers the process group `group` (a child spawned with
    /// `process_group(0)`: its pid) as running, until the returned guard
    /// is dropped; drop it before reaping the child. If the handle is
    /// already cancelled, the group is killed at once.
    #[must_use]
    pub fn register(&self, group: u32) -> ProcessGroup<'_> {
        let group = libc::pid_t::try_from(group).unwrap_or(libc::pid_t::MAX);
        let mut groups = self.groups();
        groups.push(group);
        if self.is_cancelled() {
            signal_group(group, libc::SIGKILL);
        }
        ProcessGroup { cancel: self, group }
    }

    fn groups(&self) -> MutexGuard<'_, Vec<libc::pid_t>> {
        self.0.groups.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running process group registered with a [`Cancel`] handle; dropping
/// it unregisters the group.
#[derive(Debug)]
pub struct ProcessGroup<'c> {
    cancel: &'c Cancel,
    group: libc::pid_t,
}

impl ProcessGroup<'_> {
    /// Sends `signal` to every process in the group.
    pub fn signal(&self, signal: i32) {
        signal_group(self.group, signal);
    }
}

impl Drop for ProcessGroup<'_> {
    fn drop(&mut self) {
        let mut groups = self.cancel.groups();
        if let Some(position) = groups.iter().position(|&group| group == self.group) {
            groups.swap_remove(position);
        }
    }
}

/// Sends `signal` to the process group `group`; a group that is gone
/// already is fine.
fn signal_group(group: libc::pid_t, signal: i32) {
    if group > 1 {
        // SAFETY: killpg has no memory-safety preconditions; errors (ESRCH
        // for a group that is gone) are deliberately ignored.
        unsafe {
            libc::killpg(group, signal);
        }
    }
}

/// The real runner: `sh -c` (or a direct spawn) in a process group.
#[derive(Clone, Debug)]
pub struct ShellRunner {
    /// The shell, `/bin/sh`.
    pub shell: PathBuf,
    /// After a timeout's `SIGTERM`, how long to wait before `SIGKILL`.
    pub grace: Duration,
    /// Spawn commands without shell syntax directly (see the module docs).
    pub direct: bool,
    /// Programs already looked up in `PATH`, so a direct spawn tries one
    /// `execve` instead of one per `PATH` entry.
    programs: Arc<Mutex<HashMap<String, Option<PathBuf>>>>,
    /// The environment commands inherit, read when the runner is made.
    spawner: Arc<Spawner>,
}

impl Default for ShellRunner {
    fn default() -> Self {
        Self {
            shell: PathBuf::from("/bin/sh"),
            grace: Duration::from_secs(2),
            direct: true,
            programs: Arc::default(),
            spawner: Arc::new(Spawner::new(&VARIABLES)),
        }
    }
}

impl Runner for ShellRunner {
    fn start<'a>(&'a self, job: &Job<'a>) -> Box<dyn Attempt + 'a> {
        let words = if self.direct { direct_words(job.command) } else { None };
        let spawned = match words {
            // A failed direct spawn goes through the shell, which reports
            // it as a shell would (and exits 127 or 126).
            Some(words) => self.spawn(job, Some(&words)).or_else(|_| self.spawn(job, None)),
            None => self.spawn(job, None),
        };
        match spawned {
            Ok((pid, reader)) => Box::new(ShellAttempt {
                group: Some(job.cancel.register(pid.cast_unsigned())),
                pid,
                reaped: false,
                reader: Some(reader),
                exit: None,
                cancel: job.cancel,
                lines: LineSplitter::default(),
                deadline: job.timeout.map(|timeout| Instant::now() + timeout),
                timed_out: false,
                killed: false,
                grace: self.grace,
            }),
            Err(error) => Box::new(Failed(Some(format!(
                "cannot run `sh` in {}: {error}",
                job.dir.display()
            )))),
        }
    }
}

impl ShellRunner {
    /// Spawns the command (directly when `words` is given) with its output
    /// going to a new pipe, and returns its pid and the pipe's read end
    /// (which does not block).
    fn spawn(&self, job: &Job<'_>, words: Option<&[&str]>) -> io::Result<(libc::pid_t, io::PipeReader)> {
        let (program, args): (PathBuf, Vec<&OsStr>) = match words {
            Some([program, args @ ..]) => (
                self.resolve(program).ok_or(io::ErrorKind::NotFound)?,
                args.iter().map(OsStr::new).collect(),
            ),
            _ => (self.shell.clone(), vec![OsStr::new("-c"), OsStr::new(job.command)]),
        };
        let (reader, writer) = io::pipe()?;
        set_nonblocking(reader.as_raw_fd())?;
        let pid = self
            .spawner
            .spawn(&program, &args, job.dir, &job.variables(), writer.as_raw_fd())?;
        // The write end closes here: the read end sees the end of the
        // output when the command's processes have closed their copies.
        drop(writer);
        Ok((pid, reader))
    }

    /// `program` as a path: itself if it has a `/`, else the first
    /// executable file of that name in `PATH` (looked up once per name).
    fn resolve(&self, program: &str) -> Option<PathBuf> {
        if program.contains('/') {
            return Some(PathBuf::from(program));
        }
        let mut programs = self.programs.lock().unwrap_or_else(PoisonError::into_inner);
        programs
            .entry(program.to_owned())
            .or_insert_with(|| {
                let path = std::env::var_os("PATH")?;
                std::env::split_paths(&path)
                    .map(|dir| dir.join(program))
                    .find(|candidate| {
                        std::fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                    })
            })
            .clone()
    }
}

/// Makes `fd` non-blocking.
fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor this process owns, with integer
    // arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An attempt that could not start.
struct Failed(Option<String>);

impl Attempt for Failed {
    fn fd(&self) -> Option<RawFd> {
        None
    }

    fn deadline(&self) -> Option<Instant> {
        None
    }

    fn poll(&mut self, _output: &mut dyn FnMut(&str)) -> Option<Outcome> {
        Some(Outcome::SpawnFailed(self.0.take().unwrap_or_default()))
    }
}

/// A command [`ShellRunner`] started: its output is read until every
/// process holding the pipe has closed it, then the leader is reaped.
struct ShellAttempt<'a> {
    /// The leader: the process spawned, whose pid is the group's id.
    pid: libc::pid_t,
    reaped: bool,
    /// `None` once the output has ended.
    reader: Option<io::PipeReader>,
    /// Registered with the cancel handle until the leader is reaped.
    group: Option<ProcessGroup<'a>>,
    /// After the output ended, while the leader has not exited: a
    /// descriptor readable once it has (a pidfd).
    exit: Option<OwnedFd>,
    cancel: &'a Cancel,
    lines: LineSplitter,
    /// When to escalate: the timeout, then `grace` after each signal.
    deadline: Option<Instant>,
    timed_out: bool,
    killed: bool,
    grace: Duration,
}

/// How long a leader whose output ended is waited for before the executor
/// goes on and watches for its exit (see [`ShellAttempt::exits_soon`]).
const EXIT_SPIN: Duration = Duration::from_micros(500);

/// How many reads one poll does at most, so that a chatty command does not
/// keep the executor from the others.
const READS_PER_POLL: usize = 16;

impl Attempt for ShellAttempt<'_> {
    fn fd(&self) -> Option<RawFd> {
        match (&self.reader, &self.exit) {
            (Some(reader), _) => Some(reader.as_raw_fd()),
            (None, Some(exit)) => Some(exit.as_raw_fd()),
            (None, None) => None,
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    fn poll(&mut self, output: &mut dyn FnMut(&str)) -> Option<Outcome> {
        if self.deadline.is_some_and(|deadline| deadline <= Instant::now()) {
            self.escalate(output);
        }
        if let Some(reader) = &mut self.reader {
            let mut buffer = [0_u8; 8192];
            let mut reads = 0;
            loop {
                match reader.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(read) => self.lines.push(&buffer[..read], output),
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => return None,
                    Err(_) => break,
                }
                reads += 1;
                if reads == READS_PER_POLL {
                    return None;
                }
            }
            self.end_output(output);
        }
        let exited = self.exited() || (self.exit.is_none() && self.exits_soon());
        if !exited {
            if self.exit.is_none() {
                match pidfd(self.pid) {
                    Some(fd) => self.exit = Some(fd),
                    // No pidfd: wait here, as the output has ended.
                    None => return Some(self.reap()),
                }
            }
            return None;
        }
        Some(self.reap())
    }
}

impl ShellAttempt<'_> {
    /// The deadline passed: `SIGTERM` at the timeout, `SIGKILL` a grace
    /// later, and after another grace stop waiting for the output
    /// (something outside the group still holds the pipe).
    fn escalate(&mut self, output: &mut dyn FnMut(&str)) {
        if !self.timed_out {
            self.timed_out = true;
            self.signal(libc::SIGTERM);
        } else if !self.killed {
            self.killed = true;
            self.signal(libc::SIGKILL);
        } else {
            self.end_output(output);
        }
        self.deadline = Some(Instant::now() + self.grace);
    }

    fn signal(&self, signal: i32) {
        if let Some(group) = &self.group {
            group.signal(signal);
        }
    }

    fn end_output(&mut self, output: &mut dyn FnMut(&str)) {
        if self.reader.take().is_some() {
            self.lines.finish(output);
            if self.timed_out {
                // Nothing a timed-out command started outlives it.
                self.signal(libc::SIGKILL);
            }
        }
    }

    /// Whether the leader has exited, without reaping it (so that its
    /// group id cannot be reused while the group is registered).
    fn exited(&self) -> bool {
        let pid = self.pid.cast_unsigned();
        // SAFETY: an all-zero siginfo_t is a valid value; waitid fills it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is valid for writes; WNOWAIT leaves the child
        // unreaped.
        let result = unsafe {
            libc::waitid(
                libc::P_PID,
                pid,
                &raw mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: waitid returned, so `info` is initialised (si_pid stays 0
        // while the child has not exited).
        result != 0 || unsafe { info.si_pid() } != 0
    }

    /// Right after its output ends the leader is usually exiting already
    /// (it closes its files before it becomes a zombie): waits for that a
    /// little, without going back to `poll`.
    fn exits_soon(&self) -> bool {
        let until = Instant::now() + EXIT_SPIN;
        while Instant::now() < until {
            std::thread::yield_now();
            if self.exited() {
                return true;
            }
        }
        false
    }

    /// Reaps the leader and says how the attempt ended.
    fn reap(&mut self) -> Outcome {
        // Unregister before reaping: once reaped, the group id may be reused.
        self.group = None;
        self.exit = None;
        let status = match wait_for(self.pid) {
            Ok(status) => status,
            Err(error) => return Outcome::SpawnFailed(format!("cannot wait for the command: {error}")),
        };
        self.reaped = true;
        if self.timed_out {
            Outcome::TimedOut
        } else if self.cancel.is_cancelled() && !status.success() {
            Outcome::Interrupted
        } else if let Some(code) = status.code() {
            Outcome::Exited(code)
        } else {
            Outcome::Signalled(status.signal().unwrap_or(0))
        }
    }
}

/// An attempt dropped before its end (the executor stopped on an error) is
/// killed and reaped, so that it leaves no zombie behind.
impl Drop for ShellAttempt<'_> {
    fn drop(&mut self) {
        if !self.reaped {
            self.signal(libc::SIGKILL);
            self.group = None;
            let _ = wait_for(self.pid);
        }
    }
}

/// Waits for the child `pid` to exit and reaps it.
fn wait_for(pid: libc::pid_t) -> io::Result<ExitStatus> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes the status to a valid int.
        if unsafe { libc::waitpid(pid, &raw mut status, 0) } == pid {
            return Ok(ExitStatus::from_raw(status));
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// A descriptor that becomes readable when the child `pid` exits, where
/// the system has them (Linux's pidfd).
#[cfg(target_os = "linux")]
fn pidfd(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new
    // descriptor, or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = RawFd::try_from(fd).ok().filter(|&fd| fd >= 0)?;
    // SAFETY: `fd` was just returned by pidfd_open: this process owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(not(target_os = "linux"))]
fn pidfd(_pid: libc::pid_t) -> Option<OwnedFd> {
    None
}

/// The longest line passed on whole; longer ones are split.
const MAX_LINE: usize = 64 * 1024;

/// Splits bytes read from a pipe into lines.
#[derive(Default)]
struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    fn push(&mut self, mut bytes: &[u8], output: &mut dyn FnMut(&str)) {
        while let Some(end) = bytes.iter().position(|&byte| byte == b'\n') {
            self.partial.extend_from_slice(&bytes[..end]);
            self.emit(output);
            bytes = &bytes[end + 1..];
        }
        self.partial.extend_from_slice(bytes);
        while self.partial.len() >= MAX_LINE {
            let rest = self.partial.split_off(MAX_LINE);
            self.emit(output);
            self.partial = rest;
        }
    }

    fn finish(&mut self, output: &mut dyn FnMut(&str)) {
        if !self.partial.is_empty() {
            self.emit(output);
        }
    }

    fn emit(&mut self, output: &mut dyn FnMut(&str)) {
        output(&String::from_utf8_lossy(&self.partial));
        self.partial.clear();
    }
}

/// Shell keywords and builtins that must not be spawned as programs: they
/// exist only in the shell, or a program of that name behaves differently.
const SHELL_WORDS: &[&str] = &[
    "!", ".", ":", "[", "[[", "{", "}", "alias", "bg", "break", "case", "cd", "command", "continue", "do", "done",
    "echo", "elif", "else", "esac", "eval", "exec", "exit", "export", "fc", "fg", "fi", "for", "function", "getopts",
    "hash", "if", "in", "jobs", "local", "printf", "pwd", "read", "readonly", "return", "select", "set", "shift",
    "source", "then", "time", "times", "trap", "type", "ulimit", "umask", "unalias", "unset", "until", "wait", "while",
];

/// The words of `command` when it can be spawned without a shell (see the
/// module docs), else `None`.
fn direct_words(command: &str) -> Option<Vec<&str>> {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !command.chars().all(|c| c == ' ' || c == '\t' || safe(c)) {
        return None;
    }
    let words: Vec<&str> = command.split([' ', '\t']).filter(|word| !word.is_empty()).collect();
    let first = *words.first()?;
    if first.contains('=') || SHELL_WORDS.contains(&first) {
        return None;
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_are_spawned_directly() {
        assert_eq!(direct_words("true"), Some(vec!["true"]));
        assert_eq!(
            direct_words("  ./bin/migrate --pre\tprod "),
            Some(vec!["./bin/migrate", "--pre", "prod"])
        );
        assert_eq!(
            direct_words("docker build -t host:5000/app-api:1.2+b@x%y,z services/api --flag=1"),
            Some(vec![
                "docker",
                "build",
                "-t",
                "host:5000/app-api:1.2+b@x%y,z",
                "services/api",
                "--flag=1"
            ])
        );
    }

    #[test]
    fn shell_syntax_goes_through_sh() {
        for command in [
            "", "   ", "echo hi", "cd x", "exit 3", ": ok", "A=1 env", "a 'b'", "a \"b\"", "a $HOME", "a *", "a ?",
            "a; b", "a | b", "a & b", "a > f", "a < f", "a\nb", "a ~", "a #c", "a \\b", "(a)", "a {b}", "a [b]", "a !",
            "a `b`", "héllo", "a\rb", "set -e",
        ] {
            assert_eq!(direct_words(command), None, "{command:?}");
        }
    }

    #[test]
    fn lines_are_split_across_reads() {
        let mut lines = Vec::new();
        let mut output = |line: &str| lines.push(line.to_owned());
        let mut splitter = LineSplitter::default();
        splitter.push(b"one\ntw", &mut output);
        splitter.push(b"o\n\nthree", &mut output);
        splitter.finish(&mut output);
        assert_eq!(lines, ["one", "two", "", "three"]);
    }

    #[test]
    fn long_lines_are_split() {
        let mut lines = Vec::new();
        let mut output = |line: &str| lines.push(line.len());
        let mut splitter = LineSplitter::default();
        splitter.push(&vec![b'x'; MAX_LINE * 2 + 5], &mut output);
        splitter.finish(&mut output);
        assert_eq!(lines, [MAX_LINE, MAX_LINE, 5]);
    }

    #[test]
    fn a_cancelled_handle_stays_cancelled() {
        let cancel = Cancel::new();
        assert!(!cancel.is_cancelled());
        cancel.clone().cancel();
        assert!(cancel.is_cancelled());
        cancel.cancel();
        assert!(cancel.is_cancelled());
    }
}
