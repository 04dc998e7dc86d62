//! Hovers: a phase's instances with what each waits for (as the graph
//! resolved them) and the workflows that list it; any other name's kind
//! and declarations. Both read the document's one analysis.

use std::fmt::Write as _;

use petgraph::graph::NodeIndex;

use super::document::{Analysis, Document};
use crate::check::{Kind, Name, PhaseId};
use crate::graph::{Compilation, Instance, PhaseGraph};
use crate::syntax::Span;

/// At most this many instances are listed in a phase's hover.
const HOVER_INSTANCES: usize = 20;

/// What a phase's hover needs from a compilation, kept as spans into the
/// text of its version (the compilation itself borrows the text).
#[derive(Default)]
pub(super) struct Hovers {
    graph: PhaseGraph,
    /// Each phase's name and whether it runs for each service, in
    /// declaration (so file) order.
    phases: Vec<(Span, bool)>,
    /// Each service's name.
    services: Vec<Span>,
    /// Each workflow's name and phases.
    workflows: Vec<(Span, Vec<PhaseId>)>,
}

impl Hovers {
    /// Takes the graph out of `compilation`.
    pub(super) fn new(compilation: &mut Compilation<'_>) -> Self {
        let (Some(pipeline), Some(graph)) = (&compilation.pipeline, compilation.graph.take()) else {
            return Self::default();
        };
        Self {
            graph,
            phases: pipeline.phases.values().map(|p| (p.name.span, p.per_service)).collect(),
            services: pipeline.services.values().map(|s| s.name.span).collect(),
            workflows: pipeline
                .workflows
                .values()
                .map(|w| (w.name.span, w.phases.clone()))
                .collect(),
        }
    }

    fn instances(&self, phase: PhaseId) -> Vec<NodeIndex> {
        if self.phases[phase].1 {
            (0..self.services.len())
                .map(|service| self.graph.node(phase, Some(service)))
                .collect()
        } else {
            vec![self.graph.node(phase, None)]
        }
    }

    fn id(&self, document: &Document, instance: Instance) -> String {
        let phase = document.slice(self.phases[instance.phase].0);
        match instance.service {
            Some(service) => format!("{phase}[{}]", document.slice(self.services[service])),
            None => phase.to_owned(),
        }
    }
}

/// A `$NAME` or `${NAME}` at byte `offset` (a command reading a secret
/// from its environment) where `NAME` is a declared secret, as a use of it.
pub(super) fn shell_secret(document: &Document, analysis: &Analysis, offset: usize) -> Option<Name> {
    let text = document.text.as_str();
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let offset = crate::syntax::floor_char_boundary(text, offset);
    let start = text[..offset].trim_end_matches(is_name).len();
    let end = offset + text[offset..].len() - text[offset..].trim_start_matches(is_name).len();
    let before = &text[..start];
    if start == end || !(before.ends_with('$') || before.ends_with("${")) {
        return None;
    }
    let word = &text[start..end];
    let declaration = analysis
        .resolution
        .names()
        .iter()
        .find(|n| n.kind == Kind::Secret && n.definition && document.slice(n.span) == word)?;
    Some(Name {
        kind: Kind::Secret,
        span: Span::new(start, end),
        target: declaration.target,
        definition: false,
    })
}

