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

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::history::{chain_plan, write_history};
use stagecraft::engine::Event;
use stagecraft::state::{Clock, Holder, Journal, StateDir, Store, Wait};

/// Records `Started` then `Completed` for instances `from..to`, one
/// durable `append` each, adding each one's time to `samples`.
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
            journal.append(&[event]).unwrap();
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

/// What opening one history cost: its size, the time to write it, open the
/// store and list its releases.
struct Setup {
    size: u64,
    opened: Duration,
    list: Duration,
}

/// Writes a history of `size` releases under `root` and opens it as a run
/// would, timing the open and a listing.
fn open_history(root: &std::path::Path, size: u64, holder: &Holder, clock: Clock) -> (Store, Setup) {
    let dir = root.join(format!("{size}"));
    write_history(&dir, size);
    rustix::fs::sync();
    let start = Instant::now();
    let (store, recovered) = Store::open(&dir, holder, Wait::No, clock).unwrap();
    let opened = start.elapsed();
    assert!(recovered.is_empty());
    assert_eq!(store.releases(None).len(), usize::try_from(size).unwrap());
    let start = Instant::now();
    let listed = StateDir::new(&dir).releases(Some("prod")).unwrap().len();
    let list = start.elapsed();
    assert_eq!(listed, usize::try_from(size).unwrap());
    (store, Setup { size, opened, list })
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

    let (mut stores, setup): (Vec<Store>, Vec<Setup>) = sizes
        .iter()
        .map(|&size| open_history(root.path(), size, &holder, clock))
        .unzip();
    let plan = chain_plan(rounds * per_round);
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
    report(&setup, &mut samples, &begins);
}

/// Prints the table and the verdict, and writes `target/bench-state.json`.
fn report(setup: &[Setup], samples: &mut [Vec<Duration>], begins: &[Duration]) {
    println!(
        "durable transition (append + fdatasync), {} per size, interleaved in rounds",
        samples[0].len()
    );
    println!(
        "{:>16} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "past releases", "median µs", "p90 µs", "open ms", "begin µs", "list ms"
    );
    let mut medians = Vec::new();
    let mut json = Vec::new();
    for ((setup, samples), begin) in setup.iter().zip(samples).zip(begins) {
        let Setup { size, opened, list } = setup;
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
