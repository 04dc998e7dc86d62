//! Undoing a failed release end to end, through the binary, with real
//! commands: a deploy that fails in `rollout[web]` undoes `rollout[api]`
//! then `migrate` before its `finally` phase; a failed undo stops the
//! undoing; `undo on failure` is inherited from a parent env; nothing is
//! undone on success or without the setting; a run killed during an undo
//! is recovered by the next command; Ctrl-C during an undo stops it and
//! gives up the rest.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

use crate::support::{self, alive, wait_for};

/// `migrate`, then `rollout` of api then web (web fails at version
/// `bad`), each with an `undo`, and a `finally` phase `notify`; every
/// command appends a line to `marks`. `base` undoes on failure; `prod`
/// extends it, `dev` does not. `undo_api` is the undo of `rollout[api]`.
fn pipeline(undo_api: &str) -> String {
    let undo_api = if undo_api.is_empty() {
        String::new()
    } else {
        format!("{undo_api}\n    ")
    };
    format!(
        r#"pipeline shop
service api {{
}}
service web {{
  after api
}}
env base {{
  undo on failure
}}
env prod extends base {{
}}
env dev {{
}}
phase migrate {{
  run "echo migrate >> marks"
  undo "echo undo-migrate {{{{env}}}} >> marks"
}}
phase rollout {{
  for each service
  after migrate
  run """
    echo rollout-{{{{service}}}} >> marks
    test "{{{{service}}}}-{{{{version}}}}" != web-bad
  """
  undo """
    {undo_api}echo undo-rollout-{{{{service}}}} $STAGECRAFT_SERVICE >> marks
  """
}}
phase notify {{
  finally
  run "echo notify-{{{{outcome}}}} >> marks"
}}
workflow deploy {{ migrate rollout notify }}
"#
    )
}

fn project(undo_api: &str) -> TempDir {
    let dir = TempDir::new().expect("temp dir");
    fs::write(dir.path().join("pipeline.stagecraft"), pipeline(undo_api)).expect("write pipeline");
    dir
}

/// The binary in `dir`, with a fixed clock and user (for snapshots).
fn command(dir: &Path, args: &[&str]) -> Command {
    let mut command = support::command(dir, args);
    command
        .env("STAGECRAFT_NOW", "2026-11-25T12:00:00.000Z")
        .env("STAGECRAFT_USER", "ada@ci");
    command
}

fn run(dir: &Path, args: &[&str]) -> Output {
    command(dir, args).output().expect("run stagecraft")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The lines of `marks`, then empties it.
fn marks(dir: &Path) -> Vec<String> {
    let path = dir.join("marks");
    let text = fs::read_to_string(&path).unwrap_or_default();
    let _ = fs::remove_file(&path);
    text.lines().map(str::to_owned).collect()
}

fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let output = run(dir, args);
    assert_eq!(output.status.code(), Some(0), "{args:?}: {}", stderr(&output));
    serde_json::from_slice(&output.stdout).expect("JSON")
}

/// The newest release, as `releases show --format json` shows it.
fn newest(dir: &Path) -> serde_json::Value {
    let list = json(dir, &["releases", "list", "--format", "json"]);
    let id = list[0]["id"].as_str().expect("a release").to_owned();
    json(dir, &["releases", "show", &id, "--format", "json"])
}

