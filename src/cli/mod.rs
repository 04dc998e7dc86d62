//! The command line: clap definitions, finding the pipeline file, and
//! rendering. Decisions live in the library layers; this module turns their
//! results into text and exit codes (`spec/commands/` documents each).

// std's print macros panic when the stream is closed (`| head`); these
// shadow them in `cli` and every module below it, and ignore that
// (`output.rs`). They are defined before the modules so that they are in
// scope in all of them.
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::cli::output::stderr(format_args!($($arg)*)) };
}
macro_rules! eprintln {
    () => { $crate::cli::output::stderr(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::output::stderr(format_args!("{}\n", format_args!($($arg)*))) };
}
#[allow(unused_macros)] // for any module below that prints
macro_rules! print {
    ($($arg:tt)*) => { $crate::cli::output::stdout(format_args!($($arg)*)) };
}
#[allow(unused_macros)] // for any module below that prints
macro_rules! println {
    () => { $crate::cli::output::stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::output::stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

mod aftermath;
mod args;
mod completions;
mod confirm;
mod fmt;
mod history;
mod init;
mod interrupts;
mod list;
mod lsp;
mod output;
mod progress;
mod releases;
mod render;
mod report;
mod resume;
mod run;
mod secrets;
mod snippet;
mod state;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum};
use indexmap::IndexMap;

use crate::check::Pipeline;
use crate::engine::{self, PlanError, PlanRequest};
use crate::graph::{self, Compilation, PhaseGraph};
use args::{parse_service, parse_set};
use output::{write_stdout, write_with};
use report::{JsonReport, SourceFile};

/// The name of the pipeline file looked up when `-f` is not given.
pub(crate) const DEFAULT_FILE: &str = "pipeline.stagecraft";

/// Exit codes, the same for every command (`spec/commands/README.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Success.
    Success = 0,
    /// Usage or user error: a bad flag, an unknown env or service.
    User = 1,
    /// The pipeline has an error diagnostic.
    Invalid = 2,
    /// A phase failed.
    PhaseFailed = 3,
    /// State is locked, unreadable or corrupt.
    State = 4,
    /// A bug in stagecraft.
    Internal = 5,
    /// Interrupted by a signal.
    Interrupted = 130,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        Self::from(exit as u8)
    }
}

/// A command that did not succeed: what to tell the user, and the exit code.
#[derive(Debug)]
struct Failure {
    exit: Exit,
    /// Printed to stderr as `error: …` unless empty (diagnostics already
    /// printed say it all).
    message: String,
    help: Option<String>,
}

impl Failure {
    fn user(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::User,
            message: message.into(),
            help: None,
        }
    }
}

type Outcome = Result<(), Failure>;

#[derive(Parser, Debug)]
#[command(
    name = "stagecraft",
    version,
    about = "Declarative release pipelines: check, plan, build, deploy, roll back"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Where state is kept: `file:PATH` (a state directory) or `postgres://USER@HOST/DB` (a team's shared state) [default: `file:.stagecraft` beside the pipeline file]
    #[arg(long, value_name = "URL", global = true, env = "STAGECRAFT_STATE")]
    state: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check pipeline files and report every problem
    Check(CheckArgs),
    /// Print the plan of a workflow for an env, without running anything
    Plan(PlanArgs),
    /// Print the dependency graph of phase instances
    Graph(GraphArgs),
    /// Run the `build` workflow (`--push` sets push=true)
    Build(args::BuildArgs),
    /// Run the `deploy` workflow, recording a release of the env
    Deploy(args::Selection),
    /// Roll an env back to an earlier release, with the `rollback` workflow
    Rollback(args::RollbackArgs),
    /// Run any workflow
    Run(args::RunArgs),
    /// Resume a failed release: run its workflow again, carrying over what completed
    Resume(resume::ResumeArgs),
    /// List and show recorded releases
    Releases(releases::ReleasesArgs),
    /// Show what is live: per env, or per service of one env
    Status(releases::StatusArgs),
    /// Manage the state: copy a whole history between backends
    State(state::StateArgs),
    /// Format pipeline files in the canonical style
    Fmt(fmt::FmtArgs),
    /// Write a starter pipeline to begin a new project with
    Init(init::InitArgs),
    /// List the workflows, phases, envs and services of the pipeline
    List(list::ListArgs),
    /// Print a shell completion script
    Completions(completions::CompletionsArgs),
    /// Run the language server on stdin and stdout
    Lsp,
}

