//! Command-line behaviour: finding the file, flags, exit codes, and what a
//! plan says about the language's semantics.

use crate::support::{Test, plan_ids, plan_phase};

/// A small pipeline with envs, services and per-service phases.
const PIPELINE: &str = r#"pipeline shop

var registry = "localhost:5000"
var image    = "{{registry}}/shop"

env dev {
  replicas = "1"
}
env staging extends dev {
  registry = "registry.internal:5000"
}
env prod extends staging {
  replicas = "3"
}

service api {
  path = "services/api"
}
service worker {
  path = "services/worker"
  after api
}

phase build {
  for each service
  run "docker build -t {{image}}-{{service}}:{{version}} {{service.path}}"
}

phase push {
  for each service
  after build
  when push
  run "docker push {{image}}-{{service}}:{{version}}"
}

phase migrate {
  after push
  run "./migrate {{env}}"
}

phase rollout {
  for each service
  after migrate
  run "./rollout {{service}} --replicas {{replicas}}"
}

phase announce {
  after rollout
  when env == "prod"
  run "./announce"
}

workflow build  { build push }
workflow deploy { build push migrate rollout announce }
"#;

const FILE: &str = "pipeline.stagecraft";

fn plan(args: &[&str]) -> Test {
    Test::new().file(FILE, PIPELINE).arg("plan").args(args.iter().copied())
}

// ---- finding the pipeline file ---------------------------------------------

#[test]
fn finds_the_pipeline_file_in_the_current_directory() {
    Test::new()
        .file(FILE, PIPELINE)
        .arg("check")
        .stdout("pipeline.stagecraft: ok\n")
        .stderr("")
        .run();
}

#[test]
fn finds_the_pipeline_file_in_a_parent_directory() {
    let output = Test::new()
        .file(FILE, PIPELINE)
        .dir("services/api/src")
        .current_dir("services/api/src")
        .args(["plan", "--env", "dev", "--format", "json"])
        .run();
    assert_eq!(output.json()["pipeline"], "shop");
    Test::new()
        .file(FILE, PIPELINE)
        .dir("a/b")
        .current_dir("a/b")
        .arg("check")
        .stdout_contains("pipeline.stagecraft: ok")
        .run();
}

#[test]
fn the_nearest_pipeline_file_wins() {
    let inner = PIPELINE.replace("pipeline shop", "pipeline inner");
    let output = Test::new()
        .file(FILE, PIPELINE)
        .file(format!("sub/{FILE}"), inner)
        .current_dir("sub")
        .args(["plan", "--env", "dev", "--format", "json"])
        .run();
    assert_eq!(output.json()["pipeline"], "inner");
}

#[test]
fn no_pipeline_file_is_a_user_error_with_help() {
    let output = Test::new().arg("check").status(1).run();
    assert!(
        output.stderr.starts_with("error: no pipeline.stagecraft in "),
        "{}",
        output.stderr
    );
    assert!(output.stderr.contains("or any parent directory"), "{}", output.stderr);
    assert!(
        output.stderr.contains("help: pass the file with `-f PATH`"),
        "{}",
        output.stderr
    );
    assert_eq!(output.stdout, "");
    Test::new()
        .args(["plan", "--env", "dev"])
        .status(1)
        .stderr_contains("no pipeline.stagecraft")
        .run();
    Test::new()
        .arg("graph")
        .status(1)
        .stderr_contains("no pipeline.stagecraft")
        .run();
}

#[test]
fn file_flag_picks_the_file() {
    Test::new()
        .file("ci/release.stagecraft", PIPELINE)
        .args(["check", "-f", "ci/release.stagecraft"])
        .stdout("ci/release.stagecraft: ok\n")
        .run();
    Test::new()
        .file("other.stagecraft", PIPELINE)
        .args(["plan", "--file", "other.stagecraft", "--env", "dev"])
        .stdout_contains("shop · workflow deploy · env dev")
        .run();
    // `-f` is global: it may come before the subcommand's other flags.
    Test::new()
        .file("x.stagecraft", PIPELINE)
        .args(["graph", "--format", "mermaid", "-f", "x.stagecraft"])
        .stdout_contains("flowchart LR")
        .run();
}

