//! Language-server latency: how long after a `didChange` the diagnostics of
//! a 10,000-phase file are published, through the real `stagecraft lsp`
//! process (JSON-RPC over its stdin and stdout).
//!
//! ```text
//! cargo bench --bench lsp
//! ```

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const URI: &str = "file:///bench/pipeline.stagecraft";

struct Client {
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    next_id: u64,
}

impl Client {
    fn send(&mut self, message: &Value) {
        let body = message.to_string();
        write!(self.input, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("write to the server");
        self.input.flush().expect("flush");
    }

    fn receive(&mut self) -> Value {
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.output.read_line(&mut line).expect("read a header");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(value) = line.strip_prefix("Content-Length: ") {
                length = value.parse().expect("a length");
            }
        }
        let mut body = vec![0; length];
        self.output.read_exact(&mut body).expect("read a body");
        serde_json::from_slice(&body).expect("JSON")
    }

    fn request(&mut self, method: &str, params: &Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let message = self.receive();
            if message["id"] == id {
                return message;
            }
        }
    }

    fn notify(&mut self, method: &str, params: &Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// The next `publishDiagnostics` for `version`.
    fn diagnostics(&mut self, version: i64) -> Value {
        loop {
            let message = self.receive();
            if message["method"] == "textDocument/publishDiagnostics" && message["params"]["version"] == version {
                return message["params"].clone();
            }
        }
    }
}

fn pipeline(phases: usize) -> String {
    let mut source = String::from("pipeline big\nservice api {}\nservice web { after api }\n");
    for i in 0..phases {
        let after = if i == 0 {
            String::new()
        } else {
            format!(" after p{}", i - 1)
        };
        let each = if i % 3 == 0 { " for each service" } else { "" };
        let _ = writeln!(source, "phase p{i} {{{each}{after} run \"echo {i} {{{{version}}}}\" }}");
    }
    source.push_str("workflow all {");
    for i in 0..phases {
        let _ = write!(source, " p{i}");
    }
    source.push_str(" }\n");
    source
}

fn main() {
    let phases = 10_000;
    let source = pipeline(phases);
    // Where the last phase's `after p…` names its dependency.
    let last = source.lines().nth(2 + phases).expect("the last phase");
    let (line, character) = (
        i64::try_from(2 + phases).expect("small"),
        i64::try_from(last.find(" after p").expect("an after") + " after ".len()).expect("small"),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_stagecraft"))
        .arg("lsp")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stagecraft lsp");
    let mut client = Client {
        input: child.stdin.take().expect("stdin"),
        output: BufReader::new(child.stdout.take().expect("stdout")),
        next_id: 0,
    };
    client.request("initialize", &json!({"capabilities": {}}));
    client.notify("initialized", &json!({}));
    let start = Instant::now();
    client.notify(
        "textDocument/didOpen",
        &json!({"textDocument": {"uri": URI, "languageId": "stagecraft", "version": 1, "text": source}}),
    );
    let opened = client.diagnostics(1);
    assert_eq!(opened["diagnostics"], json!([]), "the generated file is valid");
    let open = start.elapsed();
    let mut times: Vec<Duration> = Vec::new();
    for version in 2..32 {
        // Alternately break and fix the name in the last phase's `after`,
        // so every other change publishes an `unknown-phase` error.
        let text = if version % 2 == 0 { "q" } else { "p" };
        let start = Instant::now();
        client.notify("textDocument/didChange", &json!({"textDocument": {"uri": URI, "version": version}, "contentChanges": [{
                "range": {"start": {"line": line, "character": character}, "end": {"line": line, "character": character + 1}},
                "text": text
            }]}),
        );
        let published = client.diagnostics(version);
        times.push(start.elapsed());
        let errors = published["diagnostics"].as_array().map_or(0, Vec::len);
        assert_eq!(errors, usize::from(version % 2 == 0), "version {version}: {published}");
    }
    client.request("shutdown", &Value::Null);
    client.notify("exit", &Value::Null);
    let _ = child.wait();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("stagecraft lsp, {phases} phases ({} KiB)", source.len() / 1024);
    println!("  didOpen -> publishDiagnostics:   {:.1} ms", ms(open));
    println!(
        "  didChange -> publishDiagnostics: min {:.1} ms, median {:.1} ms, max {:.1} ms over {} changes (goal: 100 ms)",
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
        times.len()
    );
}
