//! The schema of the PostgreSQL state, created and migrated by stagecraft
//! itself: a list of migrations, each applied in a transaction of its own
//! and recorded in `stagecraft_schema`.

use super::{Database, StateError, failure};

/// The schema version this stagecraft writes: the number of migrations.
pub const SCHEMA_VERSION: u32 = 3;

/// The migrations, in order: migration `n` (1-based) takes the schema from
/// version `n - 1` to `n`. Never edit one that has shipped: add the next.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [V1, V2, V3];

/// The advisory lock (transaction scope) that makes concurrent migrations
/// of one database take turns; the env locks are keyed by
/// [`lock_key`](super::lock_key) and cannot meet it but by a hash collision
/// (a chance of 2⁻⁶⁴).
const MIGRATION_LOCK: i64 = 0x7374_6167_6563_7266; // "stagecrf"

/// Version 1: releases, their events, the env indexes and the lock holders.
const V1: &str = "
CREATE TABLE stagecraft_releases (
    pipeline     text    NOT NULL,
    id           text    NOT NULL,
    workflow     text    NOT NULL,
    env          text    NOT NULL,
    version      text    NOT NULL,
    previous     text,
    rollback_of  text,
    started_at   bigint  NOT NULL,
    commit_sha   text,
    commit_dirty boolean,
    services     text,
    versions     text    NOT NULL DEFAULT '{}',
    set_keys     text    NOT NULL DEFAULT '[]',
    digest       text,
    user_at_host text,
    finished_at  bigint,
    status       text    NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    PRIMARY KEY (pipeline, id),
    CHECK ((commit_sha IS NULL) = (commit_dirty IS NULL))
);
CREATE INDEX stagecraft_releases_by_env ON stagecraft_releases (pipeline, env, id);
CREATE TABLE stagecraft_events (
    pipeline   text   NOT NULL,
    release_id text   NOT NULL,
    seq        bigint NOT NULL CHECK (seq > 0),
    at         bigint NOT NULL,
    event      text   NOT NULL,
    PRIMARY KEY (pipeline, release_id, seq),
    FOREIGN KEY (pipeline, release_id) REFERENCES stagecraft_releases (pipeline, id) ON DELETE CASCADE
);
CREATE TABLE stagecraft_env_index (
    pipeline   text NOT NULL,
    env        text NOT NULL,
    release_id text NOT NULL,
    live       text,
    PRIMARY KEY (pipeline, env, release_id),
    FOREIGN KEY (pipeline, release_id) REFERENCES stagecraft_releases (pipeline, id) ON DELETE CASCADE
);
CREATE TABLE stagecraft_lock_holders (
    pipeline    text    NOT NULL,
    env         text    NOT NULL,
    lock_key    bigint  NOT NULL,
    backend_pid integer NOT NULL,
    pid         bigint  NOT NULL,
    host        text    NOT NULL,
    workflow    text    NOT NULL,
    started_at  bigint  NOT NULL,
    PRIMARY KEY (pipeline, env)
);
";

/// Version 2: each release's header as its log's header line (the same
/// RON text a release log's second line holds: instances, commands,
/// `finally` positions and boot besides the columns), so that a release is
/// rebuilt from its header and event lines exactly as from a log; and the
/// indexes that read an env's (or a pipeline's) newest releases first in
/// the `C` collation, where text order is age order.
const V2: &str = "
ALTER TABLE stagecraft_releases ADD COLUMN header text;
UPDATE stagecraft_releases SET header = '' WHERE header IS NULL;
ALTER TABLE stagecraft_releases ALTER COLUMN header SET NOT NULL;
CREATE INDEX stagecraft_releases_by_env_c ON stagecraft_releases (pipeline, env, id COLLATE \"C\");
CREATE INDEX stagecraft_releases_by_id_c ON stagecraft_releases (pipeline, id COLLATE \"C\");
";

/// Version 3: event rows may hold `FailureCommand` lines (state format 6),
/// which an older stagecraft cannot read; the version tells it so before
/// it meets one. The tables do not change.
const V3: &str = "
COMMENT ON COLUMN stagecraft_events.event IS 'a release log''s event line (RON), state format 6';
";

impl Database {
    /// Brings the schema to [`SCHEMA_VERSION`], creating it in an empty
    /// database, and returns the version it is at. Each migration runs in
    /// a transaction of its own with its version row, so a failure leaves
    /// the schema at the last version that committed; runs that migrate at
    /// once take turns. Running it again changes nothing.
    ///
    /// A schema newer than this stagecraft knows is an error, and is left
    /// as it is.
    pub fn migrate(&mut self) -> Result<u32, StateError> {
        let target = self.target.clone();
        loop {
            let mut transaction = self.client.transaction().map_err(failure(&target, "migrate"))?;
            let current = begin_migration(&mut transaction).map_err(failure(&target, "migrate"))?;
            if current >= SCHEMA_VERSION {
                transaction.commit().map_err(failure(&target, "migrate"))?;
                return self.known(current);
            }
            apply(&mut transaction, current + 1).map_err(failure(&target, "migrate"))?;
            transaction.commit().map_err(failure(&target, "migrate"))?;
        }
    }

    /// The schema's version: `None` if stagecraft never migrated this
    /// database.
    pub fn schema_version(&mut self) -> Result<Option<u32>, StateError> {
        let row = self
            .client
            .query_one("SELECT to_regclass('stagecraft_schema') IS NOT NULL AS present", &[])
            .map_err(self.fail("read the schema of"))?;
        if !row.get::<_, bool>(0) {
            return Ok(None);
        }
        let row = self
            .client
            .query_one("SELECT coalesce(max(version), 0) FROM stagecraft_schema", &[])
            .map_err(self.fail("read the schema of"))?;
        Ok(Some(version(row.get(0))))
    }

    fn known(&self, current: u32) -> Result<u32, StateError> {
        if current > SCHEMA_VERSION {
            return Err(StateError::Database {
                action: "migrate",
                target: self.target.clone(),
                message: format!(
                    "its schema has version {current}, newer than this stagecraft knows ({SCHEMA_VERSION})"
                ),
            });
        }
        Ok(current)
    }
}

/// Takes the migration lock, creates `stagecraft_schema` if there is none,
/// and returns the version recorded (0 for none).
fn begin_migration(transaction: &mut postgres::Transaction<'_>) -> Result<u32, postgres::Error> {
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    transaction.batch_execute(
        "CREATE TABLE IF NOT EXISTS stagecraft_schema (
            version     integer     PRIMARY KEY CHECK (version > 0),
            migrated_at timestamptz NOT NULL DEFAULT now()
        )",
    )?;
    let row = transaction.query_one("SELECT coalesce(max(version), 0) FROM stagecraft_schema", &[])?;
    Ok(version(row.get(0)))
}

/// Applies migration `next` and records it.
fn apply(transaction: &mut postgres::Transaction<'_>, next: u32) -> Result<(), postgres::Error> {
    transaction.batch_execute(MIGRATIONS[next as usize - 1])?;
    let recorded = i32::try_from(next).expect("a schema version fits an integer");
    transaction.execute("INSERT INTO stagecraft_schema (version) VALUES ($1)", &[&recorded])?;
    Ok(())
}

/// A version as stored (`integer`, positive by its check).
fn version(stored: i32) -> u32 {
    u32::try_from(stored).unwrap_or(0)
}
