//! Shared by the bench binaries (`frontend`, `execute`, `state`, `lsp`): the
//! deterministic pipeline generator with its model instance graph and the
//! same graph as `build.ninja` / `Makefile` / `justfile`, the ninja-shaped
//! layered graph (`layered`), the helper that times external
//! commands (wall time, CPU, peak RSS via `wait4`), and the sanity checks
//! that `stagecraft plan` agrees with the model.

#![allow(dead_code)] // each bench uses a part

pub(crate) mod history;
pub(crate) mod layered;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

// ---- the generator -----------------------------------------------------------

/// Knuth's MMIX LCG: deterministic, no `rand` needed.
pub(crate) struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        u32::try_from(self.0 >> 33).unwrap_or(0)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        usize::try_from((u64::from(self.next()) * n as u64) >> 31).unwrap_or(0)
    }

    pub(crate) fn percent(&mut self, p: u32) -> bool {
        self.next() % 100 < p
    }

    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Services: name, path, port, the service it comes `after`.
pub(crate) const SERVICES: [(&str, &str, &str, Option<usize>); 4] = [
    ("api", "services/api", "8080", None),
    ("worker", "services/worker", "8081", Some(0)),
    ("web", "services/web", "3000", Some(0)),
    ("cron", "services/cron", "9090", None),
];

pub(crate) const SERVICE_KINDS: [&str; 10] = [
    "lint", "test", "build", "scan", "package", "push", "deploy", "smoke", "canary", "verify",
];
pub(crate) const GLOBAL_KINDS: [&str; 8] = [
    "migrate", "approve", "notify", "gate", "seed", "backup", "announce", "report",
];

pub(crate) const SERVICE_COMMANDS: [&str; 4] = [
    "  run \"docker build -t {{image}}-{{service}}:{{version}} {{service.path}}\"\n",
    "  run \"echo {{service}} {{version}} {{registry}}\"\n",
    "  run \"./bin/test --port {{service.port}} --log-level {{log_level}} {{service.path}}\"\n",
    "  run \"\"\"\n    set -e\n    ./bin/rollout {{service}} {{version}} --replicas {{replicas}} --context {{kube_context}}\n  \"\"\"\n",
];
pub(crate) const GLOBAL_COMMANDS: [&str; 3] = [
    "  run \"echo {{phase}} {{env}} {{version}} {{registry}}\"\n",
    "  run \"./bin/migrate --namespace {{namespace}} --release {{release}}\"\n",
    "  run \"curl -fsS -X POST \\\"$CHAT_WEBHOOK_URL\\\" -d '{{pipeline}} {{version}} to {{env}}'\"\n",
];
pub(crate) const CONDITIONS: [&str; 4] = [
    "push",
    "env == \"prod\"",
    "env != \"dev\" && log_level != \"debug\"",
    "!(region == \"us-east-1\") || replicas == \"3\"",
];
pub(crate) const TIMEOUTS: [&str; 5] = ["10m", "90s", "1h", "45s", "1m30s"];

/// One phase instance of the model graph.
pub(crate) struct Task {
    /// As stagecraft names it: `build_12[api]` or `migrate_13`.
    pub(crate) id: String,
    /// A file / recipe name: `build_12.api` or `migrate_13`.
    pub(crate) file: String,
    /// Indices of the instances it waits for (all earlier), ascending.
    pub(crate) deps: Vec<usize>,
}

/// A generated pipeline and its model instance graph.
pub(crate) struct Generated {
    pub(crate) source: String,
    pub(crate) tasks: Vec<Task>,
    pub(crate) phases: usize,
}

/// What the generated phases do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    /// Ordinary commands (never run), `when`, `timeout` and `retry`.
    Realistic,
    /// Every instance runs `true`: nothing else, so every one runs.
    True,
}

/// A pipeline of exactly `target` instances with about two `after` edges
/// each; the graph depends only on `target` and `seed`, not on `style`.
pub(crate) fn generate(target: usize, seed: u64, style: Style) -> Generated {
    let mut rng = Lcg(seed);
    let mut src = String::with_capacity(target * 120);
    write_prelude(&mut src);
    let mut phases: Vec<Phase> = Vec::new();
    let mut tasks: Vec<Task> = Vec::with_capacity(target);
    while tasks.len() < target {
        let index = phases.len();
        let per_service = target - tasks.len() >= SERVICES.len() && rng.percent(60);
        let kinds: &[&str] = if per_service { &SERVICE_KINDS } else { &GLOBAL_KINDS };
        let name = format!("{}_{index}", rng.pick(kinds));
        let deps = draw_deps(&mut rng, &phases, per_service);
        write_phase_head(&mut src, &phases, &name, per_service, &deps);
        // The body is drawn the same way in both styles, so the graph (and
        // every later draw) is the same; `Style::True` then writes only
        // `run "true"`.
        let body = Body::draw(&mut rng, per_service);
        match style {
            Style::Realistic => body.write(&mut src),
            Style::True => src.push_str("  run \"true\"\n"),
        }
        src.push_str("}\n");
        let phase = Phase {
            name,
            per_service,
            first: tasks.len(),
        };
        push_instances(&mut tasks, &phases, &phase, &deps);
        phases.push(phase);
    }
    write_workflow(&mut src, &phases);
    Generated {
        source: src,
        tasks,
        phases: phases.len(),
    }
}

