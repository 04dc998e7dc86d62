//! No orphans: a run killed with `kill -9` leaves its commands running, and
//! the next command of its env stops them (`SIGTERM`, the grace, `SIGKILL`)
//! before it marks them interrupted; a pid used again is never taken for
//! one of them; script files of long commands do not stay behind; a panic
//! in the middle of a run leaves nothing running. Real processes, the real
//! binary.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{self, alive, wait_for};

/// A pipeline whose `deploy` runs `long`, a command that writes its
/// shell's pid (its process group's id) to `leader.pid` and then waits,
/// and whose `quick` workflow runs `true`.
fn pipeline(long: &str) -> String {
    format!(
        "pipeline p\nenv dev {{}}\nphase long {{\n  run \"\"\"\n{long}\n  \"\"\"\n}}\nphase quick {{\n  run \"true\"\n}}\nworkflow deploy {{ long }}\nworkflow quick {{ quick }}\n"
    )
}

fn command(dir: &Path, args: &[&str]) -> Command {
    support::command(dir, args)
}

fn run(dir: &Path, args: &[&str]) -> Output {
    command(dir, args).output().expect("run stagecraft")
}

/// The release log of the only release.
fn release_log(dir: &Path) -> PathBuf {
    let releases = dir.join(".stagecraft/pipelines/p/releases");
    let entry = fs::read_dir(&releases).expect("releases").next().expect("a release");
    entry.expect("entry").path()
}

/// Starts `deploy`, waits until `long` runs and its process group is
/// recorded, and kills stagecraft with `SIGKILL`. Returns the group id.
fn deploy_and_kill(dir: &Path) -> u32 {
    let mut deploy: Child = command(dir, &["deploy", "--env", "dev", "--version", "v1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stagecraft");
    let pid_file = dir.join("leader.pid");
    wait_for("the command to start", || {
        fs::read_to_string(&pid_file).is_ok_and(|pid| pid.ends_with('\n'))
            && fs::read_to_string(release_log(dir)).is_ok_and(|log| log.contains("Spawned("))
    });
    deploy.kill().expect("kill -9 stagecraft");
    deploy.wait().expect("reap stagecraft");
    let group: u32 = fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert!(alive(group), "the command outlives stagecraft's SIGKILL");
    group
}

/// Kills what a test left running, whatever happened.
struct Cleanup(u32);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .status();
    }
}

