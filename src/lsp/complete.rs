//! Completion, which must work while the file is being typed and so does
//! not parse. The names offered come from the document's analysis: the
//! declarations the checker resolved (of the declarations that parsed) and
//! the names of those that did not. What the cursor is after comes from a
//! tolerant scan of the declaration the cursor is in, since the declaration
//! being typed is usually the broken one.
//!
//! The scan splits the text into words, strings, comments and punctuation
//! (an unterminated string ends at the end of its line), follows `{` and
//! `}` to know which block the cursor is in, and looks at the tokens just
//! before the cursor:
//!
//! | Before the cursor | Offered |
//! |---|---|
//! | `{{` inside a string (no `}}` yet) | variables and built-ins; after `{{service.`, attributes |
//! | `$` or `${` inside a string | secrets (a command reads them from its environment) |
//! | `extends` | envs |
//! | `after` or `after a,` in a phase | phases; after `P[`, services |
//! | `after` or `after a,` in a service | services |
//! | anything inside a `workflow { … }` | phases |
//! | `when`, an operator, `(` or `!` in a phase | variables and built-ins (`outcome` too) |
//! | where a clause may start in a phase | the `finally` keyword |

use super::document::{Analysis, Document};
use crate::check::{BUILTINS, HashSet, Kind};

/// What a completion item names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Item {
    /// A phase.
    Phase,
    /// A service.
    Service,
    /// An env.
    Env,
    /// A global `var` or an env value.
    Var,
    /// A built-in variable.
    Builtin,
    /// A service attribute.
    Attr,
    /// A secret.
    Secret,
    /// A clause keyword (`finally`).
    Keyword,
}

/// The names declared in a document, in file order.
#[derive(Debug, Default)]
struct Names<'t> {
    phases: Vec<&'t str>,
    services: Vec<&'t str>,
    envs: Vec<&'t str>,
    vars: Vec<&'t str>,
    attrs: Vec<&'t str>,
    secrets: Vec<&'t str>,
}

