//! The executor through the public API: plans compiled from small
//! pipelines (or built by hand), run with the `ScriptedRunner` (outcomes
//! injected per instance and attempt, no processes) and a
//! `MemoryRecorder`, and a few runs of real commands with the
//! `ShellRunner`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use stagecraft::engine::{
    self, Cancel, Child, Event, ExecuteOptions, InstanceStatus, Job, Outcome, Plan, PlanRequest, PlannedInstance,
    Reason, RecordError, Recorder, Runner, ShellRunner, Summary, Syncer,
};
use stagecraft::testing::{self, MemoryRecorder, MemorySink, ScriptedRunner};

/// Services api and worker; build per service, a conditional check, ship,
/// and a marker.
const PIPELINE: &str = r#"
pipeline t

env dev {
  region = "eu"
}

service api {
  path = "services/api"
}
service worker {
  path = "services/worker"
}

phase build {
  for each service
  run "make {{service}}"
}

phase check {
  after build
  when push
  run "check {{env}}"
}

phase ship {
  after check
  run "ship {{version}}"
  retry 2 backoff 5s
}

phase done {
  after ship
}

workflow deploy { build check ship done }
"#;

/// Compiles `source` and plans its `deploy` workflow for `dev`.
fn plan_of(source: &str, set: &[(&str, &str)]) -> Plan {
    let compilation = stagecraft::graph::compile(source);
    assert!(!compilation.has_errors(), "{:#?}", compilation.diagnostics);
    let pipeline = compilation.pipeline.as_ref().expect("pipeline");
    let graph = compilation.graph.as_ref().expect("graph");
    let request = PlanRequest {
        env: "dev".to_owned(),
        workflow: "deploy".to_owned(),
        services: None,
        version: "1.2".to_owned(),
        release: "rel-1".to_owned(),
        // `push` is a built-in, not a `--set` value.
        push: set.contains(&("push", "true")),
        set: set
            .iter()
            .filter(|&&(k, _)| k != "push")
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<IndexMap<_, _>>(),
        ..PlanRequest::default()
    };
    engine::plan(pipeline, graph, &request).expect("plan")
}

/// An instance running `run ID`, depending on the positions in `after`.
fn instance(id: &str, after: &[usize]) -> PlannedInstance {
    PlannedInstance {
        command: Some(format!("run {id}")),
        ..testing::instance(id, after)
    }
}

/// A plan of the given instances.
fn plan(instances: Vec<PlannedInstance>) -> Plan {
    testing::plan("t", "dev", "deploy", "1.2", instances)
}

/// A wide plan: `root`, then `width` branches of `a_i → b_i`, then `join`.
fn wide(width: usize) -> Plan {
    let mut phases = vec![instance("root", &[])];
    for i in 0..width {
        phases.push(instance(&format!("a{i}"), &[0]));
    }
    for i in 0..width {
        phases.push(instance(&format!("b{i}"), &[1 + i]));
    }
    let all_b: Vec<usize> = (width + 1..=2 * width).collect();
    phases.push(instance("join", &all_b));
    plan(phases)
}

fn options() -> ExecuteOptions {
    ExecuteOptions {
        release: "rel-1".to_owned(),
        skip_backoff: true,
        ..ExecuteOptions::default()
    }
}

struct Ran {
    summary: Summary,
    recorder: MemoryRecorder,
    sink: MemorySink,
}

impl Ran {
    fn events(&self) -> Vec<Event> {
        self.recorder.events.iter().map(|(_, event)| event.clone()).collect()
    }

    /// Each instance's final status and reason, in plan order.
    fn statuses(&self) -> Vec<(String, InstanceStatus, Option<Reason>)> {
        self.summary
            .instances
            .iter()
            .map(|i| (i.id.clone(), i.status, i.reason.clone()))
            .collect()
    }

    fn status(&self, id: &str) -> (InstanceStatus, Option<Reason>) {
        let instance = self.summary.instances.iter().find(|i| i.id == id).expect(id);
        (instance.status, instance.reason.clone())
    }
}

fn run(plan: &Plan, options: &ExecuteOptions, runner: &dyn Runner) -> Ran {
    run_with(plan, options, runner, &Cancel::new())
}

fn run_with(plan: &Plan, options: &ExecuteOptions, runner: &dyn Runner, cancel: &Cancel) -> Ran {
    let mut recorder = MemoryRecorder::default();
    let mut sink = MemorySink::default();
    let summary = engine::execute(plan, options, runner, &mut recorder, &mut sink, cancel).expect("execute");
    Ran {
        summary,
        recorder,
        sink,
    }
}

/// The reason of an instance skipped because `id` failed, as statuses
/// report it.
#[allow(clippy::unnecessary_wraps)]
fn failed_reason(id: &str) -> Option<Reason> {
    Some(Reason::Failed(id.to_owned()))
}

use InstanceStatus::{Completed, Failed, Skipped};

#[test]
fn a_linear_plan_runs_in_order_and_completes() {
    let plan = plan_of(PIPELINE, &[("push", "true")]);
    let ids: Vec<&str> = plan.instances.iter().map(|p| &*p.id).collect();
    assert_eq!(ids, ["build[api]", "build[worker]", "check", "ship", "done"]);
    let runner = ScriptedRunner::new();
    let ran = run(&plan, &options(), &runner);
    assert!(ran.summary.succeeded());
    assert_eq!(ran.summary.first_failed, None);
    assert_eq!(
        ran.events(),
        [
            Event::Started {
                instance: 0,
                attempt: 1
            },
            Event::Completed {
                instance: 0,
                exit_code: Some(0)
            },
            Event::Started {
                instance: 1,
                attempt: 1
            },
            Event::Completed {
                instance: 1,
                exit_code: Some(0)
            },
            Event::Started {
                instance: 2,
                attempt: 1
            },
            Event::Completed {
                instance: 2,
                exit_code: Some(0)
            },
            Event::Started {
                instance: 3,
                attempt: 1
            },
            Event::Completed {
                instance: 3,
                exit_code: Some(0)
            },
            Event::Started {
                instance: 4,
                attempt: 1
            },
            Event::Completed {
                instance: 4,
                exit_code: None
            },
        ]
    );
    let calls: Vec<(String, String)> = runner.calls().into_iter().map(|c| (c.id, c.command)).collect();
    assert_eq!(
        calls,
        [
            ("build[api]".to_owned(), "make api".to_owned()),
            ("build[worker]".to_owned(), "make worker".to_owned()),
            ("check".to_owned(), "check dev".to_owned()),
            ("ship".to_owned(), "ship 1.2".to_owned()),
        ],
        "the marker runs no command"
    );
    let summary = &ran.summary.instances;
    assert!(summary.iter().all(|i| i.status == Completed && i.reason.is_none()));
    assert_eq!(summary[0].attempts, 1);
    assert_eq!(summary[0].exit_code, Some(0));
    assert_eq!(summary[4].exit_code, None);
}

#[test]
fn a_finish_and_the_next_start_are_one_record_call() {
    let plan = plan_of(PIPELINE, &[("push", "true")]);
    let ran = run(&plan, &options(), &ScriptedRunner::new());
    let steps: Vec<usize> = ran.recorder.events.iter().map(|(step, _)| *step).collect();
    // Started 0 | Completed 0 + Started 1 | … | Completed 3 + marker's Started and Completed.
    assert_eq!(steps, [1, 2, 2, 3, 3, 4, 4, 5, 5, 5]);
    for pair in ran.recorder.events.windows(2) {
        if let ((step, Event::Completed { instance, .. }), (next_step, Event::Started { instance: next, .. })) =
            (&pair[0], &pair[1])
        {
            assert_eq!(
                step, next_step,
                "completion of {instance} and start of {next} in one call"
            );
        }
    }
}

