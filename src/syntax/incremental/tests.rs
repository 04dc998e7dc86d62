//! The incremental parse against a full parse of the same text, after random
//! edits that break and mend declarations, add and remove line breaks
//! (`\n` and `\r\n`), quotes and braces, and touch declaration boundaries.

use proptest::prelude::*;

use super::{Tree, Unchanged};
use crate::syntax::parse;

/// Declarations (valid and not) a file is made of.
const PIECES: &[&str] = &[
    "pipeline demo",
    "var region = \"eu\"",
    "var empty = \"\"",
    "env prod {\n  region = \"us\"\n}",
    "env staging extends prod {\n}",
    "service api {\n  path = \"/srv\"\n  after db\n}",
    "service db {\n}",
    "phase build {\n  for each service\n  run \"make {{service.path}}\"\n}",
    "phase test {\n  after build\n  when region == \"eu\" && !(flag || x)\n  timeout 30s\n  retry 2 backoff 1s\n  run \"\"\"\n    multi {{version}}\n  \"\"\"\n}",
    "phase deploy {\n  after test, build[api]\n  run \"echo \\\"x\\\" \\n {{ bad name }} ☕\"\n}",
    "workflow ship {\n  build test\n  deploy\n}",
    "# a comment { \"",
    "phase broken {\n  run 'x'\n}",
    "phse typo {\n}",
    "phase open {\n  run \"x\"\n",
    "var s = \"unterminated\n",
    "phase a{run \"x\"}phase b{after a}",
];

/// What edits insert.
const INSERTS: &[&str] = &[
    "",
    "x",
    "}",
    "{",
    "\n",
    "\r\n",
    "\r",
    "\"",
    "\"\"\"",
    "'",
    "#",
    " ",
    "phase x {",
    "after a",
    "run \"y\"",
    "var",
    "env",
    "pipeline",
    "\n}\n",
    "{{",
    "}}",
    "[api]",
    ",",
    "==",
    "é",
    "service",
    "phase",
    "\\",
];

fn file(pieces: &[usize], crlf: bool) -> String {
    let text = pieces
        .iter()
        .map(|&i| PIECES[i % PIECES.len()])
        .collect::<Vec<_>>()
        .join("\n\n");
    if crlf { text.replace('\n', "\r\n") } else { text }
}

/// An edit: where (in thousandths of the length), how many bytes to delete, and
/// what to insert (one of [`INSERTS`], or else a whole piece).
type Edit = (usize, usize, usize);

fn apply(text: &mut String, unchanged: &mut Unchanged, (at, delete, insert): Edit) {
    let mut start = text.len() * at / 1000;
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (start + delete).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    unchanged.edit(text.len(), start, end);
    let insert = INSERTS
        .get(insert)
        .unwrap_or_else(|| &PIECES[(insert - INSERTS.len()) % PIECES.len()]);
    text.replace_range(start..end, insert);
}

fn edits() -> impl Strategy<Value = Vec<Vec<Edit>>> {
    let edit = (0usize..=1000, 0usize..6, 0usize..INSERTS.len() + PIECES.len());
    prop::collection::vec(prop::collection::vec(edit, 1..4), 1..8)
}

proptest! {
    // `PROPTEST_CASES` asks for more.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    #[test]
    fn an_incremental_parse_equals_a_full_parse(
        pieces in prop::collection::vec(0usize..PIECES.len(), 0..10),
        crlf in any::<bool>(),
        rounds in edits(),
    ) {
        let mut text = file(&pieces, crlf);
        let mut tree = Tree::default();
        let first = tree.parse(&text, Unchanged::all(0));
        prop_assert_eq!(&first.ast, &parse(&text).ast);
        for round in rounds {
            let mut unchanged = Unchanged::all(text.len());
            for edit in round {
                apply(&mut text, &mut unchanged, edit);
            }
            let incremental = tree.parse(&text, unchanged);
            let full = parse(&text);
            prop_assert_eq!(&incremental.ast, &full.ast, "text: {:?}", text);
            prop_assert_eq!(&incremental.diagnostics, &full.diagnostics, "text: {:?}", text);
        }
    }
}

#[test]
fn keeps_the_declarations_an_edit_does_not_touch() {
    let mut text = file(&[0, 3, 7, 8, 9, 10], false);
    let mut tree = Tree::default();
    drop(tree.parse(&text, Unchanged::all(0)));
    let at = text.find("after test").unwrap() + "after ".len();
    let mut unchanged = Unchanged::all(text.len());
    unchanged.edit(text.len(), at, at + 1);
    text.replace_range(at..=at, "q");
    let parsed = tree.parse(&text, unchanged);
    assert_eq!(parsed.ast, parse(&text).ast);
    assert_eq!(parsed.diagnostics, parse(&text).diagnostics);
    drop(parsed);
    assert_eq!(tree.fresh, 1, "only `phase deploy` is parsed again");
}
