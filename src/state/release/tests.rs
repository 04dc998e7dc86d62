//! Releases built from events: transitions, rejected events, statuses.

use super::*;

fn at(millis: u64) -> Timestamp {
    Timestamp::from_millis(1_795_626_149_000 + millis)
}

fn release(ids: &[&str]) -> Release {
    Release::new(test_header(0, "deploy", "v1"), ids.iter().map(|&id| id.to_owned()))
}

#[test]
fn events_become_transitions() {
    let mut release = release(&["build[api]", "push[api]", "finalize"]);
    assert_eq!(release.status(), ReleaseStatus::Pending);
    release
        .apply(
            &[Event::Started {
                instance: 0,
                attempt: 1,
            }],
            at(1),
        )
        .unwrap();
    assert_eq!(release.status(), ReleaseStatus::Running);
    let failed = Event::AttemptFailed {
        instance: 0,
        attempt: 1,
        exit_code: Some(2),
        reason: Reason::ExitCode,
    };
    release.apply(&[failed], at(2)).unwrap();
    assert_eq!(release.instances()[0].status(), PhaseStatus::Running);
    release
        .apply(
            &[Event::Started {
                instance: 0,
                attempt: 2,
            }],
            at(3),
        )
        .unwrap();
    release
        .apply(
            &[
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
            at(4),
        )
        .unwrap();
    release
        .apply(
            &[Event::Completed {
                instance: 2,
                exit_code: None,
            }],
            at(4),
        )
        .unwrap();
    let build = &release.instances()[0];
    assert_eq!(build.attempts().len(), 2);
    assert_eq!(build.attempts()[0].exit_code, Some(2));
    assert_eq!(build.exit_code(), Some(0));
    let steps: Vec<_> = build.transitions().iter().map(|t| (t.from, t.to, t.attempt)).collect();
    assert_eq!(
        steps,
        [
            (PhaseStatus::Pending, PhaseStatus::Running, 1),
            (PhaseStatus::Running, PhaseStatus::Completed, 2)
        ]
    );
    assert_eq!(release.instances()[1].transitions()[0].attempt, 0);
    assert_eq!(release.status(), ReleaseStatus::Running);
    release.finish(at(5)).unwrap();
    assert_eq!(release.status(), ReleaseStatus::Completed);
    assert!(matches!(release.apply(&[], at(6)), Err(EventError::Finished { .. })));
}

#[test]
fn illegal_events_are_rejected_whole() {
    let mut release = release(&["build[api]", "rollout[api]"]);
    let before = release.clone();
    let error = release
        .apply(
            &[
                Event::Started {
                    instance: 0,
                    attempt: 1,
                },
                Event::Failed {
                    instance: 1,
                    exit_code: Some(1),
                    reason: Reason::ExitCode,
                },
            ],
            at(1),
        )
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "illegal transition `pending` → `failed` for `rollout[api]`"
    );
    assert_eq!(release, before, "nothing applied");
    let error = release
        .apply(
            &[Event::Skipped {
                instance: 7,
                reason: Reason::Condition,
            }],
            at(1),
        )
        .unwrap_err();
    assert!(matches!(error, EventError::UnknownInstance { position: 7, count: 2 }));
    release
        .apply(
            &[Event::Started {
                instance: 0,
                attempt: 1,
            }],
            at(1),
        )
        .unwrap();
    let error = release
        .apply(
            &[Event::Started {
                instance: 0,
                attempt: 2,
            }],
            at(2),
        )
        .unwrap_err();
    assert!(matches!(error, EventError::Attempt { .. }), "{error}");
    let error = release
        .apply(
            &[Event::Started {
                instance: 0,
                attempt: 1,
            }],
            at(2),
        )
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "illegal transition `running` → `running` for `build[api]`"
    );
    let error = release.finish(at(3)).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("release {} cannot finish: `build[api]` is still `running`", release.id)
    );
}

#[test]
fn failure_and_unfinished_statuses() {
    let mut release = release(&["a", "b"]);
    release
        .apply(
            &[Event::Started {
                instance: 0,
                attempt: 1,
            }],
            at(1),
        )
        .unwrap();
    release
        .apply(
            &[Event::Failed {
                instance: 0,
                exit_code: Some(1),
                reason: Reason::ExitCode,
            }],
            at(2),
        )
        .unwrap();
    assert_eq!(release.status(), ReleaseStatus::Failed);
    release
        .apply(
            &[Event::Skipped {
                instance: 1,
                reason: Reason::Failed("a".into()),
            }],
            at(2),
        )
        .unwrap();
    release.finish(at(3)).unwrap();
    assert_eq!(release.status(), ReleaseStatus::Failed);

    let mut interrupted = self::release(&["a"]);
    interrupted
        .apply(
            &[Event::Skipped {
                instance: 0,
                reason: Reason::Interrupted,
            }],
            at(1),
        )
        .unwrap();
    interrupted.finish(at(1)).unwrap();
    assert_eq!(
        interrupted.status(),
        ReleaseStatus::Failed,
        "finished without completing"
    );
}

