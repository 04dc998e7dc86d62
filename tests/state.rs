//! State storage, locking and recovery, through the public API of
//! `stagecraft::state`.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use stagecraft::engine::{Event, Plan, Reason, Recorder};
use stagecraft::state::{
    Clock, Commit, Holder, Lock, PhaseStatus, ReleaseId, ReleaseMeta, ReleaseStatus, RollbackTarget, Scope, Services,
    StateDir, StateError, Store, Timestamp, Wait, restore,
};
use stagecraft::testing::{self, instance};

const NOW: &str = "2026-11-25T17:02:29.123Z";

fn clock(at: &str) -> Clock {
    Clock::from_setting(Some(at)).unwrap()
}

fn holder(workflow: &str) -> Holder {
    Holder::current(workflow, Some("prod"), Timestamp::parse(NOW).unwrap())
}

fn open(dir: &Path, at: &str) -> (Store, Vec<stagecraft::state::Recovered>) {
    Store::open(dir, "webapp", "prod", &holder("deploy"), Wait::No, clock(at)).unwrap()
}

fn plan(workflow: &str, version: &str) -> Plan {
    let instances = vec![
        instance("build[api]", &[]),
        instance("push[api]", &[0]),
        instance("rollout[api]", &[1]),
        instance("finalize", &[2]),
    ];
    testing::plan("webapp", "prod", workflow, version, instances)
}

/// What a CLI run knows of a release: every field set.
fn meta() -> ReleaseMeta {
    ReleaseMeta {
        rollback_of: None,
        commit: Some(Commit {
            sha: "8d1f0c2a9b7e4d3c2b1a09f8e7d6c5b4a3928170".into(),
            dirty: false,
        }),
        services: Some(Services {
            names: vec!["api".into()],
            all: true,
        }),
        versions: std::collections::BTreeMap::new(),
        set_keys: vec!["region".into()],
        digest: Some("sha256:5f2b9c0e8a7d6f1e3c4b2a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f".into()),
        user: Some("ci@vm".into()),
        undo_on_failure: false,
        resumes: None,
        set_digests: std::collections::BTreeMap::from([(
            "region".into(),
            "sha256:2c0b5a9e1f3d4c6b8a7e9d0f1c2b3a4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b".into(),
        )]),
    }
}

/// A whole deploy: a retry, a condition skip, a marker phase.
fn deploy(store: &mut Store, version: &str) -> stagecraft::state::Release {
    let id = store.next_id();
    let mut journal = store.begin(id, &plan("deploy", version), meta()).unwrap();
    let steps: Vec<Vec<Event>> = vec![
        vec![Event::Started {
            instance: 0,
            attempt: 1,
        }],
        vec![Event::AttemptFailed {
            instance: 0,
            attempt: 1,
            exit_code: Some(1),
            reason: Reason::ExitCode,
        }],
        vec![Event::Started {
            instance: 0,
            attempt: 2,
        }],
        vec![
            Event::Completed {
                instance: 0,
                exit_code: Some(0),
            },
            Event::Skipped {
                instance: 1,
                reason: Reason::Condition,
            },
            Event::Started {
                instance: 2,
                attempt: 1,
            },
        ],
        vec![
            Event::Completed {
                instance: 2,
                exit_code: Some(0),
            },
            Event::Started {
                instance: 3,
                attempt: 1,
            },
        ],
        vec![Event::Completed {
            instance: 3,
            exit_code: None,
        }],
    ];
    for step in steps {
        journal.record(&step).unwrap();
    }
    journal.finish().unwrap()
}

