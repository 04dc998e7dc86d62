//! Masking secrets in output: every occurrence of a secret's value in what
//! a command prints becomes `***` before it is streamed, logged or kept
//! for the failure report.
//!
//! The [`Masker`] sees the output as one stream of text (the executor
//! feeds it each line and its line break), so a value is found wherever
//! the command's writes split it, and across lines for a value that holds
//! a line break. It passes text on as soon as no value can start in it:
//! it holds back only the longest end of the text that is the start of a
//! value (a possible prefix), until the next text says whether the value
//! follows. Where values overlap, the one that starts first wins, and of
//! those that start at the same place the longest; the result is the same
//! however the stream is cut into pieces.

use std::fmt;
use std::sync::Arc;

/// What a masked value is replaced with.
pub const MASK: &str = "***";

/// The values to mask: every secret of a run (never empty strings). Its
/// `Debug` shows how many there are, never what they are.
#[derive(Clone, Default)]
pub struct SecretValues(Arc<[String]>);

impl SecretValues {
    /// The values, longest first (so the longest wins where several start
    /// at one place); empty ones and repeats are left out.
    #[must_use]
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut values: Vec<String> = values.into_iter().filter(|value| !value.is_empty()).collect();
        values.sort_unstable_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        Self(values.into())
    }

    /// Whether there is nothing to mask.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every occurrence of a value in `text` masked (the whole text at once).
    #[must_use]
    pub fn mask(&self, text: &str) -> String {
        let mut masker = Masker::new(self.clone());
        let mut out = String::new();
        masker.push(text, &mut out);
        masker.finish(&mut out);
        out
    }
}

impl fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValues({} masked)", self.0.len())
    }
}

/// A streaming masker: [`push`](Self::push) text as it comes, then
/// [`finish`](Self::finish).
#[derive(Debug, Default)]
pub(crate) struct Masker {
    values: SecretValues,
    /// Text held back: it ends with the start of a value.
    pending: String,
}

impl Masker {
    pub(crate) fn new(values: SecretValues) -> Self {
        Self {
            values,
            pending: String::new(),
        }
    }

    /// Whether there are values to mask (else text passes through as is).
    pub(crate) fn is_active(&self) -> bool {
        !self.values.is_empty()
    }

    /// Appends to `out` the masked text that no later text can change.
    pub(crate) fn push(&mut self, text: &str, out: &mut String) {
        if !self.is_active() {
            out.push_str(text);
            return;
        }
        self.pending.push_str(text);
        self.release(false, out);
    }

    /// [`push`](Self::push) of `line` and a line break, in one pass.
    pub(crate) fn push_line(&mut self, line: &str, out: &mut String) {
        self.pending.reserve(line.len() + 1);
        self.pending.push_str(line);
        self.pending.push('\n');
        self.release(false, out);
    }

    /// The end of the stream: what was held back cannot grow into a value
    /// any more, so it is masked as it is.
    pub(crate) fn finish(&mut self, out: &mut String) {
        self.release(true, out);
    }

    /// Masks and passes on the pending text, all of it at the `end` of the
    /// stream, else up to the possible start of a value.
    fn release(&mut self, end: bool, out: &mut String) {
        let mut start = 0;
        loop {
            let rest = &self.pending[start..];
            let held = if end { None } else { self.possible_start(rest) };
            match self.first_match(rest) {
                // A value is there, and no longer one may start before it.
                Some((at, len)) if held.is_none_or(|held| at < held) => {
                    out.push_str(&rest[..at]);
                    out.push_str(MASK);
                    start += at + len;
                }
                _ => {
                    let keep = held.unwrap_or(rest.len());
                    out.push_str(&rest[..keep]);
                    start += keep;
                    break;
                }
            }
        }
        self.pending.drain(..start);
    }

    /// The first place a whole value is, and the longest value there.
    fn first_match(&self, text: &str) -> Option<(usize, usize)> {
        let mut best: Option<(usize, usize)> = None;
        // Longest first: a shorter value at the same place does not win.
        for value in self.values.0.iter() {
            if let Some(at) = text.find(value.as_str())
                && best.is_none_or(|(best_at, _)| at < best_at)
            {
                best = Some((at, value.len()));
            }
        }
        best
    }

