//! The language server as an editor sees it: the real binary (`stagecraft
//! lsp`) spoken to over its stdin and stdout with JSON-RPC and
//! `Content-Length` framing. Answers are snapshotted as JSON.
//!
//! Also: the `TextMate` grammar of the VS Code extension, checked against a
//! sample file (see `textmate_grammar_scopes`).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{BIN, root};

pub(crate) const URI: &str = "file:///project/pipeline.stagecraft";
const BROKEN_URI: &str = "file:///project/broken.stagecraft";

/// A client talking to one server process.
pub(crate) struct Client {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
    /// Notifications read while waiting for something else.
    pending: Vec<Value>,
    next_id: i64,
}

impl Client {
    /// A started, initialized client with `text` open as `URI` (its
    /// first diagnostics read).
    pub(crate) fn open(text: &str) -> Self {
        let mut client = Self::start();
        client.initialize();
        client.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": URI, "languageId": "stagecraft", "version": 1, "text": text}}),
        );
        client.diagnostics(URI);
        client
    }

    pub(crate) fn start() -> Self {
        let mut child = Command::new(BIN)
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start stagecraft lsp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, messages) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut length = None;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 {
                        return;
                    }
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    if let Some(value) = header.strip_prefix("Content-Length: ") {
                        length = value.parse::<usize>().ok();
                    }
                }
                let mut body = vec![0; length.expect("a Content-Length header")];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let message: Value = serde_json::from_slice(&body).expect("a JSON message");
                if sender.send(message).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            stdin,
            messages,
            pending: Vec::new(),
            next_id: 1,
        }
    }

    fn send(&mut self, message: &Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("write to the server");
        self.stdin.flush().expect("flush");
    }

    pub(crate) fn notify(&mut self, method: &str, params: Value) {
        let mut message = json!({"jsonrpc": "2.0", "method": method});
        message["params"] = params;
        self.send(&message);
    }

    fn receive(&mut self) -> Value {
        self.messages
            .recv_timeout(Duration::from_secs(20))
            .expect("the server answered in time")
    }

    /// Sends a request and returns its whole response (`result` or `error`).
    pub(crate) fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = json!({"jsonrpc": "2.0", "id": id, "method": method});
        message["params"] = params;
        self.send(&message);
        loop {
            let message = self.receive();
            if message.get("id") == Some(&json!(id)) && message.get("method").is_none() {
                return message;
            }
            self.pending.push(message);
        }
    }

    pub(crate) fn request(&mut self, method: &str, params: Value) -> Value {
        let response = self.call(method, params);
        assert!(response.get("error").is_none(), "{method} failed: {response}");
        response["result"].clone()
    }

    /// The next diagnostics published for `uri`.
    pub(crate) fn diagnostics(&mut self, uri: &str) -> Value {
        let published = |m: &Value| m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri;
        if let Some(i) = self.pending.iter().position(published) {
            return self.pending.remove(i)["params"].clone();
        }
        loop {
            let message = self.receive();
            if published(&message) {
                return message["params"].clone();
            }
            self.pending.push(message);
        }
    }

    pub(crate) fn initialize(&mut self) -> Value {
        let result = self.request(
            "initialize",
            json!({"processId": null, "rootUri": "file:///project", "capabilities": {}}),
        );
        self.notify("initialized", json!({}));
        result
    }

    pub(crate) fn shutdown(mut self) -> i32 {
        assert_eq!(self.request("shutdown", Value::Null), Value::Null);
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn at(uri: &str, line: u32, character: u32) -> Value {
    json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}})
}

/// The file the session works on once fixed. Line numbers matter to the
/// requests below; the `🚀` on line 12 is two UTF-16 units.
const FIXED: &str = "pipeline shop

var registry = \"localhost:5000\"
var image = \"{{registry}}/shop\"