#[test]
fn round_trip_through_storage() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join(".stagecraft");
    let (mut store, recovered) = open(&dir, NOW);
    assert!(recovered.is_empty());
    let release = deploy(&mut store, "v1");
    assert_eq!(release.status(), ReleaseStatus::Completed);
    drop(store);

    let state = StateDir::new(&dir).pipeline("webapp");
    let loaded = state.release(&release.id.to_string()).unwrap();
    assert_eq!(loaded, release);
    let build = &loaded.instances()[0];
    assert_eq!(build.attempts().len(), 2);
    assert_eq!(loaded.instances()[1].status(), PhaseStatus::Skipped);
    let listed = state.releases(None, None).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].id, listed[0].status), (release.id, ReleaseStatus::Completed));
    assert!(state.releases(Some("staging"), None).unwrap().is_empty());

    let error = state.release("rel-20300101-000000000").unwrap_err();
    assert_eq!(error.to_string(), "unknown release `rel-20300101-000000000`");
    assert!(matches!(
        state.release("nonsense"),
        Err(StateError::UnknownRelease { .. })
    ));
    // A directory that does not exist has no releases.
    assert!(
        StateDir::new(temp.path().join("none"))
            .pipeline("webapp")
            .releases(None, None)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn previous_and_rollback_of_are_recorded() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join(".stagecraft");
    let (mut store, _) = open(&dir, NOW);
    let v1 = deploy(&mut store, "v1");
    let build = {
        let id = store.next_id();
        let mut journal = store.begin(id, &plan("build", "v2"), ReleaseMeta::default()).unwrap();
        journal
            .record(&[Event::Skipped {
                instance: 0,
                reason: Reason::Condition,
            }])
            .unwrap();
        for instance in 1..4 {
            journal
                .record(&[Event::Skipped {
                    instance,
                    reason: Reason::Condition,
                }])
                .unwrap();
        }
        journal.finish().unwrap()
    };
    assert_eq!(build.previous, None, "a build is not one of the env's releases");
    let v2 = deploy(&mut store, "v2");
    assert_eq!(v2.previous, Some(v1.id));
    let services = ["api".to_owned()];
    let scope = Scope {
        services: &services,
        selected: None,
    };
    let chosen = restore(
        store.dir().history("prod"),
        "prod",
        store.live(),
        &RollbackTarget::Previous,
        scope,
    )
    .unwrap()
    .unwrap();
    let target = chosen.target;
    assert_eq!(target.id, v1.id);
    assert_eq!(
        (chosen.changes[0].service.as_str(), chosen.changes[0].to.as_str()),
        ("api", "v1")
    );
    let id = store.next_id();
    let journal = store
        .begin(
            id,
            &plan("rollback", "v1"),
            ReleaseMeta {
                rollback_of: Some(target.id),
                ..ReleaseMeta::default()
            },
        )
        .unwrap();
    let rollback = journal.release().clone();
    assert_eq!((rollback.previous, rollback.rollback_of), (Some(v2.id), Some(v1.id)));
}

#[test]
fn torn_last_line_is_ignored() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join(".stagecraft");
    let (mut store, _) = open(&dir, NOW);
    let id = store.next_id();
    let path = {
        let mut journal = store.begin(id, &plan("deploy", "v1"), ReleaseMeta::default()).unwrap();
        journal
            .record(&[Event::Started {
                instance: 0,
                attempt: 1,
            }])
            .unwrap();
        journal.path().to_owned()
    };
    drop(store);
    // The writer died in the middle of a line.
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"Completed(at: \"2026-11-")
        .unwrap();
    let state = StateDir::new(&dir).pipeline("webapp");
    let release = state.release(&id.to_string()).unwrap();
    assert_eq!(release.instances()[0].status(), PhaseStatus::Running);
    assert_eq!(state.releases(None, None).unwrap()[0].status, ReleaseStatus::Running);

    // The next run cuts the torn line and recovers the release.
    let (_store, recovered) = open(&dir, NOW);
    assert_eq!(recovered.len(), 1);
    let text = fs::read_to_string(&path).unwrap();
    assert!(!text.contains("2026-11-\"") && !text.contains("Completed"), "{text}");
    let release = state.release(&id.to_string()).unwrap();
    assert_eq!(release.instances()[0].status(), PhaseStatus::Failed);
}

