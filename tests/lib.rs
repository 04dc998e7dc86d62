//! Integration tests: one binary, linked once.

mod cli;
mod diagnostics;
mod engine;
mod fmt;
mod fuzz;
mod limits;
mod lsp;
mod plans;
mod release;
mod shell;
mod state;
mod support;
