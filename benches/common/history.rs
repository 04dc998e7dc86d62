//! A state directory with a long history, written directly, for the benches
//! that measure a durable transition against the size of the history
//! (`state`, `execute`).

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use stagecraft::engine::Plan;
use stagecraft::state::{ReleaseId, Timestamp};
use stagecraft::testing;

/// 2026-11-25T00:00:00Z.
pub(crate) const BASE_MILLIS: u64 = 1_795_564_800_000;

pub(crate) fn time(offset: u64) -> String {
    Timestamp::from_millis(BASE_MILLIS + offset).to_string()
}

/// Writes `count` finished deploys of pipeline `bench` to env `prod`
/// straight into the state directory `dir` (format version 3), as
/// stagecraft would have written them, without syncing each file: the env's
/// index and, with `logs`, every release's log.
pub(crate) fn write_history(dir: &Path, count: u64, logs: bool) {
    let pipeline = dir.join("pipelines").join("bench");
    fs::create_dir_all(pipeline.join("releases")).unwrap();
    fs::create_dir_all(pipeline.join("envs").join("prod")).unwrap();
    let mut index = String::from("Format(version: 3)\n");
    let mut previous = "None".to_owned();
    for n in 0..count {
        let id = ReleaseId::from_time(Timestamp::from_millis(BASE_MILLIS + n * 1000));
        let (start, end) = (time(n * 1000), time(n * 1000 + 500));
        let extra = "commit: Some(Commit(sha: \"8d1f0c2a9b7e4d3c2b1a09f8e7d6c5b4a3928170\", dirty: false)), \
                     services: Some(Services(names: [\"api\", \"web\"], all: true)), versions: {}, set_keys: [], \
                     digest: Some(\"sha256:5f2b9c0e8a7d6f1e3c4b2a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f\"), \
                     user: Some(\"ci@bench\")";
        if logs {
            let log = format!(
                "Format(version: 3)\n\
                 Release(id: \"{id}\", pipeline: \"bench\", workflow: \"deploy\", env: \"prod\", version: \"v{n}\", previous: {previous}, rollback_of: None, started_at: \"{start}\", instances: [\"build\"], boot: None, {extra})\n\
                 Started(at: \"{start}\", instance: 0, attempt: 1)\n\
                 Completed(at: \"{end}\", instance: 0, exit_code: Some(0))\n\
                 Finished(at: \"{end}\")\n"
            );
            fs::write(pipeline.join("releases").join(format!("{id}.ron")), log).unwrap();
        }
        let service = |name: &str| {
            format!(
                "Service(name: \"{name}\", version: Some(\"v{n}\"), release: Some(\"{id}\"), at: Some(\"{end}\"), by: Some(\"ci@bench\"), failed: None)"
            )
        };
        writeln!(index, "Reserved(id: \"{id}\")").unwrap();
        writeln!(
            index,
            "Started(id: \"{id}\", pipeline: \"bench\", workflow: \"deploy\", env: \"prod\", version: \"v{n}\", previous: {previous}, rollback_of: None, at: \"{start}\", {extra})"
        )
        .unwrap();
        writeln!(
            index,
            "Finished(id: \"{id}\", at: \"{end}\", status: completed, live: Some([{}, {}]))",
            service("api"),
            service("web")
        )
        .unwrap();
        previous = format!("Some(\"{id}\")");
    }
    fs::write(pipeline.join("envs").join("prod").join("index.ron"), index).unwrap();
}

/// A chain of `instances` instances running `true`, each after the one
/// before.
pub(crate) fn chain_plan(instances: usize) -> Plan {
    let instances = (0..instances)
        .map(|i| {
            let after = if i == 0 { vec![] } else { vec![i - 1] };
            testing::instance(&format!("step{i}"), &after)
        })
        .collect();
    testing::plan("bench", "prod", "deploy", "bench", instances)
}
