//! Reading a pipeline's history from the PostgreSQL state, without a lock:
//! the same questions [`PipelineDir`](crate::state::PipelineDir) answers
//! from files, with the same answers.
//!
//! A release's header is stored as its log's header line and its events as
//! its log's event lines (the same RON text), so a release is rebuilt by
//! replaying them through the same transition function. The columns beside
//! them (`env`, `status`, `finished_at`, the env index's `live`) serve the
//! queries. A row that does not have the shape stagecraft writes is
//! [`StateError::CorruptRow`], naming the table and the key.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::PathBuf;

use postgres::Row;
use postgres::types::{FromSql, ToSql};

use super::{Shared, lock};
use crate::state::format::{LogLine, StoredService, read_live};
use crate::state::{Live, Release, ReleaseId, ReleaseStatus, ReleaseSummary, StateError, Timestamp};

/// The releases of a page of history, newest first.
const PAGE: i64 = 64;

/// The summary columns of a release: its key, header line, end and status,
/// and the live state its env index row records.
const SUMMARY: &str = "
SELECT r.id, r.env, r.header, r.finished_at, r.status, i.live
FROM stagecraft_releases r
LEFT JOIN stagecraft_env_index i
    ON i.pipeline = r.pipeline AND i.env = r.env AND i.release_id = r.id
WHERE r.pipeline = $1";

/// One pipeline's history in the PostgreSQL state, read without a lock.
#[derive(Clone)]
pub struct PgPipeline {
    db: Shared,
    name: String,
    /// The local state directory, where the executor keeps the output of
    /// the releases run on this machine.
    local: PathBuf,
}

