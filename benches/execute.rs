//! Execution benchmark: `stagecraft deploy` against `ninja` and GNU
//! `make` running the same instance graph, every task `true`, at one and
//! two jobs; plus the cost of one durable transition at 10 and at 10,000
//! past releases, and how many syncs a run does per instance.
//!
//! ```text
//! cargo bench --bench execute              # 1k and 10k tasks, 5 runs each
//! cargo bench --bench execute -- --quick   # 1k tasks, 3 runs
//! cargo bench --bench execute -- --sizes 2000,20000 --runs 7
//! ```
//!
//! For each size:
//!
//! 1. The layered graph of the front-end bench (`benches/common/layered.rs`:
//!    layers of width `max(4, isqrt(N))`, about two `after` edges a task),
//!    every task `true`, written as the pipeline, a `build.ninja` (outputs
//!    that are never created, so ninja runs every edge every time) and a
//!    `Makefile` (phony targets, so every recipe runs), under
//!    `target/bench-execute/n<N>/` (a real disk, as state lives beside the
//!    pipeline; `/tmp` may be memory).
//! 2. Checks, untimed: `stagecraft plan` has the model's instances and
//!    edges, every one enabled with command `true`; `ninja -j1` prints N
//!    `[k/N]` lines and `make -j1 --trace` echoes `true;` N times; a real
//!    `stagecraft deploy` completes N instances, counted in its release log.
//!    At every size, one more run under `perf stat` (if installed and
//!    allowed) counts its `fdatasync` calls on a tracepoint, which barely
//!    slows it. At the smallest size, the run is repeated under `strace -f -c -w` (if
//!    installed) to count its `fdatasync`/`fsync` calls and their average
//!    wall time.
//! 3. Timing: `stagecraft deploy --jobs 1|2`, `ninja -j1|-j2`, `make
//!    -j1|-j2`, run round-robin by the same fork/exec/`wait4` helper as the
//!    front-end bench (so load from elsewhere hits them alike), one warm-up
//!    round, median of the rest; stdin, stdout and stderr on `/dev/null`.
//!    Untimed before each run: a fresh state directory for stagecraft,
//!    `.ninja_log` removed for ninja, and `sync(2)` so the dirty pages of
//!    one run are not written back during the next.
//!
//! Nothing is deleted while commands are timed: ext4 allocates inodes
//! slowly right after many were freed (`recently_deleted` in the profile),
//! which would charge stagecraft's per-instance log files for the clean-up
//! of earlier runs. The state directories stay until the end; the previous
//! bench's files are moved aside at the start and deleted at the end.
//!
//! Then the durable transition (`Journal::append` of one event: write +
//! `fdatasync`) is timed in-process as `benches/state.rs` does, with 10 and
//! 10,000 past releases, alternating in rounds.
//!
//! With `STAGECRAFT_TEST_POSTGRES` set, the smallest size also runs on the
//! PostgreSQL state, against the state directory in the same measurement,
//! with the cost of one durable transition there (`execute/postgres.rs`).
//!
//! Results are printed as a table and written to
//! `target/bench-execute.json`.

mod common;
#[path = "execute/postgres.rs"]
mod postgres;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::history::{chain_plan, write_history};
use common::{
    Measured, PLAN_JSON, Run, Summary, approx, count_output, layered, measure_helper, measure_runs, round, summarize,
    verify, which,
};
use serde_json::{Value, json};
use stagecraft::engine::Event;
use stagecraft::state::{Clock, Holder, Journal, ReleaseMeta, Store, Wait};

/// The timed commands, in the order they run in each round.
const COMMANDS: [&str; 6] = [
    "stagecraft -j1",
    "ninja -j1",
    "make -j1",
    "stagecraft -j2",
    "ninja -j2",
    "make -j2",
];

struct Options {
    sizes: Vec<usize>,
    runs: usize,
    transitions: (usize, usize),
}

