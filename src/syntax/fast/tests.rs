//! The fast lane against pest: the same tree and the same diagnostics, on
//! every pipeline in the repository and on random texts made of the
//! language's tokens (most of them broken).

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::RngSeed;

use crate::syntax::parser::{parse, parse_with_pest};

fn same(text: &str) {
    let fast = parse(text);
    let pest = parse_with_pest(text);
    assert_eq!(fast.ast, pest.ast, "tree of {text:?}");
    assert_eq!(fast.diagnostics, pest.diagnostics, "diagnostics of {text:?}");
}

fn files(dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "stagecraft")
            && let Ok(text) = std::fs::read_to_string(&path)
        {
            out.push(text);
        }
    }
}

#[test]
fn every_pipeline_in_the_repository_parses_as_with_pest() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut texts = Vec::new();
    files(&root.join("pipelines"), &mut texts);
    files(&root.join("tests"), &mut texts);
    assert!(texts.len() > 10, "found {} files", texts.len());
    for text in &texts {
        same(text);
    }
}

#[test]
fn the_lane_reads_what_it_should() {
    let text = "pipeline p\nvar v = \"x{{y}}\"\nphase a {\n  run \"\"\"\n    one\n  \"\"\"\n  timeout 5m\n  retry 2 backoff 1s\n}\nphase b { after a, c[web]  finally for each service retry 3 }\nworkflow w { a b }\n";
    let parsed = parse(text);
    assert_eq!(parsed.ast.phases.len(), 2);
    let mut lane = super::Lane::new(text);
    let mut base = 0;
    let mut items = 0;
    while let Some((_, next)) = lane.declaration(base) {
        base = next;
        items += 1;
    }
    assert_eq!(items, 5, "every declaration read by the lane");
    same(text);
}

#[test]
fn tricky_texts_parse_as_with_pest() {
    for text in [
        "phase a{run\"x\"after b}",
        "phase a { run \"a\\\"b\" }",
        "phase a { run \"a\\\nb\" }",
        "phase a { run \"\"\" }",
        "phase a { run \"\"\"x\"\"\"\" }",
        "phase a { run \"{{\" }",
        "phase a { run \"{{ x }}\\q\" }",
        "phase a { after b[c }",
        "phase a { after b[c] , d,\n e }",
        "phase a { after b, }",
        "phase a { after b c }",
        "phase a { retry 3 backoff }",
        "phase a { retry 3x }",
        "phase a { retry 3 # c\n backoff 2s }",
        "phase a { timeout 1.5h }",
        "phase a { timeout .5h }",
        "phase a { for each services }",
        "phase a { for\teach\nservice }",
        "phase a { finally2 }",
        "phase a { when x == \"y\" run \"z\" }",
        "phase#c\na{}",
        "phase1 a {}",
        "phase a-b_c {}",
        "phase 2a {}",
        "phase é {}",
        "phase a { run \"é\\é\" }",
        "workflow w { a, b }",
        "workflow w {}",
        "workflow w { a",
        "pipeline",
        "pipeline p extra",
        "var x = y",
        "var x \"y\"",
        "phase a { run \"x\" }\r\nphase b {\r\n after a\r\n}\r\n",
        "\u{feff}phase a {}",
        "",
        "   \n# only a comment",
    ] {
        same(text);
    }
}

const TOKENS: &[&str] = &[
    "phase",
    "workflow",
    "pipeline",
    "var",
    "env",
    "service",
    "run",
    "after",
    "timeout",
    "retry",
    "backoff",
    "finally",
    "for",
    "each",
    "service",
    "when",
    "a",
    "b2",
    "c-d",
    "_e",
    "2",
    "5m",
    "1.5s",
    "{",
    "}",
    "[",
    "]",
    ",",
    "=",
    "\"x\"",
    "\"{{a}}\"",
    "\"{{\"",
    "\"\\\"\"",
    "\"\\",
    "\"\"\"",
    "\"\"\"\n  y\n\"\"\"",
    "\"",
    "#c\n",
    " ",
    " ",
    " ",
    "\n",
    "\t",
    "\r\n",
    "==",
    "!",
    "(",
    ")",
    "é",
    "\\",
];

fn texts() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..40).prop_map(|tokens| tokens.concat())
}

fn declarations() -> impl Strategy<Value = String> {
    let clause = prop::sample::select(
        &[
            "run \"true\"",
            "after a, b[web]",
            "after x",
            "timeout 5m",
            "retry 2",
            "retry 2 backoff 1s",
            "finally",
            "for each service",
            "when a == \"b\"",
            "run \"{{x}}\"",
            "run \"\"\"\n  multi\n  \"\"\"",
            "# note",
        ][..],
    );
    let phase = (
        prop::collection::vec(clause, 0..5),
        prop::sample::select(&[" ", "\n  ", "\t"][..]),
    )
        .prop_map(|(clauses, sep)| format!("phase p {{{sep}{}{sep}}}\n", clauses.join(sep)));
    let other = prop::sample::select(
        &[
            "pipeline p\n",
            "var v = \"w\"\n",
            "workflow w { a b }\n",
            "env e { k = \"v\" }\n",
        ][..],
    )
    .prop_map(str::to_owned);
    prop::collection::vec(prop_oneof![3 => phase, 1 => other, 1 => texts()], 0..8).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, rng_seed: RngSeed::Fixed(0x5EED_0FA5), ..ProptestConfig::default() })]

    #[test]
    fn random_texts_parse_as_with_pest(text in texts()) {
        same(&text);
    }

    #[test]
    fn random_declarations_parse_as_with_pest(text in declarations()) {
        same(&text);
    }
}
