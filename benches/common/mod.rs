//! Shared by the bench binaries (`frontend`, `execute`, `state`, `lsp`): the
//! ninja-shaped layered graph (`layered`) as a pipeline, `build.ninja` and
//! `Makefile` with its model instance graph, past histories for the state
//! benches (`history`), the helper that times external commands (wall time,
//! CPU, peak RSS via `wait4`), and the sanity checks that `stagecraft plan`
//! agrees with the model.

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

// ---- the model ----------------------------------------------------------------

/// One phase instance of the model graph.
pub(crate) struct Task {
    /// As stagecraft names it: `t12`.
    pub(crate) id: String,
    /// Its log file's name.
    pub(crate) file: String,
    /// Indices of the instances it waits for (all earlier), ascending.
    pub(crate) deps: Vec<usize>,
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
    "bench",
    "--workflow",
    "deploy",
    "--format",
    "json",
];
