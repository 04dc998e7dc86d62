//! Front-end benchmark: `stagecraft plan` / `check` against `ninja -n` and
//! `make -n` on the same task graph, plus the in-process split of parse /
//! check / graph / plan.
//!
//! ```text
//! cargo bench --bench frontend              # 1k, 10k and 50k tasks, 7 runs each
//! cargo bench --bench frontend -- --quick   # 1k and 10k tasks, 3 runs each
//! cargo bench --bench frontend -- --sizes 2000,20000 --runs 5
//! ```
//!
//! Everything runs in one process, in this order for each size:
//!
//! 1. The ninja-shaped graph of `benches/common/layered.rs` (N tasks in
//!    layers of width `max(4, isqrt(N))`, about two edges a task, each
//!    running `true`) is written as `pipeline.stagecraft`, `build.ninja` and
//!    a `Makefile` under `target/bench-frontend/n<N>/`. `stagecraft check`
//!    must exit 0 and the instances and `after` lists of `stagecraft plan
//!    --format json` must equal the model, and `ninja -n` and `make -n` must
//!    each print N commands, so all tools really see the same graph.
//! 2. External commands are timed (median wall time of several runs after
//!    one warm-up, run round-robin) and their peak RSS taken from `wait4`'s
//!    `ru_maxrss`. They are started by a helper — this binary re-executed
//!    with `__measure` — that `fork`s and `exec`s them itself: Linux charges
//!    a child the high-water RSS of the address space it `exec`s from, so
//!    spawning from this (large) process directly would inflate every
//!    number. `/bin/true` through the same helper shows the floor. On a
//!    loaded machine, read the ratios: they come from the same rounds.
//! 3. The library is timed in-process stage by stage (median of the same
//!    number of runs), and one extra run counts allocations with a counting
//!    global allocator (off while timing).
//!
//! Results are printed as tables and written to `target/bench-frontend.json`.
//! The stagecraft binary is the one cargo builds for this bench
//! (`CARGO_BIN_EXE_stagecraft`, i.e. `target/release/stagecraft`).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use common::{
    Measured, Summary, approx, count_output, layered, measure, measure_helper, median, mib, ms, round, summary_json,
    verify_with, which,
};
use serde_json::{Value, json};
use stagecraft::engine::{PlanRequest, plan};
use stagecraft::graph::PhaseGraph;

// ---- a counting allocator (only counts while COUNTING is set) ---------------

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED: AtomicU64 = AtomicU64::new(0);

fn note_grow(bytes: usize) {
    let bytes = isize::try_from(bytes).unwrap_or(isize::MAX);
    let live = LIVE.fetch_add(bytes, Relaxed) + bytes;
    PEAK.fetch_max(live, Relaxed);
}

fn note_alloc(bytes: usize) {
    ALLOCS.fetch_add(1, Relaxed);
    ALLOCATED.fetch_add(bytes as u64, Relaxed);
    note_grow(bytes);
}

