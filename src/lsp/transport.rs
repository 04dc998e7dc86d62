//! The language server's stdin and stdout: JSON-RPC messages framed by a
//! `Content-Length` header (`spec/commands/lsp.md`).
//!
//! `lsp-server` reads a message by allocating what its header announces,
//! unchecked (`Content-Length: 99999999999` aborted the process), and ends
//! on a body that is not JSON. This reader bounds everything it reads: a
//! header line of [`MAX_HEADER_LINE`] bytes, [`MAX_HEADERS`] header lines,
//! a body of [`MAX_BODY`] bytes. A header it cannot trust ends the
//! connection with an error (the next message's start is unknown); a body
//! that is not a JSON-RPC message gets the JSON-RPC error response
//! (`-32700` parse error, `-32600` invalid request) and the server goes on.

use std::io::{self, BufRead, Read, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use lsp_server::{Connection, ErrorCode, Message};
use serde_json::{Value, json};

/// The largest message body read, in bytes (64 MiB).
pub(crate) const MAX_BODY: usize = 64 * 1024 * 1024;
/// The longest header line read, in bytes.
const MAX_HEADER_LINE: usize = 4096;
/// The most header lines one message may have.
const MAX_HEADERS: usize = 32;

/// Why the reader stopped: the input's framing cannot be trusted, or
/// stdin failed.
pub(crate) type ReadError = String;

/// The threads that move messages between stdin, stdout and the server.
pub(crate) struct Stdio {
    reader: JoinHandle<()>,
    writer: JoinHandle<io::Result<()>>,
    failed: Arc<Mutex<Option<ReadError>>>,
}

/// Starts the reader and writer threads for `client`, the client's end of
/// an in-memory connection whose other end the server serves.
pub(crate) fn stdio(client: Connection) -> Stdio {
    let failed = Arc::new(Mutex::new(None));
    let Connection { sender, receiver } = client;
    let reader = {
        let failed = Arc::clone(&failed);
        std::thread::spawn(move || {
            let mut stdin = io::stdin().lock();
            let result = read_messages(&mut stdin, &mut io::stdout(), |message| sender.send(message).is_ok());
            if let Err(error) = result {
                // Recorded before the sender is dropped, so the server,
                // which sees the connection close, finds it.
                *failed.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
            }
            drop(sender);
        })
    };
    let writer = std::thread::spawn(move || {
        for message in receiver {
            write_message(&mut io::stdout().lock(), &message)?;
        }
        Ok(())
    });
    Stdio { reader, writer, failed }
}

impl Stdio {
    /// Waits for what the server sent to be written, and returns why the
    /// input ended early, if it did (call after the server's end of the
    /// connection is dropped).
    pub(crate) fn finish(self) -> Result<(), crate::lsp::Error> {
        let written = self.writer.join();
        if let Some(error) = self.failed.lock().unwrap_or_else(PoisonError::into_inner).take() {
            return Err(error.into());
        }
        // The reader is finished or blocked on a stdin that says nothing
        // more; it is not waited for.
        drop(self.reader);
        match written {
            Ok(result) => Ok(result?),
            Err(_) => Err("the writer thread panicked".into()),
        }
    }
}

/// Reads messages from `input` and gives each to `deliver` until the input
/// ends, `deliver` refuses one (the server is gone) or an `exit`
/// notification has been delivered. A body that is not a message is
/// answered on `output` with a JSON-RPC error.
pub(crate) fn read_messages(
    input: &mut impl BufRead,
    output: &mut impl Write,
    mut deliver: impl FnMut(Message) -> bool,
) -> Result<(), ReadError> {
    while let Some(body) = read_body(input)? {
        let message = match parse(&body) {
            Ok(message) => message,
            Err(answer) => {
                write_message(output, &answer).map_err(|e| format!("cannot write to stdout: {e}"))?;
                continue;
            }
        };
        let exit = matches!(&message, Message::Notification(n) if n.method == "exit");
        if !deliver(message) || exit {
            break;
        }
    }
    Ok(())
}

/// The message in `body`, or the error response that answers it.
fn parse(body: &[u8]) -> Result<Message, Value> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        error_response(
            &Value::Null,
            ErrorCode::ParseError,
            &format!("the message is not JSON: {e}"),
        )
    })?;
    let id = match value.get("id") {
        Some(id @ (Value::Number(_) | Value::String(_))) => id.clone(),
        _ => Value::Null,
    };
    serde_json::from_value(value).map_err(|e| {
        error_response(
            &id,
            ErrorCode::InvalidRequest,
            &format!("the message is not a JSON-RPC request, response or notification: {e}"),
        )
    })
}

fn error_response(id: &Value, code: ErrorCode, message: &str) -> Value {
    json!({"id": id, "error": {"code": code as i32, "message": message}})
}

/// Writes one framed message and flushes: `message`'s fields after
/// `"jsonrpc": "2.0"`, serialized in one pass (an outline of a large file
/// is megabytes, not worth building twice).
fn write_message(output: &mut impl Write, message: &impl serde::Serialize) -> io::Result<()> {
    #[derive(serde::Serialize)]
    struct JsonRpc<'a, M> {
        jsonrpc: &'static str,
        #[serde(flatten)]
        message: &'a M,
    }
    let body = serde_json::to_vec(&JsonRpc {
        jsonrpc: "2.0",
        message,
    })?;
    write!(output, "Content-Length: {}\r\n\r\n", body.len())?;
    output.write_all(&body)?;
    output.flush()
}

