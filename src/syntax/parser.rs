//! The pest binding, the parse loop (one step per top-level declaration,
//! recovering after a broken one) and the lowering of pest's pairs into the
//! [`Ast`].
//!
//! Conventions: one method per grammar rule that becomes an AST node;
//! `Rule::describe` (in `errors`) gives every rule the words used for it in
//! a syntax error, in a match without a catch-all so a new rule cannot be
//! added without them.

use pest::Parser as _;
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};

use super::ast::{
    Assignment, Ast, BinaryOp, Clause, ClauseKind, Dependency, EnvDecl, Expr, Ident, Item, PhaseDecl, Raw, SecretDecl,
    SecretFrom, ServiceDecl, Template, VarRef, WorkflowDecl,
};
use super::errors::{error_offset, syntax_error};
use super::{Code, Diagnostic, Span, fast, recover, template};

/// The pest binding of `grammar/stagecraft.pest` (shared with the
/// formatter, which walks its tokens).
#[derive(pest_derive::Parser)]
#[grammar = "../grammar/stagecraft.pest"]
pub(super) struct Grammar;

/// The result of parsing: the AST of every declaration that parsed, and
/// every problem found (syntax errors and problems inside string literals).
#[derive(Debug)]
pub struct Parsed<'s> {
    /// The syntax tree; [`Ast::broken`] lists the declarations that did
    /// not parse.
    pub ast: Ast<'s>,
    /// Every problem found, in the order of the file: a `syntax` error for
    /// each broken declaration, and those found while lowering (bad
    /// interpolations, conditions too complex).
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed<'_> {
    /// Whether any diagnostic is an error.
    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Checks that a file's bytes are UTF-8 text, as the grammar requires.
///
/// # Errors
///
/// A syntax diagnostic at the first byte that is not UTF-8.
pub fn decode(bytes: &[u8]) -> Result<&str, Diagnostic> {
    std::str::from_utf8(bytes).map_err(|error| {
        let at = error.valid_up_to();
        Diagnostic::error(Code::Syntax, "the file is not UTF-8 text")
            .label(
                Span::new(at, at + error.error_len().unwrap_or(1)),
                "this byte is not UTF-8",
            )
            .help("save the file as UTF-8")
    })
}

/// Parses a whole file with pest alone (no fast lane), for the tests that
/// compare the two.
#[cfg(test)]
pub(super) fn parse_with_pest(source: &str) -> Parsed<'_> {
    let mut ast = Ast::default();
    let mut diagnostics = Vec::new();
    steps_with(source, 0, true, false, &mut |step| {
        ast.push(step.item);
        diagnostics.extend(step.diagnostics);
        true
    });
    Parsed { ast, diagnostics }
}

/// Parses a whole file, a few declarations at a time. A declaration that does
/// not parse gets one `syntax` diagnostic (pest stops at the first place the
/// text leaves the grammar) and is listed in [`Ast::broken`]; parsing
/// resumes at the next line that starts a declaration (`recover`), so every
/// broken declaration of a file is reported at once.
pub fn parse(source: &str) -> Parsed<'_> {
    let mut ast = Ast::default();
    let mut diagnostics = Vec::new();
    steps(source, 0, true, &mut |step| {
        ast.push(step.item);
        diagnostics.extend(step.diagnostics);
        true
    });
    Parsed { ast, diagnostics }
}

/// One step of a parse: a declaration, parsed or not.
pub(super) struct Step<'s> {
    /// Where the step began: where the one before ended (the blanks and
    /// comments before the declaration are part of the step).
    pub(super) base: usize,
    /// Where the next step begins: the end of the declaration, or where
    /// parsing resumes after a broken one.
    pub(super) next: usize,
    /// The declaration.
    pub(super) item: Item<'s>,
    /// The problems found in it, in order.
    pub(super) diagnostics: Vec<Diagnostic>,
}

/// Parses `source` from `base`, handing each step to `sink` until it says
/// stop (then returns where the next step would begin) or the text ends
/// (`None`). What a step holds depends only on the text from its base on, so
/// a parse may start at any step's base. `batch` parses up to 64
/// declarations a pest call (`next_items`): pest holds every token of a call
/// in memory and pays its setup once a call, and a batch stops before a
/// declaration that does not parse. Without it, one at a time. The
/// [`fast`] lane reads the common declarations first; what it leaves goes
/// to pest.
pub(super) fn steps<'s>(
    source: &'s str,
    base: usize,
    batch: bool,
    sink: &mut dyn FnMut(Step<'s>) -> bool,
) -> Option<usize> {
    steps_with(source, base, batch, true, sink)
}

