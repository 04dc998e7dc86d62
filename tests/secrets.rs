//! Secrets, end to end with the real binary: a secret's value reaches a
//! command only through its environment, and is found nowhere else: not
//! in the output (streamed, grouped, the failure report), not in any file
//! under the state directory (logs included), not in `releases show`, not
//! in stagecraft's or a child's command line. A missing secret stops a run
//! before anything runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::BIN;

const TOKEN: &str = "SuperSecret123";
const PROD_DB: &str = "ProdDbPass456";
const DEV_DB: &str = "DevDbFromFile789";

const PIPELINE: &str = r#"pipeline demo

secret api_token from env "SC_TEST_API_TOKEN"

env dev {
  secret db_password from file "secrets/dev-db"
}

env prod extends dev {
  secret db_password from env "SC_TEST_PROD_DB"
}

phase show {
  run """
    echo "token=$api_token db=$db_password"
    printf 'split: %s' "${api_token%???????}"; sleep 0.1; printf '%s end\n' "${api_token#???????}"
  """
}

phase fail {
  after show
  run "echo \"Bearer $api_token\" >&2; exit 3"
}

workflow deploy { show fail }
workflow wait { hold }

phase hold {
  run "echo holding; touch held; sleep 3"
}
"#;

/// A pipeline in a temporary directory, with the dev secret's file.
struct Project {
    dir: tempfile::TempDir,
}

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

impl Project {
    fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("stagecraft-secrets").tempdir().unwrap();
        std::fs::write(dir.path().join("pipeline.stagecraft"), PIPELINE).unwrap();
        std::fs::create_dir(dir.path().join("secrets")).unwrap();
        std::fs::write(dir.path().join("secrets/dev-db"), format!("{DEV_DB}\n")).unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str], secrets: bool) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .env_remove("STAGECRAFT_STATE_DIR")
            .env_remove("SC_TEST_API_TOKEN")
            .env_remove("SC_TEST_PROD_DB")
            .stdin(Stdio::null());
        if secrets {
            command.env("SC_TEST_API_TOKEN", TOKEN).env("SC_TEST_PROD_DB", PROD_DB);
        }
        command
    }

    fn run(&self, args: &[&str], secrets: bool) -> Run {
        let output = self.command(args, secrets).output().unwrap();
        Run {
            status: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    fn text(&self) -> String {
        format!(
            "--- stdout\n{}--- stderr\n{}--- exit {}",
            self.stdout, self.stderr, self.status
        )
    }

    #[track_caller]
    fn lacks_values(&self) {
        for value in [TOKEN, PROD_DB, DEV_DB] {
            assert!(!self.text().contains(value), "{value} shown:\n{}", self.text());
        }
    }
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[track_caller]
fn no_value_in_state(project: &Project) {
    let state = project.path().join(".stagecraft");
    let all = files(&state);
    assert!(all.iter().any(|f| f.extension().is_some_and(|e| e == "log")), "{all:?}");
    for file in all {
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for value in [TOKEN, PROD_DB, DEV_DB] {
            assert!(!text.contains(value), "{value} in {}:\n{text}", file.display());
        }
    }
}

/// The release id a failed run names in its last line.
fn release_id(run: &Run) -> String {
    let at = run.stderr.find("rel-").unwrap_or_else(|| panic!("{}", run.text()));
    run.stderr[at..]
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn a_run_masks_every_value_in_output_logs_state_and_reports() {
    let project = Project::new();
    for (env, jobs) in [("prod", "1"), ("dev", "2")] {
        let run = project.run(&["deploy", "--env", env, "--jobs", jobs], true);
        assert_eq!(run.status, 3, "{}", run.text());
        let all = run.text();
        assert!(all.contains("token=*** db=***"), "{all}");
        assert!(
            all.contains("split: *** end"),
            "the value split across two writes:\n{all}"
        );
        assert!(all.contains("Bearer ***"), "the failure report's last lines:\n{all}");
        run.lacks_values();
        for format in ["text", "json"] {
            let show = project.run(&["releases", "show", &release_id(&run), "--format", format], false);
            assert_eq!(show.status, 0, "{}", show.text());
            show.lacks_values();
        }
        let logs: String = files(&project.path().join(".stagecraft"))
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "log"))
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect();
        assert!(
            logs.contains("token=*** db=***") && logs.contains("Bearer ***"),
            "{logs}"
        );
    }
    no_value_in_state(&project);
}

#[test]
fn a_missing_secret_stops_the_run_before_anything_runs() {
    let project = Project::new();
    for args in [
        &["deploy", "--env", "prod"][..],
        &["deploy", "--env", "prod", "--dry-run"],
    ] {
        let run = project.run(args, false);
        assert_eq!(run.status, 1, "{}", run.text());
        assert!(run.stderr.contains("`SC_TEST_API_TOKEN` is not set"), "{}", run.text());
        assert!(run.stderr.contains("`SC_TEST_PROD_DB` is not set"), "{}", run.text());
        assert!(run.stdout.is_empty(), "{}", run.text());
    }
    std::fs::remove_file(project.path().join("secrets/dev-db")).unwrap();
    let mut command = project.command(&["run", "wait", "--env", "dev"], false);
    let output = command.env("SC_TEST_API_TOKEN", TOKEN).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("file `secrets/dev-db` does not exist"), "{stderr}");
    assert!(!project.path().join("held").exists(), "nothing ran");
    assert!(!project.path().join(".stagecraft").exists(), "nothing was written");
}