#[test]
fn corrupt_line_is_an_error_naming_the_file_and_nothing_changes() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join(".stagecraft");
    let (mut store, _) = open(&dir, NOW);
    let release = deploy(&mut store, "v1");
    drop(store);
    let state = StateDir::new(&dir).pipeline("webapp");
    let log = state.log_path(release.id);
    let text = fs::read_to_string(&log).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(3, "Started(at: garbage)");
    let corrupted = lines.join("\n") + "\n";
    fs::write(&log, &corrupted).unwrap();

    let error = state.release(&release.id.to_string()).unwrap_err();
    assert!(matches!(error, StateError::Corrupt { line: 4, .. }), "{error:?}");
    assert!(error.to_string().contains(&log.display().to_string()), "{error}");
    // Opening the store (which recovers) does not touch a finished log.
    let (store, _) = open(&dir, NOW);
    drop(store);
    assert_eq!(fs::read_to_string(&log).unwrap(), corrupted);

    // A corrupt index stops the store from opening, and is left as it is.
    let index = state.index_path("prod");
    let mut text = fs::read_to_string(&index).unwrap();
    // Before its last line: the newest lines are the ones a run reads.
    text.insert_str(text[..text.len() - 1].rfind('\n').unwrap() + 1, "}{\n");
    fs::write(&index, &text).unwrap();
    let error = Store::open(&dir, "webapp", "prod", &holder("deploy"), Wait::No, clock(NOW)).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with(&format!("corrupt state file `{}` at line 4", index.display())),
        "{error}"
    );
    assert!(state.releases(None, None).is_err());
    assert_eq!(fs::read_to_string(&index).unwrap(), text);
}

#[test]
fn an_illegal_event_is_refused_and_not_written() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join(".stagecraft");
    let (mut store, _) = open(&dir, NOW);
    let id = store.next_id();
    let mut journal = store.begin(id, &plan("deploy", "v1"), ReleaseMeta::default()).unwrap();
    let before = fs::read_to_string(journal.path()).unwrap();
    let error = journal
        .record(&[
            Event::Started {
                instance: 0,
                attempt: 1,
            },
            Event::Failed {
                instance: 1,
                exit_code: Some(1),
                reason: Reason::ExitCode,
            },
        ])
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "illegal transition `pending` → `failed` for `push[api]`"
    );
    assert_eq!(fs::read_to_string(journal.path()).unwrap(), before);
    assert_eq!(journal.release().instances()[0].status(), PhaseStatus::Pending);
}

#[test]
fn the_lock_excludes_a_second_holder() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join(".stagecraft");
    let (store, _) = open(&dir, NOW);
    let dir = StateDir::new(&dir).pipeline("webapp").env_dir("prod");
    let error = Lock::acquire(&dir, &holder("build"), Wait::No).unwrap_err();
    let StateError::Locked {
        holder: Some(found), ..
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(found.pid, std::process::id());
    assert_eq!(found.workflow, "deploy");
    let message = error.to_string();
    assert!(message.starts_with("env `prod` of pipeline `webapp` is locked by another run: pid "));
    assert!(
        message.contains(&format!(
            "on host `{}`, running `deploy` in `prod` since {NOW}",
            found.host
        )),
        "{message}"
    );

    let start = Instant::now();
    assert!(matches!(
        Lock::acquire(&dir, &holder("build"), Wait::For(Duration::from_millis(150))),
        Err(StateError::Locked { .. })
    ));
    assert!(start.elapsed() >= Duration::from_millis(150));

    // Freed when the holder goes, even while another waits for it.
    let waiter = {
        let dir = dir.clone();
        std::thread::spawn(move || Lock::acquire(&dir, &holder("build"), Wait::For(Duration::from_secs(10))).map(drop))
    };
    std::thread::sleep(Duration::from_millis(100));
    drop(store);
    waiter.join().unwrap().unwrap();
    let lock = Lock::acquire(&dir, &holder("build"), Wait::No).unwrap();
    assert_eq!(Holder::read(lock.dir()).unwrap().workflow, "build");
}

