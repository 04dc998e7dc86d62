//! No panic reaches a user: closed pipes, huge diagnostics, control
//! characters, and the panic hook (`spec/commands/README.md`).

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{BIN, Test};

const FILE: &str = "pipeline.stagecraft";

/// Two phases that print enough to fill any pipe buffer; `b` fails when
/// `fail` is set.
fn pipeline(fail: bool) -> String {
    format!(
        r#"pipeline p

env dev {{}}

phase a {{
  run "seq 1 20000"
}}
phase b {{
  after a
  run "seq 1 20000{}"
}}
workflow deploy {{ a b }}
"#,
        if fail { "; exit 1" } else { "" }
    )
}

/// Which of the binary's output streams are pipes closed before it runs.
#[derive(Clone, Copy)]
enum Closed {
    Stdout,
    Stderr,
    Both,
}

/// Runs the binary in `dir` with the read end of the `closed` stream(s)
/// closed before it writes anything (the other goes to `/dev/null`), and
/// returns its exit code.
fn run_closed(dir: &Path, args: &[&str], closed: Closed) -> i32 {
    let (out, err) = match closed {
        Closed::Stdout => (Stdio::piped(), Stdio::null()),
        Closed::Stderr => (Stdio::null(), Stdio::piped()),
        Closed::Both => (Stdio::piped(), Stdio::piped()),
    };
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("STAGECRAFT_STATE_DIR")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("run the stagecraft binary");
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().expect("wait for stagecraft");
    status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {status:?}"))
}

fn temp_with(source: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    std::fs::write(dir.path().join(FILE), source).expect("write the pipeline");
    dir
}

// ---- closed pipes ----------------------------------------------------------

#[test]
fn a_deploy_into_closed_pipes_keeps_its_exit_code_and_its_record() {
    for (fail, code) in [(false, 0), (true, 3)] {
        let dir = temp_with(&pipeline(fail));
        for closed in [Closed::Stdout, Closed::Stderr, Closed::Both] {
            let status = run_closed(dir.path(), &["deploy", "--env", "dev", "--version", "p1"], closed);
            assert_eq!(status, code, "fail={fail}");
        }
        let list = Command::new(BIN)
            .args(["releases", "list", "--format", "json"])
            .current_dir(dir.path())
            .env_remove("STAGECRAFT_STATE_DIR")
            .output()
            .expect("run releases list");
        let list: serde_json::Value = serde_json::from_slice(&list.stdout).expect("a JSON list");
        let statuses: Vec<&str> = list
            .as_array()
            .expect("an array")
            .iter()
            .map(|r| r["status"].as_str().expect("a status"))
            .collect();
        let expected = if fail { "failed" } else { "completed" };
        assert_eq!(statuses, [expected; 3], "fail={fail}");
    }
}

#[test]
fn the_head_of_a_deploy_s_stderr_is_read_and_the_exit_code_kept() {
    // `stagecraft deploy 2>&1 >/dev/null | head -2`
    let dir = temp_with(&pipeline(true));
    let mut child = Command::new(BIN)
        .args(["deploy", "--env", "dev", "--version", "p1"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env_remove("STAGECRAFT_STATE_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the stagecraft binary");
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("a pipe"));
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut first).expect("read a line");
    assert_eq!(first, "▶ a\n");
    drop(stderr);
    assert_eq!(child.wait().expect("wait").code(), Some(3));
}

#[test]
fn check_and_plan_into_closed_pipes_keep_their_exit_codes() {
    let dir = temp_with(&pipeline(false));
    for closed in [Closed::Stdout, Closed::Stderr, Closed::Both] {
        assert_eq!(run_closed(dir.path(), &["check"], closed), 0);
        assert_eq!(run_closed(dir.path(), &["plan", "--env", "dev"], closed), 0);
        assert_eq!(
            run_closed(dir.path(), &["plan", "--env", "dev", "--format", "json"], closed),
            0
        );
        assert_eq!(run_closed(dir.path(), &["plan", "--env", "nope"], closed), 1);
    }
    let broken = temp_with("pipeline p\n\nenv dev {}\n\nphase a {\n  after b\n  run \"x\"\n}\n");
    for closed in [Closed::Stdout, Closed::Stderr, Closed::Both] {
        assert_eq!(run_closed(broken.path(), &["check"], closed), 2);
        assert_eq!(run_closed(broken.path(), &["check", "--format", "json"], closed), 2);
        assert_eq!(run_closed(broken.path(), &["plan", "--env", "dev"], closed), 2);
    }
}

