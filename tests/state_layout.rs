//! State format 3: one pipeline's releases per directory and one lock and
//! index per env, readers that never lock nor write, the live state kept
//! with each release, legacy (format 2) directories, and the loser of a
//! lock race naming the winner.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use stagecraft::engine::{Event, Plan, PlannedInstance, Reason};
use stagecraft::state::{
    Clock, Holder, Journal, ReleaseMeta, ReleaseStatus, Services, StateDir, StateError, Store, Timestamp, Wait,
};
use stagecraft::testing;

use crate::support::{self, BIN};

const NOW: &str = "2026-11-25T17:02:29.123Z";

fn open(dir: &Path, pipeline: &str, env: &str) -> Store {
    let holder = Holder::current("deploy", Some(env), Timestamp::parse(NOW).unwrap());
    let clock = Clock::from_setting(Some(NOW)).unwrap();
    let (store, recovered) = Store::open(dir, pipeline, env, &holder, Wait::No, clock).unwrap();
    assert!(recovered.is_empty(), "{recovered:?}");
    store
}

/// A deploy of `services` (`build[s]`, `rollout[s]` each).
fn plan(pipeline: &str, env: &str, workflow: &str, version: &str, services: &[&str]) -> Plan {
    let instances = services
        .iter()
        .flat_map(|service| ["build", "rollout"].map(|phase| (phase, *service)))
        .enumerate()
        .map(|(position, (phase, service))| {
            let after = if phase == "rollout" { vec![position - 1] } else { vec![] };
            PlannedInstance {
                version: version.into(),
                ..testing::instance(&format!("{phase}[{service}]"), &after)
            }
        })
        .collect();
    testing::plan(pipeline, env, workflow, version, instances)
}

fn meta(services: &[&str], all: bool) -> ReleaseMeta {
    ReleaseMeta {
        services: Some(Services {
            names: services.iter().map(|&s| s.to_owned()).collect(),
            all,
        }),
        user: Some("ci@vm".to_owned()),
        ..ReleaseMeta::default()
    }
}

/// Runs every instance of the journal's release; `fail` fails that one.
fn run(journal: &mut Journal<'_>, fail: Option<usize>) {
    let count = journal.release().instances().len();
    for instance in 0..count {
        journal.append(&[Event::Started { instance, attempt: 1 }]).unwrap();
        let end = if Some(instance) == fail {
            Event::Failed {
                instance,
                exit_code: Some(1),
                reason: Reason::ExitCode,
            }
        } else {
            Event::Completed {
                instance,
                exit_code: Some(0),
            }
        };
        journal.append(&[end]).unwrap();
        if Some(instance) == fail {
            let rest: Vec<Event> = (instance + 1..count)
                .map(|instance| Event::Skipped {
                    instance,
                    reason: Reason::Failed("x".into()),
                })
                .collect();
            journal.append(&rest).unwrap();
            return;
        }
    }
}

/// A whole release of `services` at `version`.
fn release(store: &mut Store, workflow: &str, version: &str, services: &[&str], fail: Option<usize>) -> String {
    let plan = plan(store.dir().name(), store.env(), workflow, version, services);
    let (mut journal, _) = store
        .begin_with(&meta(services, services.len() == 2), |_| {
            Ok::<_, StateError>(plan.clone())
        })
        .unwrap();
    run(&mut journal, fail);
    journal.finish().unwrap().id.to_string()
}

/// `service version` (and `failed at V`) of a live state.
fn live(pipeline: &stagecraft::state::PipelineDir, env: &str) -> Vec<String> {
    let live = pipeline.live(env).unwrap();
    live.services()
        .iter()
        .map(|(name, state)| {
            let mut text = format!("{name} {}", state.version.as_deref().unwrap_or("-"));
            if let Some(failed) = &state.failed {
                text.push_str(" failed at ");
                text.push_str(&failed.version);
            }
            text
        })
        .collect()
}

fn v2_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/state-v2")
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file under `dir` with its length and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let metadata = entry.metadata().unwrap();
        if metadata.is_dir() {
            files.extend(snapshot(&entry.path()));
        }
        files.insert(entry.path(), (metadata.len(), metadata.modified().unwrap()));
    }
    files
}

