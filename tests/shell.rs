//! How commands run, through the binary: errexit (a script stops at its
//! first failing line), `pipefail` where `/bin/sh` has it, and the
//! environment a phase sees.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::support::BIN;

/// Runs the binary in `dir` with `args`, with `STAGECRAFT_STATE_DIR` as
/// given (removed when `None`); returns the exit code, stdout and stderr.
fn stagecraft(dir: &Path, args: &[&str], state_dir: Option<&Path>) -> (i32, String, String) {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("STAGECRAFT_NOW")
        .env_remove("STAGECRAFT_STATE_DIR")
        .stdin(Stdio::null());
    if let Some(state_dir) = state_dir {
        command.env("STAGECRAFT_STATE_DIR", state_dir);
    }
    let output = command.output().expect("run stagecraft");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A temp directory holding `pipeline.stagecraft` with `source`.
fn project(source: &str) -> TempDir {
    let dir = TempDir::new().expect("temp dir");
    fs::write(dir.path().join("pipeline.stagecraft"), source).expect("write pipeline");
    dir
}

/// Whether `/bin/sh` accepts `-o pipefail`, asked as the runner asks.
fn sh_has_pipefail() -> bool {
    Command::new("/bin/sh")
        .args(["-o", "pipefail", "-c", ":"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[test]
fn a_multi_line_script_stops_at_its_first_failing_line() {
    let dir = project(
        r#"pipeline p
env dev {}
phase deploy {
  run """
    echo checking
    test "{{version}}" != bad
    touch deployed
  """
}
workflow deploy { deploy }
"#,
    );
    let (status, stdout, stderr) = stagecraft(dir.path(), &["deploy", "--env", "dev", "--version", "bad"], None);
    assert_eq!(status, 3, "{stdout}{stderr}");
    assert!(stdout.contains("deploy | checking"), "{stdout}");
    assert!(stderr.contains("deploy failed (exit code 1)"), "{stderr}");
    assert!(
        !dir.path().join("deployed").exists(),
        "the line after the failing one ran"
    );
    // A good version runs every line.
    let (status, _, stderr) = stagecraft(dir.path(), &["deploy", "--env", "dev", "--version", "good"], None);
    assert_eq!(status, 0, "{stderr}");
    assert!(dir.path().join("deployed").exists());
}

#[test]
fn a_single_line_list_stops_at_its_first_failing_command() {
    let dir = project(
        r#"pipeline p
env dev {}
phase deploy { run "echo one; exit 4; touch deployed" }
phase stop { run "false; touch stopped" }
workflow deploy { deploy }
workflow stop { stop }
"#,
    );
    let (status, _, stderr) = stagecraft(dir.path(), &["deploy", "--env", "dev", "--version", "v"], None);
    assert_eq!(status, 3);
    assert!(stderr.contains("deploy failed (exit code 4)"), "{stderr}");
    let (status, _, stderr) = stagecraft(dir.path(), &["run", "stop", "--env", "dev", "--version", "v"], None);
    assert_eq!(status, 3);
    assert!(stderr.contains("stop failed (exit code 1)"), "{stderr}");
    assert!(!dir.path().join("deployed").exists());
    assert!(!dir.path().join("stopped").exists());
}

#[test]
fn a_failing_command_in_a_condition_or_an_or_list_does_not_stop_the_script() {
    // errexit as POSIX defines it: `if`, `||` and `!` take failures.
    let dir = project(
        r#"pipeline p
env dev {}
phase deploy {
  run """
    if false; then echo never; fi
    false || echo recovered
    ! true
    touch deployed
  """
}
workflow deploy { deploy }
"#,
    );
    let (status, stdout, stderr) = stagecraft(dir.path(), &["deploy", "--env", "dev", "--version", "v"], None);
    assert_eq!(status, 0, "{stdout}{stderr}");
    assert!(stdout.contains("deploy | recovered"), "{stdout}");
    assert!(dir.path().join("deployed").exists());
}

#[test]
fn a_pipeline_fails_with_its_last_command_or_any_under_pipefail() {
    let dir = project(
        r#"pipeline p
env dev {}
phase deploy {
  run """
    false | true
    touch after
  """
}
workflow deploy { deploy }
"#,
    );
    let (status, stdout, stderr) = stagecraft(dir.path(), &["deploy", "--env", "dev", "--version", "v"], None);
    if sh_has_pipefail() {
        assert_eq!(status, 3, "{stdout}{stderr}");
        assert!(stderr.contains("deploy failed (exit code 1)"), "{stderr}");
        assert!(!dir.path().join("after").exists());
    } else {
        assert_eq!(status, 0, "{stdout}{stderr}");
        assert!(dir.path().join("after").exists());
    }
}

#[test]
fn the_runner_asks_the_shell_whether_it_has_pipefail() {
    assert_eq!(stagecraft::engine::ShellRunner::default().pipefail(), sh_has_pipefail());
}

#[test]
fn a_shell_with_pipefail_fails_a_pipeline_whose_first_command_fails() {
    use stagecraft::engine::{Cancel, Job, Outcome, Runner, ShellRunner};
    let bash = Path::new("/bin/bash");
    if !bash.exists() {
        return;
    }
    let mut runner = ShellRunner::default();
    runner.shell = bash.to_path_buf();
    assert!(runner.pipefail());
    let dir = TempDir::new().expect("temp dir");
    let cancel = Cancel::new();
    let job = |command| Job {
        instance: 0,
        id: "deploy",
        attempt: 1,
        command,
        dir: dir.path(),
        env: "dev",
        version: "v",
        release: "rel-1",
        phase: "deploy",
        service: None,
        workflow: "deploy",
        pipeline: "p",
        timeout: None,
        outcome: None,
        cancel: &cancel,
    };
    let mut lines = Vec::new();
    let mut output = |line: &str| lines.push(line.to_owned());
    assert_eq!(
        runner.run(&job("false | true; echo after"), &mut output),
        Outcome::Exited(1)
    );
    assert_eq!(runner.run(&job("true | false | true"), &mut output), Outcome::Exited(1));
    assert_eq!(
        runner.run(&job("false | true || echo caught"), &mut output),
        Outcome::Exited(0)
    );
    assert_eq!(lines, ["caught"]);
}

#[test]
fn a_phase_sees_the_workflow_the_pipeline_and_the_attempt() {
    let dir = project(
        r#"pipeline shop
env dev {}
phase flaky {
  run """
    echo "w=$STAGECRAFT_WORKFLOW p=$STAGECRAFT_PIPELINE a=$STAGECRAFT_ATTEMPT s=${STAGECRAFT_STATE_DIR-unset}"
    test "$STAGECRAFT_ATTEMPT" = 2
  """
  retry 1
}
workflow deploy { flaky }
"#,
    );
    let state = TempDir::new().expect("temp dir");
    let (status, stdout, stderr) = stagecraft(
        dir.path(),
        &["deploy", "--env", "dev", "--version", "v"],
        Some(state.path()),
    );
    assert_eq!(status, 0, "{stdout}{stderr}");
    assert!(stdout.contains("flaky | w=deploy p=shop a=1 s=unset"), "{stdout}");
    assert!(stdout.contains("flaky | w=deploy p=shop a=2 s=unset"), "{stdout}");
}

#[test]
fn a_phase_that_runs_stagecraft_for_another_pipeline_uses_that_pipelines_state() {
    let dir = TempDir::new().expect("temp dir");
    let inner = dir.path().join("inner");
    fs::create_dir(&inner).expect("inner dir");
    fs::write(
        inner.join("pipeline.stagecraft"),
        "pipeline inner\nenv dev {}\nphase hello { run \"echo inner ran\" }\nworkflow deploy { hello }\n",
    )
    .expect("write inner pipeline");
    fs::write(
        dir.path().join("pipeline.stagecraft"),
        format!(
            "pipeline outer\nenv dev {{}}\nphase nested {{ run \"{BIN} deploy --env dev --version v2 -f inner/pipeline.stagecraft\" }}\nworkflow deploy {{ nested }}\n"
        ),
    )
    .expect("write outer pipeline");
    let state = TempDir::new().expect("temp dir");
    let (status, stdout, stderr) = stagecraft(
        dir.path(),
        &["deploy", "--env", "dev", "--version", "v1"],
        Some(state.path()),
    );
    assert_eq!(status, 0, "{stdout}{stderr}");
    assert!(stdout.contains("inner ran"), "{stdout}");
    // The inner run wrote beside its own file, the outer one where it was told.
    let inner_state = inner.join(".stagecraft");
    assert!(inner_state.is_dir(), "no state beside the inner pipeline");
    assert!(!dir.path().join(".stagecraft").exists());
    let (_, inner_list, _) = stagecraft(&inner, &["releases", "list", "--format", "json"], None);
    let (_, outer_list, _) = stagecraft(
        dir.path(),
        &["releases", "list", "--format", "json"],
        Some(state.path()),
    );
    let versions = |list: &str| -> Vec<String> {
        let list: serde_json::Value = serde_json::from_str(list).expect("json");
        list.as_array()
            .expect("an array")
            .iter()
            .map(|release| release["version"].as_str().expect("a version").to_owned())
            .collect()
    };
    assert_eq!(versions(&inner_list), ["v2"]);
    assert_eq!(versions(&outer_list), ["v1"]);
}

#[test]
fn a_run_that_sets_a_built_in_is_refused_before_anything_runs() {
    let dir = project(
        "pipeline p\nenv dev {}\nenv prod {}\nphase a { run \"touch ran-{{env}}\" }\nworkflow deploy { a }\nworkflow build { a }\n",
    );
    for (command, set, message) in [
        (
            "deploy",
            "env=prod",
            "error: `--set env` cannot set the built-in `env`: use `--env`\n",
        ),
        (
            "deploy",
            "version=fake9",
            "error: `--set version` cannot set the built-in `version`: use `--version`\n",
        ),
        (
            "build",
            "push=true",
            "error: `--set push` cannot set the built-in `push`: use `build --push` (`deploy` always pushes)\n",
        ),
    ] {
        let (status, _, stderr) = stagecraft(
            dir.path(),
            &[command, "--env", "dev", "--version", "real1", "--set", set],
            None,
        );
        assert_eq!((status, stderr.as_str()), (1, message), "{command} --set {set}");
    }
    let (status, _, stderr) = stagecraft(
        dir.path(),
        &["deploy", "--env", "dev", "--set", "env=prod", "--dry-run"],
        None,
    );
    assert_eq!(status, 1, "{stderr}");
    assert!(!dir.path().join("ran-prod").exists() && !dir.path().join("ran-dev").exists());
    assert!(!dir.path().join(".stagecraft").exists(), "state was written");
}
