//! Diagnostics, where a case is a file.
//!
//! Every file in `cases/errors/` is named after the code it demonstrates
//! (`unknown-phase.stagecraft`, `syntax-missing-brace.stagecraft`, …). For
//! each one the human rendering (`check -f FILE`: stderr and exit code) and
//! the JSON (`check --format json -f FILE`) are snapshotted, and the run
//! must fail (or, for warnings, pass unless `--deny-warnings`) with that
//! code. A file whose first line is `# plan: ARGS` is a case for a code that
//! `plan` reports: it must check clean, and `plan -f FILE ARGS` must fail
//! with the code.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use stagecraft::syntax::Code;

use crate::support::{Output, Test, tests_dir};

/// Codes whose diagnostics are warnings.
const WARNINGS: &[Code] = &[Code::UnusedPhase, Code::EmptyWorkflow];

/// `unknown-phase` for `stagecraft::unknown-phase`.
fn short_name(code: Code) -> &'static str {
    code.as_str().trim_start_matches("stagecraft::")
}

/// The code a case file is named after: the longest code name that is the
/// file's stem or a `-`-separated prefix of it.
fn code_of(path: &Path) -> Option<Code> {
    let stem = path.file_stem()?.to_str()?;
    Code::ALL
        .iter()
        .copied()
        .filter(|&code| {
            let name = short_name(code);
            stem == name || stem.strip_prefix(name).is_some_and(|rest| rest.starts_with('-'))
        })
        .max_by_key(|&code| short_name(code).len())
}

/// `Some(args)` for a case whose first line is `# plan: ARGS`.
fn plan_args(source: &str) -> Option<Vec<String>> {
    let first = source.lines().next()?;
    let args = first.strip_prefix("# plan:")?;
    Some(args.split_whitespace().map(str::to_owned).collect())
}

fn case_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(tests_dir().join("cases").join(dir))
        .expect("read a cases directory")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "stagecraft"))
        .collect();
    files.sort();
    files
}

/// Runs `stagecraft ARGS -f NAME` on a copy of `path` named `NAME`.
fn run_on(path: &Path, args: &[&str]) -> Output {
    let name = path.file_name().expect("a file name").to_string_lossy().into_owned();
    let source = std::fs::read(path).expect("read a case file");
    Test::new()
        .file(&name, source)
        .args(args.iter().copied())
        .args(["-f", name.as_str()])
        .output()
}

/// The `(code, severity)` of every diagnostic in a JSON report.
fn json_codes(output: &Output) -> Vec<(String, String)> {
    output.json()["diagnostics"]
        .as_array()
        .expect("a JSON report has diagnostics")
        .iter()
        .map(|d| {
            (
                d["code"].as_str().expect("a code").to_owned(),
                d["severity"].as_str().expect("a severity").to_owned(),
            )
        })
        .collect()
}

#[test]
fn error_cases() {
    insta::glob!("cases/errors/*.stagecraft", |path| {
        let source = std::fs::read_to_string(path).expect("read a case file");
        let code = code_of(path).unwrap_or_else(|| panic!("{} is not named after a code", path.display()));
        let human = match plan_args(&source) {
            Some(args) => {
                let mut all = vec!["plan"];
                all.extend(args.iter().map(String::as_str));
                run_on(path, &all)
            }
            None => run_on(path, &["check"]),
        };
        let json = run_on(path, &["check", "--format", "json"]);
        insta::assert_snapshot!("human", human.transcript());
        insta::assert_snapshot!("json", json.stdout);

        assert!(!human.stderr.contains("panicked"), "{}", human.transcript());
        let codes = json_codes(&json);
        if plan_args(&source).is_some() {
            // `check` cannot know the env: the file is valid…
            assert_eq!(json.status, 0, "{}", json.transcript());
            assert!(codes.is_empty(), "{codes:?}");
            // …and `plan` reports the code, as an invalid pipeline.
            assert_eq!(human.status, 2, "{}", human.transcript());
            assert!(human.stderr.contains(code.as_str()), "{}", human.transcript());
        } else if WARNINGS.contains(&code) {
            assert_eq!(human.status, 0, "{}", human.transcript());
            assert_eq!(json.status, 0, "{}", json.transcript());
            assert!(
                codes.iter().any(|(c, s)| c == code.as_str() && s == "warning"),
                "{} should warn with {code}: {codes:?}",
                path.display()
            );
            assert!(codes.iter().all(|(_, s)| s == "warning"), "{codes:?}");
            let denied = run_on(path, &["check", "--deny-warnings"]);
            assert_eq!(denied.status, 2, "{}", denied.transcript());
            let denied = run_on(path, &["check", "--deny-warnings", "--format", "json"]);
            assert_eq!(denied.status, 2, "{}", denied.transcript());
        } else {
            assert_eq!(human.status, 2, "{}", human.transcript());
            assert_eq!(json.status, 2, "{}", json.transcript());
            assert!(
                codes.iter().any(|(c, s)| c == code.as_str() && s == "error"),
                "{} should fail with {code}: {codes:?}",
                path.display()
            );
            assert!(human.stderr.contains(code.as_str()), "{}", human.transcript());
        }
    });
}

