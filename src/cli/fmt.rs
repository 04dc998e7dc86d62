//! `stagecraft fmt`: rewrite pipeline files in the canonical style
//! (`spec/commands/fmt.md`), or with `--check` only say which would change.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;

use super::report;
use super::{Exit, Failure, FileArg, Outcome, locate, read, write_stdout};

/// Arguments of `stagecraft fmt`.
#[derive(Args, Debug)]
pub(super) struct FmtArgs {
    /// Files to format [default: the pipeline file]
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    file: FileArg,
    /// Change nothing; exit 1 and name the files that would change
    #[arg(long)]
    check: bool,
}

/// Formats every file given. A file with a syntax error is reported and left
/// alone (exit 2, after the other files are done); with `--check`, files
/// that would change are named on stdout (exit 1).
pub(super) fn fmt(args: &FmtArgs) -> Outcome {
    let mut paths: Vec<PathBuf> = args.file.file.iter().cloned().collect();
    paths.extend(args.files.iter().cloned());
    if paths.is_empty() {
        paths.push(locate(None)?);
    }
    let mut invalid = 0;
    let mut unformatted = Vec::new();
    let mut stderr = String::new();
    for path in &paths {
        let source = read(path)?;
        let formatted = match &source.not_text {
            Some(diagnostic) => Err(diagnostic.clone()),
            None => crate::syntax::format(&source.text),
        };
        let formatted = match formatted {
            Ok(formatted) => formatted,
            Err(diagnostic) => {
                invalid += 1;
                stderr.push_str(&report::human(&source, std::slice::from_ref(&diagnostic)));
                let _ = writeln!(
                    stderr,
                    "{}: not formatted: {}",
                    super::output::escape(&source.name),
                    report::count(&[diagnostic])
                );
                continue;
            }
        };
        if formatted == source.text {
            continue;
        }
        if args.check {
            unformatted.push(source.name.clone());
        } else {
            write_atomically(path, &formatted)
                .map_err(|e| Failure::user(format!("cannot write {}: {e}", source.name)))?;
        }
    }
    eprint!("{stderr}");
    let mut stdout = String::new();
    for name in &unformatted {
        let _ = writeln!(stdout, "{name}");
    }
    write_stdout(&stdout)?;
    if invalid > 0 {
        return Err(Failure {
            exit: Exit::Invalid,
            message: String::new(),
            help: None,
        });
    }
    if !unformatted.is_empty() {
        let count = unformatted.len();
        return Err(Failure {
            help: Some("run `stagecraft fmt` to format them".to_owned()),
            ..Failure::user(format!(
                "{count} file{} would be reformatted",
                if count == 1 { "" } else { "s" }
            ))
        });
    }
    Ok(())
}

/// Writes `text` to a temporary file beside `path` and renames it over
/// `path`, so a reader never sees half a file. The file keeps its
/// permissions.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "pipeline".into(), |n| n.to_string_lossy());
    let temp = dir.join(format!(".{name}.fmt-{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        if let Ok(metadata) = std::fs::metadata(path) {
            std::fs::set_permissions(&temp, metadata.permissions())?;
        }
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}
