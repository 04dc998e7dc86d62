//! What Linux's `/proc` says about processes: each one's state, process
//! group and start time (`/proc/PID/stat`). The runner records a command's
//! group with its leader's start time; recovery finds the groups a run
//! killed outright left running, and never takes a process that got a
//! reused pid for one of them. Elsewhere `/proc` is missing and nothing is
//! found.
//!
//! A command's start time is usually known without reading `/proc`: Linux
//! gives it in clock ticks of `CLOCK_BOOTTIME` (the time since boot,
//! rounded down to a tick), so when the clock shows the same tick before
//! and after the spawn, the child started in that tick ([`Tick`]). Only a
//! spawn that crosses a tick (about one in a hundred) reads `/proc/PID/stat`,
//! which costs more than the rest of the executor's work for a command.

use std::fs;
use std::io::{self, Read as _};

/// One process, from `/proc/PID/stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stat {
    /// Its pid.
    pub(crate) pid: u32,
    /// Its state letter (`R`, `S`, `D`, `Z` for a zombie, …).
    pub(crate) state: u8,
    /// Its process group id.
    pub(crate) group: u32,
    /// When it started, in clock ticks after boot (field 22).
    pub(crate) start: u64,
}

impl Stat {
    /// Whether it has exited (a zombie not reaped yet, or dead).
    pub(crate) fn exited(&self) -> bool {
        matches!(self.state, b'Z' | b'X' | b'x')
    }
}

/// Process `pid` as `/proc` shows it now, if it exists.
pub(crate) fn stat(pid: u32) -> Option<Stat> {
    // Read into the stack: the runner reads this once per command, and
    // `fs::read` would ask for the size (which `/proc` gives as 0) and then
    // grow a buffer in steps. A line is a few hundred bytes.
    let mut file = fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut buffer = [0u8; 1024];
    let mut len = 0;
    while len < buffer.len() {
        match file.read(&mut buffer[len..]) {
            Ok(0) => return parse(pid, &buffer[..len]),
            Ok(read) => len += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    // A longer line than ever seen: read the rest too.
    let mut text = buffer.to_vec();
    file.read_to_end(&mut text).ok()?;
    parse(pid, &text)
}

/// A tick of the clock `/proc` gives start times in: `CLOCK_BOOTTIME`,
/// in units of the kernel's clock ticks per second (`USER_HZ`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tick(Option<u64>);

impl Tick {
    /// The tick now (none where the clock or the tick length is unknown).
    pub(crate) fn now() -> Self {
        Self(boottime_tick())
    }

    /// The start time of `pid`, spawned between `before` and `after`: the
    /// tick both show, or else what `/proc` says.
    pub(crate) fn start_of(pid: u32, before: Self, after: Self) -> Option<u64> {
        match (before.0, after.0) {
            (Some(before), Some(after)) if before == after => Some(before),
            _ => stat(pid).map(|stat| stat.start),
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn boottime_tick() -> Option<u64> {
    use rustix::time::{ClockId, clock_gettime};
    const NANOS: u64 = 1_000_000_000;
    let per_second = rustix::param::clock_ticks_per_second();
    // The kernel divides by the nanoseconds of a tick, a whole number.
    if per_second == 0 || !NANOS.is_multiple_of(per_second) {
        return None;
    }
    let now = clock_gettime(ClockId::Boottime);
    let nanos = u64::try_from(now.tv_sec).ok()? * NANOS + u64::try_from(now.tv_nsec).ok()?;
    Some(nanos / (NANOS / per_second))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn boottime_tick() -> Option<u64> {
    None
}

/// Every process `/proc` shows now.
pub(crate) fn processes() -> Vec<Stat> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat)
        .collect()
}

/// Parses a `/proc/PID/stat` line. The command name (field 2) is in
/// parentheses and may hold anything, spaces and parentheses included, so
/// the fields are counted from the last `)`.
fn parse(pid: u32, text: &[u8]) -> Option<Stat> {
    let close = text.iter().rposition(|&byte| byte == b')')?;
    let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
    // Fields 3 on: state, ppid, pgrp, …, starttime (field 22).
    let mut fields = rest.split_ascii_whitespace();
    let state = *fields.next()?.as_bytes().first()?;
    // Field 5 (pgrp), after ppid.
    let group = fields.nth(1)?.parse().ok()?;
    // Field 22 (starttime), 16 fields after pgrp.
    let start = fields.nth(16)?.parse().ok()?;
    Some(Stat {
        pid,
        state,
        group,
        start,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_counted_from_the_last_parenthesis() {
        let line = b"4242 (a) b (c) S 1 4240 4240 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200\n";
        let stat = parse(4242, line).unwrap();
        assert_eq!(
            stat,
            Stat {
                pid: 4242,
                state: b'S',
                group: 4240,
                start: 987_654
            }
        );
        assert!(!stat.exited());
        assert_eq!(parse(1, b"1 (x) Z 0"), None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn this_process_is_found() {
        let me = stat(std::process::id()).expect("this process");
        assert!(!me.exited());
        assert_eq!(me.start, stat(std::process::id()).unwrap().start);
        assert!(processes().iter().any(|p| p.pid == std::process::id()));
    }

    /// The tick seen around a spawn is the start time `/proc` gives, every
    /// time the clock shows one tick before and after it.
    #[test]
    #[cfg(target_os = "linux")]
    fn a_spawn_within_one_tick_started_in_that_tick() {
        let mut agreed = 0;
        for _ in 0..200 {
            let before = Tick::now();
            let mut child = std::process::Command::new("true").spawn().expect("spawn true");
            let after = Tick::now();
            let pid = child.id();
            let from_proc = stat(pid).expect("an unreaped child is in /proc").start;
            assert_eq!(Tick::start_of(pid, before, after), Some(from_proc));
            if before == after {
                assert_eq!(before.0, Some(from_proc));
                agreed += 1;
            }
            child.wait().expect("wait");
        }
        // Most do; a loaded machine may spread some spawns over two ticks.
        assert!(agreed >= 20, "only {agreed} of 200 spawns fell within one tick");
    }
}
