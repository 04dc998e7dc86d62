//! The exclusive lock on one env of one pipeline, and who holds it.
//!
//! A run locks `<env dir>/lock` with [`File::try_lock`] (an advisory
//! `flock`-style lock): the operating system drops it when the holder's
//! process dies, however it dies, so a lock is never stale and there is
//! nothing to clean up. After locking, the holder writes who it is to
//! `<env dir>/holder.ron` (atomically), so a second run that finds the lock
//! taken can say who has it. The holder file is only read when the lock is
//! taken; a leftover one from a finished run means nothing.
//!
//! The loser of a race reads the holder file while the winner may not have
//! written it yet: the file then names the previous holder, dead by now.
//! So the loser reads it again (every 10 ms, for up to a second) until it
//! names a process alive on this host (or one on another host).

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::clock::Timestamp;
use super::durable::{create_dir, replace_unsynced, sync_dir};
use super::error::StateError;
use super::format::{self, head_line, line};

/// The lock file's name in the state directory.
pub(crate) const LOCK_FILE: &str = "lock";
/// The holder file's name in the state directory.
pub(crate) const HOLDER_FILE: &str = "holder.ron";

/// How often a waiting run tries the lock again.
const POLL: Duration = Duration::from_millis(50);
/// How long a loser waits for the winner to write the holder file.
const HOLDER_WAIT: Duration = Duration::from_secs(1);

/// Who holds (or last held) the lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The holder's process id.
    pub pid: u32,
    /// The host it runs on.
    pub host: String,
    /// What it runs: a workflow (`deploy`) or another command (`releases`).
    pub workflow: String,
    /// The env, if the command has one.
    pub env: Option<String>,
    /// When it took the lock.
    pub started_at: Timestamp,
}

impl Holder {
    /// This process, on this host.
    #[must_use]
    pub fn current(workflow: &str, env: Option<&str>, started_at: Timestamp) -> Self {
        Self {
            pid: std::process::id(),
            host: host_name(),
            workflow: workflow.to_owned(),
            env: env.map(str::to_owned),
            started_at,
        }
    }

    /// The holder recorded in the state directory `dir`, if its file can
    /// be read.
    #[must_use]
    pub fn read(dir: &Path) -> Option<Self> {
        let lines: format::Lines<Self> = format::read(&dir.join(HOLDER_FILE)).ok()?;
        lines.lines.into_iter().next().map(|(_, holder)| holder)
    }

    /// Whether it may be holding a lock now: it runs on another host (which
    /// cannot be checked), or its process is alive on this one.
    #[must_use]
    pub fn may_be_alive(&self) -> bool {
        if self.host != host_name() {
            return true;
        }
        let Some(pid) = i32::try_from(self.pid).ok().and_then(rustix::process::Pid::from_raw) else {
            return false;
        };
        match rustix::process::test_kill_process(pid) {
            Ok(()) => true,
            Err(error) => error == rustix::io::Errno::PERM,
        }
    }

    /// The holder of the lock another run holds in `dir`: the holder file,
    /// read again until it names a live holder or [`HOLDER_WAIT`] has
    /// passed (the winner of a race writes it just after locking).
    fn of_taken_lock(dir: &Path) -> Option<Self> {
        let deadline = Instant::now() + HOLDER_WAIT;
        loop {
            let holder = Self::read(dir);
            if holder.as_ref().is_some_and(Self::may_be_alive) || Instant::now() >= deadline {
                return holder;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Who runs this process, as a release records it: `$STAGECRAFT_USER`
/// when set (a CI job can name the person or the pipeline it runs for),
/// else `user@host`, the user from `$USER` or `$LOGNAME`, else the numeric
/// user id; the host as in [`Holder`].
#[must_use]
pub fn user_at_host() -> String {
    if let Some(user) = std::env::var("STAGECRAFT_USER").ok().filter(|u| !u.is_empty()) {
        return user;
    }
    let user = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|user| !user.is_empty())
        .unwrap_or_else(|| rustix::process::getuid().as_raw().to_string());
    format!("{user}@{}", host_name())
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid {} on host `{}`, running `{}`",
            self.pid, self.host, self.workflow
        )?;
        if let Some(env) = &self.env {
            write!(f, " in `{env}`")?;
        }
        write!(f, " since {}", self.started_at)
    }
}

/// The host name: `/etc/hostname`, else the kernel's node name (what
/// `gethostname` returns), else `unknown`.
fn host_name() -> String {
    // Two processes of one machine standing for two machines in tests,
    // compiled only into debug builds.
    #[cfg(debug_assertions)]
    if let Some(host) = std::env::var("STAGECRAFT_DEBUG_HOST").ok().filter(|h| !h.is_empty()) {
        return host;
    }
    if let Ok(text) = std::fs::read_to_string("/etc/hostname") {
        let name = text.trim();
        if !name.is_empty() {
            return name.to_owned();
        }
    }
    let uname = rustix::system::uname();
    match uname.nodename().to_str() {
        Ok(name) if !name.is_empty() => name.to_owned(),
        _ => "unknown".to_owned(),
    }
}

/// How long to wait for a lock another run holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Fail at once.
    No,
    /// Try again until this much time has passed.
    For(Duration),
    /// Try again until it is free.
    Forever,
}

/// The exclusive lock on a state directory, held until dropped.
#[derive(Debug)]
pub struct Lock {
    file: File,
    dir: PathBuf,
}

impl Lock {
    /// Locks the directory `dir` (creating it if needed) and records
    /// `holder` in its holder file.
    ///
    /// # Errors
    ///
    /// [`StateError::Locked`] (naming the holder) if another run holds it
    /// past `wait`; an I/O error otherwise.
    pub fn acquire(dir: &Path, holder: &Holder, wait: Wait) -> Result<Self, StateError> {
        create_dir(dir)?;
        let path = dir.join(LOCK_FILE);
        let existed = path.exists();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(StateError::io("open", &path))?;
        if !existed {
            sync_dir(dir)?;
        }
        let deadline = match wait {
            Wait::No => Some(Instant::now()),
            Wait::For(duration) => Instant::now().checked_add(duration),
            Wait::Forever => None,
        };
        loop {
            // `File::try_lock` is stable since Rust 1.89: `rust-version` in
            // Cargo.toml must say so (see the report on this module).
            let attempt = file.try_lock();
            match attempt {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                        return Err(StateError::Locked {
                            path,
                            holder: Holder::of_taken_lock(dir),
                        });
                    }
                    std::thread::sleep(POLL);
                }
                Err(TryLockError::Error(error)) => return Err(StateError::io("lock", &path)(error)),
            }
        }
        let text = format!("{}{}", head_line(), line(holder));
        replace_unsynced(&dir.join(HOLDER_FILE), text.as_bytes())?;
        Ok(Self {
            file,
            dir: dir.to_owned(),
        })
    }

    /// The state directory locked.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Closing the file would release it too; unlocking first is explicit.
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_line_and_message() {
        let holder = Holder {
            pid: 42,
            host: "ci-7".into(),
            workflow: "deploy".into(),
            env: Some("prod".into()),
            started_at: Timestamp::parse("2026-11-25T17:02:29.123Z").unwrap(),
        };
        assert_eq!(
            line(&holder),
            "Holder(pid: 42, host: \"ci-7\", workflow: \"deploy\", env: Some(\"prod\"), started_at: \"2026-11-25T17:02:29.123Z\")\n"
        );
        assert_eq!(
            holder.to_string(),
            "pid 42 on host `ci-7`, running `deploy` in `prod` since 2026-11-25T17:02:29.123Z"
        );
        assert!(!host_name().is_empty());
    }
}
