//! The PostgreSQL state against a real server: connecting, the schema's
//! migrations, and the per-env advisory locks.
//!
//! The server's URL comes from `STAGECRAFT_TEST_POSTGRES` (`.ci/run` starts
//! a throwaway cluster and sets it). Without it the tests that need a server
//! say so and pass, except under CI (`CI` set), where they fail. Each test
//! works in a database of its own, dropped at its end.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use stagecraft::state::postgres::{self as pg, Database, Locking, SCHEMA_VERSION, Timeouts};

use crate::support::postgres::Scratch;
use stagecraft::state::{Holder, StateError, Timestamp};

fn holder(host: &str) -> Holder {
    Holder {
        pid: 4242,
        host: host.to_owned(),
        workflow: "deploy".to_owned(),
        env: Some("prod".to_owned()),
        started_at: Timestamp::parse("2026-11-25T17:02:29.123Z").unwrap(),
    }
}

fn message(error: &StateError) -> String {
    assert!(matches!(error, StateError::Database { .. }), "{error:?}");
    error.to_string()
}

/// Tries the lock until it is taken (the server frees a dead session's
/// locks shortly after it ends), for at most five seconds.
fn lock_eventually(db: &mut Database, pipeline: &str, env: &str, host: &str) -> Option<Holder> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match db.try_lock(pipeline, env, &holder(host)).unwrap() {
            Locking::Acquired { previous } => return previous,
            Locking::Held(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Locking::Held(holder) => panic!("still held after 5s by {holder:?}"),
        }
    }
}

#[test]
fn the_schema_is_created_in_an_empty_database_and_migrating_again_changes_nothing() {
    let Some(scratch) = Scratch::new("migrate") else { return };
    let mut db = scratch.connect();
    assert_eq!(db.schema_version().unwrap(), None);
    assert_eq!(db.migrate().unwrap(), SCHEMA_VERSION);
    assert_eq!(db.schema_version().unwrap(), Some(SCHEMA_VERSION));
    assert_eq!(db.migrate().unwrap(), SCHEMA_VERSION);
    assert_eq!(pg::connect(&scratch.url).unwrap().migrate().unwrap(), SCHEMA_VERSION);

    let mut admin = scratch.admin();
    let versions: Vec<i32> = admin
        .query("SELECT version FROM stagecraft_schema ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, [1, 2, 3]);
    let tables: Vec<String> = admin
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' ORDER BY table_name",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        tables,
        [
            "stagecraft_env_index",
            "stagecraft_events",
            "stagecraft_lock_holders",
            "stagecraft_releases",
            "stagecraft_schema"
        ]
    );
}

#[test]
fn runs_that_migrate_at_once_take_turns() {
    let Some(scratch) = Scratch::new("migrate_at_once") else {
        return;
    };
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let url = scratch.url.clone();
            std::thread::spawn(move || pg::connect(&url).unwrap().migrate().unwrap())
        })
        .collect();
    for run in runs {
        assert_eq!(run.join().unwrap(), SCHEMA_VERSION);
    }
    let count: i64 = scratch
        .admin()
        .query_one("SELECT count(*) FROM stagecraft_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(count, i64::from(SCHEMA_VERSION));
}

#[test]
fn a_schema_newer_than_this_stagecraft_is_refused_and_left_alone() {
    let Some(scratch) = Scratch::new("newer") else { return };
    let mut db = scratch.connect();
    db.migrate().unwrap();
    scratch
        .admin()
        .batch_execute("INSERT INTO stagecraft_schema (version) VALUES (99)")
        .unwrap();
    let error = db.migrate().unwrap_err();
    assert!(
        message(&error).ends_with("its schema has version 99, newer than this stagecraft knows (3)"),
        "{error}"
    );
    assert_eq!(db.schema_version().unwrap(), Some(99));
}

