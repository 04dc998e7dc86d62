//! The history as people and programs read it: `releases list | show`,
//! `status`, and the target a rollback prints before it runs. Text tables
//! and the JSON types; the state layer answers the questions.

use std::fmt::Write as _;

use serde::Serialize;

use super::output::escape;
use crate::engine::log_name;

use crate::state::{
    Change, Commit, FailedAt, InstanceRecord, Live, PhaseStatus, Release, ReleaseHeader, ReleaseId, ReleaseStatus,
    ReleaseSummary, Restore, ServiceState, Services, Timestamp,
};

/// Aligned columns: a header row, then the rows; trailing spaces trimmed.
/// Every cell is shown with its control characters escaped.
pub(super) fn table<const N: usize>(headers: [&str; N], rows: &[[String; N]]) -> String {
    let rows: Vec<[String; N]> = rows
        .iter()
        .map(|row| row.clone().map(|cell| escape(&cell).into_owned()))
        .collect();
    let rows = rows.as_slice();
    let mut widths = headers.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut write_row = |cells: &mut dyn Iterator<Item = &str>| {
        let mut line = String::new();
        for (cell, width) in cells.zip(&widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    };
    write_row(&mut headers.iter().copied());
    for row in rows {
        write_row(&mut row.iter().map(String::as_str));
    }
    out
}

/// A commit as a column: its short form, `+dirty` when the tree had changes.
fn commit_cell(commit: Option<&Commit>) -> String {
    commit.map_or_else(
        || "-".to_owned(),
        |c| {
            let short: String = c.sha.chars().take(12).collect();
            if c.dirty { format!("{short}+dirty") } else { short }
        },
    )
}

fn services_cell(services: Option<&Services>) -> String {
    match services {
        None => "-".to_owned(),
        Some(s) if s.all => "all".to_owned(),
        Some(s) => s.names.join(","),
    }
}

fn time_cell(at: Option<Timestamp>) -> String {
    at.map_or_else(|| "-".to_owned(), |t| t.to_string())
}

fn or_dash(text: Option<&str>) -> String {
    text.unwrap_or("-").to_owned()
}

/// `releases list`: one row per release, newest first, a titled column
/// for every recorded value.
pub(super) fn releases_text(releases: &[ReleaseSummary]) -> String {
    if releases.is_empty() {
        return "no releases yet\n".to_owned();
    }
    let rows: Vec<[String; 14]> = releases
        .iter()
        .map(|r| {
            [
                r.id.to_string(),
                r.env.clone(),
                r.workflow.clone(),
                r.version.clone(),
                r.status.to_string(),
                services_cell(r.services.as_ref()),
                commit_cell(r.commit.as_ref()),
                digest_cell(r.digest.as_deref()),
                if r.set_keys.is_empty() {
                    "-".to_owned()
                } else {
                    r.set_keys.join(",")
                },
                or_dash(r.user.as_deref()),
                r.started_at.to_string(),
                time_cell(r.finished_at),
                or_dash(r.previous.map(|p| p.to_string()).as_deref()),
                or_dash(r.rollback_of.map(|t| t.to_string()).as_deref()),
            ]
        })
        .collect();
    table(
        [
            "release",
            "env",
            "workflow",
            "version",
            "status",
            "services",
            "commit",
            "digest",
            "set",
            "by",
            "started",
            "finished",
            "previous",
            "rollback of",
        ],
        &rows,
    )
}

/// A pipeline digest as a column: its first 12 hex digits.
fn digest_cell(digest: Option<&str>) -> String {
    digest.map_or_else(
        || "-".to_owned(),
        |d| d.strip_prefix("sha256:").unwrap_or(d).chars().take(12).collect(),
    )
}

/// `releases show`: the release's fields, then its instances in plan
/// order with their attempts, times, exit code, reason and log.
pub(super) fn release_text(release: &Release, log_dir: &std::path::Path) -> String {
    let mut out = format!(
        "{} · {} · env {} · version {} · {}\n",
        release.id,
        release.workflow,
        release.env,
        escape(&release.version),
        release.status()
    );
    let fields = header_fields(&release.header, release.finished_at);
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in fields {
        let _ = writeln!(out, "{key:<width$}  {}", escape(&value));
    }
    let rows: Vec<[String; 8]> = release.instances().iter().map(|i| instance_row(i, log_dir)).collect();
    out.push('\n');
    out.push_str(&table(
        [
            "instance", "status", "attempts", "exit", "started", "finished", "reason", "log",
        ],
        &rows,
    ));
    // A run killed outright runs no `finally` phase: recovery skipped them.
    let not_run: Vec<&str> = release
        .instances()
        .iter()
        .filter(|i| i.is_finally() && i.reason() == Some(&crate::engine::Reason::Interrupted))
        .filter(|i| i.attempts().is_empty())
        .map(InstanceRecord::id)
        .collect();
    if !not_run.is_empty() {
        let _ = writeln!(
            out,
            "
`finally` phases not run (the run was interrupted): {}",
            not_run.join(", ")
        );
    }
    for instance in release.instances() {
        let undo = instance.undo().map(|u| u.command.as_str());
        if instance.command().is_some() || undo.is_some() {
            let _ = writeln!(out, "\n{}:", instance.id());
        }
        for line in instance.command().iter().flat_map(|c| c.lines()) {
            let _ = writeln!(out, "  $ {}", escape(line));
        }
        for line in undo.iter().flat_map(|c| c.lines()) {
            let _ = writeln!(out, "  undo $ {}", escape(line));
        }
    }
    out
}

/// What became of an instance's undo, as `releases show` names it:
/// `undone`, `failed`, `running`, `not_attempted`, or `not_needed` (the
/// release did not fail, or the instance did not complete).
fn undo_state(instance: &InstanceRecord) -> &'static str {
    match (instance.status(), instance.undo()) {
        (PhaseStatus::Undone, _) => "undone",
        (PhaseStatus::UndoFailed, _) => "failed",
        (PhaseStatus::Undoing, _) => "running",
        (_, Some(undo)) if undo.not_attempted => "not_attempted",
        _ => "not_needed",
    }
}

