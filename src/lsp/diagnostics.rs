//! The front end's [`Diagnostic`] as an LSP diagnostic: the same value the
//! terminal and `check --format json` render.
//!
//! The primary label is the range; the code is the stable code
//! (`stagecraft::unknown-phase`); secondary labels become related
//! information in the same file; help is appended to the message on a line
//! `help: …` (editors show the message, not `data`) and is also in `data`
//! as `{"help": …, "label": …, "suggestion": …}` with the primary label's
//! note and the text that fixes the problem in its range (a quick fix).

use lsp_types::{DiagnosticRelatedInformation, DiagnosticSeverity, DiagnosticTag, Location, NumberOrString, Uri};

use super::position;
use crate::syntax::{Code, Diagnostic, LineIndex, Severity, Span};

/// Converts one diagnostic of the document `uri`.
#[must_use]
pub(super) fn to_lsp(diagnostic: &Diagnostic, uri: &Uri, text: &str, lines: &LineIndex) -> lsp_types::Diagnostic {
    let primary = diagnostic.labels.first();
    let range = position::range(lines, text, primary.map_or(Span::new(0, 0), |label| label.span));
    let related: Vec<DiagnosticRelatedInformation> = diagnostic
        .labels
        .iter()
        .skip(1)
        .map(|label| DiagnosticRelatedInformation {
            location: Location::new(uri.clone(), position::range(lines, text, label.span)),
            message: label.message.clone(),
        })
        .collect();
    let mut message = diagnostic.message.clone();
    if let Some(help) = &diagnostic.help {
        message.push_str("\nhelp: ");
        message.push_str(help);
    }
    lsp_types::Diagnostic {
        range,
        severity: Some(match diagnostic.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(diagnostic.code.as_str().to_owned())),
        code_description: None,
        source: Some("stagecraft".to_owned()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        tags: (diagnostic.code == Code::UnusedPhase).then(|| vec![DiagnosticTag::UNNECESSARY]),
        data: Some(serde_json::json!({
            "help": diagnostic.help,
            "label": primary.map(|label| label.message.as_str()),
            "suggestion": diagnostic.suggestion,
        })),
    }
}
