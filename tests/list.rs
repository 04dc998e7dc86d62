//! `stagecraft list`, and what `run` says of a name that is no workflow's.

use crate::support::Test;

const FILE: &str = "pipeline.stagecraft";

const PIPELINE: &str = r#"pipeline shop

env dev {}
env staging extends dev {}
env prod extends staging {
  protected
}
env prod-eu extends prod {}

service api {}
service worker {
  after api
}

phase build {
  for each service
  run "echo build {{service}}"
}
phase push {
  for each service
  after build
  run "echo push {{service}}"
}
phase migrate {
  after push[api]
  run "echo migrate"
}
phase rollout {
  for each service
  after migrate, push
  run "echo rollout {{service}}"
}
phase done {
  after rollout
}
phase lint {
  run "echo lint"
}

workflow build { build push }
workflow deploy { build push migrate rollout done }
workflow rollback { migrate rollout done }
"#;

#[test]
fn list_names_workflows_phases_envs_and_services() {
    let output = Test::new().file(FILE, PIPELINE).arg("list").stderr("").run();
    insta::assert_snapshot!("list_text", output.stdout);
}

#[test]
fn list_as_json() {
    let output = Test::new()
        .file(FILE, PIPELINE)
        .args(["list", "--format", "json"])
        .stderr("")
        .run();
    insta::assert_snapshot!("list_json", output.stdout);
    let json = output.json();
    assert_eq!(json["envs"][3]["protected"], true, "inherited from prod");
    assert_eq!(json["phases"][5]["workflows"], serde_json::json!([]));
}

#[test]
fn list_of_a_file_with_nothing_declared_says_none() {
    Test::new()
        .file(FILE, "pipeline empty\n")
        .arg("list")
        .stdout("workflows:\n  (none)\n\nphases:\n  (none)\n\nenvs:\n  (none)\n\nservices:\n  (none)\n")
        .run();
}

#[test]
fn list_of_an_invalid_file_is_exit_2_with_its_diagnostics() {
    Test::new()
        .file(FILE, "pipeline p\nworkflow deploy { nope }\n")
        .arg("list")
        .status(2)
        .stdout("")
        .stderr_contains("unknown phase `nope`")
        .run();
}

#[test]
fn run_with_a_phase_names_the_workflows_that_run_it() {
    Test::new()
        .file(FILE, PIPELINE)
        .args(["run", "rollout", "--env", "dev"])
        .status(1)
        .stderr(
            "error: unknown workflow: rollout\n\
             help: `rollout` is a phase, not a workflow; the workflows `deploy`, `rollback` run it\n",
        )
        .run();
    Test::new()
        .file(FILE, PIPELINE)
        .args(["run", "lint", "--env", "dev"])
        .status(1)
        .stderr(
            "error: unknown workflow: lint\n\
             help: `lint` is a phase, not a workflow; it is in no workflow; \
             workflows: `build`, `deploy`, `rollback`\n",
        )
        .run();
}

#[test]
fn run_with_a_near_miss_suggests_the_nearest_name() {
    // Near a workflow: that workflow.
    Test::new()
        .file(FILE, PIPELINE)
        .args(["run", "deplyo", "--env", "dev"])
        .status(1)
        .stderr("error: unknown workflow: deplyo\nhelp: did you mean `deploy`?\n")
        .run();
    // Near a phase only: that phase, and where it runs.
    Test::new()
        .file(FILE, PIPELINE)
        .args(["run", "migrat", "--env", "dev", "--dry-run"])
        .status(1)
        .stderr(
            "error: unknown workflow: migrat\n\
             help: did you mean the phase `migrate`? the workflows `deploy`, `rollback` run it\n",
        )
        .run();
    // Near nothing: every workflow.
    Test::new()
        .file(FILE, PIPELINE)
        .args(["plan", "--env", "dev", "--workflow", "zzz"])
        .status(1)
        .stderr("error: unknown workflow: zzz\nhelp: workflows: `build`, `deploy`, `rollback`\n")
        .run();
}