/// [`steps`], with or without the [`fast`] lane (the tests compare both).
fn steps_with<'s>(
    source: &'s str,
    mut base: usize,
    batch: bool,
    fast: bool,
    sink: &mut dyn FnMut(Step<'s>) -> bool,
) -> Option<usize> {
    let rule = if batch { Rule::next_items } else { Rule::next_item };
    let mut lowering = Lowering::default();
    let mut lane = fast::Lane::new(source);
    while base < source.len() {
        if fast && let Some((item, next)) = lane.declaration(base) {
            let step = Step {
                base,
                next,
                item,
                diagnostics: std::mem::take(&mut lane.diagnostics),
            };
            base = next;
            if !sink(step) {
                return Some(base);
            }
            continue;
        }
        let step = match Grammar::parse(rule, &source[base..]) {
            Ok(mut pairs) => {
                lowering.base = base;
                let mut any = false;
                for item in pairs.next().into_iter().flat_map(Pair::into_inner) {
                    if item.as_rule() == Rule::EOI {
                        break;
                    }
                    any = true;
                    let next = lowering.base + item.as_span().end();
                    let item = lowering.item(item);
                    let step = Step {
                        base,
                        next,
                        item,
                        diagnostics: std::mem::take(&mut lowering.diagnostics),
                    };
                    base = next;
                    if !sink(step) {
                        return Some(base);
                    }
                }
                if any {
                    continue;
                }
                return None;
            }
            Err(error) => broken_step(source, base, &error),
        };
        base = step.next;
        if !sink(step) {
            return Some(base);
        }
    }
    None
}

/// The step of a declaration that does not parse: from `base` to the next
/// line that starts a declaration (or the end).
fn broken_step<'s>(source: &'s str, base: usize, error: &pest::error::Error<Rule>) -> Step<'s> {
    let diagnostic = syntax_error(source, base, error);
    let start = recover::declaration_start(source, base);
    let at = base + error_offset(error);
    let next = recover::resume_at(source, start, at).unwrap_or(source.len());
    Step {
        base,
        next,
        item: Item::Broken(recover::broken(source, start, at, next)),
        diagnostics: vec![diagnostic],
    }
}

/// Lowers one declaration at a time. Spans from pest are relative to the
/// slice being parsed; `base` makes them offsets into the whole file.
#[derive(Default)]
struct Lowering {
    diagnostics: Vec<Diagnostic>,
    base: usize,
}