impl std::fmt::Debug for PgPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgPipeline")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl PgPipeline {
    pub(crate) fn new(db: Shared, name: &str, local: PathBuf) -> Self {
        Self {
            db,
            name: name.to_owned(),
            local,
        }
    }

    /// The pipeline's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.db
    }

    /// Where the executor keeps the output of release `id`'s instances: in
    /// the local state directory, as with files (output stays on the
    /// machine that ran the command).
    #[must_use]
    pub fn output_dir(&self, id: ReleaseId) -> PathBuf {
        self.local
            .join("pipelines")
            .join(&self.name)
            .join("logs")
            .join(id.to_string())
    }

    /// Where the env's runs on this machine write long commands' scripts.
    pub(crate) fn script_dir(&self, env: &str) -> PathBuf {
        self.local
            .join("pipelines")
            .join(&self.name)
            .join("envs")
            .join(env)
            .join("scripts")
    }

    /// The envs with releases, sorted.
    pub fn envs(&self) -> Result<Vec<String>, StateError> {
        let mut db = lock(&self.db);
        let rows = db
            .client
            .query(
                "SELECT DISTINCT env COLLATE \"C\" FROM stagecraft_releases WHERE pipeline = $1 ORDER BY 1",
                &[&self.name],
            )
            .map_err(db.fail("read"))?;
        rows.iter()
            .map(|row| column(row, 0, "stagecraft_releases", || format!("pipeline `{}`", self.name)))
            .collect()
    }

    /// `env`'s releases, newest first, a page at a time.
    #[must_use]
    pub fn history(&self, env: &str) -> PgHistory {
        PgHistory {
            pipeline: self.clone(),
            env: env.to_owned(),
            before: None,
            page: VecDeque::new(),
            done: false,
        }
    }

    /// The newest `limit` releases (all with `None`), newest first, of `env`
    /// or of every env.
    pub fn releases(&self, env: Option<&str>, limit: Option<usize>) -> Result<Vec<ReleaseSummary>, StateError> {
        let limit = limit.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
        self.page(env, None, limit)
    }

    /// What is live in `env` now: the state after its newest finished
    /// deploy or rollback.
    pub fn live(&self, env: &str) -> Result<Live, StateError> {
        for summary in self.history(env) {
            if let Some(live) = summary?.live {
                return Ok(live);
            }
        }
        Ok(Live::default())
    }

    /// `env`'s current release: its newest deploy or rollback, whatever its
    /// status.
    pub fn current(&self, env: &str) -> Result<Option<ReleaseSummary>, StateError> {
        for summary in self.history(env) {
            let summary = summary?;
            if summary.is_deployment() {
                return Ok(Some(summary));
            }
        }
        Ok(None)
    }

    /// Release `id` in full, rebuilt from its header and event lines.
    pub fn release(&self, id: &str) -> Result<Release, StateError> {
        let unknown = || StateError::UnknownRelease { id: id.to_owned() };
        let parsed: ReleaseId = id.parse().map_err(|_| unknown())?;
        self.load(parsed)?.map(|(release, _)| release).ok_or_else(unknown)
    }

    /// Release `id` and the boot its header names, if the pipeline has it.
    pub(crate) fn load(&self, id: ReleaseId) -> Result<Option<(Release, Option<String>)>, StateError> {
        let text = id.to_string();
        let key = || format!("pipeline `{}`, id `{text}`", self.name);
        let mut db = lock(&self.db);
        let Some(row) = db
            .client
            .query_opt(
                "SELECT header, finished_at FROM stagecraft_releases WHERE pipeline = $1 AND id = $2",
                &[&self.name, &text],
            )
            .map_err(db.fail("read"))?
        else {
            return Ok(None);
        };
        let header: String = column(&row, 0, "stagecraft_releases", key)?;
        let finished_at: Option<i64> = column(&row, 1, "stagecraft_releases", key)?;
        let events = db
            .client
            .query(
                "SELECT seq, event FROM stagecraft_events WHERE pipeline = $1 AND release_id = $2 ORDER BY seq",
                &[&self.name, &text],
            )
            .map_err(db.fail("read"))?;
        drop(db);
        let (mut release, boot) = header_of(&header, id, &self.name, key)?;
        for row in &events {
            let seq: i64 = column(row, 0, "stagecraft_events", key)?;
            let event_key = || format!("pipeline `{}`, release_id `{text}`, seq {seq}", self.name);
            let line: String = column(row, 1, "stagecraft_events", event_key)?;
            let corrupt = |message: String| corrupt_row("stagecraft_events", event_key(), message);
            let entry: LogLine = ron::from_str(&line).map_err(|error| corrupt(error.to_string()))?;
            if let LogLine::Finished { at } = entry {
                release.finish(at).map_err(|error| corrupt(error.to_string()))?;
            } else if let Some((event, at)) = entry.to_event() {
                release
                    .apply(&[event], at)
                    .map_err(|error| corrupt(error.to_string()))?;
            } else {
                return Err(corrupt("a second release header".to_owned()));
            }
        }
        if finished_at.is_some() && !release.is_finished() {
            return Err(corrupt_row(
                "stagecraft_events",
                format!("pipeline `{}`, release_id `{text}`", self.name),
                "the release is recorded finished but its events end before its finish line".to_owned(),
            ));
        }
        Ok(Some((release, boot)))
    }

    /// Up to `limit` summaries, newest first, of `env` (or every env),
    /// older than `before` if given.
    fn page(
        &self,
        env: Option<&str>,
        before: Option<ReleaseId>,
        limit: i64,
    ) -> Result<Vec<ReleaseSummary>, StateError> {
        let before = before.map(|id| id.to_string());
        // Only the conditions that apply, so that the server walks an index
        // (`pipeline, [env,] id` in the `C` collation) from its newest end.
        let mut sql = SUMMARY.to_owned();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&self.name];
        if let Some(env) = &env {
            params.push(env);
            let _ = write!(sql, " AND r.env = ${}", params.len());
        }
        if let Some(before) = &before {
            params.push(before);
            let _ = write!(sql, " AND r.id COLLATE \"C\" < ${}", params.len());
        }
        params.push(&limit);
        let _ = write!(sql, " ORDER BY r.id COLLATE \"C\" DESC LIMIT ${}", params.len());
        let rows = {
            let mut db = lock(&self.db);
            db.client.query(&sql, &params).map_err(db.fail("read"))?
        };
        rows.iter().map(|row| self.summary(row)).collect()
    }

    /// A release's summary from its row.
    fn summary(&self, row: &Row) -> Result<ReleaseSummary, StateError> {
        let table = "stagecraft_releases";
        let id: String = column(row, 0, table, || format!("pipeline `{}`", self.name))?;
        let key = || format!("pipeline `{}`, id `{id}`", self.name);
        let env: String = column(row, 1, table, key)?;
        let header: String = column(row, 2, table, key)?;
        let finished_at: Option<i64> = column(row, 3, table, key)?;
        let status: String = column(row, 4, table, key)?;
        let live: Option<String> = column(row, 5, "stagecraft_env_index", key)?;
        let parsed: ReleaseId = id
            .parse()
            .map_err(|error| corrupt_row(table, key(), format!("invalid id: {error}")))?;
        let (release, _) = header_of(&header, parsed, &self.name, key)?;
        if release.env != env {
            return Err(corrupt_row(
                table,
                key(),
                format!("its header is of env `{}`, its row of `{env}`", release.env),
            ));
        }
        let finished_at = finished_at
            .map(|ms| u64::try_from(ms).map(Timestamp::from_millis))
            .transpose()
            .map_err(|_| corrupt_row(table, key(), "a negative `finished_at`".to_owned()))?;
        let status = match finished_at {
            Some(_) => {
                status_of(&status).ok_or_else(|| corrupt_row(table, key(), format!("invalid status `{status}`")))?
            }
            // Running, or its run died: its events say how far it got.
            None => self
                .load(parsed)?
                .map_or(ReleaseStatus::Pending, |(release, _)| release.status()),
        };
        let live = live
            .map(|text| ron::from_str::<Vec<StoredService>>(&text))
            .transpose()
            .map_err(|error| corrupt_row("stagecraft_env_index", key(), format!("invalid `live`: {error}")))?
            .map(read_live);
        Ok(ReleaseSummary {
            header: release.header,
            finished_at,
            status,
            live,
        })
    }
}

