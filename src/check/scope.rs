//! Variables in the scope of use: expanding templates and evaluating
//! conditions once an env, a phase and perhaps a service are chosen.
//!
//! A name resolves, innermost first: `--set`, the env (then its parents),
//! global `var`s, then built-ins. A value that interpolates is expanded in
//! this same scope, so `var image = "{{registry}}/app"` follows the env's
//! `registry`. `--set` values are taken literally.

use indexmap::IndexMap;

use super::HashSet;
use super::pipeline::{EnvId, PhaseId, Pipeline, ServiceId};
use crate::syntax::ast::{BinaryOp, Expr, Part, Template, VarRef};
use crate::syntax::{Code, Diagnostic};

/// Values that are not written in the file.
#[derive(Clone, Debug, Default)]
pub(crate) struct Builtins {
    /// `{{version}}`.
    pub version: String,
    /// `{{release}}`.
    pub release: String,
    /// `{{workflow}}`.
    pub workflow: String,
    /// `{{push}}`: `"true"` or `"false"`.
    pub push: bool,
    /// `{{outcome}}`: `success` or `failure` in a `finally` phase, unset
    /// elsewhere.
    pub outcome: Option<&'static str>,
}

/// Everything a variable may resolve against.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'a> {
    /// The pipeline.
    pub pipeline: &'a Pipeline<'a>,
    /// The chosen env.
    pub env: EnvId,
    /// `--set key=value` overrides.
    pub set: &'a IndexMap<String, String>,
    /// Built-in values.
    pub builtins: &'a Builtins,
    /// The phase being expanded, for `{{phase}}`.
    pub phase: Option<PhaseId>,
    /// The service of a per-service instance, for `{{service}}`.
    pub service: Option<ServiceId>,
}

/// What a name is bound to.
enum Binding<'a> {
    Literal(&'a str),
    Template(&'a Template<'a>),
}

impl<'a> Scope<'a> {
    /// Expands every `{{…}}` of `template`.
    ///
    /// # Errors
    ///
    /// The first reference that has no value here, or a cycle.
    pub(crate) fn expand(&self, template: &Template) -> Result<String, Diagnostic> {
        let mut out = String::new();
        self.expand_into(template, &mut out)?;
        Ok(out)
    }

    /// Evaluates a condition: `==`/`!=` compare text, a bare value is true
    /// unless it is empty, `"0"` or `"false"`.
    ///
    /// # Errors
    ///
    /// As [`Scope::expand`].
    pub(crate) fn eval(&self, expr: &Expr) -> Result<bool, Diagnostic> {
        Ok(truthy(&self.value(expr)?))
    }

    fn value(&self, expr: &Expr) -> Result<String, Diagnostic> {
        Ok(match expr {
            Expr::Var(var) => self.resolve(var)?,
            Expr::Str(template) => self.expand(template)?,
            Expr::Not(inner) => bool_text(!self.eval(inner)?),
            Expr::Binary { op, lhs, rhs } => bool_text(match op {
                BinaryOp::Or => self.eval(lhs)? || self.eval(rhs)?,
                BinaryOp::And => self.eval(lhs)? && self.eval(rhs)?,
                BinaryOp::Eq => self.value(lhs)? == self.value(rhs)?,
                BinaryOp::Ne => self.value(lhs)? != self.value(rhs)?,
            }),
        })
    }

