//! Lines and columns of one text: the one [`LineIndex`] that the terminal
//! rendering, `check --format json` and the language server all use, so
//! that a place has the same line number everywhere.
//!
//! A line ends at `\n`, at `\r\n` or at a lone `\r` (the three are counted
//! the same way, as the language server protocol says). Columns come in two
//! flavours: for people (1-based, in Unicode scalar values, as terminals
//! count) and for editors (0-based, in UTF-16 code units, as LSP counts by
//! default: `é` is one unit, `🚀` two). Offsets past the end of the text
//! are clamped and offsets inside a character are moved to its start, so no
//! input makes a caller slice a string on a non-boundary.

use super::span::floor_char_boundary;

/// Where each line of one text starts. Built once per text (one pass);
/// each lookup is a binary search over the line starts.
#[derive(Clone, Debug)]
pub struct LineIndex {
    /// Byte offset of the first character of each line.
    starts: Vec<u32>,
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
                    i += 1;
                    starts.push(to_u32(i + 1));
                }
                b'\n' | b'\r' => starts.push(to_u32(i + 1)),
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

    /// The 0-based line of byte `offset` (a line break belongs to the line
    /// it ends).
    #[must_use]
    pub fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start as usize <= offset) - 1
    }

    /// The bytes of 0-based line `line` (which must exist) without its line
    /// break.
    fn bounds(&self, text: &str, line: usize) -> (usize, usize) {
        let start = (self.starts[line] as usize).min(text.len());
        let next = self.starts.get(line + 1).map_or(text.len(), |&s| s as usize);
        let mut end = next.min(text.len());
        let bytes = text.as_bytes();
        if end > start && bytes[end - 1] == b'\n' {
            end -= 1;
        }
        if end > start && bytes[end - 1] == b'\r' {
            end -= 1;
        }
        (start, end)
    }

    /// The line and the part of it before `offset` (clamped to the text,
    /// rounded down to a character boundary, and an offset inside a line
    /// break taken as the end of the line).
    fn before<'t>(&self, text: &'t str, offset: usize) -> (usize, &'t str) {
        let offset = floor_char_boundary(text, offset);
        let line = self.line(offset);
        let (start, end) = self.bounds(text, line);
        (line, &text[start..offset.min(end)])
    }

    /// 1-based line and column of byte `offset`, the column counting
    /// Unicode scalar values: what people read in a terminal and in
    /// `check --format json`.
    #[must_use]
    pub fn line_column(&self, text: &str, offset: usize) -> (usize, usize) {
        let (line, before) = self.before(text, offset);
        (line + 1, before.chars().count() + 1)
    }

    /// 0-based line and UTF-16 column of byte `offset`: an LSP position.
    #[must_use]
    pub fn utf16(&self, text: &str, offset: usize) -> (u32, u32) {
        let (line, before) = self.before(text, offset);
        let column: usize = before.chars().map(char::len_utf16).sum();
        (to_u32(line), to_u32(column))
    }

    /// The byte offset of a 0-based line and UTF-16 column. A line past the
    /// end gives the end of the text; a column past the end of its line
    /// gives the end of the line; a column inside a surrogate pair gives
    /// the character's start.
    #[must_use]
    pub fn utf16_offset(&self, text: &str, line: u32, column: u32) -> usize {
        let line = line as usize;
        if line >= self.starts.len() {
            return text.len();
        }
        let (start, end) = self.bounds(text, line);
        let mut units = 0;
        for (index, c) in text[start..end].char_indices() {
            units += c.len_utf16();
            if units > column as usize {
                return start + index;
            }
        }
        end
    }
}

fn to_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_count_lines_from_one_and_columns_in_chars() {
        let text = "ab\nçd\n";
        let index = LineIndex::new(text);
        assert_eq!(index.line_column(text, 0), (1, 1));
        assert_eq!(index.line_column(text, 3), (2, 1));
        // `d` follows a two-byte `ç`: byte 5, column 2.
        assert_eq!(index.line_column(text, 5), (2, 2));
        assert_eq!(index.line_column(text, 100), (3, 1));
        // Inside a multi-byte char rounds down.
        assert_eq!(index.line_column(text, 4), (2, 1));
    }

    #[test]
    fn every_line_ending_counts_the_same() {
        for text in ["a\nbc\n\nd", "a\r\nbc\r\n\r\nd", "a\rbc\r\rd", "a\r\nbc\r\n\rd"] {
            let index = LineIndex::new(text);
            assert_eq!(index.lines(), 4, "{text:?}");
            let d = text.find('d').unwrap();
            assert_eq!(index.line_column(text, d), (4, 1), "{text:?}");
            assert_eq!(index.utf16(text, d), (3, 0), "{text:?}");
            let c = text.find('c').unwrap();
            assert_eq!(index.line_column(text, c), (2, 2), "{text:?}");
        }
    }

    #[test]
    fn editors_count_utf16_units() {
        // `é` is 2 bytes and 1 unit, `☕` 3 bytes and 1 unit, `🚀` 4 bytes
        // and 2 units.
        let text = "é☕🚀x\n🚀y";
        let index = LineIndex::new(text);
        let x = text.find('x').unwrap();
        assert_eq!(index.utf16(text, x), (0, 4));
        let y = text.find('y').unwrap();
        assert_eq!(index.utf16(text, y), (1, 2));
        assert_eq!(index.utf16_offset(text, 0, 4), x);
        assert_eq!(index.utf16_offset(text, 1, 2), y);
        // Inside the surrogate pair: the start of `🚀`.
        assert_eq!(index.utf16_offset(text, 0, 3), text.find('🚀').unwrap());
        assert_eq!(index.utf16(text, 1), (0, 0));
        for (offset, _) in text.char_indices() {
            let (line, column) = index.utf16(text, offset);
            assert_eq!(index.utf16_offset(text, line, column), offset, "at {offset}");
        }
    }

    #[test]
    fn line_breaks_and_the_end_clamp() {
        let text = "ab\r\ncd\rä\n";
        let index = LineIndex::new(text);
        assert_eq!(index.lines(), 4);
        assert_eq!(index.utf16(text, 2), (0, 2));
        // Between `\r` and `\n`: still the end of line 0.
        assert_eq!(index.utf16(text, 3), (0, 2));
        assert_eq!(index.line_column(text, 3), (1, 3));
        assert_eq!(index.utf16(text, 4), (1, 0));
        assert_eq!(index.utf16(text, 7), (2, 0));
        assert_eq!(index.utf16(text, text.len()), (3, 0));
        // A column past the end of a line stops before its line break.
        assert_eq!(index.utf16_offset(text, 0, 50), 2);
        assert_eq!(index.utf16_offset(text, 2, 50), 9);
        assert_eq!(index.utf16_offset(text, 9, 0), text.len());
        for offset in 0..=text.len() {
            let (line, column) = index.utf16(text, offset);
            let back = index.utf16_offset(text, line, column);
            assert!(back <= offset, "at {offset}");
        }
    }
}
