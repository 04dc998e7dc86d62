//! Reading an index from its end: the newest lines first, a block at a
//! time, so what a command needs (the newest releases, the live state, the
//! current release, an unfinished run) costs the same whatever the history
//! holds.
//!
//! [`Backward`] yields an index's complete lines newest first (a torn last
//! line is skipped, as every reader skips it); [`IndexHistory`] pairs each
//! `Started` line with the `Finished` line after it into a
//! [`ReleaseSummary`], newest first. Line numbers, which a reader going
//! backward does not know, are counted only to name a corrupt line.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::error::StateError;
use super::format::{self, IndexLine, check_head};
use super::id::ReleaseId;
use super::query::ReleaseSummary;
use super::release::ReleaseStatus;

/// How much is read at a time.
const BLOCK: u64 = 16 * 1024;

/// An index file read from its end.
#[derive(Debug)]
pub(crate) struct Backward {
    file: File,
    path: PathBuf,
    /// Where the lines after the format line start.
    body: u64,
    /// `data` holds the file's bytes from `lo`: whole lines not yet yielded
    /// (it ends with `\n`, or is empty).
    lo: u64,
    data: Vec<u8>,
    /// The length of the complete lines, when a torn line follows them.
    pub(crate) torn: Option<u64>,
}

impl Backward {
    /// Opens `path` and checks its format line; `None` if it does not exist.
    pub(crate) fn open(path: &Path) -> Result<Option<Self>, StateError> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(StateError::io("read", path)(error)),
        };
        let len = file.metadata().map_err(StateError::io("read", path))?.len();
        let mut head = vec![0; usize::try_from(len.min(64)).unwrap_or(64)];
        file.read_exact_at(&mut head, 0).map_err(StateError::io("read", path))?;
        let Some(newline) = head.iter().position(|&b| b == b'\n') else {
            return Err(StateError::Corrupt {
                path: path.to_owned(),
                line: 1,
                message: "no format line (expected `Format(version: N)`)".to_owned(),
            });
        };
        check_head(path, &head[..newline])?;
        let body = newline as u64 + 1;
        let mut reader = Self {
            file,
            path: path.to_owned(),
            body,
            lo: len,
            data: Vec::new(),
            torn: None,
        };
        // Drop a torn tail: everything after the last `\n`.
        while reader.lo > body && !reader.data.contains(&b'\n') {
            reader.load()?;
        }
        let complete = reader.data.iter().rposition(|&b| b == b'\n').map_or(0, |end| end + 1);
        reader.data.truncate(complete);
        let end = reader.lo + complete as u64;
        reader.torn = (end < len).then_some(end.max(body));
        Ok(Some(reader))
    }

    /// Reads the block before `lo`.
    fn load(&mut self) -> Result<(), StateError> {
        let start = self.lo.saturating_sub(BLOCK).max(self.body);
        let mut block = vec![0; usize::try_from(self.lo - start).unwrap_or(0)];
        self.file
            .read_exact_at(&mut block, start)
            .map_err(StateError::io("read", &self.path))?;
        block.extend_from_slice(&self.data);
        self.data = block;
        self.lo = start;
        Ok(())
    }

    /// The next line going backward (its offset and bytes, without `\n`).
    pub(crate) fn next_raw(&mut self) -> Result<Option<(u64, Vec<u8>)>, StateError> {
        loop {
            let n = self.data.len();
            if n == 0 {
                if self.lo <= self.body {
                    return Ok(None);
                }
                self.load()?;
                continue;
            }
            if let Some(i) = self.data[..n - 1].iter().rposition(|&b| b == b'\n') {
                let line = self.data[i + 1..n - 1].to_vec();
                self.data.truncate(i + 1);
                return Ok(Some((self.lo + i as u64 + 1, line)));
            }
            if self.lo > self.body {
                self.load()?;
                continue;
            }
            let line = self.data[..n - 1].to_vec();
            self.data.clear();
            return Ok(Some((self.lo, line)));
        }
    }

    /// The next index line going backward, with its offset.
    pub(crate) fn next_line(&mut self) -> Result<Option<(u64, IndexLine)>, StateError> {
        let Some((offset, raw)) = self.next_raw()? else {
            return Ok(None);
        };
        match format::parse_line(&self.path, 0, &raw) {
            Ok(line) => Ok(Some((offset, line))),
            Err(StateError::Corrupt { message, .. }) => Err(self.corrupt(offset, message)),
            Err(error) => Err(error),
        }
    }

    /// A corruption error naming the line at `offset` (counted now).
    pub(crate) fn corrupt(&self, offset: u64, message: String) -> StateError {
        StateError::Corrupt {
            path: self.path.clone(),
            line: line_number(&self.path, offset),
            message,
        }
    }
}