impl<'s> Lowering {
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let span = pair.as_span();
        Span::new(self.base + span.start(), self.base + span.end())
    }

    fn item(&mut self, pair: Pair<'s, Rule>) -> Item<'s> {
        match pair.as_rule() {
            Rule::pipeline_decl => Item::Pipeline(self.ident(&last_inner(pair))),
            Rule::var_decl => Item::Var(self.assignment(pair)),
            Rule::env_decl => Item::Env(self.env(pair)),
            Rule::secret_decl => Item::Secret(self.secret(pair)),
            Rule::service_decl => Item::Service(self.service(pair)),
            Rule::phase_decl => Item::Phase(self.phase(pair)),
            Rule::workflow_decl => {
                let mut inner = meaningful(pair);
                let name = self.ident(&inner.next().expect("workflow name"));
                let phases = inner.map(|p| self.ident(&p)).collect();
                Item::Workflow(WorkflowDecl { name, phases })
            }
            other => unreachable!("not a declaration: {other:?}"),
        }
    }

    /// `var x = "…"` and `x = "…"`: an identifier and a string, after an optional keyword.
    fn assignment(&mut self, pair: Pair<'s, Rule>) -> Assignment<'s> {
        let mut inner = meaningful(pair);
        let name = self.ident(&inner.next().expect("assignment name"));
        let value = self.string(&inner.next().expect("assignment value"));
        Assignment { name, value }
    }

    fn env(&mut self, pair: Pair<'s, Rule>) -> EnvDecl<'s> {
        let mut inner = meaningful(pair);
        let name = self.ident(&inner.next().expect("env name"));
        let mut env = EnvDecl {
            name,
            extends: None,
            protected: None,
            undo_on_failure: None,
            values: Vec::new(),
            secrets: Vec::new(),
        };
        for part in inner {
            match part.as_rule() {
                Rule::extends => env.extends = Some(self.ident(&last_inner(part))),
                Rule::protected => _ = env.protected.get_or_insert(self.span(&part)),
                Rule::undo_on_failure => _ = env.undo_on_failure.get_or_insert(self.span(&part)),
                Rule::secret_decl => {
                    let secret = self.secret(part);
                    env.secrets.push(secret);
                }
                _ => env.values.push(self.assignment(part)),
            }
        }
        env
    }

    /// `secret NAME from env|file "…"`.
    fn secret(&mut self, pair: Pair<'s, Rule>) -> SecretDecl<'s> {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let name = self.ident(&inner.next().expect("secret name"));
        let from = match inner.nth(1).expect("secret source").as_str() {
            "file" => SecretFrom::File,
            _ => SecretFrom::Env,
        };
        let source = self.string(&inner.next().expect("secret location"));
        SecretDecl {
            name,
            from,
            source,
            span,
        }
    }

    fn service(&mut self, pair: Pair<'s, Rule>) -> ServiceDecl<'s> {
        let mut inner = meaningful(pair);
        let name = self.ident(&inner.next().expect("service name"));
        let mut service = ServiceDecl {
            name,
            attrs: Vec::new(),
            after: Vec::new(),
        };
        for part in inner {
            if part.as_rule() == Rule::service_after {
                service.after.extend(part.into_inner().map(|p| self.ident(&p)));
            } else {
                let attr = self.assignment(part);
                service.attrs.push(attr);
            }
        }
        service
    }

    fn phase(&mut self, pair: Pair<'s, Rule>) -> PhaseDecl<'s> {
        let mut inner = pair.into_inner();
        let name = self.ident(&inner.next().expect("phase name"));
        // Exactly as many clauses as pairs before `}` (`collect` would
        // start at four; phases are most of a large file's tree).
        let mut clauses = Vec::with_capacity(inner.len().saturating_sub(1));
        clauses.extend(
            inner
                .filter(|p| p.as_rule() != Rule::close)
                .map(|clause| self.clause(clause)),
        );
        PhaseDecl { name, clauses }
    }

    fn clause(&mut self, pair: Pair<'s, Rule>) -> Clause<'s> {
        // Clauses are compound-atomic, so their spans end at their last
        // token, except that a condition (non-atomic) also takes in the
        // blanks it skipped looking for another operator, and `after` the
        // blanks after its last dependency (both cut off here).
        let end = if pair.as_rule() == Rule::when_clause {
            pair.clone()
                .into_inner()
                .find(|p| p.as_rule() == Rule::expr)
                .map_or(pair.as_span().end(), |expr| condition_end(&expr))
        } else {
            pair.as_span().end()
        };
        let mut span = Span::new(self.base + pair.as_span().start(), self.base + end);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        let kind = match rule {
            Rule::for_each => ClauseKind::ForEach,
            Rule::finally_clause => ClauseKind::Finally,
            Rule::after_clause => {
                let after = exact(inner.map(|p| self.dependency(p)));
                span = Span::new(span.start(), after.last().map_or(span.end(), |d| d.span.end()));
                ClauseKind::After(after)
            }
            Rule::when_clause => ClauseKind::When(Box::new(self.condition(inner.next().expect("condition")))),
            Rule::run_clause => ClauseKind::Run(self.string(&inner.next().expect("command"))),
            Rule::undo_clause => ClauseKind::Undo(self.string(&inner.next().expect("undo command"))),
            Rule::timeout_clause => ClauseKind::Timeout(self.raw(&inner.next().expect("duration"))),
            Rule::retry_clause => {
                let count = self.raw(&inner.next().expect("retry count"));
                let backoff = inner
                    .find(|p| p.as_rule() == Rule::duration)
                    .map(|p| Box::new(self.raw(&p)));
                ClauseKind::Retry { count, backoff }
            }
            other => unreachable!("not a phase clause: {other:?}"),
        };
        Clause { kind, span }
    }

    /// A string's text between its quotes (the rule has no inner pairs).
    fn string(&mut self, pair: &Pair<'s, Rule>) -> Template<'s> {
        template::literal(pair.as_str(), self.span(pair).start(), &mut self.diagnostics)
    }

    /// A `when` condition, unless it has more than [`MAX_OPERATORS`]
    /// operators and parentheses (lowering, checking and evaluating recurse
    /// on its tree).
    fn condition(&mut self, pair: Pair<'s, Rule>) -> Expr<'s> {
        let operators = pair
            .clone()
            .into_inner()
            .flatten()
            .filter(|p| {
                matches!(
                    p.as_rule(),
                    Rule::expr | Rule::op_or | Rule::op_and | Rule::op_eq | Rule::op_ne | Rule::op_not
                )
            })
            .count();
        if operators > MAX_OPERATORS {
            self.diagnostics.push(
                Diagnostic::error(Code::Syntax, "condition too complex")
                    .label(
                        self.span(&pair),
                        format!("more than {MAX_OPERATORS} operators and parentheses"),
                    )
                    .help("simplify the condition; no real pipeline needs one this long"),
            );
            // Its span keeps the condition's place (the incremental parse
            // moves every span with its declaration).
            let span = self.span(&pair);
            return Expr::Str(Template {
                parts: Vec::new(),
                span,
            });
        }
        let pratt = PrattParser::new()
            .op(Op::infix(Rule::op_or, Assoc::Left))
            .op(Op::infix(Rule::op_and, Assoc::Left))
            .op(Op::infix(Rule::op_eq, Assoc::Left) | Op::infix(Rule::op_ne, Assoc::Left))
            .op(Op::prefix(Rule::op_not));
        self.climb(&pratt, pair)
    }

    /// Conditions by precedence climbing: `||` < `&&` < `==`/`!=` < `!`.
    fn climb(&mut self, pratt: &PrattParser<Rule>, pair: Pair<'s, Rule>) -> Expr<'s> {
        pratt
            .map_primary(|primary| match primary.as_rule() {
                Rule::var_ref => Expr::Var(self.var_ref(&primary)),
                Rule::string => Expr::Str(self.string(&primary)),
                Rule::expr => self.climb(pratt, primary),
                other => unreachable!("not an operand: {other:?}"),
            })
            .map_prefix(|_, operand| Expr::Not(Box::new(operand)))
            .map_infix(|lhs, op, rhs| Expr::Binary {
                op: match op.as_rule() {
                    Rule::op_or => BinaryOp::Or,
                    Rule::op_and => BinaryOp::And,
                    Rule::op_eq => BinaryOp::Eq,
                    _ => BinaryOp::Ne,
                },
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            })
            .parse(pair.into_inner())
    }

    fn ident(&self, pair: &Pair<'s, Rule>) -> Ident<'s> {
        Ident {
            name: pair.as_str(),
            span: self.span(pair),
        }
    }

    fn raw(&self, pair: &Pair<'s, Rule>) -> Raw<'s> {
        Raw {
            text: pair.as_str(),
            span: self.span(pair),
        }
    }

    /// `phase` or `phase[service]`: the phase's name is the text before `[`.
    fn dependency(&self, pair: Pair<'s, Rule>) -> Dependency<'s> {
        let span = self.span(&pair);
        let text = pair.as_str();
        let name = text.split_once('[').map_or(text, |(name, _)| name);
        let phase = Ident {
            name,
            span: Span::new(span.start(), span.start() + name.len()),
        };
        let service = pair.into_inner().next().map(|p| Box::new(self.ident(&p)));
        Dependency { phase, service, span }
    }

    fn var_ref(&self, pair: &Pair<'s, Rule>) -> VarRef<'s> {
        let text = pair.as_str();
        let (name, attr) = match text.split_once('.') {
            Some((name, attr)) => (name, Some(attr)),
            None => (text, None),
        };
        VarRef {
            name,
            attr,
            span: self.span(pair),
        }
    }
}

/// Where a condition really ends: after its last operand, and after any `)`
/// that closes groups there (pest's span of an `expr` includes the
/// whitespace it skipped looking for another operator).
fn condition_end(expr: &Pair<'_, Rule>) -> usize {
    let mut end = expr
        .clone()
        .into_inner()
        .flatten()
        .filter(|p| p.as_rule() != Rule::expr)
        .map(|p| p.as_span().end())
        .max()
        .unwrap_or(expr.as_span().start());
    let text = expr.get_input();
    while let Some(rest) = text.get(end..) {
        let trimmed = rest.trim_start();
        if !trimmed.starts_with(')') || end + (rest.len() - trimmed.len()) >= expr.as_span().end() {
            break;
        }
        end += rest.len() - trimmed.len() + 1;
    }
    end
}

/// How many operators and parenthesised groups a condition may have: far
/// more than any real condition, few enough that recursion stays shallow.
const MAX_OPERATORS: usize = 256;

/// The inner pairs that carry meaning (`}` and `=`, kept for errors, dropped).
fn meaningful(pair: Pair<'_, Rule>) -> impl Iterator<Item = Pair<'_, Rule>> {
    pair.into_inner()
        .filter(|p| !matches!(p.as_rule(), Rule::close | Rule::equals))
}

/// Collects into a `Vec` of exactly the iterator's length (`collect` starts at four).
fn exact<T>(items: impl ExactSizeIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::with_capacity(items.len());
    out.extend(items);
    out
}

fn last_inner(pair: Pair<'_, Rule>) -> Pair<'_, Rule> {
    pair.into_inner().last().expect("rule has an inner pair")
}
