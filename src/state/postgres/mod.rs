//! The PostgreSQL state, for teams: a connection to the server
//! ([`connect`]), the schema stagecraft creates and migrates itself
//! ([`Database::migrate`]), and one session advisory lock per pipeline and
//! env ([`Database::try_lock`]).
//!
//! This is the groundwork of the PostgreSQL backend: releases are not stored
//! through it yet, and `--state` does not select it. `spec/state.md`
//! documents the connection, the schema and the locks.
//!
//! Every failure is a [`StateError::Database`] naming the server and the
//! database (never a password) with the server's or the driver's message;
//! connecting and each statement are bounded by [`Timeouts`].

pub(crate) mod copy;
mod journal;
mod lock;
mod read;
mod schema;
mod store;
mod tls;

pub use journal::PgJournal;
pub use lock::{Locking, lock_key};
pub use read::{PgHistory, PgPipeline};
pub use schema::SCHEMA_VERSION;
pub use store::PgStore;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::Duration;

use postgres::config::{Host, SslMode};

use super::StateError;

/// How long connecting may take, and any one statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting, TLS and authentication included.
    pub connect: Duration,
    /// One statement on the server (`statement_timeout`), and how long the
    /// network may leave data unacknowledged (`tcp_user_timeout`).
    pub statement: Duration,
}

impl Default for Timeouts {
    /// 10 seconds to connect, 30 seconds for a statement.
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            statement: Duration::from_secs(30),
        }
    }
}

/// An open connection to the PostgreSQL state: one server session, which
/// holds the advisory locks taken through it until they are released or
/// the session ends.
pub struct Database {
    client: postgres::Client,
    target: String,
    /// What it connected with, to connect again ([`Database::reconnect`]).
    url: String,
    timeouts: Timeouts,
    /// The env locks this connection holds: a session may take an advisory
    /// lock it holds again, but an env is locked once, as a file lock is.
    held: std::collections::BTreeSet<i64>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// One connection shared by a command's readers, its writer and the
/// journal's syncer thread: one server session, which holds the env's lock.
pub(crate) type Shared = Arc<Mutex<Database>>;

/// The shared connection, for one statement or transaction at a time (a
/// thread that panicked holding it left nothing half-done on the server
/// that a transaction did not roll back).
pub(crate) fn lock(db: &Shared) -> MutexGuard<'_, Database> {
    db.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Connects to the state at `url` and brings its schema to the version this
/// stagecraft writes: what every command that uses the PostgreSQL state
/// does first.
pub(crate) fn open(url: &str) -> Result<Shared, StateError> {
    let mut db = connect(url)?;
    db.migrate()?;
    Ok(Arc::new(Mutex::new(db)))
}

/// The names of the pipelines with releases in the state, sorted.
pub(crate) fn pipelines(db: &Shared) -> Result<Vec<String>, StateError> {
    let mut db = lock(db);
    let rows = db
        .client
        .query(
            "SELECT DISTINCT pipeline COLLATE \"C\" FROM stagecraft_releases ORDER BY 1",
            &[],
        )
        .map_err(db.fail("read"))?;
    Ok(rows.iter().filter_map(|row| row.try_get(0).ok()).collect())
}

/// Connects to the PostgreSQL state at `url` (`postgres://user@host:port/db`
/// or the key-value form), with the default [`Timeouts`].
///
/// TLS is off unless the URL asks for it: `sslmode=require` (or `prefer`)
/// connects with TLS, verifying the server's certificate against the
/// machine's trusted roots.
pub fn connect(url: &str) -> Result<Database, StateError> {
    connect_with(url, Timeouts::default())
}

/// [`connect`] with the given timeouts.
pub fn connect_with(url: &str, timeouts: Timeouts) -> Result<Database, StateError> {
    let mut config: postgres::Config = url.parse().map_err(|error: postgres::Error| StateError::Database {
        action: "connect to",
        target: redact(url),
        message: message(&error),
    })?;
    let target = target_of(&config);
    if !url.contains("sslmode") {
        config.ssl_mode(SslMode::Disable);
    }
    config.connect_timeout(timeouts.connect);
    config.tcp_user_timeout(timeouts.statement);
    config.keepalives_idle(timeouts.statement);
    config.application_name("stagecraft");
    // The server's side of the connection probes too, so that a session
    // whose client is cut off (and with it the env's lock) ends within
    // about 25 seconds rather than the system's two hours.
    let statement = format!(
        "-c statement_timeout={} -c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3",
        timeouts.statement.as_millis()
    );
    let options = match config.get_options() {
        Some(options) if !options.is_empty() => format!("{options} {statement}"),
        _ => statement,
    };
    config.options(&options);
    let client = connect_bounded(config, timeouts.connect, &target)?;
    Ok(Database {
        client,
        target,
        url: url.to_owned(),
        timeouts,
        held: std::collections::BTreeSet::new(),
    })
}

/// Connects on a thread of its own so that a server that accepts the
/// connection and then says nothing cannot hang the caller: past `limit`,
/// the attempt is abandoned.
fn connect_bounded(config: postgres::Config, limit: Duration, target: &str) -> Result<postgres::Client, StateError> {
    let fail = |message: String| StateError::Database {
        action: "connect to",
        target: target.to_owned(),
        message,
    };
    let tls = if config.get_ssl_mode() == SslMode::Disable {
        None
    } else {
        Some(tls::connector().map_err(fail)?)
    };
    let (send, receive) = mpsc::channel();
    std::thread::Builder::new()
        .name("stagecraft-postgres-connect".to_owned())
        .spawn(move || {
            let result = match tls {
                None => config.connect(postgres::NoTls),
                Some(tls) => config.connect(tls),
            };
            // The receiver is gone if the caller gave up waiting.
            let _ = send.send(result);
        })
        .map_err(|error| fail(format!("cannot start a thread: {error}")))?;
    match receive.recv_timeout(limit) {
        Ok(result) => result.map_err(|error| fail(message(&error))),
        Err(_) => Err(fail(format!("no answer within {}", humantime::format_duration(limit)))),
    }
}

impl Database {
    /// The server and database connected to, as `host:port/dbname`.
    #[must_use]
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Replaces this session, whose connection failed, with a new one: the
    /// locks it held are gone with it.
    pub(crate) fn reconnect(&mut self) -> Result<(), StateError> {
        *self = connect_with(&self.url, self.timeouts)?;
        Ok(())
    }

