//! `stagecraft resume` end to end, through the binary, with real commands:
//! a deploy that fails in `rollout[web]`, the cause fixed, the release
//! resumed (what completed is carried over and does not run again), then
//! `status` and `rollback` treating it as any completed release; the
//! refusals; `--dry-run`; the default release; the failure report; and the
//! `finally` phases a `kill -9` kept from running.

use std::fs;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::support;

/// Two services; every command appends a line to `ran`. `rollout[S]`
/// fails while a file `broken-S` exists.
const PIPELINE: &str = r#"pipeline shop
var image = "none"
env prod {
}
service api {
}
service web {
}
phase build {
  for each service
  run "echo build-{{service}}-{{image}} >> ran"
}
phase migrate {
  after build
  run "echo migrate >> ran"
}
phase rollout {
  for each service
  after migrate
  run "test ! -e broken-{{service}} && echo rollout-{{service}}-{{version}} >> ran"
}
phase notify {
  finally
  run "echo notify-{{outcome}} >> ran"
}
workflow deploy { build migrate rollout notify }
workflow rollback { rollout notify }
"#;

const NOW: &str = "2026-11-25T12:00:00.000Z";

fn project() -> TempDir {
    let dir = TempDir::new().expect("temp dir");
    fs::write(dir.path().join("pipeline.stagecraft"), PIPELINE).expect("write pipeline");
    dir
}