env dev {
  replicas = \"1\"
}
env prod extends dev {
  registry = \"registry.internal:5000\"
}
service api { path = \"services/api\" }
service worker { path = \"services/worker\" after api }

phase build {
  for each service
  run \"🚀 docker build -t {{image}}-{{service}} {{service.path}}\"
}
phase push { for each service after build run \"docker push {{image}}\" }
phase smoke { after push[api] run \"./smoke --replicas {{replicas}}\" }

workflow deploy { build push smoke }
";

/// `FIXED` with a syntax error on line 17 after the non-ASCII `🚀`: a stray
/// `,` after the string.
fn broken() -> String {
    FIXED.replace("{{service.path}}\"\n", "{{service.path}}\" ,\n")
}

/// One server through a whole session: edits and their diagnostics, the
/// navigation requests on the fixed file, then bad input it must survive.
#[test]
fn a_session() {
    let mut client = Client::start();
    let capabilities = client.initialize();
    insta::assert_json_snapshot!("initialize", capabilities);
    edits_and_their_diagnostics(&mut client);
    navigation_on_the_fixed_file(&mut client);
    bad_input_is_answered(&mut client);
    assert_eq!(client.shutdown(), 0);
}

/// Opens `URI` broken, fixes it incrementally, breaks it semantically and
/// fixes it again with full changes, checking the diagnostics each time;
/// leaves `FIXED` open.
fn edits_and_their_diagnostics(client: &mut Client) {
    // A broken file: one syntax error, positioned in UTF-16 units.
    let broken = broken();
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": URI, "languageId": "stagecraft", "version": 1, "text": broken}}),
    );
    let published = client.diagnostics(URI);
    insta::assert_json_snapshot!("diagnostics_broken", published);
    let range = &published["diagnostics"][0]["range"];
    let line = broken.lines().nth(16).expect("line 17");
    let column: usize = line[..=line.find(" ,").expect("the stray comma")]
        .chars()
        .map(char::len_utf16)
        .sum();
    assert_eq!(range["start"], json!({"line": 16, "character": column}));

    // An incremental change removes the comma: no diagnostics.
    let comma = u32::try_from(column).expect("small");
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 2}, "contentChanges": [
            {"range": {"start": {"line": 16, "character": comma - 1}, "end": {"line": 16, "character": comma + 1}}, "text": ""}
        ]}),
    );
    let published = client.diagnostics(URI);
    assert_eq!(published, json!({"uri": URI, "diagnostics": [], "version": 2}));

    // A full change with semantic errors: every diagnostic at once, with
    // codes, help and related information.
    let invalid = FIXED
        .replace("  for each service\n  run", "  for each service\n  after smoke\n  run")
        .replace(
            "workflow deploy { build push smoke }",
            "workflow deploy { build push smoke psuh }\nphase lint {}",
        );
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 3}, "contentChanges": [{"text": invalid}]}),
    );
    insta::assert_json_snapshot!("diagnostics_invalid", client.diagnostics(URI));

    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 4}, "contentChanges": [{"text": FIXED}]}),
    );
    assert_eq!(client.diagnostics(URI)["diagnostics"], json!([]));
}

