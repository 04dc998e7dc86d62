//! A release log: the [`Journal`] that appends to it during a run, and
//! [`read_log`], which rebuilds a [`Release`] from it.
//!
//! The journal keeps the release in memory and applies every batch of
//! events to it first (so an illegal transition is refused before anything
//! is written), then appends the batch's lines with one write. One
//! `fdatasync` makes every batch written before it durable: [`Journal::append`]
//! does both; the executor writes and syncs through [`LogSyncer`] on a thread
//! of its own. The cost of a transition is therefore one small append and at
//! most one sync, whatever the history holds. The log is written in place over
//! zeros written ahead of the data ([`InPlaceLog`]), which makes each sync
//! cheaper; finishing the release trims them.
//!
//! A write that fails keeps its lines, and the journal writes nothing more
//! until [`Journal::salvage`], after the run, writes them (with the lines of
//! the events the executor handed on after the failure) over whatever the
//! failed write left, syncs, and closes the release as interrupted.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::durable::InPlaceLog;
use super::error::StateError;
use super::format::{self, LogLine};
use super::recovery::{Recovered, interrupt_events};
use super::release::Release;
use super::store::Store;
use crate::engine::{Event, RecordError, Recorder, Syncer};

/// An open release log, written as the executor reports events. Dropping
/// it without [`finish`](Self::finish) leaves the release unfinished: the
/// next command that opens the state marks it interrupted.
#[derive(Debug)]
pub struct Journal<'s> {
    store: &'s mut Store,
    log: InPlaceLog,
    path: PathBuf,
    release: Release,
    /// A write or a sync failed: the file may end in a torn line, so
    /// nothing more is written through this journal but by `salvage`.
    broken: bool,
    /// The lines not written since then, for `salvage`.
    held: String,
    /// Batches of events written so far (for the debug builds' fault).
    writes: u32,
    /// The debug builds' fault fails every write from now on.
    faulting: bool,
}

impl<'s> Journal<'s> {
    pub(crate) fn open(store: &'s mut Store, path: PathBuf, release: Release) -> Result<Self, StateError> {
        let log = InPlaceLog::open(&path)?;
        Ok(Self {
            store,
            log,
            path,
            release,
            broken: false,
            held: String::new(),
            writes: 0,
            faulting: false,
        })
    }

    /// The release as recorded so far.
    #[must_use]
    pub fn release(&self) -> &Release {
        &self.release
    }

    /// The release log's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies events that happened together and makes them durable with
    /// one sync. Nothing is written if any of them is illegal.
    ///
    /// # Errors
    ///
    /// An illegal event ([`StateError::Event`]), or the write failed.
    pub fn append(&mut self, events: &[Event]) -> Result<(), StateError> {
        self.write_events(events)?;
        self.log.sync(&self.path).inspect_err(|_| self.broken = true)
    }

    /// Applies events that happened together and writes them, without
    /// waiting for them to be durable (see `Journal::syncer`). Nothing is
    /// written if any of them is illegal.
    ///
    /// # Errors
    ///
    /// An illegal event ([`StateError::Event`]), or the write failed.
    pub fn write_events(&mut self, events: &[Event]) -> Result<(), StateError> {
        if events.is_empty() {
            return Ok(());
        }
        self.check_usable()?;
        let at = self.store.clock().now();
        // All or nothing; if the write then fails the journal is broken, so
        // the events applied in memory are never built on.
        self.release.apply(events, at)?;
        let mut text = String::with_capacity(96 * events.len());
        format::event_lines(events, at, &mut text);
        self.write(&text, events)
    }

    /// Finishes the release: appends its finish line, then the index's.
    ///
    /// # Errors
    ///
    /// An instance is still pending or running, or a write failed.
    pub fn finish(self) -> Result<Release, StateError> {
        self.close(&[])
    }

    /// Ends an interrupted run (Ctrl-C): every running instance becomes
    /// `failed` and every pending one `skipped` (reason `interrupted`), and
    /// the release finishes, all with one sync of the log.
    ///
    /// # Errors
    ///
    /// A write failed.
    pub fn interrupt(self) -> Result<(Release, Recovered), StateError> {
        let (events, recovered) = interrupt_events(&self.release, false);
        let release = self.close(&events)?;
        Ok((release, recovered))
    }

