//! Where output goes: the [`OutputSink`] the executor passes lines to,
//! what it keeps of each attempt's output, and the per-instance log files.
//! Secrets are masked (`mask`) before a line goes anywhere.

mod group;
mod log;
mod mask;

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::PathBuf;

use super::runner::Outcome;
use super::schedule::failure;
use super::summary::TAIL_LINES;
use crate::syntax::floor_char_boundary;
use group::Group;
pub(super) use group::Grouped;
use log::LogFile;
use mask::Masker;
pub use mask::{MASK, SecretValues};

/// Where the output of commands goes. Called on the thread that called
/// [`execute`](super::execute).
pub trait OutputSink {
    /// Lines of output of the instance at position `instance` with id `id`:
    /// one line as it comes with `jobs: 1`. With `jobs > 1`, an attempt's
    /// lines when it ends, in one call or in several in a row (at most
    /// 64 KiB of lines each) with nothing else between them.
    fn output(&mut self, instance: usize, id: &str, lines: &[String]);
}

impl<F: FnMut(usize, &str, &[String])> OutputSink for F {
    fn output(&mut self, instance: usize, id: &str, lines: &[String]) {
        self(instance, id, lines);
    }
}

/// The log file name for an instance id: `build[api]` → `build.api`.
pub(crate) fn log_name(id: &str) -> String {
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

/// What the executor keeps of one running attempt's output: its log, its
/// last [`TAIL_LINES`] lines, and its lines until it ends when they are
/// grouped (`jobs > 1`; see `group`). Every line is masked first.
pub(super) struct Capture {
    log: LogFile,
    tail: VecDeque<String>,
    group: Group,
    masker: Masker,
    /// Masked text not yet ended by a line break.
    masked: String,
}

impl Capture {
    /// For attempt `attempt`, logging to `log` if given, masking `secrets`.
    pub(super) fn new(log: Option<PathBuf>, attempt: u32, secrets: &SecretValues) -> Self {
        Self {
            log: LogFile::new(log, attempt),
            tail: VecDeque::with_capacity(TAIL_LINES),
            group: Group::default(),
            masker: Masker::new(secrets.clone()),
            masked: String::new(),
        }
    }

    /// A line of the attempt of the instance at `instance` with id `id`:
    /// masked, then logged, kept for the tail, and passed to `stream` at
    /// once or kept until the attempt ends. A line that ends with the
    /// start of a secret's value that holds a line break waits for the
    /// next. A piece of a line longer than [`MAX_LINE`] (the runner splits
    /// them) is masked with the next piece, as one text, and passed on in
    /// pieces of [`MAX_LINE`] again.
    pub(super) fn line<'s>(
        &mut self,
        instance: usize,
        id: &str,
        line: &str,
        mut stream: Option<&mut (dyn OutputSink + 's)>,
    ) {
        if !self.masker.is_active() {
            self.keep(instance, id, line, stream);
            return;
        }
        let mut masked = std::mem::take(&mut self.masked);
        if line.len() >= MAX_LINE {
            self.masker.push(line, &mut masked);
        } else {
            self.masker.push_line(line, &mut masked);
        }
        let mut from = 0;
        loop {
            let rest = &masked[from..];
            let end = match rest.find('\n') {
                Some(end) if end <= MAX_LINE => end,
                _ if rest.len() >= MAX_LINE => floor_char_boundary(rest, MAX_LINE),
                _ => break,
            };
            self.keep(instance, id, &rest[..end], stream.as_deref_mut());
            from += end + usize::from(rest.as_bytes().get(end) == Some(&b'\n'));
        }
        masked.drain(..from);
        self.masked = masked;
    }

    /// The end of the attempt's output: the lines the masker held back.
    pub(super) fn end<'s>(&mut self, instance: usize, id: &str, mut stream: Option<&mut (dyn OutputSink + 's)>) {
        let mut masked = std::mem::take(&mut self.masked);
        self.masker.finish(&mut masked);
        let masked = masked.strip_suffix('\n').unwrap_or(&masked);
        if !masked.is_empty() {
            for line in masked.split('\n') {
                self.keep(instance, id, line, stream.as_deref_mut());
            }
        }
    }

    /// A masked line: logged, kept for the tail, streamed or grouped.
    fn keep<'s>(&mut self, instance: usize, id: &str, line: &str, stream: Option<&mut (dyn OutputSink + 's)>) {
        self.log.line(line);
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_owned());
        match stream {
            Some(sink) => sink.output(instance, id, &[line.to_owned()]),
            None => self.group.push(line, &mut self.log),
        }
    }

    /// Writes what the log holds back (after each poll of the attempt).
    pub(super) fn flush(&mut self) {
        self.log.flush();
        let _ = self.group.settle(&mut self.log);
    }

    /// Attempt `attempt` ended with `outcome`: a failure ends its log with
    /// a line saying how. Returns its grouped output, its tail, whether a
    /// log file was written, and why the log is incomplete if it is (it
    /// could not be opened or written: the disk is full, …).
    pub(super) fn finish(&mut self, attempt: u32, outcome: &Outcome) -> (Grouped, Vec<String>, bool, Option<String>) {
        self.flush();
        let grouped = self.group.finish(&mut self.log);
        if let Some((_, reason)) = failure(outcome) {
            let how = match outcome {
                Outcome::Exited(code) => format!("exit code {code}"),
                Outcome::Signalled(signal) => format!("killed by signal {signal}"),
                _ => reason.to_string(),
            };
            self.log.line(&format!("--- attempt {attempt} failed: {how} ---"));
            self.log.flush();
        }
        let tail = std::mem::take(&mut self.tail).into();
        (grouped, tail, self.log.opened(), self.log.error().map(str::to_owned))
    }
}

