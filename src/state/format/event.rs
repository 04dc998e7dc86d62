//! The event lines of a release log, written by hand: the same bytes as
//! [`line`](super::line) of [`LogLine::event`](super::LogLine::event), without
//! serde's and `ron`'s per-value dispatch. A run writes four such lines per
//! instance on the executor's path, and `ron` took about 9,000 instructions
//! for each; the unit tests hold every kind of event to `ron`'s bytes.

use super::super::clock::Timestamp;
use crate::engine::{Event, Reason};

/// Appends the lines of `events`, which all happened at `at`.
pub(crate) fn event_lines(events: &[Event], at: Timestamp, out: &mut String) {
    // One time for the batch, written as `ron` writes any string.
    let mut time = String::with_capacity(32);
    string(&mut time, &at.to_string());
    for event in events {
        event_line(event, at, &time, out);
    }
}

/// `event`'s line; `time` is `at` as `ron` writes it.
fn event_line(event: &Event, at: Timestamp, time: &str, out: &mut String) {
    let (name, instance) = match event {
        Event::Claimed { instance } => ("Claimed", instance),
        Event::Started { instance, .. } => ("Started", instance),
        Event::Spawned { instance, .. } => ("Spawned", instance),
        Event::AttemptFailed { instance, .. } => ("AttemptFailed", instance),
        Event::Completed { instance, .. } => ("Completed", instance),
        Event::Failed { instance, .. } => ("Failed", instance),
        Event::Skipped { instance, .. } => ("Skipped", instance),
        // Once per undo, resumed instance or `finally` instance of a failed
        // release, not on every run's path: written by `ron`.
        Event::CarriedOver { .. }
        | Event::FailureCommand { .. }
        | Event::UndoStarted { .. }
        | Event::UndoSpawned { .. }
        | Event::Undone { .. }
        | Event::UndoFailed { .. }
        | Event::UndoNotAttempted { .. } => {
            out.push_str(&super::line(&super::LogLine::event(event, at)));
            return;
        }
    };
    out.push_str(name);
    out.push_str("(at: ");
    out.push_str(time);
    field(out, ", instance: ", u64::try_from(*instance).unwrap_or(u64::MAX));
    match event {
        Event::Started { attempt, .. } => field(out, ", attempt: ", (*attempt).into()),
        Event::Spawned { attempt, process, .. } => {
            field(out, ", attempt: ", (*attempt).into());
            field(out, ", group: ", process.group.into());
            field(out, ", start: ", process.start);
        }
        Event::AttemptFailed {
            attempt,
            exit_code,
            reason,
            ..
        } => {
            field(out, ", attempt: ", (*attempt).into());
            exit(out, *exit_code);
            stored_reason(out, reason);
        }
        Event::Completed { exit_code, .. } => exit(out, *exit_code),
        Event::Failed { exit_code, reason, .. } => {
            exit(out, *exit_code);
            stored_reason(out, reason);
        }
        Event::Skipped { reason, .. } => stored_reason(out, reason),
        // A claim has no more fields; the others were written whole above.
        Event::Claimed { .. }
        | Event::CarriedOver { .. }
        | Event::FailureCommand { .. }
        | Event::UndoStarted { .. }
        | Event::UndoSpawned { .. }
        | Event::Undone { .. }
        | Event::UndoFailed { .. }
        | Event::UndoNotAttempted { .. } => {}
    }
    out.push_str(")\n");
}

fn exit(out: &mut String, code: Option<i32>) {
    match code {
        Some(code) => {
            out.push_str(", exit_code: Some(");
            if code < 0 {
                out.push('-');
            }
            decimal(out, code.unsigned_abs().into());
            out.push(')');
        }
        None => out.push_str(", exit_code: None"),
    }
}

/// `label` then `value`.
fn field(out: &mut String, label: &str, value: u64) {
    out.push_str(label);
    decimal(out, value);
}

/// `value` in decimal, as `{}` writes it, without the formatting machinery.
fn decimal(out: &mut String, value: u64) {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    let mut rest = value;
    loop {
        at -= 1;
        digits[at] = b'0' + u8::try_from(rest % 10).unwrap_or(0);
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|&digit| char::from(digit)));
}

