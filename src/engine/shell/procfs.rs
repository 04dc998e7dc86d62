//! What Linux's `/proc` says about processes: each one's state, process
//! group and start time (`/proc/PID/stat`). The runner records a command's
//! group with its leader's start time; recovery finds the groups a run
//! killed outright left running, and never takes a process that got a
//! reused pid for one of them. Elsewhere `/proc` is missing and nothing is
//! found.

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
}