#[test]
fn a_release_left_running_is_recovered() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join(".stagecraft");
    let (mut store, _) = open(&dir, NOW);
    let id = store.next_id();
    let mut journal = store.begin(id, &plan("deploy", "v1"), ReleaseMeta::default()).unwrap();
    journal
        .record(&[Event::Started {
            instance: 0,
            attempt: 1,
        }])
        .unwrap();
    journal
        .record(&[
            Event::Completed {
                instance: 0,
                exit_code: Some(0),
            },
            Event::Started {
                instance: 1,
                attempt: 1,
            },
        ])
        .unwrap();
    // The run dies: no finish.
    drop(journal);
    drop(store);

    let (store, recovered) = open(&dir, "2026-11-25T17:05:00Z");
    assert_eq!(recovered.len(), 1);
    assert_eq!(
        recovered[0].to_string(),
        format!("release {id} was interrupted: push[api] marked failed (interrupted), 2 not-started instances skipped")
    );
    let release = store.dir().release(&id.to_string()).unwrap();
    assert_eq!(release.status(), ReleaseStatus::Failed);
    assert_eq!(release.finished_at.unwrap().to_string(), "2026-11-25T17:05:00.000Z");
    let statuses: Vec<_> = release
        .instances()
        .iter()
        .map(|i| (i.status(), i.reason().cloned()))
        .collect();
    assert_eq!(
        statuses,
        [
            (PhaseStatus::Completed, None),
            (PhaseStatus::Failed, Some(Reason::Interrupted)),
            (PhaseStatus::Skipped, Some(Reason::Interrupted)),
            (PhaseStatus::Skipped, Some(Reason::Interrupted)),
        ]
    );
    assert_eq!(
        store.dir().releases(None, None).unwrap()[0].status,
        ReleaseStatus::Failed
    );
    drop(store);
    let (_store, again) = open(&dir, NOW);
    assert!(again.is_empty(), "recovered once");
}

/// A run that died with `push[api]` running and `rollout[api]` claimed;
/// `boot` rewrites the boot its log says it ran in. Returns the recovery.
fn recover_a_claimed_run(boot: Option<&str>) -> (Vec<(PhaseStatus, Option<Reason>, usize)>, String) {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join(".stagecraft");
    let (mut store, _) = open(&dir, NOW);
    let id = store.next_id();
    let mut journal = store.begin(id, &plan("deploy", "v1"), ReleaseMeta::default()).unwrap();
    journal
        .write_events(&[
            Event::Started {
                instance: 0,
                attempt: 1,
            },
            Event::Claimed { instance: 1 },
        ])
        .unwrap();
    journal
        .write_events(&[
            Event::Completed {
                instance: 0,
                exit_code: Some(0),
            },
            Event::Started {
                instance: 1,
                attempt: 1,
            },
            Event::Claimed { instance: 2 },
        ])
        .unwrap();
    let path = journal.path().to_owned();
    drop(journal);
    drop(store);
    if let Some(boot) = boot {
        let log = fs::read_to_string(&path).unwrap();
        let start = log.find("boot: Some(\"").unwrap() + "boot: Some(\"".len();
        let end = start + log[start..].find('"').unwrap();
        fs::write(&path, format!("{}{boot}{}", &log[..start], &log[end..])).unwrap();
    }
    let (store, recovered) = open(&dir, "2026-11-25T17:05:00Z");
    let release = store.dir().release(&id.to_string()).unwrap();
    let statuses = release
        .instances()
        .iter()
        .map(|i| (i.status(), i.reason().cloned(), i.attempts().len()))
        .collect();
    (statuses, recovered[0].to_string().replace(&id.to_string(), "ID"))
}

#[test]
fn a_claimed_instance_did_not_start_if_the_machine_kept_running() {
    // Same boot: every write reached the page cache, so the log is exact.
    let (statuses, message) = recover_a_claimed_run(None);
    assert_eq!(
        statuses,
        [
            (PhaseStatus::Completed, None, 1),
            (PhaseStatus::Failed, Some(Reason::Interrupted), 1),
            (PhaseStatus::Skipped, Some(Reason::Interrupted), 0),
            (PhaseStatus::Skipped, Some(Reason::Interrupted), 0),
        ]
    );
    assert_eq!(
        message,
        "release ID was interrupted: push[api] marked failed (interrupted), 2 not-started instances skipped"
    );
}

