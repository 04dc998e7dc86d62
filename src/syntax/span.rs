//! Byte ranges into a pipeline file's source text.

use serde::Serialize;

/// A half-open byte range `start..end` into the source of one file.
///
/// Spans are the only way the front end refers to a place in the source:
/// diagnostics carry them, and renderers (terminal, JSON, language server)
/// turn them into lines and columns of their own flavour. Offsets are kept
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

/// 1-based line and column of a byte offset; the column counts Unicode
/// scalar values, as people and most terminals do.
#[must_use]
pub fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(source, offset);
    let before = &source[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = source[line_start..offset].chars().count() + 1;
    (line, column)
}

/// Line starts of one source, to turn many offsets into lines and columns
/// without rescanning the text for each.
#[derive(Clone, Debug)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// Indexes `source`.
    #[must_use]
    pub fn new(source: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { starts }
    }

    /// As [`line_column`], in time logarithmic in the number of lines.
    #[must_use]
    pub fn line_column(&self, source: &str, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(source, offset);
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self.starts[line - 1];
        (line, source[start..offset].chars().count() + 1)
    }
}

/// The largest char boundary at or below `offset`, clamped to the source.
#[must_use]
pub fn floor_char_boundary(source: &str, offset: usize) -> usize {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_chars() {
        let src = "ab\nçd\n";
        assert_eq!(line_column(src, 0), (1, 1));
        assert_eq!(line_column(src, 3), (2, 1));
        // `d` follows a two-byte `ç`: byte 5, column 2.
        assert_eq!(line_column(src, 5), (2, 2));
        assert_eq!(line_column(src, 100), (3, 1));
        // Inside a multi-byte char rounds down.
        assert_eq!(line_column(src, 4), (2, 1));
        let index = LineIndex::new(src);
        for offset in 0..=src.len() + 2 {
            assert_eq!(index.line_column(src, offset), line_column(src, offset), "at {offset}");
        }
    }
}
