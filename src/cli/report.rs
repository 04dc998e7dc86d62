//! Diagnostics for people (miette's graphical report) and for programs
//! (`check --format json`, documented in `spec/diagnostics.md`).

use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};
use serde::Serialize;

use crate::syntax::{Diagnostic, LineIndex, Severity, floor_char_boundary};

/// One file's source and name, as diagnostics are rendered against it.
pub(super) struct SourceFile {
    /// The path as the user gave or we found it.
    pub name: String,
    /// The whole text (bytes that are not UTF-8 replaced, for display).
    pub text: String,
    /// Why the file is not text, if it is not.
    pub not_text: Option<Diagnostic>,
}

/// A diagnostic paired with its file, in the shape miette renders.
struct Rendered<'a> {
    diagnostic: &'a Diagnostic,
    source: &'a NamedSource<String>,
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
                    start = crate::syntax::floor_char_boundary(self.source.inner(), len - 1);
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
    let source = NamedSource::new(&file.name, file.text.clone());
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
        let lines = LineIndex::new(&file.text);
        for diagnostic in diagnostics {
            let labels = diagnostic
                .labels
                .iter()
                .map(|label| {
                    let offset = floor_char_boundary(&file.text, label.span.start());
                    let (line, column) = lines.line_column(&file.text, offset);
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
