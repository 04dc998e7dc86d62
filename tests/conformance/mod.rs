//! The conformance suite: every test here runs the real binary once per
//! state backend (a state directory, `--state file:.stagecraft`, and a
//! PostgreSQL database of its own, `--state postgres://…`), checks each, and
//! checks that both printed the same thing (the clock is fixed, so release
//! ids and times are the same on both).
//!
//! The PostgreSQL side needs `STAGECRAFT_TEST_POSTGRES` (see
//! `support::postgres`): without it, outside CI, it is skipped with a
//! message and only the file side runs.

mod copy;
mod failure;
mod history;
mod interface;
mod locks;
mod server_gone;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::support::{self, postgres::Scratch};

/// A fixed clock: ids and times are the same on both backends.
const NOW: &str = "2026-11-25T17:02:29.123Z";

/// Two services, a global phase; `rollout` fails for the version `bad`.
pub(crate) const PIPELINE: &str = r#"pipeline shop
env dev {}
env prod {}
service api {}
service web {}
phase build {
  for each service
  run "echo build {{service}} {{version}}"
}
phase rollout {
  for each service
  after build
  run "test {{version}} != bad"
}
phase finalize {
  after rollout
  run "echo done {{env}}"
}
workflow deploy { build rollout finalize }
workflow rollback { rollout finalize }
"#;

/// One backend, with a project directory of its own.
pub(crate) struct Side {
    /// `file` or `postgres`.
    pub(crate) name: &'static str,
    /// The `--state` URL.
    pub(crate) url: String,
    pub(crate) dir: TempDir,
    pub(crate) scratch: Option<Scratch>,
}

/// What one command printed and how it ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) status: i32,
}

impl Side {
    /// The project directory.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The binary with `args` and this side's `--state`, the clock fixed.
    pub(crate) fn command(&self, args: &[&str]) -> std::process::Command {
        self.command_on(&self.url, args)
    }

    /// The binary with `args` on the state at `url`, the clock fixed.
    pub(crate) fn command_on(&self, url: &str, args: &[&str]) -> std::process::Command {
        let mut command = support::command(self.path(), args);
        command
            .args(["--state", url])
            .env("STAGECRAFT_NOW", NOW)
            .env("STAGECRAFT_USER", "ci@runner");
        command
    }

    /// Runs `args` to the end.
    pub(crate) fn run(&self, args: &[&str]) -> Run {
        self.run_on(&self.url, args)
    }

    /// Runs `args` on the state at `url` to the end.
    pub(crate) fn run_on(&self, url: &str, args: &[&str]) -> Run {
        let output = self.command_on(url, args).output().expect("run stagecraft");
        Run {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            status: output.status.code().unwrap_or(-1),
        }
    }

    /// Runs `args`, which must exit with `status`.
    pub(crate) fn expect(&self, args: &[&str], status: i32) -> Run {
        self.expect_on(&self.url, args, status)
    }

    /// Runs `args` on the state at `url`, which must exit with `status`.
    pub(crate) fn expect_on(&self, url: &str, args: &[&str], status: i32) -> Run {
        let run = self.run_on(url, args);
        assert_eq!(
            run.status,
            status,
            "{} backend: `{}` exited {}\nstdout:\n{}\nstderr:\n{}",
            self.name,
            args.join(" "),
            run.status,
            run.stdout,
            run.stderr
        );
        run
    }

    /// Starts `args` in the background.
    pub(crate) fn spawn(&self, args: &[&str], env: &[(&str, &str)]) -> Child {
        let mut command = self.command(args);
        command
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command.spawn().expect("start stagecraft")
    }

