//! Planning and execution of workflows.
//!
//! * `plan`: [`plan`] turns a compiled pipeline, an env and a workflow into
//!   a [`Plan`]: the instances in execution order with commands
//!   interpolated and conditions decided. It is what `plan` prints and what
//!   the executor walks. `view`: [`graph_view`] is the same selection for
//!   `stagecraft graph`.
//! * `execute`: [`execute`] walks a plan, one thread watching every running
//!   command, and reports each change as an [`Event`] to a [`Recorder`].
//!   Its parts: `schedule`, the state machine over the plan (readiness,
//!   retries, fail-fast, keep-going; no threads, no processes); `sync`,
//!   what is durable, the sync thread and the claims ahead; `output`, the
//!   [`OutputSink`], grouped output and log files; `summary`, the
//!   [`Summary`] it returns.
//! * `runner`: the [`Runner`] trait, its running [`Child`]ren, [`Job`],
//!   [`Outcome`] and [`Cancel`] with the process groups it kills; `shell`:
//!   the real [`ShellRunner`] (processes started with `posix_spawn`, which
//!   commands need no shell). The test doubles are in [`crate::testing`].
//! * `event`: [`Event`], [`Reason`], [`Recorder`] and [`Syncer`], the seam
//!   to the state layer, which this layer never imports.
//! * `secrets`: [`read_secrets`], a run's [`Secrets`] read before anything
//!   runs; their values reach commands only through their environment, and
//!   are masked in output ([`SecretValues`], [`MASK`]).
//! * `source`: [`Source`], what git says about the pipeline's directory
//!   (commit, dirty) and the default version every planning command uses;
//!   an executing command asks on a thread of its own (`Probe`).

mod event;
mod execute;
mod output;
mod plan;
mod runner;
mod schedule;
mod secrets;
mod shell;
mod source;
mod summary;
mod sync;
mod view;

pub use event::{Event, Process, Reason, RecordError, Recorder, Syncer};
pub use execute::execute;
pub(crate) use output::log_name;
pub use output::{MASK, OutputSink, SecretValues};
pub(crate) use plan::find_env;
pub use plan::{OnFailure, Plan, PlanError, PlanRequest, PlannedInstance, PlannedSecret, SET_BUILTINS, plan};
pub use runner::{Cancel, Child, DEFAULT_GRACE, Job, Outcome, Runner};
pub use schedule::{CarryOver, ExecuteOptions};
pub use secrets::{MissingSecret, Secrets, read_secrets};
pub use shell::ShellRunner;
pub(crate) use shell::procfs;
pub(crate) use source::Probe;
pub use source::{Source, UNKNOWN_VERSION, digest, set_digests};
pub use summary::{InstanceStatus, InstanceSummary, Summary, TAIL_LINES, UndoStatus, UndoSummary};
pub use sync::CLAIM_AHEAD;
pub use view::{GraphView, ViewNode, graph_view};