/// Definition, references, hover, completion, outline and formatting on
/// `FIXED`, snapshotted.
fn navigation_on_the_fixed_file(client: &mut Client) {
    // Definition: a phase in `after`, a variable defined globally and in an
    // env, a service in `P[svc]`, an env after `extends`, a phase in a
    // workflow.
    let definitions = json!({
        "phase in after": client.request("textDocument/definition", at(URI, 18, 37)),
        "variable in {{}}": client.request("textDocument/definition", at(URI, 3, 16)),
        "service in P[svc]": client.request("textDocument/definition", at(URI, 19, 26)),
        "env after extends": client.request("textDocument/definition", at(URI, 8, 18)),
        "phase in workflow": client.request("textDocument/definition", at(URI, 21, 24)),
        "attribute in {{service.path}}": client.request("textDocument/definition", at(URI, 16, 60)),
        "`service` (built-in)": client.request("textDocument/definition", at(URI, 16, 40)),
    });
    insta::assert_json_snapshot!("definition", definitions);

    let mut references = at(URI, 14, 7);
    references["context"] = json!({"includeDeclaration": true});
    insta::assert_json_snapshot!("references", client.request("textDocument/references", references));

    let hovers = json!({
        "phase": client.request("textDocument/hover", at(URI, 18, 8)),
        "variable": client.request("textDocument/hover", at(URI, 3, 16)),
        "nothing": client.request("textDocument/hover", at(URI, 1, 0)),
    });
    insta::assert_json_snapshot!("hover", hovers);

    let completions = json!({
        "after `after`": client.request("textDocument/completion", at(URI, 18, 36)),
        "in a workflow": client.request("textDocument/completion", at(URI, 21, 18)),
        "inside {{": client.request("textDocument/completion", at(URI, 19, 56)),
        "inside {{service.": client.request("textDocument/completion", at(URI, 16, 58)),
        "after extends": client.request("textDocument/completion", at(URI, 8, 17)),
        "after P[": client.request("textDocument/completion", at(URI, 19, 25)),
    });
    insta::assert_json_snapshot!("completion", completions);

    insta::assert_json_snapshot!(
        "document_symbol",
        client.request("textDocument/documentSymbol", json!({"textDocument": {"uri": URI}}))
    );

    insta::assert_json_snapshot!(
        "formatting",
        client.request(
            "textDocument/formatting",
            json!({"textDocument": {"uri": URI}, "options": {"tabSize": 2, "insertSpaces": true}})
        )
    );
}

/// A document that does not parse, positions outside the text, bad
/// parameters, unknown methods and documents: answered, never fatal.
fn bad_input_is_answered(client: &mut Client) {
    // A file that does not parse: empty answers, and the server lives on.
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": BROKEN_URI, "languageId": "stagecraft", "version": 1, "text": "phase {"}}),
    );
    // (The parser recovers, so other diagnostics, such as the missing
    // `pipeline` line, come with the syntax error.)
    let broken = client.diagnostics(BROKEN_URI);
    assert!(
        broken["diagnostics"]
            .as_array()
            .is_some_and(|all| all.iter().any(|d| d["code"] == "stagecraft::syntax")),
        "{broken}"
    );
    let doc = json!({"textDocument": {"uri": BROKEN_URI}});
    assert_eq!(
        client.request("textDocument/definition", at(BROKEN_URI, 0, 1)),
        Value::Null
    );
    assert_eq!(client.request("textDocument/hover", at(BROKEN_URI, 0, 1)), Value::Null);
    // Nothing parsed, so the outline is empty (not unknown).
    assert_eq!(client.request("textDocument/documentSymbol", doc.clone()), json!([]));
    let mut formatting = doc.clone();
    formatting["options"] = json!({"tabSize": 2, "insertSpaces": true});
    assert_eq!(client.request("textDocument/formatting", formatting), Value::Null);
    // Positions far outside the text, bad parameters, unknown methods and
    // unknown documents are answered, not fatal.
    assert_eq!(client.request("textDocument/hover", at(URI, 9999, 9999)), Value::Null);
    assert_eq!(
        client.request("textDocument/definition", at("file:///nowhere", 0, 0)),
        Value::Null
    );
    assert_eq!(
        client.call("textDocument/hover", json!({"nonsense": 1}))["error"]["code"],
        -32602
    );
    assert_eq!(client.call("stagecraft/nothing", json!({}))["error"]["code"], -32601);
    client.notify("textDocument/didChange", json!({"garbage": true}));
    assert!(
        client
            .request("textDocument/documentSymbol", json!({"textDocument": {"uri": URI}}))
            .is_array()
    );
}