#[test]
fn every_code_has_a_case() {
    let files = case_files("errors");
    let covered: BTreeSet<Code> = files.iter().filter_map(|path| code_of(path)).collect();
    let missing: Vec<&str> = Code::ALL
        .iter()
        .filter(|code| !covered.contains(code))
        .map(|code| code.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a file in tests/cases/errors/: {missing:?}"
    );
    // And no case file is named after nothing.
    for path in &files {
        assert!(code_of(path).is_some(), "{} is not named after a code", path.display());
    }
}

#[test]
fn warning_codes_are_the_warnings() {
    // Every case of a non-warning code is an error: keeps `WARNINGS` honest.
    for path in case_files("errors") {
        let source = std::fs::read_to_string(&path).expect("read a case file");
        let Some(code) = code_of(&path) else { continue };
        if plan_args(&source).is_some() {
            continue;
        }
        let compilation = stagecraft::graph::compile(&source);
        for diagnostic in compilation.diagnostics.iter().filter(|d| d.code == code) {
            assert_eq!(
                diagnostic.is_error(),
                !WARNINGS.contains(&code),
                "{}: {diagnostic:?}",
                path.display()
            );
        }
    }
}

#[test]
fn ok_cases_check_clean() {
    let files = case_files("ok");
    assert!(!files.is_empty());
    for path in files {
        let name = path.file_name().expect("a file name").to_string_lossy().into_owned();
        let output = run_on(&path, &["check", "--deny-warnings"]);
        assert_eq!(output.status, 0, "{}", output.transcript());
        assert_eq!(output.stdout, format!("{name}: ok\n"));
        assert_eq!(output.stderr, "");
        let json = run_on(&path, &["check", "--format", "json"]);
        assert_eq!(json.status, 0, "{}", json.transcript());
        assert_eq!(json_codes(&json), Vec::<(String, String)>::new());
    }
}

#[test]
fn all_problems_of_a_file_are_reported_at_once() {
    let path = tests_dir().join("cases/multi/all-at-once.stagecraft");
    let human = run_on(&path, &["check"]);
    let json = run_on(&path, &["check", "--format", "json"]);
    insta::assert_snapshot!("all_at_once_human", human.transcript());
    assert_eq!(human.status, 2);
    assert_eq!(json.status, 2);
    let codes: BTreeSet<String> = json_codes(&json).into_iter().map(|(code, _)| code).collect();
    let expected = [
        Code::UnknownEnv,
        Code::UnknownService,
        Code::UnknownAttribute,
        Code::UnknownVariable,
        Code::InvalidDuration,
        Code::UnknownPhase,
        Code::InvalidCount,
        Code::SelfDependency,
        Code::ServiceOutsideForEach,
        Code::UnusedPhase,
        Code::UnknownWorkflowMember,
        Code::EmptyWorkflow,
    ];
    for code in expected {
        assert!(codes.contains(code.as_str()), "{code} missing from {codes:?}");
    }
    assert!(
        human
            .stderr
            .ends_with("all-at-once.stagecraft: 10 errors and 2 warnings\n"),
        "{}",
        human.stderr
    );
}

