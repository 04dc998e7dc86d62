//! Plans and graphs of the example pipelines in `pipelines/*/`: snapshots
//! of `plan` (text, JSON, RON) for two envs and of `graph` (dot, mermaid),
//! and a check that every example is clean.

use std::path::{Path, PathBuf};

use crate::support::{Output, Test, root};

/// `pipelines/*/pipeline.stagecraft`, sorted.
fn examples() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root().join("pipelines")) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("pipeline.stagecraft"))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `stagecraft ARGS` on a copy of `path` as `pipeline.stagecraft`.
fn run(path: &Path, args: &[&str]) -> Output {
    let source = std::fs::read(path).expect("read a pipeline");
    Test::new()
        .file("pipeline.stagecraft", source)
        .args(args.iter().copied())
        .run()
}

/// The names of the file's envs and workflows, in declaration order.
fn envs_and_workflows(path: &Path) -> (Vec<String>, Vec<String>) {
    let source = std::fs::read_to_string(path).expect("read a pipeline");
    let compilation = stagecraft::graph::compile(&source);
    assert!(
        !compilation.has_errors(),
        "{}: {:?}",
        path.display(),
        compilation.diagnostics
    );
    let pipeline = compilation.pipeline.expect("a valid file has a pipeline");
    (
        pipeline.envs.keys().map(ToString::to_string).collect(),
        pipeline.workflows.keys().map(ToString::to_string).collect(),
    )
}

fn snapshot_plans(path: &Path) {
    let (envs, workflows) = envs_and_workflows(path);
    assert!(!envs.is_empty(), "{}: an example without an env", path.display());
    assert!(
        !workflows.is_empty(),
        "{}: an example without a workflow",
        path.display()
    );
    let main = if workflows.iter().any(|w| w == "deploy") {
        "deploy".to_owned()
    } else {
        workflows[0].clone()
    };
    let first = envs[0].as_str();
    let last = envs[envs.len() - 1].as_str();
    let mut chosen = vec![first];
    if last != first {
        chosen.push(last);
    }
    for env in chosen {
        // The last env is planned as a real release would be: with a
        // version (and `push` on, as `deploy` always has it).
        let mut common = vec!["plan", "--env", env, "--workflow", main.as_str()];
        if env == last && env != first {
            common.extend(["--version", "1.4.0"]);
        }
        let with_format = |format: &str| {
            let mut args = common.clone();
            args.extend(["--format", format]);
            run(path, &args).stdout
        };
        insta::assert_snapshot!(format!("plan-{env}-{main}-text"), run(path, &common).stdout);
        insta::assert_snapshot!(format!("plan-{env}-{main}-json"), with_format("json"));
        insta::assert_snapshot!(format!("plan-{env}-{main}-ron"), with_format("ron"));
    }
    for workflow in workflows.iter().filter(|w| **w != main) {
        let output = run(path, &["plan", "--env", first, "--workflow", workflow]);
        insta::assert_snapshot!(format!("plan-{first}-{workflow}-text"), output.stdout);
    }
    insta::assert_snapshot!("graph-dot", run(path, &["graph", "--format", "dot"]).stdout);
    insta::assert_snapshot!(
        format!("graph-{last}-{main}-mermaid"),
        run(
            path,
            &["graph", "--format", "mermaid", "--workflow", &main, "--env", last]
        )
        .stdout
    );
}

#[test]
fn example_plans() {
    if examples().is_empty() {
        // No examples yet: keep the machinery tested on a local fixture.
        insta::glob!("cases/ok/product-example.stagecraft", snapshot_plans);
    } else {
        insta::glob!("../pipelines", "*/pipeline.stagecraft", snapshot_plans);
    }
}

#[test]
fn every_example_checks_clean() {
    for path in examples() {
        let source = std::fs::read(&path).expect("read a pipeline");
        let output = Test::new()
            .file("pipeline.stagecraft", source)
            .args(["check", "--deny-warnings"])
            .output();
        assert_eq!(output.status, 0, "{}:\n{}", path.display(), output.transcript());
        assert_eq!(output.stdout, "pipeline.stagecraft: ok\n", "{}", path.display());
        assert_eq!(output.stderr, "", "{}", path.display());
    }
}

#[test]
fn every_example_plans_every_workflow_in_every_env() {
    for path in examples() {
        let (envs, workflows) = envs_and_workflows(&path);
        for env in &envs {
            for workflow in &workflows {
                for format in ["text", "json", "ron"] {
                    run(
                        &path,
                        &["plan", "--env", env, "--workflow", workflow, "--format", format],
                    );
                }
            }
            run(&path, &["graph", "--env", env]);
        }
    }
}

#[test]
fn plans_are_deterministic() {
    for path in examples() {
        let (envs, _) = envs_and_workflows(&path);
        let first = run(&path, &["plan", "--env", &envs[0], "--format", "json"]).stdout;
        for _ in 0..3 {
            assert_eq!(
                run(&path, &["plan", "--env", &envs[0], "--format", "json"]).stdout,
                first
            );
        }
    }
}

/// Every instance's dependencies come before it, and a JSON plan and a RON
/// plan say the same thing.
#[test]
fn plans_are_topological_and_formats_agree() {
    for path in examples() {
        let (envs, workflows) = envs_and_workflows(&path);
        for workflow in &workflows {
            let json = run(
                &path,
                &["plan", "--env", &envs[0], "--workflow", workflow, "--format", "json"],
            )
            .json();
            let mut seen = std::collections::HashSet::new();
            for phase in json["phases"].as_array().expect("phases") {
                for dependency in phase["after"].as_array().expect("after") {
                    let dependency = dependency.as_str().expect("an id");
                    assert!(
                        seen.contains(dependency),
                        "{}: {} before {dependency}",
                        path.display(),
                        phase["id"]
                    );
                }
                seen.insert(phase["id"].as_str().expect("an id").to_owned());
            }
            let ron_text = run(
                &path,
                &["plan", "--env", &envs[0], "--workflow", workflow, "--format", "ron"],
            )
            .stdout;
            let from_ron: serde_json::Value = ron::from_str::<ron::Value>(&ron_text)
                .expect("RON parses")
                .into_rust()
                .expect("RON converts");
            assert_eq!(
                from_ron["phases"].as_array().map(Vec::len),
                json["phases"].as_array().map(Vec::len)
            );
        }
    }
}

