//! A full disk, writing side: a run on a small disk fits (preallocation
//! never takes the last free space); output that fills the disk fails the
//! release (never a silently cut log), and the next command recovers once
//! the disk has room again; a record that cannot be written stops the run.
//! On a 100 KiB tmpfs mounted by the test (as root; skipped, saying so,
//! where `mount` is not permitted), and with the debug builds' fault.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::BIN;

/// A tmpfs of `size` mounted on a new directory, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one, or says why not (the test is then skipped).
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let path = dir.path().join("disk");
        fs::create_dir(&path).ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .stderr(Stdio::piped())
            .output();
        match mounted {
            Ok(output) if output.status.success() => Some(Self { path, _dir: dir }),
            Ok(output) => {
                let why = String::from_utf8_lossy(&output.stderr);
                eprintln!("SKIPPED: cannot mount a tmpfs here: {}", why.trim());
                None
            }
            Err(error) => {
                eprintln!("SKIPPED: cannot run `mount`: {error}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

const PIPELINE: &str = r#"pipeline p
env dev {}
phase small {
  run "echo hello"
}
phase big {
  after small
  run "head -c 400000 /dev/zero | tr '\\0' x | fold -w 99"
}
phase next {
  after big
  run "touch next.ran"
}
workflow deploy { small big next }
workflow quick { small }
"#;

fn run(dir: &Path, state: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("STAGECRAFT_NOW")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run stagecraft")
}

fn releases(dir: &Path, state: &Path) -> serde_json::Value {
    let list = run(dir, state, &["releases", "list", "--format", "json"], &[]);
    assert_eq!(list.status.code(), Some(0), "{}", String::from_utf8_lossy(&list.stderr));
    serde_json::from_slice(&list.stdout).expect("json")
}

#[test]
fn a_run_fits_on_a_100_kib_disk_and_leaves_no_zeros() {
    let Some(disk) = Tmpfs::mount("100k") else { return };
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("pipeline.stagecraft"), PIPELINE).unwrap();
    for version in ["v1", "v2", "v3"] {
        let output = run(
            dir.path(),
            &disk.path,
            &["run", "quick", "--env", "dev", "--version", version],
            &[],
        );
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let json = releases(dir.path(), &disk.path);
    assert_eq!(json.as_array().map(Vec::len), Some(3), "{json}");
    for entry in fs::read_dir(disk.path.join("pipelines/p/releases")).unwrap() {
        let log = fs::read(entry.unwrap().path()).unwrap();
        assert!(log.ends_with(b")\n"), "trimmed to its last line");
    }
}

#[test]
fn output_that_fills_the_disk_fails_the_release_and_the_next_run_recovers() {
    let Some(disk) = Tmpfs::mount("100k") else { return };
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("pipeline.stagecraft"), PIPELINE).unwrap();
    let output = run(
        dir.path(),
        &disk.path,
        &["deploy", "--env", "dev", "--version", "v1"],
        &[],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "a failed release: {stderr}");
    assert!(
        stderr.contains("✗ big failed (log not written: cannot write `")
            && stderr.contains("big.log`: No space left on device"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`big` failed first: it exited with code 0, but its output could not all be logged"),
        "{stderr}"
    );
    assert!(!dir.path().join("next.ran").exists(), "nothing runs after it");
    let json = releases(dir.path(), &disk.path);
    assert_eq!(json[0]["status"], "failed", "{json}");
    // Room again: the next command runs.
    let logs = disk.path.join("pipelines/p/logs");
    for release in fs::read_dir(&logs).unwrap() {
        let _ = fs::remove_file(release.unwrap().path().join("big.log"));
    }
    let output = run(
        dir.path(),
        &disk.path,
        &["run", "quick", "--env", "dev", "--version", "v2"],
        &[],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = releases(dir.path(), &disk.path);
    assert_eq!(json[0]["status"], "completed", "{json}");
    assert_eq!(json[1]["status"], "failed", "{json}");
}

/// `slow` runs while `quick` ends and `later`'s start is recorded.
const CONCURRENT: &str = "pipeline p\nenv dev {}\nphase slow {\n  run \"sleep 1.5; touch slow.ran\"\n}\nphase quick {\n  run \"touch quick.ran\"\n}\nphase later {\n  after quick\n  run \"touch later.ran\"\n}\nworkflow deploy { slow quick later }\nworkflow other { quick }\n";

fn show(dir: &Path, state: &Path) -> serde_json::Value {
    let list = releases(dir, state);
    let id = list[0]["id"].as_str().expect("an id").to_owned();
    let show = run(dir, state, &["releases", "show", &id, "--format", "json"], &[]);
    assert_eq!(show.status.code(), Some(0), "{}", String::from_utf8_lossy(&show.stderr));
    serde_json::from_slice(&show.stdout).expect("json")
}

fn status_of<'a>(release: &'a serde_json::Value, id: &str) -> (&'a str, Option<&'a str>) {
    let instances = release["phases"].as_array().expect("phases");
    let instance = instances.iter().find(|i| i["id"] == id).expect("the instance");
    (
        instance["status"].as_str().expect("a status"),
        instance["reason"].as_str(),
    )
}

#[test]
fn a_record_that_cannot_be_written_stops_the_run_lets_what_runs_finish_and_writes_the_last_state() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    fs::write(dir.path().join("pipeline.stagecraft"), CONCURRENT).unwrap();
    // The write that records `later` started fails once, as on a full disk.
    let fault = [("STAGECRAFT_DEBUG_FAIL_WRITE", "start:later")];
    let args = ["deploy", "--env", "dev", "--version", "v1", "--jobs", "2"];
    let output = run(dir.path(), &state, &args, &fault);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("error: cannot record the run: cannot append to `")
            && stderr.contains(".ron`: No space left on device"),
        "{stderr}"
    );
    assert!(
        stderr.contains("help: the state answered again once the commands running had ended: release rel-")
            && stderr.contains(" is recorded as failed"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("later.ran").exists(),
        "nothing starts once a record failed"
    );
    assert!(dir.path().join("slow.ran").exists(), "what ran was let finish");
    let release = show(dir.path(), &state);
    assert_eq!(release["status"], "failed", "{release}");
    assert_eq!(status_of(&release, "slow"), ("completed", None), "{release}");
    assert_eq!(status_of(&release, "quick"), ("completed", None), "{release}");
    assert_eq!(
        status_of(&release, "later"),
        ("failed", Some("interrupted")),
        "{release}"
    );
    // Nothing is left for the next command to recover.
    let output = run(dir.path(), &state, &["run", "other", "--env", "dev"], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("interrupted"), "{stderr}");
}

#[test]
fn a_disk_that_stays_full_leaves_the_release_to_the_next_command() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    fs::write(dir.path().join("pipeline.stagecraft"), CONCURRENT).unwrap();
    // That write and every later one fail; a second of trying again.
    let fault = [
        ("STAGECRAFT_DEBUG_FAIL_WRITE", "start:later+"),
        ("STAGECRAFT_STATE_RETRY", "1s"),
    ];
    let args = ["deploy", "--env", "dev", "--version", "v1", "--jobs", "2"];
    let output = run(dir.path(), &state, &args, &fault);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("help: its last state could not be written either (cannot append to `")
            && stderr.contains(
                "No space left on device (os error 28)); the release is left unfinished, and the next command marks it interrupted"
            ),
        "{stderr}"
    );
    assert!(dir.path().join("slow.ran").exists(), "what ran was let finish");
    assert!(!dir.path().join("later.ran").exists());
    let output = run(dir.path(), &state, &["run", "other", "--env", "dev"], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        // `quick` ended in the step whose record failed.
        stderr.contains("was interrupted: slow, quick marked failed (interrupted), 1 not-started instance skipped"),
        "{stderr}"
    );
}
