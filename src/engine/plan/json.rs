//! The plan as JSON, written by hand: the same bytes as `serde_json`'s
//! pretty printer on the plan's `Serialize` form, without serde's per-value
//! dispatch.

use super::{Plan, PlannedInstance};

impl Plan {
    /// Writes the plan as pretty JSON followed by a newline: the same bytes
    /// as `serde_json::to_writer_pretty` on its `Serialize` form, without
    /// serde's per-value dispatch (a plan of 10,000 instances is megabytes).
    ///
    /// # Errors
    ///
    /// Whatever `out` returns.
    pub fn write_json(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        // Written out in pieces of 16 KiB or so: the buffer stays small
        // (it is part of the peak memory of `plan`).
        let mut buffer = Vec::with_capacity(1 << 15);
        buffer.extend_from_slice(b"{\n  \"pipeline\": ");
        json_string(&mut buffer, &self.pipeline);
        buffer.extend_from_slice(b",\n  \"env\": ");
        json_string(&mut buffer, &self.env);
        buffer.extend_from_slice(b",\n  \"workflow\": ");
        json_string(&mut buffer, &self.workflow);
        buffer.extend_from_slice(b",\n  \"version\": ");
        json_string(&mut buffer, &self.version);
        for (position, secret) in self.secrets.iter().enumerate() {
            buffer.extend_from_slice(if position == 0 {
                b",\n  \"secrets\": [\n"
            } else {
                b",\n"
            });
            buffer.extend_from_slice(b"    {\n      \"name\": ");
            json_string(&mut buffer, &secret.name);
            buffer.extend_from_slice(b",\n      \"from\": ");
            json_string(&mut buffer, &secret.from);
            buffer.extend_from_slice(b",\n      \"source\": ");
            json_string(&mut buffer, &secret.source);
            buffer.extend_from_slice(b"\n    }");
        }
        if !self.secrets.is_empty() {
            buffer.extend_from_slice(b"\n  ]");
        }
        buffer.extend_from_slice(b",\n  \"phases\": [");
        for (position, instance) in self.instances.iter().enumerate() {
            buffer.extend_from_slice(if position == 0 { b"\n" } else { b",\n" });
            self.instance_json(&mut buffer, instance);
            if buffer.len() >= 1 << 14 {
                out.write_all(&buffer)?;
                buffer.clear();
            }
        }
        buffer.extend_from_slice(if self.instances.is_empty() {
            b"]\n}\n"
        } else {
            b"\n  ]\n}\n"
        });
        out.write_all(&buffer)
    }

    /// One element of `phases`, indented as `write_json` nests it.
    fn instance_json(&self, buffer: &mut Vec<u8>, instance: &PlannedInstance) {
        buffer.extend_from_slice(b"    {\n      \"id\": ");
        json_string(buffer, &instance.id);
        buffer.extend_from_slice(b",\n      \"phase\": ");
        json_string(buffer, &instance.phase);
        buffer.extend_from_slice(b",\n      \"service\": ");
        json_option_string(buffer, instance.service.as_deref());
        buffer.extend_from_slice(b",\n      \"after\": [");
        for (index, id) in self.after_ids(instance).enumerate() {
            buffer.extend_from_slice(if index == 0 { b"\n        " } else { b",\n        " });
            json_string(buffer, id);
        }
        buffer.extend_from_slice(if instance.after.is_empty() { b"]" } else { b"\n      ]" });
        buffer.extend_from_slice(b",\n      \"command\": ");
        json_option_string(buffer, instance.command.as_deref());
        buffer.extend_from_slice(b",\n      \"enabled\": ");
        buffer.extend_from_slice(if instance.enabled { b"true" } else { b"false" });
        buffer.extend_from_slice(b",\n      \"unchanged\": ");
        buffer.extend_from_slice(if instance.unchanged { b"true" } else { b"false" });
        buffer.extend_from_slice(b",\n      \"version\": ");
        json_string(buffer, &instance.version);
        buffer.extend_from_slice(b",\n      \"timeout_ms\": ");
        match instance.timeout_ms {
            Some(ms) => json_number(buffer, ms),
            None => buffer.extend_from_slice(b"null"),
        }
        buffer.extend_from_slice(b",\n      \"retry\": ");
        json_number(buffer, u64::from(instance.retry));
        buffer.extend_from_slice(b",\n      \"backoff_ms\": ");
        json_number(buffer, instance.backoff_ms);
        if instance.is_finally() {
            buffer.extend_from_slice(b",\n      \"finally\": true");
        }
        if let Some(undo) = &instance.undo {
            buffer.extend_from_slice(b",\n      \"undo\": ");
            json_string(buffer, undo);
        }
        buffer.extend_from_slice(b"\n    }");
    }
}

/// `value` as a JSON string, escaped as `serde_json` escapes it.
fn json_string(buffer: &mut Vec<u8>, value: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = value.as_bytes();
    buffer.reserve(bytes.len() + 2);
    buffer.push(b'"');
    // Ids, names and most commands need no escape: one scan, one copy.
    if !bytes.iter().any(|&byte| byte < 0x20 || byte == b'"' || byte == b'\\') {
        buffer.extend_from_slice(bytes);
        buffer.push(b'"');
        return;
    }
    let mut start = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..0x20 => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ],
            _ => continue,
        };
        buffer.extend_from_slice(&bytes[start..index]);
        buffer.extend_from_slice(escape);
        start = index + 1;
    }
    buffer.extend_from_slice(&bytes[start..]);
    buffer.push(b'"');
}

/// `value` as a JSON string, or `null`.
fn json_option_string(buffer: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(value) => json_string(buffer, value),
        None => buffer.extend_from_slice(b"null"),
    }
}

/// `value` in decimal, without going through `fmt` (three numbers per
/// instance).
fn json_number(buffer: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        // `value % 10` is below 10, so the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let digit = (value % 10) as u8;
        digits[start] = b'0' + digit;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    buffer.extend_from_slice(&digits[start..]);
}
