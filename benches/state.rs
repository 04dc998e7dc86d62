//! What a run and a reader pay for the history: with 10, 10,000 and
//! 100,000 past releases in an env, the cost of opening the store (lock,
//! recovery check, next id, current release, live state), listing the
//! newest 20 releases, reading the live state, beginning a release, and one
//! durable transition (append + `fdatasync`).
//!
//! `cargo bench --bench state [-- --quick]`. The history is written
//! directly (the env's index, as stagecraft writes it, then one `sync`; no
//! release logs, which nothing here reads), then each size is opened and
//! read several times, alternating between the sizes in rounds (medians;
//! opening includes taking the lock, which writes and syncs the holder
//! file), and a release of many instances records
//! `Started` and `Completed` events one `append` each, alternating between
//! the sizes in rounds so drift in the disk's speed hits all alike. The
//! directories live under `target/` (a real disk: `/tmp` may be memory,
//! where a sync costs nothing). Results also go to
//! `target/bench-state.json`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::history::{chain_plan, write_history};
use stagecraft::engine::Event;
use stagecraft::state::{Clock, Holder, Journal, ReleaseMeta, StateDir, Store, Wait};

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

/// The time `f` takes.
fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// What reading one history cost (medians, µs).
struct Setup {
    size: u64,
    open: f64,
    list: f64,
    live: f64,
}

/// Writes a history of `size` releases under `root`; returns its directory.
fn write(root: &Path, size: u64) -> PathBuf {
    let dir = root.join(format!("{size}"));
    write_history(&dir, size, false);
    dir
}

/// Times opening each history, listing its newest 20 and reading its live
/// state, `repeat` times, alternating between the histories in rounds (so
/// drift in the disk's speed hits every size alike); medians.
fn read_costs(dirs: &[(u64, PathBuf)], holder: &Holder, clock: Clock, repeat: usize) -> Vec<Setup> {
    let mut samples = vec![[const { Vec::new() }; 3]; dirs.len()];
    for _ in 0..repeat {
        for ((size, dir), samples) in dirs.iter().zip(&mut samples) {
            samples[0].push(time(|| {
                let (store, recovered) = Store::open(dir, "bench", "prod", holder, Wait::No, clock).unwrap();
                assert!(recovered.is_empty());
                assert_eq!(store.live().services().len(), 2);
            }));
            let pipeline = StateDir::new(dir).pipeline("bench");
            samples[1].push(time(|| {
                let newest = pipeline.releases(None, Some(20)).unwrap();
                assert_eq!(newest.len(), 20.min(usize::try_from(*size).unwrap()));
            }));
            samples[2].push(time(|| {
                assert_eq!(pipeline.live("prod").unwrap().services().len(), 2);
            }));
        }
    }
    dirs.iter()
        .zip(&mut samples)
        .map(|((size, _), [open, list, live])| Setup {
            size: *size,
            open: percentile(open, 0.5),
            list: percentile(list, 0.5),
            live: percentile(live, 0.5),
        })
        .collect()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, per_round, repeat) = if quick { (5, 50, 5) } else { (10, 150, 21) };
    let sizes = [10_u64, 10_000, 100_000];
    fs::create_dir_all("target").unwrap();
    let root = tempfile::Builder::new()
        .prefix("bench-state-")
        .tempdir_in("target")
        .unwrap();
    let clock = Clock::System;
    let holder = Holder::current("deploy", Some("prod"), clock.now());

    let dirs: Vec<(u64, PathBuf)> = sizes.iter().map(|&size| (size, write(root.path(), size))).collect();
    rustix::fs::sync();
    let setup = read_costs(&dirs, &holder, clock, repeat);
    let mut stores: Vec<Store> = dirs
        .iter()
        .map(|(_, dir)| Store::open(dir, "bench", "prod", &holder, Wait::No, clock).unwrap().0)
        .collect();
    let plan = chain_plan(rounds * per_round);
    let mut journals: Vec<(Journal<'_>, Duration)> = stores
        .iter_mut()
        .map(|store| {
            let id = store.next_id();
            let start = Instant::now();
            let journal = store.begin(id, &plan, ReleaseMeta::default()).unwrap();
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
        "history cost per env; durable transition (append + fdatasync), {} per size, interleaved in rounds",
        samples[0].len()
    );
    println!(
        "{:>14} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "past releases", "open ms", "list ms", "live ms", "begin µs", "median µs", "p90 µs"
    );
    let mut medians = Vec::new();
    let mut worst: f64 = 0.0;
    let mut json = Vec::new();
    for ((setup, samples), begin) in setup.iter().zip(samples).zip(begins) {
        let Setup { size, open, list, live } = setup;
        let (open, list, live) = (open / 1000.0, list / 1000.0, live / 1000.0);
        let begin = begin.as_secs_f64() * 1e6;
        let median = percentile(samples, 0.5);
        let p90 = percentile(samples, 0.9);
        medians.push(median);
        worst = worst.max(open).max(list).max(live);
        println!("{size:>14} {open:>9.2} {list:>9.2} {live:>9.2} {begin:>9.0} {median:>10.1} {p90:>10.1}");
        json.push(format!(
            "{{\"past_releases\": {size}, \"open_ms\": {open:.3}, \"list_ms\": {list:.3}, \"live_ms\": {live:.3}, \"begin_us\": {begin:.0}, \"median_us\": {median:.1}, \"p90_us\": {p90:.1}}}"
        ));
    }
    let ratio = medians[medians.len() - 1] / medians[0];
    println!("ratio (largest / 10) of the median transition: {ratio:.2}");
    println!(
        "open, list and live at most {worst:.2} ms: {}",
        if worst <= 5.0 {
            "within the 5 ms goal"
        } else {
            "OVER the 5 ms goal"
        }
    );
    let report = format!("{{\"sizes\": [{}], \"ratio\": {ratio:.3}}}\n", json.join(", "));
    fs::write("target/bench-state.json", report).unwrap();
}