/// One generated phase: its name, whether it runs for each service, and
/// the index of its first instance in the model.
struct Phase {
    name: String,
    per_service: bool,
    first: usize,
}

/// A phase's `after` entries: the index of the phase it waits for and, for
/// a per-service one, maybe the one service instance it names.
type Deps = Vec<(usize, Option<usize>)>;

/// The variables, environments and services every generated pipeline
/// starts with.
fn write_prelude(src: &mut String) {
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
}

/// Draws the `after` entries of the next phase (index `phases.len()`), all
/// on earlier phases, mostly recent ones.
fn draw_deps(rng: &mut Lcg, phases: &[Phase], per_service: bool) -> Deps {
    let index = phases.len();
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
    let mut deps: Deps = Vec::new();
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
            let service = (phases[dep].per_service && rng.percent(10)).then(|| rng.below(SERVICES.len()));
            deps.push((dep, service));
            break;
        }
    }
    deps
}

/// Writes the next phase's opening line, `for each service` and `after`,
/// with a stage comment every 25 phases.
fn write_phase_head(src: &mut String, phases: &[Phase], name: &str, per_service: bool, deps: &Deps) {
    let index = phases.len();
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
            src.push_str(&phases[dep].name);
            if let Some(service) = service {
                let _ = write!(src, "[{}]", SERVICES[service].0);
            }
        }
        src.push('\n');
    }
}

/// The drawn body of a phase, written out only in `Style::Realistic`.
struct Body {
    condition: Option<String>,
    command: Option<&'static str>,
    timeout: Option<&'static str>,
    retry: Option<&'static str>,
}

impl Body {
    fn draw(rng: &mut Lcg, per_service: bool) -> Self {
        let condition = rng.percent(15).then(|| {
            if per_service && rng.percent(25) {
                "service != \"cron\"".to_owned()
            } else {
                rng.pick(&CONDITIONS).to_owned()
            }
        });
        let command = rng.percent(90).then(|| {
            if per_service {
                rng.pick(&SERVICE_COMMANDS)
            } else {
                rng.pick(&GLOBAL_COMMANDS)
            }
        });
        let timeout = rng.percent(30).then(|| rng.pick(&TIMEOUTS));
        let retry = rng.percent(15).then(|| {
            if rng.percent(50) {
                "  retry 2 backoff 5s\n"
            } else {
                "  retry 1\n"
            }
        });
        Body {
            condition,
            command,
            timeout,
            retry,
        }
    }

    fn write(&self, src: &mut String) {
        if let Some(condition) = &self.condition {
            let _ = writeln!(src, "  when {condition}");
        }
        if let Some(command) = self.command {
            src.push_str(command);
        }
        if let Some(timeout) = self.timeout {
            let _ = writeln!(src, "  timeout {timeout}");
        }
        if let Some(retry) = self.retry {
            src.push_str(retry);
        }
    }
}

/// The model: the instances `phase` must become under the language's rules
/// for instances and `after` (one per service for a per-service phase,
/// waiting on the named or matching instances of each phase it comes
/// after and on its own service's `after`).
fn push_instances(tasks: &mut Vec<Task>, phases: &[Phase], phase: &Phase, deps: &Deps) {
    let services: Vec<Option<usize>> = if phase.per_service {
        (0..SERVICES.len()).map(Some).collect()
    } else {
        vec![None]
    };
    for &service in &services {
        let mut after = Vec::new();
        for &(dep, dep_service) in deps {
            let Phase {
                per_service: dep_per_service,
                first: dep_first,
                ..
            } = phases[dep];
            match (dep_service, dep_per_service, service) {
                (Some(s), _, _) | (None, true, Some(s)) => after.push(dep_first + s),
                (None, true, None) => after.extend(dep_first..dep_first + SERVICES.len()),
                (None, false, _) => after.push(dep_first),
            }
        }
        if let Some(s) = service
            && let Some(before) = SERVICES[s].3
        {
            after.push(phase.first + before);
        }
        after.sort_unstable();
        after.dedup();
        let (id, file) = match service {
            Some(s) => (
                format!("{}[{}]", phase.name, SERVICES[s].0),
                format!("{}.{}", phase.name, SERVICES[s].0),
            ),
            None => (phase.name.clone(), phase.name.clone()),
        };
        tasks.push(Task { id, file, deps: after });
    }
}

