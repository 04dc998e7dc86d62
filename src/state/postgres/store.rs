//! Writing one env of one pipeline in the PostgreSQL state, under the env's
//! session advisory lock ([`PgStore`]): the same steps as the state
//! directory's `Store`, each a transaction.
//!
//! A release starts with one transaction (its row with its header line, and
//! its env index row), committed before any command runs; its events are
//! inserted by the journal, a batch per commit; it ends with one transaction
//! (the last events and the finish line, the row's `finished_at` and
//! `status`, the env index's live state). A run that died left its release
//! unfinished: the next command of the env, holding the lock, marks it
//! interrupted, naming the host the lock holders table recorded for it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::journal::{EventRow, PgJournal, insert_events};
use super::read::PgPipeline;
use super::{Locking, Shared, failure, lock};
use crate::engine::{Event, Plan};
use crate::state::boot;
use crate::state::format::{LogLine, line, store_live};
use crate::state::live::advance;
use crate::state::query::is_deployment;
use crate::state::recovery::interrupt_events;
use crate::state::store::{planned_release, remove_scripts, stop_orphans};
use crate::state::{
    Clock, Holder, Live, Reap, Recovered, Release, ReleaseId, ReleaseMeta, ReleaseSummary, StateError, Wait,
};

/// How often a waiting run tries the lock again.
const POLL: Duration = Duration::from_millis(50);

/// One env of one pipeline in the PostgreSQL state, under its lock: what a
/// run writes through. Dropping it releases the lock.
#[derive(Debug)]
pub struct PgStore {
    reader: PgPipeline,
    env: String,
    /// Who holds the env's lock: this run.
    holder: Holder,
    clock: Clock,
    newest: Option<ReleaseId>,
    live: Live,
    current: Option<ReleaseSummary>,
}

impl PgStore {
    /// Takes the lock of `env` of `pipeline` through `reader`'s connection
    /// (waiting as `wait` says), then recovers the env's release whose run
    /// died.
    pub(crate) fn open(
        reader: PgPipeline,
        env: &str,
        holder: &Holder,
        wait: Wait,
        clock: Clock,
        reap: &Reap<'_>,
    ) -> Result<(Self, Vec<Recovered>), StateError> {
        let previous = acquire(reader.shared(), reader.name(), env, holder, wait)?;
        let mut store = Self {
            reader,
            env: env.to_owned(),
            holder: holder.clone(),
            clock,
            newest: None,
            live: Live::default(),
            current: None,
        };
        // From here on, dropping `store` releases the lock.
        let recovered = store.recover(previous.as_ref(), reap)?;
        store.newest = store.newest_id()?;
        store.live = store.reader.live(env)?;
        store.current = store.reader.current(env)?;
        remove_scripts(&store.script_dir());
        Ok((store, recovered))
    }

    /// The pipeline's history, to read (through the same connection).
    #[must_use]
    pub fn reader(&self) -> &PgPipeline {
        &self.reader
    }

    /// Where the env's runs on this machine write long commands' scripts.
    #[must_use]
    pub fn script_dir(&self) -> PathBuf {
        self.reader.script_dir(&self.env)
    }