#[test]
fn a_second_session_cannot_take_the_same_env_but_can_take_another() {
    let Some(scratch) = Scratch::new("locks") else { return };
    let mut a = scratch.connect();
    let mut b = scratch.connect();
    a.migrate().unwrap();
    assert_eq!(
        a.try_lock("shop", "prod", &holder("runner-a")).unwrap(),
        Locking::Acquired { previous: None }
    );
    assert_eq!(
        b.try_lock("shop", "prod", &holder("runner-b")).unwrap(),
        Locking::Held(Some(holder("runner-a")))
    );
    assert_eq!(b.holder("shop", "prod").unwrap(), Some(holder("runner-a")));
    assert_eq!(
        b.try_lock("shop", "staging", &holder("runner-b")).unwrap(),
        Locking::Acquired { previous: None }
    );
    assert_eq!(
        b.try_lock("other", "prod", &holder("runner-b")).unwrap(),
        Locking::Acquired { previous: None }
    );

    a.unlock("shop", "prod").unwrap();
    assert_eq!(b.holder("shop", "prod").unwrap(), None);
    assert_eq!(
        b.try_lock("shop", "prod", &holder("runner-b")).unwrap(),
        Locking::Acquired { previous: None },
        "an unlocked env leaves no holder behind"
    );
    assert_eq!(
        a.try_lock("shop", "prod", &holder("runner-a")).unwrap(),
        Locking::Held(Some(holder("runner-b")))
    );
}

#[test]
fn a_lock_is_freed_when_its_connection_closes() {
    let Some(scratch) = Scratch::new("lock_closed") else {
        return;
    };
    let mut a = scratch.connect();
    let mut b = scratch.connect();
    a.migrate().unwrap();
    assert!(matches!(
        a.try_lock("shop", "prod", &holder("runner-a")).unwrap(),
        Locking::Acquired { .. }
    ));
    drop(a);
    assert_eq!(
        lock_eventually(&mut b, "shop", "prod", "runner-b"),
        Some(holder("runner-a")),
        "the next holder learns who held it when its session ended"
    );
    assert_eq!(b.holder("shop", "prod").unwrap(), Some(holder("runner-b")));
}

#[test]
fn a_lock_is_freed_when_its_backend_is_terminated() {
    let Some(scratch) = Scratch::new("lock_terminated") else {
        return;
    };
    let mut a = scratch.connect();
    let mut b = scratch.connect();
    a.migrate().unwrap();
    assert!(matches!(
        a.try_lock("shop", "prod", &holder("runner-a")).unwrap(),
        Locking::Acquired { .. }
    ));
    let pid = a.backend_pid().unwrap();
    let terminated: bool = scratch
        .admin()
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .unwrap()
        .get(0);
    assert!(terminated);
    assert_eq!(
        lock_eventually(&mut b, "shop", "prod", "runner-b"),
        Some(holder("runner-a"))
    );

    // The terminated session's next statement is an error, not a panic.
    let error = a.holder("shop", "prod").unwrap_err();
    let text = message(&error);
    assert!(
        text.starts_with("cannot read the lock holders of the PostgreSQL state `127.0.0.1:"),
        "{text}"
    );
}

#[test]
fn a_database_that_does_not_exist_is_the_servers_message() {
    let Some(scratch) = Scratch::new("missing_db") else {
        return;
    };
    let (base, _) = scratch.url.rsplit_once('/').unwrap();
    let error = pg::connect(&format!("{base}/no_such_database_here")).unwrap_err();
    let text = message(&error);
    assert!(
        text.ends_with("/no_such_database_here`: database \"no_such_database_here\" does not exist"),
        "{text}"
    );
}

#[test]
fn sslmode_require_is_honoured_and_a_server_without_tls_refuses_it() {
    let Some(scratch) = Scratch::new("sslmode") else { return };
    let error = pg::connect(&format!("{}?sslmode=require", scratch.url)).unwrap_err();
    let text = message(&error);
    assert!(text.contains("TLS"), "{text}");
    // Without `sslmode`, TLS is off: the same server accepts the connection.
    scratch.connect();
}

#[test]
fn an_unreachable_port_is_a_clear_error_within_the_timeout() {
    // A port nothing listens on: bind one, then free it.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let started = Instant::now();
    let error = pg::connect(&format!("postgres://ci:s3cret@127.0.0.1:{port}/team")).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    let text = message(&error);
    assert!(
        text.starts_with(&format!(
            "cannot connect to the PostgreSQL state `127.0.0.1:{port}/team`: "
        )),
        "{text}"
    );
    assert!(text.contains("refused"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

#[test]
fn a_server_that_never_answers_is_an_error_after_the_connect_timeout() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let timeouts = Timeouts {
        connect: Duration::from_millis(500),
        statement: Duration::from_secs(5),
    };
    let started = Instant::now();
    let error = pg::connect_with(&format!("postgres://ci@127.0.0.1:{port}/team"), timeouts).unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(500) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_eq!(
        message(&error),
        format!("cannot connect to the PostgreSQL state `127.0.0.1:{port}/team`: no answer within 500ms")
    );
    drop(silent);
}
