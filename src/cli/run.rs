//! The commands that execute: `build`, `deploy`, `rollback`, `run`, and
//! `releases` to read what they recorded.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};

use indexmap::IndexMap;

use super::progress::{self, Progress};
use super::{
    Exit, Failure, FileArg, Outcome, compile_valid, locate, parse_service, parse_set, plan_failure, print_json, read,
    render, write_stdout, write_with,
};
use crate::engine::{self, Cancel, ExecuteOptions, Plan, PlanRequest, ShellRunner, Summary};
use crate::state::{
    Clock, Holder, Journal, ReleaseId, ReleaseSummary, RollbackTarget, StateDir, StateError, Store, Wait,
    rollback_target,
};

/// What to run and where: the flags `build`, `deploy` and `run` share.
#[derive(Args, Debug)]
pub(super) struct Selection {
    #[command(flatten)]
    pub file: FileArg,
    /// The environment to run in
    #[arg(long, value_name = "ENV")]
    pub env: String,
    /// The version [default: `git rev-parse --short HEAD` in the pipeline's directory, else `unknown`]
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
    /// Print the plan and write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Run up to N independent instances at once
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    /// After a failure, still run every instance that does not depend on it
    #[arg(long)]
    pub keep_going: bool,
    /// Where state is kept [default: .stagecraft beside the pipeline file]
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
}

fn parse_wait(text: &str) -> Result<Wait, String> {
    if text == "forever" {
        return Ok(Wait::Forever);
    }
    crate::check::duration::parse(text)
        .map(Wait::For)
        .map_err(|e| format!("{e}; write a duration such as `30s`, `5m` or `1m30s`"))
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
    #[arg(long, value_name = "ENV")]
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
        #[arg(long, value_name = "ENV")]
        env: Option<String>,
        /// Output format
        #[arg(long, value_enum, default_value_t = ReleasesFormat::Text)]
        format: ReleasesFormat,
    },
    /// Show one release and its instances
    Show {
        /// The release id (`rel-…`)
        #[arg(value_name = "ID")]
        id: String,
        /// Output format
        #[arg(long, value_enum, default_value_t = ReleasesFormat::Text)]
        format: ReleasesFormat,
    },
}

/// Output of `releases`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum ReleasesFormat {
    Text,
    Json,
}

/// The state directory: `--state-dir`, `STAGECRAFT_STATE_DIR`, or
/// `.stagecraft` beside the pipeline file.
pub(super) fn state_dir(flag: Option<&Path>, pipeline_file: &Path) -> PathBuf {
    flag.map_or_else(|| pipeline_dir(pipeline_file).join(".stagecraft"), Path::to_path_buf)
}

