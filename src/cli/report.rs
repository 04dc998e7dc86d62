//! Diagnostics for people (miette's graphical report) and for programs
//! (`check --format json`, documented in `spec/diagnostics.md`), both
//! placed by the file's one [`LineIndex`].

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::io::IsTerminal;
use std::sync::OnceLock;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents, SourceCode, SourceSpan,
    SpanContents,
};
use serde::Serialize;

use super::output::escape;
use super::snippet::{Shown, View};
use crate::syntax::{Diagnostic, Label, LineIndex, Severity, floor_char_boundary};

/// One file's source and name, as diagnostics are rendered against it.
pub(super) struct SourceFile {
    /// The path as the user gave or we found it.
    pub name: String,
    /// The whole text (bytes that are not UTF-8 replaced, for display).
    pub text: String,
    /// Where the lines of `text` start, built the first time a diagnostic
    /// is rendered (a file with none never needs it).
    pub lines: OnceLock<LineIndex>,
    /// Why the file is not text, if it is not.
    pub not_text: Option<Diagnostic>,
}

impl SourceFile {
    /// The 1-based line and column of byte `offset`.
    fn line_column(&self, offset: usize) -> (usize, usize) {
        self.lines
            .get_or_init(|| LineIndex::new(&self.text))
            .line_column(&self.text, offset)
    }
}

/// The longest word of a message shown whole, in characters.
const LONG_WORD: usize = 120;

/// A message, label or help as shown: control characters escaped, and a
/// word longer than [`LONG_WORD`] characters (a name quoted from a file,
/// which may be a megabyte long) cut to its first 100, `…` and its last
/// character (a closing backtick stays).
fn readable(text: &str) -> Cow<'_, str> {
    let escaped = escape(text);
    if !escaped
        .split_whitespace()
        .any(|word| word.chars().nth(LONG_WORD).is_some())
    {
        return escaped;
    }
    let mut out = String::new();
    let mut rest = escaped.as_ref();
    while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..end];
        if word.chars().nth(LONG_WORD).is_some() {
            out.extend(word.chars().take(100));
            out.push('…');
            out.extend(word.chars().last());
        } else {
            out.push_str(word);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// What miette reads for one diagnostic ([`View`] of the file's
/// [`Shown`] text). The line and column it prints in the header come from
/// the file's [`LineIndex`], in characters as JSON and the language server
/// count them (miette counts bytes), at the place in the file.
struct Source<'a> {
    file: &'a SourceFile,
    shown: &'a Shown<'a>,
    view: &'a View<'a>,
    name: String,
}

impl Source<'_> {
    /// The 1-based line and column of view offset `offset` in the file.
    fn line_column(&self, offset: usize) -> (usize, usize) {
        self.file.line_column(self.shown.to_file(self.view.to_shown(offset)))
    }
}

impl SourceCode for Source<'_> {
    fn read_span<'b>(
        &'b self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'b> + 'b>, MietteError> {
        let contents = self.view.text.as_ref().read_span(span, before, after)?;
        let (line, column) = self.line_column(contents.span().offset());
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            contents.data(),
            *contents.span(),
            line - 1,
            column - 1,
            contents.line_count(),
        )))
    }
}

/// A diagnostic paired with its file, in the shape miette renders: the
/// text escaped, the labels placed in the view.
struct Rendered<'a> {
    diagnostic: &'a Diagnostic,
    source: &'a Source<'a>,
    labels: Vec<LabeledSpan>,
}

impl fmt::Debug for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.diagnostic, f)
    }
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&readable(&self.diagnostic.message))
    }
}

impl std::error::Error for Rendered<'_> {}

impl miette::Diagnostic for Rendered<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.diagnostic.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|help| Box::new(readable(help)) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }
}

/// The view miette reads for `diagnostic`, its labels placed in it, and the
/// labels that fall outside a window (listed after the report).
fn place<'s>(shown: &'s Shown<'_>, diagnostic: &'s Diagnostic) -> (View<'s>, Vec<LabeledSpan>, Vec<&'s Label>) {
    let file_len = shown.to_file(shown.text.len());
    let span = |label: &Label| {
        let at = |offset: usize| floor_char_boundary(&shown.text, shown.to_shown(offset.min(file_len)));
        let start = at(label.span.start());
        (start, at(label.span.end()).max(start))
    };
    let view = diagnostic.labels.first().map_or_else(
        || View::whole(&shown.text),
        |primary| {
            let (start, end) = span(primary);
            View::around(&shown.text, start, end)
        },
    );
    let len = view.text.len();
    let mut labels = Vec::new();
    let mut outside = Vec::new();
    for (index, label) in diagnostic.labels.iter().enumerate() {
        let (start, end) = span(label);
        if view.is_window() && index > 0 && !view.contains(start) {
            outside.push(label);
            continue;
        }
        let mut start = view.to_view(start);
        let end = view.to_view(end).max(start);
        // miette draws nothing for an empty span at the very end of the
        // text; point at the last character instead.
        if start == len && end == len && len > 0 {
            start = floor_char_boundary(&view.text, len - 1);
        }
        let span = SourceSpan::from(start..end);
        let text = Some(readable(&label.message).into_owned());
        labels.push(if index == 0 {
            LabeledSpan::new_primary_with_span(text, span)
        } else {
            LabeledSpan::new_with_span(text, span)
        });
    }
    (view, labels, outside)
}

