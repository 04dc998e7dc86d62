//! `finally` phases end to end, through the binary, with real commands:
//! they run after everything else on a success, a failure, a timeout and
//! Ctrl-C, see `{{outcome}}` and `STAGECRAFT_OUTCOME`, and their own
//! failure does not change the exit code.

use std::fs;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::support;

/// A pipeline whose `deploy` phase runs `deploy`; `notify` (finally) and
/// `page` (finally, on failure only) append to `notified`.
fn pipeline(deploy: &str, notify: &str) -> String {
    format!(
        r#"pipeline fin
env dev {{
}}
phase deploy {{
  run "{deploy}"
}}
phase after_deploy {{
  after deploy
  run "echo after >> notified"
}}
phase notify {{
  finally
  run "{notify}"
}}
phase page {{
  finally
  after notify
  when outcome == "failure"
  run "echo paged >> notified"
}}
workflow deploy {{ deploy after_deploy notify page }}
"#
    )
}

const NOTIFY: &str = "echo {{outcome}} $STAGECRAFT_OUTCOME >> notified";

fn project(source: &str) -> TempDir {
    let dir = TempDir::new().expect("temp dir");
    fs::write(dir.path().join("pipeline.stagecraft"), source).expect("write pipeline");
    dir
}

fn command(dir: &TempDir, args: &[&str]) -> Command {
    support::command(dir.path(), args)
}

fn run(dir: &TempDir, args: &[&str]) -> Output {
    command(dir, args).output().expect("run stagecraft")
}

fn notified(dir: &TempDir) -> String {
    fs::read_to_string(dir.path().join("notified")).unwrap_or_default()
}

#[test]
fn finally_runs_last_after_a_success_and_sees_success() {
    let dir = project(&pipeline("true", NOTIFY));
    let out = run(&dir, &["deploy", "--env", "dev"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(notified(&dir), "after\nsuccess success\n", "page is skipped on success");
}

#[test]
fn finally_runs_after_a_failure_and_sees_failure() {
    let dir = project(&pipeline("exit 1", NOTIFY));
    let out = run(&dir, &["deploy", "--env", "dev"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(notified(&dir), "failure failure\npaged\n", "after_deploy is skipped");
}

/// The history shows the command a `finally` phase ran: the failure's
/// after a failure (recorded by a `FailureCommand` line, as it differs from
/// the header's), the success's after a success (no such line).
#[test]
fn the_history_shows_the_command_finally_ran_for_the_outcome() {
    const NOW: &str = "2026-11-25T17:02:29.123Z";
    let id = "rel-20261125-170229123";
    for (deploy, status, outcome) in [("exit 1", 3, "failure"), ("true", 0, "success")] {
        let dir = project(&pipeline(deploy, "echo {{outcome}} >> notified"));
        let out = command(&dir, &["deploy", "--env", "dev"])
            .env("STAGECRAFT_NOW", NOW)
            .output()
            .expect("run stagecraft");
        assert_eq!(
            out.status.code(),
            Some(status),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let shown = run(&dir, &["releases", "show", id]);
        let text = String::from_utf8_lossy(&shown.stdout);
        assert!(
            text.contains(&format!("notify:\n  $ echo {outcome} >> notified\n")),
            "{text}"
        );
        let log = fs::read_to_string(dir.path().join(format!(".stagecraft/pipelines/fin/releases/{id}.ron")))
            .expect("the release log");
        assert_eq!(log.contains("FailureCommand("), outcome == "failure", "{log}");
    }
}

#[test]
fn finally_runs_after_a_timeout() {
    let source = pipeline("sleep 5", NOTIFY).replace("  run \"sleep 5\"\n", "  run \"sleep 5\"\n  timeout 200ms\n");
    let dir = project(&source);
    let out = run(&dir, &["deploy", "--env", "dev"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(notified(&dir), "failure failure\npaged\n");
}

#[test]
fn a_failing_finally_phase_is_reported_but_the_exit_code_is_the_releases() {
    let dir = project(&pipeline("true", "echo notify-broke; exit 7"));
    let out = run(&dir, &["deploy", "--env", "dev"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("notify"), "{stderr}");
    assert_eq!(notified(&dir), "after\n");
    // The history agrees with the exit code: the release completed, and
    // the finally instance's failure is still recorded on it.
    let list = run(&dir, &["releases", "list", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list[0]["status"], "completed", "{list}");
    let id = list[0]["id"].as_str().unwrap().to_owned();
    let show = run(&dir, &["releases", "show", &id, "--format", "json"]);
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(show.contains("\"failed\""), "{show}");
    let status = run(&dir, &["status", "--env", "dev", "--format", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["current"]["status"], "completed", "{status}");
}

#[test]
fn finally_runs_after_ctrl_c_within_the_grace() {
    let dir = project(&pipeline("echo started > started; sleep 30", NOTIFY));
    let mut child = command(&dir, &["deploy", "--env", "dev"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn stagecraft");
    let started = dir.path().join("started");
    for _ in 0..300 {
        if started.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(started.exists(), "deploy never started");
    // SAFETY: sending a signal to a child we own.
    unsafe {
        libc::kill(i32::try_from(child.id()).expect("pid"), libc::SIGINT);
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    assert_eq!(notified(&dir), "failure failure\npaged\n");
}

#[test]
fn fmt_keeps_finally_and_check_accepts_it() {
    let dir = project(&pipeline("true", NOTIFY).replace("  finally\n  after notify", "  finally after notify"));
    let out = run(&dir, &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&dir, &["fmt"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let formatted = fs::read_to_string(dir.path().join("pipeline.stagecraft")).expect("read");
    assert!(
        formatted.contains("phase page {\n  finally\n  after notify\n"),
        "{formatted}"
    );
    let out = run(&dir, &["fmt", "--check"]);
    assert_eq!(out.status.code(), Some(0), "formatting is stable");
}

#[test]
fn a_finally_command_is_killed_when_the_grace_of_ctrl_c_has_passed() {
    let dir = project(&pipeline("echo started > started; sleep 30", "sleep 30"));
    let mut child = command(&dir, &["deploy", "--env", "dev", "--grace", "300ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn stagecraft");
    let started = dir.path().join("started");
    for _ in 0..300 {
        if started.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(started.exists(), "deploy never started");
    let signalled = std::time::Instant::now();
    // SAFETY: sending a signal to a child we own.
    unsafe {
        libc::kill(i32::try_from(child.id()).expect("pid"), libc::SIGINT);
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "the finally `sleep 30` outlived the grace"
    );
    assert_eq!(notified(&dir), "", "page waits for notify, which was killed: skipped");
}
