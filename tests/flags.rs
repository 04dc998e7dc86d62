//! Environment variables that stand for flags (`STAGECRAFT_FILE`,
//! `STAGECRAFT_ENV`, `STAGECRAFT_DRY_RUN`; the command line wins), and
//! `stagecraft completions`.

use std::path::Path;
use std::process::Command;

use crate::support;

const PIPELINE: &str = r#"pipeline shop
env dev {}
env prod extends dev {}
phase hello {
  run "echo hello {{env}}"
}
workflow deploy { hello }
"#;

/// Runs stagecraft in `dir` with these variables (and none other of the
/// flag variables); returns (exit code, stdout, stderr).
fn with_env(dir: &Path, vars: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut command = support::command(dir, args);
    command.envs(vars.iter().copied());
    let output = command.output().expect("run stagecraft");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn project() -> tempfile::TempDir {
    let temp = tempfile::Builder::new()
        .prefix("stagecraft-flags")
        .tempdir()
        .expect("tempdir");
    std::fs::write(temp.path().join("a.stagecraft"), PIPELINE).expect("write");
    std::fs::write(temp.path().join("b.stagecraft"), PIPELINE.replace("shop", "other")).expect("write");
    temp
}

#[test]
fn stagecraft_file_stands_for_f_and_the_command_line_wins() {
    let temp = project();
    let dir = temp.path();
    let file = [("STAGECRAFT_FILE", "a.stagecraft")];
    let (status, stdout, _) = with_env(dir, &file, &["plan", "--env", "dev"]);
    assert_eq!(status, 0);
    assert!(stdout.starts_with("shop · "), "{stdout}");
    let (_, stdout, _) = with_env(dir, &file, &["plan", "--env", "dev", "-f", "b.stagecraft"]);
    assert!(stdout.starts_with("other · "), "{stdout}");
    // Files named to `check` win too.
    let (status, stdout, _) = with_env(dir, &file, &["check", "b.stagecraft"]);
    assert_eq!((status, stdout.as_str()), (0, "b.stagecraft: ok\n"));
    let (_, stdout, _) = with_env(dir, &file, &["check"]);
    assert_eq!(stdout, "a.stagecraft: ok\n");
}

#[test]
fn stagecraft_env_stands_for_env_and_the_command_line_wins() {
    let temp = project();
    let dir = temp.path();
    let vars = [("STAGECRAFT_FILE", "a.stagecraft"), ("STAGECRAFT_ENV", "prod")];
    let (_, stdout, _) = with_env(dir, &vars, &["plan"]);
    assert!(stdout.contains("env prod"), "{stdout}");
    let (_, stdout, _) = with_env(dir, &vars, &["plan", "--env", "dev"]);
    assert!(stdout.contains("env dev"), "{stdout}");
    let (status, stdout, _) = with_env(dir, &vars, &["deploy", "--dry-run"]);
    assert_eq!(status, 0);
    assert!(stdout.contains("$ echo hello prod"), "{stdout}");
    let (status, _, stderr) = with_env(dir, &[("STAGECRAFT_ENV", "qa")], &["deploy", "-f", "a.stagecraft"]);
    assert_eq!(status, 1);
    assert!(stderr.starts_with("error: invalid environment: qa\n"), "{stderr}");
}

#[test]
fn stagecraft_dry_run_takes_truthy_and_falsy_words_and_refuses_others() {
    let temp = project();
    let dir = temp.path();
    let args = ["deploy", "-f", "a.stagecraft", "--env", "dev", "--version", "v1"];
    for truthy in ["1", "true", "TRUE", "yes", "On"] {
        let (status, stdout, stderr) = with_env(dir, &[("STAGECRAFT_DRY_RUN", truthy)], &args);
        assert_eq!(status, 0, "{stderr}");
        assert!(
            stdout.contains("$ echo hello dev"),
            "{truthy}: a dry run prints the plan:\n{stdout}"
        );
        assert!(!dir.join(".stagecraft").exists(), "{truthy}: a dry run writes nothing");
    }
    let (status, _, stderr) = with_env(dir, &[("STAGECRAFT_DRY_RUN", "maybe")], &args);
    assert_eq!(status, 1);
    assert!(
        stderr.starts_with(
            "error: invalid value 'maybe' for '--dry-run': `STAGECRAFT_DRY_RUN` takes 1, true, yes or on \
             (a dry run), or 0, false, no, off or nothing\n"
        ),
        "{stderr}"
    );
    assert!(!dir.join(".stagecraft").exists());
    for falsy in ["0", "false", "No", "off", ""] {
        let (status, stdout, stderr) = with_env(dir, &[("STAGECRAFT_DRY_RUN", falsy)], &args);
        assert_eq!(status, 0, "{stderr}");
        assert!(stdout.contains("hello | hello dev"), "{falsy:?}: a real run:\n{stdout}");
    }
    // The flag wins over a falsy value.
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let (_, stdout, _) = with_env(dir, &[("STAGECRAFT_DRY_RUN", "0")], &dry);
    assert!(stdout.contains("$ echo hello dev"), "{stdout}");
}

#[test]
fn help_names_the_variables() {
    let temp = project();
    let (status, help, _) = with_env(temp.path(), &[], &["deploy", "--help"]);
    assert_eq!(status, 0);
    for name in [
        "[env: STAGECRAFT_FILE=]",
        "[env: STAGECRAFT_ENV=]",
        "[env: STAGECRAFT_DRY_RUN=]",
        "[env: STAGECRAFT_STATE=]",
        "[env: STAGECRAFT_STATE_DIR=]",
    ] {
        assert!(help.contains(name), "{name} in:\n{help}");
    }
    let (_, help, _) = with_env(temp.path(), &[], &["plan", "--help"]);
    assert!(help.contains("[env: STAGECRAFT_ENV=]"), "{help}");
}

#[test]
fn commands_do_not_inherit_stagecraft_file() {
    let temp = project();
    std::fs::write(
        temp.path().join("a.stagecraft"),
        PIPELINE.replace("echo hello {{env}}", "echo \\\"file=${STAGECRAFT_FILE-unset}\\\""),
    )
    .expect("write");
    let vars = [("STAGECRAFT_FILE", "a.stagecraft")];
    let (status, stdout, stderr) = with_env(temp.path(), &vars, &["deploy", "--env", "dev", "--version", "v1"]);
    assert_eq!(status, 0, "{stderr}");
    assert!(stdout.contains("hello | file=unset"), "{stdout}");
}

// ---- completions -----------------------------------------------------------

#[test]
fn the_bash_script_loads_and_completes_a_subcommand() {
    let temp = project();
    let (status, script, _) = with_env(temp.path(), &[], &["completions", "bash"]);
    assert_eq!(status, 0);
    std::fs::write(temp.path().join("stagecraft.bash"), &script).expect("write");
    let complete = |line: &str| {
        let test = format!(
            "source ./stagecraft.bash || exit 9\n\
             COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}\n\
             read -r -a COMP_WORDS <<< \"$COMP_LINE\"\n\
             case \"$COMP_LINE\" in *' ') COMP_WORDS+=('');; esac\n\
             COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))\n\
             complete -p stagecraft >/dev/null || exit 8\n\
             _stagecraft stagecraft \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"\n"
        );
        let output = Command::new("bash")
            .args(["--norc", "--noprofile", "-c", &test])
            .current_dir(temp.path())
            .output()
            .expect("run bash");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert_eq!(complete("stagecraft dep"), "deploy\n");
    let all = complete("stagecraft ");
    for command in ["check", "deploy", "rollback", "init", "list", "completions"] {
        assert!(all.lines().any(|l| l == command), "{command} in:\n{all}");
    }
    assert!(complete("stagecraft init --template ").contains("static-site"));
}

#[test]
fn zsh_and_fish_scripts_are_printed() {
    let temp = project();
    for (shell, marker) in [("zsh", "#compdef stagecraft"), ("fish", "complete -c stagecraft")] {
        let (status, script, _) = with_env(temp.path(), &[], &["completions", shell]);
        assert_eq!(status, 0);
        assert!(script.contains(marker), "{shell}:\n{script}");
    }
    let (status, _, stderr) = with_env(temp.path(), &[], &["completions", "tcsh"]);
    assert_eq!(status, 1);
    assert!(stderr.contains("[possible values: bash, zsh, fish]"), "{stderr}");
}