#[test]
fn a_format_2_directory_reads_as_the_history_of_its_pipeline() {
    use ReleaseStatus::{Completed, Failed};
    let pipeline = StateDir::new(v2_fixture().join("state")).pipeline("shop");
    let before = snapshot(&v2_fixture());
    let prod: Vec<(String, String, ReleaseStatus)> = pipeline
        .history("prod")
        .map(|s| s.unwrap())
        .map(|s| (s.workflow.clone(), s.version.clone(), s.status))
        .collect();
    assert_eq!(
        prod,
        [
            ("rollback".into(), "v2".into(), Completed),
            ("deploy".into(), "bad".into(), Failed),
            ("build".into(), "v3".into(), Completed),
            ("deploy".into(), "v2".into(), Completed),
            ("deploy".into(), "v1".into(), Completed),
        ]
    );
    let all = pipeline.releases(None, None).unwrap();
    assert_eq!(all.len(), 6);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert_eq!(pipeline.releases(None, Some(2)).unwrap()[1].version, "bad");
    // Missing fields read as unknown.
    let newest = &all[0];
    assert_eq!(
        (newest.commit.as_ref(), newest.services.as_ref(), newest.user.as_ref()),
        (None, None, None)
    );
    // What was live after each release, replayed from the logs.
    // (api was only ever deployed at v1: v2 was web's alone.)
    let after_failed = &all[1];
    let api = after_failed.live.as_ref().unwrap().service("api").unwrap();
    assert_eq!(
        (api.version.as_deref(), api.failed.as_ref().map(|f| f.version.as_str())),
        (Some("v1"), Some("bad"))
    );
    assert_eq!(live(&pipeline, "prod"), ["api v2", "web v2"]);
    assert_eq!(live(&pipeline, "dev"), ["api d1", "web d1"]);
    assert_eq!(pipeline.envs().unwrap(), ["dev", "prod"]);
    assert_eq!(pipeline.current("prod").unwrap().unwrap().workflow, "rollback");
    let shown = pipeline.release("rel-20261121-090000000").unwrap();
    assert_eq!(shown.instances().len(), 3);
    assert!(
        pipeline
            .output_dir(shown.id)
            .ends_with("state/logs/rel-20261121-090000000")
    );
    // Another pipeline sees none of it.
    let other = StateDir::new(v2_fixture().join("state")).pipeline("other");
    assert!(other.releases(None, None).unwrap().is_empty());
    assert!(matches!(
        other.release("rel-20261121-090000000"),
        Err(StateError::UnknownRelease { .. })
    ));
    assert_eq!(snapshot(&v2_fixture()), before, "reading wrote nothing");
}

#[test]
fn new_releases_of_a_format_2_directory_go_to_the_new_layout_and_build_on_its_history() {
    let temp = tempfile::tempdir().unwrap();
    copy_dir(&v2_fixture().join("state"), temp.path());
    let legacy = snapshot(temp.path());
    let mut store = open(temp.path(), "shop", "prod");
    assert_eq!(store.current().unwrap().id.to_string(), "rel-20261122-090500000");
    let id = release(&mut store, "deploy", "v4", &["api"], None);
    drop(store);
    let pipeline = StateDir::new(temp.path()).pipeline("shop");
    let newest = pipeline.release(&id).unwrap();
    assert_eq!(newest.previous.unwrap().to_string(), "rel-20261122-090500000");
    assert_eq!(live(&pipeline, "prod"), ["api v4", "web v2"]);
    assert_eq!(pipeline.releases(None, None).unwrap().len(), 7);
    assert!(pipeline.log_path(newest.id).exists());
    for (path, before) in legacy {
        let metadata = fs::metadata(&path).unwrap();
        if path.file_name().is_some_and(|name| name == "holder.ron") {
            continue;
        }
        assert_eq!(
            (metadata.len(), metadata.modified().unwrap()),
            before,
            "{}",
            path.display()
        );
    }
}

