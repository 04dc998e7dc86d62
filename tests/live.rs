//! What is live per service, and rollback that restores it, through the
//! binary: partial deploys, `status`, the `--to-previous` rules, a
//! rollback after a failed release, and the target printed before
//! anything runs.

use std::fs;
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::support::BIN;

/// Three services. `build` leaves an artifact per service and version;
/// `push` fails for a version that was never built for its service (as a
/// real registry would), then records what is live in `live/ENV/SERVICE`.
const PIPELINE: &str = r#"pipeline shop

env dev {}
env prod {}

service web {}
service api {}
service worker {}

phase build {
  for each service
  run "mkdir -p built && touch built/{{service}}-{{version}}"
}

phase push {
  for each service
  after build
  run """
    test -f built/{{service}}-{{version}}
    mkdir -p live/{{env}}
    echo {{version}} > live/{{env}}/{{service}}
  """
}

phase smoke {
  for each service
  after push
  run "test ! -f fail-{{service}}-{{version}}"
}

workflow build { build }
workflow deploy { build push smoke }
workflow rollback { push smoke }
"#;

struct Shop {
    dir: TempDir,
}

struct Run {
    stdout: String,
    stderr: String,
    status: i32,
}

impl Shop {
    fn new() -> Self {
        let dir = TempDir::new().expect("temp dir");
        fs::write(dir.path().join("pipeline.stagecraft"), PIPELINE).expect("write pipeline");
        Self { dir }
    }

    fn run(&self, args: &[&str]) -> Run {
        let output = Command::new(BIN)
            .args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env("STAGECRAFT_NOW", "2026-11-25T12:00:00.000Z")
            .env_remove("STAGECRAFT_STATE_DIR")
            .stdin(Stdio::null())
            .output()
            .expect("run stagecraft");
        Run {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            status: output.status.code().unwrap_or(-1),
        }
    }

    fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(run.status, 0, "{args:?}:\n{}{}", run.stdout, run.stderr);
        run
    }

    fn deploy(&self, version: &str, services: Option<&str>) {
        let mut args = vec!["deploy", "--env", "prod", "--version", version];
        if let Some(services) = services {
            args.extend(["--services", services]);
        }
        self.ok(&args);
    }

    /// What the commands left live in prod, as `service=version`.
    fn live_files(&self) -> Vec<String> {
        ["api", "web", "worker"]
            .iter()
            .map(|s| {
                let text = fs::read_to_string(self.dir.path().join("live/prod").join(s)).unwrap_or_default();
                format!("{s}={}", text.trim())
            })
            .collect()
    }

    /// What `status --env prod --format json` says is live.
    fn live_status(&self) -> Vec<String> {
        let run = self.ok(&["status", "--env", "prod", "--format", "json"]);
        let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
        json["services"]
            .as_array()
            .expect("services")
            .iter()
            .map(|s| {
                let failed = if s["failed"].is_null() { "" } else { " (failed)" };
                format!(
                    "{}={}{failed}",
                    s["service"].as_str().unwrap_or_default(),
                    s["version"].as_str().unwrap_or("-")
                )
            })
            .collect()
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn partial_deploys_are_rolled_back_service_by_service() {
    let shop = Shop::new();
    shop.deploy("s1", None);
    shop.deploy("s2", Some("web"));
    shop.deploy("s3", Some("api"));
    assert_eq!(shop.live_status(), strings(&["api=s3", "web=s2", "worker=s1"]));

    // api goes back from s3 to s1 (as right after s2); web and worker are
    // already where they were.
    let first = shop.ok(&["rollback", "--env", "prod", "--to-previous"]);
    assert!(first.stderr.contains("api     s3 -> s1"), "{}", first.stderr);
    assert!(first.stderr.contains("web     unchanged at s2"), "{}", first.stderr);
    assert!(first.stderr.contains("worker  unchanged at s1"), "{}", first.stderr);
    assert_eq!(shop.live_files(), strings(&["api=s1", "web=s2", "worker=s1"]));
    assert_eq!(shop.live_status(), strings(&["api=s1", "web=s2", "worker=s1"]));

    // Then web back to s1: the state right after s1.
    let second = shop.ok(&["rollback", "--env", "prod", "--to-previous"]);
    assert!(second.stderr.contains("web     s2 -> s1"), "{}", second.stderr);
    assert_eq!(shop.live_files(), strings(&["api=s1", "web=s1", "worker=s1"]));

    // Nothing older differs from today without undoing a rollback.
    let third = shop.run(&["rollback", "--env", "prod", "--to-previous"]);
    assert_eq!(third.status, 1, "{}", third.stderr);
    assert!(third.stderr.contains("nothing to roll back to"), "{}", third.stderr);
}

#[test]
fn rolling_back_twice_does_not_redeploy_the_bad_version() {
    let shop = Shop::new();
    shop.deploy("t1", None);
    shop.deploy("t2", None);
    shop.ok(&["rollback", "--env", "prod", "--to-previous"]);
    assert_eq!(shop.live_files(), strings(&["api=t1", "web=t1", "worker=t1"]));
    let again = shop.run(&["rollback", "--env", "prod", "--to-previous"]);
    assert_eq!(again.status, 1, "{}", again.stderr);
    assert!(again.stderr.contains("nothing to roll back to"), "{}", again.stderr);
    assert_eq!(shop.live_files(), strings(&["api=t1", "web=t1", "worker=t1"]));
}

#[test]
fn a_failed_release_is_shown_and_rolled_back_to_the_last_good_state() {
    let shop = Shop::new();
    shop.deploy("v1", None);
    fs::write(shop.dir.path().join("fail-api-v2"), "").expect("write");
    let failed = shop.run(&["deploy", "--env", "prod", "--version", "v2", "--services", "api"]);
    assert_eq!(failed.status, 3, "{}", failed.stderr);
    assert_eq!(shop.live_status(), strings(&["api=v1 (failed)", "web=v1", "worker=v1"]));
    let text = shop.ok(&["status", "--env", "prod"]);
    assert!(text.stdout.contains("failed at v2"), "{}", text.stdout);
    assert!(text.stdout.contains("last good v1"), "{}", text.stdout);

    let rollback = shop.ok(&["rollback", "--env", "prod", "--to-previous"]);
    assert!(
        rollback.stderr.contains("api     v2 (failed) -> v1"),
        "{}",
        rollback.stderr
    );
    assert_eq!(shop.live_status(), strings(&["api=v1", "web=v1", "worker=v1"]));
}

#[test]
fn a_dry_run_prints_the_target_and_per_service_versions() {
    let shop = Shop::new();
    shop.deploy("s1", None);
    shop.deploy("s2", Some("web"));
    let dry = shop.ok(&["rollback", "--env", "prod", "--to-previous", "--dry-run"]);
    assert!(dry.stderr.contains("rolling back prod to rel-"), "{}", dry.stderr);
    assert!(dry.stderr.contains("web     s2 -> s1"), "{}", dry.stderr);
    // Only web's instances run, at web's target version.
    assert!(dry.stdout.contains("built/web-s1"), "{}", dry.stdout);
    assert!(dry.stdout.contains("skipped: unchanged"), "{}", dry.stdout);
    assert_eq!(shop.live_files(), strings(&["api=s1", "web=s2", "worker=s1"]));
}

#[test]
fn status_without_env_has_one_line_per_env() {
    let shop = Shop::new();
    shop.deploy("v1", None);
    shop.ok(&["deploy", "--env", "dev", "--version", "v9", "--services", "api"]);
    let run = shop.ok(&["status"]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(
        lines[1].starts_with("dev ") && lines[1].contains("api v9"),
        "{}",
        run.stdout
    );
    assert!(
        lines[2].starts_with("prod") && lines[2].contains("worker v1"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_history_records_who_what_and_when() {
    let shop = Shop::new();
    shop.ok(&[
        "deploy",
        "--env",
        "prod",
        "--version",
        "v1",
        "--services",
        "api,web",
        "--set",
        "x=secret",
    ]);
    let run = shop.ok(&["releases", "list", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let release = &json[0];
    assert_eq!(release["services"]["names"], serde_json::json!(["api", "web"]));
    assert_eq!(release["services"]["all"], false);
    assert_eq!(release["set_keys"], serde_json::json!(["x"]));
    assert!(release["digest"].as_str().is_some_and(|d| d.starts_with("sha256:")));
    assert!(release["user"].as_str().is_some_and(|u| u.contains('@')));
    assert_eq!(release["started_at"], "2026-11-25T12:00:00.000Z");
    assert_eq!(release["finished_at"], "2026-11-25T12:00:00.000Z");
    assert!(!run.stdout.contains("secret"));
    let id = release["id"].as_str().expect("id");
    let shown = shop.ok(&["releases", "show", id]);
    assert!(shown.stdout.contains("$ test -f built/api-v1"), "{}", shown.stdout);
    assert!(shown.stdout.contains("push.api.log"), "{}", shown.stdout);
}