#[test]
fn a_failure_skips_everything_not_started_naming_the_failed_instance() {
    let plan = plan_of(PIPELINE, &[("push", "true")]);
    let runner = ScriptedRunner::new()
        .always("build[worker]", Outcome::Exited(2))
        .output("build[worker]", &["compiling", "error: no"]);
    let ran = run(&plan, &options(), &runner);
    assert!(!ran.summary.succeeded());
    assert_eq!(ran.summary.first_failed, Some(1));
    assert_eq!(
        ran.statuses(),
        [
            ("build[api]".to_owned(), Completed, None),
            ("build[worker]".to_owned(), Failed, Some(Reason::ExitCode)),
            ("check".to_owned(), Skipped, failed_reason("build[worker]")),
            ("ship".to_owned(), Skipped, failed_reason("build[worker]")),
            ("done".to_owned(), Skipped, failed_reason("build[worker]")),
        ]
    );
    let failed = &ran.summary.instances[1];
    assert_eq!(failed.exit_code, Some(2));
    assert_eq!(failed.tail, ["compiling", "error: no"]);
    let skipped: Vec<&str> = ran.summary.skipped_because(1).map(|i| i.id.as_str()).collect();
    assert_eq!(skipped, ["check", "ship", "done"]);
    // The failure and the skips are one step.
    let events = &ran.recorder.events;
    let failed_step = events
        .iter()
        .find(|(_, e)| matches!(e, Event::Failed { .. }))
        .unwrap()
        .0;
    assert!(
        events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Skipped { .. }))
            .all(|(s, _)| *s == failed_step)
    );
}

#[test]
fn fail_fast_skips_independent_instances_too() {
    // a fails; b does not depend on it but has not started.
    let plan = plan(vec![instance("a", &[]), instance("b", &[])]);
    let runner = ScriptedRunner::new().always("a", Outcome::Exited(1));
    let ran = run(&plan, &options(), &runner);
    assert_eq!(ran.status("b"), (Skipped, failed_reason("a")));
    assert_eq!(runner.calls().len(), 1);
}

#[test]
fn keep_going_runs_independent_branches_and_skips_downstream() {
    // 0 root; 1 a (fails); 2 b; 3 c after a; 4 d after c; 5 e after b; 6 f after b, d.
    let plan = plan(vec![
        instance("root", &[]),
        instance("a", &[0]),
        instance("b", &[0]),
        instance("c", &[1]),
        instance("d", &[3]),
        instance("e", &[2]),
        instance("f", &[2, 4]),
    ]);
    let runner = ScriptedRunner::new().always("a", Outcome::Exited(1));
    let ran = run(
        &plan,
        &ExecuteOptions {
            keep_going: true,
            ..options()
        },
        &runner,
    );
    assert_eq!(
        ran.statuses(),
        [
            ("root".to_owned(), Completed, None),
            ("a".to_owned(), Failed, Some(Reason::ExitCode)),
            ("b".to_owned(), Completed, None),
            ("c".to_owned(), Skipped, failed_reason("a")),
            ("d".to_owned(), Skipped, failed_reason("a")),
            ("e".to_owned(), Completed, None),
            ("f".to_owned(), Skipped, failed_reason("a")),
        ]
    );
    assert_eq!(ran.summary.first_failed, Some(1));
    let skipped: Vec<&str> = ran.summary.skipped_because(1).map(|i| i.id.as_str()).collect();
    assert_eq!(skipped, ["c", "d", "f"]);
}

#[test]
fn keep_going_names_the_nearest_failure() {
    // a fails, b after a is skipped, c fails, d after b and c names c (a
    // failed direct dependency is nearer than b's inherited failure).
    let plan = plan(vec![
        instance("a", &[]),
        instance("b", &[0]),
        instance("c", &[]),
        instance("d", &[1, 2]),
    ]);
    let runner = ScriptedRunner::new()
        .always("a", Outcome::Exited(1))
        .always("c", Outcome::Exited(1));
    let ran = run(
        &plan,
        &ExecuteOptions {
            keep_going: true,
            ..options()
        },
        &runner,
    );
    assert_eq!(ran.status("b"), (Skipped, failed_reason("a")));
    assert_eq!(ran.status("c"), (Failed, Some(Reason::ExitCode)));
    assert_eq!(ran.status("d"), (Skipped, failed_reason("c")));
    assert_eq!(ran.summary.first_failed, Some(0));
}

#[test]
fn a_false_condition_skips_and_satisfies_dependents() {
    let plan = plan_of(PIPELINE, &[]);
    assert!(!plan.instances[2].enabled);
    let runner = ScriptedRunner::new();
    let ran = run(&plan, &options(), &runner);
    assert!(ran.summary.succeeded());
    assert_eq!(ran.status("check"), (Skipped, Some(Reason::Condition)));
    assert_eq!(ran.status("ship"), (Completed, None));
    assert_eq!(ran.status("done"), (Completed, None));
    assert!(ran.events().contains(&Event::Skipped {
        instance: 2,
        reason: Reason::Condition
    }));
    assert!(runner.calls().iter().all(|c| c.id != "check"));
}

#[test]
fn a_disabled_instance_downstream_of_a_failure_is_skipped_for_the_failure() {
    let plan = plan_of(PIPELINE, &[]);
    let runner = ScriptedRunner::new().always("build[api]", Outcome::Exited(1));
    let ran = run(
        &plan,
        &ExecuteOptions {
            keep_going: true,
            ..options()
        },
        &runner,
    );
    assert_eq!(ran.status("build[worker]"), (Completed, None));
    assert_eq!(ran.status("check"), (Skipped, failed_reason("build[api]")));
    assert_eq!(ran.status("done"), (Skipped, failed_reason("build[api]")));
}

#[test]
fn retries_record_each_attempt_then_succeed() {
    let plan = plan_of(PIPELINE, &[("push", "true")]);
    let runner = ScriptedRunner::new()
        .on("ship", 1, Outcome::Exited(1))
        .on("ship", 2, Outcome::TimedOut)
        .on("ship", 3, Outcome::Exited(0));
    let ran = run(&plan, &options(), &runner);
    assert!(ran.summary.succeeded());
    let ship: Vec<(usize, Event)> = ran
        .recorder
        .events
        .iter()
        .filter(|(_, e)| e.instance() == 3)
        .cloned()
        .collect();
    let events: Vec<&Event> = ship.iter().map(|(_, e)| e).collect();
    assert_eq!(
        events,
        [
            &Event::Started {
                instance: 3,
                attempt: 1
            },
            &Event::AttemptFailed {
                instance: 3,
                attempt: 1,
                exit_code: Some(1),
                reason: Reason::ExitCode
            },
            &Event::Started {
                instance: 3,
                attempt: 2
            },
            &Event::AttemptFailed {
                instance: 3,
                attempt: 2,
                exit_code: None,
                reason: Reason::Timeout
            },
            &Event::Started {
                instance: 3,
                attempt: 3
            },
            &Event::Completed {
                instance: 3,
                exit_code: Some(0)
            },
        ]
    );
    // Without a backoff to wait, a failed attempt and the next start are one step.
    assert_eq!(ship[1].0, ship[2].0);
    assert_eq!(ran.summary.instances[3].attempts, 3);
    assert_eq!(ran.summary.instances[3].exit_code, Some(0));
}

