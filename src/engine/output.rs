//! Where output goes: the [`OutputSink`] the executor passes lines to,
//! what it keeps of each attempt's output, and the per-instance log files.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::runner::Outcome;
use super::schedule::failure;
use super::summary::TAIL_LINES;

/// Where the output of commands goes. Called on the thread that called
/// [`execute`](super::execute).
pub trait OutputSink {
    /// Lines of output of the instance at position `instance` with id `id`:
    /// one line as it comes with `jobs: 1`, or a whole attempt's lines at
    /// once with `jobs > 1`.
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
/// grouped (`jobs > 1`).
pub(super) struct Capture {
    log: LogFile,
    tail: VecDeque<String>,
    lines: Vec<String>,
}

impl Capture {
    /// For attempt `attempt`, logging to `log` if given.
    pub(super) fn new(log: Option<PathBuf>, attempt: u32) -> Self {
        Self {
            log: LogFile {
                path: log,
                attempt,
                file: None,
            },
            tail: VecDeque::with_capacity(TAIL_LINES),
            lines: Vec::new(),
        }
    }

    /// A line of the attempt of the instance at `instance` with id `id`:
    /// logged, kept for the tail, and passed to `stream` at once or kept
    /// until the attempt ends.
    pub(super) fn line<'s>(
        &mut self,
        instance: usize,
        id: &str,
        line: &str,
        stream: Option<&mut (dyn OutputSink + 's)>,
    ) {
        self.log.line(line);
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_owned());
        match stream {
            Some(sink) => sink.output(instance, id, &[line.to_owned()]),
            None => self.lines.push(line.to_owned()),
        }
    }

    /// Attempt `attempt` ended with `outcome`: a failure ends its log with
    /// a line saying how.
    pub(super) fn ended(&mut self, attempt: u32, outcome: &Outcome) {
        if let Some((_, reason)) = failure(outcome) {
            let how = match outcome {
                Outcome::Exited(code) => format!("exit code {code}"),
                Outcome::Signalled(signal) => format!("killed by signal {signal}"),
                _ => reason.to_string(),
            };
            self.log.line(&format!("--- attempt {attempt} failed: {how} ---"));
        }
    }

    /// The lines kept, the tail, and whether a log file was written.
    pub(super) fn take(&mut self) -> (Vec<String>, Vec<String>, bool) {
        let lines = std::mem::take(&mut self.lines);
        let tail = std::mem::take(&mut self.tail).into();
        (lines, tail, self.log.file.is_some())
    }
}

/// An instance's log, opened at its first line: an instance that prints
/// nothing and succeeds leaves no file (creating thousands of empty files
/// costs a run of `true`s more than anything else but the processes).
pub(super) struct LogFile {
    pub(super) path: Option<PathBuf>,
    pub(super) attempt: u32,
    pub(super) file: Option<File>,
}

impl LogFile {
    pub(super) fn line(&mut self, line: &str) {
        if self.file.is_none() {
            // Not retried: a log that cannot be opened is left out.
            self.file = self.path.take().and_then(|path| open_log(&path, self.attempt));
        }
        if let Some(file) = &mut self.file {
            let _ = writeln!(file, "{line}");
        }
    }
}

fn open_log(path: &Path, attempt: u32) -> Option<File> {
    let mut file = if attempt == 1 {
        File::create(path).ok()?
    } else {
        OpenOptions::new().create(true).append(true).open(path).ok()?
    };
    if attempt > 1 {
        writeln!(file, "--- attempt {attempt} ---").ok()?;
    }
    Some(file)
}

/// The longest line passed on whole; longer ones are split.
pub(super) const MAX_LINE: usize = 64 * 1024;

/// Splits bytes read from a pipe into lines.
#[derive(Default)]
pub(super) struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    pub(super) fn push(&mut self, mut bytes: &[u8], output: &mut dyn FnMut(&str)) {
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
}
