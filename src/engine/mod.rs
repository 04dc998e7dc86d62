//! Planning and execution of workflows.
//!
//! * `plan`: [`plan`] turns a compiled pipeline, an env and a workflow into
//!   a [`Plan`]: the instances in execution order with commands
//!   interpolated and conditions decided. It is what `plan` prints and what
//!   the executor walks. `view`: [`graph_view`] is the same selection for
//!   `stagecraft graph`.
//! * `execute`: [`execute`] walks a plan, one thread watching every running
//!   command, and reports each change as an [`Event`] to a [`Recorder`].
//!   `sync`: which of those are durable, and the thread that syncs.
//! * `runner`: the [`Runner`] trait and its running [`Child`]ren, the real
//!   [`ShellRunner`] (processes started by `spawn`, with `posix_spawn`) and
//!   [`Cancel`]; `scripted`: the [`ScriptedRunner`] for tests.
//! * `event`: [`Event`], [`Reason`], [`Recorder`] and [`Syncer`], the seam
//!   to the state layer, which this layer never imports.

mod event;
mod execute;
mod output;
mod plan;
mod runner;
mod schedule;
mod scripted;
mod shell;
mod summary;
mod sync;
mod view;

pub use event::{Event, MemoryRecorder, Reason, RecordError, Recorder, Syncer};
pub use execute::execute;
pub use output::{MemorySink, OutputSink};
pub use plan::{Plan, PlanError, PlanRequest, PlannedInstance, plan};
pub use runner::{Cancel, Child, Job, Outcome, ProcessGroup, Runner};
pub use schedule::ExecuteOptions;
pub use scripted::{Call, ScriptedRunner};
pub use shell::ShellRunner;
pub use summary::{InstanceStatus, InstanceSummary, Summary, TAIL_LINES};
pub use sync::{CLAIM_AHEAD, CLAIM_WINDOW, SYNC_DELAY};
pub use view::{GraphView, ViewNode, graph_view};
