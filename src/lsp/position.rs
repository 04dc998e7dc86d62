//! Byte offsets (the front end's spans) to LSP positions and back, through
//! the text's [`LineIndex`]: lines end at `\n`, `\r\n` or a lone `\r`, and
//! columns count UTF-16 code units, as the protocol says. Positions past
//! the end of a line or of the file are clamped, and a position in the
//! middle of a character or of a `\r\n` is moved to its start, so no client
//! input can make the server slice a string on a non-boundary.

use lsp_types::{Position, Range};

use crate::syntax::{LineIndex, Span};

/// The LSP position of byte `offset`.
pub(super) fn position(lines: &LineIndex, text: &str, offset: usize) -> Position {
    let (line, character) = lines.utf16(text, offset);
    Position::new(line, character)
}

/// The byte offset of an LSP position.
pub(super) fn offset(lines: &LineIndex, text: &str, position: Position) -> usize {
    lines.utf16_offset(text, position.line, position.character)
}

/// The LSP range of a span.
pub(super) fn range(lines: &LineIndex, text: &str, span: Span) -> Range {
    Range::new(position(lines, text, span.start()), position(lines, text, span.end()))
}

/// The span of an LSP range (start and end ordered).
pub(super) fn span(lines: &LineIndex, text: &str, range: Range) -> Span {
    let start = offset(lines, text, range.start);
    let end = offset(lines, text, range.end);
    Span::new(start.min(end), start.max(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_round_trip() {
        let text = "phase café {\r\n  run \"☕ {{versoin}}\"\r\n}";
        let lines = LineIndex::new(text);
        let start = text.find("versoin").unwrap();
        let versoin = Span::new(start, start + 7);
        let found = range(&lines, text, versoin);
        assert_eq!(found, Range::new(Position::new(1, 11), Position::new(1, 18)));
        assert_eq!(span(&lines, text, found), versoin);
    }
}
