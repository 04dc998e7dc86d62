//! The outline of a file (document symbols): its declarations, with
//! their children (env values, service attributes), built from the tree of
//! the declarations that parsed, so a broken declaration does not hide the
//! others.

use crate::check::Kind;
use crate::syntax::ast::{Assignment, Ast, ClauseKind, SecretDecl};
use crate::syntax::{Span, skip_trivia};

/// A declaration for the outline, with its children (env values, service
/// attributes).
#[derive(Clone, Debug)]
pub(super) struct Declaration {
    /// What it declares.
    pub(super) kind: Kind,
    /// The name.
    pub(super) name: Span,
    /// From the keyword to the closing `}` (or the value).
    pub(super) span: Span,
    /// A short description (`extends staging`, `for each service`).
    pub(super) detail: Option<String>,
    /// Values of an env, attributes of a service.
    pub(super) children: Vec<Declaration>,
}

/// The declarations of `ast` in file order.
pub(super) fn outline(text: &str, ast: &Ast<'_>) -> Vec<Declaration> {
    let mut builder = Builder {
        text,
        declarations: Vec::new(),
    };
    builder.ast(ast);
    let mut declarations = builder.declarations;
    declarations.sort_by_key(|d| d.span.start());
    declarations
}

struct Builder<'t> {
    text: &'t str,
    declarations: Vec<Declaration>,
}

impl Builder<'_> {
    fn ast(&mut self, ast: &Ast<'_>) {
        for pipeline in &ast.pipelines {
            self.declare(Kind::Pipeline, pipeline.span, pipeline.span.end(), None, Vec::new());
        }
        for var in &ast.vars {
            self.declare(Kind::Var, var.name.span, var.value.span.end(), None, Vec::new());
        }
        for secret in &ast.secrets {
            self.declare(Kind::Secret, secret.name.span, secret.span.end(), None, Vec::new());
        }
        for env in &ast.envs {
            let mut last = env.extends.map_or(env.name.span, |parent| parent.span).end();
            let mut children = assignments(Kind::Var, &env.values, &mut last);
            children.extend(env.secrets.iter().map(|secret| secret_child(secret, &mut last)));
            children.sort_by_key(|c| c.span.start());
            let end = self.block_end(last);
            let detail = env.extends.map(|parent| format!("extends {}", parent.name));
            self.declare(Kind::Env, env.name.span, end, detail, children);
        }
        for service in &ast.services {
            let mut last = service.name.span.end();
            for after in &service.after {
                last = last.max(after.span.end());
            }
            let children = assignments(Kind::Attr, &service.attrs, &mut last);
            let end = self.block_end(last);
            self.declare(Kind::Service, service.name.span, end, None, children);
        }
        for phase in &ast.phases {
            let mut last = phase.name.span.end();
            let mut per_service = false;
            for clause in &phase.clauses {
                last = last.max(clause.span.end());
                per_service |= matches!(clause.kind, ClauseKind::ForEach);
            }
            let end = self.block_end(last);
            let detail = per_service.then(|| "for each service".to_owned());
            self.declare(Kind::Phase, phase.name.span, end, detail, Vec::new());
        }
        for workflow in &ast.workflows {
            let last = workflow.phases.last().map_or(workflow.name.span, |p| p.span).end();
            let end = self.block_end(last);
            let count = workflow.phases.len();
            let detail = Some(format!("{count} phase{}", if count == 1 { "" } else { "s" }));
            self.declare(Kind::Workflow, workflow.name.span, end, detail, Vec::new());
        }
    }

    /// Records a top-level declaration whose keyword comes before `name`.
    fn declare(&mut self, kind: Kind, name: Span, end: usize, detail: Option<String>, children: Vec<Declaration>) {
        let start = keyword_start(self.text, name.start());
        self.declarations.push(Declaration {
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

/// The children of an env or a service; `last` becomes the end of the
/// last value.
fn assignments(kind: Kind, assignments: &[Assignment<'_>], last: &mut usize) -> Vec<Declaration> {
    let mut children = Vec::new();
    for assignment in assignments {
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

/// A secret of an env, as a child of it; `last` becomes its end if later.
fn secret_child(secret: &SecretDecl<'_>, last: &mut usize) -> Declaration {
    *last = (*last).max(secret.span.end());
    Declaration {
        kind: Kind::Secret,
        name: secret.name.span,
        span: secret.span,
        detail: None,
        children: Vec::new(),
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

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "pipeline app\nvar image = \"x\"\nenv dev { image = \"y\" }\nenv prod extends dev {}\n\
                       service api { path = \"p\" }\nservice web { after api }\n\
                       phase build { for each service run \"{{image}} {{service.path}}\" }\n\
                       phase ship { after build[api] when image == \"x\" }\nworkflow deploy { build ship }\n";

    #[test]
    fn outlines_every_declaration() {
        let ast = crate::syntax::parse(SRC).ast;
        let outline: Vec<_> = outline(SRC, &ast)
            .iter()
            .map(|d| &SRC[d.span.start()..d.span.end()])
            .collect();
        assert_eq!(outline[2], "env dev { image = \"y\" }");
        assert_eq!(outline[3], "env prod extends dev {}");
        assert_eq!(outline[8], "workflow deploy { build ship }");
    }
}
