//! Confirming a run in a protected env (`protected` in the env or an env it
//! extends; the rule is `check`'s `Pipeline::is_protected`): on a terminal
//! the plan's summary, then the env's name to be typed; elsewhere `--yes`.

use std::fmt::Write as _;
use std::io::{BufRead as _, IsTerminal as _};

use super::Failure;
use super::output::escape;
use crate::check::Pipeline;
use crate::engine::Plan;

/// Whether a run in `env` must be confirmed on the terminal. A protected
/// env without `--yes` and without a terminal to ask on is refused here,
/// before any state is touched.
pub(super) fn needed(pipeline: &Pipeline<'_>, env: &str, yes: bool) -> Result<bool, Failure> {
    let protected = pipeline.env_id(env).is_some_and(|id| pipeline.is_protected(id));
    if !protected || yes {
        return Ok(false);
    }
    if std::io::stdin().is_terminal() {
        return Ok(true);
    }
    Err(Failure {
        help: Some("pass `--yes` to run without being asked (as in CI), or run it on a terminal".to_owned()),
        ..Failure::user(format!(
            "`{env}` is a protected env: confirming needs a terminal, and stdin is not one"
        ))
    })
}

/// Prints the plan's summary and asks for the env's name; anything else
/// (or the end of input) is a refusal: exit 1, nothing recorded.
pub(super) fn ask(plan: &Plan) -> Result<(), Failure> {
    eprint!("{}", summary(plan));
    eprint!("type the env's name (`{}`) to go on: ", plan.env);
    let mut answer = String::new();
    let read = std::io::stdin().lock().read_line(&mut answer);
    if read.is_ok_and(|n| n > 0) && answer.trim() == plan.env {
        return Ok(());
    }
    if !answer.ends_with('\n') {
        eprintln!();
    }
    Err(Failure::user(format!(
        "not confirmed: nothing ran in `{}` and nothing was recorded",
        plan.env
    )))
}

/// What will run, and each service's version.
fn summary(plan: &Plan) -> String {
    let mut out = format!(
        "`{}` is a protected env: {} · workflow {} · version {}\n",
        plan.env,
        plan.pipeline,
        plan.workflow,
        escape(&plan.version)
    );
    let (run, skipped): (Vec<_>, Vec<_>) = plan.instances.iter().partition(|i| i.skip().is_none());
    let ids = run.iter().map(|i| i.id.to_string());
    let _ = writeln!(
        out,
        "  runs     {} ({} instance{})",
        capped(ids, run.len()),
        run.len(),
        plural(run.len())
    );
    if !skipped.is_empty() {
        let skips = skipped.iter().filter_map(|i| Some(format!("{} ({})", i.id, i.skip()?)));
        let _ = writeln!(out, "  skips    {}", capped(skips, skipped.len()));
    }
    let mut versions: Vec<(&str, &str)> = Vec::new();
    for instance in &run {
        if let Some(service) = &instance.service
            && !versions.iter().any(|(s, _)| *s == &**service)
        {
            versions.push((service, &instance.version));
        }
    }
    if !versions.is_empty() {
        let list = versions.iter().map(|(s, v)| format!("{s} {}", escape(v)));
        let _ = writeln!(out, "  versions {}", capped(list, versions.len()));
    }
    out
}

/// The first items of a list, joined, and how many more there are: a plan
/// may have thousands of instances.
fn capped(items: impl Iterator<Item = String>, count: usize) -> String {
    const SHOWN: usize = 20;
    let mut text = items.take(SHOWN).collect::<Vec<_>>().join(", ");
    if count > SHOWN {
        let _ = write!(text, " and {} more", count - SHOWN);
    }
    text
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}
