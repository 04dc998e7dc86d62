//! An instance's log file for one attempt: opened at the attempt's first
//! line, written in blocks (at most [`LOG_BUFFER`] bytes wait in memory,
//! and the executor flushes after each poll of the attempt), and read back
//! to pass on grouped output.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;

/// The most bytes of log waiting to be written.
const LOG_BUFFER: usize = 64 * 1024;

/// An instance's log, opened at its first line: an instance that prints
/// nothing and succeeds leaves no file (creating thousands of empty files
/// costs a run of `true`s more than anything else but the processes).
pub(super) struct LogFile {
    /// Where to open it; taken at the first line.
    path: Option<PathBuf>,
    attempt: u32,
    file: Option<File>,
    /// Where this attempt's output starts in the file.
    start: u64,
    /// The file's path, once opened (for messages).
    path_shown: PathBuf,
    /// How much of the file is written.
    written: u64,
    /// Bytes not written yet; once a write failed, those it did not write.
    pending: Vec<u8>,
    /// A write failed: nothing more is written.
    failed: bool,
    /// Why the file could not be opened or written, naming it.
    error: Option<String>,
}

impl LogFile {
    /// The log of attempt `attempt` at `path`, if any; not opened yet.
    pub(super) fn new(path: Option<PathBuf>, attempt: u32) -> Self {
        Self {
            path,
            attempt,
            file: None,
            start: 0,
            path_shown: PathBuf::new(),
            written: 0,
            pending: Vec::new(),
            failed: false,
            error: None,
        }
    }

    /// Appends `line` and a line break (opening the file at the first).
    pub(super) fn line(&mut self, line: &str) {
        if let Some(path) = self.path.take() {
            // Not retried: a log that cannot be opened is left out.
            self.open(path);
        }
        if self.file.is_none() || self.failed {
            return;
        }
        self.pending.extend_from_slice(line.as_bytes());
        self.pending.push(b'\n');
        if self.pending.len() >= LOG_BUFFER {
            self.flush();
        }
    }

    /// The first attempt truncates the file; later ones append to it,
    /// after a line `--- attempt N ---`.
    fn open(&mut self, path: PathBuf) {
        let mut options = OpenOptions::new();
        options.read(true).create(true);
        if self.attempt == 1 {
            options.write(true).truncate(true);
        } else {
            options.append(true);
        }
        let opened = options.open(&path).and_then(|file| Ok((file.metadata()?.len(), file)));
        let (len, file) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                self.error = Some(format!("cannot write `{}`: {error}", path.display()));
                return;
            }
        };
        self.written = len;
        self.path_shown = path;
        if self.attempt > 1 {
            self.pending
                .extend_from_slice(format!("--- attempt {} ---\n", self.attempt).as_bytes());
        }
        self.start = self.end();
        self.file = Some(file);
    }

    /// Writes what waits. A failed write leaves in `pending` what it did
    /// not write, and stops the log.
    pub(super) fn flush(&mut self) {
        let Some(mut file) = self.file.as_ref() else { return };
        if self.failed {
            return;
        }
        let mut done = 0;
        while done < self.pending.len() {
            let error = match file.write(&self.pending[done..]) {
                Ok(0) => io::ErrorKind::WriteZero.into(),
                Ok(count) => {
                    done += count;
                    continue;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => error,
            };
            self.failed = true;
            self.error = Some(format!("cannot write `{}`: {error}", self.path_shown.display()));
            break;
        }
        self.written += done as u64;
        self.pending.drain(..done);
    }

    /// Whether the file was opened.
    pub(super) fn opened(&self) -> bool {
        self.file.is_some()
    }

    /// Why the log is incomplete: it could not be opened, or a write
    /// failed (the disk is full, …).
    pub(super) fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Whether the file was opened and every write so far succeeded.
    pub(super) fn sound(&self) -> bool {
        self.file.is_some() && !self.failed
    }

    /// Where this attempt's output starts in the file.
    pub(super) fn start(&self) -> u64 {
        self.start
    }

    /// How much of the file is written.
    pub(super) fn written(&self) -> u64 {
        self.written
    }

    /// Where the next line goes: the file's end once everything is written.
    fn end(&self) -> u64 {
        self.written + self.pending.len() as u64
    }

    /// Once a write failed: the bytes it left unwritten, handed over.
    pub(super) fn take_unwritten(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }

    /// A second handle on the file, to read it back.
    pub(super) fn reader(&self) -> io::Result<File> {
        match &self.file {
            Some(file) => file.try_clone(),
            None => Err(io::Error::other("no log file")),
        }
    }
}
