//! The language server's edits, against the real binary: quick fixes
//! (a "did you mean", a phase added to a workflow), rename (and its
//! refusals), and semantic tokens decoded.

use serde_json::{Value, json};

use crate::lsp::{Client, URI, at};

/// The byte offset of an LSP position in an ASCII text.
fn offset(text: &str, position: &Value) -> usize {
    let line = usize::try_from(position["line"].as_u64().expect("a line")).expect("small");
    let character = usize::try_from(position["character"].as_u64().expect("a column")).expect("small");
    let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
    start + character
}

/// `text` with `edits` (LSP text edits on an ASCII text) applied.
fn apply(text: &str, edits: &Value) -> String {
    let mut edits: Vec<(usize, usize, &str)> = edits
        .as_array()
        .expect("edits")
        .iter()
        .map(|edit| {
            (
                offset(text, &edit["range"]["start"]),
                offset(text, &edit["range"]["end"]),
                edit["newText"].as_str().expect("new text"),
            )
        })
        .collect();
    edits.sort_by_key(|&(start, _, _)| std::cmp::Reverse(start));
    let mut out = text.to_owned();
    for (start, end, new) in edits {
        out.replace_range(start..end, new);
    }
    out
}

fn actions_at(client: &mut Client, line: u32, character: u32) -> Value {
    let point = json!({"line": line, "character": character});
    client.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": URI}, "range": {"start": point, "end": point}, "context": {"diagnostics": []}}),
    )
}

const TYPO: &str = "pipeline shop
service api {}
phase build { for each service run \"make\" }
phase push { after biuld run \"push {{verison}}\" }
phase lint { run \"lint\" }
phase ship { after build[api] }
workflow deploy { build push ship }
workflow quick {}
workflow nightly { build push ship aaaaaaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbbbbbb cccccccccccccccccccc }
phase aaaaaaaaaaaaaaaaaaaa {}
phase bbbbbbbbbbbbbbbbbbbb {}
phase cccccccccccccccccccc {}
";

/// A misspelt phase and variable: the quick fix replaces the name with the
/// one the help suggests.
#[test]
fn a_quick_fix_applies_did_you_mean() {
    let mut client = Client::open(TYPO);
    let actions = actions_at(&mut client, 3, 21);
    insta::assert_json_snapshot!("code_action_did_you_mean", actions);
    let action = &actions[0];
    assert_eq!(action["title"], "Replace `biuld` with `build`");
    assert_eq!(action["kind"], "quickfix");
    assert_eq!(action["isPreferred"], true);
    assert_eq!(action["diagnostics"][0]["code"], "stagecraft::unknown-phase");
    let fixed = apply(TYPO, &action["edit"]["changes"][URI]);
    assert!(fixed.contains("phase push { after build run"), "{fixed}");
    // A variable: `{{verison}}` → `version`.
    let actions = actions_at(&mut client, 3, 37);
    let titles: Vec<&str> = actions
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(|a| a["title"].as_str())
        .collect();
    assert_eq!(titles, ["Replace `verison` with `version`"]);
    // Nothing to fix on a line without a problem.
    assert_eq!(actions_at(&mut client, 2, 8), json!([]));
    // A client that asks only for refactorings gets none.
    let point = json!({"line": 3, "character": 21});
    let only = client.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": URI}, "range": {"start": point, "end": point},
               "context": {"diagnostics": [], "only": ["refactor"]}}),
    );
    assert_eq!(only, json!([]));
    assert_eq!(client.shutdown(), 0);
}

/// A phase in no workflow (`unused-phase`): one action per workflow adds
/// it, laid out as `fmt` lays the workflow out.
#[test]
fn an_unused_phase_is_added_to_a_workflow() {
    let mut client = Client::open(TYPO);
    let actions = actions_at(&mut client, 4, 7);
    let actions = actions.as_array().expect("actions");
    let titles: Vec<&str> = actions.iter().filter_map(|a| a["title"].as_str()).collect();
    assert_eq!(
        titles,
        [
            "Add `lint` to workflow `deploy`",
            "Add `lint` to workflow `quick`",
            "Add `lint` to workflow `nightly`"
        ]
    );
    let edits: Vec<&Value> = actions.iter().map(|a| &a["edit"]["changes"][URI]).collect();
    insta::assert_json_snapshot!("code_action_add_to_workflow", edits);
    assert_eq!(actions[0]["diagnostics"][0]["code"], "stagecraft::unused-phase");
    assert_eq!(
        edits[0],
        &json!([{"range": {"start": {"line": 6, "character": 34}, "end": {"line": 6, "character": 34}}, "newText": "lint "}])
    );
    let added = |edit: &Value| apply(TYPO, edit);
    assert!(added(edits[0]).contains("workflow deploy { build push ship lint }\n"));
    assert!(added(edits[1]).contains("workflow quick { lint }\n"));
    // Over 100 columns: one phase per line, as `fmt` writes it.
    assert!(
        added(edits[2]).contains(
            "workflow nightly {\n  build\n  push\n  ship\n  aaaaaaaaaaaaaaaaaaaa\n  bbbbbbbbbbbbbbbbbbbb\n  cccccccccccccccccccc\n  lint\n}\n"
        ),
        "{}",
        added(edits[2])
    );
    assert_eq!(client.shutdown(), 0);
}

