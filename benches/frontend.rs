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

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

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

// ---- the generator -----------------------------------------------------------

/// Knuth's MMIX LCG: deterministic, no `rand` needed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        u32::try_from(self.0 >> 33).unwrap_or(0)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        usize::try_from((u64::from(self.next()) * n as u64) >> 31).unwrap_or(0)
    }

    fn percent(&mut self, p: u32) -> bool {
        self.next() % 100 < p
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Services: name, path, port, the service it comes `after`.
const SERVICES: [(&str, &str, &str, Option<usize>); 4] = [
    ("api", "services/api", "8080", None),
    ("worker", "services/worker", "8081", Some(0)),
    ("web", "services/web", "3000", Some(0)),
    ("cron", "services/cron", "9090", None),
];

const SERVICE_KINDS: [&str; 10] = [
    "lint", "test", "build", "scan", "package", "push", "deploy", "smoke", "canary", "verify",
];
const GLOBAL_KINDS: [&str; 8] = [
    "migrate", "approve", "notify", "gate", "seed", "backup", "announce", "report",
];

const SERVICE_COMMANDS: [&str; 4] = [
    "  run \"docker build -t {{image}}-{{service}}:{{version}} {{service.path}}\"\n",
    "  run \"echo {{service}} {{version}} {{registry}}\"\n",
    "  run \"./bin/test --port {{service.port}} --log-level {{log_level}} {{service.path}}\"\n",
    "  run \"\"\"\n    set -e\n    ./bin/rollout {{service}} {{version}} --replicas {{replicas}} --context {{kube_context}}\n  \"\"\"\n",
];
const GLOBAL_COMMANDS: [&str; 3] = [
    "  run \"echo {{phase}} {{env}} {{version}} {{registry}}\"\n",
    "  run \"./bin/migrate --namespace {{namespace}} --release {{release}}\"\n",
    "  run \"curl -fsS -X POST \\\"$CHAT_WEBHOOK_URL\\\" -d '{{pipeline}} {{version}} to {{env}}'\"\n",
];
const CONDITIONS: [&str; 4] = [
    "push",
    "env == \"prod\"",
    "env != \"dev\" && log_level != \"debug\"",
    "!(region == \"us-east-1\") || replicas == \"3\"",
];
const TIMEOUTS: [&str; 5] = ["10m", "90s", "1h", "45s", "1m30s"];

/// One phase instance of the model graph.
struct Task {
    /// As stagecraft names it: `build_12[api]` or `migrate_13`.
    id: String,
    /// A file / recipe name: `build_12.api` or `migrate_13`.
    file: String,
    /// Indices of the instances it waits for (all earlier), ascending.
    deps: Vec<usize>,
}

/// A generated pipeline and its model instance graph.
struct Generated {
    source: String,
    tasks: Vec<Task>,
    phases: usize,
}

fn generate(target: usize, seed: u64) -> Generated {
    let mut rng = Lcg(seed);
    let mut src = String::with_capacity(target * 120);
    src.push_str(
        "# Generated by benches/frontend.rs: a large but ordinary release pipeline.\n\
         pipeline shop\n\n\
         var registry     = \"localhost:5000\"\n\
         var image        = \"{{registry}}/shop\"   # follows the env's registry\n\
         var namespace    = \"shop-{{env}}\"\n\
         var log_level    = \"info\"\n\
         var region       = \"eu-west-1\"\n\
         var kube_context = \"kind-shop\"\n\n\
         env dev {\n  replicas  = \"1\"\n  log_level = \"debug\"\n}\n\
         env staging extends dev {\n  registry     = \"registry.internal:5000\"\n  kube_context = \"staging-eu1\"\n  replicas     = \"2\"\n  log_level    = \"info\"\n}\n\
         env prod extends staging {\n  kube_context = \"prod-eu1\"\n  replicas     = \"3\"\n}\n\n",
    );
    for (name, path, port, after) in SERVICES {
        let _ = write!(src, "service {name} {{\n  path = \"{path}\"\n  port = \"{port}\"\n");
        if let Some(after) = after {
            let _ = writeln!(src, "  after {}", SERVICES[after].0);
        }
        src.push_str("}\n");
    }

    // Phase i: (name, per_service, first instance).
    let mut phases: Vec<(String, bool, usize)> = Vec::new();
    let mut tasks: Vec<Task> = Vec::with_capacity(target);
    while tasks.len() < target {
        let index = phases.len();
        let per_service = target - tasks.len() >= SERVICES.len() && rng.percent(60);
        let name = if per_service {
            format!("{}_{index}", rng.pick(&SERVICE_KINDS))
        } else {
            format!("{}_{index}", rng.pick(&GLOBAL_KINDS))
        };
        // About two `after` edges per instance: per-service phases take
        // fewer phase-level dependencies (service `after` adds half an edge
        // per instance), global ones fan in from every service's instance.
        let roll = rng.below(100);
        let wanted = if index < 3 || rng.percent(2) {
            0
        } else if per_service {
            [1, 2, 3][usize::from(roll >= 65) + usize::from(roll >= 95)]
        } else {
            [1, 2, 3][usize::from(roll >= 70) + usize::from(roll >= 95)]
        };
        let mut deps: Vec<(usize, Option<usize>)> = Vec::new();
        for _ in 0..wanted {
            for _attempt in 0..8 {
                let dep = if rng.percent(75) {
                    index - 1 - rng.below(index.min(24))
                } else {
                    rng.below(index)
                };
                if deps.iter().any(|&(d, _)| d == dep) {
                    continue;
                }
                let service = (phases[dep].1 && rng.percent(10)).then(|| rng.below(SERVICES.len()));
                deps.push((dep, service));
                break;
            }
        }

        if index.is_multiple_of(25) {
            let _ = writeln!(src, "\n# ---- stage {} ----", index / 25);
        }
        let _ = writeln!(src, "phase {name} {{");
        if per_service {
            src.push_str("  for each service\n");
        }
        if !deps.is_empty() {
            src.push_str("  after ");
            for (n, &(dep, service)) in deps.iter().enumerate() {
                if n > 0 {
                    src.push_str(", ");
                }
                src.push_str(&phases[dep].0);
                if let Some(service) = service {
                    let _ = write!(src, "[{}]", SERVICES[service].0);
                }
            }
            src.push('\n');
        }
        if rng.percent(15) {
            if per_service && rng.percent(25) {
                src.push_str("  when service != \"cron\"\n");
            } else {
                let _ = writeln!(src, "  when {}", rng.pick(&CONDITIONS));
            }
        }
        if rng.percent(90) {
            src.push_str(if per_service {
                rng.pick(&SERVICE_COMMANDS)
            } else {
                rng.pick(&GLOBAL_COMMANDS)
            });
        }
        if rng.percent(30) {
            let _ = writeln!(src, "  timeout {}", rng.pick(&TIMEOUTS));
        }
        if rng.percent(15) {
            src.push_str(if rng.percent(50) {
                "  retry 2 backoff 5s\n"
            } else {
                "  retry 1\n"
            });
        }
        src.push_str("}\n");

        // The model: what stagecraft must make of it (PRODUCT.md §2).
        let first = tasks.len();
        let services: Vec<Option<usize>> = if per_service {
            (0..SERVICES.len()).map(Some).collect()
        } else {
            vec![None]
        };
        for &service in &services {
            let mut after = Vec::new();
            for &(dep, dep_service) in &deps {
                let (_, dep_per_service, dep_first) = phases[dep];
                match (dep_service, dep_per_service, service) {
                    (Some(s), _, _) | (None, true, Some(s)) => after.push(dep_first + s),
                    (None, true, None) => after.extend(dep_first..dep_first + SERVICES.len()),
                    (None, false, _) => after.push(dep_first),
                }
            }
            if let Some(s) = service
                && let Some(before) = SERVICES[s].3
            {
                after.push(first + before);
            }
            after.sort_unstable();
            after.dedup();
            let (id, file) = match service {
                Some(s) => (
                    format!("{name}[{}]", SERVICES[s].0),
                    format!("{name}.{}", SERVICES[s].0),
                ),
                None => (name.clone(), name.clone()),
            };
            tasks.push(Task { id, file, deps: after });
        }
        phases.push((name, per_service, first));
    }

    src.push_str("\nworkflow deploy {\n");
    for chunk in phases.chunks(8) {
        src.push_str("  ");
        let names: Vec<&str> = chunk.iter().map(|p| p.0.as_str()).collect();
        src.push_str(&names.join(" "));
        src.push('\n');
    }
    src.push_str("}\n");
    Generated {
        source: src,
        tasks,
        phases: phases.len(),
    }
}

/// Instances no other instance waits for: what `all` builds.
fn roots(tasks: &[Task]) -> Vec<usize> {
    let mut needed = vec![false; tasks.len()];
    for task in tasks {
        for &dep in &task.deps {
            needed[dep] = true;
        }
    }
    (0..tasks.len()).filter(|&i| !needed[i]).collect()
}

fn ninja_file(tasks: &[Task]) -> String {
    let mut out = String::from("# Generated by benches/frontend.rs\nrule r\n  command = true\n\n");
    for task in tasks {
        let _ = write!(out, "build out/{}: r", task.file);
        for &dep in &task.deps {
            let _ = write!(out, " out/{}", tasks[dep].file);
        }
        out.push('\n');
    }
    out
}

fn make_file(tasks: &[Task]) -> String {
    let mut out = String::from("# Generated by benches/frontend.rs\n.PHONY: all\nall:");
    for root in roots(tasks) {
        let _ = write!(out, " out/{}", tasks[root].file);
    }
    out.push_str("\n\n");
    for task in tasks {
        let _ = write!(out, "out/{}:", task.file);
        for &dep in &task.deps {
            let _ = write!(out, " out/{}", tasks[dep].file);
        }
        out.push_str("\n\ttrue\n");
    }
    out
}

fn just_file(tasks: &[Task]) -> String {
    let recipe = |task: &Task| task.file.replace('.', "-");
    let mut out = String::from("# Generated by benches/frontend.rs\nall:");
    for root in roots(tasks) {
        let _ = write!(out, " {}", recipe(&tasks[root]));
    }
    out.push_str("\n\n");
    for task in tasks {
        let _ = write!(out, "{}:", recipe(task));
        for &dep in &task.deps {
            let _ = write!(out, " {}", recipe(&tasks[dep]));
        }
        out.push_str("\n    true\n\n");
    }
    out
}

// ---- measuring external commands -------------------------------------------

/// One measured run of a command.
#[derive(Clone, Copy, Debug)]
struct Run {
    wall: Duration,
    cpu: Duration,
    max_rss_kb: u64,
}

/// The helper: `__measure WARMUPS RUNS -- PROGRAM ARGS... [-- PROGRAM
/// ARGS...]...`. Runs the commands round-robin (so load from elsewhere on
/// the machine hits them alike), each by `fork` and `execv` with stdin,
/// stdout and stderr on `/dev/null`, and prints `command wall_ns cpu_ns
/// maxrss_kb status` per measured run.
fn measure_helper(args: &[String]) -> ! {
    let warmups: usize = args[0].parse().expect("warm-up count");
    let runs: usize = args[1].parse().expect("run count");
    let commands: Vec<Vec<CString>> = args[3..]
        .split(|a| a == "--")
        .map(|command| {
            command
                .iter()
                .map(|a| CString::new(a.as_str()).expect("no NUL in arguments"))
                .collect()
        })
        .collect();
    let pointers: Vec<Vec<*const libc::c_char>> = commands
        .iter()
        .map(|argv| argv.iter().map(|a| a.as_ptr()).chain([std::ptr::null()]).collect())
        .collect();
    let devnull = CString::new("/dev/null").expect("path");
    // SAFETY: a valid NUL-terminated path.
    let null_fd = unsafe { libc::open(devnull.as_ptr(), libc::O_RDWR) };
    assert!(null_fd >= 0, "cannot open /dev/null");
    let mut lines = String::new();
    for round in 0..warmups + runs {
        for (command, argv) in pointers.iter().enumerate() {
            let start = Instant::now();
            // SAFETY: this helper is single-threaded; the child only calls
            // async-signal-safe functions (dup2, execv, _exit) before exec.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: see above; the pointers outlive the call.
                unsafe {
                    libc::dup2(null_fd, 0);
                    libc::dup2(null_fd, 1);
                    libc::dup2(null_fd, 2);
                    libc::execv(argv[0], argv.as_ptr());
                    libc::_exit(127);
                }
            }
            assert!(pid > 0, "fork failed");
            let mut status = 0;
            // SAFETY: `rusage` is plain old data.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: valid pointers to locals.
            let waited = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) };
            let wall = start.elapsed();
            assert_eq!(waited, pid, "wait4 failed");
            let cpu = timeval(usage.ru_utime) + timeval(usage.ru_stime);
            if round >= warmups {
                let _ = writeln!(
                    lines,
                    "{command} {} {} {} {status}",
                    wall.as_nanos(),
                    cpu.as_nanos(),
                    usage.ru_maxrss
                );
            }
        }
    }
    print!("{lines}");
    std::process::exit(0)
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(tv.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(tv.tv_usec).unwrap_or(0))
}