/// The body of the next message: `None` at the end of the input between
/// messages.
fn read_body(input: &mut impl BufRead) -> Result<Option<Vec<u8>>, ReadError> {
    let mut length = None;
    for count in 0.. {
        if count == MAX_HEADERS {
            return Err(format!("a message has more than {MAX_HEADERS} header lines"));
        }
        let Some(line) = read_header_line(input)? else {
            return if count == 0 {
                Ok(None)
            } else {
                Err("stdin ended inside a message's header".to_owned())
            };
        };
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("malformed header `{}`: expected `NAME: VALUE`", shown(&line)))?;
        if name.trim().eq_ignore_ascii_case("content-length") {
            length = Some(content_length(value.trim())?);
        }
    }
    let length = length.ok_or("a message has no `Content-Length` header")?;
    let mut body = Vec::with_capacity(length.min(1 << 20));
    input
        .take(length as u64)
        .read_to_end(&mut body)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    if body.len() < length {
        return Err(format!(
            "stdin ended inside a message: {} of its {length} bytes",
            body.len()
        ));
    }
    Ok(Some(body))
}

/// A `Content-Length` value, at most [`MAX_BODY`].
fn content_length(value: &str) -> Result<usize, ReadError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "malformed header: `Content-Length: {}` is not a number of bytes",
            shown(value)
        ));
    }
    match value.parse::<usize>() {
        Ok(length) if length <= MAX_BODY => Ok(length),
        _ => Err(format!(
            "`Content-Length: {value}` is over the limit of {MAX_BODY} bytes (64 MiB)"
        )),
    }
}

/// One header line without its line end (`\r\n`, or `\n` alone); `None`
/// at the end of the input before any byte of it.
fn read_header_line(input: &mut impl BufRead) -> Result<Option<String>, ReadError> {
    let mut line = Vec::new();
    let limit = MAX_HEADER_LINE as u64 + 2;
    input
        .take(limit)
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    if line.is_empty() {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(if line.len() as u64 >= limit {
            format!("a header line is longer than {MAX_HEADER_LINE} bytes")
        } else {
            "stdin ended inside a message's header".to_owned()
        });
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| "malformed header: not ASCII text".to_owned())
}

/// At most 60 characters of `text`, for a message (which `cli` escapes).
fn shown(text: &str) -> String {
    let mut shown: String = text.chars().take(60).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8]) -> (Vec<Message>, String, Result<(), ReadError>) {
        let mut messages = Vec::new();
        let mut output = Vec::new();
        let result = read_messages(&mut &input[..], &mut output, |m| {
            messages.push(m);
            true
        });
        (messages, String::from_utf8(output).unwrap(), result)
    }

    fn framed(body: &str) -> String {
        format!("Content-Length: {}\r\n\r\n{body}", body.len())
    }

    #[test]
    fn reads_framed_messages_until_exit() {
        let input = format!(
            "{}{}{}",
            framed(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#),
            framed(r#"{"jsonrpc":"2.0","method":"exit"}"#),
            framed(r#"{"jsonrpc":"2.0","method":"never read"}"#),
        );
        let (messages, output, result) = read_all(input.as_bytes());
        assert_eq!(messages.len(), 2);
        assert_eq!(output, "");
        assert_eq!(result, Ok(()));
    }

    #[test]
    fn bad_bodies_are_answered_and_reading_goes_on() {
        let input = format!(
            "{}{}{}",
            framed("{not json"),
            framed(r#"{"jsonrpc":"2.0","id":7,"result":1,"error":2,"method":3}"#),
            framed(r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#),
        );
        let (messages, output, result) = read_all(input.as_bytes());
        assert_eq!(messages.len(), 1);
        assert!(output.contains(r#""id":null"#) && output.contains("-32700"), "{output}");
        assert!(output.contains(r#""id":7"#) && output.contains("-32600"), "{output}");
        assert_eq!(result, Ok(()));
    }

    #[test]
    fn untrusted_headers_end_reading_with_an_error() {
        let cases: [(&[u8], &str); 7] = [
            (
                b"Content-Length: 99999999999\r\n\r\n",
                "over the limit of 67108864 bytes",
            ),
            (b"Content-Length: 99999999999999999999999999\r\n\r\n", "over the limit"),
            (b"Content-Length: -1\r\n\r\n", "is not a number of bytes"),
            (b"Content-Type: x\r\n\r\n{}", "no `Content-Length` header"),
            (b"Content-Length 2\r\n\r\n{}", "malformed header"),
            (
                b"Content-Length: 10\r\n\r\n{}",
                "stdin ended inside a message: 2 of its 10 bytes",
            ),
            (b"Content-Length: 2\r\n", "stdin ended inside a message's header"),
        ];
        for (input, error) in cases {
            let (messages, _, result) = read_all(input);
            assert!(messages.is_empty());
            let message = result.unwrap_err();
            assert!(message.contains(error), "{message}");
        }
        let long = format!("X-Long: {}\r\n", "a".repeat(100_000));
        assert!(
            read_all(long.as_bytes())
                .2
                .unwrap_err()
                .contains("longer than 4096 bytes")
        );
        let many = "X: y\r\n".repeat(40);
        assert!(
            read_all(many.as_bytes())
                .2
                .unwrap_err()
                .contains("more than 32 header lines")
        );
    }
}
