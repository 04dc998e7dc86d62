//! Copying a whole history between backends (`stagecraft state copy`):
//! every pipeline's releases, oldest first, as the lines they are stored as
//! (a release's header line and event lines are the same in both), with
//! their status, end and live state; then a check that the copy reads the
//! same as the original.

use std::collections::BTreeMap;

use super::Timestamp;
use super::backend::{Backend, PipelineState};
use super::dir::{PipelineDir, StateDir};
use super::durable::{create_atomic, create_dir};
use super::error::StateError;
use super::format::{IndexLine, LogLine, head_line, line, store_live};
use super::id::ReleaseId;
use super::legacy;
use super::postgres;
use super::query::ReleaseSummary;

/// One release on its way: its summary, header line and event lines (each
/// with its time).
#[derive(Debug)]
pub(crate) struct Copied {
    pub(crate) summary: ReleaseSummary,
    pub(crate) header: String,
    pub(crate) events: Vec<(Timestamp, String)>,
}

/// What was copied: each pipeline and how many releases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    /// Per pipeline (sorted), the number of releases copied.
    pub pipelines: Vec<(String, usize)>,
}

/// Copies every pipeline's history in `from` to `to`, then checks that
/// each reads the same on both sides: the list of every release (what
/// `releases list` shows) and each env's current release and live state
/// (what `status` shows).
///
/// # Errors
///
/// [`StateError::NotEmpty`] if `to` has a history and `replace` is false
/// (with `replace`, the copied pipelines' histories there are replaced);
/// either side cannot be read or written; [`StateError::CopyDiffers`] if
/// the copy does not read the same.
pub fn copy(from: &Backend, to: &Backend, replace: bool) -> Result<Copy, StateError> {
    if !replace {
        let there = to.pipelines()?;
        if !there.is_empty() {
            return Err(StateError::NotEmpty {
                target: to.describe(),
                pipelines: there,
            });
        }
    }
    let mut pipelines = Vec::new();
    for name in from.pipelines()? {
        let source = from.pipeline(&name);
        let releases = export(&source)?;
        match to {
            Backend::File(dir) => import_file(dir, &name, &releases, replace)?,
            Backend::Postgres { db, .. } => postgres::copy::import(db, &name, &releases, replace)?,
        }
        verify(&source, &to.pipeline(&name))?;
        pipelines.push((name, releases.len()));
    }
    Ok(Copy { pipelines })
}

/// Every release of the pipeline, oldest first, with its lines.
fn export(state: &PipelineState) -> Result<Vec<Copied>, StateError> {
    let mut list = state.releases(None, None)?;
    list.reverse();
    list.into_iter()
        .map(|summary| {
            let (header, lines) = match state {
                PipelineState::File(dir) => file_lines(dir, summary.id)?,
                PipelineState::Postgres(pg) => pg.lines(summary.id)?,
            };
            let events = lines
                .into_iter()
                .map(|text| {
                    let at = time_of(&text).ok_or_else(|| StateError::CopyDiffers {
                        pipeline: summary.pipeline.clone(),
                        message: format!("release {} has a line without a time: {text}", summary.id),
                    })?;
                    Ok((at, text))
                })
                .collect::<Result<_, StateError>>()?;
            Ok(Copied {
                summary,
                header,
                events,
            })
        })
        .collect()
}

/// The time of an event line (or of the finish line).
fn time_of(text: &str) -> Option<Timestamp> {
    match ron::from_str::<LogLine>(text).ok()? {
        LogLine::Finished { at } => Some(at),
        entry => entry.to_event().map(|(_, at)| at),
    }
}

/// A release log's header line and its complete event lines (a torn last
/// line is left out, as every reader leaves it out).
fn file_lines(dir: &PipelineDir, id: ReleaseId) -> Result<(String, Vec<String>), StateError> {
    let mut path = dir.log_path(id);
    if !path.exists() {
        path = legacy::log_path(dir.root(), id);
    }
    let text = std::fs::read_to_string(&path).map_err(StateError::io("read", &path))?;
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    let mut lines = complete.split('\n').skip(1).map(str::to_owned);
    let header = lines.next().ok_or_else(|| StateError::Corrupt {
        path: path.clone(),
        line: 2,
        message: "the second line is not the release header".to_owned(),
    })?;
    Ok((header, lines.collect()))
}

/// Writes `releases` of pipeline `name` into the state directory: each
/// log, then each env's index at once.
fn import_file(dir: &StateDir, name: &str, releases: &[Copied], replace: bool) -> Result<(), StateError> {
    let pipeline = dir.pipeline(name);
    if replace {
        for sub in ["releases", "envs"] {
            let path = pipeline.path().join(sub);
            match std::fs::remove_dir_all(&path) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    return Err(StateError::io("remove", path)(error));
                }
                _ => {}
            }
        }
    }
    create_dir(&pipeline.path().join("releases"))?;
    let mut indexes: BTreeMap<&str, String> = BTreeMap::new();
    for copied in releases {
        let summary = &copied.summary;
        let mut log = head_line();
        log.push_str(&copied.header);
        log.push('\n');
        for (_, text) in &copied.events {
            log.push_str(text);
            log.push('\n');
        }
        create_atomic(&pipeline.log_path(summary.id), log.as_bytes())?;
        let index = indexes.entry(summary.env.as_str()).or_insert_with(head_line);
        index.push_str(&line(&IndexLine::started(&summary.header)));
        if let Some(at) = summary.finished_at {
            index.push_str(&line(&IndexLine::Finished {
                id: summary.id,
                at,
                status: summary.status,
                live: summary.live.as_ref().map(store_live),
            }));
        }
    }
    for (env, text) in indexes {
        create_dir(&pipeline.env_dir(env))?;
        create_atomic(&pipeline.index_path(env), text.as_bytes())?;
    }
    Ok(())
}

/// Checks that both sides read the same.
fn verify(source: &PipelineState, copy: &PipelineState) -> Result<(), StateError> {
    let differs = |what: &str| StateError::CopyDiffers {
        pipeline: source.name().to_owned(),
        message: format!("{what} differs between the original and the copy"),
    };
    if source.releases(None, None)? != copy.releases(None, None)? {
        return Err(differs("`releases list`"));
    }
    let envs = source.envs()?;
    if envs != copy.envs()? {
        return Err(differs("the list of envs"));
    }
    for env in &envs {
        if source.current(env)? != copy.current(env)? || source.live(env)? != copy.live(env)? {
            return Err(differs(&format!("`status` of `{env}`")));
        }
    }
    Ok(())
}
