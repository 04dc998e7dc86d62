//! `stagecraft list`: what a pipeline declares (workflows with their
//! phases, phases with their dependencies, envs with their parents,
//! services), read from the compiled pipeline; and what to say when a
//! workflow name is no workflow's.

use std::fmt::Write as _;

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::{FileArg, Outcome, compile_valid, locate, print_json, read, write_stdout};
use crate::check::{Dependency, Pipeline};
use crate::graph::Compilation;

/// `stagecraft list`.
#[derive(Args, Debug)]
pub(super) struct ListArgs {
    #[command(flatten)]
    file: FileArg,
    /// Output format
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    format: ListFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ListFormat {
    Text,
    Json,
}

/// Everything `list` shows, in declaration order (the JSON output).
#[derive(Serialize)]
struct Listing<'a> {
    pipeline: &'a str,
    workflows: Vec<WorkflowItem<'a>>,
    phases: Vec<PhaseItem<'a>>,
    envs: Vec<EnvItem<'a>>,
    services: Vec<ServiceItem<'a>>,
}

#[derive(Serialize)]
struct WorkflowItem<'a> {
    name: &'a str,
    phases: Vec<&'a str>,
}

#[derive(Serialize)]
struct PhaseItem<'a> {
    name: &'a str,
    per_service: bool,
    /// Dependencies as written: `build`, or `push[api]` for one instance.
    after: Vec<String>,
    /// No command: a marker.
    marker: bool,
    workflows: Vec<&'a str>,
}

#[derive(Serialize)]
struct EnvItem<'a> {
    name: &'a str,
    extends: Option<&'a str>,
    /// Protected itself or through the env it extends.
    protected: bool,
}

#[derive(Serialize)]
struct ServiceItem<'a> {
    name: &'a str,
    after: Vec<&'a str>,
}

/// `stagecraft list`: needs a valid pipeline (else exit 2, as `plan`).
pub(super) fn list(args: &ListArgs) -> Outcome {
    let source = read(&locate(args.file.file.as_deref())?)?;
    let (pipeline, _) = compile_valid(&source)?;
    let listing = listing(&pipeline);
    match args.format {
        ListFormat::Json => print_json(&listing),
        ListFormat::Text => write_stdout(&text(&listing)),
    }
}

fn listing<'a>(pipeline: &'a Pipeline<'a>) -> Listing<'a> {
    let dependency = |d: &Dependency| {
        let phase = pipeline.phases[d.phase].name.name;
        match d.service {
            Some(service) => format!("{phase}[{}]", pipeline.services[service].name.name),
            None => phase.to_owned(),
        }
    };
    Listing {
        pipeline: pipeline.name,
        workflows: (pipeline.workflows.values())
            .map(|w| WorkflowItem {
                name: w.name.name,
                phases: w.phases.iter().map(|&p| pipeline.phases[p].name.name).collect(),
            })
            .collect(),
        phases: (pipeline.phases.values().enumerate())
            .map(|(id, p)| PhaseItem {
                name: p.name.name,
                per_service: p.per_service,
                after: p.after.iter().map(dependency).collect(),
                marker: p.run.is_none(),
                workflows: pipeline.workflows_with(id).collect(),
            })
            .collect(),
        envs: (pipeline.envs.values().enumerate())
            .map(|(id, e)| EnvItem {
                name: e.name.name,
                extends: e.parent.map(|p| pipeline.envs[p].name.name),
                protected: pipeline.is_protected(id),
            })
            .collect(),
        services: (pipeline.services.values())
            .map(|s| ServiceItem {
                name: s.name.name,
                after: s.after.iter().map(|&(id, _)| pipeline.services[id].name.name).collect(),
            })
            .collect(),
    }
}

/// Four sections, one row per name, its details in an aligned column.
fn text(listing: &Listing<'_>) -> String {
    let workflows = listing.workflows.iter().map(|w| (w.name, w.phases.join(" ")));
    let phases = listing.phases.iter().map(|p| {
        let mut notes = vec![if p.per_service { "for each service" } else { "global" }.to_owned()];
        if !p.after.is_empty() {
            notes.push(format!("after {}", p.after.join(", ")));
        }
        if p.marker {
            notes.push("marker".to_owned());
        }
        if p.workflows.is_empty() {
            notes.push("in no workflow".to_owned());
        }
        (p.name, notes.join(" · "))
    });
    let envs = listing.envs.iter().map(|e| {
        let mut notes = Vec::new();
        notes.extend(e.extends.map(|parent| format!("extends {parent}")));
        if e.protected {
            notes.push("protected".to_owned());
        }
        (e.name, notes.join(" · "))
    });
    let services = (listing.services.iter()).map(|s| {
        let after = if s.after.is_empty() {
            String::new()
        } else {
            format!("after {}", s.after.join(", "))
        };
        (s.name, after)
    });
    let mut out = String::new();
    section(&mut out, "workflows", workflows.collect());
    section(&mut out, "phases", phases.collect());
    section(&mut out, "envs", envs.collect());
    section(&mut out, "services", services.collect());
    out
}

fn section(out: &mut String, title: &str, rows: Vec<(&str, String)>) {
    if !out.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "{title}:");
    if rows.is_empty() {
        out.push_str("  (none)\n");
    }
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    for (name, detail) in rows {
        let _ = writeln!(out, "  {}", format!("{name:<width$}  {detail}").trim_end());
    }
}

/// The help for a workflow name that is no workflow's and close to none:
/// for a phase (or a near miss of one), the workflows that run it; else the
/// workflows there are.
pub(super) fn not_a_workflow(compilation: &Compilation<'_>, name: &str) -> Option<String> {
    let pipeline = compilation.pipeline.as_ref()?;
    let names = |names: Vec<&str>| names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    let all = || match pipeline.workflows.len() {
        0 => "the file declares no workflow".to_owned(),
        1 => format!("the only workflow is `{}`", pipeline.workflows[0].name.name),
        _ => format!("workflows: {}", names(pipeline.workflows.keys().copied().collect())),
    };
    let phase = pipeline.phases.get_index_of(name).map(|id| (id, true)).or_else(|| {
        let near = crate::syntax::suggest(name, pipeline.phases.keys().copied())?;
        pipeline.phases.get_index_of(near).map(|id| (id, false))
    });
    let Some((id, exact)) = phase else {
        return Some(all());
    };
    let phase = pipeline.phases[id].name.name;
    let what = if exact {
        format!("`{phase}` is a phase, not a workflow;")
    } else {
        format!("did you mean the phase `{phase}`?")
    };
    let workflows: Vec<&str> = pipeline.workflows_with(id).collect();
    Some(match workflows.as_slice() {
        [] => format!("{what} it is in no workflow; {}", all()),
        [one] => format!("{what} the workflow `{one}` runs it"),
        _ => format!("{what} the workflows {} run it", names(workflows)),
    })
}