#[test]
fn a_missing_file_is_a_user_error() {
    Test::new()
        .args(["check", "-f", "nope.stagecraft"])
        .status(1)
        .stderr_contains("error: cannot read nope.stagecraft")
        .run();
}

#[test]
fn check_of_several_files_reports_each() {
    let output = Test::new()
        .file("a.stagecraft", PIPELINE)
        .file(
            "b.stagecraft",
            "pipeline b\nphase x {\n  after y\n}\nworkflow w { x }\n",
        )
        .file(
            "c.stagecraft",
            "pipeline c\nphase x {\n  run \"x\"\n}\nphase unused {\n}\nworkflow w { x }\n",
        )
        .args(["check", "a.stagecraft", "b.stagecraft", "c.stagecraft"])
        .status(2)
        .run();
    assert_eq!(output.stdout, "a.stagecraft: ok\n");
    assert!(output.stderr.contains("b.stagecraft: 1 error"), "{}", output.stderr);
    assert!(output.stderr.contains("c.stagecraft: 1 warning"), "{}", output.stderr);
    assert!(output.stderr.contains("stagecraft::unknown-phase"), "{}", output.stderr);
    assert!(output.stderr.contains("stagecraft::unused-phase"), "{}", output.stderr);

    let json = Test::new()
        .file("a.stagecraft", PIPELINE)
        .file(
            "b.stagecraft",
            "pipeline b\nphase x {\n  after y\n}\nworkflow w { x }\n",
        )
        .args(["check", "--format", "json", "a.stagecraft", "b.stagecraft"])
        .status(2)
        .run()
        .json();
    let diagnostics = json["diagnostics"].as_array().expect("diagnostics");
    assert_eq!(diagnostics.len(), 1);
    assert_eq!(diagnostics[0]["file"], "b.stagecraft");
}

#[test]
fn check_of_valid_files_only_passes() {
    Test::new()
        .file("a.stagecraft", PIPELINE)
        .file("b.stagecraft", PIPELINE)
        .args(["check", "a.stagecraft", "b.stagecraft", "--deny-warnings"])
        .stdout("a.stagecraft: ok\nb.stagecraft: ok\n")
        .stderr("")
        .run();
}

// ---- flags and exit codes ---------------------------------------------------

#[test]
fn unknown_env_is_a_user_error() {
    plan(&["--env", "nope"])
        .status(1)
        .stdout("")
        .stderr_contains("invalid environment: nope")
        .stderr_lacks("did you mean")
        .run();
}

#[test]
fn unknown_env_suggests_a_close_one() {
    plan(&["--env", "prd"])
        .status(1)
        .stderr("error: invalid environment: prd\nhelp: did you mean `prod`?\n")
        .run();
    plan(&["--env", "stagign"])
        .status(1)
        .stderr_contains("did you mean `staging`?")
        .run();
    Test::new()
        .file(FILE, PIPELINE)
        .args(["graph", "--env", "prd"])
        .status(1)
        .stderr_contains("invalid environment: prd")
        .run();
}

#[test]
fn env_is_required_for_plan() {
    plan(&[]).status(1).stderr_contains("--env").run();
}

#[test]
fn unknown_service_is_a_user_error() {
    plan(&["--env", "dev", "--services", "nope"])
        .status(1)
        .stderr_contains("unknown service: nope")
        .stdout("")
        .run();
    plan(&["--env", "dev", "--services", "api,wroker"])
        .status(1)
        .stderr("error: unknown service: wroker\nhelp: did you mean `worker`?\n")
        .run();
}

#[test]
fn unknown_workflow_is_a_user_error() {
    plan(&["--env", "dev", "--workflow", "nope"])
        .status(1)
        .stderr_contains("unknown workflow: nope")
        .stdout("")
        .run();
    plan(&["--env", "dev", "--workflow", "deplyo"])
        .status(1)
        .stderr_contains("did you mean `deploy`?")
        .run();
    Test::new()
        .file(FILE, PIPELINE)
        .args(["graph", "--workflow", "nope"])
        .status(1)
        .stderr_contains("unknown workflow: nope")
        .run();
}

