//! The stored form of a release header and of an env's live state: the
//! only place a [`ReleaseHeader`]'s fields are listed one by one besides
//! the type itself, for the two lines that hold one (a log's
//! [`LogLine::Release`] and an index's [`IndexLine::Started`]), and the
//! services of an index's `Finished` line.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{IndexLine, LogLine};
use crate::state::clock::Timestamp;
use crate::state::id::ReleaseId;
use crate::state::live::{FailedAt, Live, ServiceState, Services};
use crate::state::release::{Commit, ReleaseHeader};

/// The fields format version 3 added to a release header, as stored in
/// both lines that hold a header (all absent from older files: they read
/// as unknown).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct StoredExtra {
    commit: Option<StoredCommit>,
    services: Option<StoredServices>,
    versions: BTreeMap<String, String>,
    set_keys: Vec<String>,
    digest: Option<String>,
    user: Option<String>,
    /// Version 5 on.
    resumes: Option<ReleaseId>,
    set_digests: BTreeMap<String, String>,
}

/// [`Commit`] as stored: `Commit(sha: "…", dirty: false)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Commit")]
pub(crate) struct StoredCommit {
    sha: String,
    dirty: bool,
}

/// [`Services`] as stored: `Services(names: ["api"], all: false)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Services")]
pub(crate) struct StoredServices {
    names: Vec<String>,
    all: bool,
}

/// One service of a [`Live`] as stored in the index's `Finished` line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Service")]
pub(crate) struct StoredService {
    name: String,
    version: Option<String>,
    release: Option<ReleaseId>,
    at: Option<Timestamp>,
    by: Option<String>,
    failed: Option<StoredFailed>,
}

/// [`FailedAt`] as stored: `Failed(version: "v2", release: "rel-…")`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Failed")]
pub(crate) struct StoredFailed {
    version: String,
    release: ReleaseId,
}

impl StoredExtra {
    fn of(header: &ReleaseHeader) -> Self {
        Self {
            commit: header.commit.as_ref().map(|c| StoredCommit {
                sha: c.sha.clone(),
                dirty: c.dirty,
            }),
            services: header.services.as_ref().map(|s| StoredServices {
                names: s.names.clone(),
                all: s.all,
            }),
            versions: header.versions.clone(),
            set_keys: header.set_keys.clone(),
            digest: header.digest.clone(),
            user: header.user.clone(),
            resumes: header.resumes,
            set_digests: header.set_digests.clone(),
        }
    }

    /// A header from the fields every version stores and these.
    fn header(self, base: BaseHeader) -> ReleaseHeader {
        let BaseHeader {
            id,
            pipeline,
            workflow,
            env,
            version,
            previous,
            rollback_of,
            started_at,
        } = base;
        ReleaseHeader {
            id,
            pipeline,
            workflow,
            env,
            version,
            previous,
            rollback_of,
            started_at,
            commit: self.commit.map(|c| Commit {
                sha: c.sha,
                dirty: c.dirty,
            }),
            services: self.services.map(|s| Services {
                names: s.names,
                all: s.all,
            }),
            versions: self.versions,
            set_keys: self.set_keys,
            digest: self.digest,
            user: self.user,
            resumes: self.resumes,
            set_digests: self.set_digests,
        }
    }
}

/// The header fields every format version stores.
struct BaseHeader {
    id: ReleaseId,
    pipeline: String,
    workflow: String,
    env: String,
    version: String,
    previous: Option<ReleaseId>,
    rollback_of: Option<ReleaseId>,
    started_at: Timestamp,
}

/// A [`Live`] as stored.
pub(crate) fn store_live(live: &Live) -> Vec<StoredService> {
    live.services()
        .iter()
        .map(|(name, state)| StoredService {
            name: name.clone(),
            version: state.version.clone(),
            release: state.release,
            at: state.at,
            by: state.by.clone(),
            failed: state.failed.as_ref().map(|f| StoredFailed {
                version: f.version.clone(),
                release: f.release,
            }),
        })
        .collect()
}

