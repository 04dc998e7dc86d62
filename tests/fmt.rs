//! `stagecraft fmt`: the canonical formatter keeps meaning and comments and
//! is idempotent, over every example, every test case that parses, and
//! generated files full of comments and odd whitespace; and the command's
//! flags and exit codes.

// `support::Output` keeps the run's directory in `_tempdir`; these tests
// read the files `fmt` wrote there.
#![allow(clippy::used_underscore_binding)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use stagecraft::engine::{self, PlanError, PlanRequest};
use stagecraft::graph;
use stagecraft::syntax::{self, format};

use crate::support::{Test, root, tests_dir};

/// What a file means, as text that does not mention positions: every
/// diagnostic (code, severity, message, label notes, help) and, when there
/// is no error, the JSON plan of every env × workflow, with `push` false and
/// true.
fn meaning(source: &str) -> String {
    let compilation = graph::compile(source);
    let mut out = String::new();
    for d in &compilation.diagnostics {
        let labels: Vec<&str> = d.labels.iter().map(|l| l.message.as_str()).collect();
        let _ = writeln!(out, "{} {:?} {} {labels:?} {:?}", d.code, d.severity, d.message, d.help);
    }
    let (Some(pipeline), Some(graph)) = (&compilation.pipeline, &compilation.graph) else {
        return out;
    };
    if compilation.has_errors() {
        return out;
    }
    for (id, env) in pipeline.envs.keys().enumerate() {
        let secrets: Vec<String> = pipeline
            .secrets_in(id)
            .iter()
            .map(|s| format!("{}={s}", s.name.name))
            .collect();
        let _ = writeln!(out, "--- {env} secrets {secrets:?}");
        for workflow in pipeline.workflows.keys() {
            for push in [false, true] {
                let request = PlanRequest {
                    env: (*env).to_owned(),
                    workflow: (*workflow).to_owned(),
                    services: None,
                    version: "1.0".to_owned(),
                    release: "r1".to_owned(),
                    push,
                    ..PlanRequest::default()
                };
                let _ = writeln!(out, "--- {env} {workflow} push={push}");
                match engine::plan(pipeline, graph, &request) {
                    Ok(plan) => out.push_str(&serde_json::to_string(&plan).expect("a plan is JSON")),
                    Err(PlanError::Invalid(diagnostics)) => {
                        for d in diagnostics {
                            let _ = writeln!(out, "{} {}", d.code, d.message);
                        }
                    }
                    Err(error) => out.push_str(&error.to_string()),
                }
                out.push('\n');
            }
        }
    }
    out
}

/// Formats `source` and checks the three promises.
fn check_format(name: &str, source: &str) -> String {
    let formatted = format(source).unwrap_or_else(|d| panic!("{name}: not formatted: {}", d.message));
    let again = format(&formatted).unwrap_or_else(|d| panic!("{name}: output does not format: {}", d.message));
    assert_eq!(again, formatted, "{name}: formatting is not idempotent");
    assert_eq!(
        meaning(source),
        meaning(&formatted),
        "{name}: formatting changed the meaning"
    );
    assert_eq!(comments(source), comments(&formatted), "{name}: comments changed");
    formatted
}

/// Every comment's text, in order (found with the formatter's own rule: a
/// `#` outside strings).
fn comments(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = source.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if source[i..].starts_with("\"\"\"") {
            i = source[i + 3..].find("\"\"\"").map_or(bytes.len(), |n| i + 3 + n + 3);
        } else if bytes[i] == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if bytes[i] == b'#' {
            let end = source[i..].find('\n').map_or(bytes.len(), |n| i + n);
            out.push(source[i..end].trim_end().to_owned());
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

fn stagecraft_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "stagecraft"));
    files.sort();
    files
}