/// `a` and `b` completed, `c` failed; `a` and `b` have an `undo`.
fn failed_with_undos() -> Release {
    let mut release = release(&["a", "b", "c"]);
    release.set_undo(vec![Some("undo a".into()), Some("undo b".into()), None]);
    let mut events = Vec::new();
    for instance in 0..3 {
        events.push(Event::Started { instance, attempt: 1 });
    }
    events.push(Event::Completed {
        instance: 0,
        exit_code: Some(0),
    });
    events.push(Event::Completed {
        instance: 1,
        exit_code: Some(0),
    });
    events.push(Event::Failed {
        instance: 2,
        exit_code: Some(1),
        reason: Reason::ExitCode,
    });
    release.apply(&events, at(1)).unwrap();
    release
}

#[test]
fn undo_events_become_transitions() {
    let mut release = failed_with_undos();
    release.apply(&[Event::UndoStarted { instance: 1 }], at(2)).unwrap();
    assert_eq!(release.instances()[1].status(), PhaseStatus::Undoing);
    // Not finished while an undo runs.
    assert!(matches!(
        release.clone().finish(at(2)),
        Err(EventError::Unsettled { .. })
    ));
    let process = crate::engine::Process { group: 7, start: 9 };
    release
        .apply(&[Event::UndoSpawned { instance: 1, process }], at(2))
        .unwrap();
    assert_eq!(release.instances()[1].running_process(), Some(process));
    release
        .apply(
            &[
                Event::Undone {
                    instance: 1,
                    exit_code: Some(0),
                },
                Event::UndoStarted { instance: 0 },
                Event::UndoFailed {
                    instance: 0,
                    exit_code: Some(3),
                    reason: Reason::ExitCode,
                },
            ],
            at(3),
        )
        .unwrap();
    let (a, b) = (&release.instances()[0], &release.instances()[1]);
    assert_eq!((a.status(), b.status()), (PhaseStatus::UndoFailed, PhaseStatus::Undone));
    let steps: Vec<_> = b.transitions().iter().map(|t| (t.from, t.to)).collect();
    assert_eq!(
        steps,
        [
            (PhaseStatus::Pending, PhaseStatus::Running),
            (PhaseStatus::Running, PhaseStatus::Completed),
            (PhaseStatus::Completed, PhaseStatus::Undoing),
            (PhaseStatus::Undoing, PhaseStatus::Undone),
        ]
    );
    let undo = a.undo().unwrap();
    assert_eq!((undo.exit_code, undo.reason.clone()), (Some(3), Some(Reason::ExitCode)));
    assert_eq!(b.undo().unwrap().finished_at, Some(at(3)));
    release.finish(at(4)).unwrap();
    assert_eq!(release.status(), ReleaseStatus::Failed);
}

#[test]
fn undo_events_that_do_not_fit_are_rejected() {
    let mut release = failed_with_undos();
    // `c` failed: it cannot be undone, and has no undo anyway.
    let error = release.apply(&[Event::UndoStarted { instance: 2 }], at(2)).unwrap_err();
    assert!(matches!(error, EventError::Attempt { .. }), "{error}");
    let error = release
        .apply(
            &[Event::Undone {
                instance: 0,
                exit_code: Some(0),
            }],
            at(2),
        )
        .unwrap_err();
    assert_eq!(error.to_string(), "illegal transition `completed` → `undone` for `a`");
    let not_attempted = Event::UndoNotAttempted {
        instance: 0,
        reason: Reason::UndoFailed("b".into()),
    };
    release.apply(std::slice::from_ref(&not_attempted), at(2)).unwrap();
    assert!(release.instances()[0].undo().unwrap().not_attempted);
    assert_eq!(release.instances()[0].status(), PhaseStatus::Completed);
    // Once not attempted, it never starts, and is not marked twice.
    assert!(release.apply(&[not_attempted], at(3)).is_err());
    assert!(release.apply(&[Event::UndoStarted { instance: 0 }], at(3)).is_err());
}

#[test]
fn recovery_fails_a_running_undo_and_gives_up_the_others() {
    let mut release = failed_with_undos();
    release.apply(&[Event::UndoStarted { instance: 1 }], at(2)).unwrap();
    let (events, recovered) = crate::state::recovery::interrupt_events(&release, false);
    assert_eq!(
        events,
        [
            Event::UndoFailed {
                instance: 1,
                exit_code: None,
                reason: Reason::Interrupted,
            },
            Event::UndoNotAttempted {
                instance: 0,
                reason: Reason::Interrupted,
            },
        ]
    );
    assert_eq!(
        (recovered.undo_failed, recovered.undo_not_attempted),
        (vec!["b".to_owned()], vec!["a".to_owned()])
    );
    release.apply(&events, at(3)).unwrap();
    release.finish(at(3)).unwrap();
}

#[test]
fn a_failure_command_replaces_a_pending_finally_instances_command_only() {
    let mut release = release(&["deploy", "notify"]);
    release.set_commands(vec![Some("false".into()), Some("echo success".into())]);
    release.set_finally(&[1]);
    let failure = |instance| Event::FailureCommand {
        instance,
        command: "echo failure".into(),
    };
    // Not a `finally` instance.
    assert!(release.apply(&[failure(0)], at(1)).is_err());
    release.apply(&[failure(1)], at(1)).unwrap();
    assert_eq!(release.instances()[1].command(), Some("echo failure"));
    assert_eq!(release.instances()[1].status(), PhaseStatus::Pending);
    release
        .apply(
            &[Event::Started {
                instance: 1,
                attempt: 1,
            }],
            at(2),
        )
        .unwrap();
    // Once started, its command is what ran.
    assert!(release.apply(&[failure(1)], at(3)).is_err());
}
