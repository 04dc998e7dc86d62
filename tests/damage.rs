//! Damage is never served silently (`spec/state.md`, *Reading, torn lines
//! and corruption*): a finished release whose log was cut short, lost its
//! last newline, was deleted or had a byte flipped is reported (exit 4,
//! naming the file), `releases list` still lists from the index, and a
//! later run of the env never writes to the damaged log.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use stagecraft::engine::{Event, Plan, PlannedInstance};
use stagecraft::state::{Clock, Holder, ReleaseMeta, ReleaseStatus, StateDir, Store, Timestamp, Wait};
use stagecraft::testing::{self, instance};

use crate::support::BIN;

const NOW: &str = "2026-11-25T12:00:00.000Z";
const ID: &str = "rel-20261125-120000000";

const PIPELINE: &str = r#"pipeline p

env dev {}

phase a {
  run "true"
}
phase b {
  after a
  run "true"
}
workflow deploy { a b }
"#;

/// Runs the binary in `dir` with the clock fixed; returns the exit code,
/// stdout and stderr.
fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("STAGECRAFT_NOW", NOW)
        .env_remove("STAGECRAFT_STATE_DIR")
        .output()
        .expect("run the stagecraft binary");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (
        output.status.code().unwrap_or(-1),
        text(&output.stdout),
        text(&output.stderr),
    )
}

/// A directory with one completed deploy of `dev`, and its log's path.
fn deployed() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    fs::write(dir.path().join("pipeline.stagecraft"), PIPELINE).expect("write the pipeline");
    let (code, _, stderr) = run(dir.path(), &["deploy", "--env", "dev", "--version", "v1"]);
    assert_eq!(code, 0, "{stderr}");
    let log = dir.path().join(format!(".stagecraft/pipelines/p/releases/{ID}.ron"));
    assert!(
        fs::read_to_string(&log)
            .unwrap()
            .ends_with("Finished(at: \"2026-11-25T12:00:00.000Z\")\n")
    );
    (dir, log)
}