/// A stored [`Live`] read back.
pub(crate) fn read_live(stored: Vec<StoredService>) -> Live {
    Live::from_services(stored.into_iter().map(|s| {
        let state = ServiceState {
            version: s.version,
            release: s.release,
            at: s.at,
            by: s.by,
            failed: s.failed.map(|f| FailedAt {
                version: f.version,
                release: f.release,
            }),
        };
        (s.name, state)
    }))
}

/// A log's header line, read: the release header, the instances, their
/// commands, the positions of `finally` instances, the `undo` commands
/// and the boot.
pub(crate) type StoredRelease = (
    ReleaseHeader,
    Vec<String>,
    Vec<Option<String>>,
    Vec<usize>,
    Vec<Option<String>>,
    Option<String>,
);

/// The stored form of a [`ReleaseHeader`]: the only place its fields are
/// listed one by one besides the type itself, in the two lines that hold it
/// (a log's [`LogLine::Release`] and the index's [`IndexLine::Started`]).
impl LogLine {
    /// A log's header line.
    pub(crate) fn release(
        header: &ReleaseHeader,
        instances: Vec<String>,
        commands: Vec<Option<String>>,
        finally: Vec<usize>,
        undo: Vec<Option<String>>,
        boot: Option<String>,
    ) -> Self {
        let h = header.clone();
        let StoredExtra {
            commit,
            services,
            versions,
            set_keys,
            digest,
            user,
            resumes,
            set_digests,
        } = StoredExtra::of(header);
        Self::Release {
            id: h.id,
            pipeline: h.pipeline,
            workflow: h.workflow,
            env: h.env,
            version: h.version,
            previous: h.previous,
            rollback_of: h.rollback_of,
            started_at: h.started_at,
            instances,
            commands,
            finally,
            undo,
            boot,
            commit,
            services,
            versions,
            set_keys,
            digest,
            user,
            resumes,
            set_digests,
        }
    }

    /// A header line's release header, instances and boot; `None` for any
    /// other line.
    pub(crate) fn into_release(self) -> Option<StoredRelease> {
        let Self::Release {
            id,
            pipeline,
            workflow,
            env,
            version,
            previous,
            rollback_of,
            started_at,
            instances,
            commands,
            finally,
            undo,
            boot,
            commit,
            services,
            versions,
            set_keys,
            digest,
            user,
            resumes,
            set_digests,
        } = self
        else {
            return None;
        };
        let base = BaseHeader {
            id,
            pipeline,
            workflow,
            env,
            version,
            previous,
            rollback_of,
            started_at,
        };
        let extra = StoredExtra {
            commit,
            services,
            versions,
            set_keys,
            digest,
            user,
            resumes,
            set_digests,
        };
        Some((extra.header(base), instances, commands, finally, undo, boot))
    }
}

impl IndexLine {
    /// The index line saying a release started.
    pub(crate) fn started(header: &ReleaseHeader) -> Self {
        let h = header.clone();
        let StoredExtra {
            commit,
            services,
            versions,
            set_keys,
            digest,
            user,
            resumes,
            set_digests,
        } = StoredExtra::of(header);
        Self::Started {
            id: h.id,
            pipeline: h.pipeline,
            workflow: h.workflow,
            env: h.env,
            version: h.version,
            previous: h.previous,
            rollback_of: h.rollback_of,
            at: h.started_at,
            commit,
            services,
            versions,
            set_keys,
            digest,
            user,
            resumes,
            set_digests,
        }
    }

    /// A `Started` line's release header; `None` for any other line.
    pub(crate) fn into_header(self) -> Option<ReleaseHeader> {
        let Self::Started {
            id,
            pipeline,
            workflow,
            env,
            version,
            previous,
            rollback_of,
            at,
            commit,
            services,
            versions,
            set_keys,
            digest,
            user,
            resumes,
            set_digests,
        } = self
        else {
            return None;
        };
        let base = BaseHeader {
            id,
            pipeline,
            workflow,
            env,
            version,
            previous,
            rollback_of,
            started_at: at,
        };
        let extra = StoredExtra {
            commit,
            services,
            versions,
            set_keys,
            digest,
            user,
            resumes,
            set_digests,
        };
        Some(extra.header(base))
    }
}
