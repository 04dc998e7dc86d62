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

use crate::syntax::{Diagnostic, LineIndex, Severity, floor_char_boundary};

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

/// A file's text as miette reads it. miette counts lines itself: it takes a
/// lone `\r` for a line break when it looks for a label's line but draws
/// it as part of the line, so a file with classic Mac line endings would
/// show as one line. It reads the text with each lone `\r` replaced by
/// `\n` (one byte for one: spans stay valid), and the line and column it
/// prints in the header come from the file's [`LineIndex`], in characters
/// as JSON and the language server count them (miette counts bytes).
struct Source<'a> {
    file: &'a SourceFile,
    shown: Cow<'a, str>,
}

impl<'a> Source<'a> {
    fn new(file: &'a SourceFile) -> Self {
        let bytes = file.text.as_bytes();
        let lone = |i: usize| bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n');
        let shown = if (0..bytes.len()).any(lone) {
            let mut shown = file.text.clone().into_bytes();
            for (i, byte) in shown.iter_mut().enumerate() {
                if lone(i) {
                    *byte = b'\n';
                }
            }
            Cow::Owned(String::from_utf8(shown).unwrap_or_default())
        } else {
            Cow::Borrowed(file.text.as_str())
        };
        Self { file, shown }
    }
}

impl SourceCode for Source<'_> {
    fn read_span<'b>(
        &'b self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'b> + 'b>, MietteError> {
        let contents = self.shown.as_ref().read_span(span, before, after)?;
        let (line, column) = self.file.line_column(contents.span().offset());
        Ok(Box::new(MietteSpanContents::new_named(
            self.file.name.clone(),
            contents.data(),
            *contents.span(),
            line - 1,
            column - 1,
            contents.line_count(),
        )))
    }
}

/// A diagnostic paired with its file, in the shape miette renders.
struct Rendered<'a> {
    diagnostic: &'a Diagnostic,
    source: &'a Source<'a>,
    len: usize,
}

impl fmt::Debug for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.diagnostic, f)
    }
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
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
            .map(|help| Box::new(help) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let len = self.len;
        Some(Box::new(self.diagnostic.labels.iter().enumerate().map(
            move |(index, label)| {
                let mut start = label.span.start().min(len);
                let end = label.span.end().clamp(start, len);
                // miette draws nothing for an empty span at the very end of
                // the text; point at the last character instead.
                if start == len && end == len && len > 0 {
                    start = floor_char_boundary(&self.source.shown, len - 1);
                }
                let span = SourceSpan::from(start..end);
                let text = Some(label.message.clone());
                if index == 0 {
                    LabeledSpan::new_primary_with_span(text, span)
                } else {
                    LabeledSpan::new_with_span(text, span)
                }
            },
        )))
    }
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
    let source = Source::new(file);
    for diagnostic in diagnostics {
        let rendered = Rendered {
            diagnostic,
            source: &source,
            len: file.text.len(),
        };
        if handler.render_report(&mut out, &rendered).is_err() {
            let _ = writeln!(out, "{}: {}", diagnostic.code, diagnostic.message);
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
