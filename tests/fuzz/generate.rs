//! A grammar-aware generator: random pipelines that use the whole language
//! (vars that refer to vars, envs that extend envs and override values,
//! services with attributes and `after`, per-service and global phases with
//! `after` on phases and instances, conditions, interpolations, timeouts,
//! retries, workflows), written in a random layout (blanks, tabs, CRLF,
//! comments, one- and three-quote strings). Most of them compile and plan;
//! the rest are near misses (an `after` outside its workflow, a value an env
//! does not have), which is what reaches the checker's deeper rules. The
//! token-level mutations in `mod.rs` then break them.

use std::fmt::Write as _;

use proptest::prelude::*;

/// The words names are drawn from (some are keywords, which are names
/// where a name is expected).
const NAMES: &[&str] = &[
    "api", "web", "worker", "db", "build", "push", "migrate", "rollout", "smoke", "notify", "run", "env", "phase",
    "a-1", "b_2", "_x", "deploy",
];
const ENVS: &[&str] = &["dev", "staging", "prod", "qa", "eu-west"];
const WORKFLOWS: &[&str] = &["build", "deploy", "rollback", "verify", "release"];
const BUILTINS: &[&str] = &["env", "version", "release", "pipeline", "workflow", "phase"];

/// One generated pipeline, before it is written out.
#[derive(Clone, Debug)]
pub(crate) struct Model {
    vars: Vec<(usize, Vec<Piece>)>,
    envs: Vec<Env>,
    services: Vec<Service>,
    phases: Vec<Phase>,
    workflows: Vec<(usize, Vec<usize>)>,
    layout: Layout,
}

#[derive(Clone, Debug)]
struct Env {
    name: usize,
    parent: Option<usize>,
    values: Vec<(usize, Vec<Piece>)>,
}

#[derive(Clone, Debug)]
struct Service {
    name: usize,
    attrs: Vec<(usize, Vec<Piece>)>,
    after: Vec<usize>,
}

#[derive(Clone, Debug)]
struct Phase {
    name: usize,
    per_service: bool,
    after: Vec<(usize, Option<usize>)>,
    when: Option<Cond>,
    run: Option<(Vec<Piece>, bool)>,
    timeout: Option<(u32, usize)>,
    retry: Option<(u32, Option<(u32, usize)>)>,
}

/// A part of a string: text, or an interpolation.
#[derive(Clone, Debug)]
enum Piece {
    Text(usize),
    Var(usize),
    Builtin(usize),
    Service,
    Attr,
}

const TEXTS: &[&str] = &[
    "echo ",
    "make ",
    " && ",
    "$HOME",
    "-",
    "x",
    " ",
    "é",
    "\\\"q\\\"",
    "{{{{lit}}",
    "\\t",
];

#[derive(Clone, Debug)]
enum Cond {
    Bare(usize),
    Eq(usize, usize, bool),
    Not(Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

/// Blanks, line ends and comments.
#[derive(Clone, Copy, Debug)]
struct Layout {
    indent: usize,
    crlf: bool,
    comments: bool,
    one_line_workflows: bool,
}

fn pieces() -> impl Strategy<Value = Vec<Piece>> {
    proptest::collection::vec(
        prop_oneof![
            4 => (0..TEXTS.len()).prop_map(Piece::Text),
            2 => (0..6usize).prop_map(Piece::Var),
            1 => (0..BUILTINS.len()).prop_map(Piece::Builtin),
            1 => Just(Piece::Service),
            1 => Just(Piece::Attr),
        ],
        0..5,
    )
}

fn cond() -> impl Strategy<Value = Cond> {
    let leaf = prop_oneof![
        (0..8usize).prop_map(Cond::Bare),
        (0..8usize, 0..ENVS.len(), any::<bool>()).prop_map(|(a, b, eq)| Cond::Eq(a, b, eq)),
    ];
    leaf.prop_recursive(3, 8, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|c| Cond::Not(Box::new(c))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Cond::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| Cond::Or(Box::new(a), Box::new(b))),
        ]
    })
}

fn assignments(
    names: std::ops::Range<usize>,
    count: std::ops::Range<usize>,
) -> impl Strategy<Value = Vec<(usize, Vec<Piece>)>> {
    proptest::collection::vec((names, pieces()), count)
}

fn phase() -> impl Strategy<Value = Phase> {
    (
        0..NAMES.len(),
        any::<bool>(),
        proptest::collection::vec((0..NAMES.len(), proptest::option::weighted(0.2, 0..NAMES.len())), 0..3),
        proptest::option::weighted(0.3, cond()),
        proptest::option::weighted(0.9, (pieces(), any::<bool>())),
        proptest::option::weighted(0.2, (0..120u32, 0..4usize)),
        proptest::option::weighted(0.2, (0..4u32, proptest::option::of((0..30u32, 0..4usize)))),
    )
        .prop_map(|(name, per_service, after, when, run, timeout, retry)| Phase {
            name,
            per_service,
            after,
            when,
            run,
            timeout,
            retry,
        })
}