#[test]
fn retries_that_all_fail_end_failed() {
    let plan = plan_of(PIPELINE, &[("push", "true")]);
    let runner = ScriptedRunner::new().always("ship", Outcome::Exited(4));
    let ran = run(&plan, &options(), &runner);
    let ship: Vec<Event> = ran.events().into_iter().filter(|e| e.instance() == 3).collect();
    assert_eq!(
        ship,
        [
            Event::Started {
                instance: 3,
                attempt: 1
            },
            Event::AttemptFailed {
                instance: 3,
                attempt: 1,
                exit_code: Some(4),
                reason: Reason::ExitCode
            },
            Event::Started {
                instance: 3,
                attempt: 2
            },
            Event::AttemptFailed {
                instance: 3,
                attempt: 2,
                exit_code: Some(4),
                reason: Reason::ExitCode
            },
            Event::Started {
                instance: 3,
                attempt: 3
            },
            Event::Failed {
                instance: 3,
                exit_code: Some(4),
                reason: Reason::ExitCode
            },
        ]
    );
    assert_eq!(ran.status("done"), (Skipped, failed_reason("ship")));
    assert_eq!(ran.summary.instances[3].attempts, 3);
    assert_eq!(runner.calls().iter().filter(|c| c.id == "ship").count(), 3);
}

#[test]
fn the_backoff_is_waited_between_attempts() {
    let mut flaky = instance("flaky", &[]);
    flaky.retry = 1;
    flaky.backoff_ms = 150;
    let plan = plan(vec![flaky]);
    let runner = ScriptedRunner::new().on("flaky", 1, Outcome::Exited(1));
    let began = Instant::now();
    let ran = run(
        &plan,
        &ExecuteOptions {
            skip_backoff: false,
            ..options()
        },
        &runner,
    );
    assert!(began.elapsed() >= Duration::from_millis(150), "{:?}", began.elapsed());
    assert!(ran.summary.succeeded());
    // The failed attempt and the retry's start are separate steps.
    let steps: Vec<usize> = ran.recorder.events.iter().map(|(s, _)| *s).collect();
    assert_eq!(steps, [1, 2, 3, 4]);
}

#[test]
fn a_timeout_fails_with_reason_timeout() {
    let mut slow = instance("slow", &[]);
    slow.timeout_ms = Some(1500);
    let plan = plan(vec![slow, instance("next", &[0])]);
    let runner = ScriptedRunner::new()
        .always("slow", Outcome::TimedOut)
        .output("slow", &["waiting"]);
    let ran = run(&plan, &options(), &runner);
    assert_eq!(ran.status("slow"), (Failed, Some(Reason::Timeout)));
    assert_eq!(ran.summary.instances[0].exit_code, None);
    assert_eq!(ran.summary.instances[0].tail, ["waiting"]);
    assert_eq!(ran.status("next"), (Skipped, failed_reason("slow")));
    assert_eq!(runner.calls()[0].timeout, Some(Duration::from_millis(1500)));
}

#[test]
fn spawn_failures_and_signals_are_failures() {
    let plan = plan(vec![instance("a", &[]), instance("b", &[])]);
    let runner = ScriptedRunner::new()
        .always("a", Outcome::SpawnFailed("no sh".to_owned()))
        .always("b", Outcome::Signalled(9));
    let ran = run(
        &plan,
        &ExecuteOptions {
            keep_going: true,
            ..options()
        },
        &runner,
    );
    assert_eq!(ran.status("a"), (Failed, Some(Reason::Spawn("no sh".to_owned()))));
    assert_eq!(ran.status("b"), (Failed, Some(Reason::ExitCode)));
    assert_eq!(ran.summary.instances[1].exit_code, Some(137));
}

#[test]
fn jobs_give_the_same_final_state_as_one_job() {
    let plan = wide(12);
    let delays = |runner: ScriptedRunner| {
        (0..12).fold(runner, |runner, i| {
            runner.delay(&format!("a{i}"), Duration::from_millis(5 + (i % 3) * 7))
        })
    };
    // With failures and --keep-going.
    let script = || {
        delays(ScriptedRunner::new())
            .always("b3", Outcome::Exited(1))
            .on("a5", 1, Outcome::Exited(1))
            .always("b7", Outcome::TimedOut)
    };
    let keep_going = ExecuteOptions {
        keep_going: true,
        ..options()
    };
    let one = run(&plan, &keep_going, &script());
    let runner = script();
    let four = run(&plan, &ExecuteOptions { jobs: 4, ..keep_going }, &runner);
    assert_eq!(one.statuses(), four.statuses());
    assert!(
        runner.most_at_once() > 1 && runner.most_at_once() <= 4,
        "{}",
        runner.most_at_once()
    );
    assert_eq!(one.summary.first_failed, Some(6));
    assert_eq!(one.status("b5"), (Skipped, failed_reason("a5")));
    assert_eq!(one.status("join"), (Skipped, failed_reason("b3")));
    // Everything succeeds: identical summaries apart from durations and ordering of events.
    let runner = delays(ScriptedRunner::new());
    let one = run(&plan, &options(), &runner);
    let runner = delays(ScriptedRunner::new());
    let four = run(&plan, &ExecuteOptions { jobs: 4, ..options() }, &runner);
    assert_eq!(one.statuses(), four.statuses());
    assert!(four.summary.succeeded());
    assert!(runner.most_at_once() > 1 && runner.most_at_once() <= 4);
    let mut one_events = one.events();
    let mut four_events = four.events();
    assert_ne!(one_events, four_events, "with 4 jobs, events interleave");
    one_events.sort_by_key(|e| format!("{e:?}"));
    four_events.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(one_events, four_events);
}

#[test]
fn fail_fast_with_jobs_lets_running_instances_finish() {
    // a fails at once while b (slow) runs; b completes; c never starts.
    let plan = plan(vec![instance("a", &[]), instance("b", &[]), instance("c", &[])]);
    let runner = ScriptedRunner::new()
        .always("a", Outcome::Exited(1))
        .delay("b", Duration::from_millis(100));
    let ran = run(&plan, &ExecuteOptions { jobs: 2, ..options() }, &runner);
    assert_eq!(ran.status("a"), (Failed, Some(Reason::ExitCode)));
    assert_eq!(ran.status("b"), (Completed, None));
    assert_eq!(ran.status("c"), (Skipped, failed_reason("a")));
    assert_eq!(ran.summary.first_failed, Some(0));
}

