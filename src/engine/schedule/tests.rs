//! The schedule driven by hand, with plain values: no runner, no recorder.

use std::time::{Duration, Instant};

use super::*;
use crate::engine::plan::PlannedInstance;
use crate::testing::{self, instance};

fn plan(instances: Vec<PlannedInstance>) -> Plan {
    testing::plan("p", "dev", "deploy", "1", instances)
}

fn options(jobs: usize, keep_going: bool) -> ExecuteOptions {
    ExecuteOptions {
        jobs,
        keep_going,
        ..ExecuteOptions::default()
    }
}

/// Starts what is due and ready, as the executor does at each step, and
/// returns the attempts to spawn.
fn step(run: &mut Run<'_>, now: Instant) -> Vec<(usize, u32)> {
    run.start_due(now);
    run.start_ready(now);
    std::mem::take(&mut run.to_spawn)
}

/// Attempt `attempt` of the instance at `instance` ended with `outcome`.
fn end(run: &mut Run<'_>, instance: usize, attempt: u32, outcome: Outcome) {
    run.ended(Done {
        instance,
        attempt,
        outcome,
        output: Grouped::default(),
        tail: Vec::new(),
        log_ok: false,
        log_error: None,
        undo: false,
    });
}

/// Runs `run` to its end, every attempt ending with `outcome_of`, one at a
/// time in the order they started; returns the order they started in.
fn drive(run: &mut Run<'_>, outcome_of: impl Fn(usize, u32) -> Outcome) -> Vec<(usize, u32)> {
    let now = Instant::now();
    let mut started = Vec::new();
    let mut running = step(run, now);
    while !running.is_empty() {
        let (instance, attempt) = running.remove(0);
        started.push((instance, attempt));
        end(run, instance, attempt, outcome_of(instance, attempt));
        running.extend(step(run, now));
    }
    started
}

fn statuses(run: Run<'_>) -> Vec<(InstanceStatus, Option<Reason>)> {
    let summary = run.summary(Duration::ZERO);
    summary.instances.into_iter().map(|i| (i.status, i.reason)).collect()
}

#[test]
fn ready_instances_start_in_plan_order() {
    // c waits for a; b and d wait for nothing.
    let plan = plan(vec![
        instance("a", &[]),
        instance("b", &[]),
        instance("c", &[0]),
        instance("d", &[]),
    ]);
    let one = options(1, false);
    let mut run = Run::new(&plan, &one);
    let order: Vec<usize> = drive(&mut run, |_, _| Outcome::Exited(0))
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    assert_eq!(order, [0, 1, 2, 3], "with one job, exactly the plan's order");

    // With two jobs a and b start; when b ends first, d (ready) goes before
    // c (still waiting for a), and c starts once a ends.
    let two = options(2, false);
    let mut run = Run::new(&plan, &two);
    let now = Instant::now();
    assert_eq!(step(&mut run, now), [(0, 1), (1, 1)]);
    end(&mut run, 1, 1, Outcome::Exited(0));
    assert_eq!(step(&mut run, now), [(3, 1)]);
    end(&mut run, 0, 1, Outcome::Exited(0));
    assert_eq!(step(&mut run, now), [(2, 1)]);
}

#[test]
fn markers_and_disabled_instances_end_at_once_and_are_never_claimed() {
    let mut marker = instance("marker", &[]);
    marker.command = None;
    let mut disabled = instance("off", &[]);
    disabled.enabled = false;
    let plan = plan(vec![
        instance("a", &[]),
        marker,
        disabled,
        instance("d", &[]),
        instance("e", &[]),
    ]);
    let options = options(1, false);
    let mut run = Run::new(&plan, &options);
    let now = Instant::now();
    assert_eq!(step(&mut run, now), [(0, 1)]);
    run.claim_next(now);
    assert_eq!(
        run.events,
        [
            Event::Started {
                instance: 0,
                attempt: 1
            },
            Event::Started {
                instance: 1,
                attempt: 1
            },
            Event::Completed {
                instance: 1,
                exit_code: None
            },
            Event::Skipped {
                instance: 2,
                reason: Reason::Condition
            },
            // Expected next (d), then one more for the start in the window.
            Event::Claimed { instance: 3 },
            Event::Claimed { instance: 4 },
        ]
    );
    assert_eq!(run.claims.claimed().collect::<Vec<_>>(), [3, 4]);
    // A start uses its claim up.
    end(&mut run, 0, 1, Outcome::Exited(0));
    assert_eq!(step(&mut run, now), [(3, 1)]);
    assert_eq!(run.claims.claimed().collect::<Vec<_>>(), [4]);
}