#[test]
fn examples_keep_their_meaning() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("pipelines"))
        .expect("pipelines/")
        .filter_map(Result::ok)
        .map(|e| e.path().join("pipeline.stagecraft"))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for dir in ["ok", "multi", "errors"] {
        files.extend(stagecraft_files(&tests_dir().join("cases").join(dir)));
    }
    let mut formatted = 0;
    for path in files {
        let source = std::fs::read_to_string(&path).expect("read");
        let name = path.display().to_string();
        if !syntax::parse(&source).ast.broken.is_empty() || format(&source).is_err() {
            // Syntax-error cases: the formatter must refuse them.
            assert!(format(&source).is_err(), "{name}");
            continue;
        }
        check_format(&name, &source);
        formatted += 1;
    }
    assert!(formatted > 20, "only {formatted} files formatted");
}

#[test]
fn the_examples_are_formatted() {
    for example in ["static-site", "webapp", "monorepo-lib"] {
        let path = root().join("pipelines").join(example).join("pipeline.stagecraft");
        let source = std::fs::read_to_string(&path).expect("read");
        assert_eq!(
            format(&source).expect("formats"),
            source,
            "run `stagecraft fmt {}`",
            path.display()
        );
    }
}

#[test]
fn the_webapp_example_formatted() {
    let source = std::fs::read_to_string(root().join("pipelines/webapp/pipeline.stagecraft")).expect("read");
    insta::assert_snapshot!(check_format("webapp", &source));
}

#[test]
fn a_messy_file_formatted() {
    let source = r#"# top comment
pipeline   shop # the name
var registry="localhost:5000"
var image = "{{registry}}/shop"   # follows the env
env dev{replicas="1"
  # own line in env
  log_level = "debug"}
env prod extends dev { replicas = "3" }
service api{path="services/api"}
service worker { path = "services/worker" after api # order
}
phase build{for each service run "docker build {{service.path}} # not a comment" timeout 10m}
phase push {
  for each service after build

  when push&&!(env=="dev"||env == "test") # gate
  run """
      docker push {{image}}-{{service}}
        # inside a string
  """
  retry 2 backoff 5s
}
phase finalize { after push, # why
  build[api] }
workflow deploy {build push finalize}
workflow long { build push finalize build push finalize build push finalize build push finalize build push finalize }
# the end
"#;
    insta::assert_snapshot!(check_format("messy", source));
}

// ---- generated files ---------------------------------------------------------

/// A tiny deterministic generator of valid pipelines with whitespace and
/// comments between every pair of tokens.
struct Gen {
    state: u64,
    out: String,
}

const GAPS: &[&str] = &[
    " ",
    "  ",
    "\n",
    "\n\n",
    "\n\n\n  ",
    "\t",
    " # comment {{x}} \"q\n",
    "\n  # own line\n",
    "\r\n",
    "#tight\n",
];

impl Gen {
    fn next(&mut self) -> u64 {
        self.state = self
            .state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.state >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next()).unwrap_or(0) % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn tok(&mut self, token: &str) {
        self.out.push_str(token);
        let gap = if self.chance(60) {
            " "
        } else {
            GAPS[self.below(GAPS.len())]
        };
        self.out.push_str(gap);
    }

    fn string(&mut self, vars: usize, per_service: bool) {
        let mut text = String::from("echo");
        for _ in 0..self.below(3) {
            match self.below(4) {
                0 if vars > 0 => {
                    let v = self.below(vars);
                    let _ = write!(text, " {{{{v{v}}}}}");
                }
                1 => text.push_str(" {{version}} # not a comment"),
                2 if per_service => text.push_str(" {{service}}-{{ service.path }}"),
                _ => text.push_str(" \\\"q\\\" {{{{lit}}"),
            }
        }
        if self.chance(25) {
            let indent = " ".repeat(self.below(6));
            self.tok(&format!("\"\"\"\n{indent}  set -e\n{indent}    {text}\n{indent}\"\"\""));
        } else {
            self.tok(&format!("\"{text}\""));
        }
    }

