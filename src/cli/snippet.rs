//! The text a diagnostic's snippet is drawn from (`spec/diagnostics.md`,
//! "Rendering").
//!
//! [`Shown`] is a file's text as a terminal may see it: control characters
//! escaped (`\x1b`) and each lone `\r` taken for the line break it is, with
//! the map between its offsets and the file's. [`View`] is what miette reads
//! for one diagnostic: all of that text, or, when a line near the
//! diagnostic is too long to show (miette pads with a `{:width$}` argument,
//! which Rust limits to 65,535, and a line of a megabyte helps nobody), a
//! window of the primary label's line.

use std::borrow::Cow;

use super::output::{is_escaped, push_escaped};

/// A line longer than this many characters near a diagnostic makes it
/// shown through a window.
pub(super) const LONG_LINE: usize = 200;
/// Characters of the line shown before the primary label's start.
const BEFORE: usize = 60;
/// Characters of the primary label shown at most.
const LABEL: usize = 100;
/// Characters of the line shown after the (shown part of the) label.
const AFTER: usize = 40;
/// Stands for the cut part of a line.
const CUT: &str = "…";

/// One character of the file shown as an escape.
#[derive(Clone, Copy, Debug)]
struct Edit {
    file: usize,
    file_end: usize,
    shown: usize,
    shown_end: usize,
}

/// A file's text with control characters escaped, and the offset map.
pub(super) struct Shown<'a> {
    pub text: Cow<'a, str>,
    edits: Vec<Edit>,
}

impl<'a> Shown<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        let bytes = text.as_bytes();
        let lone_cr = |i: usize| bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n');
        if !text.chars().any(|c| is_escaped(c) && c != '\r') && !(0..bytes.len()).any(lone_cr) {
            return Self {
                text: Cow::Borrowed(text),
                edits: Vec::new(),
            };
        }
        let mut shown = String::with_capacity(text.len() + 16);
        let mut edits = Vec::new();
        for (i, c) in text.char_indices() {
            if c == '\r' {
                // One byte for one: a CRLF stays, a lone CR is a line break.
                shown.push(if lone_cr(i) { '\n' } else { '\r' });
            } else if is_escaped(c) {
                let start = shown.len();
                push_escaped(&mut shown, c);
                edits.push(Edit {
                    file: i,
                    file_end: i + c.len_utf8(),
                    shown: start,
                    shown_end: shown.len(),
                });
            } else {
                shown.push(c);
            }
        }
        Self {
            text: Cow::Owned(shown),
            edits,
        }
    }

    /// Where file offset `offset` is in the shown text (an offset inside an
    /// escaped character is at the start of its escape).
    pub(super) fn to_shown(&self, offset: usize) -> usize {
        let before = self.edits.partition_point(|e| e.file < offset);
        match before.checked_sub(1).map(|i| self.edits[i]) {
            None => offset,
            Some(edit) if offset < edit.file_end => edit.shown,
            Some(edit) => offset - edit.file_end + edit.shown_end,
        }
    }

    /// Where shown offset `offset` is in the file (an offset inside an
    /// escape is at the escaped character).
    pub(super) fn to_file(&self, offset: usize) -> usize {
        let before = self.edits.partition_point(|e| e.shown < offset);
        match before.checked_sub(1).map(|i| self.edits[i]) {
            None => offset,
            Some(edit) if offset < edit.shown_end => edit.file,
            Some(edit) => offset - edit.shown_end + edit.file_end,
        }
    }
}

/// What miette reads for one diagnostic: the shown text from `start` to
/// `end`, after `prefix` bytes of [`CUT`] (and before one, if cut).
pub(super) struct View<'s> {
    pub text: Cow<'s, str>,
    start: usize,
    end: usize,
    prefix: usize,
}

impl<'s> View<'s> {
    /// All of the shown text.
    pub(super) fn whole(shown: &'s str) -> Self {
        Self {
            text: Cow::Borrowed(shown),
            start: 0,
            end: shown.len(),
            prefix: 0,
        }
    }

    /// The whole text, or a window of the line of shown span `start..end`
    /// if a line from the one before `start` to the one after `end` is
    /// longer than [`LONG_LINE`].
    pub(super) fn around(shown: &'s str, start: usize, end: usize) -> Self {
        if !long_line_near(shown, start, end) {
            return Self::whole(shown);
        }
        let (line_start, line_end) = line_bounds(shown, start);
        // `start` may be on the `\n` of a CRLF, past the line's end.
        let line_end = line_end.max(start);
        let window_start = back(shown, start, line_start, BEFORE);
        let label_end = forward(shown, start, end.clamp(start, line_end), LABEL);
        let window_end = forward(shown, label_end, line_end, AFTER);
        let mut text = String::with_capacity(window_end - window_start + 2 * CUT.len());
        let prefix = if window_start > line_start { CUT } else { "" };
        text.push_str(prefix);
        text.push_str(&shown[window_start..window_end]);
        if window_end < line_end {
            text.push_str(CUT);
        }
        Self {
            text: Cow::Owned(text),
            start: window_start,
            end: window_end,
            prefix: prefix.len(),
        }
    }