/// The directory commands run in: the pipeline file's (empty for the
/// current directory, so that paths under it read `.stagecraft/…`).
pub(super) fn pipeline_dir(pipeline_file: &Path) -> PathBuf {
    pipeline_file.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// `--version`, else `git rev-parse --short HEAD` run in `dir`, else
/// `unknown`.
pub(super) fn version(flag: Option<&str>, dir: &Path) -> String {
    if let Some(version) = flag {
        return version.to_owned();
    }
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// One execution, whichever command asked for it.
struct Request<'a> {
    workflow: &'a str,
    file: Option<&'a Path>,
    env: &'a str,
    version: Option<&'a str>,
    services: Option<&'a [String]>,
    set: &'a [(String, String)],
    push: bool,
    rollback: Option<RollbackTarget>,
    execution: &'a Execution,
}

/// `stagecraft build`: the `build` workflow; `--push` sets `push=true`.
pub(super) fn build(args: &BuildArgs) -> Outcome {
    execute(&Request::of("build", &args.selection, args.push))
}

/// `stagecraft deploy`: the `deploy` workflow, with `push=true`.
pub(super) fn deploy(args: &Selection) -> Outcome {
    execute(&Request::of("deploy", args, true))
}

/// `stagecraft run WORKFLOW`: any workflow but the three with commands of
/// their own (whose rules `run` would bypass: `push`, rollback targets).
pub(super) fn run(args: &RunArgs) -> Outcome {
    if let command @ ("build" | "deploy" | "rollback") = args.workflow.as_str() {
        return Err(Failure {
            help: Some(format!("use `stagecraft {command}`")),
            ..Failure::user(format!("`run` does not run the `{command}` workflow"))
        });
    }
    execute(&Request::of(&args.workflow, &args.selection, false))
}

/// `stagecraft rollback`: the `rollback` workflow, at the target's version.
pub(super) fn rollback(args: &RollbackArgs) -> Outcome {
    let target = match (&args.to_release, &args.to_version) {
        (Some(id), _) => RollbackTarget::Release(id.clone()),
        (None, Some(version)) => RollbackTarget::Version(version.clone()),
        (None, None) => RollbackTarget::Previous,
    };
    execute(&Request {
        workflow: "rollback",
        file: args.file.file.as_deref(),
        env: &args.env,
        version: None,
        services: args.services.as_deref(),
        set: &args.set,
        push: false,
        rollback: Some(target),
        execution: &args.execution,
    })
}

impl<'a> Request<'a> {
    fn of(workflow: &'a str, selection: &'a Selection, push: bool) -> Self {
        Self {
            workflow,
            file: selection.file.file.as_deref(),
            env: &selection.env,
            version: selection.version.as_deref(),
            services: selection.services.as_deref(),
            set: &selection.set,
            push,
            rollback: None,
            execution: &selection.execution,
        }
    }
}

fn execute(request: &Request<'_>) -> Outcome {
    let path = locate(request.file)?;
    let source = read(&path)?;
    let (pipeline, graph) = compile_valid(&source)?;
    // Commands (and git, for the version) run in the pipeline's directory.
    let dir = Some(pipeline_dir(&path))
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let clock = Clock::from_env().map_err(|e| Failure::user(e.to_string()))?;
    let set: IndexMap<String, String> = request.set.iter().cloned().collect();
    let plan_for = |version: String, release: String| {
        engine::plan(
            &pipeline,
            &graph,
            &PlanRequest {
                env: request.env.to_owned(),
                workflow: request.workflow.to_owned(),
                services: request.services.map(<[String]>::to_vec),
                version,
                release,
                set: set.clone(),
                push: request.push,
                ..PlanRequest::default()
            },
        )
        .map_err(|e| plan_failure(&source, e))
    };
    let state_path = state_dir(request.execution.state_dir.as_deref(), &path);
    if request.execution.dry_run {
        // Read-only: the history, for a rollback's target, is read without
        // the lock, and nothing is written.
        let (version, _) = match &request.rollback {
            Some(target) => rollback_version(
                &StateDir::new(&state_path).releases(None).map_err(state_failure)?,
                request.env,
                target,
            )?,
            None => (version(request.version, &dir), None),
        };
        let plan = plan_for(version, "dry-run".to_owned())?;
        return write_with(|out| render::plan_text(&plan, out));
    }
    // Unknown env, workflow or service is a user error before any state is
    // touched.
    plan_for("unknown".to_owned(), "dry-run".to_owned())?;
    let mut store = open_store(&state_path, request, clock)?;
    let (version, rollback_of) = match &request.rollback {
        Some(target) => rollback_version(&store.releases(None), request.env, target)?,
        None => (version(request.version, &dir), None),
    };
    let id = store.next_id();
    let plan = plan_for(version, id.to_string())?;
    let options = ExecuteOptions {
        dir,
        release: id.to_string(),
        jobs: usize::from(request.execution.jobs),
        keep_going: request.execution.keep_going,
        log_dir: Some(store.dir().output_dir(id)),
        skip_backoff: false,
        ..ExecuteOptions::default()
    };
    let mut journal = store.begin(id, &plan, rollback_of).map_err(state_failure)?;
    let summary = run_plan(&plan, &options, &mut journal)?;
    journal.finish().map_err(state_failure)?;
    eprint!("{}", progress::summary(&plan, &id.to_string(), &summary));
    outcome(&summary, id, &path)
}

/// Opens the state under its lock for a run, waiting as `--wait` says, and
/// says what recovery repaired.
fn open_store(state_path: &Path, request: &Request<'_>, clock: Clock) -> Result<Store, Failure> {
    let holder = Holder::current(request.workflow, Some(request.env), clock.now());
    let wait = request.execution.wait.unwrap_or(Wait::No);
    let (store, recovered) = Store::open(state_path, &holder, wait, clock).map_err(|error| {
        let waited = match (&error, wait) {
            (StateError::Locked { .. }, Wait::For(duration)) => Some(format!(
                "waited {}; wait longer with --wait=DURATION",
                crate::check::duration::format(duration)
            )),
            (StateError::Locked { .. }, _) => Some("wait for it with --wait, or --wait=DURATION".to_owned()),
            _ => None,
        };
        Failure {
            help: waited,
            ..state_failure(error)
        }
    })?;
    for repaired in recovered {
        eprintln!("note: {repaired}");
    }
    Ok(store)
}

/// Runs the plan with real commands, recording into the journal and
/// printing progress; Ctrl-C cancels it.
fn run_plan(plan: &Plan, options: &ExecuteOptions, journal: &mut Journal<'_>) -> Result<Summary, Failure> {
    let cancel = Cancel::new();
    let on_interrupt = cancel.clone();
    // Set once per process; a second run in one process keeps the first.
    let _ = ctrlc::set_handler(move || on_interrupt.cancel());
    let runner = ShellRunner::default();
    let mut progress = Progress::new(plan, journal);
    let mut output = progress.output();
    let result = engine::execute(plan, options, &runner, &mut progress, &mut output, &cancel);
    progress.close();
    result.map_err(|error| Failure {
        exit: Exit::State,
        help: Some("the release is left unfinished; the next command marks it interrupted".to_owned()),
        ..Failure::user(format!("cannot record the run: {error}"))
    })
}

/// Exit 0 if every instance succeeded; else what went wrong, and where to
/// look.
fn outcome(summary: &Summary, id: ReleaseId, path: &Path) -> Outcome {
    if summary.interrupted {
        Err(Failure {
            exit: Exit::Interrupted,
            help: None,
            ..Failure::user(format!("interrupted: release {id} is recorded as failed (interrupted)"))
        })
    } else if summary.succeeded() {
        Ok(())
    } else {
        Err(Failure {
            exit: Exit::PhaseFailed,
            help: Some(format!("see `stagecraft releases show {id} -f {}`", path.display())),
            ..Failure::user(format!("release {id} failed"))
        })
    }
}

/// The version a rollback runs at and the release it restores.
fn rollback_version(
    releases: &[ReleaseSummary],
    env: &str,
    target: &RollbackTarget,
) -> Result<(String, Option<ReleaseId>), Failure> {
    let target = rollback_target(releases, env, target).map_err(|e| Failure::user(format!("cannot roll back: {e}")))?;
    Ok((target.version.clone(), Some(target.id)))
}

/// A state error: exit 4 (an unknown release id is the user's: exit 1).
#[allow(clippy::needless_pass_by_value)] // used as `map_err(state_failure)`
fn state_failure(error: StateError) -> Failure {
    let exit = match error {
        StateError::UnknownRelease { .. } => Exit::User,
        _ => Exit::State,
    };
    Failure {
        exit,
        ..Failure::user(error.to_string())
    }
}

/// `stagecraft releases list | show`.
pub(super) fn releases(args: &ReleasesArgs) -> Outcome {
    let path = locate(args.file.file.as_deref())?;
    let state_path = state_dir(args.state_dir.as_deref(), &path);
    if !state_path.exists() {
        return match &args.command {
            ReleasesCommand::List { format, .. } => match format {
                ReleasesFormat::Json => write_stdout("[]\n"),
                ReleasesFormat::Text => write_stdout("no releases yet\n"),
            },
            ReleasesCommand::Show { id, .. } => Err(Failure::user(format!("unknown release `{id}`"))),
        };
    }
    // Opening under the lock repairs runs that died; while a live run holds
    // the lock, read as it is (its release shows as running).
    let clock = Clock::from_env().map_err(|e| Failure::user(e.to_string()))?;
    let holder = Holder::current("releases", None, clock.now());
    let store = match Store::open(&state_path, &holder, Wait::No, clock) {
        Ok((store, recovered)) => {
            for repaired in recovered {
                eprintln!("note: {repaired}");
            }
            Some(store)
        }
        Err(StateError::Locked { .. }) => None,
        Err(error) => return Err(state_failure(error)),
    };
    let dir = StateDir::new(&state_path);
    match &args.command {
        ReleasesCommand::List { env, format } => {
            let list = match &store {
                Some(store) => store.releases(env.as_deref()),
                None => dir.releases(env.as_deref()).map_err(state_failure)?,
            };
            match format {
                ReleasesFormat::Json => print_json(&list.iter().map(render::ReleaseJson::summary).collect::<Vec<_>>()),
                ReleasesFormat::Text => write_stdout(&render::releases_text(&list)),
            }
        }
        ReleasesCommand::Show { id, format } => {
            let release = dir.release(id).map_err(state_failure)?;
            match format {
                ReleasesFormat::Json => print_json(&render::ReleaseJson::release(&release)),
                ReleasesFormat::Text => write_stdout(&render::release_text(&release)),
            }
        }
    }
}
