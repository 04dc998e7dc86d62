//! Fuzzing that reaches the back end: generated pipelines (`generate`),
//! then the same mutated at the token level, through `check`, `plan` for
//! every env and workflow, and `fmt`, whose output must be a fixed point
//! and mean the same: the same diagnostics and the same plans.
//!
//! CI runs a few thousand cases with fixed seeds. The long run is
//! `million`, ignored by default:
//!
//! ```text
//! STAGECRAFT_FUZZ_CASES=1000000 cargo test --release --test integration -- --ignored --nocapture fuzz::backend::million
//! ```

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{RngSeed, TestRunner};
use stagecraft::engine::{self, PlanError, PlanRequest};
use stagecraft::graph::Compilation;
use stagecraft::syntax::{Diagnostic, format};

use super::generate::{Model, model};
use super::{Mutation, apply, config, exercise, mutation};

/// What one case reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Reach {
    planned: bool,
    formatted: bool,
}

/// Diagnostics as (code, message), which formatting
/// must not change (their spans move with the layout).
fn meaning(diagnostics: &[Diagnostic]) -> Vec<(String, String)> {
    diagnostics
        .iter()
        .map(|d| (d.code.as_str().to_owned(), d.message.clone()))
        .collect()
}

/// Every plan of a compilation without errors, by env and workflow.
fn plans(compilation: &Compilation<'_>) -> Vec<String> {
    let (Some(pipeline), Some(graph)) = (&compilation.pipeline, &compilation.graph) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for env in pipeline.envs.keys() {
        for workflow in pipeline.workflows.keys() {
            let request = PlanRequest {
                env: (*env).to_owned(),
                workflow: (*workflow).to_owned(),
                version: "1.0".to_owned(),
                release: "rel".to_owned(),
                ..PlanRequest::default()
            };
            let plan = match engine::plan(pipeline, graph, &request) {
                Ok(plan) => format!("{plan:?}"),
                Err(PlanError::Invalid(diagnostics)) => format!("{:?}", meaning(&diagnostics)),
                Err(error) => error.to_string(),
            };
            out.push(format!("{env}/{workflow}: {plan}"));
        }
    }
    out
}

/// `fmt` on `source`: a file with a syntax error is refused; any other is
/// formatted to a fixed point that compiles to the same diagnostics and
/// plans.
fn check_format(source: &str) -> bool {
    let Ok(formatted) = format(source) else {
        return false;
    };
    assert_eq!(
        format(&formatted).as_deref(),
        Ok(formatted.as_str()),
        "fmt is not idempotent on {source:?}"
    );
    let (before, after) = (
        stagecraft::graph::compile(source),
        stagecraft::graph::compile(&formatted),
    );
    assert_eq!(
        meaning(&before.diagnostics),
        meaning(&after.diagnostics),
        "fmt changed the diagnostics of {source:?}"
    );
    if !before.has_errors() {
        assert_eq!(plans(&before), plans(&after), "fmt changed a plan of {source:?}");
    }
    true
}

/// One case through everything.
fn run(source: &str) -> Reach {
    Reach {
        planned: exercise(source),
        formatted: check_format(source),
    }
}

/// A generated file, mutated `mutations` times.
fn mutated(model: &Model, mutations: &[Mutation]) -> String {
    let mut bytes = model.render().into_bytes();
    for mutation in mutations {
        apply(&mut bytes, mutation);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #![proptest_config(config(1_000))]

    #[test]
    fn generated_files(model in model()) {
        let _ = run(&model.render());
    }

    #[test]
    fn generated_then_mutated(model in model(), mutations in proptest::collection::vec(mutation(), 1..4)) {
        let _ = run(&mutated(&model, &mutations));
    }
}

#[test]
fn most_generated_files_reach_plan_and_fmt() {
    // The generator is only useful if it gets past the checker: measured
    // on a fixed sample, independently of the proptest cases above.
    let mut runner = TestRunner::new(config(0));
    let (mut planned, mut formatted) = (0, 0);
    for _ in 0..300 {
        let model = model().new_tree(&mut runner).expect("a model").current();
        let reach = run(&model.render());
        planned += usize::from(reach.planned);
        formatted += usize::from(reach.formatted);
    }
    assert!(planned >= 150, "only {planned} of 300 generated files planned");
    assert_eq!(formatted, 300, "every generated file parses");
}

/// The long run: `STAGECRAFT_FUZZ_CASES` inputs (default 1,000,000), half
/// generated, half generated and mutated, on every core, each thread with
/// its own fixed seed. Prints how many reached `plan` and `fmt`.
#[test]
#[ignore = "long: run by hand (see the module doc)"]
fn million() {
    let cases: usize = std::env::var("STAGECRAFT_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let totals: Vec<(usize, usize, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                scope.spawn(move || {
                    let mut config = config(0);
                    config.rng_seed = RngSeed::Fixed(0x5EED_1000 + thread as u64);
                    let mut runner = TestRunner::new(config);
                    let strategy = (model(), proptest::collection::vec(mutation(), 0..4));
                    let (mut done, mut planned, mut formatted) = (0, 0, 0);
                    for case in (thread..cases).step_by(threads) {
                        let (model, mutations) = strategy.new_tree(&mut runner).expect("a case").current();
                        let mutations = if case % 2 == 0 { &mutations[..0] } else { &mutations[..] };
                        let reach = run(&mutated(&model, mutations));
                        done += 1;
                        planned += usize::from(reach.planned);
                        formatted += usize::from(reach.formatted);
                    }
                    (done, planned, formatted)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a fuzz thread")).collect()
    });
    let (done, planned, formatted) = totals
        .iter()
        .fold((0, 0, 0), |acc, t| (acc.0 + t.0, acc.1 + t.1, acc.2 + t.2));
    println!("fuzz: {done} inputs, {planned} reached plan, {formatted} were formatted, no panic");
    assert_eq!(done, cases);
}
