//! Planning (and, later, execution) of workflows.
//!
//! [`plan`] turns a compiled pipeline, an env and a workflow into a [`Plan`]:
//! the instances in execution order with commands interpolated and
//! conditions decided. It is what `plan` prints and what the executor walks.
//! [`graph_view`] is the same selection for `stagecraft graph`.

mod plan;
mod view;

pub use plan::{Plan, PlanError, PlanRequest, PlannedInstance, plan};
pub use view::{GraphView, ViewNode, graph_view};
