//! `stagecraft resume`: its flags, the refusal (every difference named),
//! and what `--dry-run` prints. Whether a release may be resumed and what
//! is carried over are `state::resumable`'s; running is `run`'s.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;

use clap::Args;

use super::args::Selection;
use super::output::escape;
use super::run::Request;
use super::{Failure, SourceFile, plan_failure};
use crate::check::Pipeline;
use crate::engine::{self, Plan};
use crate::state::{self, PipelineState, Release, Resume, ResumeError, ResumeRequest};

/// `stagecraft resume [REL]`.
#[derive(Args, Debug)]
pub(super) struct ResumeArgs {
    /// The release to resume [default: the env's newest release, which must have failed or been interrupted]
    #[arg(value_name = "REL")]
    pub release: Option<String>,
    #[command(flatten)]
    pub selection: Selection,
}

/// Which release a run resumes: the one named, else the env's newest.
#[derive(Clone, Copy, Debug)]
pub(super) struct Target<'a>(pub Option<&'a str>);

/// What the run that resumes is now, to compare with the release.
pub(super) struct Now<'a> {
    env: &'a str,
    target: Target<'a>,
    digest: String,
    version: String,
    services: Vec<String>,
    set_digests: BTreeMap<String, String>,
}

impl<'a> Now<'a> {
    /// The run `request` asks for, from the pipeline file `text`, with the
    /// version from git unless `--version` is given.
    pub(super) fn new(
        request: &Request<'a>,
        target: Target<'a>,
        text: &str,
        git: &engine::Source,
        all_services: &[String],
    ) -> Self {
        let mut services = request
            .services
            .map_or_else(|| all_services.to_vec(), <[String]>::to_vec);
        services.sort();
        services.dedup();
        Self {
            env: request.env,
            target,
            digest: engine::digest(text.as_bytes()),
            version: request.version.map_or_else(|| git.version(), str::to_owned),
            services,
            set_digests: engine::set_digests(request.set.iter().map(|(k, v)| (k, v))),
        }
    }
}

/// For `resume` (`request.resume`), what the run is now and the release
/// it names (else the env's newest), not judged yet: its workflow is the
/// run's. `(None, None)` for every other command.
pub(super) fn prepare<'a>(
    request: &Request<'a>,
    state: &PipelineState,
    pipeline: &Pipeline<'_>,
    source: &SourceFile,
    git: &mut engine::Probe,
    all_services: &[String],
) -> Result<(Option<Now<'a>>, Option<Release>), Failure> {
    let Some(target) = request.resume else {
        return Ok((None, None));
    };
    // An unknown env is named as every command names it.
    engine::find_env(pipeline, request.env).map_err(|e| plan_failure(source, e))?;
    let release = state::resume_target(state, request.env, target.0)?
        .map_err(|error| refusal(&error, request.env, &source.name))?;
    let now = Now::new(request, target, &source.text, git.get(), all_services);
    Ok((Some(now), Some(release)))
}

/// The request of the run that resumes `release`: its workflow (`push`
/// for a deploy, as `deploy` sets it); `request` itself otherwise.
pub(super) fn request<'a>(request: &Request<'a>, release: Option<&'a Release>) -> Request<'a> {
    let workflow = release.map(|r| r.workflow.as_str());
    Request {
        workflow: workflow.unwrap_or(request.workflow),
        push: workflow.map_or(request.push, |w| w == "deploy"),
        rollback: request.rollback.clone(),
        ..*request
    }
}

/// The release `now` resumes, judged against the state in `dir`; a
/// refusal is exit 1, with every difference named.
pub(super) fn check(dir: &PipelineState, now: &Now<'_>, source: &SourceFile) -> Result<Resume, Failure> {
    let request = ResumeRequest {
        env: now.env,
        release: now.target.0,
        digest: &now.digest,
        version: &now.version,
        services: &now.services,
        set_digests: &now.set_digests,
    };
    match state::resumable(dir, &request)? {
        Ok(resume) => Ok(resume),
        Err(error) => Err(refusal(&error, now.env, &source.name)),
    }
}

/// A refusal as the user sees it.
fn refusal(error: &ResumeError, env: &str, file: &str) -> Failure {
    let list = format!("stagecraft releases list --env {env} -f {file}");
    let help = match error {
        ResumeError::Differs { id, differences } => {
            // The error line, then one line per difference (the message of
            // a `Failure` is one line).
            let mut text = format!("error: {}\n", escape(&error.to_string()));
            for difference in differences {
                let _ = writeln!(text, "  - {}", escape(&difference.describe(*id)));
            }
            eprint!("{text}");
            return Failure {
                help: Some(format!(
                    "resume runs exactly what {id} ran: give the same --version, --services and --set, \
                     and the same pipeline file; or start a new release with `stagecraft deploy`"
                )),
                ..Failure::user(String::new())
            };
        }
        ResumeError::UnknownRelease {
            closest: Some(closest), ..
        } => format!("did you mean `{closest}`?"),
        ResumeError::UnknownRelease { closest: None, .. } | ResumeError::NoReleases { .. } => {
            format!("`{list}` lists the env's releases")
        }
        ResumeError::OtherEnv { env, .. } => format!("resume it with `--env {env}`"),
        ResumeError::NotFailed { .. } | ResumeError::Workflow { .. } => {
            format!("only a failed or interrupted deploy (or `run`) can be resumed; `{list}` lists the releases")
        }
        ResumeError::Newer { .. } => {
            "only the env's newest release can be resumed; start a new release with `stagecraft deploy`".to_owned()
        }
    };
    Failure {
        help: Some(help),
        ..Failure::user(error.to_string())
    }
}

/// `resume --dry-run`: which instances are carried over from the release
/// and which will run (or be skipped for their condition).
pub(super) fn dry_run(plan: &Plan, resume: &Resume, out: &mut dyn Write) -> std::io::Result<()> {
    let carry = resume.carry(plan);
    let id = resume.release.id;
    writeln!(
        out,
        "resume of release {id} · {} · env {} · version {}",
        plan.workflow,
        plan.env,
        escape(&plan.version)
    )?;
    let mut carried = Vec::new();
    let mut run = Vec::new();
    for (position, instance) in plan.instances.iter().enumerate() {
        if carry.carries(position) {
            carried.push(instance.id.to_string());
        } else {
            let mut line = instance.id.to_string();
            if instance.is_finally() {
                line.push_str("  (finally)");
            }
            if let Some(reason) = instance.skip() {
                let _ = write!(line, "  (skipped: {reason})");
            } else if instance.command.is_none() {
                line.push_str("  (marker)");
            }
            run.push(line);
        }
    }
    writeln!(
        out,
        "\ncarried over (completed in {id}, not run again): {}",
        carried.len()
    )?;
    for id in &carried {
        writeln!(out, "  ✓ {id}")?;
    }
    writeln!(out, "\nwill run: {}", run.len())?;
    for line in &run {
        writeln!(out, "  ▶ {line}")?;
    }
    Ok(())
}
