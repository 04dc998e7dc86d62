//! [`ShellRunner`], the real runner, and its running attempts: spawning
//! (`spawn`), the shell-syntax detector (`detect`), script files for long
//! commands (`script`), reading the output and reaping the process.
//!
//! # How [`ShellRunner`] runs a command
//!
//! * The command runs as `/bin/sh -e -c COMMAND` (`-e -o pipefail` when
//!   that shell has `pipefail`, see **Errexit**), started with
//!   `posix_spawn` (as ninja does; see `spawn.rs`) in its own process group
//!   (so the group id is the child's pid), with stdin from `/dev/null`,
//!   `SIGPIPE` back to its default and the inherited environment as it was
//!   when the runner was made, without `STAGECRAFT_STATE_DIR` and `STAGECRAFT_FILE`, plus the
//!   run's secrets ([`ShellRunner::with_secrets`]) and the
//!   variables of [`Job::variables`]. Because the group is not the terminal's foreground
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
//! * **Long commands.** A command longer than 64 KiB, or whose spawn fails
//!   with `E2BIG`, is written to a script file (see `script.rs`) in
//!   [`ShellRunner::script_dir`] and run as `/bin/sh -e [-o pipefail]
//!   FILE`; the file is removed with the attempt.
//! * **Recorded.** Each child's [`Child::process`] is its group and its
//!   start time (the tick of `CLOCK_BOOTTIME` seen on both sides of the
//!   spawn, else from `/proc`: see `procfs.rs`), which the executor
//!   records so that a command recovering a run killed outright can stop
//!   it.
//! * **Errexit.** The shell runs with `-e`, so a script (one line or many)
//!   stops at its first failing command, with that command's exit code, as
//!   GitHub Actions, GitLab CI and `just` do. When `/bin/sh` accepts
//!   `-o pipefail` (bash, busybox, the BSD shells, recent dash; not dash
//!   0.5.12, Debian 12's), it runs with that too, so a pipeline fails when any of its
//!   commands does. Whether it does is asked once per runner, the first
//!   time a command goes through the shell: `sh -o pipefail -c :` must exit
//!   0 (one extra process per run, none per command).
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
//!   sends `SIGTERM` to the process group of every command running under
//!   that handle (and of every one registered later), and `SIGKILL` once
//!   the handle's grace has passed: each attempt's deadline includes the
//!   end of the grace, and polling it then calls
//!   [`Cancel::enforce_grace`]. A second cancel, or
//!   [`Cancel::kill_now`], sends `SIGKILL` at once. A command that ends
//!   unsuccessfully once the handle is cancelled is reported as
//!   [`Outcome::Interrupted`].
//! * A process group is only signalled while its leader is not yet reaped,
//!   so its id cannot have been reused by an unrelated process.

mod detect;
pub(crate) mod procfs;
mod script;
mod spawn;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::io::ioctl_fionbio;
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, WaitOptions, WaitStatus, waitid, waitpid};

use super::event::Process;
use super::output::LineSplitter;
use super::runner::{Cancel, Child, Job, NOT_INHERITED, Outcome, ProcessGroup, Runner, VARIABLES};
use detect::direct_words;
use script::{SCRIPT_THRESHOLD, Script};
use spawn::Spawner;

/// The real runner: `sh -c` (or a direct spawn) in a process group.
#[derive(Clone, Debug)]
pub struct ShellRunner {
    /// The shell, `/bin/sh`.
    pub shell: PathBuf,
    /// After a timeout's `SIGTERM`, how long to wait before `SIGKILL`.
    pub grace: Duration,
    /// Spawn commands without shell syntax directly (see the module docs).
    pub direct: bool,
    /// Where long commands' script files go; the temporary directory
    /// (`TMPDIR`, else `/tmp`) when `None`. The CLI gives a directory of
    /// the state, where the next run of the env removes what a run killed
    /// outright left behind.
    pub script_dir: Option<PathBuf>,
    /// Programs already looked up in `PATH`, so a direct spawn tries one
    /// `execve` instead of one per `PATH` entry.
    programs: Arc<Mutex<HashMap<String, Option<PathBuf>>>>,
    /// The environment commands inherit, read when the runner is made.
    spawner: Arc<Spawner>,
    /// Whether `shell` accepts `-o pipefail`, asked the first time a
    /// command goes through it.
    pipefail: Arc<OnceLock<bool>>,
}

impl Default for ShellRunner {
    fn default() -> Self {
        Self {
            shell: PathBuf::from("/bin/sh"),
            grace: Duration::from_secs(2),
            direct: true,
            script_dir: None,
            programs: Arc::default(),
            spawner: Arc::new(Spawner::new(&[&VARIABLES[..], &NOT_INHERITED[..]].concat())),
            pipefail: Arc::default(),
        }
    }
}