/// The reason cell of an instance: its own reason, or what stopped its
/// undo.
fn reason_cell(instance: &InstanceRecord) -> String {
    let undo = instance.undo();
    let undo_reason = undo.and_then(|u| u.reason.as_ref());
    match (undo_state(instance), undo_reason) {
        ("failed", Some(crate::engine::Reason::ExitCode)) => format!(
            "undo: exit code {}",
            undo.and_then(|u| u.exit_code)
                .map_or_else(|| "-".to_owned(), |c| c.to_string())
        ),
        ("failed", Some(reason)) => format!("undo: {reason}"),
        ("not_attempted", Some(reason)) => format!("not undone: {reason}"),
        _ => instance.reason().map_or_else(|| "-".to_owned(), ToString::to_string),
    }
}

fn header_fields(header: &ReleaseHeader, finished_at: Option<Timestamp>) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("pipeline", header.pipeline.clone()),
        ("services", services_cell(header.services.as_ref())),
    ];
    if !header.versions.is_empty() {
        let versions: Vec<String> = header.versions.iter().map(|(s, v)| format!("{s} {v}")).collect();
        fields.push(("versions", versions.join(", ")));
    }
    fields.extend([
        (
            "commit",
            header.commit.as_ref().map_or_else(
                || "-".to_owned(),
                |c| {
                    if c.dirty {
                        format!("{} (dirty)", c.sha)
                    } else {
                        c.sha.clone()
                    }
                },
            ),
        ),
        (
            "set",
            if header.set_keys.is_empty() {
                "-".to_owned()
            } else {
                header.set_keys.join(", ")
            },
        ),
        ("digest", or_dash(header.digest.as_deref())),
        ("by", or_dash(header.user.as_deref())),
        ("started", header.started_at.to_string()),
        ("finished", time_cell(finished_at)),
        ("previous", or_dash(header.previous.map(|p| p.to_string()).as_deref())),
    ]);
    if let Some(target) = header.rollback_of {
        fields.push(("rollback of", target.to_string()));
    }
    if let Some(resumed) = header.resumes {
        fields.push(("resumes", resumed.to_string()));
    }
    fields
}

fn instance_row(instance: &InstanceRecord, log_dir: &std::path::Path) -> [String; 8] {
    let attempts = instance.attempts();
    let started = attempts.first().map(|a| a.started_at);
    let finished = attempts.last().and_then(|a| a.finished_at);
    let log = if attempts.is_empty() {
        "-".to_owned()
    } else {
        log_dir
            .join(format!("{}.log", log_name(instance.id())))
            .display()
            .to_string()
    };
    [
        instance.id().to_owned(),
        instance.status().to_string(),
        attempts.len().to_string(),
        instance.exit_code().map_or_else(|| "-".to_owned(), |c| c.to_string()),
        time_cell(started),
        time_cell(finished),
        reason_cell(instance),
        log,
    ]
}

