//! Integration tests: one binary, linked once.

mod cli;
mod damage;
mod diagnostics;
mod engine;
mod fmt;
mod full_disk;
mod fuzz;
mod limits;
mod live;
mod lsp;
mod orphans;
mod plans;
mod release;
mod robustness;
mod shell;
mod state;
mod state_layout;
mod support;