impl Runner for ShellRunner {
    fn start<'a>(&'a self, job: &Job<'a>) -> Box<dyn Child + 'a> {
        let before = procfs::Tick::now();
        let spawned = self.spawn_command(job);
        let after = procfs::Tick::now();
        match spawned {
            Ok((pid, reader, script)) => Box::new(ShellChild {
                group: Some(job.cancel.register(pid)),
                // Not reaped yet, so `/proc` shows it (even if it exited).
                recorded: u32::try_from(pid.as_raw_nonzero().get()).ok().and_then(|raw| {
                    procfs::Tick::start_of(raw, before, after).map(|start| Process { group: raw, start })
                }),
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
                _script: script,
            }),
            Err(error) => Box::new(Failed(Some(format!(
                "cannot run `sh` in {}: {error}",
                job.dir.display()
            )))),
        }
    }
}

/// A spawned command, its output's read end, and its script file if it
/// runs from one.
type Spawned = (Pid, io::PipeReader, Option<Script>);

impl ShellRunner {
    /// Spawns the job's command: directly when it can be, else through
    /// the shell, from a script file when it is too long for an argument.
    fn spawn_command(&self, job: &Job<'_>) -> io::Result<Spawned> {
        let long = job.command.len() > SCRIPT_THRESHOLD;
        let words = if self.direct && !long {
            direct_words(job.command)
        } else {
            None
        };
        if let Some([program, args @ ..]) = words.as_deref() {
            let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
            let direct = self.resolve(program).ok_or(io::ErrorKind::NotFound.into());
            // A failed direct spawn goes through the shell, which reports
            // it as a shell would (and exits 127 or 126).
            if let Ok((pid, reader)) = direct.and_then(|program| self.spawn(job, &program, &args)) {
                return Ok((pid, reader, None));
            }
        }
        if !long {
            match self.spawn(job, &self.shell, &self.shell_args(OsStr::new(job.command), true)) {
                Err(error) if error.kind() == io::ErrorKind::ArgumentListTooLong => {}
                spawned => return spawned.map(|(pid, reader)| (pid, reader, None)),
            }
        }
        let script = Script::write(self.script_dir.as_deref(), job.command)?;
        let (pid, reader) = self.spawn(job, &self.shell, &self.shell_args(script.path().as_os_str(), false))?;
        Ok((pid, reader, Some(script)))
    }

    /// Spawns `program` with `args` with its output going to a new pipe,
    /// and returns it and the pipe's read end (which does not block).
    fn spawn(&self, job: &Job<'_>, program: &Path, args: &[&OsStr]) -> io::Result<(Pid, io::PipeReader)> {
        let (reader, writer) = io::pipe()?;
        ioctl_fionbio(&reader, true)?;
        // The write end moves into the spawn and closes there: the read end
        // sees the end of the output when the command's processes have
        // closed their copies.
        let pid = self.spawner.spawn(program, args, job.dir, &job.variables(), writer)?;
        Ok((pid, reader))
    }