/// Each instance's id, status and undo status (`-` without an undo).
fn undo_statuses(release: &serde_json::Value) -> Vec<String> {
    release["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .map(|p| {
            let undo = p["undo"]["status"].as_str().unwrap_or("-");
            format!(
                "{} {} {undo}",
                p["id"].as_str().unwrap_or("?"),
                p["status"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

#[test]
fn a_failed_deploy_is_undone_latest_first_before_finally() {
    let dir = project("");
    let good = run(dir.path(), &["deploy", "--env", "dev", "--version", "v1"]);
    assert_eq!(good.status.code(), Some(0), "{}", stderr(&good));
    assert_eq!(marks(dir.path()).len(), 4, "no undo on success");

    // `dev` does not undo on failure: the flag does.
    let bad = run(
        dir.path(),
        &["deploy", "--env", "dev", "--version", "bad", "--undo-on-failure"],
    );
    let text = stderr(&bad);
    assert_eq!(bad.status.code(), Some(3), "{text}");
    assert_eq!(
        marks(dir.path()),
        [
            "migrate",
            "rollout-api",
            "rollout-web",
            "undo-rollout-api api",
            "undo-migrate dev",
            "notify-failure"
        ],
        "undone in reverse order of completion, then finally"
    );
    assert!(
        text.contains("↶ undoing rollout[api]\n↶ rollout[api] undone\n↶ undoing migrate\n"),
        "{text}"
    );
    // The failure report: what completed, what was undone, what `finally`
    // did, and how to resume, in that order.
    let report = text.find("\ncompleted: ").map(|at| &text[at..]).unwrap_or_default();
    let lines: Vec<&str> = report.lines().skip(1).take(4).collect();
    assert_eq!(
        lines,
        [
            "completed: migrate, rollout[api]",
            "undone, latest first: rollout[api], migrate",
            "finally: notify (completed)",
            "resume it once the cause is fixed (what completed does not run again):",
        ],
        "{text}"
    );
    assert!(
        text.contains("1 completed · 1 failed · 0 skipped · 2 undone · "),
        "{text}"
    );

    let release = newest(dir.path());
    insta::assert_json_snapshot!("undone_release", release);
    let id = release["id"].as_str().unwrap_or_default();
    let shown = run(dir.path(), &["releases", "show", id]);
    insta::assert_snapshot!("undone_release_text", String::from_utf8_lossy(&shown.stdout));
    let log = dir
        .path()
        .join(format!(".stagecraft/pipelines/shop/logs/{id}/rollout.api.undo.log"));
    assert!(
        release["phases"][1]["undo"]["log"]
            .as_str()
            .is_some_and(|l| l.ends_with("rollout.api.undo.log"))
    );
    assert!(
        !log.exists(),
        "an undo that prints nothing leaves no log, as any command"
    );

    // api is back at v1: its deploy was undone; web failed at `bad`.
    let status = json(dir.path(), &["status", "--env", "dev", "--format", "json"]);
    let service = |name: &str| -> serde_json::Value {
        let services = status["services"].as_array().expect("services");
        services
            .iter()
            .find(|s| s["service"] == name)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(service("api")["version"], "v1", "{status}");
    assert_eq!(service("api")["failed"], serde_json::Value::Null, "{status}");
    assert_eq!(service("web")["failed"]["version"], "bad", "{status}");
    let text = run(dir.path(), &["status", "--env", "dev"]);
    insta::assert_snapshot!("undone_status_text", String::from_utf8_lossy(&text.stdout));
}

#[test]
fn a_failed_undo_stops_the_undoing() {
    let dir = project("echo cannot-undo-api >&2; exit 4");
    let bad = run(dir.path(), &["deploy", "--env", "prod", "--version", "bad"]);
    let text = stderr(&bad);
    assert_eq!(bad.status.code(), Some(3), "{text}");
    assert_eq!(
        marks(dir.path()),
        ["migrate", "rollout-api", "rollout-web", "notify-failure"],
        "migrate's undo is not attempted; finally still runs"
    );
    assert!(
        text.contains("the undo of `rollout[api]` failed (exit code 4): the undoing stopped there\n"),
        "{text}"
    );
    assert!(text.contains("  | cannot-undo-api\n"), "{text}");
    assert!(text.contains("not undone (not attempted): migrate\n"), "{text}");
    let release = newest(dir.path());
    assert_eq!(
        undo_statuses(&release),
        [
            "migrate completed not_attempted",
            "rollout[api] undo_failed failed",
            "rollout[web] failed not_needed",
            "notify completed -"
        ]
    );
    assert_eq!(
        release["phases"][0]["undo"]["reason"],
        "the undo of rollout[api] failed"
    );
    assert_eq!(release["phases"][1]["undo"]["exit_code"], 4);
}

#[test]
fn undo_on_failure_is_inherited_and_only_undoes_a_failure() {
    let dir = project("");
    // `prod` extends `base`, which says `undo on failure`.
    let bad = run(dir.path(), &["deploy", "--env", "prod", "--version", "bad"]);
    assert_eq!(bad.status.code(), Some(3), "{}", stderr(&bad));
    assert_eq!(marks(dir.path())[3..5], ["undo-rollout-api api", "undo-migrate prod"]);
    // `dev` does not, and no flag is given.
    let bad = run(dir.path(), &["deploy", "--env", "dev", "--version", "bad"]);
    assert_eq!(bad.status.code(), Some(3), "{}", stderr(&bad));
    assert_eq!(
        marks(dir.path()),
        ["migrate", "rollout-api", "rollout-web", "notify-failure"]
    );
    assert!(
        newest(dir.path())["phases"][0].get("undo").is_none(),
        "no undo recorded"
    );
    // A success, and a dry run, undo nothing.
    let good = run(dir.path(), &["deploy", "--env", "prod", "--version", "v2"]);
    assert_eq!(good.status.code(), Some(0), "{}", stderr(&good));
    assert_eq!(marks(dir.path()).len(), 4);
    assert_eq!(
        undo_statuses(&newest(dir.path()))[..2],
        ["migrate completed not_needed", "rollout[api] completed not_needed"]
    );
    let dry = run(
        dir.path(),
        &["deploy", "--env", "prod", "--version", "bad", "--dry-run"],
    );
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    assert!(marks(dir.path()).is_empty());
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
fn a_run_killed_during_an_undo_is_recovered_by_the_next_command() {
    let dir = project("echo $$ > undo.pid; sleep 30");
    let mut deploy = command(dir.path(), &["deploy", "--env", "prod", "--version", "bad"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stagecraft");
    let releases = dir.path().join(".stagecraft/pipelines/shop/releases");
    let spawned = || {
        fs::read_dir(&releases).is_ok_and(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|e| fs::read_to_string(e.path()).is_ok_and(|log| log.contains("UndoSpawned(")))
        })
    };
    let pid_file = dir.path().join("undo.pid");
    wait_for("the undo to start", || {
        fs::read_to_string(&pid_file).is_ok_and(|pid| pid.ends_with('\n')) && spawned()
    });
    deploy.kill().expect("kill -9 stagecraft");
    deploy.wait().expect("reap stagecraft");
    let group: u32 = fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    let _cleanup = Cleanup(group);
    assert!(alive(group), "the undo outlives stagecraft's SIGKILL");

    let next = run(dir.path(), &["deploy", "--env", "prod", "--version", "v1"]);
    let text = stderr(&next);
    assert_eq!(next.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("rollout[api] was still running (process group {group}"))
            && text.contains("the undo of rollout[api] marked failed (interrupted), not undone: migrate"),
        "{text}"
    );
    assert!(!alive(group), "the undo's group is stopped");
    let list = json(dir.path(), &["releases", "list", "--format", "json"]);
    let id = list[1]["id"].as_str().expect("the killed release").to_owned();
    let killed = json(dir.path(), &["releases", "show", &id, "--format", "json"]);
    assert_eq!(killed["status"], "failed");
    assert_eq!(
        undo_statuses(&killed),
        [
            "migrate completed not_attempted",
            "rollout[api] undo_failed failed",
            "rollout[web] failed not_needed",
            "notify skipped -"
        ]
    );
    assert_eq!(killed["phases"][1]["undo"]["reason"], "interrupted");
}

#[test]
fn the_plan_shows_each_undo_interpolated_like_its_run() {
    let dir = project("");
    let plan = json(
        dir.path(),
        &["plan", "--env", "prod", "--version", "v9", "--format", "json"],
    );
    let phase = |id: &str| -> serde_json::Value {
        let phases = plan["phases"].as_array().expect("phases");
        phases.iter().find(|p| p["id"] == id).cloned().unwrap_or_default()
    };
    assert_eq!(phase("migrate")["undo"], "echo undo-migrate prod >> marks");
    assert_eq!(
        phase("rollout[web]")["undo"],
        "echo undo-rollout-web $STAGECRAFT_SERVICE >> marks"
    );
    assert!(phase("notify").get("undo").is_none(), "left out when there is none");
}

#[test]
fn ctrl_c_during_an_undo_stops_it_and_gives_up_the_rest() {
    let dir = project("echo started > undo.started; sleep 30");
    let mut child = command(dir.path(), &["deploy", "--env", "prod", "--version", "bad"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn stagecraft");
    let started = dir.path().join("undo.started");
    wait_for("the undo to start", || started.exists());
    // SAFETY: sending a signal to a child we own.
    unsafe {
        libc::kill(i32::try_from(child.id()).expect("pid"), libc::SIGINT);
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    assert_eq!(
        marks(dir.path()),
        ["migrate", "rollout-api", "rollout-web", "notify-failure"],
        "the undo was stopped, migrate's not attempted, finally still ran"
    );
    let release = newest(dir.path());
    assert_eq!(
        undo_statuses(&release)[..2],
        ["migrate completed not_attempted", "rollout[api] undo_failed failed"]
    );
    assert_eq!(release["phases"][0]["undo"]["reason"], "interrupted");
    assert_eq!(release["phases"][1]["undo"]["reason"], "interrupted");
}