#[test]
fn output_is_streamed_with_one_job_and_grouped_with_several() {
    let plan = plan(vec![instance("a", &[]), instance("b", &[])]);
    let script = || {
        ScriptedRunner::new()
            .output("a", &["a1", "a2", "a3"])
            .output("b", &["b1", "b2"])
            .delay("a", Duration::from_millis(30))
    };
    let one = run(&plan, &options(), &script());
    let blocks: Vec<(&str, Vec<&str>)> = one
        .sink
        .blocks
        .iter()
        .map(|(id, lines)| (id.as_str(), lines.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        blocks,
        [
            ("a", vec!["a1"]),
            ("a", vec!["a2"]),
            ("a", vec!["a3"]),
            ("b", vec!["b1"]),
            ("b", vec!["b2"])
        ]
    );
    let two = run(&plan, &ExecuteOptions { jobs: 2, ..options() }, &script());
    let blocks: Vec<(&str, Vec<&str>)> = two
        .sink
        .blocks
        .iter()
        .map(|(id, lines)| (id.as_str(), lines.iter().map(String::as_str).collect()))
        .collect();
    // b ends first (a is slow): each instance's lines are one block.
    assert_eq!(blocks, [("b", vec!["b1", "b2"]), ("a", vec!["a1", "a2", "a3"])]);
}

#[test]
fn each_instance_has_a_log_with_every_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs").join("rel-1");
    let plan = plan_of(PIPELINE, &[("push", "true")]);
    let runner = ScriptedRunner::new()
        .output("build[api]", &["building api"])
        .output("ship", &["shipping"])
        .on("ship", 1, Outcome::Exited(1))
        .on("ship", 2, Outcome::Exited(1))
        .on("ship", 3, Outcome::Exited(3));
    let ran = run(
        &plan,
        &ExecuteOptions {
            log_dir: Some(logs.clone()),
            ..options()
        },
        &runner,
    );
    let api = &ran.summary.instances[0];
    assert_eq!(api.log.as_deref(), Some(logs.join("build.api.log").as_path()));
    assert_eq!(
        std::fs::read_to_string(logs.join("build.api.log")).unwrap(),
        "building api\n"
    );
    let ship = &ran.summary.instances[3];
    assert_eq!(ship.log.as_deref(), Some(logs.join("ship.log").as_path()));
    assert_eq!(
        std::fs::read_to_string(logs.join("ship.log")).unwrap(),
        "shipping\n--- attempt 1 failed: exit code 1 ---\n--- attempt 2 ---\nshipping\n\
         --- attempt 2 failed: exit code 1 ---\n--- attempt 3 ---\nshipping\n--- attempt 3 failed: exit code 3 ---\n"
    );
    assert_eq!(ship.tail, ["shipping"]);
    assert_eq!(ship.exit_code, Some(3));
    // A marker has no log; a skipped instance neither.
    assert_eq!(ran.summary.instances[4].log, None);
    assert!(!logs.join("done.log").exists());
}

#[test]
fn the_tail_keeps_the_last_lines() {
    let plan = plan(vec![instance("a", &[])]);
    let lines: Vec<String> = (1..=25).map(|i| format!("line {i}")).collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let runner = ScriptedRunner::new()
        .output("a", &lines)
        .always("a", Outcome::Exited(1));
    let ran = run(&plan, &options(), &runner);
    let tail = &ran.summary.instances[0].tail;
    assert_eq!(tail.len(), engine::TAIL_LINES);
    assert_eq!(tail.first().map(String::as_str), Some("line 16"));
    assert_eq!(tail.last().map(String::as_str), Some("line 25"));
}

#[test]
fn jobs_see_the_variables_and_the_directory() {
    let plan = plan_of(PIPELINE, &[("push", "true")]);
    let runner = ScriptedRunner::new();
    run(
        &plan,
        &ExecuteOptions {
            dir: PathBuf::from("/pipelines/t"),
            ..options()
        },
        &runner,
    );
    let calls = runner.calls();
    let vars = |id: &str| {
        let call = calls.iter().find(|c| c.id == id).unwrap();
        assert_eq!(call.dir, Path::new("/pipelines/t"));
        call.variables
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        vars("build[api]"),
        [
            "STAGECRAFT_ENV=dev",
            "STAGECRAFT_VERSION=1.2",
            "STAGECRAFT_RELEASE=rel-1",
            "STAGECRAFT_PHASE=build",
            "STAGECRAFT_SERVICE=api",
            "STAGECRAFT_WORKFLOW=deploy",
            "STAGECRAFT_PIPELINE=t",
            "STAGECRAFT_ATTEMPT=1",
            "STAGECRAFT_OUTCOME="
        ]
    );
    assert_eq!(vars("ship")[3..5], ["STAGECRAFT_PHASE=ship", "STAGECRAFT_SERVICE="]);
}

#[test]
fn cancellation_fails_the_running_and_skips_the_rest() {
    let plan = plan_of(PIPELINE, &[("push", "true")]);
    let runner = ScriptedRunner::new().interrupt("build[worker]");
    let cancel = Cancel::new();
    let ran = run_with(&plan, &options(), &runner, &cancel);
    assert!(cancel.is_cancelled());
    assert!(ran.summary.interrupted);
    assert!(!ran.summary.succeeded());
    assert_eq!(ran.summary.first_failed, None);
    assert_eq!(
        ran.statuses(),
        [
            ("build[api]".to_owned(), Completed, None),
            ("build[worker]".to_owned(), Failed, Some(Reason::Interrupted)),
            ("check".to_owned(), Skipped, Some(Reason::Interrupted)),
            ("ship".to_owned(), Skipped, Some(Reason::Interrupted)),
            ("done".to_owned(), Skipped, Some(Reason::Interrupted)),
        ]
    );
}

#[test]
fn cancellation_stops_every_running_instance() {
    // b is cancelled while a and c run; neither is retried.
    let mut a = instance("a", &[]);
    a.retry = 3;
    let plan = plan(vec![a, instance("b", &[]), instance("c", &[]), instance("d", &[])]);
    let runner = ScriptedRunner::new()
        .delay("a", Duration::from_secs(10))
        .delay("c", Duration::from_secs(10))
        .delay("b", Duration::from_millis(20))
        .interrupt("b");
    let began = Instant::now();
    let ran = run(&plan, &ExecuteOptions { jobs: 3, ..options() }, &runner);
    assert!(began.elapsed() < Duration::from_secs(5));
    assert_eq!(ran.status("a"), (Failed, Some(Reason::Interrupted)));
    assert_eq!(ran.status("b"), (Failed, Some(Reason::Interrupted)));
    assert_eq!(ran.status("c"), (Failed, Some(Reason::Interrupted)));
    assert_eq!(ran.status("d"), (Skipped, Some(Reason::Interrupted)));
    assert_eq!(runner.calls().len(), 3);
}

#[test]
fn cancellation_during_a_backoff_fails_the_waiting_instance() {
    let mut flaky = instance("flaky", &[]);
    flaky.retry = 1;
    flaky.backoff_ms = 60_000;
    let plan = plan(vec![flaky, instance("after", &[0])]);
    let runner = ScriptedRunner::new().always("flaky", Outcome::Exited(1));
    let cancel = Cancel::new();
    let canceller = cancel.clone();
    let thread = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        canceller.cancel();
    });
    let began = Instant::now();
    let ran = run_with(
        &plan,
        &ExecuteOptions {
            skip_backoff: false,
            ..options()
        },
        &runner,
        &cancel,
    );
    thread.join().unwrap();
    assert!(began.elapsed() < Duration::from_secs(5));
    assert!(ran.summary.interrupted);
    assert_eq!(ran.status("flaky"), (Failed, Some(Reason::Interrupted)));
    assert_eq!(ran.status("after"), (Skipped, Some(Reason::Interrupted)));
    assert_eq!(runner.calls().len(), 1);
}

#[test]
fn a_cancelled_run_starts_nothing() {
    let plan = plan_of(PIPELINE, &[]);
    let runner = ScriptedRunner::new();
    let cancel = Cancel::new();
    cancel.cancel();
    let ran = run_with(&plan, &options(), &runner, &cancel);
    assert!(runner.calls().is_empty());
    assert!(ran.summary.interrupted);
    assert!(
        ran.summary
            .instances
            .iter()
            .all(|i| i.status == Skipped && i.reason == Some(Reason::Interrupted))
    );
}

