//! The commands that execute: `build`, `deploy`, `rollback` and `run`.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::args::{BuildArgs, Execution, RollbackArgs, RunArgs, Selection};
use super::interrupts::Interrupts;
use super::progress::Progress;
use super::state::StateFlags;
use super::{Exit, Failure, Outcome, compile_valid, history, locate, plan_failure, read, render, secrets, write_with};
use super::{aftermath, confirm, resume};
use crate::engine::{self, Cancel, ExecuteOptions, Plan, PlanRequest, RecordError, ShellRunner, Summary};
use crate::state::{
    self, Backend, Clock, Commit, EnvStore, Holder, Live, Opening, PipelineState, Reap, Recording, Recovered, Release,
    ReleaseId, ReleaseMeta, Restore, RollbackError, RollbackTarget, Scope, Services, StateError, Wait, user_at_host,
};

/// The default state directory: `.stagecraft` beside the pipeline file
/// (also where runs keep their output when the state is in PostgreSQL).
pub(super) fn default_state_dir(pipeline_file: &Path) -> PathBuf {
    pipeline_dir(pipeline_file).join(".stagecraft")
}

/// The directory commands run in: the pipeline file's (empty for the
/// current directory, so that paths under it read `.stagecraft/…`).
pub(super) fn pipeline_dir(pipeline_file: &Path) -> PathBuf {
    pipeline_file.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// One execution, whichever command asked for it.
pub(super) struct Request<'a> {
    pub workflow: &'a str,
    pub file: Option<&'a Path>,
    pub env: &'a str,
    pub version: Option<&'a str>,
    pub services: Option<&'a [String]>,
    pub set: &'a [(String, String)],
    pub push: bool,
    pub rollback: Option<RollbackTarget>,
    /// `resume`: the release it resumes (its workflow replaces `workflow`).
    pub resume: Option<resume::Target<'a>>,
    pub execution: &'a Execution,
    pub state: &'a StateFlags,
}

/// `stagecraft build`: the `build` workflow; `--push` sets `push=true`.
pub(super) fn build(args: &BuildArgs, state: &StateFlags) -> Outcome {
    execute(&Request::of("build", &args.selection, args.push, state))
}

/// `stagecraft deploy`: the `deploy` workflow, with `push=true`.
pub(super) fn deploy(args: &Selection, state: &StateFlags) -> Outcome {
    execute(&Request::of("deploy", args, true, state))
}

/// `stagecraft run WORKFLOW`: any workflow but the three with commands of
/// their own (whose rules `run` would bypass: `push`, rollback targets).
pub(super) fn run(args: &RunArgs, state: &StateFlags) -> Outcome {
    if let command @ ("build" | "deploy" | "rollback") = args.workflow.as_str() {
        return Err(Failure {
            help: Some(format!("use `stagecraft {command}`")),
            ..Failure::user(format!("`run` does not run the `{command}` workflow"))
        });
    }
    execute(&Request::of(&args.workflow, &args.selection, false, state))
}

/// `stagecraft rollback`: the `rollback` workflow, at the target's version.
pub(super) fn rollback(args: &RollbackArgs, state: &StateFlags) -> Outcome {
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
        resume: None,
        execution: &args.execution,
        state,
    })
}

/// `stagecraft resume [REL]`: the workflow of the failed release REL again,
/// its completed instances carried over.
pub(super) fn resume(args: &resume::ResumeArgs, state: &StateFlags) -> Outcome {
    execute(&Request {
        resume: Some(resume::Target(args.release.as_deref())),
        ..Request::of("deploy", &args.selection, true, state)
    })
}

impl<'a> Request<'a> {
    fn of(workflow: &'a str, selection: &'a Selection, push: bool, state: &'a StateFlags) -> Self {
        Self {
            workflow,
            file: selection.file.file.as_deref(),
            env: &selection.env,
            version: selection.version.as_deref(),
            services: selection.services.as_deref(),
            set: &selection.set,
            push,
            rollback: None,
            resume: None,
            execution: &selection.execution,
            state,
        }
    }
}