/// A release in `releases list --format json`, and with its instances in
/// `releases show --format json`.
#[derive(Serialize)]
pub(super) struct ReleaseJson<'r> {
    id: ReleaseId,
    pipeline: &'r str,
    env: &'r str,
    workflow: &'r str,
    version: &'r str,
    status: ReleaseStatus,
    previous: Option<ReleaseId>,
    rollback_of: Option<ReleaseId>,
    resumes: Option<ReleaseId>,
    commit: Option<&'r Commit>,
    services: Option<&'r Services>,
    versions: &'r std::collections::BTreeMap<String, String>,
    set_keys: &'r [String],
    digest: Option<&'r str>,
    user: Option<&'r str>,
    started_at: Timestamp,
    finished_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phases: Option<Vec<PhaseJson<'r>>>,
}

/// An instance in `releases show --format json`.
#[derive(Serialize)]
struct PhaseJson<'r> {
    id: &'r str,
    status: PhaseStatus,
    attempts: usize,
    exit_code: Option<i32>,
    reason: Option<String>,
    command: Option<&'r str>,
    started_at: Option<Timestamp>,
    finished_at: Option<Timestamp>,
    log: Option<String>,
    /// Its undo, when the run undoes a failure and it has an `undo`.
    #[serde(skip_serializing_if = "Option::is_none")]
    undo: Option<UndoJson<'r>>,
}

/// An instance's undo in `releases show --format json`.
#[derive(Serialize)]
struct UndoJson<'r> {
    command: &'r str,
    /// `undone`, `failed`, `running`, `not_attempted` or `not_needed`.
    status: &'static str,
    exit_code: Option<i32>,
    reason: Option<String>,
    started_at: Option<Timestamp>,
    finished_at: Option<Timestamp>,
    log: Option<String>,
}

impl<'r> ReleaseJson<'r> {
    fn new(header: &'r ReleaseHeader, status: ReleaseStatus, finished_at: Option<Timestamp>) -> Self {
        Self {
            id: header.id,
            pipeline: &header.pipeline,
            env: &header.env,
            workflow: &header.workflow,
            version: &header.version,
            status,
            previous: header.previous,
            rollback_of: header.rollback_of,
            resumes: header.resumes,
            commit: header.commit.as_ref(),
            services: header.services.as_ref(),
            versions: &header.versions,
            set_keys: &header.set_keys,
            digest: header.digest.as_deref(),
            user: header.user.as_deref(),
            started_at: header.started_at,
            finished_at,
            phases: None,
        }
    }

    /// A release as `releases list` shows it.
    pub(super) fn summary(summary: &'r ReleaseSummary) -> Self {
        Self::new(&summary.header, summary.status, summary.finished_at)
    }

    /// A release and its instances, as `releases show` shows them.
    pub(super) fn release(release: &'r Release, log_dir: &std::path::Path) -> Self {
        let phases = release
            .instances()
            .iter()
            .map(|instance| {
                let attempts = instance.attempts();
                PhaseJson {
                    id: instance.id(),
                    status: instance.status(),
                    attempts: attempts.len(),
                    exit_code: instance.exit_code(),
                    reason: instance.reason().map(ToString::to_string),
                    command: instance.command(),
                    started_at: attempts.first().map(|a| a.started_at),
                    finished_at: attempts.last().and_then(|a| a.finished_at),
                    log: (!attempts.is_empty()).then(|| {
                        log_dir
                            .join(format!("{}.log", log_name(instance.id())))
                            .display()
                            .to_string()
                    }),
                    undo: instance.undo().map(|undo| UndoJson {
                        command: &undo.command,
                        status: undo_state(instance),
                        exit_code: undo.exit_code,
                        reason: undo.reason.as_ref().map(ToString::to_string),
                        started_at: undo.started_at,
                        finished_at: undo.finished_at,
                        log: undo.started_at.map(|_| {
                            log_dir
                                .join(format!("{}.undo.log", log_name(instance.id())))
                                .display()
                                .to_string()
                        }),
                    }),
                }
            })
            .collect();
        Self {
            phases: Some(phases),
            ..Self::new(&release.header, release.status(), release.finished_at)
        }
    }
}

