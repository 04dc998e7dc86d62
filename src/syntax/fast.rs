//! The parser's fast lane: a hand-written reader for the declarations that
//! make up almost all of a large file (`phase` blocks of `run`, `after`,
//! `timeout`, `retry`, `finally` and `for each service` clauses, `workflow`
//! lists, `pipeline` and `var`).
//!
//! The grammar stays the authority on what parses. The lane reads a
//! declaration only when it is sure that the grammar reads it the same way,
//! and builds the very AST that lowering pest's pairs would; at anything
//! else (a condition, an env or service block, a syntax error, text it does
//! not expect) it gives up, and the parse loop hands the declaration to pest
//! as before. So every syntax error, and everything error recovery and the
//! incremental parse see, still comes from pest. The unit tests compare the
//! two on the example pipelines and on random texts.
//!
//! Why: on a 10,000-phase file pest spent about 150 instructions a byte (a
//! call with a stack check and a snapshot for each rule and combinator);
//! this reads the same text at a few a byte.

use super::ast::{Assignment, Clause, ClauseKind, Dependency, Ident, Item, PhaseDecl, Raw, Template, WorkflowDecl};
use super::{Diagnostic, Span, skip_trivia, template};

/// Reads declarations of one text; reuses its buffers from one to the next.
pub(super) struct Lane<'s> {
    text: &'s str,
    at: usize,
    /// Problems found inside string literals of the declaration being read.
    pub(super) diagnostics: Vec<Diagnostic>,
    clauses: Vec<Clause<'s>>,
    dependencies: Vec<Dependency<'s>>,
}

/// A character of a name after the first (`ident_char` in the grammar).
fn is_name_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

impl<'s> Lane<'s> {
    pub(super) fn new(text: &'s str) -> Self {
        Self {
            text,
            at: 0,
            diagnostics: Vec::new(),
            clauses: Vec::new(),
            dependencies: Vec::new(),
        }
    }

    /// The declaration after the blanks and comments at `base`, and where it
    /// ends; `None` where the lane leaves it to pest (then [`Self::diagnostics`]
    /// means nothing).
    pub(super) fn declaration(&mut self, base: usize) -> Option<(Item<'s>, usize)> {
        self.diagnostics.clear();
        self.clauses.clear();
        self.dependencies.clear();
        self.at = skip_trivia(self.text, base);
        let item = match self.word()? {
            "phase" => Item::Phase(self.phase()?),
            "workflow" => Item::Workflow(self.workflow()?),
            "pipeline" => {
                self.gap();
                Item::Pipeline(self.ident()?)
            }
            "var" => Item::Var(self.assignment_after_keyword()?),
            _ => return None,
        };
        Some((item, self.at))
    }

    fn byte(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.byte() == Some(byte);
        if found {
            self.at += 1;
        }
        found
    }

    /// Blanks and comments (GAP in the grammar).
    fn gap(&mut self) {
        self.at = skip_trivia(self.text, self.at);
    }

