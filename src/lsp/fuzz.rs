//! The server's requests at every position of a document, as an editor may
//! send them: definition, references, hover, completion, code actions,
//! prepare-rename and rename at each line and UTF-16 column (and past the
//! end of each line and of the file), then symbols, formatting and
//! semantic tokens, on the examples and on random texts made of valid and
//! broken pieces. No request may panic or answer an error (except a
//! rename's refusal, a `RequestFailed` with a message), every range
//! answered must lie inside the document, and every semantic token inside
//! its line.

use std::str::FromStr as _;

use lsp_server::ErrorCode;
use lsp_server::{Notification, Request, RequestId};
use lsp_types::notification::{DidOpenTextDocument, Notification as _};
use lsp_types::request::{
    CodeActionRequest, Completion, DocumentSymbolRequest, Formatting, GotoDefinition, HoverRequest,
    PrepareRenameRequest, References, Rename, Request as _, SemanticTokensFullRequest,
};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::Server;

const URI: &str = "file:///fuzz/pipeline.stagecraft";

const PIECES: &[&str] = &[
    "pipeline demo\n",
    "var region = \"eu\"\n",
    "secret token from env \"TOKEN\"\n",
    "env prod {\n  protected\n  undo on failure\n  region = \"us\"\n  secret token from file \"t.txt\"\n}\n",
    "env dev extends prod {\n}\n",
    "service api {\n  path = \"/srv\"\n}\n",
    "service web {\n  after api\n}\n",
    "phase build {\n  for each service\n  run \"make {{service.path}} ☕ $token\"\n}\n",
    "phase test {\n  after build\n  when region == \"eu\" && !(env == \"dev\")\n  run \"\"\"\n    {{version}} 日本\n  \"\"\"\n}\n",
    "phase notify {\n  finally\n  when outcome == \"failure\"\n  run \"echo {{outcome}}\"\n}\n",
    "phase deploy {\n  after test, build[api], tset\n  undo \"revert {{version}} $token\"\n  timeout 1m30s\n  retry 2 backoff 5s\n}\n",
    "workflow ship {\n  build test deploy notify\n}\n",
    "phase broken {\n  run 'x'\n}\n",
    "service café {}\n",
    "phase open {\n  run \"x\n",
    "\r\n",
    "# a comment 🦀\n",
];

/// A server with `text` open.
fn open(text: &str) -> Server {
    let mut server = Server::default();
    let params = json!({"textDocument": {"uri": URI, "languageId": "stagecraft", "version": 1, "text": text}});
    server.notification(Notification::new(DidOpenTextDocument::METHOD.to_owned(), params));
    let _ = server.publish();
    server
}

/// Lines of `text` as LSP counts them (LF, CRLF and lone CR alike), each
/// with its length in UTF-16 units.
fn line_lengths(text: &str) -> Vec<u32> {
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    normalized
        .split('\n')
        .map(|line| u32::try_from(line.encode_utf16().count()).unwrap_or(u32::MAX))
        .collect()
}

/// Every `range` in an answer lies inside the document's lines.
fn check_ranges(value: &Value, lines: &[u32], context: &str) {
    match value {
        Value::Object(map) => {
            if let (Some(line), Some(character)) = (map.get("line"), map.get("character")) {
                let (line, character) = (
                    line.as_u64().unwrap_or(u64::MAX),
                    character.as_u64().unwrap_or(u64::MAX),
                );
                let length = usize::try_from(line).ok().and_then(|l| lines.get(l)).copied();
                assert!(
                    length.is_some_and(|length| character <= u64::from(length)),
                    "{context}: position {line}:{character} is outside the document"
                );
            }
            map.values().for_each(|v| check_ranges(v, lines, context));
        }
        Value::Array(items) => items.iter().for_each(|v| check_ranges(v, lines, context)),
        _ => {}
    }
}

