//! Code actions (quick fixes) for the diagnostics at a range:
//!
//! * a diagnostic with a suggestion (a "did you mean", see
//!   [`Diagnostic::suggestion`]) replaces its primary range with it;
//! * `unused-phase` (a phase no workflow lists) adds the phase to a
//!   workflow, one action per workflow, the declaration laid out as
//!   `stagecraft fmt` lays it out.
//!
//! Both come from the server's own analysis of the document, not from the
//! diagnostics the client sends back.

use std::collections::HashMap;

use lsp_types::{CodeAction, CodeActionKind, TextEdit, WorkspaceEdit};

use super::diagnostics;
use super::document::{Analysis, Document};
use crate::check::Kind;
use crate::syntax::{Code, Diagnostic, Span};

/// The quick fixes for the diagnostics whose primary range touches `range`,
/// in the order of the diagnostics.
pub(super) fn actions(document: &Document, analysis: &Analysis, range: Span) -> Vec<CodeAction> {
    let mut out = Vec::new();
    for diagnostic in &analysis.diagnostics {
        let Some(span) = diagnostic.primary_span() else {
            continue;
        };
        if span.start() > range.end() || range.start() > span.end() {
            continue;
        }
        if let Some(suggestion) = &diagnostic.suggestion {
            let title = format!("Replace `{}` with `{suggestion}`", document.slice(span));
            let edit = TextEdit::new(document.range(span), suggestion.clone());
            out.push(action(document, diagnostic, title, edit, true));
        }
        if diagnostic.code == Code::UnusedPhase {
            let phase = document.slice(span);
            for workflow in analysis.outline.iter().filter(|d| d.kind == Kind::Workflow) {
                let Some(edit) = add_to_workflow(document, analysis, workflow.span, phase) else {
                    continue;
                };
                let title = format!("Add `{phase}` to workflow `{}`", document.slice(workflow.name));
                out.push(action(document, diagnostic, title, edit, false));
            }
        }
    }
    out
}

fn action(document: &Document, diagnostic: &Diagnostic, title: String, edit: TextEdit, preferred: bool) -> CodeAction {
    let lsp = diagnostics::to_lsp(diagnostic, &document.uri, &document.text, &document.lines);
    CodeAction {
        title,
        kind: Some(CodeActionKind::QUICKFIX),
        diagnostics: Some(vec![lsp]),
        edit: Some(WorkspaceEdit {
            changes: Some(HashMap::from([(document.uri.clone(), vec![edit])])),
            ..WorkspaceEdit::default()
        }),
        command: None,
        is_preferred: preferred.then_some(true),
        disabled: None,
        data: None,
    }
}

/// The edit that adds `phase` at the end of the list of the workflow
/// declared at `declaration` (keyword to `}`): the declaration as
/// `stagecraft fmt` writes it with the phase added (one line when it fits,
/// else one phase per line), as the smallest edit of the text.
fn add_to_workflow(document: &Document, analysis: &Analysis, declaration: Span, phase: &str) -> Option<TextEdit> {
    let old = document.slice(declaration);
    if !old.ends_with('}') {
        return None;
    }
    let names = analysis.resolution.names();
    let from = names.partition_point(|n| n.span.start() < declaration.start());
    let last = names[from..]
        .iter()
        .take_while(|n| n.span.end() <= declaration.end())
        .filter(|n| n.kind == Kind::Phase && !n.definition)
        .last();
    // After the last phase listed; in an empty workflow, before its `}`.
    let (at, insert) = match last {
        Some(member) => (member.span.end() - declaration.start(), format!(" {phase}")),
        None => (old.len() - 1, format!(" {phase} ")),
    };
    let mut new = format!("{}{insert}{}", &old[..at], &old[at..]);
    if let Ok(formatted) = crate::syntax::format(&new) {
        formatted.trim_end_matches(['\r', '\n']).clone_into(&mut new);
        if document.text.contains("\r\n") && !new.contains("\r\n") {
            new = new.replace('\n', "\r\n");
        }
    }
    // The smallest edit: the text both share at each end stays.
    let prefix = common(old.chars(), new.chars());
    let suffix = common(old[prefix..].chars().rev(), new[prefix..].chars().rev());
    let replaced = Span::new(declaration.start() + prefix, declaration.end() - suffix);
    Some(TextEdit::new(
        document.range(replaced),
        new[prefix..new.len() - suffix].to_owned(),
    ))
}

/// The length in bytes of the longest common start of two sequences of
/// characters (either end of two texts).
fn common(old: impl Iterator<Item = char>, new: impl Iterator<Item = char>) -> usize {
    let mut length = 0;
    for (a, b) in old.zip(new) {
        if a != b {
            break;
        }
        length += a.len_utf8();
    }
    length
}
