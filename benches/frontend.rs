//! Front-end benchmark: `stagecraft check` / `plan` against `ninja -n`,
//! `make -n` (and `just --dry-run` when installed) on the same instance
//! graph, plus the in-process split of parse / check / graph / plan.
//!
//! ```text
//! cargo bench --bench frontend              # 1k, 10k and 50k tasks, 7 runs each
//! cargo bench --bench frontend -- --quick   # 1k and 10k tasks, 3 runs each
//! cargo bench --bench frontend -- --sizes 2000,20000 --runs 5
//! ```
//!
//! Everything runs in one process, in this order for each size:
//!
//! 1. A deterministic generator (a fixed-seed LCG) writes a realistic
//!    pipeline of exactly N phase instances (`gen.stagecraft`) and the same
//!    instance graph as `build.ninja`, a `Makefile` and a `justfile`, under
//!    `target/bench-frontend/n<N>/`. The generator keeps its own model of
//!    the instance graph; `stagecraft check` must exit 0 and the instances
//!    and `after` lists of `stagecraft plan --format json` must equal the
//!    model, so all tools really see the same graph.
//! 2. External commands are timed (median wall time of several runs after
//!    one warm-up) and their peak RSS taken from `wait4`'s `ru_maxrss`.
//!    They are started by a helper — this binary re-executed with
//!    `__measure` — that `fork`s and `exec`s them itself: Linux charges a
//!    child the high-water RSS of the address space it `exec`s from, so
//!    spawning from this (large) process directly would inflate every
//!    number. `/bin/true` through the same helper shows the floor.
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
    Measured, PLAN_JSON, Style, Summary, approx, count_output, generate, just_file, make_file, measure, measure_helper,
    median, mib, ms, ninja_file, round, summary_json, verify, which,
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

const PLAN_TEXT: [&str; 9] = [
    "plan",
    "-f",
    "gen.stagecraft",
    "--env",
    "prod",
    "--workflow",
    "deploy",
    "--format",
    "text",
];
const STAGES: [&str; 6] = ["parse", "check", "graph", "plan", "json", "drop"];