/// Every `$NAME` and `${NAME}` in a `run` command where `NAME` is a
/// declared secret, as uses of it, in file order (rename and semantic
/// tokens treat them as the `{{…}}` uses of the checker's table).
pub(super) fn shell_uses(document: &Document, analysis: &Analysis) -> Vec<Name> {
    let mut secrets: Vec<(&str, Option<Span>)> = analysis
        .resolution
        .names()
        .iter()
        .filter(|n| n.kind == Kind::Secret && n.definition)
        .map(|n| (document.slice(n.span), n.target))
        .collect();
    if secrets.is_empty() {
        return Vec::new();
    }
    // The first declaration of a name is its target (stable sort).
    secrets.sort_by_key(|&(name, _)| name);
    secrets.dedup_by_key(|&mut (name, _)| name);
    let mut uses = Vec::new();
    for &command in &analysis.commands {
        let text = document.slice(command);
        let bytes = text.as_bytes();
        for (at, _) in text.match_indices('$') {
            let start = at + 1 + usize::from(bytes.get(at + 1) == Some(&b'{'));
            let len = bytes[start.min(bytes.len())..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count();
            let word = &text[start.min(text.len())..(start + len).min(text.len())];
            if let Ok(found) = secrets.binary_search_by_key(&word, |&(name, _)| name) {
                uses.push(Name {
                    kind: Kind::Secret,
                    span: Span::new(command.start() + start, command.start() + start + len),
                    target: secrets[found].1,
                    definition: false,
                });
            }
        }
    }
    uses
}

/// The hover text of the name `name`.
pub(super) fn hover(document: &Document, analysis: &Analysis, name: Name) -> Option<String> {
    match name.kind {
        Kind::Phase => phase_hover(document, analysis, name),
        _ => Some(name_hover(document, analysis, name)),
    }
}

/// A phase's hover: its instances with what each waits for, and the
/// workflows that list it.
fn phase_hover(document: &Document, analysis: &Analysis, name: Name) -> Option<String> {
    let phases = &analysis.hovers;
    let target = name.target?;
    let id = phases.phases.binary_search_by_key(&target, |p| p.0).ok()?;
    let mut out = format!("**phase** `{}`", document.slice(target));
    if phases.phases[id].1 {
        out.push_str(" · for each service");
    }
    out.push_str("\n\n");
    let instances = phases.instances(id);
    for &node in instances.iter().take(HOVER_INSTANCES) {
        let mut sources: Vec<_> = phases
            .graph
            .graph
            .neighbors_directed(node, petgraph::Direction::Incoming)
            .collect();
        sources.sort_unstable();
        sources.dedup();
        let _ = write!(out, "- `{}`", phases.id(document, phases.graph.graph[node]));
        if sources.is_empty() {
            out.push_str(" waits for nothing\n");
        } else {
            let names: Vec<String> = sources
                .iter()
                .map(|&s| format!("`{}`", phases.id(document, phases.graph.graph[s])))
                .collect();
            let _ = writeln!(out, " after {}", names.join(", "));
        }
    }
    if instances.len() > HOVER_INSTANCES {
        let _ = writeln!(out, "- … and {} more instances", instances.len() - HOVER_INSTANCES);
    }
    let workflows: Vec<String> = phases
        .workflows
        .iter()
        .filter(|w| w.1.contains(&id))
        .map(|w| format!("`{}`", document.slice(w.0)))
        .collect();
    if workflows.is_empty() {
        out.push_str("\nin no workflow");
    } else {
        let _ = write!(out, "\nworkflows: {}", workflows.join(", "));
    }
    Some(out)
}

/// Any other name's hover: what it is and where it is declared, with the
/// first line of each declaration.
fn name_hover(document: &Document, analysis: &Analysis, name: Name) -> String {
    let text = document.slice(name.span);
    let mut out = format!("**{}** `{text}`", name.kind.word());
    let definitions: Vec<Name> = analysis.resolution.same(name).filter(|n| n.definition).collect();
    if definitions.is_empty() {
        if name.kind == Kind::Var && crate::check::BUILTINS.contains(&text) {
            out.push_str(" · built-in");
        }
        return out;
    }
    out.push_str("\n\n```stagecraft\n");
    for definition in definitions {
        // The declaration (or env value, or attribute) that defines it, and
        // the block it is in.
        let mut line = String::new();
        for declaration in &analysis.outline {
            if !declaration.span.contains(definition.span.start()) {
                continue;
            }
            let own = declaration
                .children
                .iter()
                .find(|c| c.name == definition.span)
                .map_or(declaration.span, |c| c.span);
            let first = document.slice(own).lines().next().unwrap_or_default();
            if own == declaration.span {
                first.trim_end_matches(['{', ' ']).clone_into(&mut line);
            } else {
                let block = document.slice(declaration.name);
                line = format!("{first}  # {} {block}", declaration.kind.word());
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("```");
    if name.kind == Kind::Secret {
        let _ = write!(
            out,
            "\n\ncommands read it as `${text}`; its value is read when a run starts and never shown"
        );
    }
    out
}