fn execute(request: &Request<'_>) -> Outcome {
    let path = locate(request.file)?;
    // Commands (and git, for the version) run in the pipeline's directory.
    let dir = Some(pipeline_dir(&path))
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let source = read(&path)?;
    let (pipeline, graph) = compile_valid(&source)?;
    // git answers while the state opens.
    let mut git = engine::Source::start(&dir);
    let clock = Clock::from_env().map_err(|e| Failure::user(e.to_string()))?;
    let all_services: Vec<String> = pipeline.services.keys().map(|s| (*s).to_owned()).collect();
    let backend = open_backend(request, &path)?;
    let state = backend.pipeline(pipeline.name);
    // `resume` runs the workflow of the release it resumes.
    let (now, target) = resume::prepare(request, &state, &pipeline, &source, &mut git, &all_services)?;
    let request = &resume::request(request, target.as_ref());
    let base = PlanRequest {
        env: request.env.to_owned(),
        workflow: request.workflow.to_owned(),
        services: request.services.map(<[String]>::to_vec),
        version: engine::UNKNOWN_VERSION.to_owned(),
        release: "dry-run".to_owned(),
        set: request.set.iter().cloned().collect(),
        push: request.push,
        ..PlanRequest::default()
    };
    let plan_for =
        |request: &PlanRequest| engine::plan(&pipeline, &graph, request).map_err(|e| plan_failure(&source, e));
    // Unknown env, workflow or service, or a built-in given to `--set`, is
    // a user error before any state is read.
    plan_for(&base)?;
    secrets::refuse_set(&pipeline, request.set)?;
    // Every secret is read before anything runs or is written.
    let secrets = secrets::read(&pipeline, request.env, &dir)?;
    let confirm = !request.execution.dry_run && confirm::needed(&pipeline, request.env, request.execution.yes)?;
    if request.execution.dry_run {
        // Read-only: the history, for a rollback's target, is read without
        // the lock, and nothing is written.
        let live = if request.rollback.is_some() {
            state.live(request.env)?
        } else {
            Live::default()
        };
        let (plan_request, _) = run_request(base, request, &state, &live, git.get(), &all_services)?;
        let plan = plan_for(&plan_request)?;
        if let Some(now) = &now {
            let resumed = resume::check(&state, now, &source)?;
            return write_with(|out| resume::dry_run(&plan, &resumed, out));
        }
        let planned = secrets::planned(&pipeline, request.env);
        return write_with(|out| render::plan_text(&plan, &planned, out));
    }
    let interrupts = Interrupts::install();
    let mut store = open_store(&backend, pipeline.name, request, clock)?;
    let (plan_request, restore) = run_request(base, request, &store.reader(), store.live(), git.get(), &all_services)?;
    // Judged under the lock (after recovery): no newer release can start.
    let resumed = now
        .map(|now| resume::check(&store.reader(), &now, &source))
        .transpose()?;
    if confirm {
        // Under the lock: what is confirmed is what runs.
        confirm::ask(&plan_for(&plan_request)?)?;
    }
    let undo_on_failure = undoes_on_failure(request, &pipeline);
    let mut meta = release_meta(
        request,
        &plan_request,
        restore.as_ref(),
        git.get(),
        &source.text,
        all_services,
    );
    meta.undo_on_failure = undo_on_failure;
    meta.resumes = resumed.as_ref().map(|r| r.release.id);
    let output = store.reader();
    let mut runner = ShellRunner::default().with_secrets(&secrets);
    runner.script_dir = Some(store.script_dir());
    let cancel = interrupts.arm();
    let (journal, plan) = store.begin_with(&meta, |id| {
        plan_for(&PlanRequest {
            release: id.to_string(),
            ..plan_request.clone()
        })
    })?;
    let id = journal.release().id;
    let carry = resumed.map(|r| r.carry(&plan)).unwrap_or_default();
    let options = execute_options(request, dir, id, &output, secrets, carry, undo_on_failure);
    let summary = run_release(&plan, &options, &runner, journal, cancel, request.execution.state_retry)?;
    eprint!("{}", aftermath::summary(&plan, &summary, request, id));
    outcome(&summary, id, &path, request.execution.state_dir.as_deref())
}