    /// Waits until `releases list --format json` shows a release `running`.
    pub(crate) fn wait_running(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let run = self.run(&["releases", "list", "--format", "json"]);
            if let Ok(serde_json::Value::Array(list)) = serde_json::from_str(&run.stdout)
                && let Some(running) = list.iter().find(|r| r["status"] == "running")
            {
                return running["id"].as_str().unwrap_or_default().to_owned();
            }
            assert!(Instant::now() < deadline, "{}: no release started running", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The backends to run `test` on, each with `pipeline` as its pipeline file:
/// files always, PostgreSQL when a server is given.
pub(crate) fn backends(test: &str, pipeline: &str) -> Vec<Side> {
    let project = || {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("pipeline.stagecraft"), pipeline).expect("write the pipeline");
        dir
    };
    let mut sides = vec![Side {
        name: "file",
        url: "file:.stagecraft".to_owned(),
        dir: project(),
        scratch: None,
    }];
    if let Some(scratch) = Scratch::new(&format!("conformance_{test}")) {
        sides.push(Side {
            name: "postgres",
            url: scratch.url.clone(),
            dir: project(),
            scratch: Some(scratch),
        });
    }
    sides
}

/// Runs `args` on every side and checks they all printed the same, but for
/// the wall-clock durations of a run's summary (`0.01s`).
pub(crate) fn same(sides: &[Side], args: &[&str], status: i32) -> Run {
    let runs: Vec<Run> = sides
        .iter()
        .map(|side| {
            let run = side.expect(args, status);
            Run {
                stderr: without_durations(&run.stderr),
                ..run
            }
        })
        .collect();
    for (side, run) in sides.iter().zip(&runs).skip(1) {
        assert_eq!(
            run,
            &runs[0],
            "`{}` differs between file and {}",
            args.join(" "),
            side.name
        );
    }
    runs.into_iter().next().expect("at least the file backend")
}

/// `text` with every `N.NNs` made `?s`.
fn without_durations(text: &str) -> String {
    text.split('\n')
        .map(|line| {
            line.split(' ')
                .map(|word| {
                    let number = word.strip_suffix('s').unwrap_or("x");
                    if number.contains('.') && number.parse::<f64>().is_ok() {
                        "?s"
                    } else {
                        word
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.stdout))
}

#[test]
fn the_readme_story_reads_the_same_on_both_backends() {
    let sides = backends("readme", PIPELINE);
    same(&sides, &["deploy", "--env", "prod", "--version", "v1"], 0);
    same(&sides, &["deploy", "--env", "prod", "--version", "v2"], 0);
    let rollback = same(&sides, &["rollback", "--env", "prod", "--to-previous"], 0);
    assert!(
        rollback.stderr.contains("rolling back prod to rel-20261125-170229123"),
        "{}",
        rollback.stderr
    );
    let status = same(&sides, &["status", "--env", "prod"], 0);
    assert!(status.stdout.contains("api      v1"), "{}", status.stdout);
    let list = json(&same(&sides, &["releases", "list", "--format", "json"], 0));
    let versions: Vec<&str> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["version"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(versions, ["v1", "v2", "v1"]);
    assert_eq!(list[0]["workflow"], "rollback");
    assert_eq!(list[0]["rollback_of"], "rel-20261125-170229123");
    same(
        &sides,
        &["releases", "show", "rel-20261125-170229123-001", "--format", "json"],
        0,
    );
    same(&sides, &["status", "--format", "json"], 0);
    // A second `--to-previous` has nothing left to roll back to.
    same(&sides, &["rollback", "--env", "prod", "--to-previous"], 1);
}

#[test]
fn a_partial_deploy_and_a_failed_one_roll_back_the_same_on_both_backends() {
    let sides = backends("partial", PIPELINE);
    same(&sides, &["deploy", "--env", "dev", "--version", "v1"], 0);
    same(
        &sides,
        &["deploy", "--env", "dev", "--version", "v2", "--services", "web"],
        0,
    );
    let failed = same(&sides, &["deploy", "--env", "dev", "--version", "bad"], 3);
    assert!(failed.stderr.contains("failed"), "{}", failed.stderr);
    let status = json(&same(&sides, &["status", "--env", "dev", "--format", "json"], 0));
    assert_eq!(status["current"]["status"], "failed", "{status}");
    same(&sides, &["rollback", "--env", "dev", "--to-previous"], 0);
    let status = same(&sides, &["status", "--env", "dev"], 0);
    assert!(status.stdout.contains("web      v2"), "{}", status.stdout);
    assert!(status.stdout.contains("api      v1"), "{}", status.stdout);
    same(&sides, &["releases", "list", "--env", "dev", "--format", "json"], 0);
    same(&sides, &["releases", "show", "rel-20261125-170229123-002"], 0);
}

#[test]
fn history_of_ten_releases_lists_the_same_on_both_backends() {
    let sides = backends("ten", PIPELINE);
    for n in 0..10 {
        let env = if n % 3 == 0 { "dev" } else { "prod" };
        same(&sides, &["deploy", "--env", env, "--version", &format!("v{n}")], 0);
    }
    let all = json(&same(&sides, &["releases", "list", "--all", "--format", "json"], 0));
    assert_eq!(all.as_array().map(Vec::len), Some(10));
    let newest = json(&same(
        &sides,
        &["releases", "list", "--limit", "3", "--format", "json"],
        0,
    ));
    assert_eq!(newest[0]["version"], "v9");
    let prod = json(&same(
        &sides,
        &["releases", "list", "--env", "prod", "--format", "json"],
        0,
    ));
    assert_eq!(prod.as_array().map(Vec::len), Some(6));
    same(&sides, &["status"], 0);
    same(&sides, &["rollback", "--env", "prod", "--to-version", "v4"], 0);
}

#[test]
fn an_unknown_scheme_is_a_usage_error() {
    let sides = backends("scheme", PIPELINE);
    let run = support::command(sides[0].path(), &["status", "--state", "mysql://ci:s3cret@db/team"])
        .output()
        .expect("run stagecraft");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the scheme `mysql` is not one stagecraft keeps state in"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
    let run = support::command(sides[0].path(), &["status"])
        .env("STAGECRAFT_STATE", "redis://db")
        .output()
        .expect("run stagecraft");
    assert_eq!(run.status.code(), Some(1));
}

#[test]
fn state_dir_is_an_alias_of_a_file_url_and_the_command_line_wins() {
    let sides = backends("alias", PIPELINE);
    let side = &sides[0];
    let deploy = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["deploy", "--env", "dev", "--version", "v1"];
        args.extend_from_slice(extra);
        let status = support::command(side.path(), &args)
            .envs(env.iter().copied())
            .output()
            .expect("run stagecraft")
            .status;
        assert!(status.success(), "{args:?} {env:?}");
    };
    deploy(&["--state-dir", "a"], &[]);
    deploy(&["--state", "file:b"], &[("STAGECRAFT_STATE_DIR", "c")]);
    deploy(&["--state-dir", "d"], &[("STAGECRAFT_STATE", "file:e")]);
    deploy(&[], &[("STAGECRAFT_STATE", "file:f"), ("STAGECRAFT_STATE_DIR", "g")]);
    for (dir, used) in [
        ("a", true),
        ("b", true),
        ("c", false),
        ("d", true),
        ("e", false),
        ("f", true),
        ("g", false),
    ] {
        let index = PathBuf::from(side.path())
            .join(dir)
            .join("pipelines/shop/envs/dev/index.ron");
        assert_eq!(index.exists(), used, "{dir}");
    }
}

#[test]
fn corrupt_state_is_exit_4_naming_where() {
    let mut headers = Vec::new();
    for side in backends("corrupt", PIPELINE) {
        side.expect(&["deploy", "--env", "dev", "--version", "v1"], 0);
        let id = "rel-20261125-170229123";
        let expected = match &side.scratch {
            None => {
                let index = side.path().join(".stagecraft/pipelines/shop/envs/dev/index.ron");
                let text = std::fs::read_to_string(&index).expect("the index");
                std::fs::write(&index, text.replace("Finished(", "Fnished(")).expect("write");
                "corrupt state file".to_owned()
            }
            Some(scratch) => {
                let header: String = scratch
                    .admin()
                    .query_one("SELECT header FROM stagecraft_releases WHERE id = $1", &[&id])
                    .expect("the header")
                    .get(0);
                headers.push(header);
                scratch
                    .admin()
                    .execute(
                        "UPDATE stagecraft_releases SET header = 'Release(nonsense' WHERE id = $1",
                        &[&id],
                    )
                    .expect("update");
                format!("corrupt row of PostgreSQL table `stagecraft_releases` (pipeline `shop`, id `{id}`)")
            }
        };
        for args in [
            &["releases", "list"][..],
            &["status"],
            &["deploy", "--env", "dev", "--version", "v2"],
        ] {
            let run = side.expect(args, 4);
            assert!(run.stderr.contains(&expected), "{}: {}", side.name, run.stderr);
        }
        if let Some(scratch) = &side.scratch {
            let mut admin = scratch.admin();
            admin
                .execute("UPDATE stagecraft_releases SET header = $1", &[&headers[0]])
                .expect("restore");
            side.expect(&["releases", "show", id], 0);
            admin
                .execute("UPDATE stagecraft_events SET event = 'Started(' WHERE seq = 2", &[])
                .expect("update");
            let run = side.expect(&["releases", "show", id], 4);
            let expected = format!(
                "corrupt row of PostgreSQL table `stagecraft_events` (pipeline `shop`, release_id `{id}`, seq 2)"
            );
            assert!(run.stderr.contains(&expected), "{}", run.stderr);
        }
    }
}

#[test]
fn missing_data_is_exit_4_naming_what_is_missing() {
    for side in backends("missing", PIPELINE) {
        side.expect(&["deploy", "--env", "dev", "--version", "v1"], 0);
        let id = "rel-20261125-170229123";
        let expected = match &side.scratch {
            None => {
                std::fs::remove_file(
                    side.path()
                        .join(format!(".stagecraft/pipelines/shop/releases/{id}.ron")),
                )
                .expect("remove the log");
                format!("the log of release {id} is missing")
            }
            Some(scratch) => {
                scratch
                    .admin()
                    .execute("DELETE FROM stagecraft_events WHERE release_id = $1", &[&id])
                    .expect("delete the events");
                format!(
                    "corrupt row of PostgreSQL table `stagecraft_events` (pipeline `shop`, release_id `{id}`): the release is recorded finished but its events end before its finish line"
                )
            }
        };
        let run = side.expect(&["releases", "show", id], 4);
        assert!(run.stderr.contains(&expected), "{}: {}", side.name, run.stderr);
        // What the list and the status read is still there.
        side.expect(&["releases", "list"], 0);
        side.expect(&["status"], 0);
    }
}
