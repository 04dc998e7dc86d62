//! Grouped output (`jobs > 1`): an attempt's lines are passed on as one
//! block when it ends. A little is kept in memory; past
//! [`GROUP_MEMORY`] bytes the block is read back from the instance's log,
//! or, when there is no log (or it cannot be written), from a spool file
//! in the temporary directory, unlinked as soon as it is created. So the
//! memory a run takes does not grow with what its commands print.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::sync::atomic::{AtomicU64, Ordering};

use super::OutputSink;
use super::log::LogFile;

/// The most bytes of one attempt's grouped output kept in memory.
pub(super) const GROUP_MEMORY: usize = 32 * 1024;

/// The most bytes of lines passed to the sink in one call when a block is
/// read back.
const BATCH: usize = 64 * 1024;

/// Where an attempt's grouped output is while it runs.
pub(super) enum Group {
    /// In memory, with its size in bytes.
    Memory(Vec<String>, usize),
    /// In the log, from this offset on.
    Log(u64),
    /// In the log from `.0` to `.1`, if anything, then in a spool file.
    Spool(Option<(u64, u64)>, Spool),
}

impl Default for Group {
    fn default() -> Self {
        Self::Memory(Vec::new(), 0)
    }
}

impl Group {
    /// Keeps `line`, which `log` was just given.
    pub(super) fn push(&mut self, line: &str, log: &mut LogFile) {
        if self.settle(log) {
            // The log failed on this line: the spool has it already.
            return;
        }
        match self {
            Self::Memory(lines, size) => {
                *size += line.len() + 1;
                lines.push(line.to_owned());
                if *size > GROUP_MEMORY {
                    self.overflow(log);
                }
            }
            Self::Log(_) => {}
            Self::Spool(_, spool) => spool.write(line.as_bytes(), true),
        }
    }

    /// Too much for memory: the log has it all, else a spool takes it.
    fn overflow(&mut self, log: &LogFile) {
        let Self::Memory(lines, _) = self else { return };
        if log.sound() {
            *self = Self::Log(log.start());
        } else {
            let mut spool = Spool::new();
            for line in lines.iter() {
                spool.write(line.as_bytes(), true);
            }
            *self = Self::Spool(None, spool);
        }
    }

    /// If the log failed while it held the output: what it wrote stays
    /// there, and a spool takes what it did not write and what follows.
    /// Returns whether it did.
    pub(super) fn settle(&mut self, log: &mut LogFile) -> bool {
        let Self::Log(start) = *self else { return false };
        if log.sound() {
            return false;
        }
        let written = log.written();
        let unwritten = log.take_unwritten();
        // What precedes the attempt's output (its header) is not output.
        let skip = usize::try_from(start.saturating_sub(written)).unwrap_or(usize::MAX);
        let mut spool = Spool::new();
        spool.write(unwritten.get(skip..).unwrap_or_default(), false);
        *self = Self::Spool(Some((start, written.max(start))), spool);
        true
    }

    /// The attempt ended: its output, to pass on.
    pub(super) fn finish(&mut self, log: &mut LogFile) -> Grouped {
        let _ = self.settle(log);
        let from_log = |(start, end)| log.reader().map(|file| Segment { file, at: start, end });
        match std::mem::take(self) {
            Self::Memory(lines, _) => Grouped::Lines(lines),
            Self::Log(start) => match from_log((start, log.written())) {
                Ok(segment) => Grouped::Read(vec![segment], None),
                Err(error) => Grouped::Read(Vec::new(), Some(error.to_string())),
            },
            Self::Spool(range, spool) => {
                let mut segments = Vec::new();
                let mut lost = None;
                match range.map(from_log).transpose() {
                    Ok(segment) => segments.extend(segment),
                    Err(error) => lost = Some(error.to_string()),
                }
                match spool.finish() {
                    Ok(file) => segments.push(Segment {
                        file,
                        at: 0,
                        end: u64::MAX,
                    }),
                    Err(error) => lost = Some(error),
                }
                Grouped::Read(segments, lost)
            }
        }
    }
}

/// A spool file, unlinked; `Err` once it failed (output is lost).
pub(super) struct Spool(Result<BufWriter<File>, String>);

impl Spool {
    fn new() -> Self {
        Self(
            spool_file()
                .map(|file| BufWriter::with_capacity(BATCH, file))
                .map_err(|error| format!("cannot create a spool file: {error}")),
        )
    }

    fn write(&mut self, bytes: &[u8], line: bool) {
        if let Ok(writer) = &mut self.0 {
            let result = writer.write_all(bytes);
            let result = if line {
                result.and_then(|()| writer.write_all(b"\n"))
            } else {
                result
            };
            if let Err(error) = result {
                self.0 = Err(format!("cannot write a spool file: {error}"));
            }
        }
    }

    fn finish(self) -> Result<File, String> {
        self.0?
            .into_inner()
            .map_err(|error| format!("cannot write a spool file: {}", error.error()))
    }
}

/// Creates a file in the temporary directory, readable and writable by
/// this user only, and unlinks it: it goes when it is closed.
fn spool_file() -> io::Result<File> {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir();
    loop {
        let count = COUNT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".stagecraft-{}-{count}.spool", std::process::id()));
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path);
        match opened {
            Ok(file) => {
                let _ = fs::remove_file(&path);
                return Ok(file);
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error),
        }
    }
}

/// An attempt's grouped output, as it ended.
pub(in crate::engine) enum Grouped {
    /// Kept in memory.
    Lines(Vec<String>),
    /// To read back from these parts of files, in order; and why some of
    /// it was lost, if it was.
    Read(Vec<Segment>, Option<String>),
}

impl Default for Grouped {
    fn default() -> Self {
        Self::Lines(Vec::new())
    }
}

impl Grouped {
    /// Passes the output on to `sink`, in calls of at most [`BATCH`]
    /// bytes (or one line) each, one after the other.
    pub(in crate::engine) fn deliver(self, instance: usize, id: &str, sink: &mut dyn OutputSink) {
        let (segments, mut lost) = match self {
            Self::Lines(lines) => {
                if !lines.is_empty() {
                    sink.output(instance, id, &lines);
                }
                return;
            }
            Self::Read(segments, lost) => (segments, lost),
        };
        let chain = segments
            .into_iter()
            .fold(Box::new(io::empty()) as Box<dyn Read>, |chain, segment| {
                Box::new(chain.chain(segment))
            });
        let mut reader = BufReader::with_capacity(BATCH, chain);
        let (mut batch, mut size, mut line) = (Vec::new(), 0, Vec::new());
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(error) => {
                    lost.get_or_insert_with(|| format!("cannot read the output back: {error}"));
                    break;
                }
            }
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            size += text.len() + 1;
            batch.push(String::from_utf8_lossy(text).into_owned());
            if size >= BATCH {
                sink.output(instance, id, &batch);
                (batch, size) = (Vec::new(), 0);
            }
        }
        if let Some(lost) = lost {
            batch.push(format!("[stagecraft: some of this output is missing: {lost}]"));
        }
        if !batch.is_empty() {
            sink.output(instance, id, &batch);
        }
    }
}

/// Part of a file, read with `pread` (so a shared offset does not matter).
pub(in crate::engine) struct Segment {
    file: File,
    at: u64,
    end: u64,
}

impl Read for Segment {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.end - self.at).unwrap_or(usize::MAX);
        let want = buffer.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        let read = self.file.read_at(&mut buffer[..want], self.at)?;
        self.at += read as u64;
        Ok(read)
    }
}