/// The (1-based) number of the line starting at `offset` in `path`.
#[allow(clippy::naive_bytecount)] // only to report an error
fn line_number(path: &Path, offset: u64) -> usize {
    let bytes = std::fs::read(path).unwrap_or_default();
    let end = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
    bytes[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// One env's releases from its index, newest first. A release with no
/// `Finished` line is yielded as `running` with no finish time (the reader
/// decides what it is).
#[derive(Debug)]
pub(crate) struct IndexHistory {
    lines: Option<Backward>,
    /// The `Finished` line seen after the next `Started` line, if any.
    finished: Option<(u64, IndexLine)>,
    /// The id of the last `Started` line yielded.
    newer: Option<ReleaseId>,
}

impl IndexHistory {
    /// The history of the index at `path` (empty if it does not exist).
    pub(crate) fn open(path: &Path) -> Result<Self, StateError> {
        Ok(Self {
            lines: Backward::open(path)?,
            finished: None,
            newer: None,
        })
    }

    fn next_summary(&mut self) -> Result<Option<ReleaseSummary>, StateError> {
        let Some(lines) = self.lines.as_mut() else {
            return Ok(None);
        };
        while let Some((offset, line)) = lines.next_line()? {
            match line {
                IndexLine::Reserved { .. } => {}
                IndexLine::Finished { id, .. } => {
                    if let Some((earlier, _)) = self.finished.replace((offset, line)) {
                        return Err(lines.corrupt(earlier, format!("release {id} finishes twice, or out of order")));
                    }
                }
                started @ IndexLine::Started { .. } => {
                    let Some(header) = started.into_header() else { continue };
                    if self.newer.is_some_and(|newer| newer <= header.id) {
                        let id = header.id;
                        return Err(lines.corrupt(offset, format!("release {id} is not older than the one after it")));
                    }
                    self.newer = Some(header.id);
                    let mut summary = ReleaseSummary {
                        header,
                        finished_at: None,
                        status: ReleaseStatus::Running,
                        live: None,
                    };
                    if let Some((at_offset, finished)) = self.finished.take() {
                        let IndexLine::Finished { id, at, status, live } = finished else {
                            unreachable!("only `Finished` lines are kept")
                        };
                        if id != summary.id {
                            return Err(lines.corrupt(at_offset, format!("release {id} finishes but never started")));
                        }
                        summary.finished_at = Some(at);
                        summary.status = status;
                        summary.live = live.map(format::read_live);
                    }
                    return Ok(Some(summary));
                }
            }
        }
        if let Some((offset, IndexLine::Finished { id, .. })) = self.finished.take() {
            return Err(lines.corrupt(offset, format!("release {id} finishes but never started")));
        }
        Ok(None)
    }
}

impl Iterator for IndexHistory {
    type Item = Result<ReleaseSummary, StateError>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.next_summary();
        if next.is_err() {
            // Nothing after an error.
            self.lines = None;
        }
        next.transpose()
    }
}

/// What the newest lines of an env's index say about its last run, for a
/// writer opening it: read back to the newest `Finished` line.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    /// The newest id the index names (started, or reserved).
    pub(crate) newest: Option<ReleaseId>,
    /// A release started and never finished (its run died), newest line
    /// first: at most one.
    pub(crate) unfinished: Option<ReleaseId>,
    /// Ids reserved after the newest `Started` or `Finished` line (a run
    /// that died before it wrote its `Started` line), oldest first.
    pub(crate) reserved: Vec<ReleaseId>,
    /// See [`Backward::torn`].
    pub(crate) torn: Option<u64>,
}

/// Reads the tail of the index at `path`.
pub(crate) fn tail(path: &Path) -> Result<Tail, StateError> {
    let mut tail = Tail::default();
    let Some(mut lines) = Backward::open(path)? else {
        return Ok(tail);
    };
    tail.torn = lines.torn;
    let mut started_seen = false;
    while let Some((_, line)) = lines.next_line()? {
        match line {
            IndexLine::Reserved { id } => {
                tail.newest = tail.newest.max(Some(id));
                if !started_seen {
                    tail.reserved.insert(0, id);
                }
            }
            IndexLine::Started { id, .. } => {
                if started_seen {
                    break;
                }
                tail.newest = tail.newest.max(Some(id));
                tail.unfinished = Some(id);
                started_seen = true;
            }
            IndexLine::Finished { id, .. } => {
                tail.newest = tail.newest.max(Some(id));
                break;
            }
        }
    }
    Ok(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_lines(text: &str) -> (Vec<String>, Option<u64>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.ron");
        std::fs::write(&path, text).unwrap();
        let mut reader = Backward::open(&path).unwrap().unwrap();
        let mut lines = Vec::new();
        while let Some((offset, line)) = reader.next_raw().unwrap() {
            let line = String::from_utf8(line).unwrap();
            assert_eq!(&text[usize::try_from(offset).unwrap()..][..line.len()], line);
            lines.push(line);
        }
        (lines, reader.torn)
    }

    #[test]
    fn lines_come_newest_first_across_blocks_and_a_torn_tail_is_skipped() {
        // Lines shorter and longer than a block, so some span two or three.
        let lines: Vec<String> = (0..40).map(|n| "x".repeat((n * 997) % 40_000 + n)).collect();
        let head = "Format(version: 3)\n";
        let body: String = lines.iter().flat_map(|l| [l.as_str(), "\n"]).collect();
        let mut newest_first = lines.clone();
        newest_first.reverse();
        assert_eq!(raw_lines(&format!("{head}{body}")), (newest_first.clone(), None));
        let complete = (head.len() + body.len()) as u64;
        assert_eq!(
            raw_lines(&format!("{head}{body}Finished(id: \"rel-2")),
            (newest_first, Some(complete))
        );
        assert_eq!(raw_lines(head), (vec![], None));
        assert_eq!(raw_lines(&format!("{head}torn")), (vec![], Some(head.len() as u64)));
    }

    #[test]
    fn a_corrupt_line_is_named_by_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.ron");
        std::fs::write(
            &path,
            "Format(version: 3)\nReserved(id: \"rel-20261125-170229123\")\nnonsense\n",
        )
        .unwrap();
        let mut reader = Backward::open(&path).unwrap().unwrap();
        let error = reader.next_line().unwrap_err();
        assert!(matches!(error, StateError::Corrupt { line: 3, .. }), "{error}");
        std::fs::write(&path, "Format(version: 9)\n").unwrap();
        assert!(matches!(
            Backward::open(&path),
            Err(StateError::UnsupportedFormat { version: 9, .. })
        ));
    }
}