impl<'t> Names<'t> {
    fn new(document: &'t Document, analysis: &Analysis) -> Self {
        let mut names = Self::default();
        let declared = analysis.resolution.names().iter().filter(|n| n.definition);
        let mut all: Vec<(Kind, crate::syntax::Span)> = declared.map(|n| (n.kind, n.span)).collect();
        all.extend(&analysis.broken);
        all.sort_by_key(|&(_, span)| span.start());
        for (kind, span) in all {
            let list = match kind {
                Kind::Phase => &mut names.phases,
                Kind::Service => &mut names.services,
                Kind::Env => &mut names.envs,
                Kind::Var => &mut names.vars,
                Kind::Attr => &mut names.attrs,
                Kind::Secret => &mut names.secrets,
                Kind::Pipeline | Kind::Workflow => continue,
            };
            list.push(document.slice(span));
        }
        names
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok<'t> {
    Word(&'t str),
    Str,
    Punct(&'t str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    Env,
    Service,
    Phase,
    Workflow,
    Other,
}

/// The completions at byte `offset` of a document: each name once, in the
/// order declared, with what it is.
pub(super) fn complete(document: &Document, analysis: &Analysis, offset: usize) -> Vec<(String, Item)> {
    let text = document.text.as_str();
    let offset = crate::syntax::floor_char_boundary(text, offset);
    // Only the declaration the cursor is in (it starts at the top level).
    let starts = &analysis.starts;
    let from = starts[..starts.partition_point(|&start| start < offset)]
        .last()
        .copied()
        .unwrap_or(0);
    let mut scan = Scan::default();
    scan.run(&text[from..], offset - from);
    let names = Names::new(document, analysis);
    let mut out: Vec<(String, Item)> = Vec::new();
    // A set, not a search of `out`: a file may declare 10,000 phases.
    let mut seen: HashSet<(String, Item)> = HashSet::default();
    let mut push = |list: &[&str], item: Item| {
        for &name in list {
            if seen.insert((name.to_owned(), item)) {
                out.push((name.to_owned(), item));
            }
        }
    };
    match scan.context {
        Context::Interpolation { attr: true } => push(&names.attrs, Item::Attr),
        Context::Interpolation { attr: false } | Context::Condition => {
            push(&names.vars, Item::Var);
            push(BUILTINS, Item::Builtin);
            push(&["service"], Item::Builtin);
        }
        Context::Secrets => push(&names.secrets, Item::Secret),
        Context::Envs => push(&names.envs, Item::Env),
        Context::Phases => push(&names.phases, Item::Phase),
        Context::Services => push(&names.services, Item::Service),
        Context::Clause => push(&["finally"], Item::Keyword),
        Context::Nothing => {}
    }
    out
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Context {
    #[default]
    Nothing,
    Interpolation {
        attr: bool,
    },
    Condition,
    Secrets,
    Envs,
    Phases,
    Services,
    /// Where a phase's clause may start.
    Clause,
}

#[derive(Default)]
struct Scan<'t> {
    /// Every token with its start, up to the end of the text.
    tokens: Vec<(usize, Tok<'t>)>,
    context: Context,
}

impl<'t> Scan<'t> {
    fn run(&mut self, text: &'t str, cursor: usize) {
        let bytes = text.as_bytes();
        let mut i = 0;
        let mut cursor_token = None;
        while i < bytes.len() {
            let start = i;
            match bytes[i] {
                b' ' | b'\t' | b'\r' | b'\n' => {
                    i += 1;
                    continue;
                }
                b'#' => {
                    i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
                    if start < cursor && cursor <= i {
                        cursor_token = Some(usize::MAX);
                    }
                    continue;
                }
                b'"' => {
                    let triple = text[i..].starts_with("\"\"\"");
                    i = if triple {
                        string_end(text, i + 3, true)
                    } else {
                        string_end(text, i + 1, false)
                    };
                    let closed = if triple {
                        i >= start + 6 && text[..i].ends_with("\"\"\"")
                    } else {
                        i >= start + 2 && text[..i].ends_with('"')
                    };
                    if start < cursor && (cursor < i || cursor == i && !closed) {
                        self.context = interpolation(&text[start..cursor]);
                        cursor_token = Some(usize::MAX);
                    }
                    self.tokens.push((start, Tok::Str));
                    continue;
                }
                c if c.is_ascii_alphanumeric() || c == b'_' => {
                    while i < bytes.len()
                        && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'-' | b'.'))
                    {
                        i += 1;
                    }
                    self.tokens.push((start, Tok::Word(&text[start..i])));
                }
                _ => {
                    let two = text.get(i..i + 2);
                    let len = if matches!(two, Some("==" | "!=" | "&&" | "||")) {
                        2
                    } else {
                        text[i..].chars().next().map_or(1, char::len_utf8)
                    };
                    i += len;
                    self.tokens.push((start, Tok::Punct(&text[start..i])));
                }
            }
            if start <= cursor && cursor <= i && cursor_token.is_none() {
                cursor_token = Some(self.tokens.len() - 1);
            }
        }
        if cursor_token == Some(usize::MAX) {
            return;
        }
        // The tokens before the one being typed (a word the cursor is in or
        // just after is the prefix being completed).
        let before = self.tokens.partition_point(|&(start, _)| start < cursor);
        let mut before = before;
        if let Some(&(start, Tok::Word(word))) = before.checked_sub(1).and_then(|i| self.tokens.get(i))
            && start + word.len() >= cursor
        {
            before -= 1;
        }
        self.context = self.context_before(before);
    }

    fn context_before(&self, before: usize) -> Context {
        let block = self.block_at(before);
        let previous = before.checked_sub(1).map(|i| self.tokens[i].1);
        if previous == Some(Tok::Word("extends")) {
            return Context::Envs;
        }
        match block {
            Block::Workflow => Context::Phases,
            Block::Phase | Block::Service => {
                if previous == Some(Tok::Punct("[")) && block == Block::Phase {
                    return Context::Services;
                }
                let list = match block {
                    Block::Phase => Context::Phases,
                    _ => Context::Services,
                };
                // `after` or `after a, b,` (or `after a[x],`).
                let mut i = before;
                let mut want_comma_or_after = true;
                while i > 0 {
                    i -= 1;
                    match self.tokens[i].1 {
                        Tok::Word("after") if want_comma_or_after => return list,
                        Tok::Punct(",") if want_comma_or_after => want_comma_or_after = false,
                        Tok::Punct("]" | "[") if !want_comma_or_after => {}
                        Tok::Word(_) if !want_comma_or_after => want_comma_or_after = true,
                        _ => break,
                    }
                }
                if block == Block::Phase
                    && matches!(
                        previous,
                        Some(Tok::Word("when") | Tok::Punct("==" | "!=" | "&&" | "||" | "!" | "("))
                    )
                {
                    return Context::Condition;
                }
                let argument = matches!(
                    previous,
                    Some(
                        Tok::Word("run" | "timeout" | "retry" | "backoff" | "for" | "each" | "when" | "after")
                            | Tok::Punct(_)
                    )
                );
                if block == Block::Phase && (!argument || previous == Some(Tok::Punct("{"))) {
                    return Context::Clause;
                }
                Context::Nothing
            }
            _ => Context::Nothing,
        }
    }

    /// The innermost block open before token `before`.
    fn block_at(&self, before: usize) -> Block {
        let mut stack = Vec::new();
        let mut header = Block::Other;
        for &(_, token) in &self.tokens[..before] {
            match token {
                Tok::Word("env") if stack.is_empty() => header = Block::Env,
                Tok::Word("service") if stack.is_empty() => header = Block::Service,
                Tok::Word("phase") if stack.is_empty() => header = Block::Phase,
                Tok::Word("workflow") if stack.is_empty() => header = Block::Workflow,
                Tok::Punct("{") => stack.push(header),
                Tok::Punct("}") => {
                    stack.pop();
                    header = Block::Other;
                }
                _ => {}
            }
        }
        stack.last().copied().unwrap_or(Block::Other)
    }
}

/// The end of a string whose text starts at `from` (one past its closing
/// quotes, or the end of the line or file when it is not closed).
fn string_end(text: &str, from: usize, triple: bool) -> usize {
    if triple {
        return text[from..].find("\"\"\"").map_or(text.len(), |n| from + n + 3);
    }
    let bytes = text.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            b'\n' => return i,
            _ => i += 1,
        }
    }
    text.len()
}