    fn expr(&mut self, vars: usize, depth: usize) {
        match self.below(if depth > 2 { 2 } else { 5 }) {
            0 => {
                let name = if vars > 0 && self.chance(50) {
                    format!("v{}", self.below(vars))
                } else {
                    "push".to_owned()
                };
                self.tok(&name);
            }
            1 => self.tok("\"dev\""),
            2 => {
                self.tok("!");
                self.expr(vars, depth + 1);
            }
            3 => {
                self.tok("(");
                self.expr(vars, depth + 1);
                self.tok(")");
            }
            _ => {
                self.expr(vars, depth + 1);
                let op = ["==", "!=", "&&", "||"][self.below(4)];
                self.tok(op);
                self.expr(vars, depth + 1);
            }
        }
    }

    fn pipeline(seed: u64) -> String {
        let mut g = Gen {
            state: seed,
            out: String::new(),
        };
        if g.chance(30) {
            g.out.push_str("# leading comment\n\n");
        }
        let vars = 1 + g.below(3);
        let envs = 1 + g.below(3);
        let services = g.below(3);
        let phases = 1 + g.below(6);
        let mut order: Vec<(u8, usize)> = Vec::new();
        order.push((0, 0));
        order.extend((0..vars).map(|i| (1, i)));
        order.extend((0..envs).map(|i| (2, i)));
        order.extend((0..services).map(|i| (3, i)));
        order.extend((0..phases).map(|i| (4, i)));
        order.extend((0..2).map(|i| (5, i)));
        for i in (1..order.len()).rev() {
            let j = g.below(i + 1);
            order.swap(i, j);
        }
        let per_service: Vec<bool> = (0..phases).map(|_| services > 0 && g.chance(50)).collect();
        for (kind, i) in order {
            match kind {
                0 => {
                    g.tok("pipeline");
                    g.tok("gen");
                }
                1 => {
                    g.tok("var");
                    g.tok(&format!("v{i}"));
                    g.tok("=");
                    g.string(i, false);
                }
                2 => g.env(i, vars),
                3 => g.service(i),
                4 => g.phase(i, vars, services, &per_service),
                _ => g.workflow(i, phases),
            }
        }
        if g.chance(30) {
            g.out.push_str("# trailing comment");
        }
        g.out
    }

    fn env(&mut self, i: usize, vars: usize) {
        self.tok("env");
        self.tok(&format!("e{i}"));
        if i > 0 && self.chance(50) {
            self.tok("extends");
            let parent = self.below(i);
            self.tok(&format!("e{parent}"));
        }
        self.tok("{");
        for _ in 0..self.below(3) {
            let v = self.below(vars);
            self.tok(&format!("v{v}"));
            self.tok("=");
            self.tok("\"x\"");
        }
        self.tok("}");
    }

    fn service(&mut self, i: usize) {
        self.tok("service");
        self.tok(&format!("s{i}"));
        self.tok("{");
        self.tok("path");
        self.tok("=");
        self.tok(&format!("\"services/s{i}\""));
        if i > 0 && self.chance(50) {
            self.tok("after");
            let before = self.below(i);
            self.tok(&format!("s{before}"));
        }
        self.tok("}");
    }

    fn phase(&mut self, i: usize, vars: usize, services: usize, per_service: &[bool]) {
        self.tok("phase");
        self.tok(&format!("p{i}"));
        self.tok("{");
        let mut clauses: Vec<u8> = vec![0, 1, 2, 3, 4, 5];
        for k in (1..clauses.len()).rev() {
            let j = self.below(k + 1);
            clauses.swap(k, j);
        }
        for clause in clauses {
            if !self.chance(60) {
                continue;
            }
            match clause {
                0 if per_service[i] => {
                    self.tok("for");
                    self.tok("each");
                    self.tok("service");
                }
                1 if i > 0 => self.after(i, services, per_service),
                2 => {
                    self.tok("when");
                    self.expr(vars, 0);
                }
                3 => {
                    self.tok("run");
                    self.string(vars, per_service[i]);
                }
                4 => {
                    self.tok("timeout");
                    let duration = ["5m", "1h30m", "250ms"][self.below(3)];
                    self.tok(duration);
                }
                5 => {
                    self.tok("retry");
                    self.tok("2");
                    if self.chance(50) {
                        self.tok("backoff");
                        self.tok("1s");
                    }
                }
                _ => {}
            }
        }
        self.tok("}");
    }

