//! Byte offsets (the front end's spans) to LSP positions and back.
//!
//! LSP counts lines and, by default, columns in **UTF-16 code units**: `é`
//! is one unit, `☕` one, `🚀` two (a surrogate pair). Lines end at `\n`,
//! `\r\n` or a lone `\r`, as the protocol says. Positions past the end of a
//! line or of the file are clamped, and a position in the middle of a
//! character or of a `\r\n` is moved to its start, so no client input can
//! make the server slice a string on a non-boundary.

use lsp_types::{Position, Range};

use crate::syntax::Span;

/// Where each line of one text starts.
#[derive(Clone, Debug)]
pub struct LineIndex {
    /// Byte offset of the first character of each line.
    starts: Vec<usize>,
}

impl LineIndex {
    /// Indexes `text`.
    #[must_use]
    pub fn new(text: &str) -> Self {
        let bytes = text.as_bytes();
        let mut starts = vec![0];
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                    starts.push(i + 2);
                    i += 1;
                }
                b'\n' | b'\r' => starts.push(i + 1),
                _ => {}
            }
            i += 1;
        }
        Self { starts }
    }

    /// The number of lines (a text ending with a line break has an empty
    /// last line).
    #[must_use]
    pub fn lines(&self) -> usize {
        self.starts.len()
    }

    /// The bytes of line `line` without its line break.
    fn line_bounds(&self, text: &str, line: usize) -> (usize, usize) {
        let start = self.starts[line].min(text.len());
        let mut end = self.starts.get(line + 1).copied().unwrap_or(text.len()).min(text.len());
        let bytes = text.as_bytes();
        if end > start && bytes[end - 1] == b'\n' {
            end -= 1;
        }
        if end > start && bytes[end - 1] == b'\r' {
            end -= 1;
        }
        (start, end)
    }

    /// The LSP position of byte `offset` (clamped to the text and rounded
    /// down to a character boundary).
    #[must_use]
    pub fn position(&self, text: &str, offset: usize) -> Position {
        let offset = crate::syntax::floor_char_boundary(text, offset);
        let line = self.starts.partition_point(|&start| start <= offset) - 1;
        let (start, end) = self.line_bounds(text, line);
        // An offset inside the line break counts as the end of the line.
        let column: usize = text[start..offset.min(end)].chars().map(char::len_utf16).sum();
        Position::new(to_u32(line), to_u32(column))
    }

    /// The byte offset of an LSP position. A line past the end gives the end
    /// of the text; a column past the end of its line gives the end of the
    /// line; a column inside a surrogate pair gives the character's start.
    #[must_use]
    pub fn offset(&self, text: &str, position: Position) -> usize {
        let line = position.line as usize;
        if line >= self.starts.len() {
            return text.len();
        }
        let (start, end) = self.line_bounds(text, line);
        let mut units = 0;
        for (index, c) in text[start..end].char_indices() {
            let next = units + c.len_utf16();
            if next > position.character as usize {
                return start + index;
            }
            units = next;
        }
        end
    }

    /// The LSP range of a span.
    #[must_use]
    pub fn range(&self, text: &str, span: Span) -> Range {
        Range::new(self.position(text, span.start()), self.position(text, span.end()))
    }

    /// The span of an LSP range (start and end ordered).
    #[must_use]
    pub fn span(&self, text: &str, range: Range) -> Span {
        let start = self.offset(text, range.start);
        let end = self.offset(text, range.end);
        Span::new(start.min(end), start.max(end))
    }
}

fn to_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: u32, character: u32) -> Position {
        Position::new(line, character)
    }

    #[test]
    fn ascii() {
        let text = "ab\ncd";
        let index = LineIndex::new(text);
        assert_eq!(index.position(text, 0), pos(0, 0));
        assert_eq!(index.position(text, 2), pos(0, 2));
        assert_eq!(index.position(text, 3), pos(1, 0));
        assert_eq!(index.position(text, 5), pos(1, 2));
        assert_eq!(index.position(text, 99), pos(1, 2));
        for offset in 0..=text.len() {
            assert_eq!(index.offset(text, index.position(text, offset)), offset);
        }
    }

    #[test]
    fn non_ascii_counts_utf16_units() {
        // `é` is 2 bytes and 1 unit, `☕` 3 bytes and 1 unit, `🚀` 4 bytes
        // and 2 units.
        let text = "é☕🚀x\n🚀y";
        let index = LineIndex::new(text);
        let x = text.find('x').unwrap();
        assert_eq!(index.position(text, x), pos(0, 4));
        let y = text.find('y').unwrap();
        assert_eq!(index.position(text, y), pos(1, 2));
        assert_eq!(index.offset(text, pos(0, 4)), x);
        assert_eq!(index.offset(text, pos(1, 2)), y);
        // Inside the surrogate pair: the start of `🚀`.
        assert_eq!(index.offset(text, pos(0, 3)), text.find('🚀').unwrap());
        // Inside a multi-byte character: rounded down.
        assert_eq!(index.position(text, 1), pos(0, 0));
        for (offset, _) in text.char_indices() {
            assert_eq!(index.offset(text, index.position(text, offset)), offset, "at {offset}");
        }
    }

    #[test]
    fn crlf_and_lone_cr_end_lines() {
        let text = "ab\r\ncd\rä\n";
        let index = LineIndex::new(text);
        assert_eq!(index.lines(), 4);
        assert_eq!(index.position(text, 2), pos(0, 2));
        // Between `\r` and `\n`: still the end of line 0.
        assert_eq!(index.position(text, 3), pos(0, 2));
        assert_eq!(index.position(text, 4), pos(1, 0));
        assert_eq!(index.position(text, 7), pos(2, 0));
        assert_eq!(index.position(text, text.len()), pos(3, 0));
        // A column past the end of a line stops before its line break.
        assert_eq!(index.offset(text, pos(0, 50)), 2);
        assert_eq!(index.offset(text, pos(2, 50)), 9);
        assert_eq!(index.offset(text, pos(9, 0)), text.len());
    }

    #[test]
    fn ranges_round_trip() {
        let text = "phase café {\r\n  run \"☕ {{versoin}}\"\r\n}";
        let index = LineIndex::new(text);
        let start = text.find("versoin").unwrap();
        let span = Span::new(start, start + 7);
        let range = index.range(text, span);
        assert_eq!(range, Range::new(pos(1, 11), pos(1, 18)));
        assert_eq!(index.span(text, range), span);
    }
}
