//! State directories of format version 2 and older (one index, one
//! `releases/` and one lock for the whole directory), read as the history
//! of the pipelines they name.
//!
//! Their releases are read-only: nothing is ever written to them again (a
//! new release goes to the per-pipeline layout), and they are older than
//! every release written since (new ids are allocated after their newest).
//! Their missing fields read as unknown; what was live after each of them
//! is computed by replaying their deploy and rollback releases (reading
//! each one's log once, since the instances say which services it ran).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::backward;
use super::error::StateError;
use super::format::{self, IndexLine};
use super::id::ReleaseId;
use super::journal::read_log;
use super::live::{Live, advance};
use super::query::ReleaseSummary;
use super::release::ReleaseStatus;

/// The legacy index's name, at the root of the state directory.
const INDEX_FILE: &str = "index.ron";
/// The legacy directory of release logs.
const RELEASES_DIR: &str = "releases";
/// The legacy directory of the executor's output.
const LOGS_DIR: &str = "logs";

/// The legacy index of the state directory `root`.
pub(crate) fn index_path(root: &Path) -> PathBuf {
    root.join(INDEX_FILE)
}

/// The legacy log of release `id`.
pub(crate) fn log_path(root: &Path, id: ReleaseId) -> PathBuf {
    root.join(RELEASES_DIR).join(format!("{id}.ron"))
}

/// The legacy output directory of release `id`.
pub(crate) fn output_dir(root: &Path, id: ReleaseId) -> PathBuf {
    root.join(LOGS_DIR).join(id.to_string())
}

/// The newest id of the legacy index, if there is one.
pub(crate) fn newest(root: &Path) -> Result<Option<ReleaseId>, StateError> {
    Ok(backward::tail(&index_path(root))?.newest)
}

/// Every release of `pipeline` in the legacy index, oldest first, as the
/// index knows them (no live state; an unfinished one `running`).
pub(crate) fn summaries(root: &Path, pipeline: &str) -> Result<Vec<ReleaseSummary>, StateError> {
    let mut summaries = all_summaries(root)?;
    summaries.retain(|s| s.pipeline == pipeline);
    Ok(summaries)
}

/// The pipelines the legacy index has releases of, sorted.
pub(crate) fn pipelines(root: &Path) -> Result<BTreeSet<String>, StateError> {
    Ok(all_summaries(root)?.into_iter().map(|s| s.header.pipeline).collect())
}

/// Every release in the legacy index, oldest first.
fn all_summaries(root: &Path) -> Result<Vec<ReleaseSummary>, StateError> {
    let path = index_path(root);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let lines: format::Lines<IndexLine> = format::read(&path)?;
    let mut summaries: Vec<ReleaseSummary> = Vec::new();
    for (number, entry) in lines.lines {
        let corrupt = |message: String| StateError::Corrupt {
            path: path.clone(),
            line: number,
            message,
        };
        match entry {
            IndexLine::Reserved { .. } => {}
            started @ IndexLine::Started { .. } => {
                let Some(header) = started.into_header() else { continue };
                if summaries.last().is_some_and(|last| last.id >= header.id) {
                    let id = header.id;
                    return Err(corrupt(format!("release {id} is not newer than the one before it")));
                }
                summaries.push(ReleaseSummary {
                    header,
                    finished_at: None,
                    status: ReleaseStatus::Running,
                    live: None,
                });
            }
            IndexLine::Finished { id, at, status, .. } => {
                let position = summaries
                    .binary_search_by_key(&id, |s| s.id)
                    .map_err(|_| corrupt(format!("release {id} finishes but never started")))?;
                let summary = &mut summaries[position];
                if summary.finished_at.is_some() {
                    return Err(corrupt(format!("release {id} finishes twice")));
                }
                summary.finished_at = Some(at);
                summary.status = status;
            }
        }
    }
    Ok(summaries)
}

/// The envs `pipeline`'s legacy releases ran in.
pub(crate) fn envs(root: &Path, pipeline: &str) -> Result<Vec<String>, StateError> {
    Ok(summaries(root, pipeline)?.into_iter().map(|s| s.header.env).collect())
}

/// `env`'s legacy releases of `pipeline`, newest first, each finished
/// deploy or rollback with the live state right after it, each unfinished
/// one with the status its log shows.
pub(crate) fn history(root: &Path, pipeline: &str, env: &str) -> Result<Vec<ReleaseSummary>, StateError> {
    let mut releases = summaries(root, pipeline)?;
    releases.retain(|s| s.env == env);
    let mut live = Live::default();
    for summary in &mut releases {
        let finished = summary.finished_at.is_some();
        if finished && !summary.is_deployment() {
            continue;
        }
        let release = read_log(&log_path(root, summary.id))?.release;
        if finished {
            live = advance(&live, &release);
            summary.live = Some(live.clone());
        } else {
            summary.status = release.status();
        }
    }
    releases.reverse();
    Ok(releases)
}
