//! The pest binding and the lowering of pest's pairs into the [`Ast`].
//!
//! Conventions: one `lower_<rule>` function per grammar rule that becomes an
//! AST node; `Rule::describe` gives every rule the words used for it in a
//! syntax error, in a match without a catch-all so a new rule cannot be
//! added without them.

use pest::Parser as _;
use pest::error::InputLocation;
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};

use super::ast::{
    Assignment, Ast, BinaryOp, Clause, ClauseKind, Dependency, EnvDecl, Expr, Ident, PhaseDecl, Raw, SecretDecl,
    SecretFrom, ServiceDecl, Template, VarRef, WorkflowDecl,
};
use super::{Code, Diagnostic, Span, recover, template};
use error::syntax_error;

mod error;

/// The pest binding of `grammar/stagecraft.pest` (shared with the
/// formatter, which walks its tokens).
#[derive(pest_derive::Parser)]
#[grammar = "../grammar/stagecraft.pest"]
pub(super) struct Grammar;

impl Rule {
    /// How the rule is named in "expected …" messages.
    fn describe(self) -> &'static str {
        match self {
            Rule::EOI => "end of file",
            Rule::WHITESPACE | Rule::COMMENT | Rule::comment => "whitespace",
            Rule::file | Rule::next_items | Rule::item => "a declaration",
            Rule::pipeline_decl => "`pipeline`",
            Rule::var_decl => "`var`",
            Rule::env_decl => "`env`",
            Rule::extends => "`extends`",
            Rule::protected => "`protected`",
            Rule::secret_decl => "`secret`",
            Rule::kw_from => "`from`",
            Rule::secret_from => "`env` or `file`",
            Rule::assignment => "an assignment `name = \"value\"`",
            Rule::service_decl | Rule::kw_service => "`service`",
            Rule::service_after | Rule::after_clause => "`after`",
            Rule::workflow_decl => "`workflow`",
            Rule::phase_decl => "`phase`",
            Rule::for_each => "`for each service`",
            Rule::finally_clause => "`finally`",
            Rule::kw_each => "`each`",
            Rule::when_clause => "`when`",
            Rule::run_clause => "`run`",
            Rule::timeout_clause => "`timeout`",
            Rule::retry_clause => "`retry`",
            Rule::kw_backoff => "`backoff`",
            Rule::expr | Rule::operand => "a condition",
            Rule::infix => "an operator",
            Rule::op_or => "`||`",
            Rule::op_and => "`&&`",
            Rule::op_eq => "`==`",
            Rule::op_ne => "`!=`",
            Rule::op_not => "`!`",
            Rule::var_ref => "a variable",
            // `dependency` spells out the phase's name: it fails where `ident` would.
            Rule::ident | Rule::ident_char | Rule::dependency => "a name",
            Rule::duration => "a duration such as `30s`",
            Rule::count => "a number",
            Rule::string => "a string",
            Rule::close => "`}`",
            Rule::equals => "`=`",
        }
    }
}

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

/// Parses a whole file, a few declarations at a time. A declaration that does
/// not parse gets one `syntax` diagnostic (pest stops at the first place the
/// text leaves the grammar) and is listed in [`Ast::broken`]; parsing
/// resumes at the next line that starts a declaration (`recover`), so every
/// broken declaration of a file is reported at once.
pub fn parse(source: &str) -> Parsed<'_> {
    // Up to 64 declarations a parse (`next_items`): pest holds every token
    // of a parse in memory, and pays its setup once a parse. A batch stops
    // before a declaration that does not parse; the next starts at it.
    let mut lowering = Lowering::default();
    while lowering.base < source.len() {
        let rest = &source[lowering.base..];
        match Grammar::parse(Rule::next_items, rest) {
            Ok(mut pairs) => {
                let mut end = None;
                for item in pairs.next().into_iter().flat_map(Pair::into_inner) {
                    if item.as_rule() == Rule::EOI {
                        break;
                    }
                    end = Some(item.as_span().end());
                    lowering.item(item);
                }
                let Some(end) = end else { break };
                lowering.base += end;
            }
            Err(error) => {
                let base = lowering.base;
                lowering.diagnostics.push(syntax_error(source, base, &error));
                let start = recover::declaration_start(source, base);
                let at = base + error_offset(&error);
                let resume = recover::resume_at(source, start, at);
                let end = resume.unwrap_or(source.len());
                lowering.ast.broken.push(recover::broken(source, start, at, end));
                lowering.base = end;
            }
        }
    }
    Parsed {
        ast: lowering.ast,
        diagnostics: lowering.diagnostics,
    }
}

