//! The executor's limits, with real processes: memory that does not grow
//! with what commands print, commands longer than the argument limit, and
//! the grace cancelled commands get between `SIGTERM` and `SIGKILL`.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use stagecraft::engine::{self, Cancel, ExecuteOptions, InstanceStatus, PlannedInstance, Reason, ShellRunner, Summary};
use stagecraft::testing::{self, MemoryRecorder, MemorySink};

use crate::support::BIN;

/// Runs the binary in `dir` with `args` and `TMPDIR` set to `tmp`, reading
/// its stdout and stderr as it goes; returns its exit code, stdout, stderr
/// and its peak resident set size in KiB.
///
/// The peak is `VmHWM` of `/proc/PID/status`, read every few milliseconds
/// until the process has exited (it is not reaped meanwhile, so its pid
/// is not reused): `ru_maxrss` from `wait4` would not do, as `exec`
/// counts in it the memory of the process it replaced, which for a spawn
/// is this test process, large when it runs among the others.
fn run_measured(dir: &Path, tmp: &Path, args: &[&str]) -> (i32, Vec<u8>, String, u64) {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("TMPDIR", tmp)
        .env_remove("STAGECRAFT_STATE_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run stagecraft");
    let status = format!("/proc/{}/status", child.id());
    let peak = thread::spawn(move || {
        let mut peak = 0;
        // A zombie's status has no `VmHWM`: the process has exited.
        while let Some(kib) = fs::read_to_string(&status).ok().and_then(|text| high_water_mark(&text)) {
            peak = peak.max(kib);
            thread::sleep(Duration::from_millis(2));
        }
        peak
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = thread::spawn(move || {
        let mut bytes = Vec::new();
        stdout.read_to_end(&mut bytes).unwrap();
        bytes
    });
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    let out = out.join().unwrap();
    let peak = peak.join().unwrap();
    let code = child.wait().unwrap().code().unwrap_or(-1);
    (code, out, err, peak)
}

/// `VmHWM` of a `/proc/PID/status`, in KiB.
fn high_water_mark(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Four services, each printing 25,000 numbered lines of 1,000 bytes:
/// 100 MB in all.
const LOUD: &str = r#"pipeline p
env dev {}
service a {}
service b {}
service c {}
service d {}
phase out {
  for each service
  run "awk 'BEGIN { pad = sprintf(\"%990s\", \"\"); for (i = 1; i <= 25000; i++) printf \"{{service}}%08d%s\\n\", i, pad }'"
}
workflow deploy { out }
"#;

#[test]
fn grouped_output_of_100_mb_at_four_jobs_keeps_memory_under_32_mb() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("pipeline.stagecraft"), LOUD).unwrap();
    let args = ["deploy", "--env", "dev", "--version", "v1", "--jobs", "4"];
    let (code, stdout, stderr, peak_kib) = run_measured(dir.path(), tmp.path(), &args);
    assert_eq!(code, 0, "{stderr}");
    eprintln!("peak RSS of stagecraft: {peak_kib} KiB");
    assert!(peak_kib > 0 && peak_kib < 32 * 1024, "peak RSS {peak_kib} KiB");
    // Each instance's output is one block, exactly its log, in order.
    // Every line is 1,000 bytes, so lines are compared by position.
    let (lines, line, prefixed) = (25_000, 1_000, 1_000 + "out[a] | ".len());
    assert_eq!(stdout.len(), 4 * lines * prefixed);
    let logs = fs::read_dir(dir.path().join(".stagecraft/pipelines/p/logs")).unwrap();
    let logs = logs.map(|entry| entry.unwrap().path()).next().unwrap();
    let mut seen = Vec::new();
    for block in stdout.chunks(lines * prefixed) {
        let service = char::from(block[4]);
        seen.push(service);
        let prefix = format!("out[{service}] | ");
        let log = fs::read(logs.join(format!("out.{service}.log"))).unwrap();
        assert_eq!(log.len(), lines * line);
        for (number, (shown, logged)) in block.chunks(prefixed).zip(log.chunks(line)).enumerate() {
            assert_eq!(&shown[..prefix.len()], prefix.as_bytes(), "line {number} of {service}");
            assert_eq!(&shown[prefix.len()..], logged, "line {number} of {service}");
            assert_eq!(&logged[..9], format!("{service}{:08}", number + 1).as_bytes());
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, ['a', 'b', 'c', 'd']);
    // Nothing was spilled: the logs held it all.
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn a_200_kib_command_runs_from_a_script_file_removed_after() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let filler = "x".repeat(200 * 1024);
    let source = format!(
        "pipeline p\nenv dev {{}}\nphase long {{\n  run \"\"\"\n    echo \"$0\" > script-path\n    : '{filler}'\n    echo marker-at-the-end\n  \"\"\"\n}}\nworkflow deploy {{ long }}\n"
    );
    fs::write(dir.path().join("pipeline.stagecraft"), source).unwrap();
    let (code, stdout, stderr, _) =
        run_measured(dir.path(), tmp.path(), &["deploy", "--env", "dev", "--version", "v1"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(String::from_utf8(stdout).unwrap(), "long | marker-at-the-end\n");
    // In the env's directory of the state (where the next run of the env
    // removes what a run killed outright left behind), not in TMPDIR.
    let script = fs::read_to_string(dir.path().join("script-path")).unwrap();
    let scripts = Path::new(".stagecraft/pipelines/p/envs/dev/scripts");
    assert!(Path::new(script.trim()).starts_with(scripts), "{script}");
    let left = fs::read_dir(dir.path().join(scripts)).unwrap().count();
    assert_eq!(left, 0, "the script is removed");
}

// Cancellation.

/// An instance `id` running `command`.
fn instance(id: &str, command: &str) -> PlannedInstance {
    PlannedInstance {
        command: Some(command.to_owned()),
        version: "1".into(),
        ..testing::instance(id, &[])
    }
}

/// Runs `instances` at once in `dir` with `grace`, cancelling the run
/// `cancels` times once every instance has created its file `ready.<id>`;
/// returns the summary and how long the run took from the first cancel.
fn cancelled(dir: &Path, instances: Vec<PlannedInstance>, grace: Duration, cancels: usize) -> (Summary, Duration) {
    let ids: Vec<String> = instances.iter().map(|instance| instance.id.to_string()).collect();
    let plan = testing::plan("p", "dev", "deploy", "1", instances);
    let options = ExecuteOptions {
        dir: dir.to_owned(),
        jobs: ids.len(),
        grace,
        ..ExecuteOptions::default()
    };
    let cancel = Cancel::new();
    let canceller = cancel.clone();
    let ready: Vec<_> = ids.iter().map(|id| dir.join(format!("ready.{id}"))).collect();
    let thread = thread::spawn(move || {
        let limit = Instant::now() + Duration::from_secs(10);
        while !ready.iter().all(|path| path.exists()) && Instant::now() < limit {
            thread::sleep(Duration::from_millis(10));
        }
        let began = Instant::now();
        for _ in 0..cancels {
            canceller.cancel();
        }
        began
    });
    let (mut recorder, mut sink) = (MemoryRecorder::default(), MemorySink::default());
    let runner = ShellRunner::default();
    let summary = engine::execute(&plan, &options, &runner, &mut recorder, &mut sink, &cancel).unwrap();
    let began = thread.join().unwrap();
    (summary, began.elapsed())
}

#[test]
fn a_cancelled_command_gets_sigterm_and_the_grace_before_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let polite = instance(
        "polite",
        "trap 'echo cleaned up > cleaned; exit 3' TERM; touch ready.polite; sleep 30 & wait",
    );
    let stubborn = instance("stubborn", "trap '' TERM; touch ready.stubborn; sleep 30");
    let grace = Duration::from_millis(500);
    let (summary, took) = cancelled(dir.path(), vec![polite, stubborn], grace, 1);
    assert!(summary.interrupted);
    // The command that traps TERM cleaned up before it exited.
    assert_eq!(fs::read_to_string(dir.path().join("cleaned")).unwrap(), "cleaned up\n");
    for instance in &summary.instances {
        assert_eq!(instance.status, InstanceStatus::Failed, "{}", instance.id);
        assert_eq!(instance.reason, Some(Reason::Interrupted), "{}", instance.id);
    }
    // The one that ignores it was killed once the grace had passed.
    assert!(took >= grace && took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn a_second_cancel_kills_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let stubborn = instance("stubborn", "trap '' TERM; touch ready.stubborn; sleep 30");
    let (summary, took) = cancelled(dir.path(), vec![stubborn], Duration::from_secs(60), 2);
    assert!(summary.interrupted);
    assert_eq!(summary.instances[0].reason, Some(Reason::Interrupted));
    assert!(took < Duration::from_secs(5), "{took:?}");
}