#[test]
fn bad_set_is_a_user_error() {
    plan(&["--env", "dev", "--set", "push"])
        .status(1)
        .stderr_contains("KEY=VALUE")
        .run();
    plan(&["--env", "dev", "--set", "1x=true"])
        .status(1)
        .stderr_contains("`1x` is not a variable name")
        .run();
    plan(&["--env", "dev", "--set", "=true"]).status(1).run();
}

#[test]
fn unknown_flags_are_user_errors_not_clap_2() {
    for args in [
        &["plan", "--env", "dev", "--bogus"][..],
        &["check", "--bogus"],
        &["bogus"],
        &["plan", "--env", "dev", "--format", "yaml"],
        &["check", "--format", "text"],
        &["graph", "--format", "svg"],
        &[],
    ] {
        Test::new()
            .file(FILE, PIPELINE)
            .args(args.iter().copied())
            .status(1)
            .run();
    }
}

#[test]
fn help_and_version_succeed() {
    Test::new()
        .arg("--help")
        .stdout_contains("check")
        .stdout_contains("plan")
        .stdout_contains("graph")
        .run();
    for command in ["check", "plan", "graph"] {
        Test::new()
            .args([command, "--help"])
            .stdout_contains("--file")
            .stderr("")
            .run();
    }
    Test::new().arg("--version").stdout_contains("stagecraft").run();
}

#[test]
fn an_invalid_pipeline_given_to_plan_or_graph_exits_2() {
    let broken = "pipeline x\nphase a {\n  after nope\n}\nworkflow deploy { a }\n";
    let output = Test::new()
        .file(FILE, broken)
        .args(["plan", "--env", "dev"])
        .status(2)
        .stderr_contains("stagecraft::unknown-phase")
        .stderr_contains("error: pipeline.stagecraft is invalid: 1 error")
        .stderr_contains("stagecraft check -f pipeline.stagecraft")
        .run();
    assert_eq!(output.stdout, "");
    Test::new()
        .file(FILE, broken)
        .arg("graph")
        .status(2)
        .stderr_contains("stagecraft::unknown-phase")
        .run();
    Test::new()
        .file(FILE, "pipeline x\nphase {\n")
        .args(["plan", "--env", "dev"])
        .status(2)
        .stderr_contains("stagecraft::syntax")
        .run();
}

#[test]
fn warnings_do_not_stop_plan() {
    let source = PIPELINE.replace(
        "workflow build  { build push }",
        "workflow build { build push }\nworkflow empty { }",
    );
    Test::new()
        .file(FILE, source)
        .args(["plan", "--env", "dev"])
        .stdout_contains("shop · workflow deploy")
        .run();
}

#[test]
fn non_utf8_files_fail_without_panic() {
    let mut bytes = b"pipeline x\nphase a {\n  run \"caf".to_vec();
    bytes.extend([0xE9, 0xFF, b'"', b'\n', b'}', b'\n']);
    for args in [
        &["check"][..],
        &["check", "--format", "json"],
        &["plan", "--env", "dev"],
        &["graph"],
    ] {
        let output = Test::new().file(FILE, &bytes).args(args.iter().copied()).output();
        assert_ne!(output.status, 0, "{}", output.transcript());
        assert!(output.status == 1 || output.status == 2, "{}", output.transcript());
        assert!(!output.stderr.contains("panicked"), "{}", output.transcript());
        assert!(
            output.stderr.contains("not UTF-8") || output.stdout.contains("not UTF-8"),
            "{}",
            output.transcript()
        );
    }
}

#[test]
fn empty_and_binary_files_do_not_panic() {
    for contents in [&b""[..], b"\0\0\0", b"pipeline", b"\n\n\n"] {
        let output = Test::new().file(FILE, contents).arg("check").output();
        assert_eq!(output.status, 2, "{contents:?}: {}", output.transcript());
        assert!(!output.stderr.contains("panicked"), "{}", output.transcript());
    }
    // A byte-order mark may or may not be accepted, but must not crash.
    let output = Test::new()
        .file(FILE, "\u{feff}pipeline x\nphase a {\n}\nworkflow w { a }\n")
        .arg("check")
        .output();
    assert!(output.status == 0 || output.status == 2, "{}", output.transcript());
}