/// `, reason: …` as [`StoredReason`](super::StoredReason) spells it.
fn stored_reason(out: &mut String, reason: &Reason) {
    out.push_str(", reason: ");
    let (name, text) = match reason {
        Reason::Condition => ("Condition", None),
        Reason::Unchanged => ("Unchanged", None),
        Reason::ExitCode => ("ExitCode", None),
        Reason::Timeout => ("Timeout", None),
        Reason::Interrupted => ("Interrupted", None),
        Reason::Spawn(text) => ("Spawn", Some(text)),
        Reason::Failed(text) => ("Failed", Some(text)),
        Reason::Log(text) => ("Log", Some(text)),
        Reason::UndoFailed(text) => ("UndoFailed", Some(text)),
        Reason::CarriedOver(text) => ("CarriedOver", Some(text)),
    };
    out.push_str(name);
    if let Some(text) = text {
        out.push('(');
        string(out, text);
        out.push(')');
    }
}

/// A string as `ron` writes one: quoted, each character escaped as
/// [`char::escape_debug`] does.
fn string(out: &mut String, text: &str) {
    out.push('"');
    if text
        .bytes()
        .all(|b| b == b' ' || (b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b'\'')))
    {
        out.push_str(text);
    } else {
        out.extend(text.chars().flat_map(char::escape_debug));
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::super::{LogLine, line};
    use super::*;
    use crate::engine::Process;

    fn reasons() -> Vec<Reason> {
        let texts = [
            "build[api]",
            "",
            "say \"hi\" \\ it's\n\ttab\r",
            "héllo → 世界 e\u{301} \u{200b}\u{7f}\u{1b}[0m",
            "r#\"raw\"#",
        ];
        let mut reasons = vec![
            Reason::Condition,
            Reason::Unchanged,
            Reason::ExitCode,
            Reason::Timeout,
            Reason::Interrupted,
        ];
        for text in texts {
            reasons.push(Reason::Spawn(text.to_owned()));
            reasons.push(Reason::Failed(text.to_owned()));
            reasons.push(Reason::Log(text.to_owned()));
            reasons.push(Reason::UndoFailed(text.to_owned()));
            reasons.push(Reason::CarriedOver(text.to_owned()));
        }
        reasons
    }

    fn events() -> Vec<Event> {
        let mut events = Vec::new();
        for instance in [0, 7, usize::MAX] {
            for attempt in [0, 1, u32::MAX] {
                events.push(Event::Started { instance, attempt });
                events.push(Event::Spawned {
                    instance,
                    attempt,
                    process: Process {
                        group: attempt,
                        start: u64::MAX - u64::from(attempt),
                    },
                });
            }
            events.push(Event::Claimed { instance });
            for exit_code in [None, Some(0), Some(-1), Some(i32::MIN), Some(i32::MAX)] {
                events.push(Event::Completed { instance, exit_code });
                for reason in reasons() {
                    events.push(Event::AttemptFailed {
                        instance,
                        attempt: 2,
                        exit_code,
                        reason: reason.clone(),
                    });
                    events.push(Event::Failed {
                        instance,
                        exit_code,
                        reason: reason.clone(),
                    });
                }
            }
            for reason in reasons() {
                events.push(Event::Skipped {
                    instance,
                    reason: reason.clone(),
                });
                events.push(Event::UndoNotAttempted {
                    instance,
                    reason: reason.clone(),
                });
                events.push(Event::UndoFailed {
                    instance,
                    exit_code: Some(3),
                    reason,
                });
            }
            events.push(Event::UndoStarted { instance });
            events.push(Event::UndoSpawned {
                instance,
                process: Process { group: 7, start: 9 },
            });
            events.push(Event::Undone {
                instance,
                exit_code: Some(0),
            });
            events.push(Event::CarriedOver {
                instance,
                from: "rel-20261125-170229123".to_owned(),
            });
            for command in ["echo release failure", "", "say \"hi\"\n\tto 世界"] {
                events.push(Event::FailureCommand {
                    instance,
                    command: command.to_owned(),
                });
            }
        }
        events
    }

    #[test]
    fn every_event_line_is_rons() {
        for at in [
            Timestamp::from_millis(0),
            Timestamp::from_millis(1_795_000_000_123),
            Timestamp::parse("2026-11-25T17:02:29.999Z").unwrap(),
        ] {
            for event in events() {
                let mut ours = String::new();
                event_lines(std::slice::from_ref(&event), at, &mut ours);
                assert_eq!(ours, line(&LogLine::event(&event, at)), "{event:?}");
            }
        }
    }

    #[test]
    fn a_batch_is_its_lines_in_order() {
        let at = Timestamp::from_millis(1_795_000_000_000);
        let events = events();
        let mut ours = String::new();
        event_lines(&events, at, &mut ours);
        let theirs: String = events.iter().map(|e| line(&LogLine::event(e, at))).collect();
        assert_eq!(ours, theirs);
    }
}