/// A command to measure.
struct Measured<'a> {
    name: &'static str,
    program: &'a Path,
    args: Vec<&'a str>,
}

/// Runs the commands in `dir` through the helper, interleaved, and returns
/// each one's summary; panics (with the command's stderr) if one fails.
fn measure(dir: &Path, commands: &[Measured<'_>], runs: usize) -> Vec<Summary> {
    let mut helper = Command::new(std::env::current_exe().expect("own path"));
    helper.arg("__measure").arg("1").arg(runs.to_string());
    for command in commands {
        helper.arg("--").arg(command.program).args(&command.args);
    }
    let output = helper
        .current_dir(dir)
        .stderr(Stdio::inherit())
        .output()
        .expect("start the measuring helper");
    assert!(output.status.success(), "measuring helper failed");
    let text = String::from_utf8(output.stdout).expect("helper output");
    let mut results: Vec<Vec<Run>> = commands.iter().map(|_| Vec::new()).collect();
    for line in text.lines() {
        let fields: Vec<u64> = line.split(' ').map(|f| f.parse().expect("number")).collect();
        let index = usize::try_from(fields[0]).expect("index");
        let command = &commands[index];
        if fields[4] != 0 {
            let again = Command::new(command.program)
                .args(&command.args)
                .current_dir(dir)
                .output()
                .expect("re-run failing command");
            panic!(
                "`{} {}` failed in {} (wait status {}): {}",
                command.program.display(),
                command.args.join(" "),
                dir.display(),
                fields[4],
                String::from_utf8_lossy(&again.stderr)
            );
        }
        results[index].push(Run {
            wall: Duration::from_nanos(fields[1]),
            cpu: Duration::from_nanos(fields[2]),
            max_rss_kb: fields[3],
        });
    }
    results.iter().map(|runs| summarize(runs)).collect()
}
/// Median wall time, median CPU time, peak RSS (max over runs).
#[derive(Clone, Copy, Debug, Default)]
struct Summary {
    wall_ms: f64,
    min_ms: f64,
    cpu_ms: f64,
    rss_mb: f64,
}

fn summarize(runs: &[Run]) -> Summary {
    let walls: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
    let cpus: Vec<Duration> = runs.iter().map(|r| r.cpu).collect();
    Summary {
        wall_ms: ms(median(&walls)),
        min_ms: ms(walls.iter().copied().min().unwrap_or_default()),
        cpu_ms: ms(median(&cpus)),
        rss_mb: approx(runs.iter().map(|r| r.max_rss_kb).max().unwrap_or(0)) / 1024.0,
    }
}

fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    match sorted.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn mib(bytes: i64) -> f64 {
    let magnitude = approx(bytes.unsigned_abs()) / (1024.0 * 1024.0);
    if bytes < 0 { -magnitude } else { magnitude }
}

/// A count or size as a float: they stay far below 2^52, so nothing is lost.
#[allow(clippy::cast_precision_loss)]
fn approx(n: u64) -> f64 {
    n as f64
}

fn summary_json(summary: Summary) -> Value {
    json!({
        "wall_ms_median": round(summary.wall_ms),
        "wall_ms_min": round(summary.min_ms),
        "cpu_ms_median": round(summary.cpu_ms),
        "peak_rss_mib": round(summary.rss_mb),
    })
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// The first `name` on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

// ---- sanity checks -------------------------------------------------------------

/// `stagecraft check` exits 0 and `stagecraft plan --format json` has
/// exactly the model's instances and dependencies. Returns the number of
/// `after` edges in the plan.
fn verify(stagecraft: &Path, dir: &Path, tasks: &[Task]) -> usize {
    let check = Command::new(stagecraft)
        .args(["check", "-f", "gen.stagecraft"])
        .current_dir(dir)
        .output()
        .expect("run stagecraft check");
    assert!(
        check.status.success(),
        "stagecraft check failed on {}: {}",
        dir.display(),
        String::from_utf8_lossy(&check.stderr)
    );
    let output = Command::new(stagecraft)
        .args(PLAN_JSON)
        .current_dir(dir)
        .output()
        .expect("run stagecraft plan");
    assert!(
        output.status.success(),
        "stagecraft plan failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let plan: Value = serde_json::from_slice(&output.stdout).expect("plan JSON");
    let phases = plan["phases"].as_array().expect("plan.phases");
    assert_eq!(phases.len(), tasks.len(), "planned instance count");
    let mut planned: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut edges = 0;
    for phase in phases {
        let mut after: Vec<&str> = phase["after"]
            .as_array()
            .expect("after")
            .iter()
            .map(|a| a.as_str().expect("after id"))
            .collect();
        after.sort_unstable();
        edges += after.len();
        planned.insert(phase["id"].as_str().expect("id"), after);
    }
    for task in tasks {
        let mut expected: Vec<&str> = task.deps.iter().map(|&d| tasks[d].id.as_str()).collect();
        expected.sort_unstable();
        assert_eq!(
            planned.get(task.id.as_str()),
            Some(&expected),
            "instance `{}`: stagecraft's plan and the generator's model disagree",
            task.id
        );
    }
    edges
}

/// Lines of a dry run that stand for one task.
fn count_dry_run(dir: &Path, program: &Path, args: &[&str], is_task: impl Fn(&str) -> bool) -> usize {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run dry run");
    assert!(
        output.status.success(),
        "`{} {}` failed: {}",
        program.display(),
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    stdout.lines().chain(stderr.lines()).filter(|l| is_task(l)).count()
}

// ---- in-process split ------------------------------------------------------------

const PLAN_JSON: [&str; 9] = [
    "plan",
    "-f",
    "gen.stagecraft",
    "--env",
    "prod",
    "--workflow",
    "deploy",
    "--format",
    "json",
];
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
    let parsed = stagecraft::syntax::parse(source).expect("generated file parses");
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
    let (parsed, a_parse) = counted(|| stagecraft::syntax::parse(source).expect("parses"));
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

    let floor_command = [Measured {
        name: "/bin/true",
        program: &true_bin,
        args: Vec::new(),
    }];
    let floor = measure(&target_dir, &floor_command, options.runs)[0];
    let mut rows = Vec::new();
    for &size in &options.sizes {
        let dir = target_dir.join("bench-frontend").join(format!("n{size}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create bench dir");
        let generated = generate(size, 0x5eed_0000 + size as u64);
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
        let ninja_tasks = count_dry_run(&dir, &ninja, &["-n"], |l| l.starts_with('['));
        assert_eq!(ninja_tasks, size, "ninja -n task count");
        let make_tasks = count_dry_run(&dir, &make, &["-n", "-f", "Makefile"], |l| l == "true");
        assert_eq!(make_tasks, size, "make -n task count");
        let _ = std::fs::remove_file(dir.join(".ninja_log"));
        println!(
            "\n{size} tasks: {} phases, {edges} edges ({:.2}/task), {} KiB pipeline file; check and plan agree with the model",
            generated.phases,
            approx(edges as u64) / approx(size as u64),
            generated.source.len() / 1024
        );

        let mut measured = vec![
            Measured {
                name: "stagecraft plan json",
                program: &stagecraft,
                args: PLAN_JSON.to_vec(),
            },
            Measured {
                name: "stagecraft plan text",
                program: &stagecraft,
                args: PLAN_TEXT.to_vec(),
            },
            Measured {
                name: "stagecraft check",
                program: &stagecraft,
                args: vec!["check", "-f", "gen.stagecraft"],
            },
            Measured {
                name: "ninja -n",
                program: &ninja,
                args: vec!["-n"],
            },
            Measured {
                name: "make -n",
                program: &make,
                args: vec!["-n", "-f", "Makefile"],
            },
            Measured {
                name: "/bin/true",
                program: &true_bin,
                args: Vec::new(),
            },
        ];
        if let Some(just) = &just {
            measured.push(Measured {
                name: "just --dry-run",
                program: just,
                args: vec!["--dry-run", "--justfile", "justfile"],
            });
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
