//! A state directory with a long history, written directly, for the benches
//! that measure a durable transition against the size of the history
//! (`state`, `execute`).

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use stagecraft::engine::{Plan, PlannedInstance};
use stagecraft::state::{ReleaseId, Timestamp};

/// 2026-11-25T00:00:00Z.
pub(crate) const BASE_MILLIS: u64 = 1_795_564_800_000;

pub(crate) fn time(offset: u64) -> String {
    Timestamp::from_millis(BASE_MILLIS + offset).to_string()
}

/// Writes `count` finished releases straight into `dir`, as stagecraft
/// would have written them, without syncing each file.
pub(crate) fn write_history(dir: &Path, count: u64) {
    fs::create_dir_all(dir.join("releases")).unwrap();
    let mut index = String::from("Format(version: 1)\n");
    for n in 0..count {
        let id = ReleaseId::from_time(Timestamp::from_millis(BASE_MILLIS + n * 1000));
        let (start, end) = (time(n * 1000), time(n * 1000 + 500));
        let log = format!(
            "Format(version: 1)\n\
             Release(id: \"{id}\", pipeline: \"bench\", workflow: \"deploy\", env: \"prod\", version: \"v{n}\", previous: None, rollback_of: None, started_at: \"{start}\", instances: [\"build\"])\n\
             Started(at: \"{start}\", instance: 0, attempt: 1)\n\
             Completed(at: \"{end}\", instance: 0, exit_code: Some(0))\n\
             Finished(at: \"{end}\")\n"
        );
        fs::write(dir.join("releases").join(format!("{id}.ron")), log).unwrap();
        writeln!(
            index,
            "Started(id: \"{id}\", pipeline: \"bench\", workflow: \"deploy\", env: \"prod\", version: \"v{n}\", previous: None, rollback_of: None, at: \"{start}\")"
        )
        .unwrap();
        writeln!(index, "Finished(id: \"{id}\", at: \"{end}\", status: completed)").unwrap();
    }
    fs::write(dir.join("index.ron"), index).unwrap();
}

/// A chain of `instances` instances running `true`, each after the one
/// before.
pub(crate) fn chain_plan(instances: usize) -> Plan {
    Plan {
        pipeline: "bench".to_owned(),
        env: "prod".to_owned(),
        workflow: "deploy".to_owned(),
        version: "bench".to_owned(),
        instances: (0..instances)
            .map(|i| PlannedInstance {
                id: format!("step{i}"),
                phase: format!("step{i}"),
                service: None,
                after: if i == 0 { vec![] } else { vec![i - 1] },
                command: Some("true".to_owned()),
                enabled: true,
                unchanged: false,
                version: "1.2".to_owned(),
                timeout_ms: None,
                retry: 0,
                backoff_ms: 0,
            })
            .collect(),
    }
}