    /// The shell's arguments: `-e [-o pipefail] -c COMMAND` for a command
    /// (`inline`), `-e [-o pipefail] FILE` for a script file.
    fn shell_args<'c>(&self, command: &'c OsStr, inline: bool) -> Vec<&'c OsStr> {
        let mut args: Vec<&OsStr> = vec![OsStr::new("-e")];
        if self.pipefail() {
            args.extend([OsStr::new("-o"), OsStr::new("pipefail")]);
        }
        if inline {
            args.push(OsStr::new("-c"));
        }
        args.push(command);
        args
    }

    /// This runner with a run's secrets in every command's environment,
    /// each as a variable of its name (never in a command line).
    #[must_use]
    pub fn with_secrets(mut self, secrets: &super::Secrets) -> Self {
        self.spawner = Arc::new(self.spawner.with(secrets.variables()));
        self
    }

    /// Whether the shell runs commands with `pipefail`: it does when it
    /// accepts `-o pipefail` (asked once, the first time).
    #[must_use]
    pub fn pipefail(&self) -> bool {
        *self.pipefail.get_or_init(|| {
            process::Command::new(&self.shell)
                .args(["-o", "pipefail", "-c", ":"])
                .stdin(process::Stdio::null())
                .stdout(process::Stdio::null())
                .stderr(process::Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        })
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

/// An attempt that could not start.
struct Failed(Option<String>);

impl Child for Failed {
    fn fd(&self) -> Option<BorrowedFd<'_>> {
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
struct ShellChild<'a> {
    /// The leader: the process spawned, whose pid is the group's id.
    pid: Pid,
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
    /// The script file the command runs from, removed when this goes.
    _script: Option<Script>,
    /// Its process group and leader's start time (see `procfs.rs`).
    recorded: Option<Process>,
}

/// How long a leader whose output ended is waited for before the executor
/// goes on and watches for its exit (see [`ShellChild::exits_soon`]).
const EXIT_SPIN: Duration = Duration::from_micros(500);

/// How many reads one poll does at most, so that a chatty command does not
/// keep the executor from the others.
const READS_PER_POLL: usize = 16;

impl Child for ShellChild<'_> {
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        match (&self.reader, &self.exit) {
            (Some(reader), _) => Some(reader.as_fd()),
            (None, Some(exit)) => Some(exit.as_fd()),
            (None, None) => None,
        }
    }

    fn process(&self) -> Option<Process> {
        self.recorded
    }

    fn deadline(&self) -> Option<Instant> {
        match (self.deadline, self.cancel.kill_deadline()) {
            (Some(own), Some(cancel)) => Some(own.min(cancel)),
            (own, cancel) => own.or(cancel),
        }
    }

    fn poll(&mut self, output: &mut dyn FnMut(&str)) -> Option<Outcome> {
        self.cancel.enforce_grace();
        if self.deadline.is_some_and(|deadline| deadline <= Instant::now()) {
            self.escalate(output);
        }
        if let Some(reader) = &self.reader {
            // Not zeroed: most polls read nothing (the end, or not yet).
            let mut buffer = [MaybeUninit::<u8>::uninit(); 8192];
            let mut reads = 0;
            loop {
                match rustix::io::read(reader, &mut buffer) {
                    Ok(([], _)) => break,
                    Ok((read, _)) => self.lines.push(read, output),
                    Err(Errno::INTR) => continue,
                    Err(Errno::AGAIN) => return None,
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

impl ShellChild<'_> {
    /// The deadline passed: `SIGTERM` at the timeout, `SIGKILL` a grace
    /// later, and after another grace stop waiting for the output
    /// (something outside the group still holds the pipe).
    fn escalate(&mut self, output: &mut dyn FnMut(&str)) {
        if !self.timed_out {
            self.timed_out = true;
            self.signal(Signal::TERM);
        } else if !self.killed {
            self.killed = true;
            self.signal(Signal::KILL);
        } else {
            self.end_output(output);
        }
        self.deadline = Some(Instant::now() + self.grace);
    }

    fn signal(&self, signal: Signal) {
        if let Some(group) = &self.group {
            group.signal(signal);
        }
    }

    fn end_output(&mut self, output: &mut dyn FnMut(&str)) {
        if self.reader.take().is_some() {
            self.lines.finish(output);
            if self.timed_out {
                // Nothing a timed-out command started outlives it.
                self.signal(Signal::KILL);
            }
        }
    }

    /// Whether the leader has exited, without reaping it (so that its
    /// group id cannot be reused while the group is registered). An error
    /// counts as exited: reaping then says what happened.
    fn exited(&self) -> bool {
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        !matches!(waitid(WaitId::Pid(self.pid), options), Ok(None))
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
        let status = match wait(self.pid) {
            Ok(status) => status,
            Err(error) => return Outcome::SpawnFailed(format!("cannot wait for the command: {error}")),
        };
        self.reaped = true;
        let code = status.exit_status();
        if self.timed_out {
            Outcome::TimedOut
        } else if self.cancel.is_cancelled() && code != Some(0) {
            Outcome::Interrupted
        } else if let Some(code) = code {
            Outcome::Exited(code)
        } else {
            Outcome::Signalled(status.terminating_signal().unwrap_or(0))
        }
    }
}

/// An attempt dropped before its end (the executor stopped on an error) is
/// killed and reaped, so that it leaves no zombie behind.
impl Drop for ShellChild<'_> {
    fn drop(&mut self) {
        if !self.reaped {
            self.signal(Signal::KILL);
            self.group = None;
            let _ = wait(self.pid);
        }
    }
}

/// Reaps the child `pid`: waits for its end.
fn wait(pid: Pid) -> io::Result<WaitStatus> {
    loop {
        match waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, status))) => return Ok(status),
            Ok(None) => return Err(io::Error::other("no status")),
            Err(Errno::INTR) => {}
            Err(error) => return Err(error.into()),
        }
    }
}

/// A descriptor that becomes readable when the child `pid` exits, where
/// the system has them (Linux's pidfd).
#[cfg(target_os = "linux")]
fn pidfd(pid: Pid) -> Option<OwnedFd> {
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
}

#[cfg(not(target_os = "linux"))]
fn pidfd(_pid: Pid) -> Option<OwnedFd> {
    None
}
