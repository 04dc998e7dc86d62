//! What every name in a file is: declarations and references with their
//! spans, built from the AST of a file that parses. Definition, references,
//! hover and the outline read it.
//!
//! Names are looked up by kind and text, as `check` resolves them: global
//! `var`s and env values share one namespace (an env value overrides the
//! var of the same name), so a variable may have several definitions, and
//! `{{service.attr}}` refers to the attribute `attr` of every service.

use crate::syntax::Span;
use crate::syntax::ast::{Assignment, Ast, ClauseKind, Template, VarRef};

/// The kinds of names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `pipeline NAME`.
    Pipeline,
    /// A global `var` or an env value, and `{{name}}` or a condition's name.
    Var,
    /// An env, and `extends NAME`.
    Env,
    /// A service, `after NAME` in a service and `P[NAME]`.
    Service,
    /// A service attribute, and `{{service.NAME}}`.
    Attr,
    /// A phase, `after NAME`, `NAME[svc]` and a workflow's members.
    Phase,
    /// A workflow.
    Workflow,
}

impl Kind {
    /// The word for this kind in hovers and completion details.
    #[must_use]
    pub const fn word(self) -> &'static str {
        match self {
            Kind::Pipeline => "pipeline",
            Kind::Var => "variable",
            Kind::Env => "env",
            Kind::Service => "service",
            Kind::Attr => "service attribute",
            Kind::Phase => "phase",
            Kind::Workflow => "workflow",
        }
    }
}

/// One name in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Occurrence {
    /// What it names.
    pub kind: Kind,
    /// The name as written.
    pub span: Span,
    /// Whether this is a declaration (as opposed to a use).
    pub definition: bool,
}

/// A declaration for the outline, with its children (env values, service
/// attributes).
#[derive(Clone, Debug)]
pub struct Declaration {
    /// What it declares.
    pub kind: Kind,
    /// The name.
    pub name: Span,
    /// From the keyword to the closing `}` (or the value).
    pub span: Span,
    /// A short description (`extends staging`, `for each service`).
    pub detail: Option<String>,
    /// Values of an env, attributes of a service.
    pub children: Vec<Declaration>,
}

/// Every name of one parsed file.
#[derive(Clone, Debug, Default)]
pub struct Index {
    /// Sorted by position.
    pub occurrences: Vec<Occurrence>,
    /// Top-level declarations in file order.
    pub declarations: Vec<Declaration>,
}

impl Index {
    /// Indexes a file; `None` when it does not parse.
    #[must_use]
    pub fn build(text: &str) -> Option<Self> {
        let ast = crate::syntax::parse(text).ast;
        if !ast.broken.is_empty() {
            return None;
        }
        let mut builder = Builder {
            text,
            index: Self::default(),
        };
        builder.ast(&ast);
        let mut index = builder.index;
        index.occurrences.sort_by_key(|o| (o.span.start(), o.span.end()));
        index.declarations.sort_by_key(|d| d.span.start());
        Some(index)
    }

    /// The name at byte `offset` (a cursor just after a name counts).
    #[must_use]
    pub fn at(&self, offset: usize) -> Option<Occurrence> {
        let after = self.occurrences.partition_point(|o| o.span.start() <= offset);
        self.occurrences[..after]
            .iter()
            .rev()
            .take(2)
            .find(|o| o.span.contains(offset))
            .copied()
    }

    /// Every occurrence of the same name and kind as `of`.
    pub fn same<'a>(&'a self, text: &'a str, of: Occurrence) -> impl Iterator<Item = Occurrence> + 'a {
        let name = &text[of.span.start()..of.span.end()];
        self.occurrences
            .iter()
            .filter(move |o| o.kind == of.kind && &text[o.span.start()..o.span.end()] == name)
            .copied()
    }
}

struct Builder<'t> {
    text: &'t str,
    index: Index,
}