#[test]
fn plans_and_dry_runs_say_where_each_secret_comes_from() {
    let project = Project::new();
    let plan = project.run(&["plan", "--workflow", "deploy", "--env", "prod"], false);
    assert_eq!(plan.status, 0, "{}", plan.text());
    assert!(
        plan.stdout
            .contains("$api_token    <secret from env SC_TEST_API_TOKEN>"),
        "{}",
        plan.text()
    );
    assert!(
        plan.stdout.contains("$db_password  <secret from env SC_TEST_PROD_DB>"),
        "{}",
        plan.text()
    );
    let plan = project.run(&["plan", "--workflow", "deploy", "--env", "dev"], true);
    assert!(
        plan.stdout.contains("<secret from file secrets/dev-db>"),
        "{}",
        plan.text()
    );
    plan.lacks_values();
    let dry = project.run(&["deploy", "--env", "prod", "--dry-run"], true);
    assert_eq!(dry.status, 0, "{}", dry.text());
    assert!(
        dry.stdout.contains("<secret from env SC_TEST_PROD_DB>"),
        "{}",
        dry.text()
    );
    assert!(
        dry.stdout.contains("echo \"token=$api_token db=$db_password\""),
        "{}",
        dry.text()
    );
    dry.lacks_values();
    assert!(!project.path().join(".stagecraft").exists());
}

/// `plan --format json|ron` lists the env's secrets by name and source
/// (an env's own overriding the global one), never a value.
#[test]
fn machine_plans_list_each_secret_by_source() {
    let project = Project::new();
    for (format, env) in [("json", "prod"), ("ron", "dev")] {
        let plan = project.run(
            &["plan", "--workflow", "deploy", "--env", env, "--format", format],
            true,
        );
        assert_eq!(plan.status, 0, "{}", plan.text());
        plan.lacks_values();
        let secrets: String = plan
            .stdout
            .split_inclusive('\n')
            .skip_while(|line| !line.contains("secrets"))
            .take_while(|line| !line.contains("phases"))
            .collect();
        insta::assert_snapshot!(format!("plan_secrets_{format}"), secrets);
    }
    let json = project.run(
        &["plan", "--workflow", "deploy", "--env", "prod", "--format", "json"],
        true,
    );
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(value["secrets"][1]["source"], "SC_TEST_PROD_DB", "{}", json.text());
}

/// A file secret holding a NUL byte cannot be put in an environment: the
/// run stops before anything runs, naming the secret and its file.
#[test]
fn a_secret_with_a_nul_byte_stops_the_run() {
    let project = Project::new();
    std::fs::write(project.path().join("secrets/dev-db"), b"pass\0word\n").unwrap();
    for args in [
        &["run", "wait", "--env", "dev"][..],
        &["deploy", "--env", "dev", "--dry-run"],
    ] {
        let run = project.run(args, true);
        assert_eq!(run.status, 1, "{}", run.text());
        assert!(
            run.stderr
                .contains("secret `db_password` is missing: file `secrets/dev-db` holds a NUL byte"),
            "{}",
            run.text()
        );
        assert!(run.stdout.is_empty(), "{}", run.text());
    }
    assert!(!project.path().join("held").exists(), "nothing ran");
    assert!(!project.path().join(".stagecraft").exists(), "nothing was written");
}

#[test]
fn set_cannot_give_a_secret_a_value() {
    let project = Project::new();
    for args in [
        &["plan", "--workflow", "deploy", "--env", "prod", "--set", "api_token=x"][..],
        &["deploy", "--env", "prod", "--set", "api_token=x"],
    ] {
        let run = project.run(args, true);
        assert_eq!(run.status, 1, "{}", run.text());
        assert!(
            run.stderr.contains("cannot set the secret `api_token`"),
            "{}",
            run.text()
        );
        assert!(run.stderr.contains("`--set` values are not secret"), "{}", run.text());
    }
}

/// The parent's pid of process `pid`, from `/proc/PID/stat`.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// The processes below `root`.
fn descendants(root: u32) -> Vec<u32> {
    let pids: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.into_iter()
        .filter(|&pid| {
            let mut at = pid;
            while let Some(parent) = parent_of(at) {
                if parent == root {
                    return true;
                }
                if parent <= 1 {
                    return false;
                }
                at = parent;
            }
            false
        })
        .collect()
}

#[test]
fn no_value_is_in_a_command_line_only_in_the_child_environment() {
    if !Path::new("/proc/self/cmdline").exists() {
        return;
    }
    let project = Project::new();
    let mut child = project
        .command(&["run", "wait", "--env", "prod"], true)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let held = project.path().join("held");
    let until = Instant::now() + Duration::from_secs(20);
    while !held.exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(held.exists(), "the phase did not start");
    let below = descendants(child.id());
    assert!(!below.is_empty(), "the phase's processes are running");
    let mut environments = String::new();
    for pid in below.iter().copied().chain([child.id()]) {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        for value in [TOKEN, PROD_DB] {
            assert!(
                !cmdline.contains(value),
                "{value} in the command line of {pid}: {cmdline}"
            );
        }
        if pid != child.id() {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            environments.push_str(&String::from_utf8_lossy(&environ));
        }
    }
    assert!(
        environments.contains(&format!("api_token={TOKEN}")),
        "the command's environment has the secret"
    );
    assert!(environments.contains(&format!("db_password={PROD_DB}")));
    assert!(child.wait().unwrap().success());
    no_value_in_state(&project);
}
