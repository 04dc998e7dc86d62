//! Writing to stdout and stderr, and what is shown of text that came from
//! elsewhere (`spec/commands/README.md`, "Output streams").
//!
//! A closed stdout or stderr (`stagecraft deploy | head`, `2>&1 | head -2`)
//! is not an error: what is left to write is dropped and the exit code is
//! what it would have been. Rust ignores `SIGPIPE`, so a write to a closed
//! pipe fails with `EPIPE`, on which std's `print!` and `eprint!` panic;
//! `cli` shadows those macros with ones that call [`stderr`] and
//! [`stdout`], so no print in the command line can panic.
//!
//! Control characters from a pipeline file or a phase's output are shown
//! escaped ([`escape`]), so that they cannot drive the terminal.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::io::Write as _;

use super::{Failure, Outcome, internal};

/// Writes to stderr, ignoring failure: a closed or broken stderr leaves
/// nowhere to say anything.
pub(super) fn stderr(args: fmt::Arguments<'_>) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_fmt(args).and_then(|()| stderr.flush());
}

/// Writes to stdout, ignoring failure (what `print!` means in `cli`; the
/// commands' own output goes through [`write_stdout`], which reports errors
/// other than a closed pipe).
#[allow(dead_code)] // what `print!` calls, for a module that prints
pub(super) fn stdout(args: fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_fmt(args).and_then(|()| stdout.flush());
}

/// Runs `write` on buffered stdout and flushes it.
pub(super) fn write_with(
    write: impl FnOnce(&mut std::io::BufWriter<std::io::StdoutLock<'static>>) -> std::io::Result<()>,
) -> Outcome {
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    output_result(write(&mut stdout).and_then(|()| stdout.flush()))
}

/// Writes all of `text` to stdout; a closed pipe (`| head`) is not an error.
pub(super) fn write_stdout(text: &str) -> Outcome {
    let mut stdout = std::io::stdout().lock();
    output_result(stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()))
}

/// A closed pipe is success (the reader has all it wanted); any other
/// write error is reported.
fn output_result(written: std::io::Result<()>) -> Result<(), Failure> {
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(internal(format!("cannot write output: {e}"))),
        _ => Ok(()),
    }
}

/// Whether `c` is shown escaped: C0 controls but tab and line feed, DEL,
/// C1 controls, and the bidirectional overrides and isolates that can make
/// text read other than it is.
pub(crate) fn is_escaped(c: char) -> bool {
    (c.is_control() && c != '\t' && c != '\n') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every [`is_escaped`] character written as an escape:
/// `\x1b` for a C0 control or DEL, `\u{9b}` above (two hex digits at least,
/// lowercase). Tabs and line feeds are kept. Text without such a character
/// is returned as it is.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// Pushes `c`, escaped if [`is_escaped`] says so.
pub(crate) fn push_escaped(out: &mut String, c: char) {
    if !is_escaped(c) {
        out.push(c);
    } else if u32::from(c) < 0x80 {
        let _ = write!(out, "\\x{:02x}", u32::from(c));
    } else {
        let _ = write!(out, "\\u{{{:02x}}}", u32::from(c));
    }
}

/// A line of a phase's output as shown: a final carriage return (a CRLF
/// line end) dropped, other control characters escaped.
pub(super) fn output_line(line: &str) -> Cow<'_, str> {
    escape(line.strip_suffix('\r').unwrap_or(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_but_tabs_and_newlines() {
        assert_eq!(escape("plain\ttext\n"), "plain\ttext\n");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(escape("\u{1b}[31mred\u{7}"), "\\x1b[31mred\\x07");
        assert_eq!(escape("a\rb\0"), "a\\x0db\\x00");
        assert_eq!(escape("\u{7f}\u{9b}"), "\\x7f\\u{9b}");
        assert_eq!(escape("\u{202e}evil"), "\\u{202e}evil");
        assert_eq!(escape("café ✓"), "café ✓");
    }

    #[test]
    fn output_lines_drop_a_final_carriage_return() {
        assert_eq!(output_line("done\r"), "done");
        assert_eq!(output_line("50%\r100%"), "50%\\x0d100%");
    }
}