/// Renders diagnostics for a terminal: colour only when stderr is one (and
/// `NO_COLOR` is unset), a fixed width of 100 columns otherwise, so that
/// output in CI logs and tests is stable.
pub(super) fn human(file: &SourceFile, diagnostics: &[Diagnostic]) -> String {
    let terminal = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let handler = if terminal {
        GraphicalReportHandler::new()
    } else {
        GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_width(100)
    };
    let mut out = String::new();
    if diagnostics.is_empty() {
        return out;
    }
    let shown = Shown::new(&file.text);
    let name = escape(&file.name).into_owned();
    for diagnostic in diagnostics {
        let (view, labels, outside) = place(&shown, diagnostic);
        let source = Source {
            file,
            shown: &shown,
            view: &view,
            name: name.clone(),
        };
        let rendered = Rendered {
            diagnostic,
            source: &source,
            labels,
        };
        if handler.render_report(&mut out, &rendered).is_err() {
            let _ = writeln!(out, "{}: {}", diagnostic.code, readable(&diagnostic.message));
        }
        for label in outside {
            let (line, column) = file.line_column(label.span.start());
            let _ = writeln!(out, "  also at {name}:{line}:{column}: {}", readable(&label.message));
        }
        out.push('\n');
    }
    out
}

/// `{"diagnostics": [...]}` for every file checked.
#[derive(Serialize)]
pub(super) struct JsonReport<'a> {
    diagnostics: Vec<JsonDiagnostic<'a>>,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    code: &'static str,
    severity: Severity,
    message: &'a str,
    help: Option<&'a str>,
    suggestion: Option<&'a str>,
    file: &'a str,
    labels: Vec<JsonLabel<'a>>,
}

#[derive(Serialize)]
struct JsonLabel<'a> {
    message: &'a str,
    offset: usize,
    length: usize,
    line: usize,
    column: usize,
}

impl<'a> JsonReport<'a> {
    pub(super) fn new() -> Self {
        Self {
            diagnostics: Vec::new(),
        }
    }

    pub(super) fn add(&mut self, file: &'a SourceFile, diagnostics: &'a [Diagnostic]) {
        for diagnostic in diagnostics {
            let labels = diagnostic
                .labels
                .iter()
                .map(|label| {
                    let offset = floor_char_boundary(&file.text, label.span.start());
                    let (line, column) = file.line_column(offset);
                    JsonLabel {
                        message: &label.message,
                        offset,
                        length: label.span.end().min(file.text.len()).saturating_sub(offset),
                        line,
                        column,
                    }
                })
                .collect();
            self.diagnostics.push(JsonDiagnostic {
                code: diagnostic.code.as_str(),
                severity: diagnostic.severity,
                message: &diagnostic.message,
                help: diagnostic.help.as_deref(),
                suggestion: diagnostic.suggestion.as_deref(),
                file: &file.name,
                labels,
            });
        }
    }
}

/// "2 errors and 1 warning" for a summary line.
pub(super) fn count(diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match (errors, warnings) {
        (0, 0) => "no problems".to_owned(),
        (e, 0) => plural(e, "error"),
        (0, w) => plural(w, "warning"),
        (e, w) => format!("{} and {}", plural(e, "error"), plural(w, "warning")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::{Code, Span};

    /// Every span of a text with every awkward thing in it renders, with
    /// no panic, and nothing raw reaches the output.
    #[test]
    fn any_label_on_any_text_renders() {
        let long = "é\t\u{1b}[31m✓".repeat(40);
        let text = format!("a\r\n{long}\r\n\rb\u{202e}\n\n{long}\t\n{}", "x".repeat(300));
        let file = SourceFile {
            name: "f\u{1b}.stagecraft".to_owned(),
            text: text.clone(),
            lines: OnceLock::new(),
            not_text: None,
        };
        let boundaries: Vec<usize> = (0..=text.len()).filter(|&i| text.is_char_boundary(i)).collect();
        for (n, &start) in boundaries.iter().enumerate() {
            for end in [start, start + 1, start + 9, text.len() + 5] {
                let diagnostic = Diagnostic::error(Code::Syntax, "found `\u{1b}`")
                    .label(Span::new(start, end), "here\u{7}")
                    .label(Span::new(boundaries[n / 2], boundaries[n / 3]), "and there")
                    .help("help\u{9b}");
                let out = human(&file, std::slice::from_ref(&diagnostic));
                assert!(!out.contains(['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}']), "{out}");
                assert!(out.len() < 5_000, "{start}..{end}: {}", out.len());
            }
        }
    }
}
