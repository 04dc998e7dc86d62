//! History at 100,000 releases on both backends, written in bulk (an env
//! index for files, one `INSERT` for PostgreSQL) from a real release's
//! stored lines with its id and times shifted, so both hold the same.

use std::time::{Duration, Instant};

use stagecraft::state::{ReleaseId, Timestamp};

use super::{PIPELINE, Side, backends, same};

const PAST: u64 = 100_000;
/// The fixed clock's time (see `NOW`), and its id.
const REAL_AT: &str = "2026-11-25T17:02:29.123Z";
const REAL_ID: &str = "rel-20261125-170229123";
/// `REAL_AT` in milliseconds since the epoch.
const REAL_MS: u64 = 1_795_626_149_123;

/// The ids and times of the past releases: one a millisecond, all before
/// the real one.
fn past() -> impl Iterator<Item = (String, String, i64)> {
    (0..PAST).map(move |n| {
        let ms = REAL_MS - 1_000 - PAST + n;
        let at = Timestamp::from_millis(ms);
        (
            ReleaseId::from_time(at).to_string(),
            at.to_string(),
            i64::try_from(ms).expect("ms"),
        )
    })
}

fn shifted(template: &str, id: &str, at: &str) -> String {
    template.replace(REAL_ID, id).replace(REAL_AT, at)
}

/// Writes the past releases beside the real one.
fn fill(side: &Side) {
    match &side.scratch {
        None => {
            let index = side.path().join(".stagecraft/pipelines/shop/envs/prod/index.ron");
            let text = std::fs::read_to_string(&index).expect("the index");
            let mut lines = text.lines();
            let head = lines.next().expect("a format line");
            let template: Vec<&str> = lines.filter(|line| !line.starts_with("Reserved")).collect();
            let mut out = String::with_capacity(template.iter().map(|l| l.len() + 1).sum::<usize>() * 100_001);
            out.push_str(head);
            out.push('\n');
            for (id, at, _) in past() {
                for line in &template {
                    out.push_str(&shifted(line, &id, &at));
                    out.push('\n');
                }
            }
            for line in &template {
                out.push_str(line);
                out.push('\n');
            }
            std::fs::write(&index, out).expect("write the index");
        }
        Some(scratch) => {
            let mut admin = scratch.admin();
            let row = admin
                .query_one(
                    "SELECT r.header, i.live FROM stagecraft_releases r JOIN stagecraft_env_index i
                     ON i.pipeline = r.pipeline AND i.release_id = r.id WHERE r.id = $1",
                    &[&REAL_ID],
                )
                .expect("the real release");
            let (header, live): (String, String) = (row.get(0), row.get(1));
            let (mut ids, mut headers, mut lives, mut times) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (id, at, ms) in past() {
                headers.push(shifted(&header, &id, &at));
                lives.push(shifted(&live, &id, &at));
                times.push(ms);
                ids.push(id);
            }
            admin
                .batch_execute(
                    "CREATE TEMP TABLE real AS SELECT * FROM stagecraft_releases WHERE id = 'rel-20261125-170229123'",
                )
                .expect("template");
            admin
                .execute(
                    "INSERT INTO stagecraft_releases
                     SELECT (r).pipeline, t.id, (r).workflow, (r).env, (r).version, (r).previous, (r).rollback_of,
                            t.at, (r).commit_sha, (r).commit_dirty, (r).services, (r).versions, (r).set_keys,
                            (r).digest, (r).user_at_host, t.at, (r).status, t.header
                     FROM (SELECT real AS r FROM real) AS x,
                          unnest($1::text[], $2::text[], $3::bigint[]) AS t(id, header, at)",
                    &[&ids, &headers, &times],
                )
                .expect("bulk insert releases");
            admin
                .execute(
                    "INSERT INTO stagecraft_env_index (pipeline, env, release_id, live)
                     SELECT 'shop', 'prod', id, live FROM unnest($1::text[], $2::text[]) AS t(id, live)",
                    &[&ids, &lives],
                )
                .expect("bulk insert the index");
        }
    }
}

#[test]
fn a_history_of_100000_releases_reads_the_same_and_as_fast_on_both_backends() {
    let sides = backends("hundred_thousand", PIPELINE);
    same(&sides, &["deploy", "--env", "prod", "--version", "v1"], 0);
    for side in &sides {
        fill(side);
    }
    let timed = |args: &[&str], status: i32| {
        let started = Instant::now();
        let run = same(&sides, args, status);
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(10 * sides.len() as u64),
            "`{}` took {took:?}",
            args.join(" ")
        );
        run
    };
    let list = timed(&["releases", "list", "--format", "json"], 0);
    let list: serde_json::Value = serde_json::from_str(&list.stdout).expect("JSON");
    assert_eq!(list.as_array().map(Vec::len), Some(20));
    assert_eq!(list[0]["id"], REAL_ID);
    assert_eq!(list[1]["finished_at"], list[1]["started_at"]);
    timed(&["status", "--format", "json"], 0);
    timed(&["deploy", "--env", "prod", "--version", "v2"], 0);
    timed(&["rollback", "--env", "prod", "--to-previous"], 0);
    timed(&["releases", "list", "--env", "prod", "--limit", "5"], 0);
}
