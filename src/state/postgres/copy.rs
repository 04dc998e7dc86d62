//! Writing a whole copied history into the PostgreSQL state (`state copy`).

use super::journal::{EventRow, insert_events};
use super::store::{ReleaseRow, insert_row};
use super::{Shared, failure, lock};
use crate::state::StateError;
use crate::state::copy::Copied;
use crate::state::format::{line, store_live};

/// Writes `releases` (oldest first) of `pipeline` in one transaction: their
/// rows, header and event lines as they were, and each env index's live
/// state. With `replace`, the pipeline's history there is deleted first.
pub(crate) fn import(db: &Shared, pipeline: &str, releases: &[Copied], replace: bool) -> Result<(), StateError> {
    let mut db = lock(db);
    let target = db.target().to_owned();
    let fail = || failure(&target, "copy a history into");
    let mut transaction = db.client.transaction().map_err(fail())?;
    if replace {
        transaction
            .execute("DELETE FROM stagecraft_releases WHERE pipeline = $1", &[&pipeline])
            .map_err(fail())?;
    }
    for copied in releases {
        let summary = &copied.summary;
        let row = ReleaseRow {
            header: &summary.header,
            status: summary.status,
            finished_at: summary.finished_at,
            line: &copied.header,
            live: summary
                .live
                .as_ref()
                .map(|live| line(&store_live(live)).trim_end().to_owned()),
        };
        if !insert_row(&mut transaction, &row).map_err(fail())? {
            return Err(StateError::IdTaken { id: summary.id });
        }
        let events: Vec<EventRow> = (1..)
            .zip(&copied.events)
            .map(|(seq, (at, text))| EventRow::raw(seq, *at, text))
            .collect();
        insert_events(&mut transaction, pipeline, &summary.id.to_string(), &events).map_err(fail())?;
    }
    transaction.commit().map_err(fail())
}