#[test]
fn the_next_command_stops_what_a_killed_run_left_running_before_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    // `sleep` in the background too: the whole group must go.
    let long = "sleep 30 &\necho $! > child.pid\necho $$ > leader.pid\nsleep 30";
    fs::write(dir.path().join("pipeline.stagecraft"), pipeline(long)).unwrap();
    let group = deploy_and_kill(dir.path());
    let _cleanup = Cleanup(group);
    let child: u32 = fs::read_to_string(dir.path().join("child.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(child));
    let began = Instant::now();
    let next = run(dir.path(), &["run", "quick", "--env", "dev", "--version", "v2"]);
    let stderr = String::from_utf8_lossy(&next.stderr);
    assert_eq!(next.status.code(), Some(0), "{stderr}");
    assert!(
        began.elapsed() < Duration::from_secs(8),
        "SIGTERM was enough: no grace waited out"
    );
    let mut notes = stderr.lines();
    // Said before it waits, then what happened.
    let stopping = notes.next().unwrap_or_default();
    assert!(
        stopping.starts_with(&format!(
            "note: stopping long (process group {group}), left running by release rel-"
        )) && stopping.ends_with(" whose run died: `SIGTERM`, then `SIGKILL` after 10s"),
        "{stderr}"
    );
    let note = notes.next().unwrap_or_default();
    // `sh` and the two `sleep`s (or two, if the shell runs the last
    // command in its own place).
    assert!(
        note.starts_with("note: release rel-")
            && note.contains(&format!(
                "was interrupted: long was still running (process group {group}, "
            ))
            && note.ends_with(" processes) and was stopped (`SIGTERM`), long marked failed (interrupted)"),
        "{stderr}"
    );
    assert!(!alive(group) && !alive(child), "the whole group is gone");
    // The release says how it ended.
    let list = run(dir.path(), &["releases", "list", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(json[1]["status"], "failed", "{json}");
}

#[test]
fn a_group_that_ignores_sigterm_is_killed_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let long = "trap '' TERM\necho $$ > leader.pid\nsleep 30";
    fs::write(dir.path().join("pipeline.stagecraft"), pipeline(long)).unwrap();
    let group = deploy_and_kill(dir.path());
    let _cleanup = Cleanup(group);
    let began = Instant::now();
    let next = run(
        dir.path(),
        &["run", "quick", "--env", "dev", "--version", "v2", "--grace", "1s"],
    );
    let stderr = String::from_utf8_lossy(&next.stderr);
    assert_eq!(next.status.code(), Some(0), "{stderr}");
    assert!(began.elapsed() >= Duration::from_secs(1), "the grace is waited out");
    assert!(
        stderr.contains(&format!("long was still running (process group {group}"))
            && stderr.contains("and was killed (`SIGKILL` after the grace)"),
        "{stderr}"
    );
    assert!(!alive(group));
}

#[test]
fn a_group_id_that_now_names_another_process_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("pipeline.stagecraft"),
        pipeline("echo $$ > leader.pid\nsleep 30"),
    )
    .unwrap();
    let group = deploy_and_kill(dir.path());
    let _cleanup = Cleanup(group);
    // As if the group had ended and its pid were another process's now:
    // the recorded start time is not that process's.
    let path = release_log(dir.path());
    let log = fs::read(&path).unwrap();
    let text = String::from_utf8_lossy(&log);
    let at = text.find(", start: ").expect("a recorded start") + ", start: ".len();
    let mut changed = log.clone();
    changed[at] = if changed[at] == b'1' { b'2' } else { b'1' };
    fs::write(&path, changed).unwrap();
    let next = run(dir.path(), &["run", "quick", "--env", "dev", "--version", "v2"]);
    let stderr = String::from_utf8_lossy(&next.stderr);
    assert_eq!(next.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("was interrupted: long marked failed (interrupted)"),
        "{stderr}"
    );
    assert!(alive(group), "not the recorded process: not signalled");
}

#[test]
fn a_long_commands_script_file_left_by_a_killed_run_is_removed_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    // Over 64 KiB: it runs from a script file, whose path is `$0`.
    let filler = format!(": {}", "x".repeat(70 * 1024));
    let long = format!("{filler}\necho \"$0\" > script.path\necho $$ > leader.pid\nsleep 30");
    fs::write(dir.path().join("pipeline.stagecraft"), pipeline(&long)).unwrap();
    let group = deploy_and_kill(dir.path());
    let _cleanup = Cleanup(group);
    // Relative to the pipeline's directory, where commands run.
    let script = dir
        .path()
        .join(fs::read_to_string(dir.path().join("script.path")).unwrap().trim());
    let scripts = dir.path().join(".stagecraft/pipelines/p/envs/dev/scripts");
    assert_eq!(script.parent(), Some(scripts.as_path()), "in the state, not in TMPDIR");
    assert!(script.exists(), "left behind by the kill");
    let next = run(dir.path(), &["run", "quick", "--env", "dev", "--version", "v2"]);
    assert_eq!(next.status.code(), Some(0));
    assert!(!script.exists(), "removed by the next command of the env");
    assert!(!alive(group));
}