    /// The process id of this session on the server (what
    /// `pg_terminate_backend` takes).
    pub fn backend_pid(&mut self) -> Result<i32, StateError> {
        let row = self
            .client
            .query_one("SELECT pg_backend_pid()", &[])
            .map_err(self.fail("query"))?;
        Ok(row.get(0))
    }

    /// Turns a driver error while doing `action` into a [`StateError`].
    fn fail(&self, action: &'static str) -> impl FnOnce(postgres::Error) -> StateError + use<> {
        failure(&self.target, action)
    }
}

/// Turns a driver error while doing `action` on `target` into a
/// [`StateError`].
fn failure(target: &str, action: &'static str) -> impl FnOnce(postgres::Error) -> StateError + use<> {
    let target = target.to_owned();
    move |error| StateError::Database {
        action,
        target,
        message: message(&error),
    }
}

/// The server's message if it sent one, else the driver's with its cause.
fn message(error: &postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return match db.detail() {
            Some(detail) => format!("{} ({})", db.message(), detail),
            None => db.message().to_owned(),
        };
    }
    match std::error::Error::source(error) {
        Some(source) if !error.to_string().contains(&source.to_string()) => format!("{error}: {source}"),
        _ => error.to_string(),
    }
}

/// `host:port/dbname` of a parsed configuration (the first host, as the
/// driver tries it first); `dbname` defaults to the user, as PostgreSQL's.
fn target_of(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let dbname = config.get_dbname().or(config.get_user()).unwrap_or("postgres");
    format!("{host}:{port}/{dbname}")
}

/// A URL that does not parse, with any password in it hidden.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, after)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{after}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_never_shown() {
        assert_eq!(redact("postgres://ci:s3cret@db:5432/x"), "postgres://ci:***@db:5432/x");
        assert_eq!(redact("postgres://ci@db/x"), "postgres://ci@db/x");
        let config: postgres::Config = "postgres://ci:s3cret@db:6000/team".parse().unwrap();
        assert_eq!(target_of(&config), "db:6000/team");
    }

    #[test]
    fn a_url_that_does_not_parse_is_a_state_error() {
        let error = connect("postgres://ci:s3cret@db:notaport/x").unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("cannot connect to the PostgreSQL state `postgres://ci:***@db:notaport/x`: "),
            "{text}"
        );
        assert!(!text.contains("s3cret"), "{text}");
    }
}
