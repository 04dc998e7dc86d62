//! The commands a run killed outright left running, and how recovery stops
//! them before it marks their instances interrupted.
//!
//! Each command's process group is recorded with its leader's start time
//! (a `Spawned` line, right after the spawn). A group is still running
//! when a process that has not exited is in it, and is the recorded one
//! when its leader, if it still exists, started at the recorded time (a
//! pid used again by another process is never taken for it; while any
//! member of a group lives, its id is not given to a new process). A
//! group whose leader is gone is known by its members that started no
//! earlier than the leader did.
//!
//! Recovery sends `SIGTERM` to every such group, waits up to the grace for
//! them to end, sends `SIGKILL` to those still running, and waits up to
//! [`KILL_WAIT`] more. A group still running then (a process of another
//! user, or one that cannot die) is an error: no new run of the env starts
//! while it runs.

use std::fmt;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};
use serde::Serialize;

use crate::engine::{Process, procfs};

/// How long a group gets to end after `SIGKILL`.
pub(crate) const KILL_WAIT: Duration = Duration::from_secs(2);

/// How often a group is looked at while it is waited for.
const POLL: Duration = Duration::from_millis(20);

/// An instance whose recorded process group may still run.
#[derive(Clone, Debug)]
pub(crate) struct Orphan {
    /// The instance, `migrate` or `build[api]`.
    pub(crate) instance: String,
    /// Its recorded group.
    pub(crate) process: Process,
}

/// A group recovery found running and stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stopped {
    /// The instance whose command it was.
    pub instance: String,
    /// The process group id (its leader's pid).
    pub group: u32,
    /// How many of its processes were running.
    pub processes: usize,
    /// It did not end within the grace after `SIGTERM`, and was killed.
    pub killed: bool,
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (instance, group) = (&self.instance, self.group);
        let how = if self.killed {
            "killed (`SIGKILL` after the grace)"
        } else {
            "stopped (`SIGTERM`)"
        };
        let processes = match self.processes {
            1 => String::new(),
            n => format!(", {n} processes"),
        };
        write!(
            f,
            "{instance} was still running (process group {group}{processes}) and was {how}"
        )
    }
}

/// A group that still ran after `SIGKILL`: the instance, its group and
/// the pids still running.
pub(crate) type StillRunning = (String, u32, Vec<u32>);

/// The processes of the recorded group that have not exited: none once it
/// has ended, or when its id now belongs to another process.
pub(crate) fn running(process: Process) -> Vec<u32> {
    if procfs::stat(process.group).is_some_and(|leader| leader.start != process.start) {
        // The pid was used again: the recorded group ended long ago.
        return Vec::new();
    }
    procfs::processes()
        .into_iter()
        .filter(|p| p.group == process.group && !p.exited() && p.start >= process.start)
        .map(|p| p.pid)
        .collect()
}

/// The groups of `orphans` still running, each with how many of its
/// processes run.
pub(crate) fn still_running(orphans: Vec<Orphan>) -> Vec<(Orphan, usize)> {
    orphans
        .into_iter()
        .filter_map(|orphan| {
            let count = running(orphan.process).len();
            (count > 0).then_some((orphan, count))
        })
        .collect()
}

/// Stops the groups of `live` (from [`still_running`]): `SIGTERM`, up to
/// `grace`, `SIGKILL`, up to [`KILL_WAIT`]. Returns what was stopped, or
/// the groups still running after all that.
pub(crate) fn stop(mut live: Vec<(Orphan, usize)>, grace: Duration) -> Result<Vec<Stopped>, Vec<StillRunning>> {
    let mut stopped = Vec::new();
    for (signal, within, killed) in [(Signal::TERM, grace, false), (Signal::KILL, KILL_WAIT, true)] {
        if live.is_empty() {
            break;
        }
        for (orphan, _) in &live {
            signal_group(orphan.process.group, signal);
        }
        wait_out(&mut live, within, killed, &mut stopped);
    }
    if live.is_empty() {
        return Ok(stopped);
    }
    Err(live
        .into_iter()
        .map(|(orphan, _)| (orphan.instance, orphan.process.group, running(orphan.process)))
        .collect())
}

/// Waits up to `within` for the groups of `live` to end, moving each that
/// does to `stopped`.
fn wait_out(live: &mut Vec<(Orphan, usize)>, within: Duration, killed: bool, stopped: &mut Vec<Stopped>) {
    let until = Instant::now() + within;
    loop {
        live.retain(|(orphan, processes)| {
            let ended = running(orphan.process).is_empty();
            if ended {
                stopped.push(Stopped {
                    instance: orphan.instance.clone(),
                    group: orphan.process.group,
                    processes: *processes,
                    killed,
                });
            }
            !ended
        });
        if live.is_empty() || Instant::now() >= until {
            return;
        }
        std::thread::sleep(POLL);
    }
}

/// Sends `signal` to process group `group`; never to `init`'s, nor to a
/// group id that is not one. A failure (a group that ended meanwhile, or
/// another user's) shows when the group is looked at again.
fn signal_group(group: u32, signal: Signal) {
    if let Some(pid) = i32::try_from(group).ok().filter(|&id| id > 1).and_then(Pid::from_raw) {
        let _ = kill_process_group(pid, signal);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::process::Command;

    use super::*;

    fn spawn_group(command: &str) -> (std::process::Child, Process) {
        use std::os::unix::process::CommandExt;
        let child = Command::new("/bin/sh")
            .args(["-c", command])
            .process_group(0)
            .spawn()
            .unwrap();
        let group = child.id();
        let start = procfs::stat(group).unwrap().start;
        (child, Process { group, start })
    }

    #[test]
    fn a_running_group_is_stopped_and_a_reused_pid_is_not_taken_for_it() {
        let (mut child, process) = spawn_group("sleep 30 & sleep 30; wait");
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(running(process).len(), 3, "sh and two sleeps");
        let other = Process {
            start: process.start + 1,
            ..process
        };
        assert!(running(other).is_empty(), "another start time is another process");
        let orphan = Orphan {
            instance: "wait".to_owned(),
            process,
        };
        // The test reaps its own child, as init would an orphan.
        let reaper = std::thread::spawn(move || child.wait());
        let live = still_running(vec![orphan.clone()]);
        assert_eq!(live.len(), 1);
        let stopped = stop(live, Duration::from_secs(5)).unwrap();
        assert_eq!(stopped.len(), 1);
        assert!(!stopped[0].killed);
        assert_eq!(stopped[0].processes, 3);
        assert!(running(process).is_empty());
        reaper.join().unwrap().unwrap();
        assert!(still_running(vec![orphan]).is_empty());
    }

    #[test]
    fn a_group_that_ignores_sigterm_is_killed_after_the_grace() {
        let (mut child, process) = spawn_group("trap '' TERM; sleep 30");
        std::thread::sleep(Duration::from_millis(100));
        let orphan = Orphan {
            instance: "stubborn".to_owned(),
            process,
        };
        let reaper = std::thread::spawn(move || child.wait());
        let stopped = stop(still_running(vec![orphan]), Duration::from_millis(200)).unwrap();
        assert!(stopped[0].killed, "{stopped:?}");
        reaper.join().unwrap().unwrap();
    }
}
