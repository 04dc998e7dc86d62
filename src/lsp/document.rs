//! An open document and its [`Analysis`]: the one compilation of each
//! version that diagnostics, definition, references, hover, completion and
//! symbols all read.

use lsp_types::{Location, Range, TextDocumentContentChangeEvent, Uri};

use super::hover::Hovers;
use super::outline::{self, Declaration};
use super::position;
use crate::check::{Kind, Name, Resolution};
use crate::syntax::ast::{ClauseKind, DeclKind};
use crate::syntax::{Diagnostic, LineIndex, Span, Tree, Unchanged};

/// What the front end says about one version of a document. It owns what
/// it keeps (the compilation borrows the text, which changes).
pub(super) struct Analysis {
    /// Every problem, as `check` reports them.
    pub(super) diagnostics: Vec<Diagnostic>,
    /// What each name resolved to, from the checker.
    pub(super) resolution: Resolution,
    /// The declarations that parsed.
    pub(super) outline: Vec<Declaration>,
    /// Names of declarations that did not parse (for completion).
    pub(super) broken: Vec<(Kind, Span)>,
    /// Where each top-level declaration starts, parsed or not, ascending
    /// (completion scans only the one the cursor is in).
    pub(super) starts: Vec<usize>,
    /// Phases and their instances, for hovers.
    pub(super) hovers: Hovers,
    /// The string of each `run` clause that parsed, in file order (where
    /// commands read secrets as `$NAME`).
    pub(super) commands: Vec<Span>,
}

impl Analysis {
    /// Parses (again only what the edits since the last parse touched),
    /// checks and builds the graph of `text`, once.
    fn new(text: &str, tree: &mut Tree, unchanged: Unchanged) -> Self {
        let parsed = tree.parse(text, unchanged);
        let outline = outline::outline(text, &parsed.ast);
        let broken = parsed
            .ast
            .broken
            .iter()
            .filter_map(|b| Some((kind(b.kind?), b.name?.span)))
            .collect();
        let mut starts: Vec<usize> = outline.iter().map(|d| d.span.start()).collect();
        starts.extend(parsed.ast.broken.iter().map(|b| b.span.start()));
        starts.sort_unstable();
        let mut commands: Vec<Span> = parsed
            .ast
            .phases
            .iter()
            .flat_map(|phase| &phase.clauses)
            .filter_map(|clause| match &clause.kind {
                ClauseKind::Run(template) => Some(template.span),
                _ => None,
            })
            .collect();
        commands.sort_unstable_by_key(|span| span.start());
        let mut compilation = crate::graph::compile_parsed(parsed);
        let hovers = Hovers::new(&mut compilation);
        Self {
            diagnostics: compilation.diagnostics,
            resolution: compilation.resolution,
            outline,
            broken,
            starts,
            hovers,
            commands,
        }
    }
}

fn kind(kind: DeclKind) -> Kind {
    match kind {
        DeclKind::Pipeline => Kind::Pipeline,
        DeclKind::Var => Kind::Var,
        DeclKind::Secret => Kind::Secret,
        DeclKind::Env => Kind::Env,
        DeclKind::Service => Kind::Service,
        DeclKind::Phase => Kind::Phase,
        DeclKind::Workflow => Kind::Workflow,
    }
}

/// An open document.
pub(super) struct Document {
    pub(super) uri: Uri,
    pub(super) version: i32,
    pub(super) text: String,
    pub(super) lines: LineIndex,
    /// The analysis of this version, made on first use.
    analysis: Option<Analysis>,
    /// The last parse, and what the edits since left as it was.
    tree: Tree,
    unchanged: Unchanged,
}

impl Document {
    pub(super) fn new(uri: Uri, version: i32, text: String) -> Self {
        Self {
            uri,
            version,
            lines: LineIndex::new(&text),
            text,
            analysis: None,
            tree: Tree::default(),
            unchanged: Unchanged::all(0),
        }
    }

    pub(super) fn apply(&mut self, version: i32, changes: Vec<TextDocumentContentChangeEvent>) {
        for change in changes {
            if let Some(range) = change.range {
                let span = position::span(&self.lines, &self.text, range);
                self.unchanged.edit(self.text.len(), span.start(), span.end());
                self.text.replace_range(span.start()..span.end(), &change.text);
            } else {
                self.tree = Tree::default();
                self.text = change.text;
            }
            self.lines = LineIndex::new(&self.text);
        }
        self.version = version;
        self.analysis = None;
    }

    /// The document with the analysis of its current version (made now if
    /// it is not yet).
    pub(super) fn analyzed(&mut self) -> Option<(&Self, &Analysis)> {
        if self.analysis.is_none() {
            self.analysis = Some(Analysis::new(&self.text, &mut self.tree, self.unchanged));
            self.unchanged = Unchanged::all(self.text.len());
        }
        let this = &*self;
        this.analysis.as_ref().map(|analysis| (this, analysis))
    }

    /// The document, its analysis and the name at an LSP position (a
    /// secret read as `$NAME` in a string counts as a use of it).
    pub(super) fn at(&mut self, position: lsp_types::Position) -> Option<(&Self, &Analysis, Name)> {
        let offset = self.offset(position);
        let (this, analysis) = self.analyzed()?;
        let name = analysis.resolution.at(offset);
        Some((
            this,
            analysis,
            name.or_else(|| super::hover::shell_secret(this, analysis, offset))?,
        ))
    }

    pub(super) fn offset(&self, position: lsp_types::Position) -> usize {
        position::offset(&self.lines, &self.text, position)
    }

    pub(super) fn location(&self, span: Span) -> Location {
        Location::new(self.uri.clone(), self.range(span))
    }

    pub(super) fn range(&self, span: Span) -> Range {
        position::range(&self.lines, &self.text, span)
    }

    pub(super) fn slice(&self, span: Span) -> &str {
        self.text.get(span.start()..span.end()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
