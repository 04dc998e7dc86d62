//! `stagecraft completions SHELL`: the completion script of a shell, made by
//! `clap_complete` from the command line's own definition.

use clap::{Args, ValueEnum};
use clap_complete::Shell;

use std::io::Write as _;

use super::{Outcome, write_with};

/// `stagecraft completions`.
#[derive(Args, Debug)]
pub(super) struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum, value_name = "SHELL")]
    shell: CompletionShell,
}

/// The shells there is a script for.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// Prints the script on stdout.
pub(super) fn completions(args: &CompletionsArgs, command: &mut clap::Command) -> Outcome {
    let shell = match args.shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    // Into memory first: `generate` panics on a write error (`| head`).
    let mut script = Vec::new();
    clap_complete::generate(shell, command, "stagecraft", &mut script);
    write_with(|out| out.write_all(&script))
}
