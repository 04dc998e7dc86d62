//! Integration tests: one binary, linked once.

mod cli;
mod diagnostics;
mod engine;
mod fuzz;
mod plans;
mod release;
mod state;
mod support;
