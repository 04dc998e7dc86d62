//! Plans: the built-ins `--set` refuses, the JSON writer.

use super::{Plan, PlannedInstance, PlannedSecret, SET_BUILTINS};

#[test]
fn every_built_in_and_service_is_refused_by_set() {
    let refused: Vec<&str> = SET_BUILTINS.iter().map(|(name, _)| *name).collect();
    for name in crate::check::BUILTINS.iter().chain(&["service"]) {
        assert!(refused.contains(name), "{name}");
    }
    assert_eq!(refused.len(), crate::check::BUILTINS.len() + 1);
}

fn instance(id: &str, after: Vec<usize>, command: Option<&str>) -> PlannedInstance {
    PlannedInstance {
        id: id.into(),
        phase: id.into(),
        service: after.first().map(|_| "api".into()),
        after,
        command: command.map(str::to_owned),
        enabled: command.is_some(),
        unchanged: command.is_none(),
        version: format!("v{id}").into(),
        timeout_ms: command.map(|_| 1500),
        retry: 3,
        backoff_ms: u64::MAX,
        on_failure: None,
        undo: command.map(|c| format!("undo {c}")),
    }
}

fn assert_same_as_serde(plan: &Plan) {
    let mut written = Vec::new();
    plan.write_json(&mut written).unwrap();
    let expected = serde_json::to_string_pretty(plan).unwrap() + "\n";
    assert_eq!(String::from_utf8(written).unwrap(), expected);
}

#[test]
fn write_json_matches_serde_json() {
    let tricky = "q\"b\\n\nr\rt\tb\u{8}f\u{c}z\u{0}\u{1f}\u{7f} é ✓ {{x}}";
    let mut plan = Plan {
        pipeline: "p\"".to_owned(),
        env: "prod".to_owned(),
        workflow: "default".to_owned(),
        version: tricky.to_owned(),
        instances: Vec::new(),
        secrets: Vec::new(),
    };
    assert_same_as_serde(&plan);
    plan.secrets = vec![
        PlannedSecret {
            name: "token".to_owned(),
            from: "env".to_owned(),
            source: "API_TOKEN".to_owned(),
        },
        PlannedSecret {
            name: "db".to_owned(),
            from: "file".to_owned(),
            source: tricky.to_owned(),
        },
    ];
    assert_same_as_serde(&plan);
    plan.instances = vec![
        instance("a", vec![], Some(tricky)),
        instance("b[api]", vec![0], None),
        instance("c", vec![0, 1], Some("")),
        PlannedInstance {
            timeout_ms: Some(0),
            retry: u32::MAX,
            backoff_ms: 10,
            ..instance("d", vec![2], None)
        },
    ];
    assert_same_as_serde(&plan);
}