    /// Expands `template` into `out`. Values that interpolate other values
    /// are expanded with an explicit stack, not recursion, so a long chain
    /// of variables cannot overflow the thread's stack.
    fn expand_into<'t>(&self, template: &'t Template<'t>, out: &mut String) -> Result<(), Diagnostic>
    where
        'a: 't,
    {
        // The template being expanded and its next part; `outer` holds the
        // templates it interrupted (empty, so no allocation, for the common
        // value without nested templates).
        let mut current: (&'t Template<'t>, usize) = (template, 0);
        let mut outer: Vec<(&'t Template<'t>, usize)> = Vec::new();
        // The addresses of the values being expanded, to catch one that
        // leads back to itself.
        let mut expanding: HashSet<usize> = HashSet::default();
        loop {
            let (now, index) = current;
            let Some(part) = now.parts.get(index) else {
                let Some(resumed) = outer.pop() else { break };
                expanding.remove(&(std::ptr::from_ref(now) as usize));
                current = resumed;
                continue;
            };
            current.1 += 1;
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Var(var) => match self.binding(var)? {
                    Binding::Literal(value) => out.push_str(value),
                    Binding::Template(inner) => {
                        if !expanding.insert(std::ptr::from_ref(inner) as usize) {
                            return Err(Diagnostic::error(
                                Code::VariableCycle,
                                format!("`{}` refers to itself", var.display()),
                            )
                            .label(var.span, "expanding this leads back here"));
                        }
                        outer.push(current);
                        current = (inner, 0);
                    }
                },
            }
        }
        Ok(())
    }

    fn resolve(&self, var: &VarRef<'_>) -> Result<String, Diagnostic> {
        match self.binding(var)? {
            Binding::Literal(value) => Ok(value.to_owned()),
            Binding::Template(template) => {
                let mut out = String::new();
                self.expand_into(template, &mut out)?;
                Ok(out)
            }
        }
    }

    fn binding(&self, var: &VarRef) -> Result<Binding<'a>, Diagnostic> {
        let pipeline = self.pipeline;
        if var.name == "service" {
            let Some(service_id) = self.service else {
                return Err(Diagnostic::error(
                    Code::ServiceOutsideForEach,
                    format!(
                        "`{}` is only defined in a phase that runs for each service",
                        var.display()
                    ),
                )
                .label(var.span, "used here outside a per-service phase")
                .help("add `for each service` to the phase that uses this value"));
            };
            let service = &pipeline.services[service_id];
            return match &var.attr {
                None => Ok(Binding::Literal(service.name.name)),
                Some(attr) => service.attrs.get(*attr).map(Binding::Template).ok_or_else(|| {
                    Diagnostic::error(Code::UnknownAttribute, format!("unknown service attribute `{attr}`")).label(
                        var.span,
                        format!("service `{}` does not set `{attr}`", service.name.name),
                    )
                }),
            };
        }
        let name = var.name;
        if let Some(value) = self.set.get(name) {
            return Ok(Binding::Literal(value));
        }
        for env in pipeline.env_chain(self.env) {
            if let Some(value) = env.values.get(name) {
                return Ok(Binding::Template(value));
            }
        }
        if let Some(value) = pipeline.vars.get(name) {
            return Ok(Binding::Template(value));
        }
        let builtin = match name {
            "env" => Some(pipeline.envs[self.env].name.name),
            "version" => Some(self.builtins.version.as_str()),
            "release" => Some(self.builtins.release.as_str()),
            "pipeline" => Some(pipeline.name),
            "workflow" => Some(self.builtins.workflow.as_str()),
            "phase" => self.phase.map(|id| pipeline.phases[id].name.name),
            "push" => Some(if self.builtins.push { "true" } else { "false" }),
            "outcome" => {
                return self.builtins.outcome.map(Binding::Literal).ok_or_else(|| {
                    Diagnostic::error(
                        Code::UndefinedVariable,
                        "`outcome` has a value only in a `finally` phase",
                    )
                    .label(var.span, "this phase is not `finally`")
                    .help("use `{{outcome}}` in a phase declared `finally`")
                });
            }
            _ => None,
        };
        builtin.map(Binding::Literal).ok_or_else(|| {
            let env = &pipeline.envs[self.env].name.name;
            Diagnostic::error(
                Code::UndefinedVariable,
                format!("variable `{name}` has no value in env `{env}`"),
            )
            .label(
                var.span,
                format!("not set in env `{env}`, its parents or a global `var`"),
            )
            .help(format!("set `{name} = \"…\"` in env `{env}`, or pass `--set {name}=…`"))
        })
    }
}

/// Whether a value counts as true in a condition.
#[must_use]
pub(crate) fn truthy(value: &str) -> bool {
    !(value.is_empty() || value == "0" || value == "false")
}

fn bool_text(value: bool) -> String {
    if value { "true" } else { "false" }.to_owned()
}
