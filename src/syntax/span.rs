//! Byte ranges into a pipeline file's source text.

use serde::Serialize;

/// A half-open byte range `start..end` into the source of one file.
///
/// Spans are the only way the front end refers to a place in the source:
/// diagnostics carry them, and renderers (terminal, JSON, language server)
/// turn them into lines and columns through one [`super::LineIndex`]. Offsets are kept
/// as `u32` (the tree holds hundreds of thousands of spans on large files);
/// an offset past 4 GiB saturates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// The span `start..end`.
    #[must_use]
    pub fn new(start: usize, end: usize) -> Self {
        let clamp = |offset: usize| u32::try_from(offset).unwrap_or(u32::MAX);
        Self {
            start: clamp(start),
            end: clamp(end),
        }
    }

    /// Offset of the first byte.
    #[must_use]
    pub const fn start(self) -> usize {
        self.start as usize
    }

    /// Offset one past the last byte.
    #[must_use]
    pub const fn end(self) -> usize {
        self.end as usize
    }

    /// Number of bytes covered.
    #[must_use]
    pub const fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    /// Whether the span covers no bytes (a position, such as end of file).
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.start == self.end
    }

    /// Whether `offset` lies inside the span (an end offset counts, so a
    /// cursor just after a name still points at it).
    #[must_use]
    pub const fn contains(self, offset: usize) -> bool {
        self.start() <= offset && offset <= self.end()
    }
}

/// The largest char boundary at or below `offset`, clamped to the source.
#[must_use]
pub(crate) fn floor_char_boundary(source: &str, offset: usize) -> usize {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The offset of the first byte at or after `from` that is neither
/// whitespace nor inside a `#` comment: where the next token begins (or the
/// end of `text`).
pub(crate) fn skip_trivia(text: &str, from: usize) -> usize {
    let bytes = text.as_bytes();
    let mut at = from;
    while at < bytes.len() {
        match bytes[at] {
            b' ' | b'\t' | b'\r' | b'\n' => at += 1,
            b'#' => at = text[at..].find('\n').map_or(bytes.len(), |n| at + n),
            _ => break,
        }
    }
    at
}
