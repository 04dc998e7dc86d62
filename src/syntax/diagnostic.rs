//! The one diagnostic type of stagecraft.
//!
//! Every layer of the front end reports problems as [`Diagnostic`] values;
//! the terminal (through miette), `check --format json` and the language
//! server all render the same value. Messages follow one convention:
//! lowercase, no trailing period, names in backticks ("phase `ship` depends
//! on unknown phase `compiel`"). Help suggests the nearest name.

use serde::Serialize;

use super::Span;

/// How bad a diagnostic is. Errors make a pipeline invalid (exit 2);
/// warnings do not, unless `--deny-warnings` is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The pipeline cannot be compiled.
    Error,
    /// The pipeline compiles, but something is probably wrong.
    Warning,
}

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// A stable diagnostic code. Codes never change meaning once released;
        /// each has an example in `spec/language.md` and a snapshot test
        /// under `tests/cases/`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($(#[$doc])* $variant,)*
        }

        impl Code {
            /// Every code, in documentation order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as printed, e.g. `stagecraft::unknown-phase`.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => concat!("stagecraft::", $name),)*
                }
            }
        }
    };
}

codes! {
    /// The file does not match the grammar.
    Syntax => "syntax",
    /// A `{{…}}` interpolation that is not closed or names nothing.
    BadInterpolation => "bad-interpolation",
    /// The file has no `pipeline NAME` declaration.
    MissingPipeline => "missing-pipeline",
    /// Two declarations of the same kind share a name.
    DuplicateName => "duplicate-name",
    /// A phase repeats a clause that may appear once.
    DuplicateClause => "duplicate-clause",
    /// `after` names a phase that does not exist.
    UnknownPhase => "unknown-phase",
    /// `after P[svc]` names an instance that does not exist.
    UnknownInstance => "unknown-instance",
    /// A service's `after` names a service that does not exist.
    UnknownService => "unknown-service",
    /// `env X extends Y` names an env that does not exist.
    UnknownEnv => "unknown-env",
    /// `{{name}}` or a condition names a variable defined nowhere.
    UnknownVariable => "unknown-variable",
    /// `{{service.attr}}` names an attribute a service lacks.
    UnknownAttribute => "unknown-attribute",
    /// A workflow lists a phase that does not exist.
    UnknownWorkflowMember => "unknown-workflow-member",
    /// `{{service}}` used outside a `for each service` phase.
    ServiceOutsideForEach => "service-outside-for-each",
    /// A phase or service depends on itself.
    SelfDependency => "self-dependency",
    /// `after` between a `finally` phase and one that is not.
    FinallyOrder => "finally-order",
    /// `undo` in a `finally` phase, which runs after every undo.
    UndoInFinally => "undo-in-finally",
    /// Phase instances depend on each other in a circle.
    DependencyCycle => "dependency-cycle",
    /// Environments extend each other in a circle.
    EnvCycle => "env-cycle",
    /// Variables interpolate each other in a circle.
    VariableCycle => "variable-cycle",
    /// `for each service` in a file that declares no service.
    NoServices => "no-services",
    /// A `timeout` or `backoff` that is not a duration.
    InvalidDuration => "invalid-duration",
    /// A `retry` count that does not fit.
    InvalidCount => "invalid-count",
    /// A secret's name, or where it comes from, is not usable.
    InvalidSecret => "invalid-secret",
    /// `{{name}}` names a secret, which commands read as `$name`.
    SecretInterpolation => "secret-interpolation",
    /// A variable has no value in the chosen environment (reported by `plan`).
    UndefinedVariable => "undefined-variable",
    /// A phase that no workflow lists (warning).
    UnusedPhase => "unused-phase",
    /// A workflow that lists no phase (warning).
    EmptyWorkflow => "empty-workflow",
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A place in the source with a short note on what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What is there, lowercase, e.g. "`deploy` depends on `build` here".
    pub message: String,
}

/// One problem found in one file.
///
/// The first label is the primary one: it is where an editor underlines and
/// where the JSON `line`/`column` of the diagnostic points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Stable code.
    pub code: Code,
    /// Error or warning.
    pub severity: Severity,
    /// Lowercase, no trailing period.
    pub message: String,
    /// Places, primary first.
    pub labels: Vec<Label>,
    /// What to do about it, if something useful can be said.
    pub help: Option<String>,
    /// Text that fixes the problem when it replaces the primary label's
    /// span (the name a typo most likely meant), if there is one: what an
    /// editor's quick fix applies. The help says the same in words.
    pub suggestion: Option<String>,
}

impl Diagnostic {
    /// A new error with no labels yet.
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            severity: Severity::Error,
            message: message.into(),
            labels: Vec::new(),
            help: None,
            suggestion: None,
        }
    }

    /// A new warning with no labels yet.
    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, message)
        }
    }

    /// Adds a label.
    #[must_use]
    pub fn label(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    /// Sets the help text.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the help text if there is one.
    #[must_use]
    pub fn maybe_help(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    /// "did you mean `x`?" as the help, and `x` as the suggestion, for the
    /// candidate closest to `name` if one is close enough to be a plausible
    /// typo (the primary label must be `name` as written).
    #[must_use]
    pub(crate) fn did_you_mean<'a>(mut self, name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Self {
        if let Some(best) = suggest(name, candidates) {
            self.help = Some(format!("did you mean `{best}`?"));
            self.suggestion = Some(best.to_owned());
        }
        self
    }

    /// Sets the replacement of the primary label's span that fixes the
    /// problem, if there is one.
    #[must_use]
    pub(crate) fn suggestion(mut self, replacement: Option<String>) -> Self {
        self.suggestion = replacement;
        self
    }

    /// Whether this is an error (as opposed to a warning).
    #[must_use]
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The primary span, if the diagnostic has a place.
    #[must_use]
    pub fn primary_span(&self) -> Option<Span> {
        self.labels.first().map(|label| label.span)
    }
}

/// "did you mean `x`?" for the candidate closest to `name`, if one is close
/// enough to be a plausible typo.
pub(crate) fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    suggest(name, candidates).map(|best| format!("did you mean `{best}`?"))
}

/// The candidate closest to `name` (Jaro-Winkler similarity at least 0.8,
/// ties broken by the first candidate given), if any.
pub(crate) fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        if candidate == name {
            continue;
        }
        let score = strsim::jaro_winkler(name, candidate);
        if score >= 0.8 && best.is_none_or(|(best_score, _)| score > best_score) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let names = ["build", "push", "rollout"];
        assert_eq!(suggest("biuld", names), Some("build"));
        assert_eq!(suggest("rollot", names), Some("rollout"));
        assert_eq!(suggest("zebra", names), None);
    }

    #[test]
    fn codes_are_unique_and_prefixed() {
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            assert!(code.as_str().starts_with("stagecraft::"));
            assert!(seen.insert(code.as_str()), "{code} twice");
        }
    }
}
