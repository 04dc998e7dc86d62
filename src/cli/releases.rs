//! The commands that read the history: `releases list | show` and
//! `status`. They never take a lock and never write, so they work on a
//! read-only state directory and never make a run fail.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};

use super::run::default_state_dir;
use super::state::StateFlags;
use super::{Failure, FileArg, Outcome, compile, history, locate, print_json, read, write_stdout};
use crate::state::{Backend, PipelineState};
use crate::syntax::did_you_mean;

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
    /// Which pipeline's history [default: the pipeline file's; with
    /// `--state-dir` and no file, the one pipeline there]
    #[arg(long, value_name = "NAME", global = true)]
    pub pipeline: Option<String>,
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
    /// Which pipeline's history [default: the pipeline file's; with
    /// `--state-dir` and no file, the one pipeline there]
    #[arg(long, value_name = "NAME")]
    pub pipeline: Option<String>,
}

/// Output of `releases` and `status`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum Format {
    Text,
    Json,
}

/// Which history `releases` and `status` read: the pipeline named by
/// `--pipeline`, else by the pipeline file (`-f` or the lookup; it is parsed
/// for its `pipeline` name only, so a file with errors still reads its
/// history), else, when `--state-dir` is given and no file is found, the
/// one pipeline with a history in that directory.
/// The envs the file declares come along, to tell a misspelt `--env` from
/// an env with no history yet.
fn pipeline_state(
    file: Option<&Path>,
    flag: Option<&Path>,
    pipeline: Option<&str>,
    state: &StateFlags,
) -> Result<(PipelineState, Vec<String>), Failure> {
    let path = match locate(file) {
        Ok(path) => Some(path),
        Err(_) if file.is_none() && state.given(flag) => None,
        Err(failure) => return Err(failure),
    };
    let url = state.resolve(flag, || path.as_deref().map(default_state_dir).unwrap_or_default());
    let local = path
        .as_deref()
        .map_or_else(|| PathBuf::from(".stagecraft"), default_state_dir);
    let dir = Backend::open(&url, &local)?;
    let Some(path) = path else {
        let state = pipeline.map_or_else(|| only_pipeline(&dir), |name| Ok(dir.pipeline(name)))?;
        return Ok((state, Vec::new()));
    };
    let source = read(&path)?;
    let compilation = compile(&source);
    let envs = compilation
        .pipeline
        .as_ref()
        .map(|p| p.envs.keys().map(|e| (*e).to_owned()).collect())
        .unwrap_or_default();
    let name = match (pipeline, &compilation.pipeline) {
        (Some(name), _) => name,
        (None, Some(declared)) => declared.name,
        (None, None) => {
            return Err(Failure {
                help: Some("its history is kept under the name of its `pipeline` declaration".to_owned()),
                ..Failure::user(format!("{} declares no pipeline name", path.display()))
            });
        }
    };
    Ok((dir.pipeline(name), envs))
}

/// Refuses an `--env` that is neither declared in the pipeline file nor
/// in the history (a misspelling, most likely), suggesting the nearest.
fn known_env(state: &PipelineState, declared: &[String], env: &str) -> Result<(), Failure> {
    let recorded = state.envs()?;
    let known = declared.iter().chain(&recorded);
    if known.clone().any(|known| known == env) {
        return Ok(());
    }
    Err(Failure {
        help: did_you_mean(env, known.map(String::as_str)),
        ..Failure::user(format!("invalid environment: {env}"))
    })
}

/// The one pipeline with a history in `dir`, for `--state-dir` without a
/// pipeline file.
fn only_pipeline(dir: &Backend) -> Result<PipelineState, Failure> {
    let names = dir.pipelines()?;
    match names.as_slice() {
        [name] => Ok(dir.pipeline(name)),
        [] => Err(Failure::user(format!(
            "no pipeline has a history in {}",
            dir.describe()
        ))),
        _ => Err(Failure {
            help: Some(format!(
                "choose one with `--pipeline NAME`: {}",
                names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
            )),
            ..Failure::user(format!(
                "{} holds the history of {} pipelines and no pipeline file names one",
                dir.describe(),
                names.len()
            ))
        }),
    }
}

/// `stagecraft releases list | show`.
pub(super) fn releases(args: &ReleasesArgs, flags: &StateFlags) -> Outcome {
    let (state, declared) = pipeline_state(
        args.file.file.as_deref(),
        args.state_dir.as_deref(),
        args.pipeline.as_deref(),
        flags,
    )?;
    match &args.command {
        ReleasesCommand::List {
            env,
            limit,
            all,
            format,
        } => {
            if let Some(env) = env {
                known_env(&state, &declared, env)?;
            }
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
pub(super) fn status(args: &StatusArgs, flags: &StateFlags) -> Outcome {
    let (state, declared) = pipeline_state(
        args.file.file.as_deref(),
        args.state_dir.as_deref(),
        args.pipeline.as_deref(),
        flags,
    )?;
    if let Some(env) = &args.env {
        known_env(&state, &declared, env)?;
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
