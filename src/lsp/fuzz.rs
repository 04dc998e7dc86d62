//! The server's requests at every position of a document, as an editor may
//! send them: definition, references, hover and completion at each line
//! and UTF-16 column (and past the end of each line and of the file),
//! then symbols and formatting, on the examples and on random texts made
//! of valid and broken pieces. No request may panic or answer an error,
//! and every range answered must lie inside the document.

use std::str::FromStr as _;

use lsp_server::{Notification, Request, RequestId};
use lsp_types::notification::{DidOpenTextDocument, Notification as _};
use lsp_types::request::{
    Completion, DocumentSymbolRequest, Formatting, GotoDefinition, HoverRequest, References, Request as _,
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

/// One request; it must not answer an error.
fn ask(server: &mut Server, id: i32, method: &str, params: Value, lines: &[u32]) {
    let response = server.request(Request::new(RequestId::from(id), method.to_owned(), params));
    match response.response_result {
        Ok(result) => check_ranges(&result, lines, method),
        Err(error) => panic!("{method}: {error:?}"),
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