#[test]
fn claims_reach_further_while_starts_are_frequent() {
    let ahead = crate::engine::CLAIM_AHEAD;
    let plan = plan((0..3 * ahead).map(|i| instance(&format!("i{i}"), &[])).collect());
    let options = options(1, false);
    let mut run = Run::new(&plan, &options);
    let now = Instant::now();
    // As many quick starts within the window as CLAIM_AHEAD: claims cover
    // the next CLAIM_AHEAD (the most, CLAIM_AHEAD × jobs).
    for position in 0..ahead {
        assert_eq!(step(&mut run, now), [(position, 1)]);
        end(&mut run, position, 1, Outcome::Exited(0));
    }
    assert_eq!(step(&mut run, now), [(ahead, 1)]);
    run.claim_next(now);
    assert_eq!(
        run.claims.claimed().collect::<Vec<_>>(),
        ((ahead + 1)..=(2 * ahead)).collect::<Vec<_>>()
    );
    // Long after, only the next one would be claimed: the claims made stay.
    run.claim_next(now + Duration::from_secs(1));
    assert_eq!(run.claims.claimed().count(), ahead);
}

#[test]
fn fail_fast_skips_everything_not_started_naming_the_failure() {
    let plan = plan(vec![instance("a", &[]), instance("b", &[0]), instance("c", &[])]);
    let options = options(1, false);
    let mut run = Run::new(&plan, &options);
    let started = drive(
        &mut run,
        |i, _| if i == 0 { Outcome::Exited(1) } else { Outcome::Exited(0) },
    );
    assert_eq!(started, [(0, 1)]);
    assert_eq!(run.first_failed, Some(0));
    let failed = Some(Reason::Failed("a".to_owned()));
    assert_eq!(
        statuses(run),
        [
            (InstanceStatus::Failed, Some(Reason::ExitCode)),
            (InstanceStatus::Skipped, failed.clone()),
            (InstanceStatus::Skipped, failed),
        ]
    );
}

#[test]
fn fail_fast_lets_running_instances_finish() {
    let plan = plan(vec![instance("a", &[]), instance("b", &[]), instance("c", &[])]);
    let options = options(2, false);
    let mut run = Run::new(&plan, &options);
    let now = Instant::now();
    assert_eq!(step(&mut run, now), [(0, 1), (1, 1)]);
    end(&mut run, 0, 1, Outcome::Exited(2));
    assert_eq!(step(&mut run, now), []);
    end(&mut run, 1, 1, Outcome::Exited(0));
    assert_eq!(step(&mut run, now), []);
    assert_eq!(
        statuses(run),
        [
            (InstanceStatus::Failed, Some(Reason::ExitCode)),
            (InstanceStatus::Completed, None),
            (InstanceStatus::Skipped, Some(Reason::Failed("a".to_owned()))),
        ]
    );
}

#[test]
fn keep_going_runs_what_does_not_depend_on_the_failure() {
    // b after a, c after b, d alone.
    let plan = plan(vec![
        instance("a", &[]),
        instance("b", &[0]),
        instance("c", &[1]),
        instance("d", &[]),
    ]);
    let options = options(1, true);
    let mut run = Run::new(&plan, &options);
    let started = drive(
        &mut run,
        |i, _| if i == 0 { Outcome::Exited(1) } else { Outcome::Exited(0) },
    );
    assert_eq!(started, [(0, 1), (3, 1)]);
    let failed = Some(Reason::Failed("a".to_owned()));
    assert_eq!(
        statuses(run),
        [
            (InstanceStatus::Failed, Some(Reason::ExitCode)),
            (InstanceStatus::Skipped, failed.clone()),
            (InstanceStatus::Skipped, failed),
            (InstanceStatus::Completed, None),
        ]
    );
}

