//! Secrets at the command line: a run reads its secrets before anything
//! runs (a missing one is exit 1, dry runs too), `--set` cannot give a
//! secret's name a value, and plans list the secrets by where they come
//! from, never by value.

use std::io::{self, Write};
use std::path::Path;

use super::Failure;
use super::output::escape;
use crate::check::{Pipeline, Secret};
use crate::engine::{self, Secrets};

/// The secrets of env `env`, read now; the first that cannot be read is
/// the error (each of the others is named in its help).
pub(super) fn read(pipeline: &Pipeline<'_>, env: &str, dir: &Path) -> Result<Secrets, Failure> {
    engine::read_secrets(pipeline, env, dir).map_err(|missing| {
        let others: Vec<String> = missing.iter().skip(1).map(ToString::to_string).collect();
        let help = if others.is_empty() {
            "set the variable or create the file, then run again; nothing has run".to_owned()
        } else {
            format!("also: {}; nothing has run", others.join("; "))
        };
        Failure {
            help: Some(help),
            ..Failure::user(missing[0].to_string())
        }
    })
}

/// Refuses `--set NAME=…` where `NAME` is a secret: a value on the command
/// line is in the process table, and a secret is not a variable.
pub(super) fn refuse_set(pipeline: &Pipeline<'_>, set: &[(String, String)]) -> Result<(), Failure> {
    match set.iter().find(|(key, _)| pipeline.is_secret(key)) {
        None => Ok(()),
        Some((key, _)) => Err(Failure {
            help: Some(format!(
                "its value comes from where `secret {key}` says; `--set` values are not secret"
            )),
            ..Failure::user(format!("`--set {key}` cannot set the secret `{key}`"))
        }),
    }
}

/// The secrets of env `env` as a plan shows them.
pub(super) fn planned<'p, 's>(pipeline: &'p Pipeline<'s>, env: &str) -> Vec<&'p Secret<'s>> {
    pipeline
        .env_id(env)
        .map(|id| pipeline.secrets_in(id))
        .unwrap_or_default()
}

/// The block a plan's text shows its secrets in (nothing without any):
/// each as the variable commands read and `<secret from env VAR>` or
/// `<secret from file PATH>`.
pub(super) fn text(secrets: &[&Secret<'_>], out: &mut impl Write) -> io::Result<()> {
    if secrets.is_empty() {
        return Ok(());
    }
    let width = secrets.iter().map(|s| s.name.name.len()).max().unwrap_or(0) + 1;
    writeln!(out, "\nsecrets, in every command's environment:")?;
    for secret in secrets {
        let name = format!("${}", secret.name.name);
        writeln!(out, "  {name:<width$}  {}", escape(&secret.to_string()))?;
    }
    Ok(())
}
