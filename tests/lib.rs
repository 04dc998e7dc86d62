//! Integration tests: one binary, linked once.

mod cli;
mod damage;
mod diagnostics;
mod engine;
mod fmt;
mod fuzz;
mod limits;
mod live;
mod lsp;
mod plans;
mod release;
mod robustness;
mod secrets;
mod shell;
mod state;
mod state_layout;
mod support;
