//! The abstract syntax tree: what a file says, with a span for everything a
//! diagnostic may point at. Names are not resolved here; `check` does that.

use super::Span;

/// A name as written, with its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    /// The name.
    pub name: String,
    /// Where it is written.
    pub span: Span,
}

/// A parsed file, declarations of each kind in source order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ast {
    /// `pipeline NAME` declarations (exactly one is valid).
    pub pipelines: Vec<Ident>,
    /// Global `var NAME = "…"` declarations.
    pub vars: Vec<Assignment>,
    /// `env` blocks.
    pub envs: Vec<EnvDecl>,
    /// `service` blocks.
    pub services: Vec<ServiceDecl>,
    /// `phase` blocks.
    pub phases: Vec<PhaseDecl>,
    /// `workflow` blocks.
    pub workflows: Vec<WorkflowDecl>,
}

/// `name = "value"`: a global var, an env value or a service attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// The name assigned.
    pub name: Ident,
    /// The value, which may interpolate.
    pub value: Template,
}

/// `env NAME [extends PARENT] { assignments }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvDecl {
    /// The env's name.
    pub name: Ident,
    /// The parent it inherits values from.
    pub extends: Option<Ident>,
    /// Values set (or overridden) in this env.
    pub values: Vec<Assignment>,
}

/// `service NAME { attributes; after OTHER, … }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceDecl {
    /// The service's name.
    pub name: Ident,
    /// Attributes, readable as `{{service.NAME}}`.
    pub attrs: Vec<Assignment>,
    /// Services whose instances come first within each per-service phase.
    pub after: Vec<Ident>,
}

/// `workflow NAME { phase … }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkflowDecl {
    /// The workflow's name.
    pub name: Ident,
    /// The phases it runs, as listed.
    pub phases: Vec<Ident>,
}

/// `phase NAME { clauses }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseDecl {
    /// The phase's name.
    pub name: Ident,
    /// Clauses in source order; `check` rejects repeats of single clauses.
    pub clauses: Vec<Clause>,
}

/// One clause of a phase, with the span of the whole clause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clause {
    /// What the clause says.
    pub kind: ClauseKind,
    /// From the keyword to the end of the clause.
    pub span: Span,
}

/// The clauses a phase may have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClauseKind {
    /// `for each service`.
    ForEach,
    /// `after A, B[svc]`.
    After(Vec<Dependency>),
    /// `when EXPR`.
    When(Expr),
    /// `run "…"`.
    Run(Template),
    /// `timeout D`.
    Timeout(Raw),
    /// `retry N [backoff D]`.
    Retry {
        /// Extra attempts after the first.
        count: Raw,
        /// Pause between attempts.
        backoff: Option<Raw>,
    },
}

/// A token whose meaning `check` decides (a duration or a count), kept as
/// written so a bad one gets a diagnostic with help rather than a syntax error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Raw {
    /// The text as written.
    pub text: String,
    /// Where.
    pub span: Span,
}

/// `P` or `P[svc]` in an `after` clause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    /// The phase depended on.
    pub phase: Ident,
    /// One instance of it, for `P[svc]`.
    pub service: Option<Ident>,
    /// The whole dependency as written.
    pub span: Span,
}

/// A string with interpolations: literal text and `{{name}}` references.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Template {
    /// The pieces, in order.
    pub parts: Vec<Part>,
    /// The whole string literal, quotes included.
    pub span: Span,
}

impl Template {
    /// The variable references in this template.
    pub fn refs(&self) -> impl Iterator<Item = &VarRef> {
        self.parts.iter().filter_map(|part| match part {
            Part::Var(var) => Some(var),
            Part::Text(_) => None,
        })
    }
}

/// A piece of a [`Template`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Literal text, escapes already decoded.
    Text(String),
    /// `{{name}}` or `{{service.attr}}`.
    Var(VarRef),
}

/// A reference to a variable: `name`, or `service.attr`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VarRef {
    /// The variable's name (`service` for `service.attr`).
    pub name: String,
    /// The attribute, for `service.attr`.
    pub attr: Option<String>,
    /// The name as written (without braces).
    pub span: Span,
}

impl VarRef {
    /// The reference as written: `name` or `service.attr`.
    #[must_use]
    pub fn display(&self) -> String {
        match &self.attr {
            Some(attr) => format!("{}.{attr}", self.name),
            None => self.name.clone(),
        }
    }
}

/// A `when` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// A bare variable: truthy unless empty, `"0"` or `"false"`.
    Var(VarRef),
    /// A string literal (it may interpolate).
    Str(Template),
    /// `!EXPR`.
    Not(Box<Expr>),
    /// `A op B`.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
}

impl Expr {
    /// Every variable reference in the expression, left to right (including
    /// those inside string literals).
    pub fn refs(&self) -> Vec<&VarRef> {
        let mut out = Vec::new();
        self.collect_refs(&mut out);
        out
    }

    fn collect_refs<'a>(&'a self, out: &mut Vec<&'a VarRef>) {
        match self {
            Self::Var(var) => out.push(var),
            Self::Str(template) => out.extend(template.refs()),
            Self::Not(inner) => inner.collect_refs(out),
            Self::Binary { lhs, rhs, .. } => {
                lhs.collect_refs(out);
                rhs.collect_refs(out);
            }
        }
    }
}

/// Binary operators of conditions, loosest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `||`
    Or,
    /// `&&`
    And,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}