impl Builder<'_> {
    fn add(&mut self, kind: Kind, span: Span, definition: bool) {
        self.index.occurrences.push(Occurrence { kind, span, definition });
    }

    fn ast(&mut self, ast: &Ast<'_>) {
        for pipeline in &ast.pipelines {
            self.add(Kind::Pipeline, pipeline.span, true);
            self.declare(Kind::Pipeline, pipeline.span, pipeline.span.end(), None, Vec::new());
        }
        for var in &ast.vars {
            self.add(Kind::Var, var.name.span, true);
            self.template(&var.value);
            self.declare(Kind::Var, var.name.span, var.value.span.end(), None, Vec::new());
        }
        for env in &ast.envs {
            self.add(Kind::Env, env.name.span, true);
            let mut last = env.name.span.end();
            if let Some(parent) = env.extends {
                self.add(Kind::Env, parent.span, false);
                last = parent.span.end();
            }
            let children = self.assignments(Kind::Var, &env.values, &mut last);
            let end = self.block_end(last);
            let detail = env.extends.map(|parent| format!("extends {}", parent.name));
            self.declare(Kind::Env, env.name.span, end, detail, children);
        }
        for service in &ast.services {
            self.add(Kind::Service, service.name.span, true);
            let mut last = service.name.span.end();
            for after in &service.after {
                self.add(Kind::Service, after.span, false);
                last = last.max(after.span.end());
            }
            let children = self.assignments(Kind::Attr, &service.attrs, &mut last);
            let end = self.block_end(last);
            self.declare(Kind::Service, service.name.span, end, None, children);
        }
        for phase in &ast.phases {
            self.add(Kind::Phase, phase.name.span, true);
            let mut last = phase.name.span.end();
            let mut per_service = false;
            for clause in &phase.clauses {
                last = last.max(clause.span.end());
                match &clause.kind {
                    ClauseKind::ForEach => per_service = true,
                    ClauseKind::After(dependencies) => {
                        for dependency in dependencies {
                            self.add(Kind::Phase, dependency.phase.span, false);
                            if let Some(service) = dependency.service {
                                self.add(Kind::Service, service.span, false);
                            }
                        }
                    }
                    ClauseKind::When(expr) => {
                        for var in expr.refs() {
                            self.var_ref(var);
                        }
                    }
                    ClauseKind::Run(template) => self.template(template),
                    ClauseKind::Timeout(_) | ClauseKind::Retry { .. } => {}
                }
            }
            let end = self.block_end(last);
            let detail = per_service.then(|| "for each service".to_owned());
            self.declare(Kind::Phase, phase.name.span, end, detail, Vec::new());
        }
        for workflow in &ast.workflows {
            self.add(Kind::Workflow, workflow.name.span, true);
            let mut last = workflow.name.span.end();
            for phase in &workflow.phases {
                self.add(Kind::Phase, phase.span, false);
                last = phase.span.end();
            }
            let end = self.block_end(last);
            let count = workflow.phases.len();
            let detail = Some(format!("{count} phase{}", if count == 1 { "" } else { "s" }));
            self.declare(Kind::Workflow, workflow.name.span, end, detail, Vec::new());
        }
    }

    fn assignments(&mut self, kind: Kind, assignments: &[Assignment<'_>], last: &mut usize) -> Vec<Declaration> {
        let mut children = Vec::new();
        for assignment in assignments {
            self.add(kind, assignment.name.span, true);
            self.template(&assignment.value);
            *last = (*last).max(assignment.value.span.end());
            children.push(Declaration {
                kind,
                name: assignment.name.span,
                span: Span::new(assignment.name.span.start(), assignment.value.span.end()),
                detail: None,
                children: Vec::new(),
            });
        }
        children
    }

    fn template(&mut self, template: &Template<'_>) {
        for var in template.refs() {
            self.var_ref(var);
        }
    }

    fn var_ref(&mut self, var: &VarRef<'_>) {
        match var.attr {
            Some(attr) => {
                let end = var.span.end();
                self.add(Kind::Attr, Span::new(end - attr.len(), end), false);
            }
            // `service` alone is the service in scope, not a variable.
            None if var.name == "service" => {}
            None => self.add(Kind::Var, var.span, false),
        }
    }

    /// Records a top-level declaration whose keyword comes before `name`.
    fn declare(&mut self, kind: Kind, name: Span, end: usize, detail: Option<String>, children: Vec<Declaration>) {
        let start = keyword_start(self.text, name.start());
        self.index.declarations.push(Declaration {
            kind,
            name,
            span: Span::new(start, end.max(name.end())),
            detail,
            children,
        });
    }

    /// The end of a block whose last known token ends at `last`: one past
    /// its `}` (and its `{`, for an empty block).
    fn block_end(&self, last: usize) -> usize {
        let mut at = skip_trivia(self.text, last);
        if self.text.as_bytes().get(at) == Some(&b'{') {
            at = skip_trivia(self.text, at + 1);
        }
        if self.text.as_bytes().get(at) == Some(&b'}') {
            at + 1
        } else {
            last
        }
    }
}

/// The start of the keyword before the name at `name_start` (the word
/// before it, across whitespace), or the name's start.
fn keyword_start(text: &str, name_start: usize) -> usize {
    let before = text[..name_start].trim_end();
    let word = before.len()
        - before
            .trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            .len();
    if word == 0 { name_start } else { before.len() - word }
}

/// The offset of the next token at or after `from`, past whitespace and
/// comments.
pub(crate) fn skip_trivia(text: &str, from: usize) -> usize {
    let bytes = text.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'#' => i = text[i..].find('\n').map_or(bytes.len(), |n| i + n),
            _ => break,
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "pipeline app\nvar image = \"x\"\nenv dev { image = \"y\" }\nenv prod extends dev {}\n\
                       service api { path = \"p\" }\nservice web { after api }\n\
                       phase build { for each service run \"{{image}} {{service.path}}\" }\n\
                       phase ship { after build[api] when image == \"x\" }\nworkflow deploy { build ship }\n";

    #[test]
    fn finds_every_kind() {
        let index = Index::build(SRC).unwrap();
        let image = SRC.find("{{image}}").unwrap() + 3;
        let occurrence = index.at(image).unwrap();
        assert_eq!(occurrence.kind, Kind::Var);
        let all: Vec<_> = index.same(SRC, occurrence).collect();
        assert_eq!(all.iter().filter(|o| o.definition).count(), 2);
        assert_eq!(all.len(), 4);
        let api = SRC.find("build[api]").unwrap() + 7;
        assert_eq!(index.at(api).unwrap().kind, Kind::Service);
        assert_eq!(index.same(SRC, index.at(api).unwrap()).count(), 3);
        let path = SRC.find("service.path").unwrap() + 9;
        assert_eq!(index.at(path).unwrap().kind, Kind::Attr);
        let dev = SRC.find("extends dev").unwrap() + 9;
        assert_eq!(index.at(dev).unwrap().kind, Kind::Env);
        let outline: Vec<_> = index
            .declarations
            .iter()
            .map(|d| &SRC[d.span.start()..d.span.end()])
            .collect();
        assert_eq!(outline[2], "env dev { image = \"y\" }");
        assert_eq!(outline[3], "env prod extends dev {}");
        assert_eq!(outline[8], "workflow deploy { build ship }");
    }
}
