//! Planning (and, later, execution) of workflows.
//!
//! [`plan`] turns a compiled pipeline, an env and a workflow into a [`Plan`]:
//! the instances in execution order with commands interpolated and
//! conditions decided. It is what `plan` prints and what the executor walks.
//! [`graph_view`] is the same selection for `stagecraft graph`.

mod event;
mod execute;
mod plan;
mod runner;
mod spawn;
mod view;

pub use event::{Event, MemoryRecorder, Reason, RecordError, Recorder, Syncer};
pub use execute::{
    CLAIM_AHEAD, CLAIM_WINDOW, ExecuteOptions, InstanceStatus, InstanceSummary, MemorySink, OutputSink, SYNC_DELAY,
    Summary, TAIL_LINES, execute,
};
pub use plan::{Plan, PlanError, PlanRequest, PlannedInstance, plan};
pub use runner::{Attempt, Call, Cancel, Job, Outcome, ProcessGroup, Runner, ScriptedRunner, ShellRunner};
pub use view::{GraphView, ViewNode, graph_view};