/// A random pipeline.
pub(crate) fn model() -> impl Strategy<Value = Model> {
    let envs = proptest::collection::vec(
        (
            0..ENVS.len(),
            proptest::option::weighted(0.5, 0..ENVS.len()),
            assignments(0..6, 0..3),
        ),
        1..4,
    )
    .prop_map(|envs| {
        envs.into_iter()
            .map(|(name, parent, values)| Env { name, parent, values })
            .collect()
    });
    let services = proptest::collection::vec(
        (
            0..NAMES.len(),
            assignments(0..3, 0..3),
            proptest::collection::vec(0..NAMES.len(), 0..2),
        ),
        0..4,
    )
    .prop_map(|services| {
        services
            .into_iter()
            .map(|(name, attrs, after)| Service { name, attrs, after })
            .collect()
    });
    let layout = (0..3usize, proptest::bool::weighted(0.15), any::<bool>(), any::<bool>()).prop_map(
        |(indent, crlf, comments, one_line_workflows)| Layout {
            indent,
            crlf,
            comments,
            one_line_workflows,
        },
    );
    (
        assignments(0..6, 0..5),
        envs,
        services,
        proptest::collection::vec(phase(), 1..7),
        proptest::collection::vec(
            (0..WORKFLOWS.len(), proptest::collection::vec(0..NAMES.len(), 1..6)),
            1..3,
        ),
        layout,
    )
        .prop_map(|(vars, envs, services, phases, workflows, layout)| Model {
            vars,
            envs,
            services,
            phases,
            workflows,
            layout,
        })
}

/// The vars of `vars` that a value of `vK` may refer to: those below `K`.
fn below(vars: &[usize], k: usize) -> Vec<usize> {
    vars.iter().copied().filter(|&v| v < k).collect()
}

/// Names of vars and attributes, by index.
fn var(i: usize) -> String {
    format!("v{i}")
}
fn attr(i: usize) -> String {
    format!("attr{i}")
}

impl Model {
    /// The pipeline as text. Phases refer only to phases before them and
    /// services to services before them (as `NAMES` indexes picked
    /// independently would often not), so that most files compile.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let nl = if self.layout.crlf { "\r\n" } else { "\n" };
        let ind = ["  ", "\t", "    "][self.layout.indent];
        if self.layout.comments {
            let _ = write!(out, "# generated{nl}");
        }
        let _ = write!(out, "pipeline fuzz{nl}{nl}");
        let mut globals: Vec<usize> = Vec::new();
        for (name, value) in &self.vars {
            if globals.contains(name) {
                continue;
            }
            let below = below(&globals, *name);
            let _ = write!(out, "var {} = {}{nl}", var(*name), string(value, false, false, &below));
            globals.push(*name);
        }
        globals.sort_unstable();
        self.render_envs(&mut out, nl, ind, &globals);
        let services = self.render_services(&mut out, nl, ind, &globals);
        let phases = self.render_phases(&mut out, nl, ind, &services, &globals);
        for (name, members) in &self.workflows {
            let mut members: Vec<&str> = members
                .iter()
                .filter_map(|&m| phases.get(m % phases.len().max(1)).copied())
                .collect();
            let mut seen = Vec::new();
            members.retain(|m| {
                if seen.contains(m) {
                    false
                } else {
                    seen.push(*m);
                    true
                }
            });
            let sep = if self.layout.one_line_workflows {
                " ".to_owned()
            } else {
                format!("{nl}{ind}")
            };
            let _ = write!(
                out,
                "workflow {} {{{sep}{}{}}}{nl}",
                WORKFLOWS[*name],
                members.join(&sep),
                if self.layout.one_line_workflows { " " } else { nl }
            );
        }
        out
    }

    fn render_envs(&self, out: &mut String, nl: &str, ind: &str, globals: &[usize]) {
        let mut declared: Vec<&str> = Vec::new();
        for env in &self.envs {
            let name = ENVS[env.name];
            if declared.contains(&name) {
                continue;
            }
            let parent = env
                .parent
                .and_then(|p| declared.get(p % declared.len().max(1)).copied());
            let _ = write!(out, "env {name}");
            if let Some(parent) = parent {
                let _ = write!(out, " extends {parent}");
            }
            let _ = write!(out, " {{{nl}");
            let mut set = Vec::new();
            for (value, text) in &env.values {
                if set.contains(value) {
                    continue;
                }
                set.push(*value);
                let _ = write!(
                    out,
                    "{ind}{} = {}{nl}",
                    var(*value),
                    string(text, false, false, &below(globals, *value))
                );
            }
            let _ = write!(out, "}}{nl}");
            declared.push(name);
        }
    }

    fn render_services(&self, out: &mut String, nl: &str, ind: &str, globals: &[usize]) -> Vec<&'static str> {
        let mut declared: Vec<&'static str> = Vec::new();
        for service in &self.services {
            let name = NAMES[service.name];
            if declared.contains(&name) {
                continue;
            }
            let _ = write!(out, "service {name} {{{nl}");
            let mut set = vec![0];
            let _ = write!(out, "{ind}{} = \"{name}\"{nl}", attr(0));
            for (a, value) in &service.attrs {
                if set.contains(a) {
                    continue;
                }
                set.push(*a);
                let _ = write!(out, "{ind}{} = {}{nl}", attr(*a), string(value, false, false, globals));
            }
            if !declared.is_empty() {
                for after in &service.after {
                    let _ = write!(out, "{ind}after {}{nl}", declared[after % declared.len()]);
                }
            }
            let _ = write!(out, "}}{nl}");
            declared.push(name);
        }
        declared
    }

    fn render_phases(
        &self,
        out: &mut String,
        nl: &str,
        ind: &str,
        services: &[&str],
        globals: &[usize],
    ) -> Vec<&'static str> {
        let mut declared: Vec<(&'static str, bool)> = Vec::new();
        for phase in &self.phases {
            let name = NAMES[phase.name];
            if declared.iter().any(|&(declared, _)| declared == name) {
                continue;
            }
            let per_service = phase.per_service && !services.is_empty();
            let _ = write!(out, "phase {name} {{{nl}");
            if self.layout.comments {
                let _ = write!(out, "{ind}# {name}{nl}");
            }
            if per_service {
                let _ = write!(out, "{ind}for each service{nl}");
            }
            if !declared.is_empty() {
                let after: Vec<String> = phase
                    .after
                    .iter()
                    .map(|&(p, service)| {
                        let (target, target_per_service) = declared[p % declared.len()];
                        match service {
                            Some(s) if target_per_service => format!("{target}[{}]", services[s % services.len()]),
                            _ => target.to_owned(),
                        }
                    })
                    .collect();
                if !after.is_empty() {
                    let _ = write!(out, "{ind}after {}{nl}", after.join(", "));
                }
            }
            if let Some(when) = &phase.when {
                let _ = write!(out, "{ind}when {}{nl}", condition(when, globals));
            }
            if let Some((run, triple)) = &phase.run {
                let _ = write!(out, "{ind}run {}{nl}", string(run, *triple, per_service, globals));
            }
            if let Some((amount, unit)) = phase.timeout {
                let _ = write!(out, "{ind}timeout {}{}{nl}", amount.max(1), ["ms", "s", "m", "h"][unit]);
            }
            if let Some((count, backoff)) = phase.retry {
                let _ = write!(out, "{ind}retry {count}");
                if let Some((amount, unit)) = backoff {
                    let _ = write!(out, " backoff {amount}{}", ["ms", "s", "m", "h"][unit]);
                }
                out.push_str(nl);
            }
            let _ = write!(out, "}}{nl}");
            declared.push((name, per_service));
        }
        declared.into_iter().map(|(name, _)| name).collect()
    }
}

