//! Which state a command uses: the global `--state URL` (or
//! `STAGECRAFT_STATE`) and the older `--state-dir PATH` (or
//! `STAGECRAFT_STATE_DIR`), resolved to one [`StateUrl`]. The command line
//! wins over the environment; `--state` wins over `--state-dir`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Subcommand};

use super::{Exit, Failure, Outcome, write_stdout};
use crate::state::{self, Backend, StateError, StateUrl};

/// `stagecraft state`.
#[derive(Args, Debug)]
pub(super) struct StateArgs {
    #[command(subcommand)]
    pub command: StateCommand,
}

/// `state copy`.
#[derive(Subcommand, Debug)]
pub(super) enum StateCommand {
    /// Copy every pipeline's history from one state to another (files to PostgreSQL or back)
    Copy {
        /// The state to copy (`file:PATH` or `postgres://…`)
        #[arg(long, value_name = "URL")]
        from: String,
        /// The state to copy into, which must hold no history unless --force
        #[arg(long, value_name = "URL")]
        to: String,
        /// Replace the copied pipelines' history in a target that has one
        #[arg(long)]
        force: bool,
    },
}

/// `stagecraft state copy --from URL --to URL [--force]`.
pub(super) fn state(args: &StateArgs) -> Outcome {
    let StateCommand::Copy { from, to, force } = &args.command;
    let open = |flag: &str, text: &str| {
        let url: StateUrl = text
            .parse()
            .map_err(|error| Failure::user(format!("invalid `--{flag}`: {error}")))?;
        Backend::open(&url, Path::new(".stagecraft")).map_err(Failure::from)
    };
    let (source, target) = (open("from", from)?, open("to", to)?);
    let copied = state::copy(&source, &target, *force).map_err(|error| match error {
        StateError::NotEmpty { .. } => Failure {
            exit: Exit::User,
            help: Some("--force replaces the history of the copied pipelines there".to_owned()),
            ..Failure::user(error.to_string())
        },
        other => Failure::from(other),
    })?;
    let mut out = String::new();
    if copied.pipelines.is_empty() {
        let _ = writeln!(out, "no history in `{}`: nothing copied", source.describe());
    }
    for (pipeline, count) in &copied.pipelines {
        let _ = writeln!(
            out,
            "copied {count} release{} of `{pipeline}` from `{}` to `{}`; `releases list` and `status` read the same on both",
            if *count == 1 { "" } else { "s" },
            source.describe(),
            target.describe()
        );
    }
    write_stdout(&out)
}

/// The state flags as given, and where each came from.
#[derive(Debug, Default)]
pub(super) struct StateFlags {
    /// `--state` or `STAGECRAFT_STATE`.
    pub url: Option<StateUrl>,
    /// `url` came from `STAGECRAFT_STATE`.
    pub url_from_env: bool,
    /// The command's `--state-dir` came from `STAGECRAFT_STATE_DIR`.
    pub dir_from_env: bool,
}

impl StateFlags {
    /// The flags' sources, from the parsed command line.
    ///
    /// # Errors
    ///
    /// The URL is not one stagecraft keeps state in (the message names the
    /// flag or the variable it came from).
    pub(super) fn new(url: Option<&str>, matches: &ArgMatches) -> Result<Self, String> {
        let url_from_env = source(matches, "state") == Some(ValueSource::EnvVariable);
        let url = url
            .map(|text| {
                text.parse::<StateUrl>().map_err(|error| {
                    let name = if url_from_env { "STAGECRAFT_STATE" } else { "--state" };
                    format!("invalid `{name}`: {error}")
                })
            })
            .transpose()?;
        Ok(Self {
            url,
            url_from_env,
            dir_from_env: source(matches, "state_dir") == Some(ValueSource::EnvVariable),
        })
    }

    /// The state to use: `--state`, else `--state-dir`, else
    /// `STAGECRAFT_STATE`, else `STAGECRAFT_STATE_DIR`, else `default`.
    pub(super) fn resolve(&self, state_dir: Option<&Path>, default: impl FnOnce() -> PathBuf) -> StateUrl {
        let dir = state_dir.map(|dir| StateUrl::File(dir.to_path_buf()));
        let url = self.url.clone();
        let chosen = if self.url_from_env {
            if self.dir_from_env { url.or(dir) } else { dir.or(url) }
        } else {
            url.or(dir)
        };
        chosen.unwrap_or_else(|| StateUrl::File(default()))
    }

    /// Whether a state was named at all (by a flag or a variable).
    pub(super) fn given(&self, state_dir: Option<&Path>) -> bool {
        self.url.is_some() || state_dir.is_some()
    }
}

/// Where argument `id` of the innermost subcommand that has it came from.
fn source(matches: &ArgMatches, id: &str) -> Option<ValueSource> {
    let inner = matches.subcommand().and_then(|(_, sub)| source(sub, id));
    inner.or_else(|| {
        matches
            .try_get_raw(id)
            .ok()
            .flatten()
            .and_then(|_| matches.value_source(id))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_wins() {
        let pg = StateUrl::Postgres("postgres://ci@db/team".into());
        let dir = Path::new("elsewhere");
        let default = || PathBuf::from(".stagecraft");
        let flags = |url: Option<StateUrl>, url_from_env, dir_from_env| StateFlags {
            url,
            url_from_env,
            dir_from_env,
        };
        assert_eq!(
            flags(None, false, false).resolve(None, default),
            StateUrl::File(".stagecraft".into())
        );
        assert_eq!(flags(Some(pg.clone()), false, false).resolve(Some(dir), default), pg);
        assert_eq!(
            flags(Some(pg.clone()), true, false).resolve(Some(dir), default),
            StateUrl::File(dir.into())
        );
        assert_eq!(flags(Some(pg.clone()), true, true).resolve(Some(dir), default), pg);
        assert!(!flags(None, false, false).given(None));
    }

    fn parse_state_url(text: &str) -> Result<StateUrl, String> {
        text.parse()
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_state_url("file:/srv/state"),
            Ok(StateUrl::File("/srv/state".into()))
        );
        assert_eq!(
            parse_state_url("file:///srv/state"),
            Ok(StateUrl::File("/srv/state".into()))
        );
        assert!(matches!(
            parse_state_url("postgresql://ci@db/team"),
            Ok(StateUrl::Postgres(_))
        ));
        let error = parse_state_url("mysql://ci:s3cret@db/team").unwrap_err();
        assert!(error.contains("the scheme `mysql`"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
        assert!(parse_state_url("file:").is_err());
    }
}
