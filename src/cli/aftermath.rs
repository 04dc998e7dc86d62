//! The failure report: what a failed (or interrupted) release leaves the
//! user with, printed after its summary table: what completed, what was
//! undone (and the undo that failed), what the `finally` phases did, and the
//! exact command that resumes it.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::output::{escape, output_line};
use super::progress::outcome;
use super::run::Request;
use crate::engine::{InstanceStatus, InstanceSummary, Plan, Reason, Summary, UndoStatus, UndoSummary};
use crate::state::ReleaseId;

/// How to run a release's workflow again: what `resume` needs besides the
/// release id.
pub(super) struct Rerun {
    id: ReleaseId,
    env: String,
    /// `-f`, when given (or `STAGECRAFT_FILE`).
    file: Option<PathBuf>,
    /// `--state-dir`, when given (or `STAGECRAFT_STATE_DIR`).
    state_dir: Option<PathBuf>,
    /// `--version`, `--services` and `--set`, as given: a resume must be
    /// given the same.
    version: Option<String>,
    services: Option<Vec<String>>,
    set: Vec<(String, String)>,
    /// Whether `resume` runs the workflow again (not `build`, not
    /// `rollback`).
    resumable: bool,
}

impl Rerun {
    /// How to resume release `id`, run as `request` asked.
    pub(super) fn of(request: &Request<'_>, id: ReleaseId) -> Self {
        Self {
            id,
            env: request.env.to_owned(),
            file: request.file.map(PathBuf::from),
            state_dir: request.execution.state_dir.clone(),
            version: request.version.map(str::to_owned),
            services: request.services.map(<[String]>::to_vec),
            set: request.set.to_vec(),
            resumable: !matches!(request.workflow, "build" | "rollback"),
        }
    }

    /// `stagecraft resume REL --env E`, with `-f`, `--state-dir`,
    /// `--version`, `--services` and `--set` when the run was given them,
    /// quoted for a POSIX shell.
    pub(super) fn command(&self) -> String {
        let mut command = format!("stagecraft resume {} --env {}", self.id, quote(&self.env));
        if let Some(version) = &self.version {
            let _ = write!(command, " --version {}", quote(version));
        }
        if let Some(services) = &self.services {
            let _ = write!(command, " --services {}", quote(&services.join(",")));
        }
        for (key, value) in &self.set {
            let _ = write!(command, " --set {}", quote(&format!("{key}={value}")));
        }
        if let Some(file) = &self.file {
            let _ = write!(command, " -f {}", quote(&file.display().to_string()));
        }
        if let Some(dir) = &self.state_dir {
            let _ = write!(command, " --state-dir {}", quote(&dir.display().to_string()));
        }
        command
    }
}

/// What is printed when release `id` of `request` ends: the summary
/// table, and the report when it did not succeed.
pub(super) fn summary(plan: &Plan, summary: &Summary, request: &Request<'_>, id: ReleaseId) -> String {
    let mut text = super::progress::summary(plan, &id.to_string(), summary);
    text.push_str(&report(summary, &Rerun::of(request, id)));
    text
}

/// The report after a release that did not succeed (empty after one that
/// did).
pub(super) fn report(summary: &Summary, rerun: &Rerun) -> String {
    if summary.succeeded() {
        return String::new();
    }
    let mut out = String::new();
    let completed: Vec<&str> = summary
        .instances
        .iter()
        .filter(|i| !i.finally && i.status == InstanceStatus::Completed)
        .map(|i| i.id.as_str())
        .collect();
    let _ = writeln!(
        out,
        "\ncompleted: {}",
        if completed.is_empty() {
            "nothing".to_owned()
        } else {
            completed.join(", ")
        }
    );
    undo_report(summary, &mut out);
    let finally: Vec<String> = summary
        .instances
        .iter()
        .filter(|i| i.finally)
        .map(|i| format!("{} ({})", i.id, ending(i)))
        .collect();
    if !finally.is_empty() {
        let _ = writeln!(out, "finally: {}", finally.join(", "));
    }
    if rerun.resumable {
        let _ = writeln!(
            out,
            "resume it once the cause is fixed (what completed does not run again):\n  {}",
            escape(&rerun.command())
        );
    }
    out
}