    fn after(&mut self, i: usize, services: usize, per_service: &[bool]) {
        self.tok("after");
        let count = 1 + self.below(2);
        for n in 0..count {
            if n > 0 {
                self.tok(",");
            }
            let dep = self.below(i);
            if per_service[dep] && self.chance(40) {
                let s = self.below(services);
                self.tok(&format!("p{dep}[s{s}]"));
            } else {
                self.tok(&format!("p{dep}"));
            }
        }
    }

    fn workflow(&mut self, i: usize, phases: usize) {
        self.tok("workflow");
        self.tok(&format!("w{i}"));
        self.tok("{");
        for p in 0..phases {
            if i == 0 || self.chance(50) {
                self.tok(&format!("p{p}"));
            }
        }
        self.tok("}");
    }
}

proptest! {
    // A fixed seed, so CI runs the same cases every time.
    #![proptest_config(ProptestConfig { cases: 200, rng_seed: RngSeed::Fixed(0x5EED_0002), ..ProptestConfig::default() })]

    #[test]
    fn generated_files_keep_their_meaning(seed in any::<u64>()) {
        let source = Gen::pipeline(seed);
        prop_assert!(syntax::parse(&source).ast.broken.is_empty(), "the generator made a file that does not parse:\n{}", source);
        check_format("generated", &source);
    }
}

// ---- the command -------------------------------------------------------------

const UGLY: &str = "pipeline app\nphase build {run \"make\"}\nworkflow build {build}\n";
const PRETTY: &str = "pipeline app\n\nphase build {\n  run \"make\"\n}\n\nworkflow build { build }\n";

#[test]
fn fmt_rewrites_the_file() {
    let output = Test::new()
        .file("pipeline.stagecraft", UGLY)
        .args(["fmt"])
        .stdout("")
        .stderr("")
        .status(0)
        .run();
    let written = std::fs::read_to_string(output._tempdir.path().join("pipeline.stagecraft")).expect("read");
    assert_eq!(written, PRETTY);
    // No temporary file is left behind.
    let entries = std::fs::read_dir(output._tempdir.path()).expect("dir").count();
    assert_eq!(entries, 1);
}

#[test]
fn fmt_check_names_files_that_would_change() {
    let output = Test::new()
        .file("a.stagecraft", UGLY)
        .file("b.stagecraft", PRETTY)
        .args(["fmt", "--check", "a.stagecraft", "b.stagecraft"])
        .status(1)
        .run();
    insta::assert_snapshot!(output.transcript(), @r"
    --- stdout
    a.stagecraft
    --- stderr
    error: 1 file would be reformatted
    help: run `stagecraft fmt` to format them
    --- exit 1
    ");
    let unchanged = std::fs::read_to_string(output._tempdir.path().join("a.stagecraft")).expect("read");
    assert_eq!(unchanged, UGLY);
    Test::new()
        .file("pipeline.stagecraft", PRETTY)
        .args(["fmt", "--check"])
        .stdout("")
        .stderr("")
        .status(0)
        .run();
}

#[test]
fn fmt_refuses_a_file_with_a_syntax_error() {
    let broken = "pipeline app\nphase build {\n  run \"make\"\n";
    let output = Test::new()
        .file("pipeline.stagecraft", broken)
        .file("ok.stagecraft", UGLY)
        .args(["fmt", "pipeline.stagecraft", "ok.stagecraft"])
        .status(2)
        .run();
    insta::assert_snapshot!(output.transcript());
    let dir = output._tempdir.path();
    assert_eq!(
        std::fs::read_to_string(dir.join("pipeline.stagecraft")).expect("read"),
        broken
    );
    // The other file is still formatted.
    assert_eq!(
        std::fs::read_to_string(dir.join("ok.stagecraft")).expect("read"),
        PRETTY
    );
}
