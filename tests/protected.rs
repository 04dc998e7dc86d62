//! Protected envs: an executing command in one is confirmed by typing the
//! env's name on a terminal (a real pseudo-terminal here), or by `--yes`;
//! without either it is refused and nothing is recorded.

use std::io::{Read as _, Write as _};
use std::os::fd::{FromRawFd as _, OwnedFd};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::init::stagecraft;
use crate::support::{self, Test};

const FILE: &str = "pipeline.stagecraft";

const PIPELINE: &str = r#"pipeline shop

env dev {}
env prod extends dev {
  protected
}
env prod-eu extends prod {}

service api {}
service web {}

phase build {
  for each service
  run "echo build {{service}} {{version}}"
}
phase announce {
  after build
  when env == "dev"
  run "echo announce"
}

workflow build { build }
workflow deploy { build announce }
workflow rollback { build announce }
workflow smoke { build }
"#;

fn tempdir_with_pipeline() -> tempfile::TempDir {
    let temp = tempfile::Builder::new()
        .prefix("stagecraft-protected")
        .tempdir()
        .expect("tempdir");
    std::fs::write(temp.path().join(FILE), PIPELINE).expect("write");
    temp
}

/// The releases recorded so far, as `releases list --format json` sees them.
fn releases(dir: &Path) -> usize {
    let (status, stdout, stderr) = stagecraft(dir, &["releases", "list", "--format", "json"]);
    assert_eq!(status, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    json.as_array()
        .map_or_else(|| json["releases"].as_array().map_or(0, Vec::len), Vec::len)
}

#[test]
fn without_a_terminal_a_protected_env_needs_yes() {
    for (env, args) in [
        ("prod", vec!["deploy", "--env", "prod"]),
        ("prod-eu", vec!["deploy", "--env", "prod-eu"]),
        ("prod", vec!["build", "--env", "prod"]),
        ("prod", vec!["run", "smoke", "--env", "prod"]),
        ("prod", vec!["rollback", "--env", "prod", "--to-previous"]),
    ] {
        Test::new()
            .file(FILE, PIPELINE)
            .args(args)
            .status(1)
            .stdout("")
            .stderr(format!(
                "error: `{env}` is a protected env: confirming needs a terminal, and stdin is not one\n\
                 help: pass `--yes` to run without being asked (as in CI), or run it on a terminal\n"
            ))
            .run();
    }
    let temp = tempdir_with_pipeline();
    let (status, _, _) = stagecraft(temp.path(), &["deploy", "--env", "prod", "--version", "v1"]);
    assert_eq!(status, 1);
    assert!(!temp.path().join(".stagecraft").exists(), "nothing is written");
}

#[test]
fn yes_runs_in_a_protected_env_and_other_envs_never_ask() {
    let temp = tempdir_with_pipeline();
    let (status, stdout, stderr) = stagecraft(temp.path(), &["deploy", "--env", "prod", "--version", "v1", "--yes"]);
    assert_eq!(status, 0, "{stdout}{stderr}");
    assert!(stdout.contains("build[api] | build api v1"), "{stdout}");
    assert_eq!(
        stagecraft(temp.path(), &["deploy", "--env", "dev", "--version", "v1"]).0,
        0
    );
    assert_eq!(releases(temp.path()), 2);
}

#[test]
fn dry_runs_and_plans_never_ask() {
    Test::new()
        .file(FILE, PIPELINE)
        .args(["deploy", "--env", "prod", "--dry-run"])
        .stdout_contains("shop · workflow deploy · env prod")
        .run();
    Test::new()
        .file(FILE, PIPELINE)
        .args(["plan", "--env", "prod-eu"])
        .stdout_contains("env prod-eu")
        .run();
}

#[test]
fn protected_is_kept_by_fmt_and_a_variable_may_still_be_named_so() {
    let source = "pipeline p\n\nenv dev {\n  protected = \"no\"\n}\nenv prod   extends dev {protected}\n";
    Test::new().file(FILE, source).arg("fmt").arg("--check").status(1).run();
    let temp = tempfile::tempdir().expect("tempdir");
    std::fs::write(temp.path().join(FILE), source).expect("write");
    assert_eq!(stagecraft(temp.path(), &["fmt"]).0, 0);
    let formatted = std::fs::read_to_string(temp.path().join(FILE)).expect("read");
    assert_eq!(
        formatted,
        "pipeline p\n\nenv dev {\n  protected = \"no\"\n}\n\nenv prod extends dev {\n  protected\n}\n"
    );
    let (_, list, _) = stagecraft(temp.path(), &["list"]);
    assert!(list.contains("  dev\n  prod  extends dev · protected\n"), "{list}");
}

// ---- on a terminal ---------------------------------------------------------

/// A pseudo-terminal: (controller, terminal).
fn pty() -> (OwnedFd, OwnedFd) {
    let (mut controller, mut terminal) = (-1, -1);
    // SAFETY: openpty writes two new descriptors into the integers given;
    // the null pointers ask for no name and default settings.
    let rc = unsafe {
        libc::openpty(
            &raw mut controller,
            &raw mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened, and nothing else owns them.
    unsafe { (OwnedFd::from_raw_fd(controller), OwnedFd::from_raw_fd(terminal)) }
}

/// Runs stagecraft with stdin, stdout and stderr on a terminal; once it has
/// printed `prompt`, types `answer` and a line break. Returns everything
/// the terminal showed, and the exit code.
fn on_a_terminal(dir: &Path, args: &[&str], prompt: &str, answer: &str) -> (String, i32) {
    let (controller, terminal) = pty();
    let mut command = support::command(dir, args);
    command
        .env("STAGECRAFT_USER", "ada@laptop")
        .stdin(Stdio::from(terminal.try_clone().expect("dup")))
        .stdout(Stdio::from(terminal.try_clone().expect("dup")))
        .stderr(Stdio::from(terminal));
    let mut child = command.spawn().expect("spawn stagecraft");
    // The command holds the only copies of the terminal now: reading the
    // controller ends (EIO) once it exits.
    drop(command);
    // A run that never ends (it waits for an answer that never comes) is
    // killed, so that the test fails instead of hanging.
    let (done, watch) = std::sync::mpsc::channel::<()>();
    let pid = i32::try_from(child.id()).expect("pid");
    let watchdog = std::thread::spawn(move || {
        if watch.recv_timeout(Duration::from_secs(60)).is_err() {
            // SAFETY: a plain kill(2) of the child, not yet waited for.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let mut controller = std::fs::File::from(controller);
    let mut shown = Vec::new();
    let mut buffer = [0; 4096];
    let mut answered = false;
    loop {
        match controller.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => shown.extend_from_slice(&buffer[..n]),
        }
        if !answered && String::from_utf8_lossy(&shown).contains(prompt) {
            controller
                .write_all(format!("{answer}\n").as_bytes())
                .expect("type the answer");
            answered = true;
        }
    }
    let status = child.wait().expect("wait").code().unwrap_or(-1);
    let _ = done.send(());
    watchdog.join().expect("the watchdog ends");
    (String::from_utf8_lossy(&shown).replace("\r\n", "\n"), status)
}

const PROMPT: &str = "to go on: ";

#[test]
fn on_a_terminal_typing_the_env_name_runs() {
    let temp = tempdir_with_pipeline();
    let (shown, status) = on_a_terminal(
        temp.path(),
        &["deploy", "--env", "prod", "--version", "v1"],
        PROMPT,
        "prod",
    );
    assert_eq!(status, 0, "{shown}");
    assert!(
        shown.contains(
            "`prod` is a protected env: shop · workflow deploy · version v1\n\
             \x20 runs     build[api], build[web] (2 instances)\n\
             \x20 skips    announce (condition)\n\
             \x20 versions api v1, web v1\n\
             type the env's name (`prod`) to go on: prod\n"
        ),
        "{shown}"
    );
    assert!(shown.contains("build[api] | build api v1"), "{shown}");
    assert_eq!(releases(temp.path()), 1);
}

#[test]
fn on_a_terminal_a_wrong_answer_aborts_and_records_nothing() {
    let temp = tempdir_with_pipeline();
    let (shown, status) = on_a_terminal(
        temp.path(),
        &["deploy", "--env", "prod-eu", "--version", "v1"],
        PROMPT,
        "prod",
    );
    assert_eq!(status, 1, "{shown}");
    assert!(shown.contains("`prod-eu` is a protected env"), "inherited:\n{shown}");
    assert!(
        shown.contains("error: not confirmed: nothing ran in `prod-eu` and nothing was recorded\n"),
        "{shown}"
    );
    assert!(!shown.contains("build[api] |"), "{shown}");
    assert_eq!(releases(temp.path()), 0);
}

#[test]
fn on_a_terminal_a_rollback_shows_its_target_before_asking() {
    let temp = tempdir_with_pipeline();
    for version in ["v1", "v2"] {
        let (status, _, stderr) = stagecraft(temp.path(), &["deploy", "--env", "prod", "--version", version, "--yes"]);
        assert_eq!(status, 0, "{stderr}");
    }
    let (shown, status) = on_a_terminal(
        temp.path(),
        &["rollback", "--env", "prod", "--to-previous"],
        PROMPT,
        "prod",
    );
    assert_eq!(status, 0, "{shown}");
    let target = shown.find("rolling back prod to rel-").expect("the target is shown");
    let prompt = shown.find(PROMPT).expect("asked");
    assert!(target < prompt, "{shown}");
    assert!(shown.contains("  api  v2 -> v1\n"), "{shown}");
    assert!(shown.contains("  versions api v1, web v1\n"), "{shown}");
    assert_eq!(releases(temp.path()), 3);
}

#[test]
fn on_a_terminal_a_dry_run_never_asks() {
    let temp = tempdir_with_pipeline();
    let (shown, status) = on_a_terminal(temp.path(), &["deploy", "--env", "prod", "--dry-run"], PROMPT, "prod");
    assert_eq!(status, 0, "{shown}");
    assert!(!shown.contains(PROMPT), "{shown}");
    assert!(shown.contains("shop · workflow deploy · env prod"), "{shown}");
}

#[test]
fn on_a_terminal_a_large_plan_is_summarised() {
    let temp = tempfile::Builder::new()
        .prefix("stagecraft-protected")
        .tempdir()
        .expect("tempdir");
    let services = (1..=25)
        .map(|n| format!("service s{n:02} {{}}"))
        .collect::<Vec<_>>()
        .join("\n");
    let source = format!(
        "pipeline big\nenv prod {{\n  protected\n}}\n{services}\n\
         phase build {{\n  for each service\n  run \"true\"\n}}\nworkflow deploy {{ build }}\n"
    );
    std::fs::write(temp.path().join(FILE), source).expect("write");
    let (shown, status) = on_a_terminal(
        temp.path(),
        &["deploy", "--env", "prod", "--version", "v1"],
        PROMPT,
        "no",
    );
    assert_eq!(status, 1, "{shown}");
    assert!(
        shown.contains("build[s19], build[s20] and 5 more (25 instances)\n"),
        "{shown}"
    );
    assert!(shown.contains("s19 v1, s20 v1 and 5 more\n"), "{shown}");
}