/// A recorder that fails at a given step.
struct Failing {
    step: usize,
    events: Vec<Event>,
    /// What the executor handed on after the failure.
    kept: Vec<Event>,
}

impl Recorder for Failing {
    fn record(&mut self, events: &[Event]) -> Result<(), RecordError> {
        self.step -= 1;
        if self.step == 0 {
            return Err(RecordError("disk full".to_owned()));
        }
        self.events.extend_from_slice(events);
        Ok(())
    }

    fn keep(&mut self, events: &[Event]) {
        self.kept.extend_from_slice(events);
    }
}

#[test]
fn a_recorder_error_stops_the_run() {
    let plan = plan(vec![instance("a", &[]), instance("b", &[0]), instance("c", &[1])]);
    let runner = ScriptedRunner::new();
    let mut recorder = Failing {
        step: 2,
        events: Vec::new(),
        kept: Vec::new(),
    };
    let cancel = Cancel::new();
    let error = engine::execute(
        &plan,
        &options(),
        &runner,
        &mut recorder,
        &mut MemorySink::default(),
        &cancel,
    )
    .expect_err("the recorder failed");
    assert_eq!(error.to_string(), "disk full");
    assert_eq!(
        recorder.events,
        [Event::Started {
            instance: 0,
            attempt: 1
        }]
    );
    // b's start was not recorded, so it never ran: it ends interrupted, and
    // c is skipped, both handed on to be kept.
    assert_eq!(runner.calls().len(), 1);
    assert_eq!(
        recorder.kept,
        [
            Event::Skipped {
                instance: 2,
                reason: Reason::Interrupted
            },
            Event::Failed {
                instance: 1,
                exit_code: None,
                reason: Reason::Interrupted
            },
        ]
    );
}

#[test]
fn a_recorder_error_before_anything_starts_runs_nothing() {
    let plan = plan(vec![instance("a", &[])]);
    let runner = ScriptedRunner::new();
    let mut recorder = Failing {
        step: 1,
        events: Vec::new(),
        kept: Vec::new(),
    };
    let result = engine::execute(
        &plan,
        &options(),
        &runner,
        &mut recorder,
        &mut MemorySink::default(),
        &Cancel::new(),
    );
    assert!(result.is_err());
    assert!(runner.calls().is_empty());
}

#[test]
fn an_empty_plan_succeeds() {
    let ran = run(&plan(Vec::new()), &options(), &ScriptedRunner::new());
    assert!(ran.summary.succeeded());
    assert!(ran.recorder.events.is_empty());
}

// The real runner.

/// Runs `command` with the `ShellRunner` in `dir`, collecting its output.
fn shell(command: &str, dir: &Path, timeout: Option<Duration>, cancel: &Cancel) -> (Outcome, Vec<String>) {
    let job = Job {
        instance: 0,
        id: "build[api]",
        attempt: 1,
        command,
        dir,
        env: "dev",
        version: "1.2",
        release: "rel-1",
        phase: "build",
        service: Some("api"),
        workflow: "deploy",
        pipeline: "t",
        timeout,
        outcome: None,
        cancel,
    };
    let mut lines = Vec::new();
    let outcome = ShellRunner::default().run(&job, &mut |line: &str| lines.push(line.to_owned()));
    (outcome, lines)
}

/// Runs `command` as [`shell`] does, cancelling the run `after_ms` into it;
/// returns its outcome and how long it took.
fn shell_cancelled(command: &str, dir: &Path, after_ms: u64) -> (Outcome, Duration) {
    let cancel = Cancel::new();
    let canceller = cancel.clone();
    let thread = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(after_ms));
        canceller.cancel();
    });
    let began = Instant::now();
    let (outcome, _) = shell(command, dir, None, &cancel);
    thread.join().unwrap();
    (outcome, began.elapsed())
}

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn shell_true_false_and_exit_codes() {
    let dir = temp();
    let cancel = Cancel::new();
    assert_eq!(shell("true", dir.path(), None, &cancel).0, Outcome::Exited(0));
    assert_eq!(shell("false", dir.path(), None, &cancel).0, Outcome::Exited(1));
    assert_eq!(shell("exit 3", dir.path(), None, &cancel).0, Outcome::Exited(3));
    assert_eq!(shell("kill -9 $$", dir.path(), None, &cancel).0, Outcome::Signalled(9));
}

#[test]
fn shell_output_comes_line_by_line_with_stderr() {
    let dir = temp();
    let (outcome, lines) = shell(
        "echo one; echo two >&2; printf 'three'",
        dir.path(),
        None,
        &Cancel::new(),
    );
    assert_eq!(outcome, Outcome::Exited(0));
    assert_eq!(lines, ["one", "two", "three"]);
}

#[test]
fn shell_sets_the_variables_and_the_directory() {
    let dir = temp();
    let (_, lines) = shell(
        "echo $STAGECRAFT_ENV $STAGECRAFT_VERSION $STAGECRAFT_RELEASE $STAGECRAFT_PHASE $STAGECRAFT_SERVICE; pwd",
        dir.path(),
        None,
        &Cancel::new(),
    );
    assert_eq!(lines[0], "dev 1.2 rel-1 build api");
    assert_eq!(
        Path::new(&lines[1]).canonicalize().unwrap(),
        dir.path().canonicalize().unwrap()
    );
    // A direct spawn (no shell syntax) sees the same.
    let (outcome, lines) = shell("env", dir.path(), None, &Cancel::new());
    assert_eq!(outcome, Outcome::Exited(0));
    for expected in [
        "STAGECRAFT_ENV=dev",
        "STAGECRAFT_RELEASE=rel-1",
        "STAGECRAFT_SERVICE=api",
    ] {
        assert!(lines.iter().any(|line| line == expected), "{expected} in {lines:?}");
    }
}

#[test]
fn shell_reports_a_missing_program_as_the_shell_does() {
    let dir = temp();
    let (outcome, lines) = shell("no-such-program-here --flag", dir.path(), None, &Cancel::new());
    assert_eq!(outcome, Outcome::Exited(127));
    assert!(
        lines.iter().any(|line| line.contains("no-such-program-here")),
        "{lines:?}"
    );
}

#[test]
fn shell_cannot_start_in_a_missing_directory() {
    let dir = temp();
    let (outcome, _) = shell("true", &dir.path().join("missing"), None, &Cancel::new());
    assert!(matches!(outcome, Outcome::SpawnFailed(_)), "{outcome:?}");
}