// ---- semantics, as plans show them -----------------------------------------

#[test]
fn services_filter_keeps_global_phases() {
    let output = plan(&["--env", "dev", "--services", "worker", "--format", "json"]).run();
    assert_eq!(
        plan_ids(&output),
        [
            "build[worker]",
            "push[worker]",
            "migrate",
            "rollout[worker]",
            "announce"
        ]
    );
    // Edges to instances left out are dropped: build[worker] no longer
    // waits for build[api].
    assert_eq!(plan_phase(&output, "build[worker]")["after"], serde_json::json!([]));
    assert_eq!(
        plan_phase(&output, "migrate")["after"],
        serde_json::json!(["push[worker]"])
    );
}

#[test]
fn services_filter_with_several_services() {
    let all = plan(&["--env", "dev", "--format", "json"]).run();
    let both = plan(&["--env", "dev", "--services", "worker,api", "--format", "json"]).run();
    assert_eq!(plan_ids(&all), plan_ids(&both));
}

#[test]
fn push_is_on_as_the_command_of_the_workflow_sets_it() {
    // `deploy` always pushes; `build` pushes with `--push`.
    let deploy = plan(&["--env", "dev", "--format", "json"]).run();
    assert_eq!(plan_phase(&deploy, "push[api]")["enabled"], true);
    assert_eq!(plan_phase(&deploy, "push[worker]")["enabled"], true);
    let build = plan(&["--env", "dev", "--workflow", "build", "--format", "json"]).run();
    assert_eq!(plan_phase(&build, "push[api]")["enabled"], false);
    let pushed = plan(&["--env", "dev", "--workflow", "build", "--push", "--format", "json"]).run();
    assert_eq!(plan_phase(&pushed, "push[api]")["enabled"], true);
    plan(&["--env", "dev", "--workflow", "build"])
        .stdout_contains("skipped: condition is false")
        .run();
    plan(&["--env", "prod"]).stdout_lacks("skipped").run();
}

#[test]
fn set_cannot_override_a_built_in() {
    for (name, advice) in [
        ("env", "use `--env`"),
        ("version", "use `--version`"),
        ("push", "use `build --push` (`deploy` always pushes)"),
        ("release", "it is set by stagecraft"),
        ("pipeline", "it is set by stagecraft"),
        ("workflow", "it is set by stagecraft"),
        ("phase", "it is set by stagecraft"),
        ("service", "it is set by stagecraft"),
    ] {
        plan(&["--env", "dev", "--set", &format!("{name}=x")])
            .stderr(format!(
                "error: `--set {name}` cannot set the built-in `{name}`: {advice}\n"
            ))
            .status(1)
            .run();
    }
}

#[test]
fn push_applies_to_build_and_deploy_only() {
    Test::new()
        .file(
            FILE,
            "pipeline p\nenv dev {}\nphase a { run \"a\" }\nworkflow other { a }\n",
        )
        .args(["plan", "--env", "dev", "--workflow", "other", "--push"])
        .stderr_contains("error: `--push` does not apply to the `other` workflow")
        .status(1)
        .run();
}

#[test]
fn when_env_differs_between_envs() {
    let dev = plan(&["--env", "dev", "--format", "json"]).run();
    let prod = plan(&["--env", "prod", "--format", "json"]).run();
    assert_eq!(plan_phase(&dev, "announce")["enabled"], false);
    assert_eq!(plan_phase(&prod, "announce")["enabled"], true);
}