fn run(dir: &Path, args: &[&str]) -> Output {
    support::command(dir, args)
        .env("STAGECRAFT_NOW", NOW)
        .output()
        .expect("run stagecraft")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The lines the commands wrote, then forgets them.
fn take_ran(dir: &Path) -> Vec<String> {
    let path = dir.join("ran");
    let text = fs::read_to_string(&path).unwrap_or_default();
    let _ = fs::remove_file(&path);
    text.lines().map(str::to_owned).collect()
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let out = run(dir, args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The newest release of `prod`, in JSON.
fn newest(dir: &Path) -> Value {
    json(dir, &["releases", "list", "--env", "prod", "--format", "json"])[0].clone()
}

/// A failed deploy of `version` (`rollout[web]` broken), returning its id.
fn failed_deploy(dir: &Path, version: &str, extra: &[&str]) -> String {
    fs::write(dir.join("broken-web"), "").expect("break web");
    let mut args = vec!["deploy", "--env", "prod", "--version", version];
    args.extend_from_slice(extra);
    let out = run(dir, &args);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    newest(dir)["id"].as_str().expect("id").to_owned()
}

#[test]
fn resume_after_fixing_the_cause_carries_over_what_completed_and_rollback_treats_it_normally() {
    let temp = project();
    let dir = temp.path();
    let out = run(dir, &["deploy", "--env", "prod", "--version", "v1", "--set", "image=a"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    take_ran(dir);
    let failed = failed_deploy(dir, "v2", &["--set", "image=a"]);
    assert_eq!(
        take_ran(dir),
        [
            "build-api-a",
            "build-web-a",
            "migrate",
            "rollout-api-v2",
            "notify-failure"
        ]
    );
    // The cause is fixed; the resume runs only what did not complete.
    fs::remove_file(dir.join("broken-web")).expect("fix web");
    let out = run(dir, &["resume", "--env", "prod", "--version", "v2", "--set", "image=a"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        take_ran(dir),
        ["rollout-web-v2", "notify-success"],
        "carried-over commands did not run again"
    );
    let resumed = newest(dir);
    let id = resumed["id"].as_str().expect("id").to_owned();
    assert_ne!(id, failed);
    assert_eq!(resumed["resumes"], Value::from(failed.clone()));
    assert_eq!(resumed["status"], "completed");
    let shown = json(dir, &["releases", "show", &id, "--format", "json"]);
    let carried = format!("carried over from {failed}");
    for phase in shown["phases"].as_array().expect("phases") {
        let name = phase["id"].as_str().expect("id");
        assert_eq!(phase["status"], "completed", "{name}");
        if ["build[api]", "build[web]", "migrate", "rollout[api]"].contains(&name) {
            assert_eq!(phase["reason"], Value::from(carried.clone()), "{name}");
            assert_eq!(phase["attempts"], 0, "{name}");
        } else {
            assert_eq!(phase["reason"], Value::Null, "{name}");
            assert_eq!(phase["attempts"], 1, "{name}");
        }
    }
    let text = stdout(&run(dir, &["releases", "show", &id]));
    assert!(text.contains(&format!("resumes   {failed}\n")), "{text}");
    // `status`: both services at v2 from the resumed release.
    let status = json(dir, &["status", "--env", "prod", "--format", "json"]);
    assert_eq!(status["current"]["id"], Value::from(id.clone()), "{status}");
    assert_eq!(status["current"]["status"], "completed", "{status}");
    for service in status["services"].as_array().expect("services") {
        assert_eq!(service["version"], "v2", "{status}");
        assert_eq!(service["release"], Value::from(id.clone()), "{status}");
    }
    // A rollback goes back from it to v1, as from any completed release.
    let out = run(dir, &["rollback", "--env", "prod", "--to-previous"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(take_ran(dir), ["rollout-api-v1", "rollout-web-v1", "notify-success"]);
    let status = json(dir, &["status", "--env", "prod", "--format", "json"]);
    assert_eq!(status["current"]["workflow"], "rollback", "{status}");
    assert_eq!(status["current"]["rollback_of"], "rel-20261125-120000000", "{status}");
    for service in status["services"].as_array().expect("services") {
        assert_eq!(service["version"], "v1", "{status}");
    }
    // Nothing is left to resume.
    let out = run(dir, &["resume", "--env", "prod", "--version", "v2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nothing to resume"), "{}", stderr(&out));
}

#[test]
fn resume_refuses_a_changed_pipeline_version_or_set_value_naming_each() {
    let temp = project();
    let dir = temp.path();
    let failed = failed_deploy(dir, "v2", &["--set", "image=a"]);
    fs::remove_file(dir.join("broken-web")).expect("fix web");
    take_ran(dir);
    let refused = |args: &[&str]| {
        let mut all = vec!["resume", "--env", "prod"];
        all.extend_from_slice(args);
        let out = run(dir, &all);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        stderr(&out)
    };
    let text = refused(&["--version", "v2", "--set", "image=b"]);
    assert!(
        text.contains(&format!("  - --set image: value differs from {failed}\n")),
        "{text}"
    );
    let text = refused(&["--version", "v3", "--set", "image=a"]);
    assert!(
        text.contains(&format!("  - version: {failed} ran `v2`, this run would be `v3`\n")),
        "{text}"
    );
    let text = refused(&["--version", "v2"]);
    assert!(
        text.contains(&format!("  - --set image: given to {failed}, not now\n")),
        "{text}"
    );
    let text = refused(&["--version", "v2", "--set", "image=a", "--services", "api"]);
    assert!(
        text.contains(&format!(
            "  - services: {failed} covered api, web, this run would cover api\n"
        )),
        "{text}"
    );
    // Editing the pipeline changes its digest.
    let edited = PIPELINE.replace("echo migrate", "echo migrate-again");
    fs::write(dir.join("pipeline.stagecraft"), edited).expect("edit");
    let text = refused(&["--version", "v4", "--set", "image=a"]);
    assert!(
        text.contains(&format!(
            "error: release {failed} cannot be resumed: this run differs from it (2 differences)\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("  - the pipeline file changed since {failed} (digest ")),
        "{text}"
    );
    assert!(text.contains("  - version: "), "{text}");
    assert!(take_ran(dir).is_empty(), "nothing ran");
    assert_eq!(newest(dir)["id"], Value::from(failed), "nothing recorded");
}

#[test]
fn resume_refuses_a_release_that_is_not_the_envs_newest_and_defaults_to_the_newest() {
    let temp = project();
    let dir = temp.path();
    let first = failed_deploy(dir, "v2", &[]);
    let second = failed_deploy(dir, "v2", &[]);
    fs::remove_file(dir.join("broken-web")).expect("fix web");
    take_ran(dir);
    let out = run(dir, &["resume", &first, "--env", "prod", "--version", "v2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "error: release {first} is not the env's newest: deploy release {second} came after it\n"
        )),
        "{}",
        stderr(&out)
    );
    // An unknown id gets the nearest one.
    let typo = format!("{}9", &second[..second.len() - 1]);
    let out = run(dir, &["resume", &typo, "--env", "prod", "--version", "v2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("error: no release `{typo}`\nhelp: did you mean `")),
        "{}",
        stderr(&out)
    );
    // Without an id: the env's newest release, the second.
    let out = run(dir, &["resume", "--env", "prod", "--version", "v2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(newest(dir)["resumes"], Value::from(second));
}

#[test]
fn resume_dry_run_says_what_is_carried_over_and_what_runs() {
    let temp = project();
    let dir = temp.path();
    failed_deploy(dir, "v2", &["--set", "image=a"]);
    take_ran(dir);
    let out = run(
        dir,
        &[
            "resume",
            "--env",
            "prod",
            "--version",
            "v2",
            "--set",
            "image=a",
            "--dry-run",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!("resume_dry_run", stdout(&out));
    assert!(take_ran(dir).is_empty(), "a dry run runs nothing");
    assert!(newest(dir)["resumes"].is_null(), "and records nothing");
}

#[test]
fn the_failure_report_names_what_completed_what_finally_did_and_how_to_resume() {
    let temp = project();
    let dir = temp.path();
    fs::write(dir.join("broken-web"), "").expect("break web");
    let out = run(
        dir,
        &[
            "deploy",
            "--env",
            "prod",
            "--version",
            "v2",
            "-f",
            "pipeline.stagecraft",
            "--state-dir",
            "my state",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    let text = stderr(&out);
    let report = &text[text.find("\ncompleted:").expect("the report")..];
    insta::assert_snapshot!("resume_failure_report", report);
    // The command it prints is the one that resumes, as a shell runs it.
    fs::remove_file(dir.join("broken-web")).expect("fix web");
    let printed = report
        .lines()
        .find_map(|line| line.strip_prefix("  stagecraft resume "))
        .expect("the resume command");
    let bin = Path::new(support::BIN).parent().expect("the binary's directory");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut shell = std::process::Command::new("sh");
    for name in support::FLAG_VARIABLES {
        shell.env_remove(name);
    }
    let out = shell
        .args(["-c", &format!("stagecraft resume {printed}")])
        .current_dir(dir)
        .env("PATH", path)
        .env("STAGECRAFT_NOW", NOW)
        .env("NO_COLOR", "1")
        .env_remove("STAGECRAFT_STATE_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("sh");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// `kill -9` of a run: no `finally` phase runs; the next command's recovery
/// says which did not, `releases show` too, and the interrupted release can
/// be resumed.
#[test]
fn finally_phases_a_kill_kept_from_running_are_named_and_the_release_resumes() {
    let temp = project();
    let dir = temp.path();
    let source = PIPELINE.replace(
        "echo migrate >> ran",
        "test -e fixed || { echo started > started; sleep 30; }; echo migrate >> ran",
    );
    fs::write(dir.join("pipeline.stagecraft"), source).expect("write pipeline");
    let mut child = support::command(dir, &["deploy", "--env", "prod", "--version", "v2"])
        .env("STAGECRAFT_NOW", NOW)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn stagecraft");
    let started = dir.join("started");
    for _ in 0..500 {
        if started.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(started.exists(), "migrate never started");
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    assert_eq!(take_ran(dir), ["build-api-none", "build-web-none"]);
    // The next command that takes the lock recovers the release, naming
    // the `finally` phase that did not run; so does the record.
    fs::write(dir.join("fixed"), "").expect("fix migrate");
    let out = run(dir, &["resume", "--env", "prod", "--version", "v2", "--dry-run"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a dry run does not recover: the release is unfinished"
    );
    let out = run(dir, &["resume", "--env", "prod", "--version", "v2"]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("note: release rel-20261125-120000000 was interrupted: ")
            && text.contains("migrate marked failed (interrupted), 3 not-started instances skipped, `finally` phase not run: notify\n"),
        "{text}"
    );
    let shown = stdout(&run(dir, &["releases", "show", "rel-20261125-120000000"]));
    assert!(
        shown.contains("\n`finally` phases not run (the run was interrupted): notify\n"),
        "{shown}"
    );
    // The resume carried over both builds and ran the rest.
    assert_eq!(
        take_ran(dir),
        ["migrate", "rollout-api-v2", "rollout-web-v2", "notify-success"]
    );
    assert_eq!(newest(dir)["resumes"], "rel-20261125-120000000");
}

/// In a protected env, `resume` is confirmed as `deploy` is: without a
/// terminal it needs `--yes`, and refused it records nothing.
#[test]
fn resume_in_a_protected_env_needs_yes_and_takes_the_run_flags() {
    let temp = project();
    let dir = temp.path();
    let source = PIPELINE.replace("env prod {\n", "env prod {\n  protected\n");
    fs::write(dir.join("pipeline.stagecraft"), source).expect("write pipeline");
    let failed = failed_deploy(dir, "v2", &["--yes"]);
    fs::remove_file(dir.join("broken-web")).expect("fix web");
    take_ran(dir);
    let out = run(dir, &["resume", "--env", "prod", "--version", "v2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("error: `prod` is a protected env: confirming needs a terminal"),
        "{}",
        stderr(&out)
    );
    assert_eq!(newest(dir)["id"], Value::from(failed.clone()), "nothing recorded");
    let out = run(
        dir,
        &[
            "resume",
            "--env",
            "prod",
            "--version",
            "v2",
            "--yes",
            "--jobs",
            "2",
            "--keep-going",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(newest(dir)["resumes"], Value::from(failed));
    let mut ran = take_ran(dir);
    ran.sort();
    assert_eq!(ran, ["notify-success", "rollout-web-v2"]);
}