    /// After a failed write or sync, once the run has ended: tries for up to
    /// `patience` (every half second) to write the lines held back at the
    /// end of the data and sync them, then closes the release as
    /// [`interrupt`](Self::interrupt) does.
    ///
    /// # Errors
    ///
    /// The disk still fails: the release is left to the next command.
    pub fn salvage(mut self, patience: Duration) -> Result<(Release, Recovered), StateError> {
        let deadline = Instant::now() + patience;
        while let Err(error) = self.write_held() {
            if Instant::now() >= deadline {
                return Err(error);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        self.broken = false;
        self.interrupt()
    }

    fn write_held(&mut self) -> Result<(), StateError> {
        if !self.held.is_empty() {
            self.writes += 1;
            self.fault(&[])?;
            self.log.write(&self.path, self.held.as_bytes())?;
            self.held.clear();
        }
        self.log.sync(&self.path)
    }

    /// Closes the release with `events` (see [`Store::close_release`]),
    /// trimming the log's zeros with the sync.
    fn close(mut self, events: &[Event]) -> Result<Release, StateError> {
        self.check_usable()?;
        let mut release = self.release.clone();
        let (log, path, broken) = (&mut self.log, &self.path, &mut self.broken);
        self.store.close_release(&mut release, events, |text| {
            log.write(path, text.as_bytes()).inspect_err(|_| *broken = true)?;
            log.trim(path)
        })?;
        Ok(release)
    }

    fn check_usable(&self) -> Result<(), StateError> {
        if self.broken {
            let error = std::io::Error::other("an earlier write failed");
            return Err(StateError::io("append to", &self.path)(error));
        }
        Ok(())
    }

    fn write(&mut self, text: &str, events: &[Event]) -> Result<(), StateError> {
        self.writes += 1;
        self.fault(events)
            .and_then(|()| self.log.write(&self.path, text.as_bytes()))
            .inspect_err(|_| {
                self.broken = true;
                self.held.push_str(text);
            })
    }

    /// A way to test a disk that fills up during a run, compiled only into
    /// debug builds: with `STAGECRAFT_DEBUG_FAIL_WRITE=N`, the N-th write
    /// of `events` fails as on a full disk (`ENOSPC`); with `start:ID`, the
    /// one that records instance ID started; with `+` after either, that
    /// one and every later one (the salvage's too).
    #[cfg_attr(not(debug_assertions), allow(clippy::unnecessary_wraps))]
    fn fault(&mut self, events: &[Event]) -> Result<(), StateError> {
        #[cfg(debug_assertions)]
        if let Ok(fault) = std::env::var("STAGECRAFT_DEBUG_FAIL_WRITE") {
            let (fault, later) = fault.strip_suffix('+').map_or((fault.as_str(), false), |f| (f, true));
            let instances = self.release.instances();
            let hit = match fault.strip_prefix("start:") {
                Some(id) => events.iter().any(|event| {
                    matches!(event, Event::Started { instance, .. }
                        if instances.get(*instance).is_some_and(|i| i.id() == id))
                }),
                None => fault == self.writes.to_string(),
            };
            self.faulting |= hit && later;
            if hit || self.faulting {
                let error = std::io::Error::from_raw_os_error(28);
                return Err(StateError::io("append to", &self.path)(error));
            }
        }
        let _ = (events, &mut self.faulting);
        Ok(())
    }

    /// What makes written events durable, from any thread: one
    /// `fdatasync` of the log covers everything written before it.
    ///
    /// # Errors
    ///
    /// The log cannot be opened a second time.
    pub(crate) fn syncer(&self) -> Result<LogSyncer, StateError> {
        Ok(LogSyncer {
            file: self.log.handle(&self.path)?,
            path: self.path.clone(),
        })
    }
}

/// Syncs a release log from another thread (see [`Journal::syncer`]).
#[derive(Debug)]
pub(crate) struct LogSyncer {
    file: File,
    path: PathBuf,
}

impl Syncer for LogSyncer {
    fn sync(&mut self) -> Result<(), RecordError> {
        self.file
            .sync_data()
            .map_err(|error| RecordError(StateError::io("sync", &self.path)(error).to_string()))
    }
}

/// Events are written at once and made durable by the executor through
/// `Journal::syncer`; `finish` and `interrupt` sync what is left.
impl Recorder for Journal<'_> {
    fn record(&mut self, events: &[Event]) -> Result<(), RecordError> {
        self.write_events(events)
            .map_err(|error| RecordError(error.to_string()))
    }

    fn syncer(&mut self) -> Result<Option<Box<dyn Syncer>>, RecordError> {
        let syncer = Journal::syncer(self).map_err(|error| RecordError(error.to_string()))?;
        Ok(Some(Box::new(syncer)))
    }

    /// Held back, for [`Journal::salvage`].
    fn keep(&mut self, events: &[Event]) {
        // A sync may have failed: nothing is written from here on.
        self.broken = true;
        let at = self.store.clock().now();
        // Only an illegal event fails, and is refused as `record` would.
        if self.release.apply(events, at).is_ok() {
            format::event_lines(events, at, &mut self.held);
        }
    }
}

/// A release log read back.
#[derive(Debug)]
pub(crate) struct Log {
    pub(crate) release: Release,
    /// See [`format::Lines::torn`].
    pub(crate) torn: Option<u64>,
    /// The boot it was written in, if known.
    pub(crate) boot: Option<String>,
}

/// Rebuilds a release from its log by replaying its events.
///
/// # Errors
///
/// The file cannot be read, or is corrupt: a line that does not parse, a
/// missing header, or an event that is not a legal transition (each named
/// with its line).
pub(crate) fn read_log(path: &Path) -> Result<Log, StateError> {
    let lines: format::Lines<LogLine> = format::read(path)?;
    let corrupt = |line: usize, message: String| StateError::Corrupt {
        path: path.to_owned(),
        line,
        message,
    };
    let mut lines_iter = lines.lines.into_iter();
    let Some((header, instances, commands, finally, undo, boot)) =
        lines_iter.next().and_then(|(_, first)| first.into_release())
    else {
        return Err(corrupt(2, "the second line is not the release header".to_owned()));
    };
    let mut release = Release::new(header, instances);
    release.set_commands(commands);
    release.set_finally(&finally);
    release.set_undo(undo);
    for (number, entry) in lines_iter {
        if let LogLine::Finished { at } = entry {
            release.finish(at).map_err(|error| corrupt(number, error.to_string()))?;
        } else if let Some((event, at)) = entry.to_event() {
            release
                .apply(&[event], at)
                .map_err(|error| corrupt(number, error.to_string()))?;
        } else {
            return Err(corrupt(number, "a second release header".to_owned()));
        }
    }
    Ok(Log {
        release,
        torn: lines.torn,
        boot,
    })
}
