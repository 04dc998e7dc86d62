//! The abstract syntax tree: what a file says, with a span for everything a
//! diagnostic may point at. Names are not resolved here; `check` does that.
//!
//! The tree borrows its text from the source (`'s`): a name or a piece of a
//! string without escapes is a slice of the file, not a copy. On a
//! 10,000-phase file this is most of the front end's memory.

use std::borrow::Cow;

use super::Span;

/// A name as written, with its place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ident<'s> {
    /// The name.
    pub name: &'s str,
    /// Where it is written.
    pub span: Span,
}

/// A parsed file, declarations of each kind in source order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ast<'s> {
    /// `pipeline NAME` declarations (exactly one is valid).
    pub pipelines: Vec<Ident<'s>>,
    /// Global `var NAME = "…"` declarations.
    pub vars: Vec<Assignment<'s>>,
    /// Global `secret NAME from …` declarations.
    pub secrets: Vec<SecretDecl<'s>>,
    /// `env` blocks.
    pub envs: Vec<EnvDecl<'s>>,
    /// `service` blocks.
    pub services: Vec<ServiceDecl<'s>>,
    /// `phase` blocks.
    pub phases: Vec<PhaseDecl<'s>>,
    /// `workflow` blocks.
    pub workflows: Vec<WorkflowDecl<'s>>,
    /// Declarations that did not parse (each has a `syntax` diagnostic), so
    /// `check` can keep quiet about what they would have declared.
    pub broken: Vec<Broken<'s>>,
}

impl<'s> Ast<'s> {
    /// Adds a declaration after those already in the tree.
    pub(crate) fn push(&mut self, item: Item<'s>) {
        match item {
            Item::Pipeline(name) => self.pipelines.push(name),
            Item::Var(var) => self.vars.push(var),
            Item::Env(env) => self.envs.push(env),
            Item::Secret(secret) => self.secrets.push(secret),
            Item::Service(service) => self.services.push(service),
            Item::Phase(phase) => self.phases.push(phase),
            Item::Workflow(workflow) => self.workflows.push(workflow),
            Item::Broken(broken) => self.broken.push(broken),
        }
    }
}

/// One top-level declaration, parsed or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item<'s> {
    /// `pipeline NAME`.
    Pipeline(Ident<'s>),
    /// `var NAME = "…"`.
    Var(Assignment<'s>),
    /// `env NAME { … }`.
    Env(EnvDecl<'s>),
    /// `secret NAME from env|file "…"`.
    Secret(SecretDecl<'s>),
    /// `service NAME { … }`.
    Service(ServiceDecl<'s>),
    /// `phase NAME { … }`.
    Phase(PhaseDecl<'s>),
    /// `workflow NAME { … }`.
    Workflow(WorkflowDecl<'s>),
    /// A declaration that did not parse.
    Broken(Broken<'s>),
}

/// A declaration the parser gave up on: what it could tell of it before the
/// syntax error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Broken<'s> {
    /// Its keyword, when the text starts with one (or a near miss of one,
    /// such as `pipline`).
    pub kind: Option<DeclKind>,
    /// The name after the keyword, when it was written before the error.
    pub name: Option<Ident<'s>>,
    /// From the declaration's first character to where parsing resumed.
    pub span: Span,
}

/// The kinds of declaration, by keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeclKind {
    /// `pipeline`
    Pipeline,
    /// `var`
    Var,
    /// `secret`
    Secret,
    /// `env`
    Env,
    /// `service`
    Service,
    /// `phase`
    Phase,
    /// `workflow`
    Workflow,
}

impl DeclKind {
    /// Every kind, as its keyword.
    pub(crate) const KEYWORDS: [(&'static str, Self); 7] = [
        ("pipeline", Self::Pipeline),
        ("var", Self::Var),
        ("secret", Self::Secret),
        ("env", Self::Env),
        ("service", Self::Service),
        ("phase", Self::Phase),
        ("workflow", Self::Workflow),
    ];

    /// The kind whose keyword is `word`.
    #[must_use]
    pub(crate) fn from_keyword(word: &str) -> Option<Self> {
        Self::KEYWORDS.iter().find(|(k, _)| *k == word).map(|&(_, kind)| kind)
    }
}

/// `name = "value"`: a global var, an env value or a service attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment<'s> {
    /// The name assigned.
    pub name: Ident<'s>,
    /// The value, which may interpolate.
    pub value: Template<'s>,
}

/// `env NAME [extends PARENT] { protected; assignments }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvDecl<'s> {
    /// The env's name.
    pub name: Ident<'s>,
    /// The parent it inherits values from.
    pub extends: Option<Ident<'s>>,
    /// `protected`: where it is written (the first time).
    pub protected: Option<Span>,
    /// `undo on failure`: where it is written (the first time).
    pub undo_on_failure: Option<Span>,
    /// Values set (or overridden) in this env.
    pub values: Vec<Assignment<'s>>,
    /// Secrets declared (or overridden) in this env.
    pub secrets: Vec<SecretDecl<'s>>,
}

/// `secret NAME from env "VAR"` or `secret NAME from file "PATH"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretDecl<'s> {
    /// The secret's name: the environment variable commands see.
    pub name: Ident<'s>,
    /// Where its value is read from when a run starts.
    pub from: SecretFrom,
    /// The variable's name or the file's path, as a string (`check`
    /// requires plain text, without `{{…}}`).
    pub source: Template<'s>,
    /// The whole declaration.
    pub span: Span,
}

/// Where a secret's value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretFrom {
    /// `from env "VAR"`: stagecraft's own environment variable `VAR`.
    Env,
    /// `from file "PATH"`: a file, relative to the pipeline file's directory.
    File,
}

impl SecretFrom {
    /// The keyword after `from`.
    #[must_use]
    pub const fn keyword(self) -> &'static str {
        match self {
            Self::Env => "env",
            Self::File => "file",
        }
    }
}

/// `service NAME { attributes; after OTHER, … }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceDecl<'s> {
    /// The service's name.
    pub name: Ident<'s>,
    /// Attributes, readable as `{{service.NAME}}`.
    pub attrs: Vec<Assignment<'s>>,
    /// Services whose instances come first within each per-service phase.
    pub after: Vec<Ident<'s>>,
}