/// A broken declaration (the stray `,` in `build`) hides nothing else: the
/// outline lists every other declaration, and definition, references and
/// completion work on the names that parsed.
#[test]
fn a_broken_declaration_hides_nothing_else() {
    let mut client = Client::start();
    client.initialize();
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": URI, "languageId": "stagecraft", "version": 1, "text": broken()}}),
    );
    client.diagnostics(URI);
    let symbols = client.request("textDocument/documentSymbol", json!({"textDocument": {"uri": URI}}));
    let names: Vec<&str> = symbols
        .as_array()
        .expect("symbols")
        .iter()
        .map(|s| s["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(
        names,
        [
            "shop", "registry", "image", "dev", "prod", "api", "worker", "push", "smoke", "deploy"
        ]
    );
    // `push` and `api` in `phase smoke { after push[api] … }`.
    let push = client.request("textDocument/definition", at(URI, 19, 21));
    assert_eq!(push["range"]["start"], json!({"line": 18, "character": 6}), "{push}");
    let api = client.request("textDocument/definition", at(URI, 19, 25));
    assert_eq!(api["range"]["start"], json!({"line": 11, "character": 8}), "{api}");
    let mut references = at(URI, 18, 7);
    references["context"] = json!({"includeDeclaration": false});
    let references = client.request("textDocument/references", references);
    assert_eq!(references.as_array().map(Vec::len), Some(2), "{references}");
    // Completion after `after ` offers the broken phase's name too.
    let completion = client.request("textDocument/completion", at(URI, 19, 20));
    let offered: Vec<&str> = completion
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["label"].as_str().expect("a label"))
        .collect();
    assert_eq!(offered, ["build", "push", "smoke"]);
    assert_eq!(client.shutdown(), 0);
}

// ---- the TextMate grammar ------------------------------------------------------

/// Checks `editors/vscode/syntaxes/stagecraft.tmLanguage.json` without a
/// `TextMate` engine (none is available offline, and no regex crate is a
/// dependency).
///
/// What it proves: the grammar is JSON with the structure VS Code expects;
/// every `include` names a rule of its repository; every rule has a scope
/// from the expected set; every keyword of `grammar/stagecraft.pest`
/// (`kw_*`) is in the keyword rule; the comment rule is not reachable from
/// inside either string rule (so `#` in a string is not a comment; at the
/// top level a string's opening quote comes before any `#` in it, and
/// `TextMate` takes the leftmost match); interpolations are reachable from
/// both string rules; and the `"""` rule comes before the `"` rule (so a
/// triple string is not read as an empty string and a quote). That each
/// regex compiles and scopes the examples as it should under Oniguruma is
/// `tests/textmate.rs`, which runs the grammar with `vscode-textmate`.
#[test]
fn textmate_grammar_scopes() {
    let path = root().join("editors/vscode/syntaxes/stagecraft.tmLanguage.json");
    let text = std::fs::read_to_string(&path).expect("the grammar exists");
    let grammar: Value = serde_json::from_str(&text).expect("the grammar is JSON");
    assert_eq!(grammar["scopeName"], "source.stagecraft");
    let repository = grammar["repository"].as_object().expect("a repository");

    // Every include resolves.
    let mut top = Vec::new();
    reachable(&grammar, repository, &mut top);
    for name in [
        "comment",
        "keyword",
        "string-triple",
        "string-double",
        "interpolation",
        "duration",
        "operator",
    ] {
        assert!(top.contains(&name), "rule {name} is not used at the top level");
    }
    for string in ["string-triple", "string-double"] {
        let mut inside = Vec::new();
        reachable(&repository[string], repository, &mut inside);
        assert!(!inside.contains(&"comment"), "a comment can start inside {string}");
        assert!(
            inside.contains(&"interpolation"),
            "{string} does not highlight {{{{…}}}}"
        );
    }
    let order: Vec<&str> = grammar["patterns"]
        .as_array()
        .expect("top-level patterns")
        .iter()
        .filter_map(|p| p["include"].as_str())
        .collect();
    let position = |name: &str| order.iter().position(|p| *p == name).unwrap_or(usize::MAX);
    assert!(position("#string-triple") < position("#string-double"), "{order:?}");

    // Scopes: every named thing uses one of the expected roots.
    let mut names = Vec::new();
    collect(&grammar["repository"], &mut names);
    for expected in [
        "comment.line.number-sign.stagecraft",
        "keyword.control.stagecraft",
        "string.quoted.double.stagecraft",
        "string.quoted.triple.stagecraft",
        "variable.other.interpolation.stagecraft",
        "punctuation.section.interpolation.begin.stagecraft",
        "constant.numeric.duration.stagecraft",
        "keyword.operator.logical.stagecraft",
        "entity.name.function.phase.stagecraft",
        "constant.character.escape.stagecraft",
    ] {
        assert!(names.contains(&expected), "no rule is scoped {expected}");
    }
    for name in &names {
        assert!(name.ends_with(".stagecraft"), "scope {name} lacks the language suffix");
    }

    // Every keyword of the pest grammar is highlighted.
    let pest = std::fs::read_to_string(root().join("grammar/stagecraft.pest")).expect("the pest grammar");
    let keyword_rule = repository["keyword"]["match"].as_str().expect("a keyword match");
    for line in pest.lines().filter(|l| l.starts_with("kw_")) {
        let word = line.split('"').nth(1).expect("a keyword literal");
        assert!(
            keyword_rule.contains(&format!("|{word}|"))
                || keyword_rule.contains(&format!("({word}|"))
                || keyword_rule.contains(&format!("|{word})")),
            "keyword `{word}` is not highlighted by {keyword_rule}"
        );
    }
}