    /// Whether this is a window of one line.
    pub(super) fn is_window(&self) -> bool {
        matches!(self.text, Cow::Owned(_))
    }

    /// Whether shown offset `offset` is in the view.
    pub(super) fn contains(&self, offset: usize) -> bool {
        (self.start..=self.end).contains(&offset)
    }

    /// Where shown offset `offset` is in the view (clamped into it).
    pub(super) fn to_view(&self, offset: usize) -> usize {
        offset.clamp(self.start, self.end) - self.start + self.prefix
    }

    /// Where view offset `offset` is in the shown text.
    pub(super) fn to_shown(&self, offset: usize) -> usize {
        (offset.saturating_sub(self.prefix) + self.start).min(self.end)
    }
}

/// The start of the line `offset` is on, and its end (before `\r\n` or
/// `\n`).
fn line_bounds(text: &str, offset: usize) -> (usize, usize) {
    let bytes = text.as_bytes();
    let offset = offset.min(bytes.len());
    let start = bytes[..offset].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut end = bytes[offset..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |i| offset + i);
    if end > start && bytes[end - 1] == b'\r' {
        end -= 1;
    }
    (start, end)
}

/// Whether a line from the one before `start`'s to the one after `end`'s
/// has more than [`LONG_LINE`] characters.
fn long_line_near(text: &str, start: usize, end: usize) -> bool {
    let bytes = text.as_bytes();
    let (first, _) = line_bounds(text, start);
    let first = if first > 0 {
        line_bounds(text, first - 1).0
    } else {
        first
    };
    let (_, last) = line_bounds(text, end.max(start));
    let last = if last < bytes.len() {
        line_bounds(text, (last + 1).min(bytes.len())).1
    } else {
        last
    };
    text[first..last.max(first)]
        .split('\n')
        .any(|line| line.len() > LONG_LINE && line.chars().nth(LONG_LINE).is_some())
}

/// The offset up to `count` characters before `from`, not before `min`.
fn back(text: &str, from: usize, min: usize, count: usize) -> usize {
    text[min..from]
        .char_indices()
        .rev()
        .nth(count.saturating_sub(1))
        .map_or(min, |(i, _)| min + i)
}

/// The offset up to `count` characters after `from`, not after `max`.
fn forward(text: &str, from: usize, max: usize, count: usize) -> usize {
    text[from..max].char_indices().nth(count).map_or(max, |(i, _)| from + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_both_ways_around_escapes() {
        let shown = Shown::new("a\u{1b}b\u{202e}c\rd");
        assert_eq!(shown.text, "a\\x1bb\\u{202e}c\nd");
        assert_eq!(shown.to_shown(1), 1);
        assert_eq!(shown.to_shown(2), 5);
        assert_eq!(shown.to_shown(3), 6);
        assert_eq!(shown.to_shown(4), 6);
        assert_eq!(shown.to_shown(6), 14);
        for (file, shown_at) in [(0, 0), (1, 1), (2, 5), (3, 6), (6, 14), (8, 16)] {
            assert_eq!(shown.to_file(shown_at), file);
        }
        assert_eq!(shown.to_file(3), 1);
        assert!(matches!(Shown::new("plain\r\ntext\t").text, Cow::Borrowed(_)));
    }

    #[test]
    fn any_span_of_any_text_gets_a_view() {
        let long = "é\u{1b}x".repeat(90);
        let text = format!("a\r\n{long}\r\n\r\n{long}\n\nb{long}");
        let shown = Shown::new(&text);
        let text = shown.text.as_ref();
        let boundaries: Vec<usize> = (0..=text.len()).filter(|&i| text.is_char_boundary(i)).collect();
        for &start in &boundaries {
            for end in [start, start + 1, start + 7, text.len()] {
                let Some(&end) = boundaries.iter().find(|&&b| b >= end) else {
                    continue;
                };
                let view = View::around(text, start, end);
                assert!(view.text.len() <= text.len() + 2 * CUT.len());
                assert!(view.text.is_char_boundary(view.to_view(start)));
                assert!(view.to_view(end) <= view.text.len());
            }
        }
    }

    #[test]
    fn a_long_line_is_shown_through_a_window() {
        let text = format!("pipeline p\nvar x = \"{}\" oops\n", "a".repeat(70_000));
        let start = text.find("oops").unwrap();
        let view = View::around(&text, start, start + 4);
        assert!(view.is_window());
        assert_eq!(view.text, format!("…{}\" oops", "a".repeat(58)));
        assert_eq!(view.to_view(start), CUT.len() + 60);
        assert_eq!(view.to_shown(view.to_view(start)), start);
        let short = "pipeline p\nvar x = \"a\" oops\n";
        assert!(!View::around(short, 21, 25).is_window());
    }
}