/// `workflow NAME { phase … }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkflowDecl<'s> {
    /// The workflow's name.
    pub name: Ident<'s>,
    /// The phases it runs, as listed.
    pub phases: Vec<Ident<'s>>,
}

/// `phase NAME { clauses }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseDecl<'s> {
    /// The phase's name.
    pub name: Ident<'s>,
    /// Clauses in source order; `check` rejects repeats of single clauses.
    pub clauses: Vec<Clause<'s>>,
}

/// One clause of a phase, with the span of the whole clause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clause<'s> {
    /// What the clause says.
    pub kind: ClauseKind<'s>,
    /// From the keyword to the end of the clause.
    pub span: Span,
}

/// The clauses a phase may have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClauseKind<'s> {
    /// `for each service`.
    ForEach,
    /// `finally`: runs after every other instance of the workflow has
    /// ended, whatever happened.
    Finally,
    /// `after A, B[svc]`.
    After(Vec<Dependency<'s>>),
    /// `when EXPR` (boxed, as is `retry`'s rarer `backoff`, so that a
    /// clause stays 48 bytes).
    When(Box<Expr<'s>>),
    /// `run "…"`.
    Run(Template<'s>),
    /// `undo "…"`: undoes what `run` did, when a failed release is undone.
    Undo(Template<'s>),
    /// `timeout D`.
    Timeout(Raw<'s>),
    /// `retry N [backoff D]`.
    Retry {
        /// Extra attempts after the first.
        count: Raw<'s>,
        /// Pause between attempts.
        backoff: Option<Box<Raw<'s>>>,
    },
}

/// A token whose meaning `check` decides (a duration or a count), kept as
/// written so a bad one gets a diagnostic with help rather than a syntax error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raw<'s> {
    /// The text as written.
    pub text: &'s str,
    /// Where.
    pub span: Span,
}

/// `P` or `P[svc]` in an `after` clause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency<'s> {
    /// The phase depended on.
    pub phase: Ident<'s>,
    /// One instance of it, for `P[svc]` (boxed: the rarer form, and a
    /// dependency stays 40 bytes).
    pub service: Option<Box<Ident<'s>>>,
    /// The whole dependency as written.
    pub span: Span,
}

/// A string with interpolations: literal text and `{{name}}` references.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Template<'s> {
    /// The pieces, in order.
    pub parts: Vec<Part<'s>>,
    /// The whole string literal, quotes included.
    pub span: Span,
}

impl<'s> Template<'s> {
    /// The variable references in this template.
    pub fn refs(&self) -> impl Iterator<Item = &VarRef<'s>> {
        self.parts.iter().filter_map(|part| match part {
            Part::Var(var) => Some(var),
            Part::Text(_) => None,
        })
    }
}

/// A piece of a [`Template`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part<'s> {
    /// Literal text, escapes already decoded (borrowed when it had none).
    Text(Cow<'s, str>),
    /// `{{name}}` or `{{service.attr}}`.
    Var(VarRef<'s>),
}

/// A reference to a variable: `name`, or `service.attr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VarRef<'s> {
    /// The variable's name (`service` for `service.attr`).
    pub name: &'s str,
    /// The attribute, for `service.attr`.
    pub attr: Option<&'s str>,
    /// The name as written (without braces).
    pub span: Span,
}

impl VarRef<'_> {
    /// The reference as written: `name` or `service.attr`.
    #[must_use]
    pub fn display(&self) -> String {
        match &self.attr {
            Some(attr) => format!("{}.{attr}", self.name),
            None => self.name.to_owned(),
        }
    }
}

/// A `when` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr<'s> {
    /// A bare variable: truthy unless empty, `"0"` or `"false"`.
    Var(VarRef<'s>),
    /// A string literal (it may interpolate).
    Str(Template<'s>),
    /// `!EXPR`.
    Not(Box<Expr<'s>>),
    /// `A op B`.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Left operand.
        lhs: Box<Expr<'s>>,
        /// Right operand.
        rhs: Box<Expr<'s>>,
    },
}

impl<'s> Expr<'s> {
    /// Every variable reference in the expression, left to right (including
    /// those inside string literals).
    pub fn refs(&self) -> Vec<&VarRef<'s>> {
        let mut out = Vec::new();
        self.collect_refs(&mut out);
        out
    }

    fn collect_refs<'a>(&'a self, out: &mut Vec<&'a VarRef<'s>>) {
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
