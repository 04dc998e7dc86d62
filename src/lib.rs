//! stagecraft: a declarative state-machine engine for release pipelines.
//!
//! The layers, each depending only on those before it:
//! [`syntax`] (text → AST) → [`check`] (AST → resolved [`check::Pipeline`])
//! → [`graph`] (pipeline → DAG of phase instances) → [`engine`] (plans) →
//! [`cli`] (commands and rendering). `spec/architecture.md` has the map.

pub mod check;
pub mod cli;
pub mod engine;
pub mod graph;
mod lsp;
pub mod state;
pub mod syntax;
pub mod testing;