#[test]
fn variables_expand_in_the_scope_of_use() {
    // `image` interpolates `registry`, which staging overrides: `image`
    // follows the env.
    let dev = plan(&["--env", "dev", "--format", "json"]).run();
    assert_eq!(
        plan_phase(&dev, "build[api]")["command"],
        "docker build -t localhost:5000/shop-api:unknown services/api"
    );
    let staging = plan(&["--env", "staging", "--version", "1.2.3", "--format", "json"]).run();
    assert_eq!(
        plan_phase(&staging, "build[worker]")["command"],
        "docker build -t registry.internal:5000/shop-worker:1.2.3 services/worker"
    );
    // prod inherits staging's registry and overrides dev's replicas.
    let prod = plan(&["--env", "prod", "--format", "json"]).run();
    assert_eq!(
        plan_phase(&prod, "push[api]")["command"],
        "docker push registry.internal:5000/shop-api:unknown"
    );
    assert_eq!(
        plan_phase(&prod, "rollout[api]")["command"],
        "./rollout api --replicas 3"
    );
    assert_eq!(
        plan_phase(&staging, "rollout[api]")["command"],
        "./rollout api --replicas 1"
    );
    // --set wins over everything, and is taken literally.
    let set = plan(&["--env", "prod", "--set", "registry={{x}}", "--format", "json"]).run();
    assert_eq!(
        plan_phase(&set, "push[api]")["command"],
        "docker push {{x}}/shop-api:unknown"
    );
    let set = plan(&["--env", "prod", "--set", "image=img", "--format", "json"]).run();
    assert_eq!(plan_phase(&set, "push[api]")["command"], "docker push img-api:unknown");
}

#[test]
fn built_in_variables() {
    let source = r#"pipeline built-ins
env dev {
}
service api {
}
phase show {
  for each service
  run "{{env}} {{version}} {{release}} {{pipeline}} {{workflow}} {{phase}} {{push}} {{service}}"
}
workflow deploy { show }
workflow other { show }
"#;
    let output = Test::new()
        .file(FILE, source)
        .args([
            "plan",
            "--env",
            "dev",
            "--workflow",
            "other",
            "--version",
            "v9",
            "--format",
            "json",
        ])
        .run();
    assert_eq!(
        plan_phase(&output, "show[api]")["command"],
        "dev v9 dry-run built-ins other show false api"
    );
}

#[test]
fn literal_braces_and_shell_variables() {
    let source = r#"pipeline braces
phase a {
  run "echo {{{{not a var}} $HOME ${USER} {{{{{{pipeline}}"
}
workflow deploy { a }
env dev {
}
"#;
    let output = Test::new()
        .file(FILE, source)
        .args(["plan", "--env", "dev", "--format", "json"])
        .run();
    assert_eq!(
        plan_phase(&output, "a")["command"],
        "echo {{not a var}} $HOME ${USER} {{braces"
    );
}

#[test]
fn escapes_in_plain_strings() {
    let source = "pipeline esc\nenv dev {\n}\nphase a {\n  run \"a\\\"b\\\\c\\td\\ne\"\n}\nworkflow deploy { a }\n";
    let output = Test::new()
        .file(FILE, source)
        .args(["plan", "--env", "dev", "--format", "json"])
        .run();
    assert_eq!(plan_phase(&output, "a")["command"], "a\"b\\c\td\ne");
}

#[test]
fn triple_quoted_strings_are_dedented() {
    let source = "pipeline dedent\nenv dev {\n}\nphase a {\n  run \"\"\"\n      set -e\n        echo {{env}}\n\n      done\n  \"\"\"\n}\nworkflow deploy { a }\n";
    let output = Test::new()
        .file(FILE, source)
        .args(["plan", "--env", "dev", "--format", "json"])
        .run();
    assert_eq!(plan_phase(&output, "a")["command"], "set -e\n  echo dev\n\ndone");
    let text = Test::new().file(FILE, source).args(["plan", "--env", "dev"]).run();
    assert!(
        text.stdout.contains("   $ set -e\n   $   echo dev\n   $\n   $ done\n"),
        "{}",
        text.stdout
    );
}