/// The repository rules reachable from `rule`; panics on an include of a
/// rule that does not exist.
fn reachable<'a>(rule: &'a Value, repository: &'a serde_json::Map<String, Value>, seen: &mut Vec<&'a str>) {
    for pattern in rule["patterns"].as_array().into_iter().flatten() {
        if let Some(include) = pattern["include"].as_str() {
            let name = include
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("unsupported include {include}"));
            let target = repository
                .get(name)
                .unwrap_or_else(|| panic!("include of unknown rule {name}"));
            if !seen.contains(&name) {
                seen.push(name);
                reachable(target, repository, seen);
            }
        } else {
            reachable(pattern, repository, seen);
        }
    }
}

/// Every `name` and `contentName` in a grammar value.
fn collect<'a>(value: &'a Value, names: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if (key == "name" || key == "contentName") && inner.is_string() {
                    names.push(inner.as_str().unwrap_or_default());
                } else {
                    collect(inner, names);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect(i, names)),
        _ => {}
    }
}

// ---- line endings --------------------------------------------------------------

/// A file with classic Mac line endings (a lone `\r` each): the terminal,
/// `check --format json` and the language server put its error on the same
/// line, and at the same column after a non-ASCII `é` (a character for
/// people, one UTF-16 unit for editors, two bytes).
#[test]
fn lone_cr_lines_agree_everywhere() {
    let text = "pipeline shop\r\rphase build {\r  run \"é\" after biuld\r}\rworkflow deploy { build }\r";
    let human = crate::support::Test::new()
        .file("pipeline.stagecraft", text)
        .args(["check", "-f", "pipeline.stagecraft"])
        .status(2)
        .run();
    assert!(
        human.stderr.contains("[pipeline.stagecraft:4:17]"),
        "{}",
        human.transcript()
    );
    assert!(
        human.stderr.contains(" 4 │   run \"é\" after biuld\n"),
        "{}",
        human.transcript()
    );
    assert!(!human.stderr.contains('\r'), "{}", human.transcript());

    let json = crate::support::Test::new()
        .file("pipeline.stagecraft", text)
        .args(["check", "--format", "json", "-f", "pipeline.stagecraft"])
        .status(2)
        .run()
        .json();
    let label = &json["diagnostics"][0]["labels"][0];
    assert_eq!((&label["line"], &label["column"]), (&json!(4), &json!(17)), "{json}");

    let mut client = Client::start();
    client.initialize();
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": URI, "languageId": "stagecraft", "version": 1, "text": text}}),
    );
    let published = client.diagnostics(URI);
    assert_eq!(
        published["diagnostics"][0]["range"]["start"],
        json!({"line": 3, "character": 16}),
        "{published}"
    );
    assert_eq!(client.shutdown(), 0);
}

