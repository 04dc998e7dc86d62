//! The file formats: lines, the format line, torn tails, corruption, the undo lines.

use super::*;
use crate::engine::Reason;

fn lines(text: &str) -> Result<Lines<IndexLine>, StateError> {
    parse(Path::new("index.ron"), text.as_bytes())
}

#[test]
fn format_line_and_torn_tail() {
    let finished = IndexLine::Finished {
        id: "rel-20261125-170229123".parse().unwrap(),
        at: Timestamp::parse("2026-11-25T17:02:30Z").unwrap(),
        status: ReleaseStatus::Completed,
        live: None,
    };
    let text = format!("{}{}", head_line(), line(&finished));
    assert_eq!(
        text,
        "Format(version: 6)\nFinished(id: \"rel-20261125-170229123\", at: \"2026-11-25T17:02:30.000Z\", status: completed, live: None)\n"
    );
    let read = lines(&text).unwrap();
    assert_eq!(read.lines, [(2, finished)]);
    assert_eq!(read.torn, None);
    let read = lines(&format!("{text}Finished(id: \"rel-2")).unwrap();
    assert_eq!((read.lines.len(), read.torn), (1, Some(text.len() as u64)));
}

#[test]
fn corruption_is_named() {
    let error = lines("Format(version: 1)\nnonsense\nFinished\n").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("corrupt state file `index.ron` at line 2: "),
        "{error}"
    );
    let error = lines("").unwrap_err();
    assert!(error.to_string().contains("at line 1: no format line"), "{error}");
    let error = lines("Format(version: 7)\nanything\n").unwrap_err();
    assert!(matches!(error, StateError::UnsupportedFormat { version: 7, .. }));
}

#[test]
fn undo_lines_round_trip_and_older_versions_read() {
    let at = Timestamp::parse("2026-11-25T17:02:30Z").unwrap();
    let events = [
        Event::UndoStarted { instance: 1 },
        Event::UndoSpawned {
            instance: 1,
            process: Process { group: 42, start: 7 },
        },
        Event::Undone {
            instance: 1,
            exit_code: Some(0),
        },
        Event::UndoFailed {
            instance: 2,
            exit_code: None,
            reason: Reason::Timeout,
        },
        Event::UndoNotAttempted {
            instance: 0,
            reason: Reason::UndoFailed("b[api]".into()),
        },
    ];
    for event in events {
        let text = line(&LogLine::event(&event, at));
        let read: LogLine = parse_line(Path::new("log.ron"), 3, text.trim_end().as_bytes()).unwrap();
        assert_eq!(read.to_event(), Some((event, at)), "{text}");
    }
    assert_eq!(
        line(&LogLine::event(&events_not_attempted(), at)),
        "UndoNotAttempted(at: \"2026-11-25T17:02:30.000Z\", instance: 0, reason: UndoFailed(\"b[api]\"))\n"
    );
    for version in 1..=5 {
        let head = format!("Format(version: {version})");
        assert_eq!(check_head(Path::new("log.ron"), head.as_bytes()).unwrap(), version);
    }
}

fn events_not_attempted() -> Event {
    Event::UndoNotAttempted {
        instance: 0,
        reason: Reason::UndoFailed("b[api]".into()),
    }
}
