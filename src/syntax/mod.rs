//! The pipeline language as text: the pest grammar binding, spans, the AST
//! and the diagnostic type every layer reports with.
//!
//! This layer knows nothing of graphs, environments or processes. It never
//! panics on any input: a declaration that does not parse is one `syntax`
//! [`Diagnostic`] and parsing resumes at the next declaration, and problems
//! inside string literals are collected without stopping the parse.

pub mod ast;
mod diagnostic;
mod errors;
mod fast;
mod format;
mod incremental;
mod lexical;
mod line_index;
mod parser;
mod rebase;
mod recover;
mod span;
mod template;

pub use diagnostic::{Code, Diagnostic, Label, Severity};
pub(crate) use diagnostic::{did_you_mean, suggest};
pub use format::format;
pub(crate) use incremental::{Tree, Unchanged};
pub use line_index::LineIndex;
pub use parser::{Parsed, decode, parse};
pub use span::Span;
pub(crate) use span::{floor_char_boundary, skip_trivia};
pub(crate) use template::is_ident;