    /// The longest run of name characters here. A keyword of the grammar
    /// (a literal, then a blank or no name character) is exactly such a run.
    fn word(&mut self) -> Option<&'s str> {
        let start = self.at;
        let end = self.run(start, is_name_char);
        (end > start).then(|| {
            self.at = end;
            &self.text[start..end]
        })
    }

    /// Whether the next word is `keyword` (then it is read).
    fn keyword(&mut self, keyword: &str) -> bool {
        let start = self.at;
        let found = self.word() == Some(keyword);
        if !found {
            self.at = start;
        }
        found
    }

    /// Where the run of bytes matching `matches` from `from` ends.
    fn run(&self, from: usize, matches: fn(u8) -> bool) -> usize {
        let bytes = self.text.as_bytes();
        let mut end = from;
        while end < bytes.len() && matches(bytes[end]) {
            end += 1;
        }
        end
    }

    fn ident(&mut self) -> Option<Ident<'s>> {
        let start = self.at;
        if !self.byte().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_') {
            return None;
        }
        let end = self.run(start + 1, is_name_char);
        self.at = end;
        Some(Ident {
            name: &self.text[start..end],
            span: Span::new(start, end),
        })
    }

    /// A token kept as written: a first byte that `first` accepts, then
    /// bytes that `rest` accepts.
    fn raw(&mut self, first: fn(u8) -> bool, rest: fn(u8) -> bool) -> Option<Raw<'s>> {
        let start = self.at;
        if !self.byte().is_some_and(first) {
            return None;
        }
        let end = self.run(start + 1, rest);
        self.at = end;
        Some(Raw {
            text: &self.text[start..end],
            span: Span::new(start, end),
        })
    }

    fn duration(&mut self) -> Option<Raw<'s>> {
        self.raw(
            |b| b.is_ascii_alphanumeric(),
            |b| b.is_ascii_alphanumeric() || b == b'.',
        )
    }

    /// A string literal, `"…"` or `"""…"""`.
    fn string(&mut self) -> Option<Template<'s>> {
        let start = self.at;
        let bytes = self.text.as_bytes();
        let end = if bytes[start..].starts_with(b"\"\"\"") {
            // The grammar would read `""` as an empty plain string when the
            // `"""` is never closed (an error just after): pest's to report.
            start + 6 + self.text[start + 3..].find("\"\"\"")?
        } else {
            if bytes.get(start) != Some(&b'"') {
                return None;
            }
            let mut at = start + 1;
            loop {
                match *bytes.get(at)? {
                    b'"' => break at + 1,
                    b'\n' => return None,
                    b'\\' if matches!(bytes.get(at + 1), None | Some(b'\n')) => return None,
                    b'\\' => at += 2,
                    _ => at += 1,
                }
            }
        };
        self.at = end;
        Some(template::literal(&self.text[start..end], start, &mut self.diagnostics))
    }

    /// `NAME = "…"` after its keyword.
    fn assignment_after_keyword(&mut self) -> Option<Assignment<'s>> {
        self.gap();
        let name = self.ident()?;
        self.gap();
        if !self.eat(b'=') {
            return None;
        }
        self.gap();
        let value = self.string()?;
        Some(Assignment { name, value })
    }

    fn workflow(&mut self) -> Option<WorkflowDecl<'s>> {
        self.gap();
        let name = self.ident()?;
        self.gap();
        if !self.eat(b'{') {
            return None;
        }
        self.gap();
        let mut phases = Vec::new();
        while !self.eat(b'}') {
            phases.push(self.ident()?);
            self.gap();
        }
        Some(WorkflowDecl { name, phases })
    }

    fn phase(&mut self) -> Option<PhaseDecl<'s>> {
        self.gap();
        let name = self.ident()?;
        self.gap();
        if !self.eat(b'{') {
            return None;
        }
        loop {
            self.gap();
            if self.eat(b'}') {
                break;
            }
            let clause = self.clause()?;
            self.clauses.push(clause);
        }
        // Collected from a drain: exactly as long as needed.
        let clauses = self.clauses.drain(..).collect();
        Some(PhaseDecl { name, clauses })
    }

    /// A clause other than `when` (its condition is left to pest). Its span
    /// runs from the keyword to its last token.
    fn clause(&mut self) -> Option<Clause<'s>> {
        let start = self.at;
        let kind = match self.word()? {
            "run" => {
                self.gap();
                ClauseKind::Run(self.string()?)
            }
            "after" => {
                self.gap();
                ClauseKind::After(self.dependencies()?)
            }
            "timeout" => {
                self.gap();
                ClauseKind::Timeout(self.duration()?)
            }
            "retry" => {
                self.gap();
                let count = self.raw(|b| b.is_ascii_digit(), |b| b.is_ascii_digit())?;
                let end = self.at;
                self.gap();
                let backoff = if self.keyword("backoff") {
                    self.gap();
                    Some(Box::new(self.duration()?))
                } else {
                    self.at = end;
                    None
                };
                ClauseKind::Retry { count, backoff }
            }
            "finally" => ClauseKind::Finally,
            "for" => {
                self.gap();
                if !self.keyword("each") {
                    return None;
                }
                self.gap();
                if !self.keyword("service") {
                    return None;
                }
                ClauseKind::ForEach
            }
            _ => return None,
        };
        Some(Clause {
            kind,
            span: Span::new(start, self.at),
        })
    }

    /// `A, B[svc]`: ends after the last dependency.
    fn dependencies(&mut self) -> Option<Vec<Dependency<'s>>> {
        loop {
            let dependency = self.dependency()?;
            self.dependencies.push(dependency);
            let end = self.at;
            self.gap();
            if self.eat(b',') {
                self.gap();
            } else {
                self.at = end;
                return Some(self.dependencies.drain(..).collect());
            }
        }
    }

    /// `P` or `P[svc]`, with no blank inside.
    fn dependency(&mut self) -> Option<Dependency<'s>> {
        let phase = self.ident()?;
        let service = if self.eat(b'[') {
            let service = self.ident()?;
            if !self.eat(b']') {
                return None;
            }
            Some(Box::new(service))
        } else {
            None
        };
        Some(Dependency {
            phase,
            service,
            span: Span::new(phase.span.start(), self.at),
        })
    }
}

#[cfg(test)]
mod tests;