/// Whether a failure of `request`'s release is undone: `--undo-on-failure`,
/// or `undo on failure` in its env or an env that env extends.
fn undoes_on_failure(request: &Request<'_>, pipeline: &crate::check::Pipeline<'_>) -> bool {
    request.execution.on_failure.undo_on_failure
        || pipeline
            .env_id(request.env)
            .is_some_and(|env| pipeline.undoes_on_failure(env))
}

/// The state `request` names (`--state`, `--state-dir` or their
/// variables), else the directory beside the pipeline file at `path`.
fn open_backend(request: &Request<'_>, path: &Path) -> Result<Backend, Failure> {
    let local = default_state_dir(path);
    let url = request
        .state
        .resolve(request.execution.state_dir.as_deref(), || local.clone());
    Ok(Backend::open(&url, &local)?)
}

/// How to execute release `id` of `request`.
fn execute_options(
    request: &Request<'_>,
    dir: PathBuf,
    id: ReleaseId,
    output: &PipelineState,
    secrets: engine::Secrets,
    carry: engine::CarryOver,
    undo_on_failure: bool,
) -> ExecuteOptions {
    ExecuteOptions {
        dir,
        release: id.to_string(),
        jobs: usize::from(request.execution.jobs),
        keep_going: request.execution.on_failure.keep_going,
        log_dir: Some(output.output_dir(id)),
        skip_backoff: false,
        grace: request.execution.grace,
        secrets,
        undo_on_failure,
        carry,
    }
}

/// The plan request of this run; for a rollback, also what it restores
/// (`live` is what is live in the env now).
fn run_request(
    base: PlanRequest,
    request: &Request<'_>,
    state: &PipelineState,
    live: &Live,
    git: &engine::Source,
    all_services: &[String],
) -> Result<(PlanRequest, Option<Restore>), Failure> {
    Ok(match &request.rollback {
        Some(target) => {
            let restore = restore(state, request, target, live, all_services)?;
            (rollback_request(base, &restore), Some(restore))
        }
        None => (versioned(base, request.version, git), None),
    })
}

/// The plan request at `--version`, else the version from git.
fn versioned(base: PlanRequest, flag: Option<&str>, git: &engine::Source) -> PlanRequest {
    PlanRequest {
        version: flag.map_or_else(|| git.version(), str::to_owned),
        ..base
    }
}

/// The plan request of a rollback: the target's version, each changed
/// service at its own, the others skipped as unchanged.
fn rollback_request(base: PlanRequest, restore: &Restore) -> PlanRequest {
    PlanRequest {
        version: restore.target.version.clone(),
        service_versions: restore.versions().into_iter().collect(),
        unchanged: restore.unchanged.clone(),
        ..base
    }
}

/// What the release records besides its plan: what was asked (services,
/// `--set` keys, rollback target and versions) and by whom, from what.
fn release_meta(
    request: &Request<'_>,
    plan: &PlanRequest,
    restore: Option<&Restore>,
    git: &engine::Source,
    text: &str,
    all_services: Vec<String>,
) -> ReleaseMeta {
    let all = request.services.is_none();
    let mut names = request.services.map_or(all_services, <[String]>::to_vec);
    names.sort();
    names.dedup();
    let services = Services { names, all };
    ReleaseMeta {
        rollback_of: restore.map(|r| r.target.id),
        commit: git.commit.clone().map(|sha| Commit { sha, dirty: git.dirty }),
        services: Some(services),
        versions: restore.map(Restore::versions).unwrap_or_default(),
        set_keys: plan.set.keys().cloned().collect(),
        digest: Some(engine::digest(text.as_bytes())),
        user: Some(user_at_host()),
        undo_on_failure: false,
        resumes: None,
        set_digests: engine::set_digests(&plan.set),
    }
}

/// What a rollback restores, printed (to stderr) before anything runs.
fn restore(
    state: &PipelineState,
    request: &Request<'_>,
    target: &RollbackTarget,
    live: &Live,
    all_services: &[String],
) -> Result<Restore, Failure> {
    let scope = Scope {
        services: all_services,
        selected: request.services,
    };
    let refused = |e: RollbackError| Failure::user(format!("cannot roll back: {e}"));
    let restore = match state::restore(state.history(request.env), request.env, live, target, scope)? {
        Ok(restore) => restore,
        // A release of another env is named as such.
        Err(RollbackError::UnknownRelease { id }) => {
            return Err(refused(match state.release(&id) {
                Ok(release) => RollbackError::OtherEnv {
                    id: release.id,
                    env: release.env.clone(),
                    wanted: request.env.to_owned(),
                },
                Err(_) => RollbackError::UnknownRelease { id },
            }));
        }
        Err(error) => return Err(refused(error)),
    };
    eprint!("{}", history::restore_text(request.env, &restore));
    Ok(restore)
}

