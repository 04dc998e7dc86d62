//! Recovery after a syntax error: where the broken declaration began, what
//! it was (keyword and name, when they were written before the error), and
//! where parsing resumes.
//!
//! Parsing resumes at the first line, after the line where the error is,
//! that looks like the start of a declaration: optional indentation, a
//! declaration keyword (`pipeline`, `var`, `env`, `service`, `phase`,
//! `workflow`), spaces or tabs, then the first character of a name. Requiring
//! the name keeps a value such as `phase = "x"` inside an `env` block from
//! passing for a declaration. `secret`, which may also be written inside an
//! `env` block, starts a declaration only at the start of a line. Lines before the error's line are never
//! candidates: pest got that far inside the broken declaration, so they
//! belong to it (they may be inside one of its strings). A missing `}` is
//! the exception that proves the rule: the error is then *at* the next
//! declaration's keyword, and that line is where parsing resumes.

use super::ast::{Broken, DeclKind, Ident};
use super::span::skip_trivia;
use super::{Span, suggest};

/// Where the declaration that failed to parse begins: the first byte at or
/// after `base` that is neither whitespace nor inside a comment.
pub(super) fn declaration_start(source: &str, base: usize) -> usize {
    skip_trivia(source, base)
}

/// Where parsing resumes after a declaration that begins at `start` and
/// fails at `error`: the start of the next declaration line (see the module
/// doc), or `None` when there is none before the end of the file.
pub(super) fn resume_at(source: &str, start: usize, error: usize) -> Option<usize> {
    let error = error.clamp(start, source.len());
    let mut line = source[..error].rfind('\n').map_or(0, |i| i + 1);
    loop {
        let indent = source[line..].len() - source[line..].trim_start_matches([' ', '\t']).len();
        let at = line + indent;
        // `secret` also starts a line inside an env block: only one that is
        // not indented is taken for a declaration.
        let nested_secret = indent > 0 && source[at..].starts_with("secret");
        if at > start && !nested_secret && declaration_line(&source[at..]) {
            return Some(at);
        }
        line += source[line..].find('\n')? + 1;
    }
}

/// Whether `text` starts with a declaration keyword, blanks and a name.
fn declaration_line(text: &str) -> bool {
    DeclKind::KEYWORDS.iter().any(|(keyword, _)| {
        text.strip_prefix(keyword).is_some_and(|rest| {
            let name = rest.trim_start_matches([' ', '\t']);
            name.len() < rest.len() && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        })
    })
}

/// What can be told of the declaration from `start` to `end` that fails at
/// `error`: its keyword (or the keyword its first word is a near miss of)
/// and its name, if the name ends before the error.
pub(super) fn broken(source: &str, start: usize, error: usize, end: usize) -> Broken<'_> {
    let word = |from: usize| {
        let rest = &source[from..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(rest.len());
        &rest[..len]
    };
    let first = word(start);
    let kind = DeclKind::from_keyword(first).or_else(|| {
        let keywords = DeclKind::KEYWORDS.iter().map(|(keyword, _)| *keyword);
        suggest(first, keywords).and_then(DeclKind::from_keyword)
    });
    let after = start + first.len();
    let name_start = after + (source[after..].len() - source[after..].trim_start_matches([' ', '\t']).len());
    let name = word(name_start);
    let name = (kind.is_some()
        && name_start > after
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name_start + name.len() <= error)
        .then(|| Ident {
            name,
            span: Span::new(name_start, name_start + name.len()),
        });
    Broken {
        kind,
        name,
        span: Span::new(start, end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumes_at_the_next_declaration_line() {
        let source = "phase a {\n  run 'x'\n}\n  phase b {\n}\n";
        let error = source.find('\'').unwrap();
        assert_eq!(resume_at(source, 0, error), source.find("phase b"));
    }

    #[test]
    fn resumes_at_the_keyword_where_a_brace_is_missing() {
        let source = "phase a {\n  run \"x\"\nphase b {\n}\n";
        let error = source.find("phase b").unwrap();
        assert_eq!(resume_at(source, 0, error), Some(error));
    }

    #[test]
    fn a_value_named_like_a_keyword_is_not_a_declaration() {
        let source = "env dev {\n  x = 'y'\n  phase = \"z\"\n}\n";
        assert_eq!(resume_at(source, 0, source.find('\'').unwrap()), None);
    }

    #[test]
    fn an_indented_secret_is_part_of_its_env_block() {
        let source = "env dev {\n  secret x frm env \"X\"\n  secret y from env \"Y\"\n}\nsecret z from env \"Z\"\n";
        let error = source.find("frm").unwrap();
        assert_eq!(resume_at(source, 0, error), source.find("secret z"));
    }

    #[test]
    fn tells_the_keyword_and_the_name_written_before_the_error() {
        let source = "phase build {\n  run 'x'\n}\n";
        let error = source.find('\'').unwrap();
        let broken = broken(source, 0, error, source.len());
        assert_eq!(broken.kind, Some(DeclKind::Phase));
        assert_eq!(broken.name.map(|n| n.name), Some("build"));
        let broken = super::broken("pipelin demo x", 0, 13, 14);
        assert_eq!(broken.kind, Some(DeclKind::Pipeline));
        assert_eq!(broken.name.map(|n| n.name), Some("demo"));
        let broken = super::broken("phase 1x {", 0, 6, 10);
        assert_eq!(broken.name, None);
    }

    #[test]
    fn skips_comments_before_a_declaration() {
        assert_eq!(declaration_start("  # c\n\n phase", 0), 8);
        assert_eq!(declaration_start("# only", 0), 6);
    }
}
