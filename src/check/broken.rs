//! What the declarations that did not parse would have declared, so that
//! checking the rest does not report their absence: no `unknown phase X`
//! when `phase X` is broken, no `missing-pipeline` when the `pipeline` line
//! is, no `unused-phase` when a workflow is.

use super::HashSet;
use crate::syntax::ast::{Broken, DeclKind};

/// The names (and kinds of name) that broken declarations may have defined.
#[derive(Debug, Default)]
pub(super) struct Hidden<'s> {
    /// `(kind, name)` of every broken declaration whose name is known.
    names: HashSet<(DeclKind, &'s str)>,
    /// Kinds with a broken declaration whose name, or contents, are unknown
    /// (any name of that kind may be missing).
    kinds: HashSet<DeclKind>,
    /// Whether any declaration of each kind is broken.
    any: HashSet<DeclKind>,
}

impl<'s> Hidden<'s> {
    pub(super) fn new(broken: &[Broken<'s>]) -> Self {
        let mut hidden = Self::default();
        for declaration in broken {
            let Some(kind) = declaration.kind else { continue };
            hidden.any.insert(kind);
            match declaration.name {
                Some(name) => {
                    hidden.names.insert((kind, name.name));
                }
                None => {
                    hidden.kinds.insert(kind);
                }
            }
        }
        hidden
    }

    /// Whether a broken declaration may have declared `name` as a `kind`.
    pub(super) fn may_declare(&self, kind: DeclKind, name: &str) -> bool {
        self.kinds.contains(&kind) || self.names.contains(&(kind, name))
    }

    /// Whether a declaration of `kind` is broken.
    pub(super) fn any(&self, kind: DeclKind) -> bool {
        self.any.contains(&kind)
    }

    /// Whether a broken declaration may have defined the variable `name`: a
    /// broken `var` of that name (or of no name), or any broken `env`, whose
    /// values are unknown.
    pub(super) fn may_define_variable(&self, name: &str) -> bool {
        self.any(DeclKind::Env) || self.may_declare(DeclKind::Var, name)
    }
}
