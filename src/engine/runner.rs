//! Running one instance's command: the [`Runner`] trait, the real
//! [`ShellRunner`], the [`ScriptedRunner`] for tests, and the [`Cancel`]
//! handle that stops what runs.
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
//! * The command runs as `/bin/sh -c COMMAND`, in its own process group
//!   (`process_group(0)`, so the group id is the child's pid), with stdin
//!   from `/dev/null`. Because the group is not the terminal's foreground
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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

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
        [
            ("STAGECRAFT_ENV", self.env),
            ("STAGECRAFT_VERSION", self.version),
            ("STAGECRAFT_RELEASE", self.release),
            ("STAGECRAFT_PHASE", self.phase),
            ("STAGECRAFT_SERVICE", self.service.unwrap_or("")),
        ]
    }
}

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

/// Runs one attempt of one instance's command. Implementations are shared
/// by the executor's worker threads.
pub trait Runner: Send + Sync {
    /// Runs `job`, passing each line of its output to `output`, and returns
    /// how it ended. It must return promptly once `job.cancel` is
    /// cancelled.
    fn run(&self, job: &Job<'_>, output: &mut dyn FnMut(&str)) -> Outcome;
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
}

impl Default for ShellRunner {
    fn default() -> Self {
        Self {
            shell: PathBuf::from("/bin/sh"),
            grace: Duration::from_secs(2),
            direct: true,
            programs: Arc::default(),
        }
    }
}

impl Runner for ShellRunner {
    fn run(&self, job: &Job<'_>, output: &mut dyn FnMut(&str)) -> Outcome {
        let words = if self.direct { direct_words(job.command) } else { None };
        let spawned = match words {
            // A failed direct spawn goes through the shell, which reports
            // it as a shell would (and exits 127 or 126).
            Some(words) => self.spawn(job, Some(&words)).or_else(|_| self.spawn(job, None)),
            None => self.spawn(job, None),
        };
        match spawned {
            Ok((child, reader)) => self.supervise(job, child, reader, output),
            Err(error) => Outcome::SpawnFailed(format!("cannot run `sh` in {}: {error}", job.dir.display())),
        }
    }
}

impl ShellRunner {
    /// Spawns the command (directly when `words` is given) with its output
    /// going to a new pipe, and returns the child and the pipe's read end.
    fn spawn(&self, job: &Job<'_>, words: Option<&[&str]>) -> io::Result<(Child, io::PipeReader)> {
        let mut command = if let Some([program, args @ ..]) = words {
            let mut command = Command::new(self.resolve(program).ok_or(io::ErrorKind::NotFound)?);
            command.args(args);
            command
        } else {
            let mut command = Command::new(&self.shell);
            command.arg("-c").arg(job.command);
            command
        };
        let (reader, writer) = io::pipe()?;
        command
            .current_dir(job.dir)
            .envs(job.variables())
            .stdin(Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(writer)
            .process_group(0);
        let child = command.spawn()?;
        // Closes this process's copies of the write end, so that the read
        // end sees the end of the output when the command's processes exit.
        drop(command);
        Ok((child, reader))
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

    /// Reads the output until the end, enforcing the timeout, then reaps
    /// the child.
    fn supervise(
        &self,
        job: &Job<'_>,
        mut child: Child,
        mut reader: io::PipeReader,
        output: &mut dyn FnMut(&str),
    ) -> Outcome {
        let group = job.cancel.register(child.id());
        let mut lines = LineSplitter::default();
        let mut deadline = job.timeout.map(|timeout| Instant::now() + timeout);
        let mut timed_out = false;
        let mut killed = false;
        let mut buffer = [0_u8; 8192];
        loop {
            let wait = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            if wait == Some(Duration::ZERO) {
                if !timed_out {
                    timed_out = true;
                    group.signal(libc::SIGTERM);
                } else if !killed {
                    killed = true;
                    group.signal(libc::SIGKILL);
                } else {
                    // Something outside the group still holds the pipe.
                    break;
                }
                deadline = Some(Instant::now() + self.grace);
                continue;
            }
            match wait_readable(reader.as_raw_fd(), wait) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
            match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => lines.push(&buffer[..read], output),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        lines.finish(output);
        if timed_out {
            // Nothing a timed-out command started outlives it.
            group.signal(libc::SIGKILL);
        }
        // Unregister before reaping: once reaped, the group id may be reused.
        drop(group);
        let status = match child.wait() {
            Ok(status) => status,
            Err(error) => return Outcome::SpawnFailed(format!("cannot wait for the command: {error}")),
        };
        if timed_out {
            Outcome::TimedOut
        } else if job.cancel.is_cancelled() && !status.success() {
            Outcome::Interrupted
        } else if let Some(code) = status.code() {
            Outcome::Exited(code)
        } else {
            Outcome::Signalled(status.signal().unwrap_or(0))
        }
    }
}

/// Waits until `fd` is readable (or at its end), at most `wait` (forever
/// when `None`). `Ok(false)` when the time passed.
fn wait_readable(fd: RawFd, wait: Option<Duration>) -> io::Result<bool> {
    let timeout = match wait {
        None => -1,
        // Round up, so that a wait never ends before the deadline.
        Some(wait) => i32::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(i32::MAX),
    };
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `poll` points to one valid, initialised pollfd for the whole
    // call, and the count passed is 1.
    let ready = unsafe { libc::poll(&raw mut poll, 1, timeout) };
    if ready < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ready > 0)
    }
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

/// A runner for tests: no processes, outcomes and output scripted per
/// instance id and attempt. Unscripted attempts exit 0 with no output.
#[derive(Debug, Default)]
pub struct ScriptedRunner {
    outcomes: BTreeMap<(String, u32), Outcome>,
    always: BTreeMap<String, Outcome>,
    output: BTreeMap<String, Vec<String>>,
    delays: BTreeMap<String, Duration>,
    interrupts: BTreeSet<String>,
    calls: Mutex<Vec<Call>>,
    running: AtomicUsize,
    most: AtomicUsize,
}

/// One attempt a [`ScriptedRunner`] was asked to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The instance's id.
    pub id: String,
    /// The attempt.
    pub attempt: u32,
    /// The command.
    pub command: String,
    /// The working directory.
    pub dir: PathBuf,
    /// The `STAGECRAFT_*` variables, as [`Job::variables`] gives them.
    pub variables: Vec<(String, String)>,
    /// The timeout.
    pub timeout: Option<Duration>,
}

impl ScriptedRunner {
    /// A runner where every attempt exits 0.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Attempt `attempt` of `id` ends with `outcome`.
    #[must_use]
    pub fn on(mut self, id: &str, attempt: u32, outcome: Outcome) -> Self {
        self.outcomes.insert((id.to_owned(), attempt), outcome);
        self
    }

