//! The flags the executing commands share (`build`, `deploy`, `run`,
//! `rollback`, `resume`) and the parsers of flag values: clap definitions
//! only.

use std::path::PathBuf;

use clap::Args;

use super::FileArg;
use crate::state::Wait;

/// What to run and where: the flags `build`, `deploy` and `run` share.
#[derive(Args, Debug)]
pub(super) struct Selection {
    #[command(flatten)]
    pub file: FileArg,
    /// The environment to run in
    #[arg(long, value_name = "ENV", env = "STAGECRAFT_ENV")]
    pub env: String,
    /// The version [default: `git rev-parse --short HEAD` in the pipeline's directory, `-dirty` appended when tracked files changed, else `unknown`]
    #[arg(long, value_name = "V")]
    pub version: Option<String>,
    /// Run only these services' instances (every global phase stays)
    #[arg(long, value_name = "a,b", value_delimiter = ',', value_parser = parse_service)]
    pub services: Option<Vec<String>>,
    /// Set a variable over everything the file says (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,
    #[command(flatten)]
    pub execution: Execution,
}

/// How to run: the flags every executing command takes.
#[derive(Args, Debug)]
pub(super) struct Execution {
    /// Print the plan and write nothing (`STAGECRAFT_DRY_RUN`: 1, true, yes or on)
    #[arg(long, env = "STAGECRAFT_DRY_RUN", value_parser = parse_truthy)]
    pub dry_run: bool,
    /// Run in a protected env without being asked to confirm
    #[arg(long)]
    pub yes: bool,
    /// Run up to N independent instances at once
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    #[command(flatten)]
    pub on_failure: OnFailure,
    /// Where state is kept: a state directory (the same as `--state file:PATH`) [default: .stagecraft beside the pipeline file]
    #[arg(long, value_name = "PATH", env = "STAGECRAFT_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Wait for another run to release the state (for DURATION, or as long as it takes)
    #[arg(
        long,
        value_name = "DURATION",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "forever",
        value_parser = parse_wait
    )]
    pub wait: Option<Wait>,
    /// On Ctrl-C or SIGTERM, how long running commands get after SIGTERM before SIGKILL (a second Ctrl-C kills at once)
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub grace: std::time::Duration,
    /// If the state cannot be written during a run: once the commands running have ended, how long to keep trying to record the release's last state
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "30s",
        env = "STAGECRAFT_STATE_RETRY",
        value_parser = parse_duration
    )]
    pub state_retry: std::time::Duration,
}

/// What a run does after a failure: the flags every executing command
/// takes.
#[derive(Args, Debug)]
pub(super) struct OnFailure {
    /// After a failure, still run every instance that does not depend on it
    #[arg(long)]
    pub keep_going: bool,
    /// When the release fails, undo its completed instances that have an `undo`, latest first (also `undo on failure` in the env)
    #[arg(long)]
    pub undo_on_failure: bool,
}

/// `STAGECRAFT_DRY_RUN`'s value (the flag itself gives `true`): case
/// aside, 1, true, yes, on for a dry run; 0, false, no, off or nothing
/// for a real one; anything else is an error, so that a typo never runs
/// for real.
fn parse_truthy(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "" | "0" | "false" | "no" | "off" => Ok(false),
        _ => {
            Err("`STAGECRAFT_DRY_RUN` takes 1, true, yes or on (a dry run), or 0, false, no, off or nothing".to_owned())
        }
    }
}

fn parse_wait(text: &str) -> Result<Wait, String> {
    if text == "forever" {
        return Ok(Wait::Forever);
    }
    parse_duration(text).map(Wait::For)
}

/// A flag's duration, in the language's syntax (`30s`, `5m`, `1m30s`).
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::check::duration::parse(text).map_err(|e| format!("{e}; write a duration such as `30s`, `5m` or `1m30s`"))
}

/// `stagecraft build`.
#[derive(Args, Debug)]
pub(super) struct BuildArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// Set `push=true` (phases with `when push` run)
    #[arg(long)]
    pub push: bool,
}

/// `stagecraft run WORKFLOW`.
#[derive(Args, Debug)]
pub(super) struct RunArgs {
    /// The workflow to run
    #[arg(value_name = "WORKFLOW")]
    pub workflow: String,
    #[command(flatten)]
    pub selection: Selection,
}

/// `stagecraft rollback`.
#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("target").required(true).multiple(false))]
pub(super) struct RollbackArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// The environment to roll back
    #[arg(long, value_name = "ENV", env = "STAGECRAFT_ENV")]
    pub env: String,
    /// Roll back to the newest fully completed release before the current one
    #[arg(long, group = "target")]
    pub to_previous: bool,
    /// Roll back to this release
    #[arg(long, value_name = "ID", group = "target")]
    pub to_release: Option<String>,
    /// Roll back to the newest fully completed release of this version
    #[arg(long, value_name = "V", group = "target")]
    pub to_version: Option<String>,
    /// Roll back only these services' instances (every global phase stays)
    #[arg(long, value_name = "a,b", value_delimiter = ',', value_parser = parse_service)]
    pub services: Option<Vec<String>>,
    /// Set a variable over everything the file says (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,
    #[command(flatten)]
    pub execution: Execution,
}

/// A `--services` entry: any non-empty name (an unknown one is refused
/// when the pipeline is read).
pub(super) fn parse_service(text: &str) -> Result<String, String> {
    if text.is_empty() {
        Err("a service name cannot be empty".to_owned())
    } else {
        Ok(text.to_owned())
    }
}

/// A `--set KEY=VALUE`: the key must be a variable name.
pub(super) fn parse_set(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if crate::syntax::is_ident(key) => Ok((key.to_owned(), value.to_owned())),
        Some((key, _)) => Err(format!("`{key}` is not a variable name")),
        None => Err(format!("expected KEY=VALUE, found `{text}`")),
    }
}