fn request() -> PlanRequest {
    PlanRequest {
        env: "prod".to_owned(),
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
    let count = planned.phases.len();
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
    phases: usize,
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
    let ninja = which("ninja").expect("ninja is needed (apt install ninja-build)");
    let make = which("make").expect("GNU make is needed");
    let just = which("just");
    let true_bin = which("true").expect("true(1)");
    println!(
        "stagecraft front-end bench: {} run(s) after 1 warm-up, sizes {:?}\nbinary {}\n{}",
        options.runs,
        options.sizes,
        stagecraft.display(),
        if just.is_none() {
            "just: not installed, skipped"
        } else {
            ""
        }
    );

    let floor_command = [Measured::new("/bin/true", &true_bin, Vec::new())];
    let floor = measure(&target_dir, &floor_command, options.runs)[0];
    let mut rows = Vec::new();
    for &size in &options.sizes {
        let dir = target_dir.join("bench-frontend").join(format!("n{size}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create bench dir");
        let generated = generate(size, 0x5eed_0000 + size as u64, Style::Realistic);
        assert_eq!(generated.tasks.len(), size);
        std::fs::write(dir.join("gen.stagecraft"), &generated.source).expect("write pipeline");
        std::fs::write(dir.join("build.ninja"), ninja_file(&generated.tasks)).expect("write build.ninja");
        std::fs::write(dir.join("Makefile"), make_file(&generated.tasks)).expect("write Makefile");
        if just.is_some() {
            std::fs::write(dir.join("justfile"), just_file(&generated.tasks)).expect("write justfile");
        }

        let edges = verify(&stagecraft, &dir, &generated.tasks);
        let model_edges: usize = generated.tasks.iter().map(|t| t.deps.len()).sum();
        assert_eq!(edges, model_edges);
        let ninja_tasks = count_output(&dir, &ninja, &["-n"], |l| l.starts_with('['));
        assert_eq!(ninja_tasks, size, "ninja -n task count");
        let make_tasks = count_output(&dir, &make, &["-n", "-f", "Makefile"], |l| l == "true");
        assert_eq!(make_tasks, size, "make -n task count");
        let _ = std::fs::remove_file(dir.join(".ninja_log"));
        println!(
            "\n{size} tasks: {} phases, {edges} edges ({:.2}/task), {} KiB pipeline file; check and plan agree with the model",
            generated.phases,
            approx(edges as u64) / approx(size as u64),
            generated.source.len() / 1024
        );

        let mut measured = vec![
            Measured::new("stagecraft plan json", &stagecraft, PLAN_JSON.to_vec()),
            Measured::new("stagecraft plan text", &stagecraft, PLAN_TEXT.to_vec()),
            Measured::new("stagecraft check", &stagecraft, vec!["check", "-f", "gen.stagecraft"]),
            Measured::new("ninja -n", &ninja, vec!["-n"]),
            Measured::new("make -n", &make, vec!["-n", "-f", "Makefile"]),
            Measured::new("/bin/true", &true_bin, Vec::new()),
        ];
        if let Some(just) = &just {
            measured.push(Measured::new(
                "just --dry-run",
                just,
                vec!["--dry-run", "--justfile", "justfile"],
            ));
        }
        let summaries = measure(&dir, &measured, options.runs);
        let mut commands: Vec<(&'static str, Summary)> = Vec::new();
        for (command, summary) in measured.iter().zip(summaries) {
            println!(
                "  {:<22} {:>9.2} ms (min {:>8.2}, cpu {:>8.2})  {:>7.2} MiB",
                command.name, summary.wall_ms, summary.min_ms, summary.cpu_ms, summary.rss_mb
            );
            commands.push((command.name, summary));
        }
        let _ = std::fs::remove_file(dir.join(".ninja_log"));

        let mut samples: [Vec<Duration>; 6] = Default::default();
        let _ = front_end_once(&generated.source);
        for _ in 0..options.runs {
            let (times, count) = front_end_once(&generated.source);
            assert_eq!(count, size);
            for (stage, time) in samples.iter_mut().zip(times) {
                stage.push(time);
            }
        }
        let stages = samples.map(|s| ms(median(&s)));
        let (allocations, heap_peak) = front_end_counted(&generated.source);
        println!(
            "  in-process (ms)        {}",
            STAGES
                .iter()
                .zip(stages)
                .map(|(name, t)| format!("{name} {t:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        rows.push(Row {
            tasks: size,
            phases: generated.phases,
            edges,
            bytes: generated.source.len(),
            commands,
            stages,
            allocations,
            heap_peak,
        });
    }

    let report = render(&rows, floor, just.is_some());
    println!("\n{report}");
    let json = results_json(&rows, floor, &options, &stagecraft);
    let path = target_dir.join("bench-frontend.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).expect("json") + "\n").expect("write results");
    println!("written to {}", path.display());
}

fn render(rows: &[Row], floor: Summary, just: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "External commands: median wall ms / peak RSS MiB (spawn floor, /bin/true: {:.2} ms / {:.2} MiB)",
        floor.wall_ms, floor.rss_mb
    );
    let mut header = format!(
        "{:>7} | {:>17} | {:>17} | {:>17} | {:>17} | {:>17}",
        "tasks", "sc plan json", "sc plan text", "sc check", "ninja -n", "make -n"
    );
    if just {
        let _ = write!(header, " | {:>17}", "just --dry-run");
    }
    let _ = write!(header, " | {:>15} | {:>15}", "plan/ninja t,m", "plan/make t,m");
    let _ = writeln!(out, "{header}\n{}", "-".repeat(header.len()));
    for row in rows {
        let cell = |name: &str| {
            row.command(name).map_or_else(
                || format!("{:>17}", "-"),
                |s| format!("{:>8.1} / {:>6.1}", s.wall_ms, s.rss_mb),
            )
        };
        let mut line = format!(
            "{:>7} | {} | {} | {} | {} | {}",
            row.tasks,
            cell("stagecraft plan json"),
            cell("stagecraft plan text"),
            cell("stagecraft check"),
            cell("ninja -n"),
            cell("make -n")
        );
        if just {
            let _ = write!(line, " | {}", cell("just --dry-run"));
        }
        let plan = row.command("stagecraft plan json").unwrap_or_default();
        let ratio = |name: &str| {
            let other = row.command(name).unwrap_or_default();
            format!(
                "{:>6.2}x,{:>6.2}x",
                plan.wall_ms / other.wall_ms,
                plan.rss_mb / other.rss_mb
            )
        };
        let _ = writeln!(line, " | {:>15} | {:>15}", ratio("ninja -n"), ratio("make -n"));
        out.push_str(&line);
    }
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
                "phases": row.phases,
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
