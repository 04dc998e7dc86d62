//! `stagecraft init`: writes a starter pipeline from a template kept in
//! `templates/` (each passes `check` with no warning and runs as it is,
//! its commands `echo` lines), never over an existing file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::{DEFAULT_FILE, Failure, Outcome, write_stdout};

/// `stagecraft init`.
#[derive(Args, Debug)]
pub(super) struct InitArgs {
    /// The starter pipeline to write
    #[arg(long, value_enum, default_value_t = Template::Default)]
    template: Template,
    /// Where to write `pipeline.stagecraft` (created if missing)
    #[arg(value_name = "DIR", default_value = ".")]
    dir: PathBuf,
}

/// The templates.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Template {
    /// Build and push each service, migrate, roll out, in dev, staging and prod
    Default,
    /// Build and upload a static site, then invalidate its cache
    StaticSite,
}

impl Template {
    fn text(self) -> &'static str {
        match self {
            Self::Default => include_str!("templates/default.stagecraft"),
            Self::StaticSite => include_str!("templates/static-site.stagecraft"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::StaticSite => "static-site",
        }
    }

    /// The `pipeline` name the template declares.
    fn pipeline(self) -> &'static str {
        match self {
            Self::Default => "app",
            Self::StaticSite => "site",
        }
    }
}

/// Writes `DIR/pipeline.stagecraft` (refusing to replace one: exit 1) and
/// says what to do next.
pub(super) fn init(args: &InitArgs) -> Outcome {
    let file = args.dir.join(DEFAULT_FILE);
    let shown = if args.dir == Path::new(".") {
        PathBuf::from(DEFAULT_FILE)
    } else {
        file.clone()
    };
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| Failure::user(format!("cannot create {}: {e}", args.dir.display())))?;
    let name = pipeline_name(&args.dir).unwrap_or_else(|| args.template.pipeline().to_owned());
    let declared = format!("\npipeline {}\n", args.template.pipeline());
    let text = args
        .template
        .text()
        .replacen(&declared, &format!("\npipeline {name}\n"), 1);
    let mut out = match std::fs::File::create_new(&file) {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Failure {
                help: Some("init never overwrites a file: remove it first, or pass another DIR".to_owned()),
                ..Failure::user(format!("{} already exists", shown.display()))
            });
        }
        Err(e) => return Err(Failure::user(format!("cannot create {}: {e}", shown.display()))),
    };
    out.write_all(text.as_bytes())
        .and_then(|()| out.sync_all())
        .map_err(|e| Failure::user(format!("cannot write {}: {e}", shown.display())))?;
    write_stdout(&next_steps(&args.dir, &shown, args.template, &name))
}

/// The directory's name, when it is a name the language takes (the
/// pipeline is named after it).
fn pipeline_name(dir: &Path) -> Option<String> {
    let absolute = std::path::absolute(dir).ok()?;
    let base = absolute.file_name()?.to_str()?;
    crate::syntax::is_ident(base).then(|| base.to_owned())
}

fn next_steps(dir: &Path, shown: &Path, template: Template, name: &str) -> String {
    let mut steps = String::new();
    if dir != Path::new(".") {
        let _ = writeln!(steps, "  cd {}", dir.display());
    }
    steps.push_str(
        "  stagecraft check                          # the file is valid\n\
         \x20 stagecraft list                           # its workflows, phases, envs and services\n\
         \x20 stagecraft deploy --env dev --version v1  # run `deploy` in dev, recording a release\n\
         \x20 stagecraft status                         # what is live where\n",
    );
    format!(
        "wrote {} (pipeline {name}, template {})\n\nnext:\n{steps}\n\
         Then replace the `echo` commands with your own. Keep .stagecraft/, the\n\
         release history beside the file, out of version control.\n",
        shown.display(),
        template.name(),
    )
}