#[test]
fn json_labels_point_into_the_file() {
    // The JSON `line`/`column` of every label agree with its offset.
    for path in case_files("errors") {
        let source = std::fs::read_to_string(&path).expect("read a case file");
        let json = run_on(&path, &["check", "--format", "json"]);
        for diagnostic in json.json()["diagnostics"].as_array().expect("diagnostics") {
            assert!(
                !diagnostic["labels"].as_array().expect("labels").is_empty(),
                "{}: a diagnostic without a place: {diagnostic}",
                path.display()
            );
            for label in diagnostic["labels"].as_array().expect("labels") {
                let offset = usize::try_from(label["offset"].as_u64().expect("offset")).expect("usize");
                let length = usize::try_from(label["length"].as_u64().expect("length")).expect("usize");
                assert!(offset + length <= source.len(), "{}: {label}", path.display());
                let before = &source[..offset];
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
                assert_eq!(label["line"].as_u64(), Some(line as u64), "{}: {label}", path.display());
                assert_eq!(
                    label["column"].as_u64(),
                    Some(column as u64),
                    "{}: {label}",
                    path.display()
                );
            }
        }
    }
}

/// A label names a dependency as written, `c` in `after c`, not the
/// whitespace and next line that follow it.
#[test]
fn dependency_labels_cover_only_the_dependency() {
    let source = "pipeline demo\nphase a {\n  after b\n  run \"x\"\n}\nphase b {\n  after a\n}\nworkflow w { a b }\n";
    let compilation = stagecraft::graph::compile(source);
    let cycle = compilation
        .diagnostics
        .iter()
        .find(|d| d.code == Code::DependencyCycle)
        .expect("a cycle");
    for label in &cycle.labels {
        let text = &source[label.span.start()..label.span.end()];
        assert!(text == "a" || text == "b", "label covers {text:?}");
    }
}

/// "first set here" points at the first `replicas`, as "set again here"
/// points at the second, not at the first one's value.
#[test]
fn duplicate_value_labels_point_at_names() {
    let source = "pipeline demo\nenv dev {\n  replicas = \"1\"\n  replicas = \"2\"\n}\nphase a {\n  run \"x\"\n}\nworkflow w { a }\n";
    let compilation = stagecraft::graph::compile(source);
    let duplicate = compilation
        .diagnostics
        .iter()
        .find(|d| d.code == Code::DuplicateName)
        .expect("a duplicate");
    for label in &duplicate.labels {
        assert_eq!(&source[label.span.start()..label.span.end()], "replicas", "{label:?}");
    }
}

#[test]
fn every_broken_declaration_is_reported_and_the_rest_checked() {
    let path = tests_dir().join("cases/errors/syntax-several-declarations.stagecraft");
    let json = run_on(&path, &["check", "--format", "json"]);
    let codes: Vec<String> = json_codes(&json).into_iter().map(|(code, _)| code).collect();
    assert_eq!(
        codes,
        ["syntax", "syntax", "syntax", "unknown-phase"].map(|c| format!("stagecraft::{c}")),
        "{}",
        json.transcript()
    );
}

#[test]
fn names_of_broken_declarations_are_not_reported_unknown() {
    let codes = |source: &str| -> Vec<Code> {
        let compilation = stagecraft::graph::compile(source);
        compilation.diagnostics.iter().map(|d| d.code).collect()
    };
    // The `pipeline` line itself is broken (or misspelt): no `missing-pipeline`.
    assert_eq!(
        codes("pipeline 'demo'\nphase a {\n}\nworkflow w { a }\n"),
        [Code::Syntax]
    );
    assert_eq!(codes("pipelin demo\nphase a {\n}\nworkflow w { a }\n"), [Code::Syntax]);
    // A broken workflow may list any phase: no `unused-phase`.
    assert_eq!(codes("pipeline p\nphase a {\n}\nworkflow w { a, }\n"), [Code::Syntax]);
    // A broken service: no `unknown-service`, `unknown-instance` or `no-services`.
    let source = "pipeline p\nservice api { port = 1 }\nservice web { after api }\n\
                  phase a {\n  for each service\n}\nphase b {\n  after a[api]\n}\nworkflow w { a b }\n";
    assert_eq!(codes(source), [Code::Syntax]);
    // A broken declaration does not hide what it could not have declared.
    let source = "pipeline p\nphase a {\n  run 'x'\n}\nphase b {\n  after c\n}\nworkflow w { a b }\n";
    assert_eq!(codes(source), [Code::Syntax, Code::UnknownPhase]);
}
