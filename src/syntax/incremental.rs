//! The incremental parse the language server keeps for each document: after
//! an edit, only the top-level declarations the edit may have changed are
//! parsed again; the others are taken from the last parse and moved to
//! their new offsets. The result is the same as [`super::parse`] of the new
//! text (the property test in `tests/lsp_incremental.rs` holds it to that).
//!
//! A parse is a chain of steps (`parser::steps`): each begins where the one
//! before ended and depends only on the text from there on. So a step of the
//! last parse can be reused where the new parse reaches its base and the
//! text it read is unchanged:
//!
//! * before the edit, a declaration that parsed, if the edit begins two bytes
//!   or more after it ends (pest looks one character past a declaration:
//!   where a name ends) and no `"` follows it (a `""` then `"` makes pest try
//!   a `"""` string up to the end of the file);
//! * after the edit, a declaration that parsed, since everything from its
//!   base to the end of the file is unchanged.
//!
//! A declaration that did not parse is always parsed again (its message
//! reads the line before it and, for an open `"""`, the rest of the file),
//! and so is everything from the first step the edit touches until the new
//! parse reaches a base where a kept step can be reused.

use super::ast::{Ast, Item};
use super::parser::{self, Step};
use super::rebase::{self, Attach, Detach, Rebase as _};
use super::{Diagnostic, Parsed};

/// What an edit left as it was: the first `prefix` and the last `suffix`
/// bytes of the new text are those of the text parsed last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Unchanged {
    /// Bytes unchanged at the start.
    pub(crate) prefix: usize,
    /// Bytes unchanged at the end.
    pub(crate) suffix: usize,
}

impl Unchanged {
    /// Nothing changed in a text of `len` bytes.
    #[must_use]
    pub(crate) fn all(len: usize) -> Self {
        Self {
            prefix: len,
            suffix: len,
        }
    }

    /// Adds the edit that replaces bytes `start..end` of a text of `len`
    /// bytes (before the edit).
    pub(crate) fn edit(&mut self, len: usize, start: usize, end: usize) {
        self.prefix = self.prefix.min(start);
        self.suffix = self.suffix.min(len.saturating_sub(end));
    }
}

/// The steps of the last parse, owning what they hold.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    steps: Vec<Kept>,
    len: usize,
    /// How many steps the last parse made anew.
    #[cfg(test)]
    fresh: usize,
}

/// A step of the last parse, its spans those of the text it was parsed
/// from, where it began at `origin`.
#[derive(Debug)]
struct Kept {
    base: usize,
    next: usize,
    origin: usize,
    item: Item<'static>,
    diagnostics: Vec<Diagnostic>,
}

impl Kept {
    fn new(step: &Step<'_>) -> Self {
        Self {
            base: step.base,
            next: step.next,
            origin: step.base,
            item: rebase::item(&step.item, &Detach),
            diagnostics: step.diagnostics.clone(),
        }
    }
}

impl Tree {
    /// Parses `text`, the text parsed last with edits that left `unchanged`
    /// as it was (the first parse of a tree parses everything).
    pub(crate) fn parse<'a>(&'a mut self, text: &'a str, unchanged: Unchanged) -> Parsed<'a> {
        self.update(text, unchanged);
        let mut ast = Ast::default();
        let mut diagnostics = Vec::new();
        // Each list at its size at once (phases are most of a large file).
        let phases = self.steps.iter().filter(|k| matches!(k.item, Item::Phase(_))).count();
        ast.phases.reserve_exact(phases);
        for kept in &self.steps {
            let delta = isize::try_from(kept.base).unwrap_or(isize::MAX) - isize::try_from(kept.origin).unwrap_or(0);
            let attach = Attach { text, delta };
            ast.push(rebase::item(&kept.item, &attach));
            diagnostics.extend(
                kept.diagnostics
                    .iter()
                    .map(|d| rebase::diagnostic(d, |s| attach.span(s))),
            );
        }
        Parsed { ast, diagnostics }
    }

    fn update(&mut self, text: &str, unchanged: Unchanged) {
        let old = std::mem::take(&mut self.steps);
        let old_len = std::mem::replace(&mut self.len, text.len());
        #[cfg(test)]
        {
            self.fresh = 0;
        }
        if old.is_empty() {
            parser::steps(text, 0, true, &mut |step| {
                self.steps.push(Kept::new(&step));
                true
            });
            return;
        }
        let shortest = old_len.min(text.len());
        let prefix = unchanged.prefix.min(shortest);
        let reuse = Reuse {
            bases: old.iter().map(|k| k.base).collect(),
            prefix,
            suffix: unchanged.suffix.min(shortest - prefix),
            old_len,
            text,
        };
        let mut old: Vec<Option<Kept>> = old.into_iter().map(Some).collect();
        let steps = &mut self.steps;
        let mut base = 0;
        while base < text.len() {
            if let Some((index, new_next)) = reuse.at(base, &old) {
                let Some(mut kept) = old[index].take() else { break };
                kept.base = base;
                kept.next = new_next;
                base = new_next;
                steps.push(kept);
                continue;
            }
            #[cfg(test)]
            let fresh = &mut self.fresh;
            let stopped = parser::steps(text, base, false, &mut |step| {
                #[cfg(test)]
                {
                    *fresh += 1;
                }
                steps.push(Kept::new(&step));
                reuse.at(step.next, &old).is_none()
            });
            match stopped {
                Some(next) => base = next,
                None => break,
            }
        }
    }
}

/// Which steps of the last parse hold for the new text.
struct Reuse<'a> {
    /// The base of each old step, ascending.
    bases: Vec<usize>,
    prefix: usize,
    suffix: usize,
    old_len: usize,
    text: &'a str,
}

impl Reuse<'_> {
    /// The old step that the new parse would make at `base` (a new offset),
    /// and where the step after it begins in the new text.
    fn at(&self, base: usize, old: &[Option<Kept>]) -> Option<(usize, usize)> {
        let new_len = self.text.len();
        let (old_base, shift): (usize, isize) = if base < self.prefix {
            (base, 0)
        } else if base >= new_len - self.suffix {
            let old_base = base - (new_len - self.suffix) + (self.old_len - self.suffix);
            (
                old_base,
                isize::try_from(new_len).ok()? - isize::try_from(self.old_len).ok()?,
            )
        } else {
            return None;
        };
        let index = self.bases.binary_search(&old_base).ok()?;
        let kept = old[index].as_ref()?;
        if matches!(kept.item, Item::Broken(_)) {
            return None;
        }
        if base < self.prefix {
            let after = self.text.as_bytes().get(kept.next).copied();
            if kept.next + 2 > self.prefix || after == Some(b'"') {
                return None;
            }
        }
        Some((index, kept.next.checked_add_signed(shift)?))
    }
}

#[cfg(test)]
mod tests;
