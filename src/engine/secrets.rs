//! A run's secrets: read once, before anything runs, from stagecraft's own
//! environment or from files, for the env the run is in. The values go to
//! the commands' environment (see [`ShellRunner::with_secrets`]) and to
//! the output's masker, nowhere else: [`Secrets`] never shows them in its
//! `Debug`, and a missing secret is reported by name and source only.
//!
//! [`ShellRunner::with_secrets`]: super::ShellRunner::with_secrets

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use super::output::SecretValues;
use crate::check::{Pipeline, Secret};
use crate::syntax::ast::SecretFrom;

/// The secrets of a run: each name with its value, and the values to mask.
#[derive(Clone, Default)]
pub struct Secrets {
    variables: Arc<[(String, String)]>,
    values: SecretValues,
}

impl Secrets {
    /// Secrets from `(name, value)` pairs.
    #[must_use]
    pub fn new(variables: Vec<(String, String)>) -> Self {
        let values = SecretValues::new(variables.iter().map(|(_, value)| value.clone()));
        Self {
            variables: variables.into(),
            values,
        }
    }

    /// Each secret's name (the environment variable a command sees) and
    /// value.
    #[must_use]
    pub fn variables(&self) -> &[(String, String)] {
        &self.variables
    }

    /// The values, for masking.
    #[must_use]
    pub fn values(&self) -> &SecretValues {
        &self.values
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.variables.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("Secrets").field("names", &names).finish_non_exhaustive()
    }
}

/// A secret whose value cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingSecret {
    /// The secret's name.
    pub name: String,
    /// What is wrong, naming the variable or the file.
    pub problem: String,
}

impl fmt::Display for MissingSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "secret `{}` is missing: {}", self.name, self.problem)
    }
}

/// Reads the secrets of env `env` (see [`Pipeline::secrets_in`]); a file's
/// path is relative to `dir`, the pipeline file's directory. A file's
/// value loses one final line break (`echo pw > file` writes one).
///
/// # Errors
///
/// Every secret that cannot be read: an environment variable that is not
/// set, empty or not UTF-8; a file that is absent, unreadable, empty, not
/// UTF-8 or that holds a NUL byte.
pub fn read_secrets(pipeline: &Pipeline<'_>, env: &str, dir: &Path) -> Result<Secrets, Vec<MissingSecret>> {
    let Some(env) = pipeline.env_id(env) else {
        return Ok(Secrets::default());
    };
    let mut variables = Vec::new();
    let mut missing = Vec::new();
    for secret in pipeline.secrets_in(env) {
        match read_one(secret, dir) {
            Ok(value) => variables.push((secret.name.name.to_owned(), value)),
            Err(problem) => missing.push(MissingSecret {
                name: secret.name.name.to_owned(),
                problem,
            }),
        }
    }
    if missing.is_empty() {
        Ok(Secrets::new(variables))
    } else {
        Err(missing)
    }
}

fn read_one(secret: &Secret<'_>, dir: &Path) -> Result<String, String> {
    let source = &secret.source;
    let value = match secret.from {
        SecretFrom::Env => {
            let value =
                std::env::var_os(source).ok_or_else(|| format!("environment variable `{source}` is not set"))?;
            value
                .into_string()
                .map_err(|_| format!("environment variable `{source}` is not UTF-8 text"))?
        }
        SecretFrom::File => {
            let bytes = std::fs::read(dir.join(source)).map_err(|error| match error.kind() {
                std::io::ErrorKind::NotFound => format!("file `{source}` does not exist"),
                _ => format!("cannot read file `{source}`: {error}"),
            })?;
            let mut value = String::from_utf8(bytes).map_err(|_| format!("file `{source}` is not UTF-8 text"))?;
            if value.contains('\0') {
                return Err(format!(
                    "file `{source}` holds a NUL byte, which an environment variable cannot"
                ));
            }
            let trimmed = value
                .strip_suffix('\n')
                .map_or(value.len(), |rest| rest.strip_suffix('\r').unwrap_or(rest).len());
            value.truncate(trimmed);
            value
        }
    };
    if value.is_empty() {
        let what = match secret.from {
            SecretFrom::Env => format!("environment variable `{source}`"),
            SecretFrom::File => format!("file `{source}`"),
        };
        return Err(format!("{what} is empty"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "pipeline p\nsecret a from file \"global\"\nsecret b from file \"b\"\n\
                          env base { secret a from file \"base\" }\nenv dev extends base {}\n\
                          env other {}\nphase x { run \"true\" }\nworkflow w { x }\n";

    fn read(files: &[(&str, &[u8])], env: &str) -> Result<Vec<(String, String)>, Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let compilation = crate::graph::compile(SOURCE);
        let pipeline = compilation.pipeline.as_ref().unwrap();
        read_secrets(pipeline, env, dir.path())
            .map(|secrets| secrets.variables().to_vec())
            .map_err(|missing| missing.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn an_env_reads_its_own_secrets_over_its_parents_and_the_global_ones() {
        let files: &[(&str, &[u8])] = &[("global", b"g\n"), ("base", b"from base\r\n"), ("b", b"two\n\n")];
        let pair = |name: &str, value: &str| (name.to_owned(), value.to_owned());
        assert_eq!(read(files, "dev"), Ok(vec![pair("a", "from base"), pair("b", "two\n")]));
        assert_eq!(read(files, "other"), Ok(vec![pair("a", "g"), pair("b", "two\n")]));
    }

    #[test]
    fn every_secret_that_cannot_be_read_is_named_with_its_file() {
        let files: &[(&str, &[u8])] = &[("global", b"\n"), ("b", b"a\0b")];
        assert_eq!(
            read(files, "dev"),
            Err(vec![
                "secret `a` is missing: file `base` does not exist".to_owned(),
                "secret `b` is missing: file `b` holds a NUL byte, which an environment variable cannot".to_owned(),
            ])
        );
        assert_eq!(
            read(&[("global", b"\n"), ("b", b"\xff")], "other"),
            Err(vec![
                "secret `a` is missing: file `global` is empty".to_owned(),
                "secret `b` is missing: file `b` is not UTF-8 text".to_owned(),
            ])
        );
    }

    #[test]
    fn debug_shows_names_not_values() {
        let secrets = Secrets::new(vec![("token".to_owned(), "hunter2".to_owned())]);
        let shown = format!("{secrets:?}");
        assert!(shown.contains("token") && !shown.contains("hunter2"), "{shown}");
    }
}