fn options(args: &[String]) -> Options {
    let quick = args.iter().any(|a| a == "--quick");
    let mut options = Options {
        sizes: if quick { vec![1_000] } else { vec![1_000, 10_000] },
        runs: if quick { 3 } else { 5 },
        transitions: if quick { (5, 50) } else { (10, 150) },
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--sizes" => {
                let list = args.next().expect("--sizes N,N,...");
                options.sizes = list.split(',').map(|s| s.parse().expect("a size")).collect();
            }
            "--runs" => options.runs = args.next().and_then(|r| r.parse().ok()).expect("--runs N"),
            _ => {}
        }
    }
    options
}

/// What a real run wrote, and what strace saw of it.
#[derive(Clone, Debug, Default)]
struct RunCheck {
    /// Lines of the release log: every line, and `Started` / `Completed`.
    log_lines: usize,
    started: usize,
    completed: usize,
    /// Per-instance output logs created.
    output_logs: usize,
    /// From `strace -f -c -w`, when it ran.
    syncs: Option<Syncs>,
    /// `fdatasync` calls of a run counted by `perf stat` (a tracepoint:
    /// it barely slows the run, where strace slows every command and so
    /// changes how far ahead the executor claims), when perf may.
    perf_syncs: Option<u64>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Syncs {
    fdatasync: u64,
    fsync: u64,
    /// Average wall time of one `fdatasync` under strace.
    fdatasync_us: f64,
}

/// Results for one size.
struct Row {
    tasks: usize,
    edges: usize,
    runs: Vec<Vec<Run>>,
    checks: [RunCheck; 2],
}

impl Row {
    fn summary(&self, name: &str) -> Summary {
        let index = COMMANDS.iter().position(|c| *c == name).expect("a timed command");
        summarize(&self.runs[index])
    }

    fn per_task_us(&self, name: &str) -> f64 {
        self.summary(name).wall_ms * 1000.0 / approx(self.tasks as u64)
    }
}

/// The commands the bench runs, found once.
struct Tools {
    stagecraft: PathBuf,
    ninja: PathBuf,
    make: PathBuf,
    strace: Option<PathBuf>,
    perf: Option<PathBuf>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("__measure") {
        measure_helper(&args[1..]);
    }
    let options = options(&args);
    let stagecraft = PathBuf::from(env!("CARGO_BIN_EXE_stagecraft"));
    let target_dir = stagecraft
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/stagecraft")
        .to_path_buf();
    let tools = Tools {
        stagecraft,
        ninja: which("ninja").expect("ninja is needed (apt install ninja-build)"),
        make: which("make").expect("GNU make is needed"),
        strace: which("strace"),
        perf: which("perf"),
    };
    println!(
        "stagecraft execute bench: {} run(s) after 1 warm-up, sizes {:?}, commands round-robin, sync(2) before each\nbinary {}\n{}",
        options.runs,
        options.sizes,
        tools.stagecraft.display(),
        if tools.strace.is_none() {
            "strace: not installed, sync counts come from the release log only"
        } else {
            ""
        }
    );

    // Deleted at the end, not now: see the module docs.
    let root = target_dir.join("bench-execute");
    let old = target_dir.join("bench-execute.old");
    let _ = fs::remove_dir_all(&old);
    let _ = fs::rename(&root, &old);
    let rows: Vec<Row> = options
        .sizes
        .iter()
        .enumerate()
        .map(|(position, &size)| {
            bench_size(
                &tools,
                &root.join(format!("n{size}")),
                size,
                position == 0,
                options.runs,
            )
        })
        .collect();

