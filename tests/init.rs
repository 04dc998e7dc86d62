//! `stagecraft init`: each template is written, checks clean, formats as it
//! is, and runs (deploy twice, roll back, status) on this machine as it is.

use std::path::Path;

use crate::support;

const FILE: &str = "pipeline.stagecraft";

/// Runs the binary in `dir` without a terminal, with a fixed user.
pub(crate) fn stagecraft(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = support::command(dir, args)
        .env("STAGECRAFT_USER", "ada@laptop")
        .output()
        .expect("run stagecraft");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs and expects exit 0; returns stdout.
#[track_caller]
fn ok(dir: &Path, args: &[&str]) -> String {
    let (status, stdout, stderr) = stagecraft(dir, args);
    assert_eq!(status, 0, "{args:?}\n--- stdout\n{stdout}--- stderr\n{stderr}");
    stdout
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("stagecraft-init")
        .tempdir()
        .expect("tempdir")
}

fn runs_as_written(template: &str) {
    let temp = tempdir();
    let dir = temp.path().join("shop");
    std::fs::create_dir(&dir).expect("mkdir");
    let said = ok(&dir, &["init", "--template", template]);
    assert!(
        said.starts_with(&format!(
            "wrote pipeline.stagecraft (pipeline shop, template {template})\n"
        )),
        "{said}"
    );
    assert!(said.contains("stagecraft deploy --env dev --version v1"), "{said}");
    let text = std::fs::read_to_string(dir.join(FILE)).expect("the file is written");
    assert!(text.contains("\npipeline shop\n"), "named after its directory:\n{text}");
    // No warning either, and already in the canonical format.
    assert_eq!(ok(&dir, &["check", "--deny-warnings"]), "pipeline.stagecraft: ok\n");
    ok(&dir, &["fmt", "--check"]);
    ok(&dir, &["deploy", "--env", "dev", "--version", "v1"]);
    let v2 = ok(&dir, &["deploy", "--env", "dev", "--version", "v2"]);
    assert!(v2.contains("| ") && v2.contains("v2"), "the stub commands echo:\n{v2}");
    ok(&dir, &["rollback", "--env", "dev", "--to-previous"]);
    let status: serde_json::Value =
        serde_json::from_str(&ok(&dir, &["status", "--env", "dev", "--format", "json"])).expect("json");
    let text = status.to_string();
    assert!(
        text.contains("\"v1\"") && !text.contains("\"v2\""),
        "rolled back to v1:\n{status:#}"
    );
    let table = ok(&dir, &["status"]);
    assert!(table.contains("rollback  completed"), "{table}");
}

#[test]
fn the_default_template_deploys_rolls_back_and_shows_its_status() {
    runs_as_written("default");
}

#[test]
fn the_static_site_template_deploys_rolls_back_and_shows_its_status() {
    runs_as_written("static-site");
}

#[test]
fn the_default_template_migrates_before_the_rollout_in_dev_and_after_it_in_prod() {
    let temp = tempdir();
    ok(temp.path(), &["init"]);
    let enabled = |env: &str, phase: &str| {
        let plan: serde_json::Value =
            serde_json::from_str(&ok(temp.path(), &["plan", "--env", env, "--format", "json"])).expect("json");
        let phases = plan["phases"].as_array().expect("phases").clone();
        let found = phases
            .into_iter()
            .find(|p| p["id"] == phase)
            .expect("the phase is planned");
        found["enabled"].as_bool().expect("enabled")
    };
    assert!(enabled("dev", "migrate_pre") && !enabled("dev", "migrate_post"));
    assert!(enabled("staging", "migrate_pre") && !enabled("staging", "migrate_post"));
    assert!(!enabled("prod", "migrate_pre") && enabled("prod", "migrate_post"));
    let list = ok(temp.path(), &["list"]);
    assert!(list.contains("prod     extends staging · protected"), "{list}");
}

#[test]
fn init_never_overwrites_a_file() {
    let temp = tempdir();
    std::fs::write(temp.path().join(FILE), "# mine\n").expect("write");
    let (status, stdout, stderr) = stagecraft(temp.path(), &["init", "--template", "static-site"]);
    assert_eq!(status, 1, "{stdout}{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        "error: pipeline.stagecraft already exists\n\
         help: init never overwrites a file: remove it first, or pass another DIR\n"
    );
    assert_eq!(
        std::fs::read_to_string(temp.path().join(FILE)).expect("read"),
        "# mine\n"
    );
}

#[test]
fn init_creates_the_directory_it_is_given_and_says_to_go_there() {
    let temp = tempdir();
    let said = ok(temp.path(), &["init", "deploy/my-app"]);
    assert!(said.starts_with("wrote deploy/my-app/pipeline.stagecraft (pipeline my-app, template default)\n"));
    assert!(said.contains("\n  cd deploy/my-app\n"), "{said}");
    let dir = temp.path().join("deploy/my-app");
    assert_eq!(ok(&dir, &["check", "--deny-warnings"]), "pipeline.stagecraft: ok\n");
    // A directory whose name is no pipeline name keeps the template's.
    ok(temp.path(), &["init", "--template", "static-site", "2 sites"]);
    let text = std::fs::read_to_string(temp.path().join("2 sites").join(FILE)).expect("read");
    assert!(text.contains("\npipeline site\n"), "{text}");
    // A second `init` there is refused.
    let (status, _, stderr) = stagecraft(temp.path(), &["init", "deploy/my-app"]);
    assert_eq!(status, 1);
    assert!(
        stderr.starts_with("error: deploy/my-app/pipeline.stagecraft already exists\n"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_template_is_a_usage_error() {
    let temp = tempdir();
    let (status, _, stderr) = stagecraft(temp.path(), &["init", "--template", "nope"]);
    assert_eq!(status, 1);
    assert!(stderr.contains("[possible values: default, static-site]"), "{stderr}");
    assert!(!temp.path().join(FILE).exists());
}