#[test]
fn the_cli_lists_and_shows_a_format_2_directory() {
    let fixture = v2_fixture();
    let output = Command::new(BIN)
        .args(["releases", "list", "--format", "json", "--state-dir"])
        .arg(fixture.join("state"))
        .arg("-f")
        .arg(fixture.join("pipeline.stagecraft"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 6);
    assert_eq!(list[0]["id"], "rel-20261122-090500000");
    let output = Command::new(BIN)
        .args(["releases", "show", "rel-20261122-090000000", "--state-dir"])
        .arg(fixture.join("state"))
        .arg("-f")
        .arg(fixture.join("pipeline.stagecraft"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("rollout[api]") && text.contains("failed"), "{text}");
}

#[test]
fn two_pipelines_in_one_state_directory_never_see_each_other() {
    let temp = tempfile::tempdir().unwrap();
    let (mut shop, mut blog) = (open(temp.path(), "shop", "prod"), open(temp.path(), "blog", "prod"));
    release(&mut shop, "deploy", "s1", &["api", "web"], None);
    release(&mut blog, "deploy", "b1", &["site"], None);
    assert_eq!(blog.current().unwrap().version, "b1");
    drop((shop, blog));
    let state = StateDir::new(temp.path());
    let (shop, blog) = (state.pipeline("shop"), state.pipeline("blog"));
    assert_eq!(shop.releases(None, None).unwrap().len(), 1);
    assert_eq!(blog.releases(None, None).unwrap()[0].version, "b1");
    assert_eq!(live(&shop, "prod"), ["api s1", "web s1"]);
    assert_eq!(live(&blog, "prod"), ["site b1"]);
}

/// Runs the binary in `dir` with a fixed clock.
fn run_in(dir: &Path, args: &[&str]) -> std::process::Output {
    support::command(dir, args).env("STAGECRAFT_NOW", NOW).output().unwrap()
}

/// Writes `NAME.stagecraft` for each name into `dir`: one env, `prod`, and
/// a deploy of one `true` phase.
fn write_pipelines(dir: &Path, names: &[&str]) {
    for name in names {
        let source = format!(
            "pipeline {name}\nenv prod {{\n}}\nphase ship {{\n  run \"true\"\n}}\nworkflow deploy {{ ship }}\n"
        );
        fs::write(dir.join(format!("{name}.stagecraft")), source).unwrap();
    }
}

#[test]
fn two_pipeline_files_in_one_folder_keep_their_own_releases() {
    let temp = tempfile::tempdir().unwrap();
    write_pipelines(temp.path(), &["shop", "blog"]);
    let stagecraft = |args: &[&str]| {
        let output = run_in(temp.path(), args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    stagecraft(&["deploy", "-f", "shop.stagecraft", "--env", "prod", "--version", "s1"]);
    stagecraft(&["deploy", "-f", "blog.stagecraft", "--env", "prod", "--version", "b1"]);
    stagecraft(&["deploy", "-f", "shop.stagecraft", "--env", "prod", "--version", "s2"]);
    let blog: serde_json::Value = serde_json::from_str(&stagecraft(&[
        "releases",
        "list",
        "-f",
        "blog.stagecraft",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(blog.as_array().unwrap().len(), 1);
    assert_eq!(
        (&blog[0]["version"], &blog[0]["previous"]),
        (&"b1".into(), &serde_json::Value::Null)
    );
    let shop: serde_json::Value = serde_json::from_str(&stagecraft(&[
        "releases",
        "list",
        "-f",
        "shop.stagecraft",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(shop.as_array().unwrap().len(), 2);
    assert_eq!(shop[0]["previous"], shop[1]["id"], "s1 is s2's previous, not b1");
}

#[test]
fn a_state_directory_is_read_without_its_pipeline_file() {
    let temp = tempfile::tempdir().unwrap();
    let (project, elsewhere) = (temp.path().join("project"), temp.path().join("elsewhere"));
    fs::create_dir_all(&project).unwrap();
    fs::create_dir_all(&elsewhere).unwrap();
    write_pipelines(&project, &["shop", "blog"]);
    let state = project.join(".stagecraft");
    let state = state.to_str().unwrap();
    let deploy = |name: &str| {
        run_in(
            &project,
            &[
                "deploy",
                "-f",
                &format!("{name}.stagecraft"),
                "--env",
                "prod",
                "--version",
                "v1",
            ],
        )
    };
    assert!(deploy("shop").status.success());
    // One pipeline in the directory: it is the one read.
    let list = run_in(&elsewhere, &["releases", "list", "--state-dir", state]);
    assert_eq!(list.status.code(), Some(0), "{}", String::from_utf8_lossy(&list.stderr));
    assert!(String::from_utf8_lossy(&list.stdout).contains("v1"));
    // Two: the command asks which, naming both, until `--pipeline` says.
    assert!(deploy("blog").status.success());
    let list = run_in(&elsewhere, &["releases", "list", "--state-dir", state]);
    let stderr = String::from_utf8_lossy(&list.stderr);
    assert_eq!(list.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("holds the history of 2 pipelines") && stderr.contains("`blog`, `shop`"),
        "{stderr}"
    );
    let status = run_in(
        &elsewhere,
        &["status", "--state-dir", state, "--pipeline", "blog", "--env", "prod"],
    );
    assert_eq!(status.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&status.stdout).contains("deploy v1"));
    // An empty directory has no history to show.
    let empty = run_in(&elsewhere, &["releases", "list", "--state-dir", "."]);
    assert_eq!(empty.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&empty.stderr).contains("no pipeline has a history in ."));
}

#[test]
fn a_misspelt_env_is_refused_and_an_env_without_history_is_not() {
    let temp = tempfile::tempdir().unwrap();
    fs::write(
        temp.path().join("shop.stagecraft"),
        "pipeline shop\nenv prod {\n}\nenv staging {\n}\nphase ship {\n  run \"true\"\n}\nworkflow deploy { ship }\n",
    )
    .unwrap();
    let shop = |args: &[&str]| run_in(temp.path(), &[args, &["-f", "shop.stagecraft"]].concat());
    assert!(shop(&["deploy", "--env", "prod", "--version", "v1"]).status.success());
    for args in [&["releases", "list", "--env", "prd"][..], &["status", "--env", "prd"]] {
        let output = shop(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("invalid environment: prd") && stderr.contains("did you mean `prod`?"),
            "{stderr}"
        );
    }
    // Declared but never deployed: an empty history, not an error.
    let staging = shop(&["releases", "list", "--env", "staging"]);
    assert_eq!(staging.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&staging.stdout), "no releases yet\n");
}

#[test]
fn envs_lock_apart_and_ids_stay_unique_across_them() {
    let temp = tempfile::tempdir().unwrap();
    let mut dev = open(temp.path(), "shop", "dev");
    let mut prod = open(temp.path(), "shop", "prod");
    // One env, one writer.
    let holder = Holder::current("rollback", Some("prod"), Timestamp::parse(NOW).unwrap());
    let error = Store::open(temp.path(), "shop", "prod", &holder, Wait::No, Clock::System).unwrap_err();
    assert!(matches!(error, StateError::Locked { holder: Some(_), .. }), "{error}");
    // A fixed clock: both envs would take the same id.
    let first = release(&mut dev, "deploy", "d1", &["api", "web"], None);
    assert_eq!(prod.next_id().to_string(), format!("{first}-001"));
    let taken: stagecraft::state::ReleaseId = first.parse().unwrap();
    let error = prod
        .begin(
            taken,
            &plan("shop", "prod", "deploy", "p1", &["api"]),
            ReleaseMeta::default(),
        )
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(error, StateError::IdTaken { id } if id == taken), "{error}");
    // A run that retries plans again with the next id.
    let mut ids = Vec::new();
    let (journal, plan) = prod
        .begin_with(&ReleaseMeta::default(), |id| {
            ids.push(id.to_string());
            Ok::<_, StateError>(plan("shop", "prod", "deploy", &id.to_string(), &["api"]))
        })
        .unwrap();
    assert_eq!(journal.release().id.to_string(), plan.version);
    assert_eq!(ids, [format!("{first}-001")], "the next id after the one refused");
    drop(journal);
    drop(dev);
    let all = StateDir::new(temp.path())
        .pipeline("shop")
        .releases(None, None)
        .unwrap();
    let mut unique: Vec<_> = all.iter().map(|s| s.id).collect();
    unique.dedup();
    assert_eq!(unique.len(), 2);
}

#[test]
fn recovery_repairs_only_its_own_env() {
    let temp = tempfile::tempdir().unwrap();
    for env in ["dev", "prod"] {
        let mut store = open(temp.path(), "shop", env);
        let plan = plan("shop", env, "deploy", "v1", &["api"]);
        let id = store.next_id();
        let mut journal = store.begin(id, &plan, ReleaseMeta::default()).unwrap();
        journal
            .append(&[Event::Started {
                instance: 0,
                attempt: 1,
            }])
            .unwrap();
        // The run dies.
    }
    let pipeline = StateDir::new(temp.path()).pipeline("shop");
    let holder = Holder::current("deploy", Some("prod"), Timestamp::parse(NOW).unwrap());
    let clock = Clock::from_setting(Some(NOW)).unwrap();
    let (prod, recovered) = Store::open(temp.path(), "shop", "prod", &holder, Wait::No, clock).unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(prod.current().unwrap().status, ReleaseStatus::Failed);
    assert_eq!(pipeline.current("prod").unwrap().unwrap().status, ReleaseStatus::Failed);
    // A reader shows dev's dead run as running, and leaves it be.
    assert_eq!(pipeline.current("dev").unwrap().unwrap().status, ReleaseStatus::Running);
    assert!(pipeline.current("dev").unwrap().unwrap().live.is_none());
}

#[test]
fn a_run_that_died_between_its_log_and_its_started_line_is_recovered() {
    let temp = tempfile::tempdir().unwrap();
    let mut store = open(temp.path(), "shop", "prod");
    release(&mut store, "deploy", "v1", &["api"], None);
    let id = store.next_id();
    drop(store.begin(
        id,
        &plan("shop", "prod", "deploy", "v2", &["api"]),
        ReleaseMeta::default(),
    ));
    drop(store);
    let index = StateDir::new(temp.path()).pipeline("shop").index_path("prod");
    let text = fs::read_to_string(&index).unwrap();
    let without_started = &text[..=text[..text.len() - 1].rfind('\n').unwrap()];
    assert!(
        without_started.ends_with(&format!("Reserved(id: \"{id}\")\n")),
        "{without_started}"
    );
    fs::write(&index, without_started).unwrap();
    let holder = Holder::current("deploy", Some("prod"), Timestamp::parse(NOW).unwrap());
    let clock = Clock::from_setting(Some(NOW)).unwrap();
    let (store, recovered) = Store::open(temp.path(), "shop", "prod", &holder, Wait::No, clock).unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].release, id);
    assert_eq!(store.current().unwrap().id, id);
    assert_eq!(store.current().unwrap().status, ReleaseStatus::Failed);
}

#[test]
fn the_live_state_follows_partial_failed_and_rollback_releases() {
    let temp = tempfile::tempdir().unwrap();
    let mut store = open(temp.path(), "shop", "prod");
    release(&mut store, "deploy", "s1", &["api", "web"], None);
    release(&mut store, "deploy", "s2", &["web"], None);
    release(&mut store, "deploy", "s3", &["api"], Some(1));
    let pipeline = store.dir().clone();
    assert_eq!(live(&pipeline, "prod"), ["api s1 failed at s3", "web s2"]);
    assert_eq!(store.live(), &pipeline.live("prod").unwrap());
    release(&mut store, "build", "s4", &["api"], None);
    let newest = pipeline.releases(Some("prod"), Some(2)).unwrap();
    assert_eq!(newest[0].live, None, "a build has no live state");
    assert_eq!(newest[1].live.as_ref(), Some(store.live()));
    // A rollback of api to s1.
    let plan = plan("shop", "prod", "rollback", "s1", &["api"]);
    let id = store.next_id();
    let mut journal = store.begin(id, &plan, meta(&["api"], false)).unwrap();
    run(&mut journal, None);
    journal.finish().unwrap();
    assert_eq!(live(&pipeline, "prod"), ["api s1", "web s2"]);
}

#[test]
fn the_newest_releases_come_first_across_envs_without_reading_the_whole_history() {
    let temp = tempfile::tempdir().unwrap();
    let mut versions = Vec::new();
    for round in 0..30 {
        for env in ["dev", "prod"] {
            let mut store = open(temp.path(), "shop", env);
            let version = format!("{env}{round}");
            release(&mut store, "deploy", &version, &["api"], None);
            versions.push(version);
        }
    }
    let pipeline = StateDir::new(temp.path()).pipeline("shop");
    let newest: Vec<String> = pipeline
        .releases(None, Some(5))
        .unwrap()
        .into_iter()
        .map(|s| s.version.clone())
        .collect();
    let expected: Vec<String> = versions.iter().rev().take(5).cloned().collect();
    assert_eq!(newest, expected);
    assert_eq!(pipeline.releases(Some("dev"), None).unwrap().len(), 30);
    // The newest few are read from the end: damage at the start goes
    // unnoticed until a listing reaches it.
    let index = pipeline.index_path("prod");
    let text = fs::read_to_string(&index).unwrap();
    let second_line = text.find('\n').unwrap() + 1;
    fs::write(
        &index,
        format!("{}garbage\n{}", &text[..second_line], &text[second_line..]),
    )
    .unwrap();
    assert_eq!(pipeline.releases(None, Some(5)).unwrap().len(), 5);
    assert_eq!(live(&pipeline, "prod"), ["api prod29"]);
    let error = pipeline.releases(Some("prod"), None).unwrap_err();
    assert!(error.to_string().contains("at line 2"), "{error}");
}

#[test]
fn readers_never_lock_nor_write_and_never_stop_a_writer() {
    let temp = tempfile::tempdir().unwrap();
    let mut store = open(temp.path(), "shop", "prod");
    release(&mut store, "deploy", "v1", &["api"], None);
    // A run holds the env's lock, in the middle of a release.
    let plan = plan("shop", "prod", "deploy", "v2", &["api"]);
    let id = store.next_id();
    let mut journal = store.begin(id, &plan, ReleaseMeta::default()).unwrap();
    journal
        .append(&[Event::Started {
            instance: 0,
            attempt: 1,
        }])
        .unwrap();
    let before = snapshot(temp.path());
    let read_only = rustix::process::getuid().as_raw() != 0;
    if read_only {
        // Not root: make the whole directory read-only.
        chmod(temp.path(), false);
    }
    let pipeline = StateDir::new(temp.path()).pipeline("shop");
    let newest = &pipeline.releases(None, None).unwrap()[0];
    assert_eq!((newest.id, newest.status), (id, ReleaseStatus::Running));
    assert_eq!(pipeline.history("prod").count(), 2);
    assert_eq!(live(&pipeline, "prod"), ["api v1"]);
    assert_eq!(pipeline.envs().unwrap(), ["prod"]);
    assert_eq!(
        pipeline.release(&id.to_string()).unwrap().status(),
        ReleaseStatus::Running
    );
    if read_only {
        chmod(temp.path(), true);
    }
    assert_eq!(snapshot(temp.path()), before, "a reader changed a file");
    // The writer goes on.
    journal
        .append(&[Event::Completed {
            instance: 0,
            exit_code: Some(0),
        }])
        .unwrap();
    run_rest(&mut journal);
    assert_eq!(journal.finish().unwrap().status(), ReleaseStatus::Completed);
}

fn run_rest(journal: &mut Journal<'_>) {
    journal
        .append(&[Event::Started {
            instance: 1,
            attempt: 1,
        }])
        .unwrap();
    journal
        .append(&[Event::Completed {
            instance: 1,
            exit_code: Some(0),
        }])
        .unwrap();
}

fn chmod(dir: &Path, writable: bool) {
    let mode = if writable { "u+w" } else { "a-w" };
    let status = Command::new("chmod").args(["-R", mode]).arg(dir).status().unwrap();
    assert!(status.success());
}

#[test]
fn the_loser_of_a_race_names_the_winner() {
    let temp = tempfile::tempdir().unwrap();
    let source = "pipeline race\nenv prod {\n}\nphase wait {\n  run \"sleep 0.3\"\n}\nworkflow hold { wait }\n";
    fs::write(temp.path().join("pipeline.stagecraft"), source).unwrap();
    let mut races = 0;
    for pair in 0..20 {
        let spawn = || {
            Command::new(BIN)
                .args(["run", "hold", "--env", "prod"])
                .current_dir(temp.path())
                .env("NO_COLOR", "1")
                .env_remove("STAGECRAFT_STATE_DIR")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let children = [spawn(), spawn()];
        let pids: Vec<u32> = children.iter().map(std::process::Child::id).collect();
        let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
        let losers: Vec<usize> = (0..2).filter(|&i| outputs[i].status.code() == Some(4)).collect();
        let winners: Vec<usize> = (0..2).filter(|&i| outputs[i].status.success()).collect();
        if losers.is_empty() {
            // One finished before the other started: no race this time.
            assert_eq!(winners.len(), 2, "pair {pair}");
            continue;
        }
        assert_eq!((losers.len(), winners.len()), (1, 1), "pair {pair}");
        races += 1;
        let message = String::from_utf8_lossy(&outputs[losers[0]].stderr).into_owned();
        let winner = pids[winners[0]];
        assert!(
            message.contains(&format!("pid {winner} on host")) && message.contains("running `hold` in `prod`"),
            "pair {pair}: the loser names pid {winner}: {message}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(races >= 15, "only {races} of 20 pairs raced");
}
