//! Semantic tokens: every name of the checker's resolution table (and each
//! `$NAME` of a declared secret in a command), typed by what it names, with
//! the `declaration` modifier where it is declared, `readonly` on secrets
//! and `defaultLibrary` on built-in variables. Encoded as LSP says: five
//! numbers per token, each position relative to the previous token's, in
//! UTF-16 columns from the one line index.

use lsp_types::{SemanticToken, SemanticTokenModifier, SemanticTokenType, SemanticTokensLegend};

use super::document::{Analysis, Document};
use super::hover::shell_uses;
use crate::check::{BUILTINS, Kind, Name};

/// The token types, in legend order (a token's type is its index).
const TYPES: [SemanticTokenType; 6] = [
    SemanticTokenType::FUNCTION,
    SemanticTokenType::NAMESPACE,
    SemanticTokenType::CLASS,
    SemanticTokenType::VARIABLE,
    SemanticTokenType::PROPERTY,
    SemanticTokenType::EVENT,
];

/// The index in [`TYPES`] of the names of `kind`, if they get tokens.
fn type_index(kind: Kind) -> Option<u32> {
    match kind {
        Kind::Phase => Some(0),
        Kind::Env => Some(1),
        Kind::Service => Some(2),
        Kind::Var | Kind::Secret => Some(3),
        Kind::Attr => Some(4),
        Kind::Workflow => Some(5),
        Kind::Pipeline => None,
    }
}

/// The modifiers, in legend order (bit `i` is modifier `i`).
const DECLARATION: u32 = 1;
const READONLY: u32 = 1 << 1;
const DEFAULT_LIBRARY: u32 = 1 << 2;

/// What the server advertises: the token types and modifiers.
pub(super) fn legend() -> SemanticTokensLegend {
    SemanticTokensLegend {
        token_types: TYPES.to_vec(),
        token_modifiers: vec![
            SemanticTokenModifier::DECLARATION,
            SemanticTokenModifier::READONLY,
            SemanticTokenModifier::DEFAULT_LIBRARY,
        ],
    }
}

/// The tokens of a document, in file order, delta-encoded.
pub(super) fn tokens(document: &Document, analysis: &Analysis) -> Vec<SemanticToken> {
    let mut names: Vec<Name> = analysis.resolution.names().to_vec();
    names.extend(shell_uses(document, analysis));
    names.sort_by_key(|n| (n.span.start(), n.span.end()));
    let mut out = Vec::with_capacity(names.len());
    let (mut line, mut column, mut end) = (0, 0, 0);
    for name in names {
        let Some(token_type) = type_index(name.kind) else {
            continue;
        };
        // Tokens may not overlap; names never span lines.
        let (start_line, start_column) = document.lines.utf16(&document.text, name.span.start());
        let (end_line, end_column) = document.lines.utf16(&document.text, name.span.end());
        if name.span.start() < end || end_line != start_line || end_column <= start_column {
            continue;
        }
        let mut modifiers = 0;
        if name.definition {
            modifiers |= DECLARATION;
        }
        if name.kind == Kind::Secret {
            modifiers |= READONLY;
        }
        if name.kind == Kind::Var && name.target.is_none() && BUILTINS.contains(&document.slice(name.span)) {
            modifiers |= DEFAULT_LIBRARY;
        }
        out.push(SemanticToken {
            delta_line: start_line - line,
            delta_start: if start_line == line {
                start_column - column
            } else {
                start_column
            },
            length: end_column - start_column,
            token_type,
            token_modifiers_bitset: modifiers,
        });
        (line, column, end) = (start_line, start_column, name.span.end());
    }
    out
}
