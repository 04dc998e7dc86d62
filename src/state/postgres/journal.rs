//! A running release in the PostgreSQL state: the [`PgJournal`] the
//! executor records into.
//!
//! As with the state directory's journal, each batch of events is applied
//! to the release in memory first (an illegal one is refused before
//! anything is written), then kept as rows, each the event's log line (the
//! same RON text a release log holds). The executor's sync thread commits
//! every row kept so far with one statement ([`PgSyncer`]): one commit per
//! sync where the file backend has one `fdatasync`, so claims of several
//! instances share a commit. Finishing commits what is left with the finish
//! line, in the release's closing transaction.
//!
//! A commit that fails puts its rows back: once the server answers again,
//! [`PgJournal::salvage`] connects anew, takes the env's lock again and
//! writes them, with the events the executor handed on after the failure,
//! and closes the release as interrupted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::store::{PgStore, millis};
use super::{Shared, failure, lock};
use crate::engine::{Event, RecordError, Recorder, Syncer};
use crate::state::format::{LogLine, line};
use crate::state::recovery::interrupt_events;
use crate::state::{Recovered, Release, StateError, Timestamp};

/// How often [`PgJournal::salvage`] tries the server again.
const RETRY: Duration = Duration::from_millis(500);

/// One event row: its position in the release, its time and its line.
#[derive(Debug)]
pub(crate) struct EventRow {
    seq: i64,
    at: i64,
    line: String,
}

impl EventRow {
    pub(crate) fn new(seq: i64, at: Timestamp, entry: &LogLine) -> Self {
        Self {
            seq,
            at: millis(at),
            line: line(entry).trim_end().to_owned(),
        }
    }

    /// A row of a line as it was stored.
    pub(crate) fn raw(seq: i64, at: Timestamp, text: &str) -> Self {
        Self {
            seq,
            at: millis(at),
            line: text.to_owned(),
        }
    }
}

/// Rows written and not yet committed, and the next row's position.
#[derive(Debug)]
struct Pending {
    rows: Vec<EventRow>,
    next: i64,
}

/// The rows recorded and not yet committed, shared with the sync thread.
type Rows = Arc<Mutex<Pending>>;

fn take(rows: &Rows) -> (Vec<EventRow>, i64) {
    let mut pending = rows.lock().unwrap_or_else(PoisonError::into_inner);
    (std::mem::take(&mut pending.rows), pending.next)
}

/// Inserts `rows` of release `id` with one statement.
pub(crate) fn insert_events(
    client: &mut impl postgres::GenericClient,
    pipeline: &str,
    id: &str,
    rows: &[EventRow],
) -> Result<(), postgres::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let seqs: Vec<i64> = rows.iter().map(|row| row.seq).collect();
    let ats: Vec<i64> = rows.iter().map(|row| row.at).collect();
    let lines: Vec<&str> = rows.iter().map(|row| row.line.as_str()).collect();
    client.execute(
        "INSERT INTO stagecraft_events (pipeline, release_id, seq, at, event)
         SELECT $1, $2, s, a, e FROM unnest($3::bigint[], $4::bigint[], $5::text[]) AS t(s, a, e)",
        &[&pipeline, &id, &seqs, &ats, &lines],
    )?;
    Ok(())
}

/// A running release in the PostgreSQL state. Dropping it without
/// [`finish`](Self::finish) leaves the release unfinished: the next command
/// of the env marks it interrupted.
#[derive(Debug)]
pub struct PgJournal<'s> {
    store: &'s mut PgStore,
    release: Release,
    rows: Rows,
    /// A commit failed (its rows were put back): the release closes only
    /// through [`salvage`](Self::salvage).
    broken: Arc<AtomicBool>,
}