/// A string literal: `"…"` or `"""…"""`. `{{service}}` and attributes only
/// where a service is in scope (else `{{version}}` takes their place), and
/// vars only from `vars` (every service has `attr0`; a value for `vK` refers
/// only to vars below `K`, so there are no cycles).
fn string(pieces: &[Piece], triple: bool, service: bool, vars: &[usize]) -> String {
    let mut body = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => body.push_str(
                if triple {
                    TEXTS[*t].replace("\\\"", "\"").replace("\\t", "\t")
                } else {
                    TEXTS[*t].to_owned()
                }
                .as_str(),
            ),
            Piece::Var(v) if !vars.is_empty() => {
                let _ = write!(body, "{{{{{}}}}}", var(vars[v % vars.len()]));
            }
            Piece::Builtin(b) => {
                let _ = write!(body, "{{{{{}}}}}", BUILTINS[*b]);
            }
            Piece::Service if service => body.push_str("{{service}}"),
            Piece::Attr if service => body.push_str("{{service.attr0}}"),
            Piece::Var(_) | Piece::Service | Piece::Attr => body.push_str("{{version}}"),
        }
    }
    if triple {
        format!("\"\"\"\n{body}\n\"\"\"")
    } else {
        format!("\"{body}\"")
    }
}

/// A condition on `env` and the global vars (`push` when there are none).
fn condition(cond: &Cond, vars: &[usize]) -> String {
    let name = |v: usize| {
        if vars.is_empty() {
            "push".to_owned()
        } else {
            var(vars[v % vars.len()])
        }
    };
    match cond {
        Cond::Bare(v) => name(*v),
        Cond::Eq(v, env, eq) => {
            let left = if *v == 0 { "env".to_owned() } else { name(*v) };
            format!("{left} {} \"{}\"", if *eq { "==" } else { "!=" }, ENVS[*env])
        }
        Cond::Not(c) => format!("!({})", condition(c, vars)),
        Cond::And(a, b) => format!("({} && {})", condition(a, vars), condition(b, vars)),
        Cond::Or(a, b) => format!("{} || {}", condition(a, vars), condition(b, vars)),
    }
}