/// Whether the process `pid` is gone (or a zombie waiting for its reaper).
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn wait_gone(pid: &str) -> bool {
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        if gone(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    let dir = temp();
    let began = Instant::now();
    let (outcome, _) = shell(
        "sleep 30 & echo $! > bg.pid; sleep 5",
        dir.path(),
        Some(Duration::from_millis(200)),
        &Cancel::new(),
    );
    let elapsed = began.elapsed();
    assert_eq!(outcome, Outcome::TimedOut);
    assert!(
        elapsed >= Duration::from_millis(200) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    let pid = std::fs::read_to_string(dir.path().join("bg.pid")).unwrap();
    assert!(wait_gone(pid.trim()), "the background sleep {pid} survived");
}

#[test]
fn a_timeout_kills_a_direct_spawn() {
    let dir = temp();
    let began = Instant::now();
    let (outcome, _) = shell("sleep 5", dir.path(), Some(Duration::from_millis(200)), &Cancel::new());
    assert_eq!(outcome, Outcome::TimedOut);
    assert!(began.elapsed() < Duration::from_secs(2));
}

#[test]
fn cancelling_kills_running_commands() {
    let dir = temp();
    let (outcome, took) = shell_cancelled("sleep 30 & echo $! > bg.pid; sleep 10", dir.path(), 200);
    assert_eq!(outcome, Outcome::Interrupted);
    assert!(took < Duration::from_secs(2));
    let pid = std::fs::read_to_string(dir.path().join("bg.pid")).unwrap();
    assert!(wait_gone(pid.trim()), "the background sleep {pid} survived");
}

#[test]
fn the_shell_runner_runs_a_plan() {
    let dir = temp();
    let logs = dir.path().join("logs");
    let mut write = instance("write", &[]);
    write.command = Some("echo \"$STAGECRAFT_PHASE\" > out.txt; echo wrote".to_owned());
    let mut read = instance("read", &[0]);
    read.command = Some("cat out.txt".to_owned());
    let mut fail = instance("fail", &[1]);
    fail.command = Some("echo about to fail; exit 7".to_owned());
    let plan = plan(vec![write, read, fail, instance("never", &[2])]);
    let options = ExecuteOptions {
        dir: dir.path().to_owned(),
        log_dir: Some(logs.clone()),
        ..options()
    };
    let output = Mutex::new(Vec::new());
    let mut sink = |_: usize, id: &str, lines: &[String]| {
        output
            .lock()
            .unwrap()
            .extend(lines.iter().map(|line| format!("{id}: {line}")));
    };
    let mut recorder = MemoryRecorder::default();
    let summary = engine::execute(
        &plan,
        &options,
        &ShellRunner::default(),
        &mut recorder,
        &mut sink,
        &Cancel::new(),
    )
    .unwrap();
    assert_eq!(
        output.into_inner().unwrap(),
        ["write: wrote", "read: write", "fail: about to fail"]
    );
    assert_eq!(summary.first_failed, Some(2));
    let fail = &summary.instances[2];
    assert_eq!(
        (fail.status, fail.exit_code, &fail.tail),
        (Failed, Some(7), &vec!["about to fail".to_owned()])
    );
    assert_eq!(std::fs::read_to_string(logs.join("read.log")).unwrap(), "write\n");
    assert_eq!(summary.instances[3].reason, failed_reason("fail"));
}

// Claims: a recorder that syncs on a thread of its own.

/// What a syncing recorder wrote, and how much of it a sync made durable.
#[derive(Debug, Default)]
struct Disk {
    written: Vec<Event>,
    durable: usize,
    syncs: usize,
    /// The sync (1 for the first) that fails.
    fail_at: Option<usize>,
}

impl Disk {
    /// Whether a durable record says `instance` may start.
    fn may_start(&self, instance: usize) -> bool {
        self.written[..self.durable].iter().any(|event| {
            matches!(event, Event::Claimed { instance: i } | Event::Started { instance: i, .. } if *i == instance)
        })
    }
}

type Shared = std::sync::Arc<Mutex<Disk>>;

struct SyncingRecorder(Shared);

impl Recorder for SyncingRecorder {
    fn record(&mut self, events: &[Event]) -> Result<(), RecordError> {
        self.0.lock().unwrap().written.extend_from_slice(events);
        Ok(())
    }

    fn syncer(&mut self) -> Result<Option<Box<dyn Syncer>>, RecordError> {
        Ok(Some(Box::new(DiskSyncer(self.0.clone()))))
    }
}

struct DiskSyncer(Shared);

impl Syncer for DiskSyncer {
    fn sync(&mut self) -> Result<(), RecordError> {
        // A sync takes a while, as a disk's does.
        std::thread::sleep(Duration::from_micros(200));
        let mut disk = self.0.lock().unwrap();
        disk.syncs += 1;
        if disk.fail_at == Some(disk.syncs) {
            return Err(RecordError("sync failed".to_owned()));
        }
        disk.durable = disk.written.len();
        Ok(())
    }
}

/// Runs through `inner`, noting every command started before a durable
/// record said it may.
struct Checking<'r> {
    disk: Shared,
    inner: &'r ScriptedRunner,
    early: Mutex<Vec<String>>,
}

impl Runner for Checking<'_> {
    fn start<'a>(&'a self, job: &Job<'a>) -> Box<dyn Child + 'a> {
        if !self.disk.lock().unwrap().may_start(job.instance) {
            self.early.lock().unwrap().push(job.id.to_owned());
        }
        self.inner.start(job)
    }
}

/// Runs `plan` with a syncing recorder; returns the summary (or error),
/// the disk and the commands started too early.
fn run_syncing(
    plan: &Plan,
    options: &ExecuteOptions,
    inner: &ScriptedRunner,
    fail_at: Option<usize>,
) -> (Result<Summary, RecordError>, Disk, Vec<String>) {
    let disk: Shared = std::sync::Arc::new(Mutex::new(Disk {
        fail_at,
        ..Disk::default()
    }));
    let runner = Checking {
        disk: disk.clone(),
        inner,
        early: Mutex::new(Vec::new()),
    };
    let mut recorder = SyncingRecorder(disk.clone());
    let result = engine::execute(
        plan,
        options,
        &runner,
        &mut recorder,
        &mut MemorySink::default(),
        &Cancel::new(),
    );
    drop(recorder);
    let disk = std::mem::take(&mut *disk.lock().unwrap());
    (result, disk, runner.early.into_inner().unwrap())
}

/// A chain of `n` instances.
fn chain(n: usize) -> Plan {
    plan(
        (0..n)
            .map(|i| instance(&format!("c{i}"), &(0..i).skip(i.saturating_sub(1)).collect::<Vec<_>>()))
            .collect(),
    )
}

#[test]
fn no_command_starts_before_its_claim_is_durable() {
    for jobs in [1, 2, 4] {
        for plan in [wide(6), chain(12)] {
            let options = ExecuteOptions { jobs, ..options() };
            let runner = ScriptedRunner::new().delay("a1", Duration::from_millis(3));
            let (result, disk, early) = run_syncing(&plan, &options, &runner, None);
            let summary = result.expect("execute");
            assert!(summary.succeeded(), "jobs {jobs}");
            assert!(
                early.is_empty(),
                "jobs {jobs}: started before their claim was durable: {early:?}"
            );
            // Everything is durable when the run returns.
            assert_eq!(disk.durable, disk.written.len(), "jobs {jobs}");
            // The same final state as with a recorder that syncs each step.
            let plain = run(&plan, &options, &ScriptedRunner::new());
            assert_eq!(
                summary
                    .instances
                    .iter()
                    .map(|i| (i.status, i.attempts))
                    .collect::<Vec<_>>(),
                plain
                    .summary
                    .instances
                    .iter()
                    .map(|i| (i.status, i.attempts))
                    .collect::<Vec<_>>(),
            );
        }
    }
}