/// What one service's state says in words: `live`, or `failed at V
/// (release), last good U`.
fn state_cell(state: &ServiceState) -> String {
    match &state.failed {
        None => "live".to_owned(),
        Some(FailedAt { version, release }) => match &state.version {
            Some(good) => format!("failed at {version} ({release}), last good {good}"),
            None => format!("failed at {version} ({release}), never deployed"),
        },
    }
}

/// `status --env E`: one row per service.
pub(super) fn status_env_text(env: &str, current: Option<&ReleaseSummary>, live: &Live) -> String {
    let mut out = match current {
        Some(r) => format!(
            "env {env} · current release {} · {} {} · {}\n\n",
            r.id, r.workflow, r.version, r.status
        ),
        None => return format!("env {env} · nothing deployed yet\n"),
    };
    let rows: Vec<[String; 6]> = live
        .services()
        .iter()
        .map(|(service, state)| {
            [
                service.clone(),
                or_dash(state.version.as_deref()),
                or_dash(state.release.map(|r| r.to_string()).as_deref()),
                time_cell(state.at),
                or_dash(state.by.as_deref()),
                state_cell(state),
            ]
        })
        .collect();
    out.push_str(&table(
        ["service", "version", "release", "deployed", "by", "state"],
        &rows,
    ));
    out
}

/// One env's line in `status`: its current release and its services'
/// versions in a few words.
pub(super) fn status_envs_text(envs: &[(String, Option<ReleaseSummary>, Live)]) -> String {
    if envs.is_empty() {
        return "nothing deployed yet\n".to_owned();
    }
    let rows: Vec<[String; 5]> = envs
        .iter()
        .map(|(env, current, live)| {
            let services: Vec<String> = live
                .services()
                .iter()
                .map(|(s, state)| match (&state.failed, &state.version) {
                    (Some(f), Some(good)) => format!("{s} {good} (failed at {})", f.version),
                    (Some(f), None) => format!("{s} - (failed at {})", f.version),
                    (None, version) => format!("{s} {}", version.as_deref().unwrap_or("-")),
                })
                .collect();
            [
                env.clone(),
                or_dash(current.as_ref().map(|r| r.id.to_string()).as_deref()),
                or_dash(current.as_ref().map(|r| r.workflow.clone()).as_deref()),
                or_dash(current.as_ref().map(|r| r.status.to_string()).as_deref()),
                if services.is_empty() {
                    "-".to_owned()
                } else {
                    services.join(", ")
                },
            ]
        })
        .collect();
    table(["env", "current", "workflow", "status", "services"], &rows)
}

/// An env in `status --format json`.
#[derive(Serialize)]
pub(super) struct EnvStatusJson<'a> {
    env: &'a str,
    current: Option<ReleaseJson<'a>>,
    services: Vec<ServiceJson<'a>>,
}

#[derive(Serialize)]
struct ServiceJson<'a> {
    service: &'a str,
    #[serde(flatten)]
    state: &'a ServiceState,
}

impl<'a> EnvStatusJson<'a> {
    pub(super) fn new(env: &'a str, current: Option<&'a ReleaseSummary>, live: &'a Live) -> Self {
        Self {
            env,
            current: current.map(ReleaseJson::summary),
            services: live
                .services()
                .iter()
                .map(|(service, state)| ServiceJson { service, state })
                .collect(),
        }
    }
}

/// What a rollback restores, printed before anything runs: the target,
/// then one line per service.
pub(super) fn restore_text(env: &str, restore: &Restore) -> String {
    let target = &restore.target;
    let mut out = format!(
        "rolling back {env} to {} · version {} · commit {}\n",
        target.id,
        target.version,
        commit_cell(target.commit.as_ref())
    );
    let width = restore
        .changes
        .iter()
        .map(|c| c.service.chars().count())
        .chain(restore.unchanged.iter().map(|s| s.chars().count()))
        .max()
        .unwrap_or(0);
    for Change { service, from, to } in &restore.changes {
        let from = match from {
            None => "(not deployed)".to_owned(),
            Some(ServiceState {
                failed: Some(failed), ..
            }) => format!("{} (failed)", failed.version),
            Some(state) => or_dash(state.version.as_deref()),
        };
        let _ = writeln!(out, "  {service:<width$}  {} -> {}", escape(&from), escape(to));
    }
    for service in &restore.unchanged {
        match restore.targets.get(service) {
            Some(version) => {
                let _ = writeln!(out, "  {service:<width$}  unchanged at {}", escape(version));
            }
            None => {
                let _ = writeln!(out, "  {service:<width$}  unchanged (not deployed at the target)");
            }
        }
    }
    out
}