impl<'s> PgJournal<'s> {
    pub(crate) fn new(store: &'s mut PgStore, release: Release) -> Self {
        Self {
            store,
            release,
            rows: Arc::new(Mutex::new(Pending {
                rows: Vec::new(),
                next: 1,
            })),
            broken: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The release as recorded so far.
    #[must_use]
    pub fn release(&self) -> &Release {
        &self.release
    }

    /// Applies events that happened together and commits them (with any
    /// written before). Nothing is written if any of them is illegal.
    pub fn append(&mut self, events: &[Event]) -> Result<(), StateError> {
        self.write_events(events)?;
        PgJournal::syncer(self).commit()
    }

    /// Applies events that happened together and keeps their rows for the
    /// next commit.
    pub fn write_events(&mut self, events: &[Event]) -> Result<(), StateError> {
        if events.is_empty() {
            return Ok(());
        }
        let at = self.store.clock().now();
        self.release.apply(events, at)?;
        let mut pending = self.rows.lock().unwrap_or_else(PoisonError::into_inner);
        for event in events {
            let seq = pending.next;
            pending.rows.push(EventRow::new(seq, at, &LogLine::event(event, at)));
            pending.next += 1;
        }
        Ok(())
    }

    /// Finishes the release: commits what is left and its finish line.
    pub fn finish(self) -> Result<Release, StateError> {
        self.close(&[])
    }

    /// Ends an interrupted run (Ctrl-C): every running instance becomes
    /// `failed` and every pending one `skipped` (reason `interrupted`), and
    /// the release finishes, in one transaction.
    pub fn interrupt(self) -> Result<(Release, Recovered), StateError> {
        let (events, recovered) = interrupt_events(&self.release, false);
        let release = self.close(&events)?;
        Ok((release, recovered))
    }

    /// After a failed commit, once the run has ended: waits up to
    /// `patience` for the server to answer again, then writes what was not
    /// committed and closes the release as [`interrupt`](Self::interrupt)
    /// does, under the env's lock taken again.
    ///
    /// # Errors
    ///
    /// The server did not answer in time, another command holds the env's
    /// lock now, or it has recorded the release interrupted meanwhile: the
    /// release is then left to the next command.
    pub fn salvage(self, patience: Duration) -> Result<(Release, Recovered), StateError> {
        let deadline = Instant::now() + patience;
        let last = loop {
            match self.store.reopen(self.release.id) {
                Ok(last) => break last,
                Err(StateError::Database { .. }) if Instant::now() < deadline => thread::sleep(RETRY),
                Err(error) => return Err(error),
            }
        };
        // A commit whose answer was lost may have written some rows.
        let mut pending = self.rows.lock().unwrap_or_else(PoisonError::into_inner);
        pending.rows.retain(|row| row.seq > last);
        drop(pending);
        self.broken.store(false, Ordering::SeqCst);
        self.interrupt()
    }

    fn close(self, events: &[Event]) -> Result<Release, StateError> {
        self.check_usable()?;
        let mut release = self.release.clone();
        let (rows, next) = take(&self.rows);
        self.store.close_release(&mut release, events, rows, next)?;
        Ok(release)
    }

    fn check_usable(&self) -> Result<(), StateError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(StateError::Database {
                action: "record a release in",
                target: lock(self.store.reader().shared()).target().to_owned(),
                message: "an earlier commit failed".to_owned(),
            });
        }
        Ok(())
    }

    fn syncer(&self) -> PgSyncer {
        PgSyncer {
            db: Arc::clone(self.store.reader().shared()),
            rows: Arc::clone(&self.rows),
            broken: Arc::clone(&self.broken),
            pipeline: self.release.pipeline.clone(),
            id: self.release.id.to_string(),
        }
    }
}

/// Commits the rows a journal kept, from any thread (see the module docs).
#[derive(Debug)]
pub(crate) struct PgSyncer {
    db: Shared,
    rows: Rows,
    broken: Arc<AtomicBool>,
    pipeline: String,
    id: String,
}

impl PgSyncer {
    fn commit(&self) -> Result<(), StateError> {
        // The connection first, then the rows: the journal's writes take
        // only the rows, so they never wait for a commit.
        let mut db = lock(&self.db);
        let (rows, _) = take(&self.rows);
        let target = db.target().to_owned();
        insert_events(&mut db.client, &self.pipeline, &self.id, &rows).map_err(|error| {
            self.broken.store(true, Ordering::SeqCst);
            // Back in front of any kept since, for `salvage`.
            let mut pending = self.rows.lock().unwrap_or_else(PoisonError::into_inner);
            pending.rows.splice(0..0, rows);
            failure(&target, "record a release in")(error)
        })
    }
}

impl Syncer for PgSyncer {
    fn sync(&mut self) -> Result<(), RecordError> {
        self.commit().map_err(|error| RecordError(error.to_string()))
    }
}

/// Events are kept at once and committed by the executor's sync thread;
/// `finish` and `interrupt` commit what is left.
impl Recorder for PgJournal<'_> {
    fn record(&mut self, events: &[Event]) -> Result<(), RecordError> {
        self.write_events(events)
            .map_err(|error| RecordError(error.to_string()))
    }

    fn syncer(&mut self) -> Result<Option<Box<dyn Syncer>>, RecordError> {
        Ok(Some(Box::new(PgJournal::syncer(self))))
    }

    /// Kept with the rows not committed, for [`PgJournal::salvage`].
    fn keep(&mut self, events: &[Event]) {
        // Only an illegal event fails, and is refused as `record` would.
        let _ = self.write_events(events);
    }
}