#[test]
fn claims_come_before_starts_and_stay_a_few_jobs_ahead() {
    for jobs in [1, 3] {
        let plan = chain(20);
        let options = ExecuteOptions { jobs, ..options() };
        let (result, disk, _) = run_syncing(&plan, &options, &ScriptedRunner::new(), None);
        assert!(result.expect("execute").succeeded());
        let position = |wanted: &Event| disk.written.iter().position(|event| event == wanted);
        for instance in 1..20 {
            let claimed = position(&Event::Claimed { instance }).expect("claimed");
            let started = position(&Event::Started { instance, attempt: 1 }).expect("started");
            assert!(claimed < started, "c{instance} started before it was claimed");
        }
        // Never more than CLAIM_AHEAD × jobs claims ahead, plus the `jobs`
        // expected next, waiting to be used.
        let mut waiting = std::collections::BTreeSet::new();
        for event in &disk.written {
            match *event {
                Event::Claimed { instance } => {
                    waiting.insert(instance);
                }
                Event::Started { instance, .. } | Event::Skipped { instance, .. } => {
                    waiting.remove(&instance);
                }
                _ => {}
            }
            assert!(waiting.len() <= (engine::CLAIM_AHEAD + 1) * jobs, "{waiting:?}");
        }
    }
}

#[test]
fn long_commands_claim_little_more_than_the_next() {
    // Each command takes 15 ms: the last 5 ms saw at most one start.
    let plan = chain(6);
    let mut runner = ScriptedRunner::new();
    for i in 0..6 {
        runner = runner.delay(&format!("c{i}"), Duration::from_millis(15));
    }
    let (result, disk, early) = run_syncing(&plan, &options(), &runner, None);
    assert!(result.expect("execute").succeeded());
    assert!(early.is_empty());
    let mut waiting = std::collections::BTreeSet::new();
    let mut most = 0;
    for event in &disk.written {
        match *event {
            Event::Claimed { instance } => {
                waiting.insert(instance);
            }
            Event::Started { instance, .. } => {
                waiting.remove(&instance);
            }
            _ => {}
        }
        most = most.max(waiting.len());
    }
    assert!(most <= 3, "{most} claims waited at once");
}

#[test]
fn a_failed_claim_is_skipped_like_any_pending_instance() {
    // c1 fails: c2 and c3, claimed while c1 ran, are skipped.
    let plan = chain(4);
    let runner = ScriptedRunner::new().on("c1", 1, Outcome::Exited(2));
    let (result, disk, early) = run_syncing(&plan, &options(), &runner, None);
    let summary = result.expect("execute");
    assert!(early.is_empty());
    assert!(disk.written.contains(&Event::Claimed { instance: 2 }));
    let statuses: Vec<_> = summary.instances.iter().map(|i| (i.status, i.reason.clone())).collect();
    assert_eq!(
        statuses,
        [
            (Completed, None),
            (Failed, Some(Reason::ExitCode)),
            (Skipped, Some(Reason::Failed("c1".to_owned()))),
            (Skipped, Some(Reason::Failed("c1".to_owned()))),
        ]
    );
}

#[test]
fn a_failed_sync_stops_the_run_before_an_unsynced_claim_is_used() {
    for jobs in [1, 2] {
        let plan = chain(10);
        let options = ExecuteOptions { jobs, ..options() };
        let runner = ScriptedRunner::new();
        let (result, disk, early) = run_syncing(&plan, &options, &runner, Some(2));
        assert_eq!(result.expect_err("the sync failed").to_string(), "sync failed");
        assert!(early.is_empty(), "{early:?}");
        // Only what the first sync made durable was allowed to run.
        for call in runner.calls() {
            let instance: usize = call.id[1..].parse().unwrap();
            assert!(disk.may_start(instance), "{} ran", call.id);
        }
    }
}

// A command that closes its output and goes on running.

#[test]
fn a_command_that_closes_its_output_is_awaited_without_holding_up_the_others() {
    let dir = temp();
    let mut quiet = instance("quiet", &[]);
    quiet.command = Some("exec >/dev/null 2>&1; sleep 0.4; exit 4".to_owned());
    let mut chatty = instance("chatty", &[]);
    chatty.command = Some("echo hi".to_owned());
    let mut after = instance("after", &[1]);
    after.command = Some("echo after".to_owned());
    let plan = plan(vec![quiet, chatty, after]);
    let options = ExecuteOptions {
        dir: dir.path().to_owned(),
        jobs: 2,
        keep_going: true,
        ..options()
    };
    let began = Instant::now();
    let ran = run(&plan, &options, &ShellRunner::default());
    // The quiet command's exit code is its leader's, once it exited.
    assert_eq!(ran.status("quiet"), (Failed, Some(Reason::ExitCode)));
    assert_eq!(ran.summary.instances[0].exit_code, Some(4));
    assert!(began.elapsed() >= Duration::from_millis(400));
    // Meanwhile the others ran to their end.
    let events = ran.events();
    let position = |wanted: Event| events.iter().position(|event| *event == wanted).unwrap();
    assert!(
        position(Event::Completed {
            instance: 2,
            exit_code: Some(0)
        }) < position(Event::Failed {
            instance: 0,
            exit_code: Some(4),
            reason: Reason::ExitCode
        })
    );
}

#[test]
fn a_timeout_applies_after_the_output_closed() {
    let dir = temp();
    let cancel = Cancel::new();
    let began = Instant::now();
    let (outcome, _) = shell(
        "exec >/dev/null 2>&1; sleep 30",
        dir.path(),
        Some(Duration::from_millis(200)),
        &cancel,
    );
    assert_eq!(outcome, Outcome::TimedOut);
    assert!(began.elapsed() < Duration::from_secs(10));
}

#[test]
fn cancelling_kills_a_command_that_closed_its_output() {
    let dir = temp();
    let (outcome, took) = shell_cancelled("exec >/dev/null 2>&1; sleep 30", dir.path(), 300);
    assert_eq!(outcome, Outcome::Interrupted);
    assert!(took < Duration::from_secs(10));
}

#[test]
fn commands_get_sigpipe_back_and_stdin_from_dev_null() {
    // stagecraft ignores SIGPIPE, as Rust programs do; a command must not
    // inherit that (a shell cannot even trap a signal ignored on entry).
    let dir = temp();
    let cancel = Cancel::new();
    assert_eq!(
        shell("kill -PIPE $$", dir.path(), None, &cancel).0,
        Outcome::Signalled(13)
    );
    let (outcome, lines) = shell("cat; echo end", dir.path(), None, &cancel);
    assert_eq!((outcome, lines), (Outcome::Exited(0), vec!["end".to_owned()]));
}

// Rollback support: per-service versions and unchanged services.

/// A rollback-like workflow: a global step, then per-service deploys and
/// checks that print their version, then a global step after them.
const PER_SERVICE: &str = r#"
pipeline t
env dev {}
service api {}
service web {}
service worker {}
phase prepare { run "prepare {{version}}" }
phase deploy {
  for each service
  after prepare
  run "deploy {{service}} {{version}}"
}
phase check {
  for each service
  after deploy
  when push
  run "check {{service}}"
}
phase announce {
  after check
  run "announce {{version}}"
}
workflow rollback { prepare deploy check announce }
"#;

fn plan_rollback(versions: &[(&str, &str)], unchanged: &[&str]) -> Result<Plan, engine::PlanError> {
    let compilation = stagecraft::graph::compile(PER_SERVICE);
    assert!(!compilation.has_errors(), "{:?}", compilation.diagnostics);
    let (Some(pipeline), Some(graph)) = (&compilation.pipeline, &compilation.graph) else {
        panic!("no pipeline");
    };
    engine::plan(
        pipeline,
        graph,
        &PlanRequest {
            env: "dev".to_owned(),
            workflow: "rollback".to_owned(),
            version: "v1".to_owned(),
            release: "rel-1".to_owned(),
            service_versions: versions
                .iter()
                .map(|&(service, version)| (service.to_owned(), version.to_owned()))
                .collect(),
            unchanged: unchanged.iter().map(|&service| service.to_owned()).collect(),
            ..PlanRequest::default()
        },
    )
}

