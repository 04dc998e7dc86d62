//! Language-server latency: how long after a one-character `didChange` the
//! diagnostics of a 10,000-phase file are published, through the real
//! `stagecraft lsp` process (JSON-RPC over its stdin and stdout), and how
//! long the other requests take on that version. The file is the graph of
//! the ninja comparison ([`common::layered`]).
//!
//! ```text
//! cargo bench --bench lsp
//! ```
//!
//! Besides wall times (which a loaded machine stretches), it prints the
//! server's CPU time per change, from `/proc/PID/stat` (10 ms ticks, so
//! read it as an average over the changes).
//!
//! Instruction counts, which load does not change: `LSP_BENCH_WRAP` is a
//! command the server runs under and `LSP_BENCH_CHANGES` the number of
//! changes (30 by default), so the count per change is the difference of
//! two runs divided by the difference of their changes:
//!
//! ```text
//! LSP_BENCH_WRAP='valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p' \
//!   LSP_BENCH_CHANGES=10 cargo bench --bench lsp
//! ```

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::layered;
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

/// The CPU time the process `pid` has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which is in parentheses).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the whole line.
    let total = ticks(11) + ticks(12);
    // SAFETY: sysconf only reads a configuration value.
    let per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100);
    Duration::from_millis(total * 1000 / per_second.max(1))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Times one request on the current version.
fn time_request(client: &mut Client, method: &str, params: &Value) -> (Duration, Value) {
    let start = Instant::now();
    let answer = client.request(method, params);
    (start.elapsed(), answer)
}

/// Alternately breaks and fixes the name at `at` (`changes` times), so
/// every other change publishes an `unknown-phase` error: the wall time
/// from each `didChange` to its diagnostics, and the server's CPU time.
fn change(client: &mut Client, pid: u32, at: (i64, i64), changes: i32) -> (Vec<Duration>, Duration) {
    let (line, character) = at;
    let mut times: Vec<Duration> = Vec::new();
    let cpu_before = cpu_time(pid);
    for version in 2..2 + i64::from(changes) {
        let text = if version % 2 == 0 { "q" } else { "t" };
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
    let cpu = cpu_time(pid).saturating_sub(cpu_before);
    (times, cpu)
}

/// Starts `stagecraft lsp` (under `LSP_BENCH_WRAP`, if set).
fn spawn() -> (Child, Client) {
    let wrap = std::env::var("LSP_BENCH_WRAP").unwrap_or_default();
    let mut words = wrap.split_whitespace().chain([env!("CARGO_BIN_EXE_stagecraft"), "lsp"]);
    let mut child = Command::new(words.next().expect("a program"))
        .args(words)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stagecraft lsp");
    let client = Client {
        input: child.stdin.take().expect("stdin"),
        output: BufReader::new(child.stdout.take().expect("stdout")),
        next_id: 0,
    };
    (child, client)
}

fn main() {
    let phases = 10_000;
    let source = layered::pipeline(&layered::dependencies(phases));
    // The first name in the last phase's `after`.
    let (line, text) = source
        .lines()
        .enumerate()
        .skip_while(|(_, l)| *l != format!("phase t{} {{", phases - 1))
        .nth(1)
        .expect("the last phase's after");
    let (line, character) = (
        i64::try_from(line).expect("small"),
        i64::try_from(text.find("after t").expect("an after") + "after ".len()).expect("small"),
    );
    let (mut child, mut client) = spawn();
    let pid = child.id();
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
    let changes: i32 = std::env::var("LSP_BENCH_CHANGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(30);
    let (mut times, cpu) = change(&mut client, pid, (line, character), changes);
    let at = json!({"textDocument": {"uri": URI}, "position": {"line": line, "character": character + 1}});
    let mut references = at.clone();
    references["context"] = json!({"includeDeclaration": true});
    let requests = [
        ("definition", time_request(&mut client, "textDocument/definition", &at)),
        (
            "references",
            time_request(&mut client, "textDocument/references", &references),
        ),
        ("hover", time_request(&mut client, "textDocument/hover", &at)),
        ("completion", time_request(&mut client, "textDocument/completion", &at)),
        (
            "documentSymbol",
            time_request(
                &mut client,
                "textDocument/documentSymbol",
                &json!({"textDocument": {"uri": URI}}),
            ),
        ),
    ];
    client.request("shutdown", &Value::Null);
    client.notify("exit", &Value::Null);
    let _ = child.wait();
    times.sort();
    println!(
        "stagecraft lsp, {phases} phases, ninja-shaped ({} KiB)",
        source.len() / 1024
    );
    println!("  didOpen -> publishDiagnostics:   {:.1} ms", ms(open));
    if let (Some(min), Some(max)) = (times.first(), times.last()) {
        println!(
            "  didChange -> publishDiagnostics: min {:.1} ms, median {:.1} ms, max {:.1} ms over {changes} changes (goal: 20 ms)",
            ms(*min),
            ms(times[times.len() / 2]),
            ms(*max),
        );
    }
    println!(
        "  server CPU per change:           {:.1} ms",
        ms(cpu) / f64::from(changes.max(1))
    );
    for (name, (time, answer)) in requests {
        assert!(answer.get("error").is_none(), "{name}: {answer}");
        println!("  {name:<32} {:.1} ms", ms(time));
    }
}
