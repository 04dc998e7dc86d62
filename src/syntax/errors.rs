//! Syntax errors in words: what pest expected, named as the rules are
//! named for users ([`Rule::describe`]), what was found instead, and help
//! for the common mistakes (a string never closed, a block never closed,
//! single quotes, `depends`).

use pest::error::{ErrorVariant, InputLocation};

use super::parser::Rule;
use super::{Code, Diagnostic, Span, lexical};

impl Rule {
    /// How the rule is named in "expected …" messages.
    fn describe(self) -> &'static str {
        match self {
            Rule::EOI => "end of file",
            Rule::WHITESPACE | Rule::COMMENT | Rule::comment => "whitespace",
            Rule::file | Rule::next_items | Rule::next_item | Rule::item => "a declaration",
            Rule::pipeline_decl => "`pipeline`",
            Rule::var_decl => "`var`",
            Rule::env_decl => "`env`",
            Rule::extends => "`extends`",
            Rule::protected => "`protected`",
            Rule::undo_on_failure => "`undo on failure`",
            Rule::kw_on => "`on`",
            Rule::kw_failure => "`failure`",
            Rule::secret_decl => "`secret`",
            Rule::kw_from => "`from`",
            Rule::secret_from => "`env` or `file`",
            Rule::assignment => "an assignment `name = \"value\"`",
            Rule::service_decl | Rule::kw_service => "`service`",
            Rule::service_after | Rule::after_clause => "`after`",
            Rule::workflow_decl => "`workflow`",
            Rule::phase_decl => "`phase`",
            Rule::for_each => "`for each service`",
            Rule::finally_clause => "`finally`",
            Rule::kw_each => "`each`",
            Rule::when_clause => "`when`",
            Rule::run_clause => "`run`",
            Rule::undo_clause => "`undo`",
            Rule::timeout_clause => "`timeout`",
            Rule::retry_clause => "`retry`",
            Rule::kw_backoff => "`backoff`",
            Rule::expr | Rule::operand => "a condition",
            Rule::infix => "an operator",
            Rule::op_or => "`||`",
            Rule::op_and => "`&&`",
            Rule::op_eq => "`==`",
            Rule::op_ne => "`!=`",
            Rule::op_not => "`!`",
            Rule::var_ref => "a variable",
            // `dependency` spells out the phase's name: it fails where `ident` would.
            Rule::ident | Rule::ident_char | Rule::dependency => "a name",
            Rule::duration => "a duration such as `30s`",
            Rule::count => "a number",
            Rule::string => "a string",
            Rule::close => "`}`",
            Rule::equals => "`=`",
        }
    }
}

/// Where pest's error is, relative to the text it parsed.
pub(super) fn error_offset(error: &pest::error::Error<Rule>) -> usize {
    match error.location {
        InputLocation::Pos(pos) | InputLocation::Span((pos, _)) => pos,
    }
}

pub(super) fn syntax_error(source: &str, base: usize, error: &pest::error::Error<Rule>) -> Diagnostic {
    let offset = base + error_offset(error);
    if let Some(diagnostic) =
        lexical::unterminated_string(source, offset).or_else(|| lexical::invalid_name(source, offset))
    {
        return diagnostic;
    }
    let found = found_at(source, offset);
    let (message, label) = match &error.variant {
        ErrorVariant::ParsingError { positives, .. } if !positives.is_empty() => {
            let mut expected: Vec<&str> = positives.iter().map(|rule| rule.describe()).collect();
            expected.sort_unstable();
            expected.dedup();
            let expected = join_or(&expected);
            (
                format!("expected {expected}, found {}", found.0),
                format!("expected {expected}"),
            )
        }
        ErrorVariant::ParsingError { .. } => (format!("unexpected {}", found.0), "not expected here".to_owned()),
        ErrorVariant::CustomError { message } => (message.clone(), message.clone()),
    };
    let mut diagnostic = Diagnostic::error(Code::Syntax, message).label(Span::new(offset, offset + found.1), label);
    let expects_close =
        matches!(&error.variant, ErrorVariant::ParsingError { positives, .. } if positives.contains(&Rule::close));
    // A declaration keyword (or the end of the file) where a clause or `}`
    // should be means the block above was never closed.
    let next_declaration = matches!(
        found.0.as_str(),
        "`phase`" | "`env`" | "`service`" | "`workflow`" | "`var`" | "`secret`" | "`pipeline`" | "end of file"
    );
    if expects_close
        && next_declaration
        && let Some(open) = block_open(source, base, offset)
    {
        diagnostic = diagnostic
            .label(Span::new(open, open + 1), "the block opened here is not closed")
            .help("close the block with `}`");
        return diagnostic;
    }
    match syntax_help(source, offset) {
        Some(help) => diagnostic.help(help),
        None => diagnostic,
    }
}

/// The `{` that opens the declaration starting at `base`: the first one
/// before `offset` outside comments and strings.
fn block_open(source: &str, base: usize, offset: usize) -> Option<usize> {
    let text = source.get(base..offset)?;
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' => return Some(base + i),
            '#' => {
                chars.by_ref().find(|&(_, c)| c == '\n');
            }
            '"' => return None,
            _ => {}
        }
    }
    None
}

/// What stands at `offset`, in words, and how many bytes of it to underline.
fn found_at(source: &str, offset: usize) -> (String, usize) {
    let rest = &source[offset.min(source.len())..];
    let Some(first) = rest.chars().next() else {
        return ("end of file".to_owned(), 0);
    };
    if first == '\n' || first == '\r' {
        return ("end of line".to_owned(), 1);
    }
    if first == '"' {
        return ("a string".to_owned(), 1);
    }
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    if word.is_empty() {
        (format!("`{first}`"), first.len_utf8())
    } else {
        (format!("`{word}`"), word.len())
    }
}

/// A hint for the mistakes people make most.
fn syntax_help(source: &str, offset: usize) -> Option<&'static str> {
    let rest = &source[offset.min(source.len())..];
    let line = &source[source[..offset.min(source.len())].rfind('\n').map_or(0, |i| i + 1)..];
    if rest.starts_with(':') || rest.starts_with('=') && line.trim_start().starts_with("var") {
        None
    } else if rest.starts_with('\'') {
        Some("strings use double quotes: \"…\"")
    } else if line.trim_start().starts_with("depends") || rest.starts_with("depends") {
        Some("dependencies are written `after other_phase`")
    } else if rest.is_empty() {
        Some("a block may be missing its closing `}`")
    } else {
        None
    }
}

fn join_or(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}