/// Where pest's error is, relative to the text it parsed.
pub(super) fn error_offset(error: &pest::error::Error<Rule>) -> usize {
    match error.location {
        InputLocation::Pos(pos) | InputLocation::Span((pos, _)) => pos,
    }
}

/// Lowers one declaration at a time. Spans from pest are relative to the
/// slice being parsed; `base` makes them offsets into the whole file.
#[derive(Default)]
struct Lowering<'s> {
    ast: Ast<'s>,
    diagnostics: Vec<Diagnostic>,
    base: usize,
}

impl<'s> Lowering<'s> {
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let span = pair.as_span();
        Span::new(self.base + span.start(), self.base + span.end())
    }

    fn item(&mut self, pair: Pair<'s, Rule>) {
        match pair.as_rule() {
            Rule::pipeline_decl => {
                let ident = self.ident(&last_inner(pair));
                self.ast.pipelines.push(ident);
            }
            Rule::var_decl => {
                let assignment = self.assignment(pair);
                self.ast.vars.push(assignment);
            }
            Rule::secret_decl => {
                let secret = self.secret(pair);
                self.ast.secrets.push(secret);
            }
            Rule::env_decl => {
                let env = self.env(pair);
                self.ast.envs.push(env);
            }
            Rule::service_decl => {
                let service = self.service(pair);
                self.ast.services.push(service);
            }
            Rule::phase_decl => {
                let phase = self.phase(pair);
                self.ast.phases.push(phase);
            }
            Rule::workflow_decl => {
                let mut inner = meaningful(pair);
                let name = self.ident(&inner.next().expect("workflow name"));
                let phases = inner.map(|p| self.ident(&p)).collect();
                self.ast.workflows.push(WorkflowDecl { name, phases });
            }
            // `EOI` closes the file.
            _ => {}
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
            values: Vec::new(),
            secrets: Vec::new(),
        };
        for part in inner {
            match part.as_rule() {
                Rule::extends => env.extends = Some(self.ident(&last_inner(part))),
                Rule::protected => _ = env.protected.get_or_insert(self.span(&part)),
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
            Rule::when_clause => ClauseKind::When(self.condition(inner.next().expect("condition"))),
            Rule::run_clause => ClauseKind::Run(self.string(&inner.next().expect("command"))),
            Rule::timeout_clause => ClauseKind::Timeout(self.raw(&inner.next().expect("duration"))),
            Rule::retry_clause => {
                let count = self.raw(&inner.next().expect("retry count"));
                let backoff = inner.find(|p| p.as_rule() == Rule::duration).map(|p| self.raw(&p));
                ClauseKind::Retry { count, backoff }
            }
            other => unreachable!("not a phase clause: {other:?}"),
        };
        Clause { kind, span }
    }

    /// A string's text between its quotes (the rule has no inner pairs).
    fn string(&mut self, pair: &Pair<'s, Rule>) -> Template<'s> {
        let span = self.span(pair);
        let text = pair.as_str();
        // `""` then `"` never parses as a plain string: this is a `"""` one.
        if let Some(body) = text.strip_prefix("\"\"\"") {
            let body = &body[..body.len() - 3];
            template::triple(body, span.start() + 3, span, &mut self.diagnostics)
        } else {
            let body = &text[1..text.len() - 1];
            template::plain(body, span.start() + 1, span, &mut self.diagnostics)
        }
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
            return Expr::Str(Template::default());
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
        let service = pair.into_inner().next().map(|p| self.ident(&p));
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

/// How many operators and parenthesised groups a condition may have: far more than any real one, few enough to recurse.
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
