//! The VS Code grammar under the engine VS Code runs: `editors/vscode/test/tokenize.js`
//! tokenizes every example (`pipelines/*/pipeline.stagecraft`, the `init` templates and the
//! extension's sample file) with `vscode-textmate` and `vscode-oniguruma`, and each file's
//! tokens and scopes are a snapshot (`tests/snapshots/integration__textmate__*.snap`). The
//! script fails when Oniguruma rejects a pattern or when text outside blanks gets no scope but
//! the root; two tests prove both with a broken copy of the grammar.
//!
//! The npm packages come from `npm ci` in `editors/vscode/test` (`.ci/run` does it). Without
//! them these tests are skipped with a message, except in CI (`CI` set), where they fail.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Once;

use serde_json::Value;

use crate::support::root;

/// The tokenizer's folder, or `None` (after saying so) when its packages are not installed
/// outside CI.
fn tokenizer() -> Option<PathBuf> {
    static SAID: Once = Once::new();
    let dir = root().join("editors/vscode/test");
    if dir.join("node_modules/vscode-textmate").is_dir() && dir.join("node_modules/vscode-oniguruma").is_dir() {
        return Some(dir);
    }
    let hint = "run `npm ci` in editors/vscode/test";
    assert!(
        std::env::var_os("CI").is_none(),
        "the grammar tests need node_modules in CI: {hint}"
    );
    // Straight to the process's stderr: the test harness captures `eprintln!` of a passing test.
    SAID.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: the VS Code grammar is not tokenized: {hint}"
        );
    });
    None
}

/// Starts `node tokenize.js [--grammar GRAMMAR] FILE`.
fn start(dir: &Path, grammar: Option<&Path>, file: &Path) -> std::process::Child {
    let mut command = Command::new("node");
    command.current_dir(dir).arg("tokenize.js");
    if let Some(grammar) = grammar {
        command.arg("--grammar").arg(grammar);
    }
    command
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs (it is needed for the grammar tests)")
}

fn finish(child: std::process::Child) -> Output {
    child.wait_with_output().expect("node ends")
}

/// Every example, by path from the project root, in a stable order.
fn examples() -> Vec<String> {
    let mut files = Vec::new();
    for (dir, pick) in [("pipelines", Some("pipeline.stagecraft")), ("src/cli/templates", None)] {
        let mut found: Vec<String> = std::fs::read_dir(root().join(dir))
            .expect("the examples' folder")
            .map(|entry| entry.expect("an entry").path())
            .filter_map(|path| match pick {
                Some(name) => Some(path.join(name)).filter(|p| p.is_file()),
                None => Some(path).filter(|p| p.extension().is_some_and(|e| e == "stagecraft")),
            })
            .map(|path| {
                let relative = path.strip_prefix(root()).expect("under the root");
                relative.to_string_lossy().into_owned()
            })
            .collect();
        found.sort();
        files.extend(found);
    }
    files.push("editors/vscode/sample.stagecraft".to_owned());
    files
}

#[test]
fn every_example_tokenizes_with_its_scopes() {
    let Some(dir) = tokenizer() else { return };
    let files = examples();
    assert!(files.len() >= 6, "{files:?}");
    // One node process per file, all at once: the test takes as long as the slowest.
    let children: Vec<_> = files.iter().map(|f| start(&dir, None, &root().join(f))).collect();
    for (file, child) in files.iter().zip(children) {
        let output = finish(child);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{file}: {}\n{stderr}", output.status);
        let name = file
            .trim_end_matches(".stagecraft")
            .trim_end_matches("/pipeline")
            .replace('/', "-");
        let stdout = String::from_utf8(output.stdout).expect("UTF-8 tokens");
        insta::assert_snapshot!(name, stdout, file);
    }
}

/// Runs the tokenizer on the `default` template with the grammar changed by `edit`.
fn with_grammar(edit: impl FnOnce(&mut Value)) -> Option<Output> {
    let dir = tokenizer()?;
    let path = root().join("editors/vscode/syntaxes/stagecraft.tmLanguage.json");
    let mut grammar: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("the grammar")).expect("JSON");
    edit(&mut grammar);
    let scratch = tempfile::tempdir().expect("a temporary folder");
    let broken = scratch.path().join("broken.tmLanguage.json");
    std::fs::write(&broken, grammar.to_string()).expect("write the broken grammar");
    let file = root().join("src/cli/templates/default.stagecraft");
    Some(finish(start(&dir, Some(&broken), &file)))
}

#[test]
fn a_pattern_oniguruma_rejects_fails() {
    let Some(output) = with_grammar(|g| {
        g["repository"]["phase-keyword"]["match"] = Value::from("(when|run");
    }) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("patterns Oniguruma rejects"), "{stderr}");
    assert!(stderr.contains("repository.phase-keyword.match"), "{stderr}");
}

#[test]
fn text_left_without_a_scope_fails() {
    // A pattern that never matches: the phases listed in a workflow lose their scope.
    let Some(output) = with_grammar(|g| {
        let patterns = g["repository"]["workflow-block"]["patterns"]
            .as_array_mut()
            .expect("patterns");
        let names = patterns.last_mut().expect("the pattern of names");
        assert_eq!(names["name"], "entity.name.function.phase.stagecraft");
        names["match"] = Value::from("(?!)");
    }) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no scope but the root"), "{stderr}");
    assert!(
        stderr.contains("default.stagecraft:81:17: \" build push \""),
        "{stderr}"
    );
}
