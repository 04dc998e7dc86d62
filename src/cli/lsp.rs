//! `stagecraft lsp`: the language server on stdin and stdout
//! (`spec/commands/lsp.md`). The server itself is [`crate::lsp`].

use super::{Failure, Outcome};

pub(super) fn lsp() -> Outcome {
    match crate::lsp::run_stdio() {
        Ok(true) => Ok(()),
        Ok(false) => Err(Failure::user("the client exited without asking for `shutdown` first")),
        Err(error) => Err(Failure::user(format!("language server: {error}"))),
    }
}
