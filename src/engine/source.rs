//! Where the code being released comes from: [`Source::probe`] asks git
//! about the pipeline file's directory, and [`Source::version`] is the
//! default `{{version}}` of every command that plans (`plan`, `build`,
//! `deploy`, `run`), so that they agree.
//!
//! * `commit`: `git rev-parse HEAD`, the full id; `short`: the same with
//!   `--short` (git's abbreviation, 7 characters or more). Both come from
//!   one `git rev-parse HEAD --short HEAD`.
//! * `dirty`: `git status --porcelain --untracked-files=no` printed
//!   something, that is, a tracked file differs from `HEAD` (staged or
//!   not). Untracked files do not count, as for `git describe --dirty`: the
//!   state directory `.stagecraft/` beside the pipeline file is untracked
//!   in most repositories, and would otherwise make every release after
//!   the first one dirty.
//! * The default version is `short`, with `-dirty` appended when `dirty`
//!   (`3f2c1ab-dirty`), or `unknown` when there is no commit (not a
//!   repository, a repository without commits, or no `git`).
//!
//! [`digest`] is the pipeline file's SHA-256, which a release records
//! (and, per key, each `--set` value's: [`set_digests`]).
//!
//! git runs with stdin from `/dev/null` and stderr discarded; any failure
//! is "no commit", never an error.
//!
//! [`Source::start`] asks git on a thread of its own and [`Probe::get`]
//! takes the answer, so that an executing command opens its state (and
//! recovers it) while git looks at the work tree, which takes long in a
//! large repository. A probe dropped unanswered waits for git, so that no
//! git outlives the command.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::{self, JoinHandle};

/// What git says about the directory a pipeline file is in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Source {
    /// `git rev-parse HEAD`: the full commit id, if there is one.
    pub commit: Option<String>,
    /// `git rev-parse --short HEAD`: the abbreviated commit id.
    pub short: Option<String>,
    /// A tracked file has changes that are not committed.
    pub dirty: bool,
}

/// The version when there is no commit to name.
pub const UNKNOWN_VERSION: &str = "unknown";

impl Source {
    /// Asks git about `dir` (the current directory when `dir` is empty):
    /// two processes, `git rev-parse` and `git status`.
    #[must_use]
    pub fn probe(dir: &Path) -> Self {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let ids = git(dir, &["rev-parse", "HEAD", "--short", "HEAD"]).unwrap_or_default();
        let mut ids = ids.lines().map(str::trim).filter(|line| !line.is_empty());
        let (commit, short) = match (ids.next(), ids.next()) {
            (Some(commit), Some(short)) => (Some(commit.to_owned()), Some(short.to_owned())),
            _ => (None, None),
        };
        let dirty = commit.is_some()
            && git(dir, &["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|status| !status.trim().is_empty());
        Self { commit, short, dirty }
    }

    /// Starts [`probe`](Self::probe) of `dir` on a thread of its own (or
    /// runs it at once, if no thread can start).
    #[must_use]
    pub(crate) fn start(dir: &Path) -> Probe {
        let owned: PathBuf = dir.to_owned();
        match thread::Builder::new()
            .name("stagecraft-git".to_owned())
            .spawn(move || Self::probe(&owned))
        {
            Ok(thread) => Probe {
                thread: Some(thread),
                source: Self::default(),
            },
            Err(_) => Probe {
                thread: None,
                source: Self::probe(dir),
            },
        }
    }

    /// The default version: the short commit id, `-dirty` appended when
    /// the work tree has changes; `unknown` without a commit.
    #[must_use]
    pub fn version(&self) -> String {
        match &self.short {
            Some(short) if self.dirty => format!("{short}-dirty"),
            Some(short) => short.clone(),
            None => UNKNOWN_VERSION.to_owned(),
        }
    }
}

/// A [`Source::probe`] under way ([`Source::start`]), or its answer.
#[derive(Debug)]
pub(crate) struct Probe {
    /// The thread asking git, until [`get`](Self::get) joins it.
    thread: Option<JoinHandle<Source>>,
    /// What git said, once joined.
    source: Source,
}

impl Probe {
    /// What git says, waiting for it the first time.
    ///
    /// # Panics
    ///
    /// Only if the probe itself panicked (a bug), with that panic.
    pub(crate) fn get(&mut self) -> &Source {
        if let Some(thread) = self.thread.take() {
            self.source = thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        }
        &self.source
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            // Only its end matters here; a panic in it was a bug with its
            // own message.
            let _ = thread.join();
        }
    }
}

/// The digest of a pipeline file's text, as a release records it:
/// `sha256:` and 64 lowercase hex digits.
#[must_use]
pub fn digest(text: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    let hash = Sha256::digest(text);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in hash {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// The digests of `--set` values, by key, as a release records them (never
/// the values): each value's [`digest`], so that `resume` can tell whether
/// a value changed without the history holding it.
#[must_use]
pub fn set_digests<'a>(set: impl IntoIterator<Item = (&'a String, &'a String)>) -> BTreeMap<String, String> {
    set.into_iter()
        .map(|(key, value)| (key.clone(), digest(value.as_bytes())))
        .collect()
}

/// `git ARGS` run in `dir`: its stdout when it exits 0.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if output.status.success() {
        String::from_utf8(output.stdout).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn digests_are_sha256_in_hex() {
        assert_eq!(
            super::digest(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    use super::*;

    #[test]
    fn a_probe_started_on_a_thread_says_what_a_probe_says() {
        // Outside a repository, and in this one (a commit, when built from
        // a clone).
        for dir in [std::env::temp_dir(), Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()] {
            let mut started = Source::start(&dir);
            let probed = Source::probe(&dir);
            assert_eq!(started.get(), &probed);
            // A second look takes the same answer.
            assert_eq!(started.get(), &probed);
        }
    }

    #[test]
    fn the_version_is_the_short_commit_dirty_or_unknown() {
        let clean = Source {
            commit: Some("3f2c1ab0".to_owned()),
            short: Some("3f2c1ab".to_owned()),
            dirty: false,
        };
        assert_eq!(clean.version(), "3f2c1ab");
        let dirty = Source { dirty: true, ..clean };
        assert_eq!(dirty.version(), "3f2c1ab-dirty");
        assert_eq!(Source::default().version(), "unknown");
    }
}