#[test]
fn a_per_service_instance_takes_its_services_version() {
    let plan = plan_rollback(&[("api", "v3"), ("worker", "v2")], &[]).unwrap();
    let found = |id: &str| plan.instances.iter().find(|i| *i.id == *id).expect(id);
    assert_eq!(plan.version, "v1");
    for (id, version, command) in [
        ("prepare", "v1", "prepare v1"),
        ("deploy[api]", "v3", "deploy api v3"),
        ("deploy[web]", "v1", "deploy web v1"),
        ("deploy[worker]", "v2", "deploy worker v2"),
        ("announce", "v1", "announce v1"),
    ] {
        assert_eq!(&*found(id).version, version, "{id}");
        assert_eq!(found(id).command.as_deref(), Some(command), "{id}");
    }
    // STAGECRAFT_VERSION follows.
    let runner = ScriptedRunner::new();
    assert!(run(&plan, &options(), &runner).summary.succeeded());
    let version_of = |id: &str| {
        let call = runner.calls().into_iter().find(|c| c.id == id).expect(id);
        call.variables
            .into_iter()
            .find(|(k, _)| k == "STAGECRAFT_VERSION")
            .unwrap()
            .1
    };
    assert_eq!(version_of("deploy[api]"), "v3");
    assert_eq!(version_of("deploy[web]"), "v1");
    assert_eq!(version_of("announce"), "v1");
}

#[test]
fn an_unchanged_service_is_skipped_and_satisfies_its_dependents() {
    let plan = plan_rollback(&[("api", "v3")], &["web", "worker"]).unwrap();
    let skips: Vec<(&str, Option<Reason>)> = plan.instances.iter().map(|i| (&*i.id, i.skip())).collect();
    assert_eq!(
        skips,
        [
            ("prepare", None),
            ("deploy[api]", None),
            ("deploy[web]", Some(Reason::Unchanged)),
            ("deploy[worker]", Some(Reason::Unchanged)),
            ("check[api]", Some(Reason::Condition)),
            // Unchanged wins over a false condition.
            ("check[web]", Some(Reason::Unchanged)),
            ("check[worker]", Some(Reason::Unchanged)),
            ("announce", None),
        ]
    );
    let runner = ScriptedRunner::new();
    let ran = run(&plan, &options(), &runner);
    assert!(ran.summary.succeeded());
    assert_eq!(
        ran.status("deploy[web]"),
        (InstanceStatus::Skipped, Some(Reason::Unchanged))
    );
    assert_eq!(ran.status("announce"), (InstanceStatus::Completed, None));
    let ran_ids: Vec<String> = runner.calls().into_iter().map(|c| c.id).collect();
    assert_eq!(ran_ids, ["prepare", "deploy[api]", "announce"]);
    assert!(ran.events().contains(&Event::Skipped {
        instance: 2,
        reason: Reason::Unchanged
    }));
    assert_eq!(Reason::Unchanged.to_string(), "unchanged");
    // The plan says so in JSON.
    let json: serde_json::Value = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["phases"][2]["unchanged"], true);
    assert_eq!(json["phases"][1]["version"], "v3");
    let mut written = Vec::new();
    plan.write_json(&mut written).unwrap();
    assert_eq!(
        written,
        (serde_json::to_string_pretty(&plan).unwrap() + "\n").into_bytes()
    );
}

#[test]
fn per_service_versions_and_unchanged_services_must_be_services() {
    for (versions, unchanged) in [(&[("apx", "v3")][..], &[][..]), (&[], &["wrker"][..])] {
        match plan_rollback(versions, unchanged) {
            Err(engine::PlanError::UnknownService { name, help }) => {
                assert!(name == "apx" || name == "wrker", "{name}");
                assert!(help.is_some(), "{name}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_failed_run_is_undone_with_durable_starts_before_its_finally_instances() {
    let undoable = |id: &str, after: &[usize]| PlannedInstance {
        undo: Some(format!("undo {id}")),
        ..testing::instance(id, after)
    };
    let notify = PlannedInstance {
        on_failure: Some(Box::new(engine::OnFailure {
            command: Some("notify".to_owned()),
            enabled: true,
        })),
        ..testing::instance("notify", &[])
    };
    let plan = testing::plan(
        "p",
        "dev",
        "deploy",
        "1",
        vec![
            undoable("a", &[]),
            undoable("b", &[0]),
            testing::instance("c", &[1]),
            notify,
        ],
    );
    let runner = ScriptedRunner::new().always("c", Outcome::Exited(1));
    let options = ExecuteOptions {
        undo_on_failure: true,
        ..options()
    };
    let ran = run(&plan, &options, &runner);
    let commands: Vec<String> = runner.calls().into_iter().map(|c| c.command).collect();
    assert_eq!(commands, ["true", "true", "true", "undo b", "undo a", "notify"]);
    let undo_events: Vec<Event> = ran
        .events()
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                Event::UndoStarted { .. } | Event::Undone { .. } | Event::Started { instance: 3, .. }
            )
        })
        .collect();
    assert_eq!(
        undo_events,
        [
            Event::UndoStarted { instance: 1 },
            Event::Undone {
                instance: 1,
                exit_code: Some(0)
            },
            Event::UndoStarted { instance: 0 },
            Event::Undone {
                instance: 0,
                exit_code: Some(0)
            },
            Event::Started {
                instance: 3,
                attempt: 1
            },
        ]
    );
    // The recorder syncs as it records: each undo started once recorded.
    let started = |instance: usize| {
        ran.recorder
            .events
            .iter()
            .position(|(_, e)| *e == Event::UndoStarted { instance })
    };
    assert!(started(1) < started(0));
    assert_eq!(ran.summary.undo_order, [1, 0]);
    assert!(!ran.summary.succeeded(), "undoing does not make the run succeed");
}

/// A resumed run: the instances carried over are recorded completed
/// without running (never claimed, never started), and their dependents
/// run as after any completed instance; with `--jobs 2` as with one.
#[test]
fn carried_over_instances_complete_without_running_and_satisfy_their_dependents() {
    // a → b → c, and d alone; a and b completed in the release resumed.
    let plan = plan(vec![
        instance("a", &[]),
        instance("b", &[0]),
        instance("c", &[1]),
        instance("d", &[]),
    ]);
    for jobs in [1, 2] {
        let options = ExecuteOptions {
            jobs,
            carry: engine::CarryOver {
                from: "rel-0".to_owned(),
                instances: [0, 1].into_iter().collect(),
            },
            ..options()
        };
        let runner = ScriptedRunner::new();
        let ran = run(&plan, &options, &runner);
        assert!(ran.summary.succeeded());
        let called: Vec<String> = runner.calls().iter().map(|c| c.id.clone()).collect();
        assert_eq!(called, ["c", "d"], "jobs {jobs}");
        let carried = Some(Reason::CarriedOver("rel-0".to_owned()));
        assert_eq!(ran.status("a"), (Completed, carried.clone()));
        assert_eq!(ran.status("b"), (Completed, carried));
        assert_eq!(ran.status("c"), (Completed, None));
        for event in ran.events() {
            if [0, 1].contains(&event.instance()) {
                assert!(
                    matches!(event, Event::CarriedOver { ref from, .. } if from == "rel-0"),
                    "{event:?}"
                );
            }
        }
    }
}