fn note_free(bytes: usize) {
    LIVE.fetch_sub(isize::try_from(bytes).unwrap_or(isize::MAX), Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; the counters are
// only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if COUNTING.load(Relaxed) && !ptr.is_null() {
            note_alloc(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if COUNTING.load(Relaxed) && !ptr.is_null() {
            note_alloc(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) };
        if COUNTING.load(Relaxed) {
            note_free(layout.size());
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if COUNTING.load(Relaxed) && !new.is_null() {
            note_free(layout.size());
            note_alloc(new_size);
        }
        new
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocation counts of one stage: relative to the live bytes when it began.
#[derive(Clone, Copy, Debug, Default)]
struct Allocation {
    /// Calls to `alloc`/`realloc`.
    allocs: u64,
    /// Bytes requested in total.
    allocated: u64,
    /// Highest live heap during the stage, above the live heap at its start.
    peak: i64,
    /// Live heap at its end, above the live heap at its start.
    retained: i64,
}

/// Runs `stage` with the counters on; `LIVE` keeps accumulating across
/// stages so `peak_total` tracks the whole sequence.
fn counted<T>(stage: impl FnOnce() -> T) -> (T, Allocation) {
    let start_allocs = ALLOCS.load(Relaxed);
    let start_allocated = ALLOCATED.load(Relaxed);
    let start_live = LIVE.load(Relaxed);
    PEAK.store(start_live, Relaxed);
    COUNTING.store(true, Relaxed);
    let value = stage();
    COUNTING.store(false, Relaxed);
    let allocation = Allocation {
        allocs: ALLOCS.load(Relaxed) - start_allocs,
        allocated: ALLOCATED.load(Relaxed) - start_allocated,
        peak: (PEAK.load(Relaxed) - start_live) as i64,
        retained: (LIVE.load(Relaxed) - start_live) as i64,
    };
    (value, allocation)
}

// ---- in-process split ------------------------------------------------------------

/// `stagecraft plan` as measured: the file is `pipeline.stagecraft`, found by
/// default, and its only workflow is `deploy`.
const PLAN: [&str; 5] = ["plan", "--env", "bench", "--format", "json"];
const STAGES: [&str; 6] = ["parse", "check", "graph", "plan", "json", "drop"];

fn request() -> PlanRequest {
    PlanRequest {
        env: "bench".to_owned(),
        workflow: "deploy".to_owned(),
        version: "unknown".to_owned(),
        release: "dry-run".to_owned(),
        ..PlanRequest::default()
    }
}

/// Runs parse → check → graph → plan → JSON → drop once; returns each
/// stage's time, and the instance count.
fn front_end_once(source: &str) -> ([Duration; 6], usize) {
    let t = Instant::now();
    let parsed = stagecraft::syntax::parse(source);
    assert!(!parsed.has_errors(), "generated file parses");
    let t_parse = t.elapsed();
    let t = Instant::now();
    let checked = stagecraft::check::check(parsed.ast);
    let t_check = t.elapsed();
    let t = Instant::now();
    let (graph, cycles) = PhaseGraph::build(&checked.pipeline);
    let t_graph = t.elapsed();
    let t = Instant::now();
    let planned = plan(&checked.pipeline, &graph, &request()).expect("generated file plans");
    let t_plan = t.elapsed();
    let t = Instant::now();
    let text = json_out(&planned);
    let t_json = t.elapsed();
    let count = planned.instances.len();
    assert!(cycles.is_empty());
    let t = Instant::now();
    drop((text, planned, graph, checked, parsed.diagnostics));
    let t_drop = t.elapsed();
    ([t_parse, t_check, t_graph, t_plan, t_json, t_drop], count)
}

/// `plan --format json` as the CLI writes it: pretty JSON streamed through a
/// `BufWriter` (here into a sink); returns the byte count.
fn json_out(planned: &stagecraft::engine::Plan) -> u64 {
    let mut out = std::io::BufWriter::new(Counter(0));
    serde_json::to_writer_pretty(&mut out, planned).expect("plan serializes");
    out.into_inner().map_or(0, |counter| counter.0)
}

/// A writer that only counts bytes.
struct Counter(u64);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The same sequence with the counting allocator on.
fn front_end_counted(source: &str) -> ([Allocation; 6], i64) {
    LIVE.store(0, Relaxed);
    let (parsed, a_parse) = counted(|| stagecraft::syntax::parse(source));
    let (checked, a_check) = counted(|| stagecraft::check::check(parsed.ast));
    let ((graph, _), a_graph) = counted(|| PhaseGraph::build(&checked.pipeline));
    let (planned, a_plan) = counted(|| plan(&checked.pipeline, &graph, &request()).expect("plans"));
    let (text, a_json) = counted(|| json_out(&planned));
    let peak_total = [a_parse, a_check, a_graph, a_plan, a_json]
        .iter()
        .scan(0i64, |base, a| {
            let peak = *base + a.peak;
            *base += a.retained;
            Some(peak)
        })
        .max()
        .unwrap_or(0);
    let ((), a_drop) = counted(|| drop((text, planned, graph, checked, parsed.diagnostics)));
    ([a_parse, a_check, a_graph, a_plan, a_json, a_drop], peak_total)
}

// ---- main ------------------------------------------------------------------------

struct Options {
    sizes: Vec<usize>,
    runs: usize,
}

fn options(args: &[String]) -> Options {
    let quick = args.iter().any(|a| a == "--quick");
    let mut options = Options {
        sizes: if quick {
            vec![1_000, 10_000]
        } else {
            vec![1_000, 10_000, 50_000]
        },
        runs: if quick { 3 } else { 7 },
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

/// Results for one size.
struct Row {
    tasks: usize,
    edges: usize,
    bytes: usize,
    commands: Vec<(&'static str, Summary)>,
    stages: [f64; 6],
    allocations: [Allocation; 6],
    heap_peak: i64,
}

impl Row {
    fn command(&self, name: &str) -> Option<Summary> {
        self.commands.iter().find(|(n, _)| *n == name).map(|&(_, s)| s)
    }
}

/// The external programs the bench runs.
struct Programs {
    stagecraft: PathBuf,
    ninja: PathBuf,
    make: PathBuf,
    true_bin: PathBuf,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("__measure") {
        measure_helper(&args[1..]);
    }
    let options = options(&args);
    let programs = Programs {
        stagecraft: PathBuf::from(env!("CARGO_BIN_EXE_stagecraft")),
        ninja: which("ninja").expect("ninja is needed (apt install ninja-build)"),
        make: which("make").expect("GNU make is needed"),
        true_bin: which("true").expect("true(1)"),
    };
    let target_dir = programs
        .stagecraft
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/stagecraft")
        .to_path_buf();
    println!(
        "stagecraft front-end bench: {} run(s) after 1 warm-up, sizes {:?}\nbinary {}",
        options.runs,
        options.sizes,
        programs.stagecraft.display(),
    );
    let floor_command = [Measured::new("/bin/true", &programs.true_bin, Vec::new())];
    let floor = measure(&target_dir, &floor_command, options.runs)[0];
    let rows: Vec<Row> = options
        .sizes
        .iter()
        .map(|&size| one_size(size, &programs, &target_dir, options.runs))
        .collect();
    let report = render(&rows, floor);
    println!("\n{report}");
    let json = results_json(&rows, floor, &options, &programs.stagecraft);
    let path = target_dir.join("bench-frontend.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).expect("json") + "\n").expect("write results");
    println!("written to {}", path.display());
}

/// Writes the graph of `size` tasks for every tool, checks that they agree,
/// and measures.
fn one_size(size: usize, programs: &Programs, target_dir: &Path, runs: usize) -> Row {
    let Programs {
        stagecraft,
        ninja,
        make,
        true_bin,
    } = programs;
    let dir = target_dir.join("bench-frontend").join(format!("n{size}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create bench dir");
    let deps = layered::dependencies(size);
    let source = layered::pipeline(&deps);
    std::fs::write(dir.join("pipeline.stagecraft"), &source).expect("write pipeline");
    std::fs::write(dir.join("build.ninja"), layered::ninja(&deps)).expect("write build.ninja");
    std::fs::write(dir.join("Makefile"), layered::makefile(&deps)).expect("write Makefile");
    let edges = verify_with(stagecraft, &dir, &layered::tasks(&deps), &["check"], &PLAN);
    assert_eq!(edges, deps.iter().map(Vec::len).sum::<usize>());
    assert_eq!(
        count_output(&dir, ninja, &["-n"], |l| l.starts_with('[')),
        size,
        "ninja -n"
    );
    assert_eq!(count_output(&dir, make, &["-n"], |l| l == "true;"), size, "make -n");
    let _ = std::fs::remove_file(dir.join(".ninja_log"));
    println!(
        "\n{size} tasks: {edges} edges ({:.2}/task), {} KiB pipeline file; check and plan agree with the model",
        approx(edges as u64) / approx(size as u64),
        source.len() / 1024
    );
    let measured = vec![
        Measured::new("stagecraft plan json", stagecraft, PLAN.to_vec()),
        Measured::new("stagecraft check", stagecraft, vec!["check"]),
        Measured::new("ninja -n", ninja, vec!["-n"]),
        Measured::new("make -n", make, vec!["-n"]),
        Measured::new("/bin/true", true_bin, Vec::new()),
    ];
    let summaries = measure(&dir, &measured, runs);
    let mut commands: Vec<(&'static str, Summary)> = Vec::new();
    for (command, summary) in measured.iter().zip(summaries) {
        println!(
            "  {:<22} {:>9.2} ms (min {:>8.2}, cpu {:>8.2})  {:>7.2} MiB",
            command.name, summary.wall_ms, summary.min_ms, summary.cpu_ms, summary.rss_mb
        );
        commands.push((command.name, summary));
    }
    let _ = std::fs::remove_file(dir.join(".ninja_log"));
    let (stages, allocations, heap_peak) = in_process(&source, size, runs);
    Row {
        tasks: size,
        edges,
        bytes: source.len(),
        commands,
        stages,
        allocations,
        heap_peak,
    }
}

/// The library's stages, timed and then counted.
fn in_process(source: &str, size: usize, runs: usize) -> ([f64; 6], [Allocation; 6], i64) {
    let mut samples: [Vec<Duration>; 6] = Default::default();
    let _ = front_end_once(source);
    for _ in 0..runs {
        let (times, count) = front_end_once(source);
        assert_eq!(count, size);
        for (stage, time) in samples.iter_mut().zip(times) {
            stage.push(time);
        }
    }
    let stages = samples.map(|s| ms(median(&s)));
    let (allocations, heap_peak) = front_end_counted(source);
    println!(
        "  in-process (ms)        {}",
        STAGES
            .iter()
            .zip(stages)
            .map(|(name, t)| format!("{name} {t:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    (stages, allocations, heap_peak)
}

fn render(rows: &[Row], floor: Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "External commands: median wall ms / peak RSS MiB (spawn floor, /bin/true: {:.2} ms / {:.2} MiB)",
        floor.wall_ms, floor.rss_mb
    );
    let header = format!(
        "{:>7} | {:>17} | {:>17} | {:>17} | {:>17} | {:>15} | {:>15}",
        "tasks", "sc plan json", "sc check", "ninja -n", "make -n", "plan/ninja t,m", "plan/make t,m"
    );
    let _ = writeln!(out, "{header}\n{}", "-".repeat(header.len()));
    for row in rows {
        let cell = |name: &str| {
            row.command(name).map_or_else(
                || format!("{:>17}", "-"),
                |s| format!("{:>8.1} / {:>6.1}", s.wall_ms, s.rss_mb),
            )
        };
        let plan = row.command("stagecraft plan json").unwrap_or_default();
        let ratio = |name: &str| {
            let other = row.command(name).unwrap_or_default();
            format!(
                "{:>6.2}x,{:>6.2}x",
                plan.wall_ms / other.wall_ms,
                plan.rss_mb / other.rss_mb
            )
        };
        let _ = writeln!(
            out,
            "{:>7} | {} | {} | {} | {} | {:>15} | {:>15}",
            row.tasks,
            cell("stagecraft plan json"),
            cell("stagecraft check"),
            cell("ninja -n"),
            cell("make -n"),
            ratio("ninja -n"),
            ratio("make -n")
        );
    }
    out.push_str(&render_in_process(rows));
    out
}

/// The in-process split and the heap by stage.
fn render_in_process(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nIn-process split (library API, median ms; heap = counting allocator, one extra run)"
    );
    let header = format!(
        "{:>7} | {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} | {:>8} | {:>10} | {:>9}",
        "tasks", "parse", "check", "graph", "plan", "json", "drop", "total", "allocs", "heap peak"
    );
    let _ = writeln!(out, "{header}\n{}", "-".repeat(header.len()));
    for row in rows {
        let total: f64 = row.stages.iter().sum();
        let allocs: u64 = row.allocations.iter().map(|a| a.allocs).sum();
        let _ = writeln!(
            out,
            "{:>7} | {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} | {:>8.2} | {:>10} | {:>5.1} MiB",
            row.tasks,
            row.stages[0],
            row.stages[1],
            row.stages[2],
            row.stages[3],
            row.stages[4],
            row.stages[5],
            total,
            allocs,
            mib(row.heap_peak)
        );
    }
    let _ = writeln!(
        out,
        "\nHeap by stage: allocations, MiB allocated, MiB retained after the stage (peak during it)"
    );
    for row in rows {
        let _ = write!(out, "{:>7} |", row.tasks);
        for (name, a) in STAGES.iter().zip(row.allocations) {
            if *name == "drop" {
                continue;
            }
            let _ = write!(
                out,
                " {name} {}k {:.1} {:.1} ({:.1}) |",
                a.allocs / 1000,
                approx(a.allocated) / (1024.0 * 1024.0),
                mib(a.retained),
                mib(a.peak)
            );
        }
        out.push('\n');
    }
    out
}

fn results_json(rows: &[Row], floor: Summary, options: &Options, stagecraft: &Path) -> Value {
    let sizes: Vec<Value> = rows
        .iter()
        .map(|row| {
            let commands: serde_json::Map<String, Value> = row
                .commands
                .iter()
                .map(|&(name, s)| (name.to_owned(), summary_json(s)))
                .collect();
            let plan = row.command("stagecraft plan json").unwrap_or_default();
            let ratio = |name: &str| {
                row.command(name).map(|other| {
                    json!({
                        "time": round(plan.wall_ms / other.wall_ms),
                        "rss": round(plan.rss_mb / other.rss_mb),
                    })
                })
            };
            let stages: serde_json::Map<String, Value> = STAGES
                .iter()
                .zip(row.stages)
                .zip(row.allocations)
                .map(|((name, t), a)| {
                    (
                        (*name).to_owned(),
                        json!({
                            "ms_median": round(t),
                            "allocs": a.allocs,
                            "bytes_allocated": a.allocated,
                            "bytes_retained": a.retained,
                            "bytes_peak": a.peak,
                        }),
                    )
                })
                .collect();
            json!({
                "tasks": row.tasks,
                "edges": row.edges,
                "file_bytes": row.bytes,
                "commands": commands,
                "ratios": {
                    "stagecraft_plan_json/ninja_n": ratio("ninja -n"),
                    "stagecraft_plan_json/make_n": ratio("make -n"),
                },
                "in_process": {
                    "stages": stages,
                    "total_ms": round(row.stages.iter().sum()),
                    "heap_peak_bytes": row.heap_peak,
                },
            })
        })
        .collect();
    json!({
        "runs": options.runs,
        "warmups": 1,
        "binary": stagecraft.display().to_string(),
        "spawn_floor": summary_json(floor),
        "sizes": sizes,
    })
}
