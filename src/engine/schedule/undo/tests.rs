//! The undo stage driven by hand: no runner, no recorder.

use std::time::Instant;

use super::super::{Done, ExecuteOptions, Run};
use crate::engine::event::{Event, Reason};
use crate::engine::output::Grouped;
use crate::engine::plan::{OnFailure, Plan, PlannedInstance};
use crate::engine::runner::Outcome;
use crate::engine::summary::UndoStatus;
use crate::testing::{self, instance};

fn undoable(id: &str, after: &[usize]) -> PlannedInstance {
    PlannedInstance {
        undo: Some(format!("undo {id}")),
        ..instance(id, after)
    }
}

fn finally(id: &str) -> PlannedInstance {
    PlannedInstance {
        on_failure: Some(Box::new(OnFailure {
            command: Some("true".to_owned()),
            enabled: true,
        })),
        ..instance(id, &[])
    }
}

fn plan(instances: Vec<PlannedInstance>) -> Plan {
    testing::plan("p", "prod", "deploy", "1", instances)
}

fn options(jobs: usize, undo: bool) -> ExecuteOptions {
    ExecuteOptions {
        jobs,
        undo_on_failure: undo,
        ..ExecuteOptions::default()
    }
}

/// What a step starts: attempts, then undos.
fn step(run: &mut Run<'_>) -> (Vec<usize>, Vec<usize>) {
    let now = Instant::now();
    run.start_due(now);
    run.start_ready(now);
    let attempts = std::mem::take(&mut run.to_spawn).into_iter().map(|(i, _)| i).collect();
    (attempts, std::mem::take(&mut run.undos.to_spawn))
}

fn end(run: &mut Run<'_>, instance: usize, code: i32, undo: bool) {
    run.ended(Done {
        instance,
        attempt: 1,
        outcome: Outcome::Exited(code),
        output: Grouped::default(),
        tail: Vec::new(),
        log_ok: false,
        log_error: None,
        undo,
    });
}

/// Runs the attempts one at a time, `fails` failing, and returns the
/// undos the run then asks for, one at a time, each ending with `undo_code`
/// for its instance; returns the undos in the order they started and the
/// attempts started after the first undo.
fn drive(run: &mut Run<'_>, fails: usize, undo_code: impl Fn(usize) -> i32) -> (Vec<usize>, Vec<usize>) {
    let (mut undos, mut after) = (Vec::new(), Vec::new());
    let (mut attempts, mut starting) = step(run);
    loop {
        if let Some(undo) = starting.first().copied() {
            starting.remove(0);
            undos.push(undo);
            end(run, undo, undo_code(undo), true);
        } else if let Some(attempt) = attempts.first().copied() {
            attempts.remove(0);
            if !undos.is_empty() {
                after.push(attempt);
            }
            end(run, attempt, i32::from(attempt == fails), false);
        } else {
            return (undos, after);
        }
        let (more_attempts, more_undos) = step(run);
        attempts.extend(more_attempts);
        starting.extend(more_undos);
    }
}

#[test]
fn completed_instances_are_undone_latest_first_before_finally() {
    // migrate, rollout[api] and rollout[web] after it, then notify.
    let plan = plan(vec![
        undoable("migrate", &[]),
        undoable("rollout[api]", &[0]),
        undoable("rollout[web]", &[0]),
        instance("check", &[0]),
        finally("notify"),
    ]);
    let options = options(1, true);
    let mut run = Run::new(&plan, &options);
    let (undos, after) = drive(&mut run, 2, |_| 0);
    assert_eq!(undos, [1, 0], "rollout[api] completed last: undone first");
    assert_eq!(after, [4], "notify runs after the undos");
    let summary = run.summary(std::time::Duration::ZERO);
    assert_eq!(summary.undo_order, [1, 0]);
    let undo = |i: usize| summary.instances[i].undo.as_ref().map(|u| u.status);
    assert_eq!(
        (0..5).map(undo).collect::<Vec<_>>(),
        [Some(UndoStatus::Undone), Some(UndoStatus::Undone), None, None, None],
        "the failed, skipped and finally instances have no undo"
    );
}