#[derive(Args, Debug)]
struct FileArg {
    /// The pipeline file [default: pipeline.stagecraft here or in the nearest parent]
    #[arg(
        short = 'f',
        long = "file",
        value_name = "PATH",
        global = true,
        env = "STAGECRAFT_FILE"
    )]
    file: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// Files to check [default: the pipeline file]
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    file: FileArg,
    /// How to print diagnostics
    #[arg(long, value_enum, default_value_t = CheckFormat::Human)]
    format: CheckFormat,
    /// Treat warnings as errors (exit 2)
    #[arg(long)]
    deny_warnings: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum CheckFormat {
    Human,
    Json,
}

#[derive(Args, Debug)]
struct PlanArgs {
    #[command(flatten)]
    file: FileArg,
    /// The environment to plan for
    #[arg(long, value_name = "ENV", env = "STAGECRAFT_ENV")]
    env: String,
    /// The workflow to plan
    #[arg(long, value_name = "WORKFLOW", default_value = "deploy")]
    workflow: String,
    /// Keep only these services' instances (every global phase stays)
    #[arg(long, value_name = "a,b", value_delimiter = ',', value_parser = parse_service)]
    services: Option<Vec<String>>,
    /// The version to plan [default: as the command that runs the workflow: the git commit, `-dirty` when changed, else `unknown`; `unknown` for `rollback`]
    #[arg(long, value_name = "V")]
    version: Option<String>,
    /// Set a variable over everything the file says (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    set: Vec<(String, String)>,
    /// Plan `build` as `build --push` does (`deploy` always pushes)
    #[arg(long)]
    push: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    format: PlanFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PlanFormat {
    Text,
    Json,
    Ron,
}

#[derive(Args, Debug)]
struct GraphArgs {
    #[command(flatten)]
    file: FileArg,
    /// Only this workflow's instances [default: every phase]
    #[arg(long, value_name = "WORKFLOW")]
    workflow: Option<String>,
    /// Decide conditions for this env (disabled instances are dashed)
    #[arg(long, value_name = "ENV", env = "STAGECRAFT_ENV")]
    env: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    format: GraphFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum GraphFormat {
    Dot,
    Mermaid,
}

/// Runs the command line and returns the process's exit code.
#[must_use]
pub fn main() -> ExitCode {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            let _ = error.print();
            // clap uses 2 for usage errors; stagecraft keeps 2 for invalid
            // pipelines and uses 1 for usage.
            return if error.use_stderr() { Exit::User } else { Exit::Success }.into();
        }
    };
    let file_from_env = file_from_env(&matches);
    // Parsed here, not by clap, whose error would repeat a password.
    let state = match state::StateFlags::new(cli.state.as_deref(), &matches) {
        Ok(state) => state,
        Err(message) => {
            eprintln!("error: {}", output::escape(&message));
            return Exit::User.into();
        }
    };
    // A panic is a bug: the hook says so, and it exits 5, not Rust's 101.
    std::panic::set_hook(Box::new(|info| eprint!("{}", panic_report(info))));
    let outcome = std::panic::catch_unwind(|| dispatch(&cli.command, file_from_env, &state)).unwrap_or_else(|_| {
        Err(Failure {
            exit: Exit::Internal,
            message: String::new(),
            help: None,
        })
    });
    match outcome {
        Ok(()) => Exit::Success.into(),
        Err(failure) => {
            if !failure.message.is_empty() {
                eprintln!("error: {}", output::escape(&failure.message));
            }
            if let Some(help) = failure.help {
                eprintln!("help: {}", output::escape(&help));
            }
            failure.exit.into()
        }
    }
}

/// Whether the subcommand's `-f` came from `STAGECRAFT_FILE` (files given
/// to `check` on the command line then win over it).
fn file_from_env(matches: &clap::ArgMatches) -> bool {
    matches
        .subcommand()
        .and_then(|(_, sub)| {
            sub.try_get_raw("file")
                .ok()
                .flatten()
                .and_then(|_| sub.value_source("file"))
        })
        .is_some_and(|source| source == ValueSource::EnvVariable)
}

fn dispatch(command: &Command, file_from_env: bool, state: &state::StateFlags) -> Outcome {
    // A way to test the panic hook, compiled only into debug builds.
    #[cfg(debug_assertions)]
    if let Some(message) = std::env::var_os("STAGECRAFT_DEBUG_PANIC") {
        panic!("{}", message.to_string_lossy());
    }
    match command {
        Command::Check(args) => check(args, file_from_env),
        Command::Plan(args) => plan(args),
        Command::Graph(args) => graph(args),
        Command::Build(args) => run::build(args, state),
        Command::Deploy(args) => run::deploy(args, state),
        Command::Rollback(args) => run::rollback(args, state),
        Command::Run(args) => run::run(args, state),
        Command::Resume(args) => run::resume(args, state),
        Command::Releases(args) => releases::releases(args, state),
        Command::Status(args) => releases::status(args, state),
        Command::State(args) => state::state(args),
        Command::Fmt(args) => fmt::fmt(args),
        Command::Init(args) => init::init(args),
        Command::List(args) => list::list(args),
        Command::Completions(args) => completions::completions(args, &mut Cli::command()),
        Command::Lsp => lsp::lsp(),
    }
}