#[test]
fn failed_attempts_are_retried_while_attempts_remain() {
    let mut flaky = instance("flaky", &[]);
    flaky.retry = 2;
    let plan = plan(vec![flaky, instance("next", &[0])]);
    let options = options(1, false);
    let mut run = Run::new(&plan, &options);
    let started = drive(&mut run, |i, attempt| {
        if i == 0 && attempt < 3 {
            Outcome::Exited(1)
        } else {
            Outcome::Exited(0)
        }
    });
    assert_eq!(started, [(0, 1), (0, 2), (0, 3), (1, 1)]);
    let summary = run.summary(Duration::ZERO);
    assert_eq!(summary.instances[0].attempts, 3);
    assert!(summary.succeeded());
}

#[test]
fn a_retry_waits_for_its_backoff_and_keeps_its_slot() {
    let mut slow = instance("slow", &[]);
    slow.retry = 1;
    slow.backoff_ms = 60_000;
    let plan = plan(vec![slow, instance("other", &[])]);
    let options = options(1, false);
    let mut run = Run::new(&plan, &options);
    let now = Instant::now();
    assert_eq!(step(&mut run, now), [(0, 1)]);
    end(&mut run, 0, 1, Outcome::TimedOut);
    assert_eq!(step(&mut run, now), [], "the slot stays with the retry");
    let due = run.next_due().expect("a retry is due");
    assert!(due > now + Duration::from_secs(59));
    assert_eq!(step(&mut run, due), [(0, 2)]);
    end(&mut run, 0, 2, Outcome::TimedOut);
    assert_eq!(step(&mut run, due), []);
    assert_eq!(
        statuses(run)[0],
        (InstanceStatus::Failed, Some(Reason::Timeout)),
        "the last attempt fails the instance"
    );
}

#[test]
fn an_interruption_is_never_retried_and_skips_the_rest() {
    let mut retried = instance("a", &[]);
    retried.retry = 3;
    let plan = plan(vec![retried, instance("b", &[])]);
    let options = options(1, false);
    let mut run = Run::new(&plan, &options);
    let now = Instant::now();
    assert_eq!(step(&mut run, now), [(0, 1)]);
    run.interrupt();
    end(&mut run, 0, 1, Outcome::Interrupted);
    assert_eq!(step(&mut run, now), []);
    assert!(run.running.is_empty());
    assert_eq!(run.first_failed, None, "an interruption is not a failure of its own");
    assert_eq!(
        statuses(run),
        [
            (InstanceStatus::Failed, Some(Reason::Interrupted)),
            (InstanceStatus::Skipped, Some(Reason::Interrupted)),
        ]
    );
}

#[test]
fn signals_are_reported_as_the_shell_would() {
    assert_eq!(failure(&Outcome::Signalled(9)), Some((Some(137), Reason::ExitCode)));
    assert_eq!(failure(&Outcome::Exited(0)), None);
    assert_eq!(failure(&Outcome::TimedOut), Some((None, Reason::Timeout)));
}

/// A `finally` instance that runs `true` whatever the outcome.
fn finally(id: &str, after: &[usize]) -> PlannedInstance {
    PlannedInstance {
        on_failure: Some(Box::new(crate::engine::OnFailure {
            command: Some("true".to_owned()),
            enabled: true,
        })),
        ..instance(id, after)
    }
}

#[test]
fn finally_instances_start_once_every_other_has_ended() {
    // notify waits for nothing, yet starts last; cleanup waits for notify.
    let plan = plan(vec![
        instance("a", &[]),
        instance("b", &[0]),
        finally("notify", &[]),
        finally("cleanup", &[2]),
    ]);
    let two = options(2, false);
    let mut run = Run::new(&plan, &two);
    assert_eq!(step(&mut run, Instant::now()), [(0, 1)], "notify is held");
    assert_eq!(run.outcome(), None);
    end(&mut run, 0, 1, Outcome::Exited(0));
    assert_eq!(step(&mut run, Instant::now()), [(1, 1)]);
    end(&mut run, 1, 1, Outcome::Exited(0));
    assert_eq!(run.outcome(), Some("success"));
    assert_eq!(step(&mut run, Instant::now()), [(2, 1)]);
    end(&mut run, 2, 1, Outcome::Exited(0));
    assert_eq!(step(&mut run, Instant::now()), [(3, 1)]);
}

