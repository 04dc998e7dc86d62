//! What a run shows while it runs and when it ends.
//!
//! On a terminal, an indicatif spinner names the instances running and how
//! many are done, and everything else is printed above it; elsewhere (CI,
//! pipes, tests) each event is one plain line. Command output is printed
//! `id | line`: as it comes with `--jobs 1`, one instance's block at a time
//! otherwise (the executor groups it).

use std::io::{IsTerminal, Write as _};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::output::{escape, output_line};
use crate::engine::{Event, InstanceStatus, OutputSink, Plan, RecordError, Recorder, Summary, Syncer, UndoStatus};
use crate::state::Recording;

/// Prints events and output, and passes events on to the journal.
pub(super) struct Progress<'p, 'j, 's> {
    plan: &'p Plan,
    journal: &'j mut Recording<'s>,
    bar: Option<ProgressBar>,
    running: Vec<usize>,
    done: usize,
}

impl<'p, 'j, 's> Progress<'p, 'j, 's> {
    pub(super) fn new(plan: &'p Plan, journal: &'j mut Recording<'s>) -> Self {
        let live = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let bar = live.then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            plan,
            journal,
            bar,
            running: Vec::new(),
            done: 0,
        }
    }

    /// Lines for people: above the spinner, or on stderr with one write.
    fn say(&self, lines: &str) {
        if lines.is_empty() {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(lines.trim_end_matches('\n')),
            None => {
                // A closed stderr does not stop the run.
                let _ = std::io::stderr().write_all(lines.as_bytes());
            }
        }
    }

    fn id(&self, instance: usize) -> &str {
        self.plan.instances.get(instance).map_or("?", |p| &*p.id)
    }

    /// Takes `event` into account, adding its line (if it has one) to
    /// `lines`.
    fn show(&mut self, event: &Event, lines: &mut String) {
        let id = self.id(event.instance()).to_owned();
        let line = match event {
            Event::Claimed { .. }
            | Event::FailureCommand { .. }
            | Event::Spawned { .. }
            | Event::UndoSpawned { .. } => return,
            Event::UndoStarted { instance } => {
                self.running.push(*instance);
                format!("↶ undoing {id}")
            }
            Event::Undone { instance, .. } => {
                self.running.retain(|&i| i != *instance);
                format!("↶ {id} undone")
            }
            Event::UndoFailed {
                instance,
                exit_code,
                reason,
            } => {
                self.running.retain(|&i| i != *instance);
                format!("✗ undo of {id} failed ({})", outcome(*exit_code, reason))
            }
            Event::UndoNotAttempted { reason, .. } => format!("- undo of {id} not attempted ({reason})"),
            Event::Started { instance, attempt } => {
                self.running.push(*instance);
                if *attempt == 1 {
                    format!("▶ {id}")
                } else {
                    format!("▶ {id} (attempt {attempt})")
                }
            }
            Event::AttemptFailed {
                attempt,
                exit_code,
                reason,
                ..
            } => format!(
                "↻ {id} attempt {attempt} failed ({}); retrying",
                outcome(*exit_code, reason)
            ),
            Event::Completed { instance, .. } => {
                self.finish(*instance);
                format!("✓ {id}")
            }
            Event::Failed {
                instance,
                exit_code,
                reason,
            } => {
                self.finish(*instance);
                format!("✗ {id} failed ({})", outcome(*exit_code, reason))
            }
            Event::Skipped { reason, .. } => {
                self.done += 1;
                format!("- {id} skipped ({reason})")
            }
            Event::CarriedOver { from, .. } => {
                self.done += 1;
                format!("✓ {id} carried over from {from}")
            }
        };
        lines.push_str(&line);
        lines.push('\n');
    }

    /// Names the running instances on the spinner.
    fn show_all(&mut self, events: &[Event]) {
        let mut lines = String::new();
        for event in events {
            self.show(event, &mut lines);
        }
        self.say(&lines);
        self.update_bar();
    }

    fn update_bar(&self) {
        if let Some(bar) = &self.bar {
            let running: Vec<&str> = self.running.iter().map(|&i| self.id(i)).collect();
            bar.set_message(format!(
                "{}/{} done · running {}",
                self.done,
                self.plan.instances.len(),
                if running.is_empty() {
                    "-".to_owned()
                } else {
                    running.join(", ")
                }
            ));
        }
    }

    fn finish(&mut self, instance: usize) {
        self.running.retain(|&i| i != instance);
        self.done += 1;
    }

    /// Where command output goes while this shows progress.
    pub(super) fn output(&self) -> Output {
        Output { bar: self.bar.clone() }
    }

    /// Removes the spinner.
    pub(super) fn close(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Recorder for Progress<'_, '_, '_> {
    fn record(&mut self, events: &[Event]) -> Result<(), RecordError> {
        // Recorded first: what is shown is in the log (or, if recording
        // failed, held back for it).
        if let Err(error) = self.journal.record(events) {
            self.show_all(events);
            return Err(error);
        }
        // A way to test a panic in the middle of a run, compiled only into
        // debug builds: panic once an instance has been recorded started.
        #[cfg(debug_assertions)]
        if let Some(message) = std::env::var_os("STAGECRAFT_DEBUG_PANIC_IN_RUN")
            && events.iter().any(|e| matches!(e, Event::Started { .. }))
        {
            panic!("{}", message.to_string_lossy());
        }
        // The same once an instance has completed (while others may run).
        #[cfg(debug_assertions)]
        if let Some(message) = std::env::var_os("STAGECRAFT_DEBUG_PANIC_ON_COMPLETED")
            && events.iter().any(|e| matches!(e, Event::Completed { .. }))
        {
            panic!("{}", message.to_string_lossy());
        }
        self.show_all(events);
        Ok(())
    }

    fn syncer(&mut self) -> Result<Option<Box<dyn Syncer>>, RecordError> {
        Recorder::syncer(self.journal)
    }

    /// Shown as recorded ones are: the run goes on until what runs ends.
    fn keep(&mut self, events: &[Event]) {
        self.journal.keep(events);
        self.show_all(events);
    }
}

