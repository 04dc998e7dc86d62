//! Completion, which must work while the file is being typed and so does
//! not parse: a tolerant scan of the text finds the declared names and what
//! the cursor is after.
//!
//! The scan splits the text into words, strings, comments and punctuation
//! (an unterminated string ends at the end of its line), follows `{` and
//! `}` to know which block the cursor is in, and looks at the tokens just
//! before the cursor:
//!
//! | Before the cursor | Offered |
//! |---|---|
//! | `{{` inside a string (no `}}` yet) | variables and built-ins; after `{{service.`, attributes |
//! | `extends` | envs |
//! | `after` or `after a,` in a phase | phases; after `P[`, services |
//! | `after` or `after a,` in a service | services |
//! | anything inside a `workflow { … }` | phases |
//! | `when`, an operator, `(` or `!` in a phase | variables and built-ins |

use crate::check::BUILTINS;

/// What a completion item names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
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
}

/// The names declared in a text, found without parsing it.
#[derive(Debug, Default)]
struct Names<'t> {
    phases: Vec<&'t str>,
    services: Vec<&'t str>,
    envs: Vec<&'t str>,
    vars: Vec<&'t str>,
    attrs: Vec<&'t str>,
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

/// The completions at byte `offset` of `text`: each name once, in the order
/// declared, with what it is.
#[must_use]
pub fn complete(text: &str, offset: usize) -> Vec<(String, Item)> {
    let offset = crate::syntax::floor_char_boundary(text, offset);
    let mut scan = Scan::default();
    scan.run(text, offset);
    let names = scan.names(text);
    let mut out: Vec<(String, Item)> = Vec::new();
    let mut push = |list: &[&str], item: Item| {
        for name in list {
            if !out.iter().any(|(n, i)| n == name && *i == item) {
                out.push(((*name).to_owned(), item));
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
        Context::Envs => push(&names.envs, Item::Env),
        Context::Phases => push(&names.phases, Item::Phase),
        Context::Services => push(&names.services, Item::Service),
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
    Envs,
    Phases,
    Services,
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

    /// Declared names: the word after a declaration keyword at the top
    /// level, and `NAME =` inside env and service blocks.
    fn names(&self, _text: &'t str) -> Names<'t> {
        let mut names = Names::default();
        let mut stack: Vec<Block> = Vec::new();
        let mut header = Block::Other;
        for (index, &(_, token)) in self.tokens.iter().enumerate() {
            let next = self.tokens.get(index + 1).map(|t| t.1);
            match (token, next) {
                (Tok::Punct("{"), _) => stack.push(header),
                (Tok::Punct("}"), _) => {
                    stack.pop();
                    header = Block::Other;
                }
                (Tok::Word(keyword), Some(Tok::Word(name))) if stack.is_empty() => {
                    let (list, block) = match keyword {
                        "phase" => (Some(&mut names.phases), Block::Phase),
                        "service" => (Some(&mut names.services), Block::Service),
                        "env" => (Some(&mut names.envs), Block::Env),
                        "workflow" => (None, Block::Workflow),
                        "var" => (Some(&mut names.vars), Block::Other),
                        _ => (None, header),
                    };
                    if let Some(list) = list
                        && crate::syntax::is_ident(name)
                    {
                        list.push(name);
                    }
                    header = block;
                }
                (Tok::Word(name), Some(Tok::Punct("="))) if stack.len() == 1 => match stack[0] {
                    Block::Env => names.vars.push(name),
                    Block::Service => names.attrs.push(name),
                    _ => {}
                },
                _ => {}
            }
        }
        names
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

    fn at(marker: &str, shift: usize) -> Vec<String> {
        let offset = SRC.find(marker).unwrap() + shift;
        complete(SRC, offset).into_iter().map(|(name, _)| name).collect()
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
        assert!(at("\"p\"", 2).is_empty());
    }

    #[test]
    fn works_on_text_that_does_not_parse() {
        let text = "pipeline a\nphase x {}\nphase y {\n  after ";
        let names: Vec<_> = complete(text, text.len()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["x", "y"]);
        let text = "var v = \"\"\nphase y {\n  run \"{{";
        let names: Vec<_> = complete(text, text.len()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names[0], "v");
    }
}