/// One request; it must not answer an error (a rename may refuse).
fn ask(server: &mut Server, id: i32, method: &str, params: Value, lines: &[u32]) -> Value {
    let response = server.request(Request::new(RequestId::from(id), method.to_owned(), params));
    match response.response_result {
        Ok(result) => {
            check_ranges(&result, lines, method);
            result
        }
        Err(error)
            if matches!(method, PrepareRenameRequest::METHOD | Rename::METHOD)
                && error.code == ErrorCode::RequestFailed as i32
                && !error.message.is_empty() =>
        {
            Value::Null
        }
        Err(error) => panic!("{method}: {error:?}"),
    }
}

/// Semantic tokens, decoded: each must lie inside its line.
fn check_tokens(result: &Value, lines: &[u32]) {
    let data = result["data"].as_array().map(Vec::as_slice).unwrap_or_default();
    assert_eq!(data.len() % 5, 0, "semantic tokens come in fives");
    let (mut line, mut column) = (0, 0);
    for token in data.chunks(5) {
        let number = |i: usize| token[i].as_u64().unwrap_or(u64::MAX);
        if number(0) > 0 {
            column = 0;
        }
        line += number(0);
        column += number(1);
        let length = usize::try_from(line).ok().and_then(|l| lines.get(l)).copied();
        assert!(
            length.is_some_and(|length| column + number(2) <= u64::from(length) && number(2) > 0),
            "a semantic token at {line}:{column} ({} units) is outside its line",
            number(2)
        );
    }
}

/// Every request at every position of `text` (one past each line's end,
/// and one line past the last, included).
fn every_position(text: &str) {
    let mut server = open(text);
    let lines = line_lengths(text);
    let document = json!({"uri": URI});
    let mut id = 0;
    for (line, &length) in lines.iter().enumerate().chain(std::iter::once((lines.len(), &0))) {
        for character in 0..=length + 1 {
            let at = json!({"textDocument": document, "position": {"line": line, "character": character}});
            for method in [GotoDefinition::METHOD, HoverRequest::METHOD, Completion::METHOD] {
                id += 1;
                ask(&mut server, id, method, at.clone(), &lines);
            }
            let mut references = at.clone();
            references["context"] = json!({"includeDeclaration": true});
            id += 1;
            ask(&mut server, id, References::METHOD, references, &lines);
            id += 1;
            ask(&mut server, id, PrepareRenameRequest::METHOD, at.clone(), &lines);
            let mut rename = at.clone();
            rename["newName"] = json!("renamed_x");
            id += 1;
            ask(&mut server, id, Rename::METHOD, rename, &lines);
            let point = json!({"line": line, "character": character});
            let actions = json!({"textDocument": document, "range": {"start": point, "end": point}, "context": {"diagnostics": []}});
            id += 1;
            ask(&mut server, id, CodeActionRequest::METHOD, actions, &lines);
        }
    }
    ask(
        &mut server,
        -1,
        DocumentSymbolRequest::METHOD,
        json!({"textDocument": document}),
        &lines,
    );
    let options = json!({"tabSize": 2, "insertSpaces": true});
    ask(
        &mut server,
        -2,
        Formatting::METHOD,
        json!({"textDocument": document, "options": options}),
        &lines,
    );
    // Every quick fix of the document at once.
    let end = json!({"line": lines.len(), "character": 0});
    let whole = json!({"start": {"line": 0, "character": 0}, "end": end});
    ask(
        &mut server,
        -4,
        CodeActionRequest::METHOD,
        json!({"textDocument": document, "range": whole, "context": {"diagnostics": []}}),
        &lines,
    );
    let tokens = ask(
        &mut server,
        -3,
        SemanticTokensFullRequest::METHOD,
        json!({"textDocument": document}),
        &lines,
    );
    check_tokens(&tokens, &lines);
    assert!(lsp_types::Uri::from_str(URI).is_ok());
}

