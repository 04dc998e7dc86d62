//! Durable state of runs: typed statuses and transitions, releases, their
//! storage in the state directory (`.stagecraft/`), the lock, recovery and
//! the questions asked of the history.
//!
//! * [`status`](PhaseStatus): the five statuses and [`transition`], the
//!   only way one changes.
//! * [`Clock`] and [`Timestamp`]: where every time comes from.
//! * [`ReleaseHeader`] (a release's fields, declared once), [`Release`],
//!   [`ReleaseId`], [`InstanceRecord`]: the record of a run, built by
//!   applying [`engine::Event`](crate::engine::Event)s.
//! * [`Store`] (one env of one pipeline, locked, for writing),
//!   [`StateDir`] and [`PipelineDir`] (for reading, without a lock) and
//!   [`Journal`] (an open release log, the executor's
//!   [`Recorder`](crate::engine::Recorder)).
//! * [`Live`]: what is live in an env, after each release ([`advance`]).
//! * [`Lock`] and [`Holder`]; [`Recovered`] for runs that died.
//! * [`restore`] (what a rollback restores, per service) and [`current`]:
//!   pure functions over the history; [`resumable`] (whether a failed
//!   release may be resumed, and what is carried over from it).
//! * [`Backend`] (opened from a [`StateUrl`]), [`PipelineState`],
//!   [`EnvStore`] and [`Recording`]: the one interface over both backends,
//!   the state directory and [`postgres`] (a team's shared state: schema
//!   and migrations, per-env advisory locks, releases as rows).
//!
//! `spec/state.md` documents the directory, the formats and the rules.

mod backend;
mod backward;
mod boot;
mod clock;
mod copy;
mod dir;
mod durable;
mod error;
mod format;
mod id;
mod instance;
mod journal;
mod legacy;
mod live;
mod lock;
mod orphans;
pub mod postgres;
mod query;
mod recovery;
mod release;
mod resume;
mod rollback;
mod status;
mod store;

pub use backend::{Backend, EnvHistory, EnvStore, Opening, PipelineState, Recording, StateUrl};
pub use clock::{Clock, ClockError, Timestamp};
pub use copy::{Copy, copy};
pub use dir::{History, PipelineDir, StateDir};
pub use error::{Damage, StateError};
pub use id::{InvalidReleaseId, ReleaseId};
pub use instance::{Attempt, InstanceRecord, Transition, Undo};
pub use journal::Journal;
pub use live::{FailedAt, Live, ServiceState, Services, advance, covered, service_of, version_for};
pub use lock::{Holder, Lock, Wait, user_at_host};
pub use orphans::Stopped;
pub use query::{ReleaseSummary, RollbackError, RollbackTarget, current};
pub use recovery::Recovered;
pub use release::{Commit, EventError, Release, ReleaseHeader, ReleaseMeta, ReleaseStatus};
pub use resume::{Difference, Resume, ResumeError, ResumeRequest, resumable, resume_target};
pub use rollback::{Change, Restore, Scope, restore};
pub use status::{IllegalTransition, PhaseStatus, transition};
pub use store::{Reap, Store};