/// The context inside a string whose text up to the cursor is `before`.
fn interpolation(before: &str) -> Context {
    let word = before.trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_');
    if word.ends_with('$') || word.ends_with("${") {
        return Context::Secrets;
    }
    let Some(open) = before.rfind("{{") else {
        return Context::Nothing;
    };
    let inside = &before[open + 2..];
    if inside.contains("}}") || !inside.chars().all(|c| c.is_ascii_alphanumeric() || "_-. ".contains(c)) {
        return Context::Nothing;
    }
    Context::Interpolation {
        attr: inside.trim_start().starts_with("service."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "pipeline app\nvar image = \"x\"\nenv dev { replicas = \"1\" }\nenv prod extends  {}\n\
                       service api { path = \"p\" }\nservice web { after  }\n\
                       phase build { for each service run \"{{ }} {{service.}}\" }\n\
                       phase ship { after build[], bu when  }\nworkflow deploy { build  }\n";

    fn names(text: &str, offset: usize) -> Vec<String> {
        let uri = "file:///pipeline.stagecraft".parse().unwrap();
        let mut document = Document::new(uri, 1, text.to_owned());
        let (document, analysis) = document.analyzed().unwrap();
        complete(document, analysis, offset)
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }

    fn at(marker: &str, shift: usize) -> Vec<String> {
        names(SRC, SRC.find(marker).unwrap() + shift)
    }

    #[test]
    fn offers_names_where_they_fit() {
        assert_eq!(at("extends  {", 8), ["dev", "prod"]);
        assert_eq!(at("after  }", 6), ["api", "web"]);
        assert_eq!(
            at("{{ }}", 3)[..3],
            ["image".to_owned(), "replicas".to_owned(), "env".to_owned()]
        );
        assert_eq!(at("{{service.}}", 10), ["path"]);
        assert_eq!(at("build[]", 6), ["api", "web"]);
        assert_eq!(at(", bu when", 4), ["build", "ship"]);
        assert_eq!(at("when  }", 5)[0], "image");
        assert_eq!(at("deploy { build  }", 15), ["build", "ship"]);
        assert!(at("pipeline app", 9).is_empty());
        assert!(at("when  }", 5).contains(&"outcome".to_owned()));
        assert_eq!(at("build { for", 8), ["finally"]);
        assert_eq!(at("}}\" }\nphase ship", 4), ["finally"]);
        assert!(at("build { for each", 13).is_empty());
        assert!(at("\"p\"", 2).is_empty());
    }

    #[test]
    fn offers_secrets_after_a_dollar_never_in_braces() {
        let text = "pipeline a\nsecret token from env \"T\"\nenv dev { secret key from file \"k\" }\n\
                    phase p { run \"curl -H $to ${ {{\" }\n";
        let at = |marker: &str| names(text, text.find(marker).unwrap() + marker.len());
        assert_eq!(at("$to"), ["token", "key"]);
        assert_eq!(at("${"), ["token", "key"]);
        assert!(!at("{{").contains(&"token".to_owned()));
    }

    #[test]
    fn works_on_text_that_does_not_parse() {
        let text = "pipeline a\nphase x {}\nphase y {\n  after ";
        assert_eq!(names(text, text.len()), ["x", "y"]);
        let text = "var v = \"\"\nphase y {\n  run \"{{";
        assert_eq!(names(text, text.len())[0], "v");
    }
}