// ---- the panic hook ----------------------------------------------------------

#[cfg(debug_assertions)]
#[test]
fn a_panic_is_a_short_report_and_exit_5() {
    let output = Command::new(BIN)
        .arg("check")
        .env("STAGECRAFT_DEBUG_PANIC", "boom \u{1b}[2J")
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run the stagecraft binary");
    assert_eq!(output.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        stderr.starts_with(&format!(
            "error: internal error in stagecraft {version}: panicked at src/cli/"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(": boom \\x1b[2J\nhelp: this is a bug in stagecraft; please report it"),
        "{stderr}"
    );
    assert!(!stderr.contains("backtrace"), "{stderr}");
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
}

#[test]
fn usage_errors_are_not_panics() {
    Test::new().args(["plan"]).status(1).stderr_contains("--env").run();
}

// ---- control characters --------------------------------------------------------

#[test]
fn control_characters_of_phase_output_are_escaped_on_screen_and_raw_in_the_log() {
    let source = r#"pipeline p

env dev {}

phase a {
  run "printf 'plain\\ttab\\n\\033[31mred\\033[0m\\r\\nbell\\007\\n'; exit 1"
}
workflow deploy { a }
"#;
    let dir = temp_with(source);
    let output = Command::new(BIN)
        .args(["deploy", "--env", "dev", "--version", "v\u{1b}]0;title\u{7}"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env_remove("STAGECRAFT_STATE_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("run the stagecraft binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert_eq!(stdout, "a | plain\ttab\na | \\x1b[31mred\\x1b[0m\na | bell\\x07\n");
    assert!(stderr.contains("version v\\x1b]0;title\\x07\n"), "{stderr}");
    assert!(
        stderr.contains("last lines of its output:\n  | plain\ttab\n  | \\x1b[31mred\\x1b[0m\n  | bell\\x07\n"),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    let log = stderr
        .lines()
        .find_map(|l| l.strip_prefix("log: "))
        .expect("a log line");
    let log = std::fs::read(dir.path().join(log)).expect("read the log");
    assert!(
        log.starts_with(b"plain\ttab\n\x1b[31mred\x1b[0m\r\nbell\x07\n"),
        "{log:?}"
    );
}

// ---- huge diagnostics ------------------------------------------------------------

/// A syntax error after a string of `len` characters on one line.
fn after_a_long_string(len: usize) -> String {
    format!("pipeline p\n\nvar x = \"{}\" oops\n", "a".repeat(len))
}

#[test]
fn a_diagnostic_far_along_a_line_is_shown_through_a_window() {
    for len in [65_600, 1_000_000] {
        let output = Test::new()
            .file(FILE, after_a_long_string(len))
            .arg("check")
            .status(2)
            .stderr_contains(format!("[pipeline.stagecraft:3:{}]", len + 12))
            .stderr_contains("pipeline.stagecraft: 1 error\n")
            .run();
        assert!(output.stderr.len() < 2_000, "{}", output.stderr.len());
        if len == 65_600 {
            insta::assert_snapshot!("long_line_human", output.transcript());
        }
        let json = Test::new()
            .file(FILE, after_a_long_string(len))
            .args(["check", "--format", "json"])
            .status(2)
            .run()
            .json();
        let label = &json["diagnostics"][0]["labels"][0];
        assert_eq!(label["offset"], len + 23);
        assert_eq!(label["line"], 3);
        assert_eq!(label["column"], len + 12);
    }
}

#[test]
fn an_unclosed_string_of_a_million_characters_is_cut() {
    let output = Test::new()
        .file(FILE, format!("pipeline p\n\nvar x = \"{}\n", "é".repeat(1_000_000)))
        .arg("check")
        .status(2)
        .stderr_contains("[pipeline.stagecraft:3:9]")
        .stderr_contains("…\n")
        .run();
    assert!(output.stderr.len() < 2_000, "{}", output.stderr.len());
}

#[test]
fn control_characters_of_a_file_are_escaped_in_diagnostics() {
    let source = "pipeline p\n\nvar y = \"\u{1b}[31mred\u{202e}\" \u{1b}[2J\n\nphase a {\n  after b\u{7}\n}\n";
    let output = Test::new()
        .file("bad\u{1b}[1m.stagecraft", source)
        .args(["check", "bad\u{1b}[1m.stagecraft"])
        .status(2)
        .run();
    assert!(!output.stderr.contains('\u{1b}'), "{}", output.stderr);
    assert!(!output.stderr.contains('\u{202e}'), "{}", output.stderr);
    insta::assert_snapshot!("control_characters_human", output.transcript());
    let json = Test::new()
        .file(FILE, source)
        .args(["check", "--format", "json"])
        .status(2)
        .run();
    let first = &json.json()["diagnostics"][0];
    assert_eq!(first["labels"][0]["offset"], 34);
    assert_eq!(first["labels"][0]["column"], 21);
}

// ---- language server headers ---------------------------------------------------------

/// Runs `stagecraft lsp` on `input` (stdin then closed): exit code, stdout
/// and stderr.
fn lsp_with(input: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .arg("lsp")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stagecraft lsp");
    let mut stdin = child.stdin.take().expect("stdin");
    // The server may stop reading early: a failed write is fine.
    let _ = std::io::Write::write_all(&mut stdin, input);
    drop(stdin);
    let output = child.wait_with_output().expect("wait for stagecraft lsp");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn framed(body: &str) -> String {
    format!("Content-Length: {}\r\n\r\n{body}", body.len())
}

#[test]
fn the_language_server_refuses_headers_it_cannot_trust() {
    let initialize = framed(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{}}}"#);
    let cases = [
        (
            "Content-Length: 99999999999\r\n\r\n".to_owned(),
            "over the limit of 67108864 bytes (64 MiB)",
        ),
        (
            format!("{initialize}Content-Length: 99999999999\r\n\r\n{{}}"),
            "over the limit",
        ),
        ("Content-Length: twelve\r\n\r\n".to_owned(), "is not a number of bytes"),
        ("Content-Type: text\r\n\r\n{}".to_owned(), "no `Content-Length` header"),
        (
            format!("X-Big: {}\r\n", "x".repeat(1_000_000)),
            "longer than 4096 bytes",
        ),
        (
            "Content-Length: 100\r\n\r\n{}".to_owned(),
            "stdin ended inside a message",
        ),
        (String::new(), "stdin closed before `initialize`"),
    ];
    for (input, error) in cases {
        let (status, _, stderr) = lsp_with(input.as_bytes());
        assert_eq!(status, 1, "{stderr}");
        assert!(stderr.starts_with("error: language server: "), "{stderr}");
        assert!(stderr.contains(error), "{stderr}");
    }
}

#[test]
fn the_language_server_answers_a_body_that_is_not_a_message_and_goes_on() {
    let input = [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{}}}"#,
        r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#,
        "{not json",
        "[1, 2]",
        r#"{"jsonrpc":"2.0","id":2,"method":"shutdown"}"#,
        r#"{"jsonrpc":"2.0","method":"exit"}"#,
    ]
    .map(framed)
    .concat();
    let (status, stdout, stderr) = lsp_with(input.as_bytes());
    assert_eq!(status, 0, "{stderr}");
    assert!(
        stdout.contains(r#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"the message is not JSON"#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"{"jsonrpc":"2.0","error":{"code":-32600,"#),
        "{stdout}"
    );
    assert!(stdout.contains(r#"{"jsonrpc":"2.0","id":2,"result":null}"#), "{stdout}");
}

// ---- messages that said something else ---------------------------------------------

#[test]
fn a_byte_order_mark_is_named() {
    let output = Test::new()
        .file(FILE, "\u{feff}pipeline p\n")
        .arg("check")
        .status(2)
        .run();
    insta::assert_snapshot!("byte_order_mark", output.transcript());
    Test::new()
        .file(FILE, "\u{feff}pipeline p\n")
        .arg("fmt")
        .status(2)
        .stderr_contains("the file starts with a byte order mark")
        .run();
}

#[test]
fn a_phase_given_as_a_workflow_is_named() {
    let source = "pipeline p\n\nenv dev {}\n\nphase rollout {\n  run \"true\"\n}\nphase smoke {\n  run \"true\"\n}\n\nworkflow deploy { rollout }\nworkflow check { smoke }\n";
    let run = Test::new()
        .file(FILE, source)
        .args(["run", "rollout", "--env", "dev"])
        .status(1)
        .run();
    let plan = Test::new()
        .file(FILE, source)
        .args(["plan", "--env", "dev", "--workflow", "nothing"])
        .status(1)
        .run();
    insta::assert_snapshot!(
        "phase_as_workflow",
        format!("{}{}", run.transcript(), plan.transcript())
    );
}

#[test]
fn control_characters_of_commands_are_escaped_in_a_text_plan_and_kept_in_json() {
    let source = "pipeline p\n\nenv dev {}\n\nphase a {\n  run \"printf '\u{1b}[2J'\"\n}\nworkflow deploy { a }\n";
    let text = Test::new()
        .file(FILE, source)
        .args(["plan", "--env", "dev", "--version", "v\u{7}"])
        .stdout_contains("version v\\x07 ·")
        .stdout_contains("$ printf '\\x1b[2J'\n")
        .run();
    assert!(!text.stdout.contains('\u{1b}'), "{}", text.stdout);
    let json = Test::new()
        .file(FILE, source)
        .args(["plan", "--env", "dev", "--format", "json"])
        .run()
        .json();
    assert_eq!(json["phases"][0]["command"], "printf '\u{1b}[2J'");
}

#[test]
fn a_name_of_a_hundred_thousand_characters_is_cut_in_messages() {
    let name = "b".repeat(100_000);
    let source = format!(
        "pipeline p\n\nphase {name} {{\n  run \"x\"\n}}\nphase {name} {{\n  run \"x\"\n}}\nworkflow deploy {{ {name} }}\n"
    );
    let output = Test::new()
        .file(FILE, source)
        .arg("check")
        .status(2)
        .stderr_contains(format!("`{}…`", "b".repeat(99)))
        .stderr_contains("also at pipeline.stagecraft:3:7: first declared here\n")
        .run();
    assert!(output.stderr.len() < 3_000, "{}", output.stderr.len());
    let json = Test::new()
        .file(
            FILE,
            format!("pipeline p\n\nphase a {{\n  after {name}\n  run \"x\"\n}}\nworkflow deploy {{ a }}\n"),
        )
        .args(["check", "--format", "json"])
        .status(2)
        .run()
        .json();
    assert!(
        json["diagnostics"][0]["message"]
            .as_str()
            .expect("a message")
            .contains(&name)
    );
}

#[test]
fn a_panic_in_the_middle_of_a_run_records_the_release_failed_and_exits_5() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pipeline = "pipeline p\nenv dev {}\nphase a {\n  run \"true\"\n}\nphase b {\n  after a\n  run \"true\"\n}\nworkflow deploy { a b }\n";
    std::fs::write(dir.path().join("pipeline.stagecraft"), pipeline).expect("write pipeline");
    let run = |args: &[&str], panic: bool| {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .current_dir(dir.path())
            .env("STAGECRAFT_NOW", "2026-11-25T12:00:00.000Z")
            .env_remove("STAGECRAFT_STATE_DIR");
        if panic {
            command.env("STAGECRAFT_DEBUG_PANIC_IN_RUN", "boom");
        }
        command.output().expect("run the stagecraft binary")
    };
    let output = run(&["deploy", "--env", "dev", "--version", "v1"], true);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("internal error in stagecraft"), "{stderr}");
    // Recorded at once, not left running for the next command to repair.
    let list = run(&["releases", "list", "--format", "json"], false);
    let json: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    assert_eq!(json[0]["status"], "failed", "{json}");
    let shown = run(
        &[
            "releases",
            "show",
            json[0]["id"].as_str().expect("id"),
            "--format",
            "json",
        ],
        false,
    );
    let release: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("json");
    assert_eq!(release["phases"][0]["reason"], "interrupted", "{release}");
    assert_eq!(release["phases"][1]["status"], "skipped", "{release}");
    let next = run(&["deploy", "--env", "dev", "--version", "v2"], false);
    assert_eq!(next.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&next.stderr).contains("was interrupted"));
}