    /// What is live in the env now.
    #[must_use]
    pub fn live(&self) -> &Live {
        &self.live
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The id the next release gets: the clock's id, or the successor of the
    /// env's newest, skipping ids another env's run took.
    pub fn next_id(&self) -> Result<ReleaseId, StateError> {
        let mut id = ReleaseId::allocate(self.clock.now(), self.newest);
        while self.taken(id)? {
            id = id.successor();
        }
        Ok(id)
    }

    /// [`next_id`](Self::next_id), `plan_for` plans with it, and the release
    /// starts; when another env's run took the id meanwhile, again with the
    /// next one.
    pub(crate) fn begin_with<E: From<StateError>>(
        &mut self,
        meta: &ReleaseMeta,
        mut plan_for: impl FnMut(ReleaseId) -> Result<Plan, E>,
    ) -> Result<(PgJournal<'_>, Plan), E> {
        loop {
            let id = self.next_id()?;
            let plan = plan_for(id)?;
            match self.start(id, &plan, meta.clone()) {
                Ok(release) => return Ok((PgJournal::new(self, release), plan)),
                Err(StateError::IdTaken { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Records that release `id` starts running `plan`, committed before
    /// anything runs.
    fn start(&mut self, id: ReleaseId, plan: &Plan, meta: ReleaseMeta) -> Result<Release, StateError> {
        if plan.pipeline != self.reader.name() || plan.env != self.env || self.newest.is_some_and(|n| n >= id) {
            return Err(StateError::Database {
                action: "start a release in",
                target: lock(self.reader.shared()).target().to_owned(),
                message: format!(
                    "release {id} of pipeline `{}` env `{}` does not fit the env `{}` open, whose newest release is {}",
                    plan.pipeline,
                    plan.env,
                    self.env,
                    self.newest.map_or_else(|| "none".to_owned(), |n| n.to_string())
                ),
            });
        }
        let previous = if is_deployment(&plan.workflow) {
            self.current.as_ref().map(|s| s.id)
        } else {
            None
        };
        let (release, head) = planned_release(id, plan, previous, meta, &self.clock);
        insert_release(self.reader.shared(), &release, &head)?;
        self.newest = Some(id);
        if release.is_deployment() {
            let mut summary = ReleaseSummary::from(&release);
            summary.finished_at = None;
            self.current = Some(summary);
        }
        Ok(release)
    }

    /// Closes a release (see the file store's `close_release`): applies
    /// `events`, marks it finished now and commits, in one transaction, the
    /// rows not yet written (`pending`), the events' lines and the finish
    /// line from `seq` on, its `finished_at` and `status`, and the env's
    /// live state after it.
    pub(crate) fn close_release(
        &mut self,
        release: &mut Release,
        events: &[Event],
        mut pending: Vec<EventRow>,
        seq: i64,
    ) -> Result<(), StateError> {
        let at = self.clock.now();
        release.apply(events, at)?;
        release.finish(at)?;
        let lines = events
            .iter()
            .map(|event| LogLine::event(event, at))
            .chain([LogLine::Finished { at }]);
        for (next, entry) in (seq..).zip(lines) {
            pending.push(EventRow::new(next, at, &entry));
        }
        let live = release.is_deployment().then(|| advance(&self.live, release));
        let stored = live.as_ref().map(|live| line(&store_live(live)).trim_end().to_owned());
        let mut db = lock(self.reader.shared());
        let target = db.target().to_owned();
        let fail = || failure(&target, "record a release in");
        let mut transaction = db.client.transaction().map_err(fail())?;
        let (pipeline, id) = (release.pipeline.as_str(), release.id.to_string());
        insert_events(&mut transaction, pipeline, &id, &pending).map_err(fail())?;
        let finished = millis(at);
        let status = release.status().to_string();
        transaction
            .execute(
                "UPDATE stagecraft_releases SET finished_at = $3, status = $4 WHERE pipeline = $1 AND id = $2",
                &[&pipeline, &id, &finished, &status],
            )
            .map_err(fail())?;
        transaction
            .execute(
                "UPDATE stagecraft_env_index SET live = $4 WHERE pipeline = $1 AND env = $2 AND release_id = $3",
                &[&pipeline, &release.env, &id, &stored],
            )
            .map_err(fail())?;
        transaction.commit().map_err(fail())?;
        drop(db);
        if let Some(live) = live {
            self.live = live;
            let mut summary = ReleaseSummary::from(&*release);
            summary.live = Some(self.live.clone());
            self.current = Some(summary);
        }
        Ok(())
    }

    /// Finishes the env's releases whose run died (any unfinished one: the
    /// lock is held, so nobody is writing it), naming the host the dead
    /// holder ran on.
    fn recover(&mut self, previous: Option<&Holder>, reap: &Reap<'_>) -> Result<Vec<Recovered>, StateError> {
        let ids: Vec<String> = {
            let mut db = lock(self.reader.shared());
            let rows = db
                .client
                .query(
                    "SELECT id FROM stagecraft_releases
                     WHERE pipeline = $1 AND env = $2 AND finished_at IS NULL ORDER BY id COLLATE \"C\"",
                    &[&self.reader.name(), &self.env],
                )
                .map_err(db.fail("read"))?;
            rows.iter().filter_map(|row| row.try_get(0).ok()).collect()
        };
        let mut reports = Vec::new();
        for text in ids {
            let Ok(id) = text.parse::<ReleaseId>() else {
                continue;
            };
            let Some((mut release, boot)) = self.reader.load(id)? else {
                continue;
            };
            // Only a run of this machine's boot can have left commands
            // here; writes not yet committed died with the run, so a claimed
            // instance may have started.
            let here = boot.is_some() && boot == boot::current();
            let stopped = if here {
                stop_orphans(&release, &self.env, reap)?
            } else {
                Vec::new()
            };
            let (events, mut report) = interrupt_events(&release, true);
            report.stopped = stopped;
            report.host = previous.map(|holder| holder.host.clone());
            let seq = self.last_seq(id)? + 1;
            self.close_release(&mut release, &events, Vec::new(), seq)?;
            reports.push(report);
        }
        Ok(reports)
    }

    /// After the connection failed during a run: connects again, takes the
    /// env's lock again (without waiting), and returns the last event row
    /// of release `id`, which must still be unfinished.
    ///
    /// # Errors
    ///
    /// [`StateError::Database`] if the server cannot be reached (yet);
    /// [`StateError::Locked`] if another command holds the lock now, or
    /// [`StateError::Finished`] if one has finished the release meanwhile.
    pub(crate) fn reopen(&mut self, id: ReleaseId) -> Result<i64, StateError> {
        {
            let mut db = lock(self.reader.shared());
            db.reconnect()?;
            db.end_own_session(self.reader.name(), &self.env, &self.holder)?;
        }
        acquire(
            self.reader.shared(),
            self.reader.name(),
            &self.env,
            &self.holder,
            Wait::No,
        )?;
        let finished = {
            let mut db = lock(self.reader.shared());
            let row = db
                .client
                .query_opt(
                    "SELECT finished_at IS NOT NULL FROM stagecraft_releases WHERE pipeline = $1 AND id = $2",
                    &[&self.reader.name(), &id.to_string()],
                )
                .map_err(db.fail("read"))?;
            row.is_none_or(|row| row.get::<_, bool>(0))
        };
        if finished {
            return Err(StateError::Finished { id });
        }
        self.last_seq(id)
    }

    fn last_seq(&self, id: ReleaseId) -> Result<i64, StateError> {
        let mut db = lock(self.reader.shared());
        let row = db
            .client
            .query_one(
                "SELECT coalesce(max(seq), 0) FROM stagecraft_events WHERE pipeline = $1 AND release_id = $2",
                &[&self.reader.name(), &id.to_string()],
            )
            .map_err(db.fail("read"))?;
        Ok(row.get(0))
    }

    fn newest_id(&self) -> Result<Option<ReleaseId>, StateError> {
        let mut db = lock(self.reader.shared());
        let row = db
            .client
            .query_one(
                "SELECT max(id COLLATE \"C\") FROM stagecraft_releases WHERE pipeline = $1 AND env = $2",
                &[&self.reader.name(), &self.env],
            )
            .map_err(db.fail("read"))?;
        let newest: Option<String> = row.get(0);
        Ok(newest.and_then(|text| text.parse().ok()))
    }

    fn taken(&self, id: ReleaseId) -> Result<bool, StateError> {
        let mut db = lock(self.reader.shared());
        let row = db
            .client
            .query_opt(
                "SELECT 1 FROM stagecraft_releases WHERE pipeline = $1 AND id = $2",
                &[&self.reader.name(), &id.to_string()],
            )
            .map_err(db.fail("read"))?;
        Ok(row.is_some())
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // A connection that is gone has lost the lock with its session.
        let _ = lock(self.reader.shared()).unlock(self.reader.name(), &self.env);
    }
}

/// Takes the env's lock, trying again every [`POLL`] while `wait` allows;
/// returns the holder whose session ended holding it, if any.
fn acquire(db: &Shared, pipeline: &str, env: &str, holder: &Holder, wait: Wait) -> Result<Option<Holder>, StateError> {
    let deadline = match wait {
        Wait::No => Some(Instant::now()),
        Wait::For(duration) => Instant::now().checked_add(duration),
        Wait::Forever => None,
    };
    loop {
        let attempt = lock(db).try_lock(pipeline, env, holder)?;
        match attempt {
            Locking::Acquired { previous } => return Ok(previous),
            Locking::Held(current) => {
                if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                    return Err(StateError::Locked {
                        // The lock's name in the layout both backends share,
                        // so that the message names the pipeline and env.
                        path: ["pipelines", pipeline, "envs", env, "lock"].iter().collect(),
                        holder: current,
                    });
                }
                std::thread::sleep(POLL);
            }
        }
    }
}

/// Inserts release `release`'s row (its columns and header line `head`)
/// and its env index row, in one transaction; [`StateError::IdTaken`] if
/// the pipeline has a release with its id.
fn insert_release(db: &Shared, release: &Release, head: &LogLine) -> Result<(), StateError> {
    let mut db = lock(db);
    let target = db.target().to_owned();
    let fail = || failure(&target, "start a release in");
    let mut transaction = db.client.transaction().map_err(fail())?;
    let text = line(head);
    let row = ReleaseRow {
        header: &release.header,
        status: release.status(),
        finished_at: None,
        line: text.trim_end(),
        live: None,
    };
    if !insert_row(&mut transaction, &row).map_err(fail())? {
        return Err(StateError::IdTaken { id: release.id });
    }
    transaction.commit().map_err(fail())
}

/// A release's row and its env index row, as stored.
pub(crate) struct ReleaseRow<'a> {
    pub(crate) header: &'a crate::state::ReleaseHeader,
    pub(crate) status: crate::state::ReleaseStatus,
    pub(crate) finished_at: Option<crate::state::Timestamp>,
    /// The release log's header line.
    pub(crate) line: &'a str,
    /// The env index's `live`, as stored.
    pub(crate) live: Option<String>,
}

/// Inserts a release's row and its env index row; `false` if the pipeline
/// has a release with its id already.
pub(crate) fn insert_row(
    transaction: &mut postgres::Transaction<'_>,
    row: &ReleaseRow<'_>,
) -> Result<bool, postgres::Error> {
    let h = row.header;
    let id = h.id.to_string();
    let services = h.services.as_ref().map(|s| json(&s.names));
    let inserted = transaction.execute(
        "INSERT INTO stagecraft_releases (pipeline, id, workflow, env, version, previous, rollback_of,
             started_at, commit_sha, commit_dirty, services, versions, set_keys, digest, user_at_host,
             status, header, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
         ON CONFLICT (pipeline, id) DO NOTHING",
        &[
            &h.pipeline,
            &id,
            &h.workflow,
            &h.env,
            &h.version,
            &h.previous.map(|p| p.to_string()),
            &h.rollback_of.map(|r| r.to_string()),
            &millis(h.started_at),
            &h.commit.as_ref().map(|c| c.sha.clone()),
            &h.commit.as_ref().map(|c| c.dirty),
            &services,
            &json(&h.versions),
            &json(&h.set_keys),
            &h.digest,
            &h.user,
            &row.status.to_string(),
            &row.line,
            &row.finished_at.map(millis),
        ],
    )?;
    if inserted == 0 {
        return Ok(false);
    }
    transaction.execute(
        "INSERT INTO stagecraft_env_index (pipeline, env, release_id, live) VALUES ($1, $2, $3, $4)",
        &[&h.pipeline, &h.env, &id, &row.live],
    )?;
    Ok(true)
}

/// A time as stored: milliseconds since the epoch.
pub(crate) fn millis(at: crate::state::Timestamp) -> i64 {
    i64::try_from(at.as_millis()).unwrap_or(i64::MAX)
}

/// A JSON column's text.
fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}