#[test]
fn a_claimed_instance_may_have_started_if_the_machine_restarted() {
    // Another boot: its `Started` may have been lost with the page cache.
    let (statuses, message) = recover_a_claimed_run(Some("another-boot"));
    assert_eq!(
        statuses,
        [
            (PhaseStatus::Completed, None, 1),
            (PhaseStatus::Failed, Some(Reason::Interrupted), 1),
            (PhaseStatus::Failed, Some(Reason::Interrupted), 1),
            (PhaseStatus::Skipped, Some(Reason::Interrupted), 0),
        ]
    );
    assert_eq!(
        message,
        "release ID was interrupted: push[api], rollout[api] marked failed (interrupted), the machine stopped as \
         rollout[api] was about to start, so it may not have run, 1 not-started instance skipped"
    );
}

#[test]
fn state_written_in_format_version_1_is_still_read() {
    // A deploy as version 1 wrote it: no boot in the header, no claims.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/state-v1");
    let state = StateDir::new(&dir).pipeline("webapp");
    let release = state.release("rel-20261125-170229123").unwrap();
    assert_eq!(release.status(), ReleaseStatus::Completed);
    assert_eq!(release.instances()[0].attempts().len(), 2);
    assert_eq!(state.releases(None, None).unwrap().len(), 1);
}

#[test]
fn ctrl_c_interrupts_the_journal() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join(".stagecraft");
    let (mut store, _) = open(&dir, NOW);
    let id = store.next_id();
    let mut journal = store.begin(id, &plan("deploy", "v1"), ReleaseMeta::default()).unwrap();
    journal
        .record(&[Event::Started {
            instance: 0,
            attempt: 1,
        }])
        .unwrap();
    let (release, recovered) = journal.interrupt().unwrap();
    assert_eq!((recovered.failed.len(), recovered.skipped.len()), (1, 3));
    assert!(release.is_finished());
    assert_eq!(
        StateDir::new(&dir).pipeline("webapp").release(&id.to_string()).unwrap(),
        release
    );
    assert_eq!(
        store.dir().releases(None, None).unwrap()[0].status,
        ReleaseStatus::Failed
    );
}

#[test]
fn ids_are_unique_with_a_fixed_clock_and_never_go_back() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join(".stagecraft");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (mut store, _) = open(&dir, NOW);
        for _ in 0..2 {
            ids.push(deploy(&mut store, "v1").id.to_string());
        }
    }
    // A clock that went back an hour.
    let (mut store, _) = open(&dir, "2026-11-25T16:02:29.123Z");
    ids.push(deploy(&mut store, "v1").id.to_string());
    assert_eq!(
        ids,
        [
            "rel-20261125-170229123",
            "rel-20261125-170229123-001",
            "rel-20261125-170229123-002",
            "rel-20261125-170229123-003",
            "rel-20261125-170229123-004",
            "rel-20261125-170229123-005",
            "rel-20261125-170229123-006",
        ]
    );
    let later = ReleaseId::allocate(
        Timestamp::parse("2026-11-25T17:02:30Z").unwrap(),
        ids.last().map(|i| i.parse().unwrap()),
    );
    assert_eq!(later.to_string(), "rel-20261125-170230000");
}

/// Replaces every RFC 3339 time in a JSON value with `[time]`.
fn redact_times(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) if Timestamp::parse(text).is_ok() => "[time]".clone_into(text),
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_times),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(redact_times),
        _ => {}
    }
}

#[test]
fn snapshot_of_a_stored_release() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join(".stagecraft");
    let (mut store, _) = open(&dir, NOW);
    let id = deploy(&mut store, "v1").id;
    drop(store);
    let state = StateDir::new(&dir).pipeline("webapp");
    let mut value = serde_json::to_value(state.release(&id.to_string()).unwrap()).unwrap();
    redact_times(&mut value);
    insta::assert_ron_snapshot!("stored_release", value);
    // The files themselves, as `spec/state.md` shows them.
    // The boot id is the machine's: replaced, once, where it is.
    let log = fs::read_to_string(state.log_path(id)).unwrap();
    let boot = log.find("boot: Some(\"").map(|start| start + "boot: Some(\"".len());
    let log = match boot.zip(boot.and_then(|start| log[start..].find('"'))) {
        Some((start, len)) => format!("{}[boot id]{}", &log[..start], &log[start + len..]),
        None => log,
    };
    insta::assert_snapshot!("release_log", log);
    insta::assert_snapshot!("index", fs::read_to_string(state.index_path("prod")).unwrap());
}