/// The longest line passed on whole; longer ones are split.
pub(super) const MAX_LINE: usize = 64 * 1024;

/// Splits bytes read from a pipe into lines.
#[derive(Default)]
pub(super) struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// Passes on each whole line of what was read so far, and pieces of
    /// [`MAX_LINE`] bytes of a longer one (whether its line break came in
    /// the same read or not; a line of exactly [`MAX_LINE`] bytes is one
    /// piece).
    pub(super) fn push(&mut self, mut bytes: &[u8], output: &mut dyn FnMut(&str)) {
        while let Some(end) = bytes.iter().position(|&byte| byte == b'\n') {
            self.partial.extend_from_slice(&bytes[..end]);
            self.split_longer_than(MAX_LINE, output);
            self.emit(output);
            bytes = &bytes[end + 1..];
        }
        self.partial.extend_from_slice(bytes);
        self.split_longer_than(MAX_LINE - 1, output);
    }

    /// Passes on pieces of [`MAX_LINE`] bytes while more than `limit` are
    /// held.
    fn split_longer_than(&mut self, limit: usize, output: &mut dyn FnMut(&str)) {
        while self.partial.len() > limit {
            let rest = self.partial.split_off(MAX_LINE);
            self.emit(output);
            self.partial = rest;
        }
    }

    pub(super) fn finish(&mut self, output: &mut dyn FnMut(&str)) {
        if !self.partial.is_empty() {
            self.emit(output);
        }
    }

    fn emit(&mut self, output: &mut dyn FnMut(&str)) {
        output(&String::from_utf8_lossy(&self.partial));
        self.partial.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Groups `count` numbered lines of attempt `attempt` logged to `log`,
    /// flushing every 1,000 lines as polls would; returns the lines passed
    /// on, the number of calls, and whether a log was written.
    fn grouped(log: Option<PathBuf>, attempt: u32, count: usize) -> (Vec<String>, usize, bool) {
        let mut capture = Capture::new(log, attempt, &SecretValues::default());
        for number in 0..count {
            capture.line(0, "i", &format!("line {number:05} {}", "x".repeat(90)), None);
            if number % 1_000 == 999 {
                capture.flush();
            }
        }
        let (grouped, tail, log_ok, _) = capture.finish(attempt, &Outcome::Exited(1));
        assert_eq!(tail.len(), TAIL_LINES.min(count));
        let (mut lines, mut calls) = (Vec::new(), 0);
        grouped.deliver(0, "i", &mut |_: usize, _: &str, block: &[String]| {
            calls += 1;
            lines.extend_from_slice(block);
        });
        (lines, calls, log_ok)
    }

    fn numbered(lines: &[String]) -> bool {
        lines
            .iter()
            .enumerate()
            .all(|(number, line)| line.starts_with(&format!("line {number:05} ")))
    }

    #[test]
    fn a_little_grouped_output_is_passed_on_in_one_block() {
        let (lines, calls, log_ok) = grouped(None, 1, 10);
        assert_eq!((lines.len(), calls, log_ok), (10, 1, false));
        assert!(numbered(&lines));
    }

    #[test]
    fn much_grouped_output_is_read_back_from_the_log_of_its_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.log");
        let (first, _, _) = grouped(Some(path.clone()), 1, 3);
        assert_eq!(first.len(), 3);
        let (lines, calls, log_ok) = grouped(Some(path.clone()), 2, 5_000);
        assert!(log_ok);
        assert_eq!(lines.len(), 5_000);
        assert!(numbered(&lines), "neither the header nor the failure line");
        assert!(calls > 5, "passed on in batches, not at once: {calls}");
        let log = std::fs::read_to_string(&path).unwrap();
        assert!(log.contains("--- attempt 2 ---\nline 00000 "));
        assert!(log.ends_with("--- attempt 2 failed: exit code 1 ---\n"));
    }

    #[test]
    fn much_grouped_output_without_a_log_goes_through_a_spool_file() {
        let (lines, _, log_ok) = grouped(None, 1, 5_000);
        assert!(!log_ok);
        assert_eq!(lines.len(), 5_000);
        assert!(numbered(&lines));
    }

    #[test]
    fn a_log_that_fails_hands_the_output_to_a_spool_file() {
        // Every write to /dev/full fails (ENOSPC).
        let full = PathBuf::from("/dev/full");
        if std::fs::OpenOptions::new().write(true).open(&full).is_err() {
            return;
        }
        let (lines, _, _) = grouped(Some(full), 1, 5_000);
        assert_eq!(lines.len(), 5_000);
        assert!(numbered(&lines));
    }

    #[test]
    fn lines_are_masked_before_they_are_streamed_logged_or_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.log");
        let secrets = SecretValues::new(["hunter2".to_owned(), "a\nb".to_owned()]);
        let mut capture = Capture::new(Some(path.clone()), 1, &secrets);
        let streamed = std::cell::RefCell::new(Vec::<String>::new());
        let mut sink = |_: usize, _: &str, lines: &[String]| streamed.borrow_mut().extend_from_slice(lines);
        for line in ["pw=hunter2", "x a", "b y", "a"] {
            capture.line(0, "i", line, Some(&mut sink));
        }
        assert_eq!(
            *streamed.borrow(),
            ["pw=***", "x *** y"],
            "`a` may start `a\\nb`: it waits"
        );
        capture.end(0, "i", Some(&mut sink));
        assert_eq!(*streamed.borrow(), ["pw=***", "x *** y", "a"]);
        let (_, tail, _, _) = capture.finish(1, &Outcome::Exited(1));
        assert_eq!(tail, ["pw=***", "x *** y", "a"]);
        let log = std::fs::read_to_string(&path).unwrap();
        assert!(log.contains("pw=***\nx *** y\na\n"), "{log}");
        assert!(!log.contains("hunter2"));
    }

    #[test]
    fn a_value_across_the_split_of_a_long_line_is_masked() {
        let secrets = SecretValues::new(["hunter2".to_owned()]);
        let mut capture = Capture::new(None, 1, &secrets);
        let streamed = std::cell::RefCell::new(Vec::<String>::new());
        let mut sink = |_: usize, _: &str, lines: &[String]| streamed.borrow_mut().extend_from_slice(lines);
        let mut splitter = LineSplitter::default();
        let mut text = "x".repeat(MAX_LINE - 3).into_bytes();
        text.extend_from_slice(b"hunter2 and more\nnext\n");
        splitter.push(&text, &mut |line: &str| capture.line(0, "i", line, Some(&mut sink)));
        capture.end(0, "i", Some(&mut sink));
        let lines = streamed.into_inner();
        assert!(
            lines.iter().all(|l| !l.contains("hun") && l.len() <= MAX_LINE),
            "{}",
            lines.len()
        );
        assert_eq!(lines.concat(), format!("{}*** and morenext", "x".repeat(MAX_LINE - 3)));
        assert_eq!(lines.last().map(String::as_str), Some("next"));
    }

    #[test]
    fn log_names_are_safe_and_distinct() {
        assert_eq!(log_name("build[api]"), "build.api");
        assert_eq!(log_name("migrate_pre"), "migrate_pre");
        assert_eq!(log_name("a/b"), "a%2Fb");
        assert_eq!(log_name("a.b"), "a%2Eb");
        assert_eq!(log_name("é"), "%C3%A9");
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
    fn long_lines_are_split_when_their_break_comes_in_the_same_read() {
        let mut lines = Vec::new();
        let mut output = |line: &str| lines.push(line.len());
        let mut splitter = LineSplitter::default();
        let mut text = vec![b'x'; MAX_LINE * 2 + 5];
        text.extend_from_slice(b"\nshort\n");
        text.extend_from_slice(&vec![b'y'; MAX_LINE]);
        text.push(b'\n');
        splitter.push(&text, &mut output);
        splitter.finish(&mut output);
        assert_eq!(
            lines,
            [MAX_LINE, MAX_LINE, 5, 5, MAX_LINE],
            "and a line of exactly MAX_LINE is one"
        );
    }
}
