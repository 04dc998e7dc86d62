//! The PostgreSQL rows of the execution bench, when `STAGECRAFT_TEST_POSTGRES`
//! names a server (a database of the bench's own is created there and
//! dropped at the end): `stagecraft deploy` of the same pipeline with
//! `--state postgres://…` against the state directory at `-j1` and `-j2`,
//! round-robin in the same measurement, and the cost of one durable
//! transition (one commit) against one `fdatasync`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};
use stagecraft::engine::Event;
use stagecraft::state::{Backend, Clock, Holder, Opening, Reap, ReleaseMeta, StateError, StateUrl, Wait};

use crate::common::history::chain_plan;
use crate::common::{Measured, Summary, measure_runs, round, summarize, summary_json};
use crate::{deploy_args, percentile_us};

/// The timed commands, in the order they run in each round.
const COMMANDS: [&str; 4] = ["files -j1", "postgres -j1", "files -j2", "postgres -j2"];

/// What the PostgreSQL rows measured.
pub(crate) struct PgRows {
    tasks: usize,
    summaries: Vec<Summary>,
    transition_median_us: f64,
    transition_p90_us: f64,
}

/// A database of the bench's own on the server at `admin`, dropped when done.
struct Database {
    admin: String,
    name: String,
    url: String,
}

impl Database {
    fn create(admin: &str) -> Self {
        let name = format!("stagecraft_bench_{}", std::process::id());
        let mut client = postgres::Client::connect(admin, postgres::NoTls).expect("the bench server answers");
        for statement in [
            format!("DROP DATABASE IF EXISTS {name}"),
            format!("CREATE DATABASE {name}"),
        ] {
            client.batch_execute(&statement).expect("create the bench database");
        }
        let (base, _) = admin.rsplit_once('/').expect("the URL names a database");
        let url = format!("{base}/{name}");
        Self {
            admin: admin.to_owned(),
            name,
            url,
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

/// Runs the PostgreSQL rows for the pipeline of `size` tasks in `dir`, or
/// says why not.
pub(crate) fn bench(stagecraft: &Path, dir: &Path, size: usize, runs: usize, per_round: usize) -> Option<PgRows> {
    let Ok(admin) = std::env::var("STAGECRAFT_TEST_POSTGRES") else {
        println!("\nPostgreSQL rows skipped: set STAGECRAFT_TEST_POSTGRES to a server's URL to run them");
        return None;
    };
    let database = Database::create(&admin);
    let url = database.url.as_str();
    // Untimed: a run completes every instance and creates the schema.
    let mut args = deploy_args("1")[..9].to_vec();
    args.extend(["--state", url]);
    let status = Command::new(stagecraft)
        .args(&args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run stagecraft");
    assert!(status.success(), "a stagecraft run on PostgreSQL failed");
    let with = |jobs: &'static str, state: &'static [&'static str]| {
        let mut args = deploy_args(jobs)[..9].to_vec();
        args.extend_from_slice(state);
        args
    };
    let pg_j1 = [with("1", &[]), vec!["--state", url]].concat();
    let pg_j2 = [with("2", &[]), vec!["--state", url]].concat();
    let measured = [
        Measured::new(
            COMMANDS[0],
            stagecraft,
            with("1", &["--state-dir", "state-pg-j1-{run}"]),
        ),
        Measured::new(COMMANDS[1], stagecraft, pg_j1),
        Measured::new(
            COMMANDS[2],
            stagecraft,
            with("2", &["--state-dir", "state-pg-j2-{run}"]),
        ),
        Measured::new(COMMANDS[3], stagecraft, pg_j2),
    ];
    let summaries = measure_runs(dir, &measured, runs, true)
        .iter()
        .map(|runs| summarize(runs))
        .collect();
    let (transition_median_us, transition_p90_us) = transition(url, dir, per_round);
    Some(PgRows {
        tasks: size,
        summaries,
        transition_median_us,
        transition_p90_us,
    })
}

/// The median and 90th percentile of one durable transition (one event,
/// one commit) through the storage interface.
fn transition(url: &str, dir: &Path, count: usize) -> (f64, f64) {
    let backend = Backend::open(&StateUrl::Postgres(url.to_owned()), &dir.join(".stagecraft")).expect("open");
    let clock = Clock::System;
    let holder = Holder::current("deploy", Some("prod"), clock.now());
    let reap = Reap {
        grace: std::time::Duration::from_secs(1),
        notice: &|_| {},
    };
    let opening = Opening {
        holder: &holder,
        wait: Wait::No,
        clock,
        reap: &reap,
    };
    let (mut store, _) = backend.open_env("bench", "prod", &opening).expect("open the env");
    let plan = chain_plan(count);
    let (mut recording, _) = store
        .begin_with(&ReleaseMeta::default(), |_| Ok::<_, StateError>(plan.clone()))
        .expect("begin");
    let mut samples = Vec::new();
    for instance in 0..count {
        for event in [
            Event::Started { instance, attempt: 1 },
            Event::Completed {
                instance,
                exit_code: Some(0),
            },
        ] {
            let start = Instant::now();
            recording.append(&[event]).expect("append");
            samples.push(start.elapsed());
        }
    }
    recording.finish().expect("finish");
    (percentile_us(&mut samples, 0.5), percentile_us(&mut samples, 0.9))
}

/// The rows as a table, with each backend's ratio to the state directory.
pub(crate) fn render(rows: &PgRows) -> String {
    let mut out = format!(
        "PostgreSQL state, {} tasks (same measurement, round-robin):\n  command         wall ms   ratio to files\n",
        rows.tasks
    );
    for (position, name) in COMMANDS.iter().enumerate() {
        let wall = rows.summaries[position].wall_ms;
        let files = rows.summaries[position - position % 2].wall_ms;
        let _ = writeln!(out, "  {name:<14} {wall:>8.1}   {:>5.2}x", wall / files);
    }
    let _ = writeln!(
        out,
        "  one durable transition (one commit): median {:.1} µs, p90 {:.1} µs",
        rows.transition_median_us, rows.transition_p90_us
    );
    out
}

/// The rows for `bench-execute.json`.
pub(crate) fn json(rows: &PgRows) -> Value {
    json!({
        "tasks": rows.tasks,
        "commands": COMMANDS.iter().zip(&rows.summaries).map(|(name, summary)| json!({
            "command": name,
            "summary": summary_json(*summary),
        })).collect::<Vec<_>>(),
        "transition": {
            "median_us": round(rows.transition_median_us),
            "p90_us": round(rows.transition_p90_us),
        },
    })
}