/// Damages the log of a finished release with `damage`, then checks that
/// `show` exits 4 with `message` (which names the file), that `list` still
/// lists it completed from the index, and that the next deploy of the env
/// leaves the damaged log as it is.
fn assert_reported(damage: impl FnOnce(&Path), message: &str) {
    let (dir, log) = deployed();
    damage(&log);
    let before = fs::read(&log).ok();
    for format in ["text", "json"] {
        let (code, stdout, stderr) = run(dir.path(), &["releases", "show", ID, "--format", format]);
        assert_eq!(code, 4, "{stdout}{stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        assert!(stderr.contains(message), "{stderr}");
        assert!(stderr.contains(&format!("releases/{ID}.ron`")), "{stderr}");
    }
    let (code, stdout, stderr) = run(dir.path(), &["releases", "list", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let list: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (list[0]["id"].as_str(), list[0]["status"].as_str()),
        (Some(ID), Some("completed"))
    );
    // A later run of the env neither repairs nor appends to it.
    let (code, _, stderr) = run(dir.path(), &["deploy", "--env", "dev", "--version", "v2"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("interrupted"), "{stderr}");
    assert_eq!(fs::read(&log).ok(), before, "the damaged log was written to");
    let (code, _, stderr) = run(dir.path(), &["releases", "show", ID]);
    assert_eq!(code, 4, "{stderr}");
    let (code, stdout, _) = run(dir.path(), &["releases", "show", &format!("{ID}-001")]);
    assert_eq!(code, 0);
    assert!(stdout.contains("· completed"), "{stdout}");
}

fn cut(log: &Path, bytes: u64) {
    let len = fs::metadata(log).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(log)
        .unwrap()
        .set_len(len - bytes)
        .unwrap();
}

const ENDS_EARLY: &str = "the index says release rel-20261125-120000000 finished (completed) but its log";

#[test]
fn a_log_without_its_final_newline_is_reported() {
    assert_reported(|log| cut(log, 1), ENDS_EARLY);
}

#[test]
fn a_log_cut_inside_its_finish_line_is_reported() {
    assert_reported(|log| cut(log, 12), ENDS_EARLY);
}

#[test]
fn a_log_cut_to_a_line_boundary_before_its_finish_line_is_reported() {
    let without_finish = |log: &Path| {
        let text = fs::read_to_string(log).unwrap();
        let end = text.rfind("Finished(").unwrap();
        fs::write(log, &text[..end]).unwrap();
    };
    assert_reported(without_finish, ENDS_EARLY);
    let two_lines_left = |log: &Path| {
        let text = fs::read_to_string(log).unwrap();
        let end = text.match_indices('\n').nth(2).unwrap().0 + 1;
        fs::write(log, &text[..end]).unwrap();
    };
    assert_reported(two_lines_left, ENDS_EARLY);
}

#[test]
fn a_deleted_log_is_reported_missing() {
    assert_reported(
        |log| fs::remove_file(log).unwrap(),
        "the log of release rel-20261125-120000000 is missing: `",
    );
}

#[test]
fn a_flipped_byte_that_breaks_a_line_is_reported_corrupt() {
    let flip = |log: &Path| {
        let mut bytes = fs::read(log).unwrap();
        let at = bytes.windows(8).position(|w| w == b"Started(").unwrap();
        bytes[at + 2] ^= 0x20; // `Started` → `StArted`
        fs::write(log, bytes).unwrap();
    };
    assert_reported(flip, "at line 3: ");
    let newline = |log: &Path| {
        let mut bytes = fs::read(log).unwrap();
        let at = bytes.len() - 1;
        bytes[at] = b' ';
        fs::write(log, bytes).unwrap();
    };
    assert_reported(newline, ENDS_EARLY);
}

#[test]
fn an_unknown_release_is_still_unknown() {
    let (dir, _log) = deployed();
    let (code, _, stderr) = run(dir.path(), &["releases", "show", "rel-20261125-110000000"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("unknown release `rel-20261125-110000000`"), "{stderr}");
}

fn plan() -> Plan {
    let instances = vec![
        PlannedInstance {
            version: "v1".into(),
            ..instance("a", &[])
        },
        PlannedInstance {
            version: "v1".into(),
            ..instance("b", &[0])
        },
    ];
    testing::plan("p", "dev", "deploy", "v1", instances)
}

/// A release the index says is running is not judged by its log: a torn
/// last line is a writer mid-write.
#[test]
fn a_running_release_with_a_torn_last_line_reads_running() {
    let dir = tempfile::tempdir().unwrap();
    let holder = Holder::current("deploy", Some("dev"), Timestamp::parse(NOW).unwrap());
    let clock = Clock::from_setting(Some(NOW)).unwrap();
    let (mut store, _) = Store::open(dir.path(), "p", "dev", &holder, Wait::No, clock).unwrap();
    let id = store.next_id();
    let mut journal = store.begin(id, &plan(), ReleaseMeta::default()).unwrap();
    journal
        .append(&[Event::Started {
            instance: 0,
            attempt: 1,
        }])
        .unwrap();
    let path = journal.path().to_owned();
    let state = StateDir::new(dir.path()).pipeline("p");
    let mut log = fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut log, b"Completed(at: \"2026-11-25T1").unwrap();
    let release = state.release(&id.to_string()).unwrap();
    assert_eq!(release.status(), ReleaseStatus::Running);
    let list = state.releases(None, None).unwrap();
    assert_eq!(list[0].status, ReleaseStatus::Running);
    drop(journal);
}

/// A release the index lists as started whose log is missing is reported
/// by `list` too (it reads the log of every unfinished release).
#[test]
fn an_unfinished_release_without_its_log_is_reported_missing() {
    let dir = tempfile::tempdir().unwrap();
    let holder = Holder::current("deploy", Some("dev"), Timestamp::parse(NOW).unwrap());
    let clock = Clock::from_setting(Some(NOW)).unwrap();
    let (mut store, _) = Store::open(dir.path(), "p", "dev", &holder, Wait::No, clock).unwrap();
    let id = store.next_id();
    let journal = store.begin(id, &plan(), ReleaseMeta::default()).unwrap();
    fs::remove_file(journal.path()).unwrap();
    let state = StateDir::new(dir.path()).pipeline("p");
    let message = format!("the log of release {id} is missing: `");
    let error = state.release(&id.to_string()).unwrap_err().to_string();
    assert!(error.starts_with(&message), "{error}");
    let error = state.releases(None, None).unwrap_err().to_string();
    assert!(error.starts_with(&message), "{error}");
    drop(journal);
}