#[test]
fn every_position_of_every_example() {
    for text in [
        include_str!("../../pipelines/webapp/pipeline.stagecraft"),
        include_str!("../../pipelines/static-site/pipeline.stagecraft"),
        include_str!("../../pipelines/monorepo-lib/pipeline.stagecraft"),
        &PIECES.concat(),
    ] {
        every_position(text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5EED_0150),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_position_of_random_pieces(pieces in proptest::collection::vec(0..PIECES.len(), 0..10), cut in any::<usize>()) {
        let mut text: String = pieces.iter().map(|&i| PIECES[i]).collect();
        // Cut somewhere (on a char boundary), as a half-typed file is.
        if !text.is_empty() {
            let mut at = cut % text.len();
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.truncate(at.max(text.len() / 2));
        }
        every_position(&text);
    }
}

/// Secrets read as `$NAME` and `${NAME}`, and every other kind of name.
const SECRETS: &str = "pipeline p\nsecret token from env \"TOKEN\"\nvar region = \"eu\"\n\
                       env prod {\n  secret token from file \"t\"\n  region = \"us\"\n}\n\
                       env dev extends prod {}\nservice api { path = \"p\" }\n\
                       phase build { for each service when region == \"eu\" run \"curl $token ${token} {{service.path}} {{region}}\" }\n\
                       phase ship { after build[api] run \"echo $token\" }\nworkflow w { build ship }\n";

/// Renaming any declared name of an example leaves it meaning the same:
/// the same diagnostics (none) after the edits, and the new name written
/// once per edit.
#[test]
fn a_rename_keeps_every_example_valid() {
    for text in [
        include_str!("../../pipelines/webapp/pipeline.stagecraft"),
        include_str!("../../pipelines/static-site/pipeline.stagecraft"),
        include_str!("../../pipelines/monorepo-lib/pipeline.stagecraft"),
        include_str!("../../src/cli/templates/default.stagecraft"),
        SECRETS,
    ] {
        let codes = |text: &str| -> Vec<&str> {
            let compilation = crate::graph::compile(text);
            compilation.diagnostics.iter().map(|d| d.code.as_str()).collect()
        };
        let before = codes(text);
        assert!(before.is_empty(), "{before:?} in\n{text}");
        let index = crate::syntax::LineIndex::new(text);
        let mut server = open(text);
        let targets: std::collections::BTreeSet<(usize, usize)> = crate::graph::compile(text)
            .resolution
            .names()
            .iter()
            .filter(|n| n.definition && !matches!(n.kind, super::Kind::Pipeline | super::Kind::Workflow))
            .filter_map(|n| n.target)
            .map(|span| (span.start(), span.end()))
            .collect();
        assert!(targets.len() > 3, "the example declares names");
        for (id, &(start, end)) in targets.iter().enumerate() {
            let (line, character) = index.utf16(text, start);
            let params = json!({"textDocument": {"uri": URI}, "position": {"line": line, "character": character}, "newName": "renamed_x"});
            let id = i32::try_from(id).unwrap_or(i32::MAX);
            let response = server.request(Request::new(RequestId::from(id), Rename::METHOD.to_owned(), params));
            let result = response
                .response_result
                .unwrap_or_else(|e| panic!("at {line}:{character}: {e:?}"));
            let edits = result["changes"][URI].as_array().cloned().unwrap_or_default();
            let mut spans: Vec<(usize, usize)> = edits
                .iter()
                .map(|edit| {
                    let at = |p: &Value| {
                        let number = |key: &str| u32::try_from(p[key].as_u64().unwrap_or(0)).unwrap_or(0);
                        index.utf16_offset(text, number("line"), number("character"))
                    };
                    (at(&edit["range"]["start"]), at(&edit["range"]["end"]))
                })
                .collect();
            spans.sort_unstable_by_key(|&(start, _)| std::cmp::Reverse(start));
            let mut renamed = text.to_owned();
            for (start, end) in spans {
                renamed.replace_range(start..end, "renamed_x");
            }
            assert_eq!(codes(&renamed), before, "renaming at {line}:{character}:\n{renamed}");
            assert_eq!(renamed.matches("renamed_x").count(), edits.len());
            let old = &text[start..end];
            assert!(
                !renamed.contains(&format!("${old} ")) && !renamed.contains(&format!("${{{old}}}")),
                "a `$NAME` use of `{old}` is left:\n{renamed}"
            );
        }
    }
}
