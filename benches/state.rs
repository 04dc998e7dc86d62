//! The cost of one durable transition (append + `fdatasync`) with 10 and
//! with 10,000 past releases in the state directory.
//!
//! `cargo bench --bench state [-- --quick]`. The history is written
//! directly (minimal logs and index lines, then one `sync`), the store is
//! opened as a run opens it, and a release of many instances records
//! `Started` and `Completed` events one `record` call each, alternating
//! between the two directories in rounds so drift in the disk's speed hits
//! both alike. Prints the median and 90th percentile per transition for
//! each size, their ratio, and the cost of opening the store and beginning
//! a release (which read the index, so do grow). The directories live under
//! `target/` (a real disk: `/tmp` may be memory, where a sync costs
//! nothing).

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use stagecraft::engine::{Event, Plan, PlannedInstance, Recorder};
use stagecraft::state::{Clock, Holder, Journal, ReleaseId, StateDir, Store, Timestamp, Wait};

/// 2026-11-25T00:00:00Z.
const BASE_MILLIS: u64 = 1_795_564_800_000;

fn time(offset: u64) -> String {
    Timestamp::from_millis(BASE_MILLIS + offset).to_string()
}

/// Writes `count` finished releases straight into `dir`, as stagecraft
/// would have written them, without syncing each file.
fn write_history(dir: &Path, count: u64) {
    fs::create_dir_all(dir.join("releases")).unwrap();
    let mut index = String::from("Format(version: 1)\n");
    for n in 0..count {
        let id = ReleaseId::from_time(Timestamp::from_millis(BASE_MILLIS + n * 1000));
        let (start, end) = (time(n * 1000), time(n * 1000 + 500));
        let log = format!(
            "Format(version: 1)\n\
             Release(id: \"{id}\", pipeline: \"bench\", workflow: \"deploy\", env: \"prod\", version: \"v{n}\", previous: None, rollback_of: None, started_at: \"{start}\", instances: [\"build\"])\n\
             Started(at: \"{start}\", instance: 0, attempt: 1)\n\
             Completed(at: \"{end}\", instance: 0, exit_code: Some(0))\n\
             Finished(at: \"{end}\")\n"
        );
        fs::write(dir.join("releases").join(format!("{id}.ron")), log).unwrap();
        writeln!(
            index,
            "Started(id: \"{id}\", pipeline: \"bench\", workflow: \"deploy\", env: \"prod\", version: \"v{n}\", previous: None, rollback_of: None, at: \"{start}\")"
        )
        .unwrap();
        writeln!(index, "Finished(id: \"{id}\", at: \"{end}\", status: completed)").unwrap();
    }
    fs::write(dir.join("index.ron"), index).unwrap();
}

fn plan(instances: usize) -> Plan {
    Plan {
        pipeline: "bench".to_owned(),
        env: "prod".to_owned(),
        workflow: "deploy".to_owned(),
        version: "bench".to_owned(),
        phases: (0..instances)
            .map(|i| PlannedInstance {
                id: format!("step{i}"),
                phase: format!("step{i}"),
                service: None,
                after: if i == 0 { vec![] } else { vec![i - 1] },
                command: Some("true".to_owned()),
                enabled: true,
                timeout_ms: None,
                retry: 0,
                backoff_ms: 0,
            })
            .collect(),
    }
}

/// Records `Started` then `Completed` for instances `from..to`, one
/// durable `record` each, adding each one's time to `samples`.
fn transitions(journal: &mut Journal<'_>, from: usize, to: usize, samples: &mut Vec<Duration>) {
    for instance in from..to {
        for event in [
            Event::Started { instance, attempt: 1 },
            Event::Completed {
                instance,
                exit_code: Some(0),
            },
        ] {
            let start = Instant::now();
            journal.record(&[event]).unwrap();
            samples.push(start.elapsed());
        }
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort_unstable();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((samples.len() - 1) as f64 * p).round() as usize;
    samples[index].as_secs_f64() * 1e6
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, per_round) = if quick { (5, 50) } else { (10, 150) };
    let sizes = [10_u64, 10_000];
    fs::create_dir_all("target").unwrap();
    let root = tempfile::Builder::new()
        .prefix("bench-state-")
        .tempdir_in("target")
        .unwrap();
    let clock = Clock::System;
    let holder = Holder::current("deploy", Some("prod"), clock.now());

    let mut setup = Vec::new();
    let mut stores = Vec::new();
    for &size in &sizes {
        let dir = root.path().join(format!("{size}"));
        let start = Instant::now();
        write_history(&dir, size);
        let written = start.elapsed();
        // SAFETY: `sync` has no preconditions.
        unsafe { libc::sync() };
        let start = Instant::now();
        let (store, recovered) = Store::open(&dir, &holder, Wait::No, clock).unwrap();
        let opened = start.elapsed();
        assert!(recovered.is_empty());
        assert_eq!(store.releases(None).len(), usize::try_from(size).unwrap());
        let start = Instant::now();
        let listed = StateDir::new(&dir).releases(Some("prod")).unwrap().len();
        let list = start.elapsed();
        assert_eq!(listed, usize::try_from(size).unwrap());
        setup.push((size, written, opened, list));
        stores.push(store);
    }
    let plan = plan(rounds * per_round);
    let mut journals: Vec<(Journal<'_>, Duration)> = stores
        .iter_mut()
        .map(|store| {
            let id = store.next_id();
            let start = Instant::now();
            let journal = store.begin(id, &plan, None).unwrap();
            (journal, start.elapsed())
        })
        .collect();
    let mut samples = vec![Vec::new(); sizes.len()];
    for round in 0..rounds {
        for (journal, samples) in journals.iter_mut().zip(&mut samples) {
            transitions(&mut journal.0, round * per_round, (round + 1) * per_round, samples);
        }
    }
    let begins: Vec<Duration> = journals.iter().map(|j| j.1).collect();
    for (journal, _) in journals {
        journal.finish().unwrap();
    }

    println!(
        "durable transition (append + fdatasync), {} per size, interleaved in {rounds} rounds",
        samples[0].len()
    );
    println!(
        "{:>16} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "past releases", "median µs", "p90 µs", "open ms", "begin µs", "list ms"
    );
    let mut medians = Vec::new();
    let mut json = Vec::new();
    for (((size, _written, opened, list), samples), begin) in setup.iter().zip(&mut samples).zip(&begins) {
        let median = percentile(samples, 0.5);
        let p90 = percentile(samples, 0.9);
        medians.push(median);
        println!(
            "{size:>16} {median:>12.1} {p90:>12.1} {:>12.2} {:>12.1} {:>12.2}",
            micros(*opened) / 1000.0,
            micros(*begin),
            micros(*list) / 1000.0
        );
        json.push(format!(
            "{{\"past_releases\": {size}, \"median_us\": {median:.1}, \"p90_us\": {p90:.1}, \"open_ms\": {:.2}, \"begin_us\": {:.1}, \"list_ms\": {:.2}}}",
            micros(*opened) / 1000.0,
            micros(*begin),
            micros(*list) / 1000.0
        ));
    }
    let ratio = medians[1] / medians[0];
    println!("ratio (10,000 / 10) of the median transition: {ratio:.2}");
    let verdict = if ratio < 1.25 { "does not grow" } else { "GROWS" };
    println!("transition cost {verdict} with the number of past releases");
    let report = format!("{{\"sizes\": [{}], \"ratio\": {ratio:.3}}}\n", json.join(", "));
    fs::write("target/bench-state.json", report).unwrap();
}