/// Opens the state under its lock for a run, waiting as `--wait` says, and
/// says what recovery repaired.
fn open_store(backend: &Backend, pipeline: &str, request: &Request<'_>, clock: Clock) -> Result<EnvStore, Failure> {
    let holder = Holder::current(request.workflow, Some(request.env), clock.now());
    let wait = request.execution.wait.unwrap_or(Wait::No);
    let reap = Reap {
        grace: request.execution.grace,
        notice: &|notice| eprintln!("note: {notice}"),
    };
    let opening = Opening {
        holder: &holder,
        wait,
        clock,
        reap: &reap,
    };
    let opened = backend.open_env(pipeline, request.env, &opening);
    let (store, recovered) = opened.map_err(|error| {
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

/// Runs the release and finishes its record. A panic is a bug, reported
/// as one (exit 5) by `main`; the commands running are killed as the panic
/// unwinds through the executor (each running attempt, dropped, kills its
/// process group and reaps it), and the release is recorded interrupted,
/// so that it is not left running.
fn run_release(
    plan: &Plan,
    options: &ExecuteOptions,
    runner: &ShellRunner,
    mut journal: Recording<'_>,
    cancel: &Cancel,
    patience: Duration,
) -> Result<Summary, Failure> {
    let run = std::panic::catch_unwind(AssertUnwindSafe(|| {
        run_plan(plan, options, runner, &mut journal, cancel)
    }));
    match run {
        Ok(Ok(summary)) => {
            journal.finish().map_err(state_failure)?;
            Ok(summary)
        }
        Ok(Err(error)) => Err(unrecorded(&error, journal.salvage(patience))),
        Err(panic) => {
            let _ = journal.interrupt();
            std::panic::resume_unwind(panic);
        }
    }
}

/// Runs the plan with real commands, recording into the journal and
/// printing progress; `cancel` stops it.
fn run_plan(
    plan: &Plan,
    options: &ExecuteOptions,
    runner: &ShellRunner,
    journal: &mut Recording<'_>,
    cancel: &Cancel,
) -> Result<Summary, RecordError> {
    let mut progress = Progress::new(plan, journal);
    let mut output = progress.output();
    let result = engine::execute(plan, options, runner, &mut progress, &mut output, cancel);
    progress.close();
    result
}

/// A run whose recording failed (exit 4), and whether its last state
/// could be written once the storage answered again.
fn unrecorded(error: &RecordError, salvaged: Result<(Release, Recovered), StateError>) -> Failure {
    let help = match salvaged {
        Ok((release, _)) => format!(
            "the state answered again once the commands running had ended: release {} is recorded as {}",
            release.id,
            release.status()
        ),
        Err(StateError::Finished { id }) => {
            format!("another command has recorded release {id} as failed (interrupted) meanwhile")
        }
        Err(again) => format!(
            "its last state could not be written either ({again}); the release is left unfinished, and the next command marks it interrupted"
        ),
    };
    Failure {
        exit: Exit::State,
        help: Some(help),
        ..Failure::user(format!("cannot record the run: {error}"))
    }
}

/// Exit 0 if every instance succeeded; else what went wrong, and where to
/// look.
fn outcome(summary: &Summary, id: ReleaseId, path: &Path, state_dir: Option<&Path>) -> Outcome {
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
            help: Some(format!(
                "see `stagecraft releases show {id} -f {}{}`",
                aftermath::quote(&path.display().to_string()),
                state_dir.map_or_else(String::new, |dir| format!(
                    " --state-dir {}",
                    aftermath::quote(&dir.display().to_string())
                ))
            )),
            ..Failure::user(format!("release {id} failed"))
        })
    }
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

impl From<StateError> for Failure {
    fn from(error: StateError) -> Self {
        state_failure(error)
    }
}