/// Runs the binary in `dir` and returns its stdout, asserting exit 0.
fn stdout_in(dir: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new(crate::support::BIN)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("STAGECRAFT_STATE_DIR")
        .env_remove("STAGECRAFT_NOW")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run stagecraft");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?}: {stderr}");
    String::from_utf8(output.stdout).expect("utf-8")
}

/// `git ARGS` in `dir`, which must succeed.
fn git(dir: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8").trim().to_owned()
}

/// Asserts that `plan` prints what each command's `--dry-run` prints, for
/// every example, in `dir` (holding a copy of it as `pipeline.stagecraft`).
fn assert_plan_is_the_dry_run(dir: &Path, example: &Path, version: &[&str]) {
    for (plan, command) in [
        (&["--workflow", "deploy"][..], &["deploy"][..]),
        (&["--workflow", "build"], &["build"]),
        (&["--workflow", "build", "--push"], &["build", "--push"]),
    ] {
        let mut plan_args = vec!["plan", "--env", "dev", "-f", "pipeline.stagecraft"];
        plan_args.extend(plan);
        plan_args.extend(version);
        let mut run_args = command.to_vec();
        run_args.extend(["--env", "dev", "-f", "pipeline.stagecraft", "--dry-run"]);
        run_args.extend(version);
        assert_eq!(
            stdout_in(dir, &plan_args),
            stdout_in(dir, &run_args),
            "{}: {plan_args:?} and {run_args:?}",
            example.display()
        );
    }
}

#[test]
fn plan_prints_what_the_command_of_its_workflow_runs() {
    for example in examples() {
        // Outside a repository: the version is `unknown`.
        let outside = tempfile::TempDir::new().expect("temp dir");
        std::fs::copy(&example, outside.path().join("pipeline.stagecraft")).expect("copy");
        assert_plan_is_the_dry_run(outside.path(), &example, &["--version", "X"]);
        assert_plan_is_the_dry_run(outside.path(), &example, &[]);
        let printed = stdout_in(outside.path(), &["plan", "--env", "dev"]);
        assert!(printed.contains(" · version unknown · "), "{printed}");
        // In a repository: the version is the commit.
        let repo = tempfile::TempDir::new().expect("temp dir");
        std::fs::copy(&example, repo.path().join("pipeline.stagecraft")).expect("copy");
        git(repo.path(), &["init", "-q"]);
        git(repo.path(), &["add", "pipeline.stagecraft"]);
        git(repo.path(), &["commit", "-q", "-m", "example"]);
        assert_plan_is_the_dry_run(repo.path(), &example, &["--version", "X"]);
        assert_plan_is_the_dry_run(repo.path(), &example, &[]);
        let short = git(repo.path(), &["rev-parse", "--short", "HEAD"]);
        let printed = stdout_in(repo.path(), &["plan", "--env", "dev"]);
        assert!(printed.contains(&format!(" · version {short} · ")), "{printed}");
    }
}

#[test]
fn plan_takes_its_version_from_git_dirty_when_a_tracked_file_changed() {
    let repo = tempfile::TempDir::new().expect("temp dir");
    let file = repo.path().join("pipeline.stagecraft");
    std::fs::write(&file, "pipeline p\nenv dev {}\nphase a { run \"echo {{version}}\" }\nworkflow deploy { a }\nworkflow rollback { a }\n")
        .expect("write");
    let version = |args: &[&str]| {
        let json = stdout_in(
            repo.path(),
            &[&["plan", "--env", "dev", "--format", "json"], args].concat(),
        );
        serde_json::from_str::<serde_json::Value>(&json).expect("json")["version"]
            .as_str()
            .expect("a version")
            .to_owned()
    };
    // A repository without a commit has no version.
    git(repo.path(), &["init", "-q"]);
    assert_eq!(version(&[]), "unknown");
    git(repo.path(), &["add", "pipeline.stagecraft"]);
    git(repo.path(), &["commit", "-q", "-m", "one"]);
    let short = git(repo.path(), &["rev-parse", "--short", "HEAD"]);
    assert_eq!(version(&[]), short);
    // Untracked files (the state directory, say) do not make it dirty.
    std::fs::create_dir(repo.path().join(".stagecraft")).expect("mkdir");
    std::fs::write(repo.path().join(".stagecraft/x"), "x").expect("write");
    assert_eq!(version(&[]), short);
    // A change to a tracked file does, staged or not.
    std::fs::write(&file, std::fs::read_to_string(&file).expect("read") + "# changed\n").expect("write");
    assert_eq!(version(&[]), format!("{short}-dirty"));
    git(repo.path(), &["add", "pipeline.stagecraft"]);
    assert_eq!(version(&[]), format!("{short}-dirty"));
    // `--version` wins; a rollback plan does not guess its target's version.
    assert_eq!(version(&["--version", "v9"]), "v9");
    assert_eq!(version(&["--workflow", "rollback"]), "unknown");
    let source = stagecraft::engine::Source::probe(repo.path());
    assert_eq!(source.short.as_deref(), Some(short.as_str()));
    assert!(source.dirty);
    assert_eq!(source.commit.expect("a commit").len(), 40);
}