#[test]
fn a_panic_in_the_middle_of_a_run_leaves_no_command_running() {
    let dir = tempfile::tempdir().unwrap();
    let source = "pipeline p\nenv dev {}\nphase long {\n  run \"echo $$ > leader.pid; sleep 30\"\n}\nphase short {\n  run \"sleep 0.5\"\n}\nworkflow deploy { long short }\n";
    fs::write(dir.path().join("pipeline.stagecraft"), source).unwrap();
    let output = command(
        dir.path(),
        &["deploy", "--env", "dev", "--version", "v1", "--jobs", "2"],
    )
    .env("STAGECRAFT_DEBUG_PANIC_ON_COMPLETED", "boom")
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    let group: u32 = fs::read_to_string(dir.path().join("leader.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _cleanup = Cleanup(group);
    assert!(!alive(group), "killed as the panic unwound");
    let list = run(dir.path(), &["releases", "list", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(json[0]["status"], "failed", "{json}");
}

// Through the library: the records recovery reads.

mod records {
    use std::cell::RefCell;
    use std::fs;
    use std::os::unix::process::CommandExt;
    use std::path::Path;
    use std::process::Command;
    use std::time::Duration;

    use stagecraft::engine::{Event, Plan, PlannedInstance, Process, Recorder};
    use stagecraft::state::{Clock, Holder, Reap, ReleaseMeta, Store, Timestamp, Wait};

    use super::alive;

    const NOW: &str = "2026-11-25T17:02:29.123Z";

    fn plan() -> Plan {
        Plan {
            pipeline: "webapp".to_owned(),
            env: "prod".to_owned(),
            workflow: "deploy".to_owned(),
            version: "v1".to_owned(),
            instances: vec![PlannedInstance {
                id: "long".into(),
                phase: "long".into(),
                service: None,
                after: vec![],
                command: Some("sleep 30".to_owned()),
                enabled: true,
                unchanged: false,
                version: "v1".into(),
                timeout_ms: None,
                retry: 0,
                backoff_ms: 0,
                on_failure: None,
                undo: None,
            }],
            secrets: Vec::new(),
        }
    }

    fn open(dir: &Path, notices: &RefCell<Vec<String>>) -> (Store, Vec<stagecraft::state::Recovered>) {
        let holder = Holder::current("deploy", Some("prod"), Timestamp::parse(NOW).unwrap());
        let notice = |text: &str| notices.borrow_mut().push(text.to_owned());
        let reap = Reap {
            grace: Duration::from_secs(5),
            notice: &notice,
        };
        let clock = Clock::from_setting(Some(NOW)).unwrap();
        Store::open_with(dir, "webapp", "prod", &holder, Wait::No, clock, &reap).unwrap()
    }

    /// Records `events` in a new release of the env and dies.
    fn record_and_die(dir: &Path, events: &[Event]) {
        let notices = RefCell::default();
        let (mut store, _) = open(dir, &notices);
        let id = store.next_id();
        let mut journal = store.begin(id, &plan(), ReleaseMeta::default()).unwrap();
        journal.record(events).unwrap();
    }

    #[test]
    fn a_recorded_group_is_stopped_and_a_format_3_log_is_recovered_as_before() {
        let mut child = Command::new("/bin/sh")
            .args(["-c", "sleep 30"])
            .process_group(0)
            .spawn()
            .unwrap();
        let group = child.id();
        let stat = fs::read_to_string(format!("/proc/{group}/stat")).unwrap();
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        let began: u64 = fields[19].parse().unwrap();
        let reaper = std::thread::spawn(move || child.wait());
        let started = Event::Started {
            instance: 0,
            attempt: 1,
        };

        // Format 4: the group is recorded, and stopped before the release is
        // marked interrupted.
        let temp = tempfile::tempdir().unwrap();
        let spawned = Event::Spawned {
            instance: 0,
            attempt: 1,
            process: Process { group, start: began },
        };
        record_and_die(temp.path(), &[started.clone(), spawned]);
        let notices = RefCell::default();
        let (_, recovered) = open(temp.path(), &notices);
        let notices = notices.into_inner();
        assert_eq!(notices.len(), 1);
        assert!(notices[0].starts_with(&format!(
            "stopping long (process group {group}), left running by release rel-"
        )));
        assert_eq!(recovered[0].stopped.len(), 1);
        assert!(!alive(group));
        reaper.join().unwrap().unwrap();

        // Format 3 (no process recorded) reads and recovers as it did.
        let temp = tempfile::tempdir().unwrap();
        record_and_die(temp.path(), &[started]);
        let pipeline = temp.path().join("pipelines/webapp");
        let releases = fs::read_dir(pipeline.join("releases")).unwrap();
        for path in releases
            .map(|e| e.unwrap().path())
            .chain([pipeline.join("envs/prod/index.ron")])
        {
            let text = fs::read(&path).unwrap();
            assert!(text.starts_with(b"Format(version: 6)\n"));
            fs::write(&path, [b"Format(version: 3)\n", &text[19..]].concat()).unwrap();
        }
        let notices = RefCell::default();
        let (_, recovered) = open(temp.path(), &notices);
        assert!(notices.into_inner().is_empty());
        assert!(recovered[0].stopped.is_empty());
        assert!(
            recovered[0]
                .to_string()
                .ends_with("was interrupted: long marked failed (interrupted)")
        );
    }
}