/// What a panic prints instead of Rust's message and backtrace: that it is
/// a bug, what to report, and where it happened.
fn panic_report(info: &std::panic::PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    let place = info
        .location()
        .map_or_else(String::new, |l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()));
    format!(
        "error: internal error in stagecraft {}: panicked{place}: {}\n\
         help: this is a bug in stagecraft; please report it with the command you ran and the pipeline file\n",
        env!("CARGO_PKG_VERSION"),
        output::escape(message),
    )
}

/// `-f PATH`, or `pipeline.stagecraft` in the current directory or the
/// nearest parent.
fn locate(file: Option<&Path>) -> Result<PathBuf, Failure> {
    if let Some(file) = file {
        return Ok(file.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(|e| Failure::user(format!("cannot read the current directory: {e}")))?;
    for dir in cwd.ancestors() {
        let candidate = dir.join(DEFAULT_FILE);
        if candidate.is_file() {
            return Ok(candidate.strip_prefix(&cwd).map(Path::to_path_buf).unwrap_or(candidate));
        }
    }
    Err(Failure {
        help: Some("pass the file with `-f PATH`".to_owned()),
        ..Failure::user(format!(
            "no {DEFAULT_FILE} in {} or any parent directory",
            cwd.display()
        ))
    })
}

fn read(path: &Path) -> Result<SourceFile, Failure> {
    let bytes = std::fs::read(path).map_err(|e| Failure::user(format!("cannot read {}: {e}", path.display())))?;
    // Valid UTF-8 (the usual case) is taken as it is, without a copy.
    let (text, not_text) = match String::from_utf8(bytes) {
        Ok(text) => {
            let bom = byte_order_mark(text.as_bytes());
            (text, bom)
        }
        Err(error) => {
            let bytes = error.into_bytes();
            let not_text = crate::syntax::decode(&bytes).err();
            (String::from_utf8_lossy(&bytes).into_owned(), not_text)
        }
    };
    Ok(SourceFile {
        name: path.display().to_string(),
        lines: OnceLock::new(),
        text,
        not_text,
    })
}

/// A UTF-8 byte order mark at the start of the file, which the grammar
/// would take for a stray character.
fn byte_order_mark(bytes: &[u8]) -> Option<crate::syntax::Diagnostic> {
    bytes.starts_with(b"\xef\xbb\xbf").then(|| {
        crate::syntax::Diagnostic::error(crate::syntax::Code::Syntax, "the file starts with a byte order mark")
            .label(crate::syntax::Span::new(0, 3), "an invisible U+FEFF character")
            .help("save the file as UTF-8 without a byte order mark (BOM)")
    })
}

/// The front end's verdict on a file.
fn compile(source: &SourceFile) -> Compilation<'_> {
    match &source.not_text {
        Some(diagnostic) => Compilation {
            diagnostics: vec![diagnostic.clone()],
            ..Compilation::default()
        },
        None => graph::compile(&source.text),
    }
}

fn check(args: &CheckArgs, file_from_env: bool) -> Outcome {
    // `STAGECRAFT_FILE` stands for `-f`, which files named here override.
    let from_env = file_from_env && !args.files.is_empty();
    let mut paths: Vec<PathBuf> = args.file.file.iter().filter(|_| !from_env).cloned().collect();
    paths.extend(args.files.iter().cloned());
    if paths.is_empty() {
        paths.push(locate(None)?);
    }
    let files = paths.iter().map(|p| read(p)).collect::<Result<Vec<_>, _>>()?;
    let compiled: Vec<Compilation> = files.iter().map(compile).collect();
    let failed = compiled
        .iter()
        .any(|c| c.has_errors() || args.deny_warnings && !c.diagnostics.is_empty());
    match args.format {
        CheckFormat::Json => {
            let mut report = JsonReport::new();
            for (file, compilation) in files.iter().zip(&compiled) {
                report.add(file, &compilation.diagnostics);
            }
            print_json(&report)?;
        }
        CheckFormat::Human => {
            let mut stderr = String::new();
            let mut stdout = String::new();
            for (file, compilation) in files.iter().zip(&compiled) {
                stderr.push_str(&report::human(file, &compilation.diagnostics));
                if compilation.diagnostics.is_empty() {
                    let _ = writeln!(stdout, "{}: ok", output::escape(&file.name));
                } else {
                    let _ = writeln!(
                        stderr,
                        "{}: {}",
                        output::escape(&file.name),
                        report::count(&compilation.diagnostics)
                    );
                }
            }
            eprint!("{stderr}");
            write_stdout(&stdout)?;
        }
    }
    if failed {
        Err(Failure {
            exit: Exit::Invalid,
            message: String::new(),
            help: None,
        })
    } else {
        Ok(())
    }
}

/// Compiles the pipeline file, or fails with its diagnostics printed when
/// it has an error. Warnings are left to `check`.
fn compile_valid(source: &SourceFile) -> Result<(Pipeline<'_>, PhaseGraph), Failure> {
    let compilation = compile(source);
    if compilation.has_errors() {
        eprint!("{}", report::human(source, &compilation.diagnostics));
        return Err(Failure {
            exit: Exit::Invalid,
            message: format!(
                "{} is invalid: {}",
                source.name,
                report::count(&compilation.diagnostics)
            ),
            help: Some(format!("run `stagecraft check -f {}` for details", source.name)),
        });
    }
    match (compilation.pipeline, compilation.graph) {
        (Some(pipeline), Some(graph)) => Ok((pipeline, graph)),
        _ => Err(internal("a compilation without errors has no pipeline")),
    }
}

fn plan_failure(source: &SourceFile, error: PlanError) -> Failure {
    match error {
        PlanError::Invalid(diagnostics) => {
            eprint!("{}", report::human(source, &diagnostics));
            Failure {
                exit: Exit::Invalid,
                message: format!("cannot plan: {}", report::count(&diagnostics)),
                help: None,
            }
        }
        PlanError::SetBuiltin { .. } => Failure::user(error.to_string()),
        PlanError::UnknownWorkflow { ref name, help: None } => Failure {
            help: list::not_a_workflow(&compile(source), name),
            ..Failure::user(error.to_string())
        },
        PlanError::UnknownEnv { ref help, .. }
        | PlanError::UnknownWorkflow { ref help, .. }
        | PlanError::UnknownService { ref help, .. } => Failure {
            help: help.clone(),
            ..Failure::user(error.to_string())
        },
    }
}

fn plan(args: &PlanArgs) -> Outcome {
    // `push` as the command that runs the workflow sets it.
    let push = match args.workflow.as_str() {
        "deploy" => true,
        "build" => args.push,
        _ if args.push => {
            return Err(Failure {
                help: Some("`deploy` always pushes; `build --push` pushes".to_owned()),
                ..Failure::user(format!("`--push` does not apply to the `{}` workflow", args.workflow))
            });
        }
        _ => false,
    };
    let path = locate(args.file.file.as_deref())?;
    let source = read(&path)?;
    let (pipeline, graph) = compile_valid(&source)?;
    // A rollback runs at its target's version, which `plan` does not look up.
    let version = match &args.version {
        Some(version) => version.clone(),
        None if args.workflow == "rollback" => engine::UNKNOWN_VERSION.to_owned(),
        None => engine::Source::probe(&run::pipeline_dir(&path)).version(),
    };
    let request = PlanRequest {
        env: args.env.clone(),
        workflow: args.workflow.clone(),
        services: args.services.clone(),
        version,
        release: "dry-run".to_owned(),
        set: args.set.iter().cloned().collect::<IndexMap<_, _>>(),
        push,
        ..PlanRequest::default()
    };
    secrets::refuse_set(&pipeline, &args.set)?;
    let plan = engine::plan(&pipeline, &graph, &request).map_err(|e| plan_failure(&source, e))?;
    let secrets = secrets::planned(&pipeline, &plan.env);
    match args.format {
        PlanFormat::Text => write_with(|out| render::plan_text(&plan, &secrets, out)),
        PlanFormat::Json => write_with(|out| plan.write_json(out)),
        PlanFormat::Ron => write_stdout(&render::plan_ron(&plan).map_err(internal)?),
    }
}

fn graph(args: &GraphArgs) -> Outcome {
    let source = read(&locate(args.file.file.as_deref())?)?;
    let (pipeline, graph) = compile_valid(&source)?;
    let view = engine::graph_view(&pipeline, &graph, args.workflow.as_deref(), args.env.as_deref())
        .map_err(|e| plan_failure(&source, e))?;
    let text = match args.format {
        GraphFormat::Dot => render::dot(&view),
        GraphFormat::Mermaid => render::mermaid(&view),
    };
    write_stdout(&text)
}

fn internal(error: impl std::fmt::Display) -> Failure {
    Failure {
        exit: Exit::Internal,
        ..Failure::user(format!("internal error: {error}"))
    }
}

/// Pretty JSON straight to stdout (a plan of 10,000 instances is megabytes:
/// it is not built as a string first).
fn print_json(value: &impl serde::Serialize) -> Outcome {
    write_with(|out| {
        serde_json::to_writer_pretty(&mut *out, value)?;
        out.write_all(b"\n")
    })
}