const RENAME: &str = "pipeline shop
var region = \"eu\"
secret token from env \"TOKEN\"
env prod {
  region = \"us\"
  secret token from file \"token.txt\"
}
env dev extends prod {}
service api { path = \"api\" }
service web { after api }
phase build { for each service run \"make {{region}} {{service.path}}\" }
phase push { after build[api] when region == \"eu\" run \"push $token ${token} {{version}}\" }
workflow deploy { build push }
";

/// Replaces the whole text of the document at `URI`, as version `version`.
fn replace_text(client: &mut Client, version: i32, text: &str) {
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": version}, "contentChanges": [{"text": text}]}),
    );
}

fn rename(client: &mut Client, line: u32, character: u32, new: &str) -> Value {
    let mut params = at(URI, line, character);
    params["newName"] = json!(new);
    client.call("textDocument/rename", params)
}

/// Rename across the file: every declaration and use, from the checker's
/// table; a secret's `$NAME` uses too.
#[test]
fn rename_changes_every_declaration_and_use() {
    let mut client = Client::open(RENAME);
    let prepared = client.request("textDocument/prepareRename", at(URI, 11, 20));
    assert_eq!(
        prepared,
        json!({"start": {"line": 11, "character": 19}, "end": {"line": 11, "character": 24}})
    );
    let renamed = |client: &mut Client, line, character, new| {
        let answer = rename(client, line, character, new);
        assert!(answer.get("error").is_none(), "{answer}");
        apply(RENAME, &answer["result"]["changes"][URI])
    };
    // A phase, from a use in `after build[api]`.
    let text = renamed(&mut client, 11, 20, "compile");
    assert!(text.contains("phase compile {"), "{text}");
    assert!(text.contains("after compile[api]"), "{text}");
    assert!(text.contains("workflow deploy { compile push }"), "{text}");
    assert!(!text.contains("build"), "{text}");
    // A variable, from its global declaration: env values and uses too.
    let text = renamed(&mut client, 1, 5, "zone");
    assert_eq!(text.matches("zone").count(), 4, "{text}");
    assert!(!text.contains("region"), "{text}");
    // A service, an env, a service attribute.
    assert!(renamed(&mut client, 8, 9, "backend").contains("after backend }"));
    assert!(renamed(&mut client, 7, 17, "production").contains("env production {"));
    assert!(renamed(&mut client, 10, 62, "dir").contains("service api { dir = \"api\" }"));
    // A secret: both declarations, `$token` and `${token}`.
    let text = renamed(&mut client, 2, 8, "api_key");
    assert_eq!(text.matches("api_key").count(), 4, "{text}");
    assert!(text.contains("push $api_key ${api_key} {{version}}"), "{text}");
    assert_eq!(client.shutdown(), 0);
}

/// Refusals: a name that exists in the namespace, one that is not a name,
/// a built-in, and names that are not renamed here. Each is an error with
/// a message an editor shows.
#[test]
fn rename_refuses_clashes_invalid_names_and_built_ins() {
    let mut client = Client::open(RENAME);
    let refused = |answer: Value| {
        assert_eq!(answer["error"]["code"], -32803, "{answer}");
        answer["error"]["message"].as_str().expect("a message").to_owned()
    };
    let message = refused(rename(&mut client, 10, 7, "push"));
    assert_eq!(message, "a phase named `push` already exists");
    // Variables and secrets share `{{name}}`: one cannot take the other's name.
    let message = refused(rename(&mut client, 1, 5, "token"));
    assert_eq!(message, "a secret named `token` already exists");
    let message = refused(rename(&mut client, 10, 7, "2fast"));
    assert!(message.starts_with("`2fast` is not a valid name"), "{message}");
    let message = refused(rename(&mut client, 1, 5, "version"));
    assert_eq!(message, "`version` is a built-in variable");
    let message = refused(rename(&mut client, 2, 8, "api-key"));
    assert!(message.starts_with("`api-key` cannot be a secret's name"), "{message}");
    // `{{version}}` is a built-in.
    let message = refused(client.call("textDocument/prepareRename", at(URI, 11, 79)));
    assert_eq!(message, "`version` is a built-in variable: it cannot be renamed");
    let message = refused(rename(&mut client, 12, 11, "ship"));
    assert!(message.starts_with("a workflow cannot be renamed here"), "{message}");
    // Nothing at the position: nothing to rename.
    assert_eq!(client.request("textDocument/prepareRename", at(URI, 0, 3)), Value::Null);
    // A use that resolves to nothing (a typo) would quietly name the phase
    // renamed to it; so would the variable's, were `{{zone}}` a typo.
    let typos = format!("{RENAME}phase late {{ after biuld run \"echo {{{{zone}}}}\" }}\n");
    replace_text(&mut client, 2, &typos);
    let message = refused(rename(&mut client, 10, 7, "biuld"));
    assert_eq!(
        message,
        "`biuld` is used on line 14 where no phase of that name is declared: renamed, that use would name this one; fix it first"
    );
    let message = refused(rename(&mut client, 1, 5, "zone"));
    assert!(
        message.starts_with("`zone` is used on line 14 where no variable"),
        "{message}"
    );
    // Another name is still fine.
    assert!(rename(&mut client, 10, 7, "compile").get("error").is_none());
    // A declaration that does not parse may use the name: no rename.
    let broken = format!("{RENAME}phase broken {{ after build, }}\n");
    replace_text(&mut client, 3, &broken);
    let message = refused(rename(&mut client, 10, 7, "compile"));
    assert!(
        message.starts_with("the file has a syntax error: fix it first"),
        "{message}"
    );
    assert_eq!(client.shutdown(), 0);
}

/// Semantic tokens of a small file, decoded from their relative encoding.
#[test]
fn semantic_tokens_type_declarations_and_references() {
    let text = "pipeline p\nvar region = \"eu\"\nsecret token from env \"T\"\nenv prod {}\nenv dev extends prod {}\n\
                phase build { run \"🚀 {{region}} $token {{version}}\" }\nphase push { after build }\n\
                workflow deploy { build push }\n";
    let mut client = Client::start();
    let initialize = client.initialize();
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": URI, "languageId": "stagecraft", "version": 1, "text": text}}),
    );
    let legend = &initialize["capabilities"]["semanticTokensProvider"]["legend"];
    let types: Vec<&str> = legend["tokenTypes"]
        .as_array()
        .expect("types")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let modifiers: Vec<&str> = legend["tokenModifiers"]
        .as_array()
        .expect("modifiers")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let tokens = client.request(
        "textDocument/semanticTokens/full",
        json!({"textDocument": {"uri": URI}}),
    );
    let data: Vec<u64> = tokens["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    let lines: Vec<&str> = text.lines().collect();
    let (mut line, mut column) = (0, 0);
    let mut decoded = Vec::new();
    for token in data.chunks(5) {
        if token[0] > 0 {
            column = 0;
        }
        line += token[0];
        column += token[1];
        let line_text: Vec<u16> = lines[usize::try_from(line).expect("small")].encode_utf16().collect();
        let start = usize::try_from(column).expect("small");
        let end = start + usize::try_from(token[2]).expect("small");
        let word = String::from_utf16(&line_text[start..end]).expect("a word");
        let kind = types[usize::try_from(token[3]).expect("small")];
        let mods: Vec<&str> = (0..modifiers.len())
            .filter(|i| token[4] & (1 << i) != 0)
            .map(|i| modifiers[i])
            .collect();
        decoded.push(format!("{line}:{column} {word} {kind} {}", mods.join(",")));
    }
    assert_eq!(
        decoded,
        [
            "1:4 region variable declaration",
            "2:7 token variable declaration,readonly",
            "3:4 prod namespace declaration",
            "4:4 dev namespace declaration",
            "4:16 prod namespace ",
            "5:6 build function declaration",
            "5:24 region variable ",
            "5:34 token variable readonly",
            "5:42 version variable defaultLibrary",
            "6:6 push function declaration",
            "6:19 build function ",
            "7:9 deploy event declaration",
            "7:18 build function ",
            "7:24 push function ",
        ]
    );
    assert_eq!(client.shutdown(), 0);
}