/// For a run that undid its failure: what was undone (latest first), the
/// undo that failed, with its output and log, and what was not undone.
fn undo_report(summary: &Summary, out: &mut String) {
    let undos: Vec<(&str, &UndoSummary)> = summary
        .undo_order
        .iter()
        .filter_map(|&i| summary.instances.get(i))
        .filter_map(|i| i.undo.as_ref().map(|u| (i.id.as_str(), u)))
        .collect();
    let with = |status| -> Vec<&str> {
        undos
            .iter()
            .filter(|(_, u)| u.status == status)
            .map(|(id, _)| *id)
            .collect()
    };
    let undone = with(UndoStatus::Undone);
    if !undone.is_empty() {
        let _ = writeln!(out, "undone, latest first: {}", undone.join(", "));
    }
    for (id, undo) in undos.iter().filter(|(_, u)| u.status == UndoStatus::Failed) {
        let how = undo
            .reason
            .as_ref()
            .map_or_else(String::new, |r| outcome(undo.exit_code, r));
        let _ = writeln!(out, "the undo of `{id}` failed ({how}): the undoing stopped there");
        if !undo.tail.is_empty() {
            let _ = writeln!(out, "last lines of its output:");
            for line in &undo.tail {
                let _ = writeln!(out, "  | {}", output_line(line));
            }
        }
        if let Some(log) = &undo.log {
            let _ = writeln!(out, "log: {}", log.display());
        }
    }
    let not_attempted = with(UndoStatus::NotAttempted);
    if !not_attempted.is_empty() {
        let _ = writeln!(out, "not undone (not attempted): {}", not_attempted.join(", "));
    }
}

/// How a `finally` instance ended: `completed`, `failed: exit code 1`,
/// `skipped: condition`.
fn ending(instance: &InstanceSummary) -> String {
    match (instance.status, &instance.reason) {
        (InstanceStatus::Completed, _) => "completed".to_owned(),
        (InstanceStatus::Failed, Some(Reason::ExitCode)) => match instance.exit_code {
            Some(code) => format!("failed: exit code {code}"),
            None => "failed".to_owned(),
        },
        (InstanceStatus::Failed, Some(reason)) => format!("failed: {reason}"),
        (InstanceStatus::Failed, None) => "failed".to_owned(),
        (InstanceStatus::Skipped, Some(reason)) => format!("not run: {reason}"),
        (InstanceStatus::Skipped, None) => "not run".to_owned(),
    }
}

/// `text` as one word for a POSIX shell: as it is when it holds only safe
/// characters, else in single quotes.
pub(super) fn quote(text: &str) -> String {
    let safe = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | ',' | '+' | '@' | '='));
    if safe {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resume_command_keeps_the_flags_given_quoted() {
        let rerun = Rerun {
            id: "rel-20261125-170229123".parse().unwrap(),
            env: "prod".into(),
            file: Some(PathBuf::from("deploy/my pipeline.stagecraft")),
            state_dir: Some(PathBuf::from("/var/lib/it's")),
            version: Some("v2".into()),
            services: Some(vec!["api".into(), "web".into()]),
            set: vec![("image".into(), "shop:v2 beta".into()), ("region".into(), "eu".into())],
            resumable: true,
        };
        assert_eq!(
            rerun.command(),
            "stagecraft resume rel-20261125-170229123 --env prod --version v2 --services api,web \
             --set 'image=shop:v2 beta' --set region=eu -f 'deploy/my pipeline.stagecraft' --state-dir '/var/lib/it'\\''s'"
        );
        let plain = Rerun {
            file: None,
            state_dir: None,
            version: None,
            services: None,
            set: Vec::new(),
            ..rerun
        };
        assert_eq!(plain.command(), "stagecraft resume rel-20261125-170229123 --env prod");
    }
}
