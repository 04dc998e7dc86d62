//! Releases end to end, through the binary: the README's story on the
//! static-site example (deploy v1, a deploy of v2 that fails, rollback to v1,
//! the history), dry runs, the lock, recovery after SIGKILL, Ctrl-C, and the
//! execution policies on real commands.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::support::BIN;

/// A pipeline in a directory of its own, run with a fixed clock.
struct Project {
    dir: TempDir,
}

/// How a run ended.
struct Run {
    stdout: String,
    stderr: String,
    status: i32,
}

impl Project {
    /// A copy of `pipelines/<name>`.
    fn example(name: &str) -> Self {
        let dir = TempDir::new().expect("temp dir");
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines").join(name),
            dir.path(),
        );
        Self { dir }
    }

    /// A directory holding `pipeline.stagecraft` with `source`.
    fn with(source: &str) -> Self {
        let dir = TempDir::new().expect("temp dir");
        fs::write(dir.path().join("pipeline.stagecraft"), source).expect("write pipeline");
        Self { dir }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env("STAGECRAFT_NOW", "2026-11-25T12:00:00.000Z")
            .env("STAGECRAFT_USER", "ada@ci")
            .env_remove("STAGECRAFT_STATE_DIR")
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Run {
        let output = self.command(args).output().expect("run stagecraft");
        Run {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            status: output.status.code().unwrap_or(-1),
        }
    }

    /// Starts a run in the background, its stderr piped.
    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn stagecraft")
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let run = self.run(args);
        assert_eq!(run.status, 0, "{args:?}: {}", run.stderr);
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{args:?} is not JSON ({e}): {}", run.stdout))
    }
}

/// Copies an example, without what running it leaves behind (the README's
/// first command deploys it in place; its outputs are git-ignored).
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create dir");
    for entry in fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        if matches!(entry.file_name().to_str(), Some(".stagecraft" | "build" | "dist")) {
            continue;
        }
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// Reads `child`'s stderr until a line contains `needle` (or it ends).
fn wait_for_line(child: &mut Child, needle: &str) {
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match lines.next() {
            Some(Ok(line)) if line.contains(needle) => {
                // Keep draining so the child never blocks on a full pipe.
                std::thread::spawn(move || lines.for_each(drop));
                return;
            }
            Some(_) => {}
            None => panic!("the run ended before printing {needle:?}"),
        }
    }
    panic!("no {needle:?} within 30 s");
}

