//! Syntax errors about one token, which pest reports as a rule that failed
//! somewhere before it: a string that never closes, and a name with a
//! character a name cannot have (`service café`). Each gets a diagnostic
//! that says what is wrong with the token itself.

use super::ast::DeclKind;
use super::{Code, Diagnostic, Span};

/// pest reports a string that never closes at its opening quote, as "expected
/// a string"; say what is really wrong instead.
pub(super) fn unterminated_string(source: &str, offset: usize) -> Option<Diagnostic> {
    // `"""abc` fails at its third quote, after `""` parsed as an empty string.
    let offset = if offset >= 2 && source.get(offset - 2..=offset) == Some("\"\"\"") {
        offset - 2
    } else {
        offset
    };
    let rest = source.get(offset..)?;
    if let Some(body) = rest.strip_prefix("\"\"\"") {
        return (!body.contains("\"\"\"")).then(|| {
            Diagnostic::error(Code::Syntax, "unterminated multi-line string")
                .label(Span::new(offset, offset + 3), "this `\"\"\"` is never closed")
                .help("end the string with `\"\"\"`")
        });
    }
    let body = rest.strip_prefix('"')?;
    let line = body.split('\n').next().unwrap_or_default();
    let mut escaped = false;
    for c in line.chars() {
        match c {
            '"' if !escaped => return None,
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
    }
    Some(
        Diagnostic::error(Code::Syntax, "unterminated string")
            .label(
                Span::new(offset, offset + 1),
                "this string is not closed before the end of the line",
            )
            .help("close it with `\"`, or use `\"\"\"` for text over several lines"),
    )
}

/// A declaration keyword at `offset` followed by a name that is not one
/// (`service café {}`, `phase 2fast`): pest fails the whole declaration at
/// its keyword, so point at the name and say what a name may contain.
pub(super) fn invalid_name(source: &str, offset: usize) -> Option<Diagnostic> {
    let rest = source.get(offset..)?;
    let keyword = DeclKind::KEYWORDS
        .iter()
        .map(|(keyword, _)| *keyword)
        .find(|keyword| rest.starts_with(keyword))?;
    let after = &rest[keyword.len()..];
    let name = after.trim_start_matches([' ', '\t']);
    if name.len() == after.len() {
        return None;
    }
    let len = name
        .find(|c: char| c.is_whitespace() || matches!(c, '{' | '}' | '=' | '"' | '#' | ','))
        .unwrap_or(name.len());
    let word = &name[..len];
    if word.is_empty() || super::is_ident(word) {
        return None;
    }
    let start = offset + (rest.len() - name.len());
    Some(
        Diagnostic::error(Code::Syntax, format!("`{word}` is not a valid {keyword} name"))
            .label(Span::new(start, start + len), "not a valid name")
            .help("a name starts with an ASCII letter or `_`, then ASCII letters, digits, `_` and `-`"),
    )
}
