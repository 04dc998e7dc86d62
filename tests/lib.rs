//! Integration tests: one binary, linked once.

mod cli;
mod damage;
mod diagnostics;
mod engine;
mod finally;
mod flags;
mod fmt;
mod full_disk;
mod fuzz;
mod init;
mod limits;
mod list;
mod live;
mod lsp;
mod orphans;
mod plans;
mod postgres;
mod protected;
mod release;
mod robustness;
mod secrets;
mod shell;
mod state;
mod state_layout;
mod support;
mod textmate;