#[test]
fn after_one_instance() {
    let source = r#"pipeline one
env dev {
}
service api {
}
service worker {
}
phase build {
  for each service
  run "build {{service}}"
}
phase migrate {
  after build[api]
  run "migrate"
}
phase rollout {
  for each service
  after migrate
  run "rollout {{service}}"
}
workflow deploy { build migrate rollout }
"#;
    let output = Test::new()
        .file(FILE, source)
        .args(["plan", "--env", "dev", "--format", "json"])
        .run();
    // migrate waits only for build[api]; build[worker] is ready at the same
    // time and goes first, being declared first.
    assert_eq!(
        plan_ids(&output),
        [
            "build[api]",
            "build[worker]",
            "migrate",
            "rollout[api]",
            "rollout[worker]"
        ]
    );
    assert_eq!(
        plan_phase(&output, "migrate")["after"],
        serde_json::json!(["build[api]"])
    );
    assert_eq!(
        plan_phase(&output, "rollout[worker]")["after"],
        serde_json::json!(["migrate"])
    );
    // Without build[api], migrate waits for nothing.
    let output = Test::new()
        .file(FILE, source)
        .args(["plan", "--env", "dev", "--services", "worker", "--format", "json"])
        .run();
    assert_eq!(plan_ids(&output), ["build[worker]", "migrate", "rollout[worker]"]);
    assert_eq!(plan_phase(&output, "migrate")["after"], serde_json::json!([]));
}

#[test]
fn service_after_orders_instances_within_each_phase() {
    // Declared worker first, but worker comes after api.
    let source = r#"pipeline order
env dev {
}
service worker {
  after api
}
service api {
}
phase build {
  for each service
  run "build {{service}}"
}
phase test {
  for each service
  after build
  run "test {{service}}"
}
workflow deploy { build test }
"#;
    let output = Test::new()
        .file(FILE, source)
        .args(["plan", "--env", "dev", "--format", "json"])
        .run();
    assert_eq!(
        plan_ids(&output),
        ["build[api]", "build[worker]", "test[api]", "test[worker]"]
    );
    assert_eq!(
        plan_phase(&output, "build[worker]")["after"],
        serde_json::json!(["build[api]"])
    );
    assert_eq!(
        plan_phase(&output, "test[worker]")["after"],
        serde_json::json!(["build[worker]", "test[api]"])
    );
}

#[test]
fn ties_are_broken_by_declaration_then_service_order() {
    // `last` is declared first but waits for `mid` and `zeta`; once ready
    // it goes before `omega`, declared after it.
    let source = r#"pipeline ties
env dev {
}
service b {
}
service a {
}
phase last {
  after mid, zeta
  for each service
  run "l"
}
phase zeta {
  run "z"
}
phase alpha {
  for each service
  run "a {{service}}"
}
phase mid {
  run "m"
}
phase omega {
  run "o"
}
workflow deploy { omega last mid alpha zeta }
"#;
    let expected = ["zeta", "alpha[b]", "alpha[a]", "mid", "last[b]", "last[a]", "omega"];
    for _ in 0..3 {
        let output = Test::new()
            .file(FILE, source)
            .args(["plan", "--env", "dev", "--format", "json"])
            .run();
        assert_eq!(plan_ids(&output), expected);
    }
    let text1 = Test::new().file(FILE, source).args(["plan", "--env", "dev"]).run();
    let text2 = Test::new().file(FILE, source).args(["plan", "--env", "dev"]).run();
    assert_eq!(text1.stdout, text2.stdout);
}

#[test]
fn workflow_selects_its_phases_and_drops_edges_outside_it() {
    let output = plan(&["--env", "dev", "--workflow", "build", "--format", "json"]).run();
    assert_eq!(
        plan_ids(&output),
        ["build[api]", "build[worker]", "push[api]", "push[worker]"]
    );
    let source = PIPELINE.replace(
        "workflow build  { build push }",
        "workflow build { build push }\nworkflow rollback { migrate rollout announce }",
    );
    let output = Test::new()
        .file(FILE, source)
        .args(["plan", "--env", "dev", "--workflow", "rollback", "--format", "json"])
        .run();
    assert_eq!(
        plan_ids(&output),
        ["migrate", "rollout[api]", "rollout[worker]", "announce"]
    );
    assert_eq!(plan_phase(&output, "migrate")["after"], serde_json::json!([]));
}

