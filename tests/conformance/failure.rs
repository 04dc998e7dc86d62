//! Failure handling on both backends: a failed deploy undone, its
//! `finally` phase, then `resume` once the cause is fixed.

use super::{backends, json, same};

/// `rollout[web]` fails while `broken-web` exists; `migrate` has an undo.
const PIPELINE: &str = r#"pipeline shop
env dev {}
service api {}
service web {}
phase build {
  for each service
  run "echo build {{service}}"
}
phase migrate {
  after build
  run "echo migrate >> ran"
  undo "echo unmigrate >> ran"
}
phase rollout {
  for each service
  after migrate
  run "test ! -e broken-{{service}}"
}
phase notify {
  finally
  run "echo {{outcome}} >> notified"
}
workflow deploy { build migrate rollout notify }
"#;

#[test]
fn a_failed_deploy_is_undone_and_resumed_the_same_on_both_backends() {
    let sides = backends("failure", PIPELINE);
    for side in &sides {
        std::fs::write(side.path().join("broken-web"), "").expect("break web");
    }
    let deploy = ["deploy", "--env", "dev", "--version", "v1", "--undo-on-failure"];
    let failed = same(&sides, &deploy, 3);
    assert!(
        failed.stderr.contains("undone, latest first: migrate"),
        "{}",
        failed.stderr
    );
    assert!(
        failed
            .stderr
            .contains("stagecraft resume rel-20261125-170229123 --env dev --version v1"),
        "{}",
        failed.stderr
    );
    let shown = json(&same(
        &sides,
        &["releases", "show", "rel-20261125-170229123", "--format", "json"],
        0,
    ));
    let phase = |id: &str| {
        shown["phases"]
            .as_array()
            .and_then(|phases| phases.iter().find(|p| p["id"] == id))
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(phase("migrate")["status"], "undone", "{shown}");
    // The history shows the command `finally` ran: the failure's.
    assert_eq!(phase("notify")["command"], "echo failure >> notified", "{shown}");

    for side in &sides {
        std::fs::remove_file(side.path().join("broken-web")).expect("fix web");
    }
    let resumed = same(&sides, &["resume", "--env", "dev", "--version", "v1"], 0);
    assert!(resumed.stderr.contains("carried over"), "{}", resumed.stderr);
    for side in &sides {
        // The undone migration ran again; `finally` ran on both runs.
        let ran = std::fs::read_to_string(side.path().join("ran")).unwrap_or_default();
        assert_eq!(ran, "migrate\nunmigrate\nmigrate\n", "{}", side.name);
        let notified = std::fs::read_to_string(side.path().join("notified")).unwrap_or_default();
        assert_eq!(notified, "failure\nsuccess\n", "{}", side.name);
    }
    let list = json(&same(&sides, &["releases", "list", "--format", "json"], 0));
    assert_eq!(list[0]["status"], "completed", "{list}");
    assert_eq!(list[0]["resumes"], "rel-20261125-170229123", "{list}");
    same(&sides, &["status", "--env", "dev"], 0);
}