fn statuses(release: &serde_json::Value) -> Vec<(String, String, String)> {
    release["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .map(|phase| {
            (
                phase["id"].as_str().unwrap_or_default().to_owned(),
                phase["status"].as_str().unwrap_or_default().to_owned(),
                phase["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_readme_story_deploy_fail_roll_back_and_read_the_history() {
    let project = Project::example("static-site");
    let deploy = project.run(&["deploy", "--env", "dev", "--version", "v1"]);
    assert_eq!(deploy.status, 0, "{}", deploy.stderr);
    assert!(
        deploy.stdout.contains("healthcheck[web] | healthcheck:"),
        "{}",
        deploy.stdout
    );
    let current = project.path(".stagecraft/deployments/dev/web/current/index.html");
    assert!(
        fs::read_to_string(&current)
            .expect("deployed page")
            .contains("content=\"v1\"")
    );

    // v2 hard-codes a wrong version in the page: the build passes, the
    // health check fails three times (retry 2) and the run fails.
    let page = project.path("site/web/index.html");
    let good = fs::read_to_string(&page).expect("page");
    fs::write(&page, good.replace("content=\"{{VERSION}}\"", "content=\"v0\"")).expect("break the page");
    let broken = project.run(&["deploy", "--env", "dev", "--version", "v2"]);
    assert_eq!(broken.status, 3, "{}", broken.stderr);
    assert!(
        broken
            .stderr
            .contains("`healthcheck[web]` failed first: it exited with code 1 after 3 attempts"),
        "{}",
        broken.stderr
    );
    assert!(broken.stderr.contains("log: "), "{}", broken.stderr);
    assert!(
        broken
            .stderr
            .contains("skipped because of it: healthcheck[docs], announce, finalize"),
        "{}",
        broken.stderr
    );
    fs::write(&page, good).expect("restore the page");

    let rollback = project.run(&["rollback", "--env", "dev", "--to-previous"]);
    assert_eq!(rollback.status, 0, "{}", rollback.stderr);
    assert!(
        fs::read_to_string(&current)
            .expect("deployed page")
            .contains("content=\"v1\"")
    );

    let list = project.json(&["releases", "list", "--format", "json"]);
    insta::assert_json_snapshot!("readme_story_releases", list);
    let ids: Vec<String> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let shown: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| project.json(&["releases", "show", id, "--format", "json"]))
        .collect();
    insta::assert_json_snapshot!("readme_story_failed_release", shown[1]);
    insta::assert_json_snapshot!("readme_story_rollback_release", shown[0]);
    let text = project.run(&["releases", "list"]);
    insta::assert_snapshot!("readme_story_releases_text", text.stdout);
}

#[test]
fn a_dry_run_prints_the_plan_and_writes_nothing() {
    let project = Project::example("static-site");
    let run = project.run(&["deploy", "--env", "dev", "--version", "v1", "--dry-run"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("static-site · workflow deploy · env dev · version v1"),
        "{}",
        run.stdout
    );
    assert!(!project.path(".stagecraft").exists());
    assert!(!project.path("dist").exists());
    let rollback = project.run(&["rollback", "--env", "dev", "--to-previous", "--dry-run"]);
    assert_eq!(rollback.status, 1, "no release to roll back to: {}", rollback.stderr);
    assert!(!project.path(".stagecraft").exists());
}

const SLOW: &str = r#"pipeline slow
env dev {
}
phase first {
  run "echo first"
}
phase slow {
  after first
  run "sleep 3"
}
phase last {
  after slow
  run "echo last"
}
workflow deploy { first slow last }
"#;

#[test]
fn a_second_run_is_refused_while_the_first_holds_the_lock() {
    let project = Project::with(SLOW);
    let mut first = project.spawn(&["deploy", "--env", "dev"]);
    wait_for_line(&mut first, "▶ slow");
    let second = project.run(&["deploy", "--env", "dev"]);
    assert_eq!(second.status, 4, "{}", second.stderr);
    assert!(
        second.stderr.contains(&format!("pid {}", first.id())),
        "{}",
        second.stderr
    );
    assert!(second.stderr.contains("deploy"), "{}", second.stderr);
    assert_eq!(first.wait().expect("first run").code(), Some(0));
    // Free again: with --wait it would also have gone through.
    assert_eq!(project.run(&["deploy", "--env", "dev", "--wait=10s"]).status, 0);
}

#[test]
fn a_signal_while_waiting_for_the_lock_exits_130_and_records_nothing() {
    let project = Project::with(SLOW);
    let mut first = project.spawn(&["deploy", "--env", "dev"]);
    wait_for_line(&mut first, "▶ slow");
    let waiting = project
        .command(&["deploy", "--env", "dev", "--wait"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn stagecraft");
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: sending a signal to a child we own.
    unsafe {
        libc::kill(i32::try_from(waiting.id()).expect("pid"), libc::SIGTERM);
    }
    let output = waiting.wait_with_output().expect("waiting run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted before anything ran"), "{stderr}");
    assert_eq!(first.wait().expect("first run").code(), Some(0));
    let list = project.json(&["releases", "list", "--format", "json"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "only the first run is recorded");
}

#[test]
fn a_run_killed_with_sigkill_is_recovered_by_the_next_command() {
    let project = Project::with(SLOW);
    let mut run = project.spawn(&["deploy", "--env", "dev"]);
    wait_for_line(&mut run, "▶ slow");
    run.kill().expect("SIGKILL");
    run.wait().expect("reap");
    // A reader repairs nothing (it never locks nor writes): the release
    // reads as running until the next run of its env.
    let list = project.run(&["releases", "list", "--format", "json"]);
    assert_eq!(list.status, 0, "{}", list.stderr);
    assert!(!list.stderr.contains("interrupted"), "{}", list.stderr);
    let releases: serde_json::Value = serde_json::from_str(&list.stdout).expect("json");
    assert_eq!(releases[0]["status"], "running");
    // Its command, if it had started, is stopped first (tests/orphans.rs).
    let next = project.run(&["deploy", "--env", "dev"]);
    assert_eq!(next.status, 0, "{}", next.stderr);
    assert!(
        next.stderr
            .contains("slow marked failed (interrupted), 1 not-started instance skipped"),
        "{}",
        next.stderr
    );
    let list = project.run(&["releases", "list", "--format", "json"]);
    let releases: serde_json::Value = serde_json::from_str(&list.stdout).expect("json");
    assert_eq!(releases[1]["status"], "failed");
    let id = releases[1]["id"].as_str().expect("id").to_owned();
    let shown = project.json(&["releases", "show", &id, "--format", "json"]);
    assert_eq!(
        statuses(&shown),
        [
            ("first".into(), "completed".into(), String::new()),
            ("slow".into(), "failed".into(), "interrupted".into()),
            ("last".into(), "skipped".into(), "interrupted".into()),
        ]
    );
    // The zeros written ahead of the killed run's log are gone, its lines
    // intact.
    let log = fs::read(project.path(&format!(".stagecraft/pipelines/slow/releases/{id}.ron"))).expect("log");
    assert!(!log.contains(&0), "zeros left in the log");
    assert!(log.ends_with(b"\n"));
}

#[test]
fn ctrl_c_stops_the_command_records_it_and_exits_130() {
    let project = Project::with(SLOW);
    let mut run = project.spawn(&["deploy", "--env", "dev"]);
    wait_for_line(&mut run, "▶ slow");
    let started = Instant::now();
    // SAFETY: sending a signal to a child we own.
    unsafe {
        libc::kill(i32::try_from(run.id()).expect("pid"), libc::SIGINT);
    }
    let status = run.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    assert!(started.elapsed() < Duration::from_secs(2), "the sleep was not killed");
    let releases = project.json(&["releases", "list", "--format", "json"]);
    let id = releases[0]["id"].as_str().expect("id").to_owned();
    let shown = project.json(&["releases", "show", &id, "--format", "json"]);
    assert_eq!(
        statuses(&shown)[1],
        ("slow".into(), "failed".into(), "interrupted".into())
    );
    assert_eq!(
        statuses(&shown)[2],
        ("last".into(), "skipped".into(), "interrupted".into())
    );
}

const POLICIES: &str = r#"pipeline policies
env dev {
}
env prod {
}
phase flaky {
  run "n=$(cat count 2>/dev/null || echo 0); echo $((n + 1)) > count; [ $n -ge 2 ]"
  retry 3 backoff 10ms
}
phase hang {
  run "sleep 5"
  timeout 200ms
}
phase prod_only {
  when env == "prod"
  run "echo prod"
}
phase after_prod_only {
  after prod_only
  run "echo after"
}
phase after_hang {
  after hang
  run "echo never"
}
phase independent {
  after flaky
  run "echo independent"
}
workflow deploy { flaky hang prod_only after_prod_only after_hang independent }
"#;

#[test]
fn retry_timeout_conditions_and_keep_going_on_real_commands() {
    let project = Project::with(POLICIES);
    let run = project.run(&["deploy", "--env", "dev", "--keep-going"]);
    assert_eq!(run.status, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("`hang` failed first: it timed out"),
        "{}",
        run.stderr
    );
    let releases = project.json(&["releases", "list", "--format", "json"]);
    let id = releases[0]["id"].as_str().expect("id").to_owned();
    let shown = project.json(&["releases", "show", &id, "--format", "json"]);
    assert_eq!(
        statuses(&shown),
        [
            ("flaky".into(), "completed".into(), String::new()),
            ("hang".into(), "failed".into(), "timeout".into()),
            ("prod_only".into(), "skipped".into(), "condition".into()),
            ("after_prod_only".into(), "completed".into(), String::new()),
            ("after_hang".into(), "skipped".into(), "hang failed".into()),
            ("independent".into(), "completed".into(), String::new()),
        ]
    );
    assert_eq!(shown["phases"][0]["attempts"], 3, "two failed attempts, then success");
}

#[test]
fn jobs_give_the_same_final_state() {
    let wide: String = {
        let mut source = String::from("pipeline wide\nenv dev {\n}\nphase start {\n  run \"true\"\n}\n");
        for i in 0..8 {
            let _ = write!(
                source,
                "phase w{i} {{\n  after start\n  run \"sleep 0.2; echo {i}\"\n}}\n"
            );
        }
        source.push_str("phase join {\n  after w0, w1, w2, w3, w4, w5, w6, w7\n}\n");
        source.push_str("workflow deploy { start w0 w1 w2 w3 w4 w5 w6 w7 join }\n");
        source
    };
    let mut finals = Vec::new();
    for jobs in ["1", "4"] {
        let project = Project::with(&wide);
        let started = Instant::now();
        let run = project.run(&["deploy", "--env", "dev", "--jobs", jobs]);
        assert_eq!(run.status, 0, "{}", run.stderr);
        // Output stays grouped per instance: each `wN | N` line is whole.
        for i in 0..8 {
            assert!(run.stdout.contains(&format!("w{i} | {i}\n")), "{}", run.stdout);
        }
        let elapsed = started.elapsed();
        let releases = project.json(&["releases", "list", "--format", "json"]);
        let id = releases[0]["id"].as_str().expect("id").to_owned();
        finals.push((
            statuses(&project.json(&["releases", "show", &id, "--format", "json"])),
            elapsed,
        ));
    }
    assert_eq!(finals[0].0, finals[1].0);
    assert!(finals[1].1 < finals[0].1, "--jobs 4 ran the sleeps at once: {finals:?}");
}

#[test]
fn user_errors_exit_1_and_touch_no_state() {
    let project = Project::example("static-site");
    let run = project.run(&["deploy", "--env", "qa"]);
    assert_eq!(run.status, 1);
    assert!(run.stderr.contains("invalid environment: qa"), "{}", run.stderr);
    let run = project.run(&["deploy", "--env", "dev", "--services", "api"]);
    assert_eq!(run.status, 1);
    assert!(run.stderr.contains("unknown service: api"), "{}", run.stderr);
    let run = project.run(&["rollback", "--env", "dev"]);
    assert_eq!(run.status, 1, "a rollback needs a target: {}", run.stderr);
    let run = project.run(&["rollback", "--env", "dev", "--to-previous", "--to-version", "v1"]);
    assert_eq!(run.status, 1, "exactly one target: {}", run.stderr);
    assert!(!project.path(".stagecraft").exists());
    let run = project.run(&["run", "nope", "--env", "dev"]);
    assert_eq!(run.status, 1);
    assert!(run.stderr.contains("unknown workflow: nope"), "{}", run.stderr);
    // `run` would bypass what `deploy` and `rollback` check.
    let run = project.run(&["run", "rollback", "--env", "dev"]);
    assert_eq!(run.status, 1);
    assert!(run.stderr.contains("use `stagecraft rollback`"), "{}", run.stderr);
}

#[test]
fn rollback_refuses_targets_that_are_not_completed_releases_of_the_env() {
    let project = Project::with(
        "pipeline r\nenv dev {\n}\nenv prod {\n}\nenv staging {\n}\nphase a {\n  run \"test {{version}} != bad\"\n}\nworkflow deploy { a }\nworkflow rollback { a }\n",
    );
    assert_eq!(project.run(&["deploy", "--env", "dev", "--version", "good"]).status, 0);
    assert_eq!(project.run(&["deploy", "--env", "dev", "--version", "bad"]).status, 3);
    assert_eq!(project.run(&["deploy", "--env", "prod", "--version", "good"]).status, 0);
    let releases = project.json(&["releases", "list", "--format", "json"]);
    let id = |n: usize| releases[n]["id"].as_str().expect("id").to_owned();
    let (prod, bad) = (id(0), id(1));
    let run = project.run(&["rollback", "--env", "dev", "--to-release", &bad]);
    assert_eq!(run.status, 1);
    assert!(run.stderr.contains(&format!("release {bad}")), "{}", run.stderr);
    let run = project.run(&["rollback", "--env", "dev", "--to-release", &prod]);
    assert_eq!(run.status, 1);
    assert!(
        run.stderr
            .contains(&format!("release {prod} is a release of `prod`, not `dev`")),
        "{}",
        run.stderr
    );
    let run = project.run(&["rollback", "--env", "prod", "--to-release", &prod]);
    assert_eq!(run.status, 1);
    assert!(run.stderr.contains("already the current release"), "{}", run.stderr);
    let run = project.run(&["rollback", "--env", "staging", "--to-release", &prod]);
    assert_eq!(run.status, 1);
    assert!(
        run.stderr
            .contains(&format!("release {prod} is a release of `prod`, not `staging`")),
        "{}",
        run.stderr
    );
    let run = project.run(&["rollback", "--env", "dev", "--to-version", "good"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
}

#[test]
fn corrupt_state_is_exit_4_naming_the_file_and_nothing_is_overwritten() {
    let project = Project::with(SLOW.replace("sleep 3", "true").as_str());
    assert_eq!(project.run(&["deploy", "--env", "dev"]).status, 0);
    let index = project.path(".stagecraft/pipelines/slow/envs/dev/index.ron");
    let mut text = fs::read_to_string(&index).expect("index");
    // Damage a complete line among the newest (a run reads the index from
    // its end, as far as it needs): not a torn last line.
    let last_line = text[..text.len() - 1].rfind('\n').expect("a line");
    text.insert_str(last_line + 1, "this is not RON\n");
    fs::write(&index, &text).expect("corrupt the index");
    for args in [&["releases", "list"][..], &["deploy", "--env", "dev"][..]] {
        let run = project.run(args);
        assert_eq!(run.status, 4, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("index.ron"), "{args:?}: {}", run.stderr);
    }
    assert_eq!(
        fs::read_to_string(&index).expect("index"),
        text,
        "the corrupt file is left as it was"
    );
}
