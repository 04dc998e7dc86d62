//! Secrets as declared: each name must be usable as an environment
//! variable and unique in its scope (global, or one env), each source plain
//! text (a variable name or a path), and no secret may share its name with
//! a variable (`{{name}}` and `$name` would then mean two things). Whether
//! a `{{name}}` names a secret is `variables`' concern; reading values is
//! the run's (`crate::engine::read_secrets`).

use std::borrow::Cow;

use super::pipeline::{Pipeline, Secret};
use super::resolution::{Resolution, Values};
use super::{BUILTINS, HashMap, NameMap};
use crate::syntax::ast::{Part, SecretDecl, SecretFrom, Template};
use crate::syntax::{Code, Diagnostic, Span};

/// The secrets of one scope (`env` names the env; `None` is global),
/// reporting repeated names and unusable names or sources, and recording
/// each declaration.
pub(super) fn lower<'s>(
    decls: Vec<SecretDecl<'s>>,
    env: Option<&str>,
    values: &mut Values<'s>,
    resolution: &mut Resolution,
    diagnostics: &mut Vec<Diagnostic>,
) -> NameMap<&'s str, Secret<'s>> {
    let mut secrets: NameMap<&'s str, Secret<'s>> = NameMap::default();
    let place = env.map_or_else(String::new, |env| format!(" in env `{env}`"));
    for decl in decls {
        let name = decl.name;
        values.declare_secret(resolution, name.name, name.span);
        if let Some(first) = secrets.get(name.name) {
            diagnostics.push(
                Diagnostic::error(Code::DuplicateName, format!("duplicate secret `{}`{place}", name.name))
                    .label(name.span, format!("`{}` declared again here", name.name))
                    .label(first.name.span, "first declared here")
                    .help("remove one of the two; an env's secret overrides a global one of the same name"),
            );
            continue;
        }
        if name.name.starts_with("STAGECRAFT_") {
            diagnostics.push(
                Diagnostic::error(
                    Code::InvalidSecret,
                    format!("secret `{}` has a name stagecraft gives its own variables", name.name),
                )
                .label(
                    name.span,
                    "`STAGECRAFT_…` variables are set by stagecraft for every command",
                )
                .help("give the secret another name"),
            );
        } else if name.name.contains('-') {
            diagnostics.push(
                Diagnostic::error(
                    Code::InvalidSecret,
                    format!("secret `{}` cannot be an environment variable", name.name),
                )
                .label(
                    name.span,
                    "commands see a secret as `$NAME`, and `-` is not allowed there",
                )
                .help(format!("use `_` instead: `{}`", name.name.replace('-', "_"))),
            );
        }
        let source = plain_source(&decl.source, decl.from, diagnostics);
        secrets.insert(
            name.name,
            Secret {
                name,
                from: decl.from,
                source,
            },
        );
    }
    secrets
}

/// The text of a secret's source, reporting an interpolation, an empty
/// source and an environment variable name that cannot be one.
fn plain_source(template: &Template<'_>, from: SecretFrom, diagnostics: &mut Vec<Diagnostic>) -> String {
    let mut text = String::new();
    for part in &template.parts {
        match part {
            Part::Text(piece) => text.push_str(piece),
            Part::Var(var) => diagnostics.push(
                Diagnostic::error(Code::InvalidSecret, "where a secret comes from is plain text")
                    .label(var.span, "no `{{…}}` here")
                    .help("write the variable's name or the file's path as it is"),
            ),
        }
    }
    let what = match from {
        SecretFrom::Env => "environment variable",
        SecretFrom::File => "file",
    };
    if text.is_empty() {
        diagnostics.push(
            Diagnostic::error(Code::InvalidSecret, format!("a secret from an unnamed {what}"))
                .label(template.span, "empty")
                .help(format!("name the {what} the value is read from")),
        );
    } else if from == SecretFrom::Env && !is_variable_name(&text) {
        diagnostics.push(
            Diagnostic::error(
                Code::InvalidSecret,
                format!("`{text}` is not an environment variable name"),
            )
            .label(
                template.span,
                "expected letters, digits and `_`, not starting with a digit",
            )
            .help("name the variable as the shell does, e.g. `PROD_DB_PASSWORD`"),
        );
    }
    text
}

/// Whether `name` can be a shell variable: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Reports every secret that has the name of a variable (a global `var`,
/// an env value or a built-in).
pub(super) fn clashes(pipeline: &Pipeline<'_>, diagnostics: &mut Vec<Diagnostic>) {
    let mut variables: HashMap<&str, Option<Span>> = HashMap::default();
    for builtin in BUILTINS.iter().chain(&["service"]) {
        variables.insert(builtin, None);
    }
    let values = pipeline.envs.values().flat_map(|env| env.values.iter());
    for (name, value) in pipeline.vars.iter().chain(values) {
        variables.entry(name).or_insert(Some(value.span));
    }
    let secrets = pipeline
        .secrets
        .values()
        .chain(pipeline.envs.values().flat_map(|env| env.secrets.values()));
    for secret in secrets {
        let Some(variable) = variables.get(secret.name.name) else {
            continue;
        };
        let name = secret.name.name;
        let mut diagnostic = Diagnostic::error(
            Code::InvalidSecret,
            format!("secret `{name}` has the name of a variable"),
        )
        .label(secret.name.span, "declared as a secret here");
        let help: Cow<'_, str> = match variable {
            Some(span) => {
                diagnostic = diagnostic.label(*span, "and given a value here");
                "rename one of them: `{{NAME}}` reads a variable, `$NAME` a secret".into()
            }
            None => format!("`{name}` is a built-in variable; rename the secret").into(),
        };
        diagnostics.push(diagnostic.help(help));
    }
}