/// Command output, printed `id | line` (above the spinner on a terminal).
pub(super) struct Output {
    bar: Option<ProgressBar>,
}

impl OutputSink for Output {
    fn output(&mut self, _instance: usize, id: &str, lines: &[String]) {
        let mut block = String::new();
        for line in lines {
            block.push_str(id);
            block.push_str(" | ");
            block.push_str(&output_line(line));
            block.push('\n');
        }
        let write = || {
            let mut stdout = std::io::stdout().lock();
            // A closed stdout does not stop the run: the logs keep it all.
            let _ = stdout.write_all(block.as_bytes()).and_then(|()| stdout.flush());
        };
        match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

/// "exit code 2", "timeout", ….
pub(super) fn outcome(exit_code: Option<i32>, reason: &crate::engine::Reason) -> String {
    match (exit_code, reason) {
        (Some(code), crate::engine::Reason::ExitCode) => format!("exit code {code}"),
        _ => reason.to_string(),
    }
}

/// The table printed when a run ends, and, for a failed run, what failed
/// first and what it took down with it.
pub(super) fn summary(plan: &Plan, release: &str, summary: &Summary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nrelease {release} · {} · env {} · version {}",
        plan.workflow,
        plan.env,
        escape(&plan.version)
    );
    instance_table(summary, &mut out);
    if let Some(first) = summary
        .first_failed
        .and_then(|i| summary.instances.get(i).map(|s| (i, s)))
    {
        let (position, failed) = first;
        let how = how_it_failed(failed);
        let attempts = if failed.attempts > 1 {
            format!(" after {} attempts", failed.attempts)
        } else {
            String::new()
        };
        let _ = writeln!(out, "\n`{}` failed first: it {how}{attempts}", failed.id);
        if !failed.tail.is_empty() {
            let _ = writeln!(out, "last lines of its output:");
            for line in &failed.tail {
                let _ = writeln!(out, "  | {}", output_line(line));
            }
        }
        if let Some(log) = &failed.log {
            let _ = writeln!(out, "log: {}", log.display());
        }
        let skipped: Vec<&str> = summary.skipped_because(position).map(|s| s.id.as_str()).collect();
        if !skipped.is_empty() {
            let _ = writeln!(out, "skipped because of it: {}", skipped.join(", "));
        }
    }
    out
}

/// The table of instances, then the counts.
fn instance_table(summary: &Summary, out: &mut String) {
    use std::fmt::Write as _;
    let width = summary
        .instances
        .iter()
        .map(|i| i.id.chars().count())
        .max()
        .unwrap_or(0)
        .max(8);
    let undone = |status| {
        summary
            .instances
            .iter()
            .filter(move |i| i.undo.as_ref().is_some_and(|u| u.status == status))
    };
    // `undo_failed` is wider than the other statuses.
    let status_width = if undone(UndoStatus::Failed).next().is_some() {
        11
    } else {
        9
    };
    let _ = writeln!(
        out,
        "  {:<width$}  {:<status_width$}  {:>8}  {:>4}  {:>8}  reason",
        "instance", "status", "attempts", "exit", "time"
    );
    for instance in &summary.instances {
        let (status, reason) = status_and_reason(instance);
        let exit = instance.exit_code.map_or_else(|| "-".to_owned(), |c| c.to_string());
        let time = instance
            .duration
            .map_or_else(|| "-".to_owned(), |d| format!("{:.2}s", d.as_secs_f64()));
        let line = format!(
            "  {:<width$}  {status:<status_width$}  {:>8}  {exit:>4}  {time:>8}  {reason}",
            instance.id, instance.attempts
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let undo_count = match undone(UndoStatus::Undone).count() {
        0 => String::new(),
        n => format!("{n} undone · "),
    };
    let _ = writeln!(
        out,
        "{} completed · {} failed · {} skipped · {undo_count}{:.2}s",
        summary.count(InstanceStatus::Completed)
            - undone(UndoStatus::Undone).count()
            - undone(UndoStatus::Failed).count(),
        summary.count(InstanceStatus::Failed),
        summary.count(InstanceStatus::Skipped),
        summary.duration.as_secs_f64()
    );
}

/// An instance's status and reason cells: its own, or its undo's.
fn status_and_reason(instance: &crate::engine::InstanceSummary) -> (&'static str, String) {
    let reason = instance.reason.as_ref().map_or_else(String::new, ToString::to_string);
    match &instance.undo {
        Some(undo) if undo.status == UndoStatus::Undone => ("undone", reason),
        Some(undo) if undo.status == UndoStatus::Failed => {
            let how = undo
                .reason
                .as_ref()
                .map_or_else(String::new, |r| outcome(undo.exit_code, r));
            ("undo_failed", format!("undo: {how}"))
        }
        Some(undo) => {
            let why = undo.reason.as_ref().map_or_else(String::new, ToString::to_string);
            ("completed", format!("not undone: {why}"))
        }
        None => (
            match instance.status {
                InstanceStatus::Completed => "completed",
                InstanceStatus::Failed => "failed",
                InstanceStatus::Skipped => "skipped",
            },
            reason,
        ),
    }
}

/// How the instance that failed first failed: "exited with code 2", ….
fn how_it_failed(failed: &crate::engine::InstanceSummary) -> String {
    match (&failed.reason, failed.exit_code) {
        (Some(crate::engine::Reason::Timeout), _) => "timed out".to_owned(),
        (Some(crate::engine::Reason::Log(error)), code) => format!(
            "exited with code {}, but its output could not all be logged: {error}",
            code.unwrap_or(0)
        ),
        (_, Some(code)) => format!("exited with code {code}"),
        (Some(reason), None) => reason.to_string(),
        (None, None) => "failed".to_owned(),
    }
}
