//! The commands that read the history: `releases list | show` and
//! `status`. They never take a lock and never write, so they work on a
//! read-only state directory and never make a run fail.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::run::state_dir;
use super::{Failure, FileArg, Outcome, compile, history, locate, print_json, read, write_stdout};
use crate::state::{PipelineDir, StateDir};

/// `stagecraft releases`.
#[derive(Args, Debug)]
pub(super) struct ReleasesArgs {
    #[command(subcommand)]
    pub command: ReleasesCommand,
    #[command(flatten)]
    pub file: FileArg,
    /// Where state is kept [default: .stagecraft beside the pipeline file]
    #[arg(long, value_name = "PATH", env = "STAGECRAFT_STATE_DIR", global = true)]
    pub state_dir: Option<PathBuf>,
}

/// `releases list` and `releases show`.
#[derive(Subcommand, Debug)]
pub(super) enum ReleasesCommand {
    /// List releases, newest first
    List {
        /// Only this environment's releases
        #[arg(long, value_name = "ENV", env = "STAGECRAFT_ENV")]
        env: Option<String>,
        /// Show the newest N releases
        #[arg(long, value_name = "N", default_value_t = 20, conflicts_with = "all")]
        limit: usize,
        /// Show every release
        #[arg(long)]
        all: bool,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Show one release and its instances
    Show {
        /// The release id (`rel-…`)
        #[arg(value_name = "ID")]
        id: String,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// `stagecraft status`.
#[derive(Args, Debug)]
pub(super) struct StatusArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// Only this environment, one row per service [default: one line per env]
    #[arg(long, value_name = "ENV", env = "STAGECRAFT_ENV")]
    pub env: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Where state is kept [default: .stagecraft beside the pipeline file]
    #[arg(long, value_name = "PATH", env = "STAGECRAFT_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Output of `releases` and `status`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum Format {
    Text,
    Json,
}

/// The history of the pipeline in the file (`-f` or the lookup): the file
/// is parsed for its `pipeline` name only, so a file with errors still
/// reads its history.
fn pipeline_state(file: Option<&std::path::Path>, flag: Option<&std::path::Path>) -> Result<PipelineDir, Failure> {
    let path = locate(file)?;
    let source = read(&path)?;
    let compilation = compile(&source);
    let name = compilation.pipeline.as_ref().map(|p| p.name).ok_or_else(|| Failure {
        help: Some("its history is kept under the name of its `pipeline` declaration".to_owned()),
        ..Failure::user(format!("{} declares no pipeline name", path.display()))
    })?;
    Ok(StateDir::new(state_dir(flag, &path)).pipeline(name))
}

/// `stagecraft releases list | show`.
pub(super) fn releases(args: &ReleasesArgs) -> Outcome {
    let state = pipeline_state(args.file.file.as_deref(), args.state_dir.as_deref())?;
    match &args.command {
        ReleasesCommand::List {
            env,
            limit,
            all,
            format,
        } => {
            let list = state.releases(env.as_deref(), (!all).then_some(*limit))?;
            match format {
                Format::Json => print_json(&list.iter().map(history::ReleaseJson::summary).collect::<Vec<_>>()),
                Format::Text => write_stdout(&history::releases_text(&list)),
            }
        }
        ReleasesCommand::Show { id, format } => {
            let release = state.release(id)?;
            let logs = state.output_dir(release.id);
            match format {
                Format::Json => print_json(&history::ReleaseJson::release(&release, &logs)),
                Format::Text => write_stdout(&history::release_text(&release, &logs)),
            }
        }
    }
}

/// `stagecraft status [--env E]`.
pub(super) fn status(args: &StatusArgs) -> Outcome {
    let state = pipeline_state(args.file.file.as_deref(), args.state_dir.as_deref())?;
    if let Some(env) = &args.env {
        let current = state.current(env)?;
        let live = state.live(env)?;
        return match args.format {
            Format::Json => print_json(&history::EnvStatusJson::new(env, current.as_ref(), &live)),
            Format::Text => write_stdout(&history::status_env_text(env, current.as_ref(), &live)),
        };
    }
    let mut envs = Vec::new();
    for env in state.envs()? {
        let current = state.current(&env)?;
        let live = state.live(&env)?;
        envs.push((env, current, live));
    }
    match args.format {
        Format::Json => print_json(
            &envs
                .iter()
                .map(|(env, current, live)| history::EnvStatusJson::new(env, current.as_ref(), live))
                .collect::<Vec<_>>(),
        ),
        Format::Text => write_stdout(&history::status_envs_text(&envs)),
    }
}
