//! Locks and recovery on both backends, with processes standing for
//! machines (`STAGECRAFT_DEBUG_HOST` names the host a run records).

use std::time::{Duration, Instant};

use super::{Side, backends};

/// `hold` notes its start and end in `<env>.log` and sleeps `{{version}}`
/// seconds in between.
const HOLD: &str = r#"pipeline shop
env dev {}
env prod {}
phase hold {
  run "echo start >> {{env}}.log; sleep {{version}}; echo end >> {{env}}.log"
}
workflow deploy { hold }
"#;

fn log(side: &Side, env: &str) -> Vec<String> {
    std::fs::read_to_string(side.path().join(format!("{env}.log")))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits until release `id`'s command is recorded spawned (its `Spawned`
/// line written, or committed), so that the next run can stop it.
fn wait_spawned(side: &Side, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let spawned = match &side.scratch {
            None => std::fs::read_to_string(
                side.path()
                    .join(format!(".stagecraft/pipelines/shop/releases/{id}.ron")),
            )
            .is_ok_and(|log| log.contains("Spawned(")),
            Some(scratch) => scratch
                .admin()
                .query_one(
                    "SELECT count(*) FROM stagecraft_events WHERE release_id = $1 AND event LIKE 'Spawned(%'",
                    &[&id],
                )
                .is_ok_and(|row| row.get::<_, i64>(0) > 0),
        };
        if spawned {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{}: release {id} never recorded its spawn",
            side.name
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_runs_of_one_env_never_overlap_and_other_envs_run_at_once() {
    for side in backends("overlap", HOLD) {
        let mut first = side.spawn(&["deploy", "--env", "prod", "--version", "3"], &[]);
        side.wait_running();
        let locked = side.expect(&["deploy", "--env", "prod", "--version", "0"], 4);
        assert!(
            locked
                .stderr
                .contains("env `prod` of pipeline `shop` is locked by another run: pid"),
            "{}: {}",
            side.name,
            locked.stderr
        );
        side.expect(&["deploy", "--env", "dev", "--version", "0"], 0);
        assert!(
            first.try_wait().expect("poll").is_none(),
            "{}: dev ran while prod's run went on",
            side.name
        );
        side.expect(&["deploy", "--env", "prod", "--version", "0", "--wait=20s"], 0);
        assert!(first.wait().expect("wait").success(), "{}", side.name);
        assert_eq!(log(&side, "prod"), ["start", "end", "start", "end"], "{}", side.name);
        assert_eq!(log(&side, "dev"), ["start", "end"], "{}", side.name);
    }
}

#[test]
fn a_run_killed_outright_is_marked_interrupted_by_the_next_one() {
    for side in backends("kill", HOLD) {
        let mut first = side.spawn(
            &["deploy", "--env", "prod", "--version", "30"],
            &[("STAGECRAFT_DEBUG_HOST", "runner-a")],
        );
        let id = side.wait_running();
        wait_spawned(&side, &id);
        first.kill().expect("kill -9");
        first.wait().expect("reap");
        let next = side
            .command(&["deploy", "--env", "prod", "--version", "0", "--grace", "1s"])
            .env("STAGECRAFT_DEBUG_HOST", "runner-b")
            .output()
            .expect("run stagecraft");
        let stderr = String::from_utf8_lossy(&next.stderr);
        assert_eq!(next.status.code(), Some(0), "{}: {stderr}", side.name);
        assert!(
            stderr.contains(&format!("left running by release {id} whose run died")),
            "{stderr}"
        );
        let interrupted = match side.name {
            // Only the shared state knows the host of a run that died.
            "postgres" => format!("release {id} was interrupted on host `runner-a`: hold was still running"),
            _ => format!("release {id} was interrupted: hold was still running"),
        };
        assert!(stderr.contains(&interrupted), "{}: {stderr}", side.name);
        let show = side.expect(&["releases", "show", &id, "--format", "json"], 0);
        let release: serde_json::Value = serde_json::from_str(&show.stdout).expect("JSON");
        assert_eq!(release["status"], "failed", "{}", side.name);
        assert_eq!(release["phases"][0]["reason"], "interrupted", "{release}");
        assert_eq!(log(&side, "prod"), ["start", "start", "end"], "{}", side.name);
    }
}

#[test]
fn a_runner_whose_session_is_terminated_loses_the_lock_and_stops_with_exit_4() {
    let Some(side) = backends("terminate", HOLD)
        .into_iter()
        .find(|side| side.scratch.is_some())
    else {
        return;
    };
    let scratch = side.scratch.as_ref().expect("a database");
    let first = side.spawn(
        &["deploy", "--env", "prod", "--version", "3"],
        &[("STAGECRAFT_DEBUG_HOST", "runner-a")],
    );
    let id = side.wait_running();
    let terminated: bool = scratch
        .admin()
        .query_one(
            "SELECT pg_terminate_backend(backend_pid) FROM stagecraft_lock_holders WHERE env = 'prod'",
            &[],
        )
        .expect("terminate")
        .get(0);
    assert!(terminated);
    std::thread::sleep(Duration::from_millis(200));
    let next = side
        .command(&[
            "deploy",
            "--env",
            "prod",
            "--version",
            "0",
            "--wait=10s",
            "--grace",
            "1s",
        ])
        .env("STAGECRAFT_DEBUG_HOST", "runner-b")
        .output()
        .expect("run stagecraft");
    let stderr = String::from_utf8_lossy(&next.stderr);
    assert_eq!(next.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("release {id} was interrupted on host `runner-a`")),
        "{stderr}"
    );
    let output = first.wait_with_output().expect("the first run ends");
    let first_stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{first_stderr}");
    assert!(
        first_stderr.contains("error: cannot record the run: cannot record a release in the PostgreSQL state"),
        "{first_stderr}"
    );
    let list = side.expect(&["releases", "list", "--format", "json"], 0);
    let list: serde_json::Value = serde_json::from_str(&list.stdout).expect("JSON");
    assert_eq!(list[1]["status"], "failed", "{list}");
    assert_eq!(list[0]["status"], "completed", "{list}");
}