    /// Where the earliest end of `text` starts that is a proper start of a
    /// value (a value may be completed by what comes next).
    fn possible_start(&self, text: &str) -> Option<usize> {
        let bytes = text.as_bytes();
        let mut earliest: Option<usize> = None;
        for value in self.values.0.iter() {
            let value = value.as_bytes();
            // Only the last `len - 1` bytes can start a value that goes on.
            let from = bytes.len().saturating_sub(value.len() - 1);
            let until = earliest.unwrap_or(bytes.len());
            for at in from..until {
                if bytes[at] == value[0] && value.starts_with(&bytes[at..]) {
                    earliest = Some(at);
                    break;
                }
            }
        }
        // A value's start is a whole character, so `at` is a boundary.
        earliest
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn values(values: &[&str]) -> SecretValues {
        SecretValues::new(values.iter().map(|v| (*v).to_owned()))
    }

    /// Masks `pieces` pushed one by one; the text out after each push too.
    fn streamed(values: &SecretValues, pieces: &[&str]) -> (String, Vec<String>) {
        let mut masker = Masker::new(values.clone());
        let (mut out, mut after_each) = (String::new(), Vec::new());
        for piece in pieces {
            masker.push(piece, &mut out);
            after_each.push(out.clone());
        }
        masker.finish(&mut out);
        (out, after_each)
    }

    #[test]
    fn a_value_is_masked_wherever_it_is() {
        let secret = values(&["SuperSecret123"]);
        assert_eq!(secret.mask("Bearer SuperSecret123\n"), "Bearer ***\n");
        assert_eq!(secret.mask("SuperSecret123SuperSecret123"), "******");
        assert_eq!(secret.mask("SuperSecret12"), "SuperSecret12");
        assert_eq!(values(&[]).mask("SuperSecret123"), "SuperSecret123");
    }

    #[test]
    fn a_value_split_across_writes_is_held_back_then_masked() {
        let secret = values(&["SuperSecret123"]);
        let (out, after_each) = streamed(&secret, &["token: Super", "Secret123 ok\n"]);
        assert_eq!(out, "token: *** ok\n");
        assert_eq!(after_each[0], "token: ", "the possible start is held back");
        let (out, after_each) = streamed(&secret, &["token: Super", "man\n"]);
        assert_eq!(out, "token: Superman\n");
        assert_eq!(
            after_each[1], "token: Superman\n",
            "released once it cannot be the value"
        );
    }

    #[test]
    fn a_value_over_several_lines_is_masked_whole() {
        let key = values(&["-----BEGIN KEY-----\nabc\n-----END KEY-----"]);
        let (out, _) = streamed(
            &key,
            &["-----BEGIN KEY-----\n", "abc\n", "-----END KEY-----\n", "done\n"],
        );
        assert_eq!(out, "***\ndone\n");
    }

    #[test]
    fn the_longest_value_starting_first_wins() {
        let both = values(&["abc", "abcdef", "cdx"]);
        assert_eq!(both.mask("abcdef abcde abcdx"), "*** ***de ***dx");
        let (out, _) = streamed(&both, &["ab", "cd", "ef"]);
        assert_eq!(out, "***");
    }

    #[test]
    fn text_without_values_passes_through_at_once() {
        let secret = values(&["xyz"]);
        let (_, after_each) = streamed(&secret, &["plain line\n", "ends with x"]);
        assert_eq!(after_each, ["plain line\n", "plain line\nends with "]);
    }

    #[test]
    fn multibyte_text_is_cut_only_between_characters() {
        let secret = values(&["pé€x"]);
        assert_eq!(secret.mask("a pé€x é€ pé€"), "a *** é€ pé€");
        let (out, _) = streamed(&secret, &["a pé", "€", "x!"]);
        assert_eq!(out, "a ***!");
    }

    #[test]
    fn debug_never_shows_a_value() {
        assert_eq!(format!("{:?}", values(&["hunter2"])), "SecretValues(1 masked)");
    }

    proptest! {
        /// However the stream is cut, the result is that of the whole text.
        #[test]
        fn streaming_equals_masking_the_whole(
            secrets in prop::collection::vec("[ab\n]{1,4}", 1..4),
            text in "[ab\nc]{0,40}",
            cuts in prop::collection::vec(0_usize..40, 0..6),
        ) {
            let values = SecretValues::new(secrets);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(text.len())).collect();
            cuts.push(0);
            cuts.push(text.len());
            cuts.sort_unstable();
            let pieces: Vec<&str> = cuts.windows(2).map(|w| &text[w[0]..w[1]]).collect();
            let (out, _) = streamed(&values, &pieces);
            prop_assert_eq!(&out, &values.mask(&text));
            // No value is left in the output (values hold no `*`).
            for value in values.0.iter() {
                prop_assert!(!out.contains(value.as_str()), "{value:?} in {out:?}");
            }
        }

        /// Without any value in the text, nothing changes.
        #[test]
        fn text_without_values_is_unchanged(text in "[a-z \n]{0,60}") {
            let values = SecretValues::new(["XYZ".to_owned(), "Q\nR".to_owned()]);
            prop_assert_eq!(values.mask(&text), text);
        }
    }
}