    let transitions = transitions(&target_dir, options.transitions);
    let pg = rows.first().and_then(|row| {
        let dir = root.join(format!("n{}", row.tasks));
        postgres::bench(&tools.stagecraft, &dir, row.tasks, options.runs, options.transitions.1)
    });
    let mut report = render(&rows, &transitions);
    if let Some(pg) = &pg {
        report.push('\n');
        report.push_str(&postgres::render(pg));
    }
    println!("\n{report}");
    let mut json = results_json(&rows, &transitions, &options, &tools.stagecraft);
    if let Some(pg) = &pg {
        json["postgres"] = postgres::json(pg);
    }
    let path = target_dir.join("bench-execute.json");
    fs::write(&path, serde_json::to_string_pretty(&json).expect("json") + "\n").expect("write results");
    println!("written to {}", path.display());
    let _ = fs::remove_dir_all(&old);
    clean_up(&root, &options.sizes);
}

/// One size: writes the pipeline, `build.ninja` and `Makefile` into `dir`,
/// checks them untimed (under strace too if `traced`), then times every
/// command `runs` times and prints the results.
fn bench_size(tools: &Tools, dir: &Path, size: usize, traced: bool, runs: usize) -> Row {
    let Tools {
        stagecraft,
        ninja,
        make,
        strace,
        perf,
    } = tools;
    fs::create_dir_all(dir).expect("create bench dir");
    // The front-end bench's layered graph, the same one ninja and make run.
    let deps = layered::dependencies(size);
    fs::write(dir.join("gen.stagecraft"), layered::pipeline(&deps)).expect("write pipeline");
    fs::write(dir.join("build.ninja"), layered::ninja(&deps)).expect("write build.ninja");
    fs::write(dir.join("Makefile"), layered::makefile(&deps)).expect("write Makefile");

    let edges = verify(stagecraft, dir, &layered::tasks(&deps));
    check_commands(stagecraft, dir, size);
    let ninja_tasks = count_output(dir, ninja, &["-j1"], |l| l.starts_with('['));
    assert_eq!(ninja_tasks, size, "ninja -j1 ran {ninja_tasks} edges, not {size}");
    let _ = fs::remove_file(dir.join(".ninja_log"));
    // The recipes are silent (`@true;`): `--trace` echoes each one it runs.
    let make_tasks = count_output(dir, make, &["-j1", "--trace", "-f", "Makefile"], |l| l == "true;");
    assert_eq!(make_tasks, size, "make -j1 ran {make_tasks} recipes, not {size}");
    let traced = strace.as_deref().filter(|_| traced);
    let checks = [1, 2].map(|jobs| {
        let mut check = check_run(stagecraft, dir, size, jobs, traced);
        check.perf_syncs = perf.as_deref().and_then(|perf| perf_syncs(perf, stagecraft, dir, jobs));
        check
    });
    println!(
        "\n{size} tasks: {edges} edges ({:.2}/task); ninja and make each run {size} commands; a stagecraft run completes {size} instances",
        approx(edges as u64) / approx(size as u64),
    );

    let row = Row {
        tasks: size,
        edges,
        runs: time_commands(tools, dir, runs),
        checks,
    };
    for name in COMMANDS {
        let s = row.summary(name);
        println!(
            "  {name:<15} {:>9.1} ms (min {:>9.1}, cpu {:>9.1})  {:>6.1} µs/task",
            s.wall_ms,
            s.min_ms,
            s.cpu_ms,
            row.per_task_us(name)
        );
    }
    row
}

/// Times the `COMMANDS` in `dir`, round-robin, `runs` times each.
fn time_commands(tools: &Tools, dir: &Path, runs: usize) -> Vec<Vec<Run>> {
    let run_args = |jobs: &'static str, state: &'static str| {
        let mut args = deploy_args(jobs).to_vec();
        args.push(state);
        args
    };
    let Tools {
        stagecraft,
        ninja,
        make,
        ..
    } = tools;
    let measured = [
        Measured::new(COMMANDS[0], stagecraft, run_args("1", "state-j1-{run}")),
        Measured::new(COMMANDS[1], ninja, vec!["-j1"]).scratch(".ninja_log"),
        Measured::new(COMMANDS[2], make, vec!["-j1", "-f", "Makefile"]),
        Measured::new(COMMANDS[3], stagecraft, run_args("2", "state-j2-{run}")),
        Measured::new(COMMANDS[4], ninja, vec!["-j2"]).scratch(".ninja_log"),
        Measured::new(COMMANDS[5], make, vec!["-j2", "-f", "Makefile"]),
    ];
    measure_runs(dir, &measured, runs, true)
}

/// Removes what the runs left: the transition bench's directory and every
/// size's state and check directories; the generated files stay.
fn clean_up(root: &Path, sizes: &[usize]) {
    let _ = fs::remove_dir_all(root.join("transition"));
    for size in sizes {
        let dir = root.join(format!("n{size}"));
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("state-") || name.starts_with("check-") {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// `stagecraft deploy` of the generated pipeline with `jobs`, up to the
/// `--state-dir` flag (its value follows).
fn deploy_args(jobs: &str) -> [&str; 10] {
    [
        "deploy",
        "-f",
        "gen.stagecraft",
        "--env",
        "bench",
        "--version",
        "bench",
        "--jobs",
        jobs,
        "--state-dir",
    ]
}

// ---- checks ------------------------------------------------------------------------

/// Every planned instance runs `true` and is enabled.
fn check_commands(stagecraft: &Path, dir: &Path, size: usize) {
    let output = Command::new(stagecraft)
        .args(PLAN_JSON)
        .current_dir(dir)
        .output()
        .expect("run stagecraft plan");
    let plan: Value = serde_json::from_slice(&output.stdout).expect("plan JSON");
    let phases = plan["phases"].as_array().expect("plan.phases");
    assert_eq!(phases.len(), size);
    for phase in phases {
        assert_eq!(phase["command"], "true", "{}", phase["id"]);
        assert_eq!(phase["enabled"], true, "{}", phase["id"]);
    }
}

/// One real `stagecraft deploy` (under `strace` when given): it succeeds, and
/// its release log has every instance started and completed once.
fn check_run(stagecraft: &Path, dir: &Path, size: usize, jobs: u8, strace: Option<&Path>) -> RunCheck {
    let state = dir.join(format!("check-j{jobs}"));
    let _ = fs::remove_dir_all(&state);
    let trace = dir.join(format!("strace-j{jobs}.txt"));
    let mut command = match strace {
        Some(strace) => {
            let mut command = Command::new(strace);
            command
                .args(["-f", "-c", "-w", "-e", "trace=fdatasync,fsync", "-o"])
                .arg(&trace)
                .arg(stagecraft);
            command
        }
        None => Command::new(stagecraft),
    };
    let jobs_text = jobs.to_string();
    let output = command
        .args(deploy_args(&jobs_text))
        .arg(&state)
        .current_dir(dir)
        .output()
        .expect("run stagecraft");
    assert!(
        output.status.success(),
        "stagecraft run failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut check = RunCheck::default();
    // The state layout keeps each pipeline's releases and logs apart.
    let state = state.join("pipelines").join("bench");
    let releases: Vec<PathBuf> = fs::read_dir(state.join("releases"))
        .expect("releases dir")
        .map(|entry| entry.expect("entry").path())
        .collect();
    assert_eq!(releases.len(), 1, "one release");
    let log = fs::read_to_string(&releases[0]).expect("release log");
    for line in log.lines() {
        check.log_lines += 1;
        check.started += usize::from(line.starts_with("Started("));
        check.completed += usize::from(line.starts_with("Completed("));
    }
    assert_eq!(
        (check.started, check.completed),
        (size, size),
        "every instance ran once"
    );
    check.output_logs = fs::read_dir(state.join("logs"))
        .expect("logs dir")
        .map(|entry| fs::read_dir(entry.expect("entry").path()).map_or(0, Iterator::count))
        .sum();
    if strace.is_some() {
        let text = fs::read_to_string(&trace).expect("strace output");
        let mut syncs = Syncs::default();
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // % time, seconds, usecs/call, calls, [errors,] syscall
            let (Some(&name), true) = (fields.last(), fields.len() >= 5) else {
                continue;
            };
            let calls: u64 = fields[3].parse().unwrap_or(0);
            match name {
                "fdatasync" => {
                    syncs.fdatasync = calls;
                    syncs.fdatasync_us = fields[2].parse().unwrap_or(0.0);
                }
                "fsync" => syncs.fsync = calls,
                _ => {}
            }
        }
        check.syncs = Some(syncs);
    }
    check
}

/// The `fdatasync` calls of one real run, counted by `perf stat` on the
/// `syscalls:sys_enter_fdatasync` tracepoint; `None` if perf cannot.
fn perf_syncs(perf: &Path, stagecraft: &Path, dir: &Path, jobs: u8) -> Option<u64> {
    let state = dir.join(format!("check-perf-j{jobs}"));
    let counts = dir.join(format!("perf-j{jobs}.csv"));
    let _ = fs::remove_dir_all(&state);
    let jobs = jobs.to_string();
    let status = Command::new(perf)
        .args(["stat", "-x", ",", "-e", "syscalls:sys_enter_fdatasync", "-o"])
        .arg(&counts)
        .arg("--")
        .arg(stagecraft)
        .args(deploy_args(&jobs))
        .arg(&state)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    // `COUNT,,syscalls:sys_enter_fdatasync,…`; `<not supported>` when the
    // tracepoint is not allowed.
    fs::read_to_string(&counts)
        .ok()?
        .lines()
        .find(|line| line.contains("sys_enter_fdatasync"))?
        .split(',')
        .next()?
        .trim()
        .parse()
        .ok()
}

// ---- the durable transition (as benches/state.rs) ------------------------------------

/// The median and 90th percentile of one transition, per history size.
struct Transition {
    past: u64,
    median_us: f64,
    p90_us: f64,
    samples: usize,
}

fn percentile_us(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort_unstable();
    let last = approx(samples.len() as u64 - 1);
    // The index is within 0..len: the cast only drops a fraction of 0.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let index = (last * p).round() as usize;
    samples[index].as_secs_f64() * 1e6
}

/// Records `Started` and `Completed` one `record` call each, alternating
/// between a store with 10 and one with 10,000 past releases in rounds.
fn transitions(target_dir: &Path, (rounds, per_round): (usize, usize)) -> Vec<Transition> {
    let sizes = [10_u64, 10_000];
    let root = target_dir.join("bench-execute").join("transition");
    let _ = fs::remove_dir_all(&root);
    let clock = Clock::System;
    let holder = Holder::current("deploy", Some("prod"), clock.now());
    let mut stores: Vec<Store> = sizes
        .iter()
        .map(|&size| {
            let dir = root.join(size.to_string());
            write_history(&dir, size, true);
            dir
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|dir| {
            // SAFETY: `sync` has no preconditions.
            unsafe { libc::sync() };
            let (store, recovered) = Store::open(&dir, "bench", "prod", &holder, Wait::No, clock).expect("open store");
            assert!(recovered.is_empty());
            store
        })
        .collect();
    let plan = chain_plan(rounds * per_round);
    let mut journals: Vec<Journal<'_>> = stores
        .iter_mut()
        .map(|store| {
            let id = store.next_id();
            store.begin(id, &plan, ReleaseMeta::default()).expect("begin")
        })
        .collect();
    let mut samples = vec![Vec::new(); sizes.len()];
    for round in 0..rounds {
        for (journal, samples) in journals.iter_mut().zip(&mut samples) {
            for instance in round * per_round..(round + 1) * per_round {
                for event in [
                    Event::Started { instance, attempt: 1 },
                    Event::Completed {
                        instance,
                        exit_code: Some(0),
                    },
                ] {
                    let start = Instant::now();
                    journal.append(&[event]).expect("append");
                    samples.push(start.elapsed());
                }
            }
        }
    }
    for journal in journals {
        journal.finish().expect("finish");
    }
    drop(stores);
    sizes
        .iter()
        .zip(&mut samples)
        .map(|(&past, samples)| Transition {
            past,
            median_us: percentile_us(samples, 0.5),
            p90_us: percentile_us(samples, 0.9),
            samples: samples.len(),
        })
        .collect()
}

// ---- report ----------------------------------------------------------------------------

/// The report: the timing table, the durability table and the transitions.
fn render(rows: &[Row], transitions: &[Transition]) -> String {
    let mut out = String::new();
    render_times(&mut out, rows);
    render_durability(&mut out, rows);
    render_transitions(&mut out, transitions);
    out
}

/// Median wall time per size, tool and `-j`, and stagecraft's ratios.
fn render_times(out: &mut String, rows: &[Row]) {
    let _ = writeln!(
        out,
        "Executing N tasks of `true`: median wall ms (µs per task); ratio = stagecraft / other, below 1 is faster"
    );
    let header = format!(
        "{:>7} | {:>2} | {:>19} | {:>19} | {:>19} | {:>8} | {:>8}",
        "tasks", "-j", "stagecraft", "ninja", "make", "sc/ninja", "sc/make"
    );
    let _ = writeln!(out, "{header}\n{}", "-".repeat(header.chars().count()));
    for row in rows {
        for jobs in [1, 2] {
            let cell = |tool: &str| {
                let name = format!("{tool} -j{jobs}");
                format!("{:>9.1} ({:>6.1})", row.summary(&name).wall_ms, row.per_task_us(&name))
            };
            let ratio = |tool: &str| {
                row.summary(&format!("stagecraft -j{jobs}")).wall_ms / row.summary(&format!("{tool} -j{jobs}")).wall_ms
            };
            let _ = writeln!(
                out,
                "{:>7} | {jobs:>2} | {} | {} | {} | {:>7.2}x | {:>7.2}x",
                row.tasks,
                cell("stagecraft"),
                cell("ninja"),
                cell("make"),
                ratio("ninja"),
                ratio("make")
            );
        }
    }
}

/// What the checked runs wrote and how often they synced.
fn render_durability(out: &mut String, rows: &[Row]) {
    let _ = writeln!(
        out,
        "\nDurability of a stagecraft run (one checked run per size and -j, outside the timing)"
    );
    let header = format!(
        "{:>7} | {:>2} | {:>9} | {:>15} | {:>11} | {:>9} | {:>6} | {:>12} | {:>11} | {:>17}",
        "tasks",
        "-j",
        "log lines",
        "started/compl.",
        "output logs",
        "fdatasync",
        "fsync",
        "syncs/task",
        "µs/fdatasync",
        "syncs/task (perf)"
    );
    let _ = writeln!(out, "{header}\n{}", "-".repeat(header.chars().count()));
    for row in rows {
        for (jobs, check) in [1, 2].iter().zip(&row.checks) {
            let (fdatasync, fsync, per_task, latency) = match check.syncs {
                Some(s) => (
                    s.fdatasync.to_string(),
                    s.fsync.to_string(),
                    format!("{:.3}", approx(s.fdatasync + s.fsync) / approx(row.tasks as u64)),
                    format!("{:.0}", s.fdatasync_us),
                ),
                None => ("-".to_owned(), "-".to_owned(), "-".to_owned(), "-".to_owned()),
            };
            let perf = check.perf_syncs.map_or_else(
                || "-".to_owned(),
                |syncs| format!("{:.3}", approx(syncs) / approx(row.tasks as u64)),
            );
            let _ = writeln!(
                out,
                "{:>7} | {jobs:>2} | {:>9} | {:>15} | {:>11} | {fdatasync:>9} | {fsync:>6} | {per_task:>12} | {latency:>11} | {perf:>17}",
                row.tasks,
                check.log_lines,
                format!("{}/{}", check.started, check.completed),
                check.output_logs,
            );
        }
    }
    let _ = writeln!(
        out,
        "(fdatasync, fsync, syncs/task: `strace -f -c -w` at the smallest size, which slows every command and so\n makes the executor claim less far ahead; µs/fdatasync is its wall time under strace. syncs/task (perf):\n fdatasync calls counted by `perf stat` on a tracepoint, which barely slows the run)"
    );
}

/// The cost of one durable transition by number of past releases.
fn render_transitions(out: &mut String, transitions: &[Transition]) {
    let _ = writeln!(
        out,
        "\nOne durable transition (Journal::append of one event: write + fdatasync), interleaved rounds"
    );
    let _ = writeln!(
        out,
        "{:>14} | {:>9} | {:>9} | {:>7}",
        "past releases", "median µs", "p90 µs", "samples"
    );
    for t in transitions {
        let _ = writeln!(
            out,
            "{:>14} | {:>9.1} | {:>9.1} | {:>7}",
            t.past, t.median_us, t.p90_us, t.samples
        );
    }
    if let [small, large] = transitions {
        let _ = writeln!(
            out,
            "ratio (10,000 / 10) of the median: {:.2}",
            large.median_us / small.median_us
        );
    }
}

fn summary_json(runs: &[Run], tasks: usize) -> Value {
    let s = summarize(runs);
    json!({
        "wall_ms_median": round(s.wall_ms),
        "wall_ms_min": round(s.min_ms),
        "cpu_ms_median": round(s.cpu_ms),
        "peak_rss_mib": round(s.rss_mb),
        "us_per_task": round(s.wall_ms * 1000.0 / approx(tasks as u64)),
        "wall_ms_runs": runs.iter().map(|r| round(r.wall.as_secs_f64() * 1000.0)).collect::<Vec<_>>(),
    })
}

fn results_json(rows: &[Row], transitions: &[Transition], options: &Options, stagecraft: &Path) -> Value {
    let sizes: Vec<Value> = rows
        .iter()
        .map(|row| {
            let commands: serde_json::Map<String, Value> = COMMANDS
                .iter()
                .zip(&row.runs)
                .map(|(name, runs)| ((*name).to_owned(), summary_json(runs, row.tasks)))
                .collect();
            let mut ratios = serde_json::Map::new();
            for jobs in [1, 2] {
                let sc = row.summary(&format!("stagecraft -j{jobs}")).wall_ms;
                for tool in ["ninja", "make"] {
                    ratios.insert(
                        format!("stagecraft/{tool} -j{jobs}"),
                        json!(round(sc / row.summary(&format!("{tool} -j{jobs}")).wall_ms)),
                    );
                }
            }
            let checks: Vec<Value> = [1, 2]
                .iter()
                .zip(&row.checks)
                .map(|(jobs, c)| {
                    json!({
                        "jobs": jobs,
                        "release_log_lines": c.log_lines,
                        "started": c.started,
                        "completed": c.completed,
                        "output_logs": c.output_logs,
                        "fdatasync": c.syncs.map(|s| s.fdatasync),
                        "fsync": c.syncs.map(|s| s.fsync),
                        "syncs_per_task": c.syncs.map(|s| round(approx(s.fdatasync + s.fsync) / approx(row.tasks as u64))),
                        "fdatasync_us_under_strace": c.syncs.map(|s| s.fdatasync_us),
                        "fdatasync_perf": c.perf_syncs,
                    })
                })
                .collect();
            json!({
                "tasks": row.tasks,
                "edges": row.edges,
                "commands": commands,
                "ratios": ratios,
                "stagecraft_runs": checks,
            })
        })
        .collect();
    let transitions: Vec<Value> = transitions
        .iter()
        .map(|t| {
            json!({
                "past_releases": t.past,
                "median_us": round(t.median_us),
                "p90_us": round(t.p90_us),
                "samples": t.samples,
            })
        })
        .collect();
    json!({
        "runs": options.runs,
        "warmups": 1,
        "binary": stagecraft.display().to_string(),
        "sizes": sizes,
        "transition": transitions,
    })
}