#[test]
fn an_undo_waits_for_the_undos_of_its_dependents_only() {
    // a, b, c (after a) complete in that order, then d fails.
    let plan = plan(vec![
        undoable("a", &[]),
        undoable("b", &[]),
        undoable("c", &[0]),
        instance("d", &[]),
    ]);
    let one = options(1, true);
    let mut run = Run::new(&plan, &one);
    assert_eq!(
        drive(&mut run, 3, |_| 0).0,
        [2, 1, 0],
        "one job: reverse order of completion"
    );

    // Two jobs: c and b at once; a waits for c, not for b.
    let options = options(2, true);
    let mut run = Run::new(&plan, &options);
    assert_eq!(step(&mut run).0, [0, 1]);
    end(&mut run, 0, 0, false);
    end(&mut run, 1, 0, false);
    assert_eq!(step(&mut run).0, [2, 3]);
    end(&mut run, 2, 0, false);
    end(&mut run, 3, 1, false);
    assert_eq!(step(&mut run).1, [2, 1], "c and b are independent");
    end(&mut run, 1, 0, true);
    assert_eq!(step(&mut run).1, Vec::<usize>::new(), "a still waits for c");
    end(&mut run, 2, 0, true);
    assert_eq!(step(&mut run).1, [0]);
    assert!(run.events.iter().all(|e| !matches!(e, Event::UndoNotAttempted { .. })));
}

#[test]
fn a_failed_undo_stops_the_undoing() {
    let plan = plan(vec![
        undoable("a", &[]),
        undoable("b", &[]),
        undoable("c", &[]),
        instance("d", &[]),
        finally("notify"),
    ]);
    let options = options(1, true);
    let mut run = Run::new(&plan, &options);
    let (undos, after) = drive(&mut run, 3, |i| if i == 1 { 4 } else { 0 });
    assert_eq!(undos, [2, 1], "a is not attempted");
    assert_eq!(after, [4], "finally still runs");
    assert!(run.events.contains(&Event::UndoFailed {
        instance: 1,
        exit_code: Some(4),
        reason: Reason::ExitCode,
    }));
    assert!(run.events.contains(&Event::UndoNotAttempted {
        instance: 0,
        reason: Reason::UndoFailed("b".to_owned()),
    }));
    let summary = run.summary(std::time::Duration::ZERO);
    let statuses: Vec<_> = (0..3)
        .map(|i| summary.instances[i].undo.as_ref().map(|u| u.status))
        .collect();
    assert_eq!(
        statuses,
        [
            Some(UndoStatus::NotAttempted),
            Some(UndoStatus::Failed),
            Some(UndoStatus::Undone)
        ]
    );
}

#[test]
fn nothing_is_undone_on_success_without_the_option_or_after_an_interruption() {
    let plan = plan(vec![undoable("a", &[]), instance("b", &[0])]);
    let on = options(1, true);
    let mut run = Run::new(&plan, &on);
    assert_eq!(drive(&mut run, usize::MAX, |_| 0).0, Vec::<usize>::new(), "success");
    assert!(run.summary(std::time::Duration::ZERO).undo_order.is_empty());

    let off = options(1, false);
    let mut run = Run::new(&plan, &off);
    assert_eq!(drive(&mut run, 1, |_| 0).0, Vec::<usize>::new(), "undo off");

    let mut run = Run::new(&plan, &on);
    assert_eq!(step(&mut run).0, [0]);
    end(&mut run, 0, 0, false);
    assert_eq!(step(&mut run).0, [1]);
    run.interrupt();
    end(&mut run, 1, 1, false);
    assert_eq!(step(&mut run).1, Vec::<usize>::new(), "no undo starts after Ctrl-C");
    assert!(run.events.contains(&Event::UndoNotAttempted {
        instance: 0,
        reason: Reason::Interrupted,
    }));
}