#[test]
fn finally_instances_run_after_a_failure_and_their_failure_is_not_the_runs() {
    use InstanceStatus::{Completed, Failed, Skipped};
    let plan = plan(vec![
        instance("a", &[]),
        instance("b", &[0]),
        finally("notify", &[]),
        finally("cleanup", &[2]),
    ]);
    let one = options(1, false);
    let mut run = Run::new(&plan, &one);
    let started = drive(&mut run, |instance, _| match instance {
        0 | 2 => Outcome::Exited(1),
        _ => Outcome::Exited(0),
    });
    assert_eq!(started, [(0, 1), (2, 1)], "b is skipped, notify still runs");
    assert_eq!(run.outcome(), Some("failure"));
    let summary = run.summary(Duration::ZERO);
    assert_eq!(summary.first_failed, Some(0), "a finally failure is not the first");
    let statuses: Vec<_> = summary.instances.iter().map(|i| i.status).collect();
    assert_eq!(statuses, [Failed, Skipped, Failed, Skipped]);

    // When only a `finally` instance fails, the run succeeded.
    let mut run = Run::new(&plan, &one);
    drive(&mut run, |instance, _| Outcome::Exited(i32::from(instance == 3)));
    let summary = run.summary(Duration::ZERO);
    assert!(summary.succeeded());
    assert_eq!(summary.first_failed, None);
    assert_eq!(summary.instances[3].status, Failed);
    assert_eq!(summary.instances[2].status, Completed);
}

#[test]
fn finally_instances_run_after_an_interruption_and_see_failure() {
    let plan = plan(vec![instance("a", &[]), instance("b", &[0]), finally("notify", &[])]);
    let one = options(1, false);
    let mut run = Run::new(&plan, &one);
    assert_eq!(step(&mut run, Instant::now()), [(0, 1)]);
    run.interrupt();
    assert!(step(&mut run, Instant::now()).is_empty(), "a still runs");
    end(&mut run, 0, 1, Outcome::Interrupted);
    assert_eq!(run.outcome(), Some("failure"));
    assert_eq!(step(&mut run, Instant::now()), [(2, 1)]);
    end(&mut run, 2, 1, Outcome::Exited(0));
    let statuses: Vec<_> = statuses(run).into_iter().map(|(status, _)| status).collect();
    assert_eq!(
        statuses,
        [
            InstanceStatus::Failed,
            InstanceStatus::Skipped,
            InstanceStatus::Completed
        ]
    );
}

#[test]
fn when_recording_fails_nothing_starts_any_more_not_even_finally_but_what_runs_ends() {
    let plan = plan(vec![
        instance("a", &[]),
        instance("b", &[]),
        instance("c", &[1]),
        finally("notify", &[]),
    ]);
    let two = options(2, false);
    let mut run = Run::new(&plan, &two);
    assert_eq!(step(&mut run, Instant::now()), [(0, 1), (1, 1)]);
    run.stop_recording();
    end(&mut run, 1, 1, Outcome::Exited(0));
    assert!(step(&mut run, Instant::now()).is_empty(), "c does not start");
    end(&mut run, 0, 1, Outcome::Exited(0));
    assert!(step(&mut run, Instant::now()).is_empty(), "notify does not start");
    assert!(run.running.is_empty());
    assert_eq!(
        statuses(run),
        [
            (InstanceStatus::Completed, None),
            (InstanceStatus::Completed, None),
            (InstanceStatus::Skipped, Some(Reason::Interrupted)),
            (InstanceStatus::Skipped, Some(Reason::Interrupted)),
        ]
    );
}

#[test]
fn a_finally_condition_is_decided_by_the_outcome() {
    // notify runs only on failure: skipped after a success.
    let only_on_failure = PlannedInstance {
        enabled: false,
        ..finally("notify", &[])
    };
    let plan = plan(vec![instance("a", &[]), only_on_failure]);
    let one = options(1, false);
    let mut run = Run::new(&plan, &one);
    assert_eq!(drive(&mut run, |_, _| Outcome::Exited(0)), [(0, 1)]);
    assert_eq!(statuses(run)[1], (InstanceStatus::Skipped, Some(Reason::Condition)));
    let mut run = Run::new(&plan, &one);
    assert_eq!(drive(&mut run, |_, _| Outcome::Exited(1)), [(0, 1), (1, 1)]);
}
