//! A document updated by random edits (LSP ranges, as a client sends them)
//! answers as a document opened with its final text: the same diagnostics,
//! resolution, outline and broken declarations.

use std::str::FromStr as _;

use lsp_types::{TextDocumentContentChangeEvent, Uri};
use proptest::prelude::*;

use super::{Analysis, Document};
use crate::lsp::{diagnostics, position};

const PIECES: &[&str] = &[
    "pipeline demo",
    "var region = \"eu\"",
    "env prod {\n  region = \"us\"\n}",
    "service api {\n  path = \"/srv\"\n}",
    "phase build {\n  for each service\n  run \"make {{service.path}} ☕\"\n}",
    "phase test {\n  after build\n  when region == \"eu\"\n  run \"\"\"\n    {{version}}\n  \"\"\"\n}",
    "phase deploy {\n  after test, build[api], tset\n}",
    "workflow ship {\n  build test deploy\n}",
    "phase broken {\n  run 'x'\n}",
];

const INSERTS: &[&str] = &[
    "",
    "x",
    "}",
    "{",
    "\n",
    "\r\n",
    "\"",
    "\"\"\"",
    "#",
    " ",
    "phase x {",
    "after ",
    "é",
    "{{",
];

fn answers(document: &mut Document) -> String {
    let (document, analysis) = document.analyzed().expect("an analysis");
    let Analysis {
        diagnostics,
        resolution,
        outline,
        broken,
        starts,
        hovers: _,
        commands,
    } = analysis;
    let published: Vec<lsp_types::Diagnostic> = diagnostics
        .iter()
        .map(|d| diagnostics::to_lsp(d, &document.uri, &document.text, &document.lines))
        .collect();
    format!("{published:?}\n{resolution:?}\n{outline:?}\n{broken:?}\n{starts:?}\n{commands:?}")
}

proptest! {
    #[test]
    fn an_edited_document_answers_as_a_new_one(
        pieces in prop::collection::vec(0usize..PIECES.len(), 0..8),
        crlf in any::<bool>(),
        rounds in prop::collection::vec(
            prop::collection::vec((0usize..=1000, 0usize..6, 0usize..INSERTS.len()), 1..3),
            1..6,
        ),
    ) {
        let mut text = pieces.iter().map(|&i| PIECES[i]).collect::<Vec<_>>().join("\n\n");
        if crlf {
            text = text.replace('\n', "\r\n");
        }
        let uri = Uri::from_str("file:///p.stagecraft").expect("a uri");
        let mut document = Document::new(uri.clone(), 1, text);
        answers(&mut document);
        for (version, round) in (2..).zip(rounds) {
            let changes = round
                .into_iter()
                .map(|(at, delete, insert)| {
                    let start = crate::syntax::floor_char_boundary(&document.text, document.text.len() * at / 1000);
                    let end = crate::syntax::floor_char_boundary(&document.text, start + delete);
                    let span = crate::syntax::Span::new(start, end.max(start));
                    TextDocumentContentChangeEvent {
                        range: Some(position::range(&document.lines, &document.text, span)),
                        range_length: None,
                        text: INSERTS[insert].to_owned(),
                    }
                })
                .collect();
            document.apply(version, changes);
            let mut fresh = Document::new(uri.clone(), version, document.text.clone());
            prop_assert_eq!(answers(&mut document), answers(&mut fresh), "text: {:?}", document.text);
        }
    }
}
