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
//! * [`Store`] (locked, for writing), [`StateDir`] (for reading) and
//!   [`Journal`] (an open release log, the executor's
//!   [`Recorder`](crate::engine::Recorder)).
//! * [`Lock`] and [`Holder`]; [`Recovered`] for runs that died.
//! * [`rollback_target`], [`current`]: pure functions over the history.
//!
//! `spec/state.md` documents the directory, the formats and the rules.

mod boot;
mod clock;
mod durable;
mod error;
mod format;
mod id;
mod instance;
mod journal;
mod lock;
mod query;
mod recovery;
mod release;
mod status;
mod store;

pub use clock::{Clock, ClockError, Timestamp};
pub use error::StateError;
pub use id::{InvalidReleaseId, ReleaseId};
pub use instance::{Attempt, InstanceRecord, Transition};
pub use journal::Journal;
pub use lock::{Holder, Lock, Wait};
pub use query::{ReleaseSummary, RollbackError, RollbackTarget, current, rollback_target};
pub use recovery::Recovered;
pub use release::{EventError, Release, ReleaseHeader, ReleaseStatus};
pub use status::{IllegalTransition, PhaseStatus, transition};
pub use store::{StateDir, Store};