/// Secrets are completed after `$` in a command and hovered with where
/// they come from; no value is ever read or shown.
#[test]
fn secrets_are_completed_and_hovered_without_values() {
    let text = "pipeline shop\nsecret api_token from env \"SHOP_TOKEN\"\nenv prod {\n  secret db_password from file \"db.pw\"\n}\nphase notify {\n  run \"curl -H $\"\n}\nworkflow deploy { notify }\n";
    let mut client = Client::open(text);
    let completion = client.request("textDocument/completion", at(URI, 6, 16));
    let offered: Vec<(&str, &str)> = completion
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["label"].as_str().expect("a label"),
                i["detail"].as_str().expect("a detail"),
            )
        })
        .collect();
    let detail = "secret (read as an environment variable)";
    assert_eq!(offered, [("api_token", detail), ("db_password", detail)]);
    let hover = client.request("textDocument/hover", at(URI, 3, 12));
    let hover = hover["contents"]["value"].as_str().expect("a hover");
    assert!(hover.starts_with("**secret** `db_password`"), "{hover}");
    assert!(
        hover.contains("secret db_password from file \"db.pw\"  # env prod"),
        "{hover}"
    );
    assert!(hover.contains("commands read it as `$db_password`"), "{hover}");
    // `$api_token` in a command is a use of the secret: hover and definition.
    let text_line = "  run \"curl -H $api_token\"";
    let client_text = text.replace("  run \"curl -H $\"", text_line);
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 2}, "contentChanges": [{"text": client_text}]}),
    );
    client.diagnostics(URI);
    let hover = client.request("textDocument/hover", at(URI, 6, 20));
    let hover = hover["contents"]["value"].as_str().expect("a hover");
    assert!(hover.contains("secret api_token from env \"SHOP_TOKEN\""), "{hover}");
    let definition = client.request("textDocument/definition", at(URI, 6, 20));
    assert_eq!(
        definition["range"]["start"],
        json!({"line": 1, "character": 7}),
        "{definition}"
    );
    assert_eq!(client.shutdown(), 0);
}

/// Completion offers the `finally` clause where a clause may start in a
/// phase, and the built-in `outcome` in a condition.
#[test]
fn finally_and_outcome_are_completed() {
    let text = "pipeline shop\nphase notify {\n  \n  when \n  run \"echo {{\"\n}\nworkflow deploy { notify }\n";
    let mut client = Client::open(text);
    let labels = |client: &mut Client, line, character| -> Vec<(String, i64)> {
        let items = client.request("textDocument/completion", at(URI, line, character));
        items
            .as_array()
            .expect("items")
            .iter()
            .map(|i| {
                (
                    i["label"].as_str().expect("a label").to_owned(),
                    i["kind"].as_i64().expect("a kind"),
                )
            })
            .collect()
    };
    // Kind 14 is `Keyword`, 21 `Constant`.
    assert_eq!(labels(&mut client, 2, 2), [("finally".to_owned(), 14)]);
    assert!(labels(&mut client, 3, 7).contains(&("outcome".to_owned(), 21)));
    assert!(labels(&mut client, 4, 14).contains(&("outcome".to_owned(), 21)));
    assert_eq!(client.shutdown(), 0);
}