/// The `deploy` workflow: every phase, eight to a line.
fn write_workflow(src: &mut String, phases: &[Phase]) {
    src.push_str("\nworkflow deploy {\n");
    for chunk in phases.chunks(8) {
        src.push_str("  ");
        let names: Vec<&str> = chunk.iter().map(|p| p.name.as_str()).collect();
        src.push_str(&names.join(" "));
        src.push('\n');
    }
    src.push_str("}\n");
}

/// Instances no other instance waits for: what `all` builds.
pub(crate) fn roots(tasks: &[Task]) -> Vec<usize> {
    let mut needed = vec![false; tasks.len()];
    for task in tasks {
        for &dep in &task.deps {
            needed[dep] = true;
        }
    }
    (0..tasks.len()).filter(|&i| !needed[i]).collect()
}

pub(crate) fn ninja_file(tasks: &[Task]) -> String {
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

pub(crate) fn make_file(tasks: &[Task]) -> String {
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

pub(crate) fn just_file(tasks: &[Task]) -> String {
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
pub(crate) struct Run {
    pub(crate) wall: Duration,
    pub(crate) cpu: Duration,
    pub(crate) max_rss_kb: u64,
}

/// The helper: `__measure WARMUPS RUNS sync|nosync -- [@SCRATCH...]
/// PROGRAM ARGS... [-- [@SCRATCH...] PROGRAM ARGS...]...`. Runs the
/// commands round-robin (so load from elsewhere on the machine hits them
/// alike), each by `fork` and `execv` with stdin, stdout and stderr on
/// `/dev/null`, and prints `command wall_ns cpu_ns maxrss_kb status` per
/// measured run. In arguments and scratch paths, `{run}` stands for the
/// round (0 is the first warm-up). Untimed, before each run: the scratch
/// paths are removed, and with `sync` the dirty pages of the whole system
/// are written back (`sync(2)`), so one command's writes are not paid for
/// by the next.
pub(crate) fn measure_helper(args: &[String]) -> ! {
    let warmups: usize = args[0].parse().expect("warm-up count");
    let runs: usize = args[1].parse().expect("run count");
    let sync = args[2] == "sync";
    let commands: Vec<(Vec<&str>, Vec<&str>)> = args[4..]
        .split(|a| a == "--")
        .map(|command| {
            let scratch = command.iter().take_while(|a| a.starts_with('@')).count();
            (
                command[..scratch].iter().map(|a| &a[1..]).collect(),
                command[scratch..].iter().map(String::as_str).collect(),
            )
        })
        .collect();
    let devnull = CString::new("/dev/null").expect("path");
    // SAFETY: a valid NUL-terminated path.
    let null_fd = unsafe { libc::open(devnull.as_ptr(), libc::O_RDWR) };
    assert!(null_fd >= 0, "cannot open /dev/null");
    let clean = |paths: &[String]| {
        for path in paths {
            let _ = std::fs::remove_dir_all(path).or_else(|_| std::fs::remove_file(path));
        }
    };
    let mut lines = String::new();
    for round in 0..warmups + runs {
        for (command, (scratch, words)) in commands.iter().enumerate() {
            let round_text = round.to_string();
            let scratch: Vec<String> = scratch.iter().map(|p| p.replace("{run}", &round_text)).collect();
            let strings: Vec<CString> = words
                .iter()
                .map(|a| CString::new(a.replace("{run}", &round_text)).expect("no NUL in arguments"))
                .collect();
            let pointers: Vec<*const libc::c_char> =
                strings.iter().map(|a| a.as_ptr()).chain([std::ptr::null()]).collect();
            clean(&scratch);
            if sync {
                // SAFETY: `sync` has no preconditions.
                unsafe { libc::sync() };
            }
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
                    libc::execv(pointers[0], pointers.as_ptr());
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

pub(crate) fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(tv.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(tv.tv_usec).unwrap_or(0))
}

/// A command to measure.
pub(crate) struct Measured<'a> {
    pub(crate) name: &'static str,
    pub(crate) program: &'a Path,
    /// Its arguments; `{run}` stands for the round.
    pub(crate) args: Vec<&'a str>,
    /// Paths (relative to the directory it runs in; `{run}` stands for the
    /// round) removed before each run, untimed.
    pub(crate) scratch: Vec<&'a str>,
}

impl<'a> Measured<'a> {
    pub(crate) fn new(name: &'static str, program: &'a Path, args: Vec<&'a str>) -> Self {
        Self {
            name,
            program,
            args,
            scratch: Vec::new(),
        }
    }

    /// Removes `path` before each run.
    pub(crate) fn scratch(mut self, path: &'a str) -> Self {
        self.scratch.push(path);
        self
    }
}

/// Runs the commands in `dir` through the helper, interleaved, after one
/// warm-up round, and returns each one's summary; panics (with the
/// command's stderr) if one fails.
pub(crate) fn measure(dir: &Path, commands: &[Measured<'_>], runs: usize) -> Vec<Summary> {
    measure_runs(dir, commands, runs, false)
        .iter()
        .map(|runs| summarize(runs))
        .collect()
}

/// As [`measure`], with `sync(2)` before each run when `sync` is set;
/// returns every measured run of each command.
pub(crate) fn measure_runs(dir: &Path, commands: &[Measured<'_>], runs: usize, sync: bool) -> Vec<Vec<Run>> {
    let mut helper = Command::new(std::env::current_exe().expect("own path"));
    helper
        .arg("__measure")
        .arg("1")
        .arg(runs.to_string())
        .arg(if sync { "sync" } else { "nosync" });
    for command in commands {
        helper.arg("--");
        for path in &command.scratch {
            helper.arg(format!("@{path}"));
        }
        helper.arg(command.program).args(&command.args);
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
            let args: Vec<String> = command.args.iter().map(|a| a.replace("{run}", "failed")).collect();
            let again = Command::new(command.program)
                .args(&args)
                .current_dir(dir)
                .output()
                .expect("re-run failing command");
            panic!(
                "`{} {}` failed in {} (wait status {}): {}",
                command.program.display(),
                args.join(" "),
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
    results
}

/// Median wall time, median CPU time, peak RSS (max over runs).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Summary {
    pub(crate) wall_ms: f64,
    pub(crate) min_ms: f64,
    pub(crate) cpu_ms: f64,
    pub(crate) rss_mb: f64,
}

pub(crate) fn summarize(runs: &[Run]) -> Summary {
    let walls: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
    let cpus: Vec<Duration> = runs.iter().map(|r| r.cpu).collect();
    Summary {
        wall_ms: ms(median(&walls)),
        min_ms: ms(walls.iter().copied().min().unwrap_or_default()),
        cpu_ms: ms(median(&cpus)),
        rss_mb: approx(runs.iter().map(|r| r.max_rss_kb).max().unwrap_or(0)) / 1024.0,
    }
}

pub(crate) fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    match sorted.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}

pub(crate) fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

pub(crate) fn mib(bytes: i64) -> f64 {
    let magnitude = approx(bytes.unsigned_abs()) / (1024.0 * 1024.0);
    if bytes < 0 { -magnitude } else { magnitude }
}

/// A count or size as a float: they stay far below 2^52, so nothing is lost.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn approx(n: u64) -> f64 {
    n as f64
}

pub(crate) fn summary_json(summary: Summary) -> Value {
    json!({
        "wall_ms_median": round(summary.wall_ms),
        "wall_ms_min": round(summary.min_ms),
        "cpu_ms_median": round(summary.cpu_ms),
        "peak_rss_mib": round(summary.rss_mb),
    })
}

pub(crate) fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// The first `name` on `PATH`.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

// ---- sanity checks -------------------------------------------------------------

/// `stagecraft check` exits 0 and `stagecraft plan --format json` has
/// exactly the model's instances and dependencies. Returns the number of
/// `after` edges in the plan.
pub(crate) fn verify(stagecraft: &Path, dir: &Path, tasks: &[Task]) -> usize {
    verify_with(stagecraft, dir, tasks, &["check", "-f", "gen.stagecraft"], &PLAN_JSON)
}

/// As [`verify`], with the `check` and `plan` arguments given.
pub(crate) fn verify_with(stagecraft: &Path, dir: &Path, tasks: &[Task], check: &[&str], plan: &[&str]) -> usize {
    let check = Command::new(stagecraft)
        .args(check)
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
        .args(plan)
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

/// Lines of a command's output that stand for one task; it must succeed.
pub(crate) fn count_output(dir: &Path, program: &Path, args: &[&str], is_task: impl Fn(&str) -> bool) -> usize {
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

/// `stagecraft plan --format json` of the generated file.
pub(crate) const PLAN_JSON: [&str; 9] = [
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