    /// Every attempt of `id` not scripted with [`ScriptedRunner::on`] ends
    /// with `outcome`.
    #[must_use]
    pub fn always(mut self, id: &str, outcome: Outcome) -> Self {
        self.always.insert(id.to_owned(), outcome);
        self
    }

    /// Every attempt of `id` prints these lines.
    #[must_use]
    pub fn output(mut self, id: &str, lines: &[&str]) -> Self {
        self.output
            .insert(id.to_owned(), lines.iter().map(|&line| line.to_owned()).collect());
        self
    }

    /// Every attempt of `id` takes this long (less if the run is
    /// cancelled meanwhile: then it ends [`Outcome::Interrupted`]).
    #[must_use]
    pub fn delay(mut self, id: &str, delay: Duration) -> Self {
        self.delays.insert(id.to_owned(), delay);
        self
    }

    /// When `id` runs, the run is cancelled (as Ctrl-C would) and `id`
    /// ends [`Outcome::Interrupted`].
    #[must_use]
    pub fn interrupt(mut self, id: &str) -> Self {
        self.interrupts.insert(id.to_owned());
        self
    }

    /// Every attempt run so far, in the order they started.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The most attempts that ran at the same time.
    pub fn most_at_once(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }
}

impl Runner for ScriptedRunner {
    fn run(&self, job: &Job<'_>, output: &mut dyn FnMut(&str)) -> Outcome {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).push(Call {
            id: job.id.to_owned(),
            attempt: job.attempt,
            command: job.command.to_owned(),
            dir: job.dir.to_owned(),
            variables: job
                .variables()
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            timeout: job.timeout,
        });
        let running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(running, Ordering::SeqCst);
        let outcome = self.script(job, output);
        self.running.fetch_sub(1, Ordering::SeqCst);
        outcome
    }
}

impl ScriptedRunner {
    fn script(&self, job: &Job<'_>, output: &mut dyn FnMut(&str)) -> Outcome {
        for line in self.output.get(job.id).into_iter().flatten() {
            output(line);
        }
        if self.interrupts.contains(job.id) {
            job.cancel.cancel();
            return Outcome::Interrupted;
        }
        if let Some(&delay) = self.delays.get(job.id) {
            let end = Instant::now() + delay;
            while Instant::now() < end {
                if job.cancel.is_cancelled() {
                    return Outcome::Interrupted;
                }
                std::thread::sleep(Duration::from_millis(2).min(end.saturating_duration_since(Instant::now())));
            }
        }
        self.outcomes
            .get(&(job.id.to_owned(), job.attempt))
            .or_else(|| self.always.get(job.id))
            .cloned()
            .unwrap_or(Outcome::Exited(0))
    }
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
