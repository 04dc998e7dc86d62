//! Plans and graphs as text: `plan --format text|ron`, `graph --format
//! dot|mermaid`. (Releases and `status` are `history.rs`.)
//! (A plan's `--format json` is serde's.)

use std::fmt::Write as _;
use std::io::{self, Write};

use super::output::escape;
use super::secrets;
use crate::check::Secret;
use crate::engine::{GraphView, Plan, PlannedInstance};

/// A plan for people: a header, the secrets commands will see (where each
/// comes from, never its value), then one row per instance (number, id,
/// what it waits for, policies) with its command beneath, `$`-prefixed.
/// Written as it goes: a plan of 10,000 instances is megabytes of text.
pub(super) fn plan_text(plan: &Plan, secrets: &[&Secret<'_>], out: &mut impl Write) -> io::Result<()> {
    let count = plan.instances.len();
    writeln!(
        out,
        "{} · workflow {} · env {} · version {} · {count} instance{}",
        plan.pipeline,
        plan.workflow,
        plan.env,
        escape(&plan.version),
        if count == 1 { "" } else { "s" }
    )?;
    secrets::text(secrets, out)?;
    let number_width = count.to_string().len();
    let id_width = plan.instances.iter().map(|p| p.id.chars().count()).max().unwrap_or(0);
    let after_width = plan.instances.iter().map(|p| after_len(plan, p)).max().unwrap_or(0);
    let indent = " ".repeat(number_width + 2);
    let mut row = String::new();
    for (index, instance) in plan.instances.iter().enumerate() {
        row.clear();
        let _ = write!(row, "{:>number_width$}  {:<id_width$}  ", index + 1, instance.id);
        let mut after_written = 0;
        for (n, id) in plan.after_ids(instance).enumerate() {
            row.push_str(if n == 0 { "after " } else { ", " });
            row.push_str(id);
        }
        after_written += after_len(plan, instance);
        for _ in after_written..after_width {
            row.push(' ');
        }
        row.push_str("  ");
        write_notes(&mut row, plan, instance);
        writeln!(out, "\n{}", row.trim_end())?;
        match &instance.command {
            Some(command) => {
                for line in command.lines() {
                    if line.is_empty() {
                        writeln!(out, "{indent}$")?;
                    } else {
                        writeln!(out, "{indent}$ {}", escape(line))?;
                    }
                }
            }
            None => writeln!(out, "{indent}(no command: a marker phase)")?,
        }
    }
    Ok(())
}

/// Width in characters of the "after a, b" column of one instance.
fn after_len(plan: &Plan, instance: &PlannedInstance) -> usize {
    plan.after_ids(instance)
        .enumerate()
        .map(|(n, id)| id.chars().count() + if n == 0 { "after ".len() } else { ", ".len() })
        .sum()
}

fn write_notes(row: &mut String, plan: &Plan, instance: &PlannedInstance) {
    let mut notes = Vec::new();
    if instance.unchanged {
        notes.push("skipped: unchanged".to_owned());
    } else if !instance.enabled {
        notes.push("skipped: condition is false".to_owned());
    }
    if *instance.version != *plan.version {
        notes.push(format!("version {}", instance.version));
    }
    if let Some(timeout) = instance.timeout_ms {
        notes.push(format!("timeout {}", duration(timeout)));
    }
    if instance.retry > 0 {
        let mut retry = format!("retry {}", instance.retry);
        if instance.backoff_ms > 0 {
            let _ = write!(retry, " backoff {}", duration(instance.backoff_ms));
        }
        notes.push(retry);
    }
    row.push_str(&notes.join(" · "));
}

/// Milliseconds as the language writes durations: `10m`, `1m30s`, `250ms`.
pub(super) fn duration(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if rest >= size {
            let _ = write!(out, "{}{unit}", rest / size);
            rest %= size;
        }
    }
    out
}

/// The plan as RON (the format of stagecraft's state files).
pub(super) fn plan_ron(plan: &Plan) -> Result<String, ron::Error> {
    let config = ron::ser::PrettyConfig::new().struct_names(true);
    let mut text = ron::ser::to_string_pretty(plan, config)?;
    text.push('\n');
    Ok(text)
}

/// Graphviz: instances in execution order, marker phases as ellipses,
/// instances whose condition is false dashed.
pub(super) fn dot(view: &GraphView) -> String {
    let mut out = format!(
        "digraph {} {{\n  rankdir=LR;\n  node [shape=box];\n",
        quote(&view.pipeline)
    );
    for node in &view.nodes {
        let mut attrs = Vec::new();
        if !node.command {
            attrs.push("shape=ellipse");
        }
        if node.enabled == Some(false) {
            attrs.push("style=dashed");
        }
        if attrs.is_empty() {
            let _ = writeln!(out, "  {};", quote(&node.id));
        } else {
            let _ = writeln!(out, "  {} [{}];", quote(&node.id), attrs.join(", "));
        }
    }
    for &(from, to) in &view.edges {
        let _ = writeln!(
            out,
            "  {} -> {};",
            quote(&view.nodes[from].id),
            quote(&view.nodes[to].id)
        );
    }
    out.push_str("}\n");
    out
}

/// Mermaid flowchart: nodes `n0…` labelled with their ids.
pub(super) fn mermaid(view: &GraphView) -> String {
    let mut out = String::from("flowchart LR\n");
    for (index, node) in view.nodes.iter().enumerate() {
        let (open, close) = if node.command { ("[", "]") } else { ("([", "])") };
        let class = if node.enabled == Some(false) { ":::skipped" } else { "" };
        let _ = writeln!(
            out,
            "  n{index}{open}\"{}\"{close}{class}",
            node.id.replace('"', "#quot;")
        );
    }
    for &(from, to) in &view.edges {
        let _ = writeln!(out, "  n{from} --> n{to}");
    }
    if view.nodes.iter().any(|n| n.enabled == Some(false)) {
        out.push_str("  classDef skipped stroke-dasharray: 5 5\n");
    }
    out
}

fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations_read_like_the_language() {
        assert_eq!(duration(600_000), "10m");
        assert_eq!(duration(90_500), "1m30s500ms");
        assert_eq!(duration(250), "250ms");
        assert_eq!(duration(0), "0s");
    }
}