#[test]
fn conditions_operators() {
    let source = r#"pipeline cond
env dev {
  region = "eu"
  empty = ""
}
phase t1 {
  when region == "eu" && !(env != "dev")
  run "t1"
}
phase f1 {
  when empty || region == "us"
  run "f1"
}
phase t2 {
  when !empty
  run "t2"
}
phase t3 {
  when "" == empty && "{{region}}-x" == "eu-x"
  run "t3"
}
phase f2 {
  when region == "eu" && env == "prod" || "a" != "a"
  run "f2"
}
workflow deploy { t1 f1 t2 t3 f2 }
"#;
    let output = Test::new()
        .file(FILE, source)
        .args(["plan", "--env", "dev", "--format", "json"])
        .run();
    for (id, enabled) in [("t1", true), ("f1", false), ("t2", true), ("t3", true), ("f2", false)] {
        assert_eq!(plan_phase(&output, id)["enabled"], enabled, "{id}");
    }
}

#[test]
fn undefined_variable_only_in_the_env_that_lacks_it() {
    let source = r#"pipeline undefined
env dev {
}
env prod {
  replicas = "3"
}
phase rollout {
  run "./rollout --replicas {{replicas}}"
}
workflow deploy { rollout }
"#;
    Test::new()
        .file(FILE, source)
        .args(["plan", "--env", "prod"])
        .stdout_contains("./rollout --replicas 3")
        .run();
    Test::new()
        .file(FILE, source)
        .args(["plan", "--env", "dev"])
        .status(2)
        .stderr_contains("stagecraft::undefined-variable")
        .stderr_contains("variable `replicas` has no value in env `dev`")
        .run();
    Test::new()
        .file(FILE, source)
        .args(["plan", "--env", "dev", "--set", "replicas=2"])
        .stdout_contains("./rollout --replicas 2")
        .run();
}

#[test]
fn plan_formats_agree() {
    let json = plan(&["--env", "prod", "--format", "json"]).run().json();
    let ron_text = plan(&["--env", "prod", "--format", "ron"]).run().stdout;
    let ron_value: ron::Value = ron::from_str(&ron_text).expect("plan RON parses");
    let text = plan(&["--env", "prod"]).run().stdout;
    let ids: Vec<&str> = json["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .map(|p| p["id"].as_str().expect("id"))
        .collect();
    let ron_debug = format!("{ron_value:?}");
    for id in &ids {
        assert!(text.contains(id), "{id} not in text plan");
        assert!(ron_debug.contains(id), "{id} not in RON plan");
    }
    assert!(text.starts_with(&format!(
        "shop · workflow deploy · env prod · version unknown · {} instances",
        ids.len()
    )));
}

/// `check` finds every problem that does not depend on the env: a service
/// attribute that interpolates itself is a cycle in any env.
#[test]
fn check_reports_service_attribute_cycles() {
    let source = r#"pipeline s
env dev {
}
service api {
  path = "{{service.path}}/x"
}
phase build {
  for each service
  run "make {{service.path}}"
}
workflow deploy { build }
"#;
    Test::new()
        .file(FILE, source)
        .arg("check")
        .status(2)
        .stderr_contains("stagecraft::variable-cycle")
        .run();
}

/// A global var that uses `{{service}}`, used by a phase that runs once,
/// is wrong in every env, so `check` can say so.
#[test]
fn check_reports_service_through_a_var_in_a_global_phase() {
    let source = r#"pipeline s
var img = "{{service}}-img"
env dev {
}
service api {
}
phase g {
  run "echo {{img}}"
}
workflow deploy { g }
"#;
    Test::new()
        .file(FILE, source)
        .arg("check")
        .status(2)
        .stderr_contains("stagecraft::service-outside-for-each")
        .run();
}

#[test]
fn wait_takes_the_language_duration_syntax() {
    // `--wait` reads durations as `timeout` does: no spaces, no fractions,
    // units ms/s/m/h only.
    for bad in ["1.5m", "10 s", "10sec", "30"] {
        Test::new()
            .file(FILE, PIPELINE)
            .args(["deploy", "--env", "dev", "--dry-run", &format!("--wait={bad}")])
            .status(1)
            .stderr_contains("write a duration such as `30s`, `5m` or `1m30s`")
            .stdout("")
            .run();
    }
    Test::new()
        .file(FILE, PIPELINE)
        .args(["deploy", "--env", "dev", "--dry-run", "--wait=1m30s"])
        .status(0)
        .run();
}
