//! The `stagecraft` binary; everything it does is in [`stagecraft::cli`].

fn main() -> std::process::ExitCode {
    stagecraft::cli::main()
}