/// An env's releases in the PostgreSQL state, newest first: see
/// [`PgPipeline::history`].
#[derive(Debug)]
pub struct PgHistory {
    pipeline: PgPipeline,
    env: String,
    /// The oldest id yielded so far.
    before: Option<ReleaseId>,
    page: VecDeque<ReleaseSummary>,
    /// The last page was read (or failed).
    done: bool,
}

impl Iterator for PgHistory {
    type Item = Result<ReleaseSummary, StateError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.page.is_empty() && !self.done {
            match self.pipeline.page(Some(&self.env), self.before, PAGE) {
                Ok(list) => {
                    self.done = list.len() < usize::try_from(PAGE).unwrap_or(usize::MAX);
                    self.page = list.into();
                }
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
            }
        }
        let summary = self.page.pop_front()?;
        self.before = Some(summary.id);
        Some(Ok(summary))
    }
}

/// The release a header line describes (every instance pending), and its
/// boot; the line must be a header of release `id` of `pipeline`.
fn header_of(
    text: &str,
    id: ReleaseId,
    pipeline: &str,
    key: impl Fn() -> String,
) -> Result<(Release, Option<String>), StateError> {
    let corrupt = |message: String| corrupt_row("stagecraft_releases", key(), message);
    let line: LogLine = ron::from_str(text).map_err(|error| corrupt(format!("invalid `header`: {error}")))?;
    let (header, instances, commands, finally, undo, boot) = line
        .into_release()
        .ok_or_else(|| corrupt("`header` is not a release header".to_owned()))?;
    if header.id != id || header.pipeline != pipeline {
        return Err(corrupt(format!(
            "`header` describes release {} of pipeline `{}`",
            header.id, header.pipeline
        )));
    }
    let mut release = Release::new(header, instances);
    release.set_commands(commands);
    release.set_finally(&finally);
    release.set_undo(undo);
    Ok((release, boot))
}

fn status_of(text: &str) -> Option<ReleaseStatus> {
    Some(match text {
        "pending" => ReleaseStatus::Pending,
        "running" => ReleaseStatus::Running,
        "completed" => ReleaseStatus::Completed,
        "failed" => ReleaseStatus::Failed,
        _ => return None,
    })
}

/// Column `index` of `row`, or a corrupt-row error naming the table and key.
fn column<'r, T: FromSql<'r>>(
    row: &'r Row,
    index: usize,
    table: &'static str,
    key: impl Fn() -> String,
) -> Result<T, StateError> {
    row.try_get(index)
        .map_err(|error| corrupt_row(table, key(), error.to_string()))
}

pub(crate) fn corrupt_row(table: &'static str, key: String, message: String) -> StateError {
    StateError::CorruptRow { table, key, message }
}

impl PgPipeline {
    /// Release `id` as stored: its header line and its event lines, in
    /// order (what `state copy` carries between backends).
    pub(crate) fn lines(&self, id: ReleaseId) -> Result<(String, Vec<String>), StateError> {
        let text = id.to_string();
        let key = || format!("pipeline `{}`, id `{text}`", self.name);
        let mut db = lock(&self.db);
        let row = db
            .client
            .query_one(
                "SELECT header FROM stagecraft_releases WHERE pipeline = $1 AND id = $2",
                &[&self.name, &text],
            )
            .map_err(db.fail("read"))?;
        let header = column(&row, 0, "stagecraft_releases", key)?;
        let rows = db
            .client
            .query(
                "SELECT event FROM stagecraft_events WHERE pipeline = $1 AND release_id = $2 ORDER BY seq",
                &[&self.name, &text],
            )
            .map_err(db.fail("read"))?;
        let events = rows
            .iter()
            .map(|row| column(row, 0, "stagecraft_events", key))
            .collect::<Result<_, _>>()?;
        Ok((header, events))
    }
}
