//! String literals: escapes, `"""` indentation stripping and `{{…}}`
//! interpolation, done on the raw source text so every reference keeps its
//! exact span.

use std::borrow::Cow;

use super::ast::{Part, Template, VarRef};
use super::{Code, Diagnostic, Span};

/// Lowers a string literal as written, quotes included; `start` is its
/// offset in the file. `""` then `"` never parses as a plain string, so a
/// literal that starts with `"""` is a multi-line one.
pub(super) fn literal<'s>(text: &'s str, start: usize, diagnostics: &mut Vec<Diagnostic>) -> Template<'s> {
    let span = Span::new(start, start + text.len());
    if let Some(body) = text.strip_prefix("\"\"\"") {
        let body = &body[..body.len() - 3];
        triple(body, start + 3, span, diagnostics)
    } else {
        plain(&text[1..text.len() - 1], start + 1, span, diagnostics)
    }
}

/// Lowers a plain `"…"` literal. `inner` is the text between the quotes and
/// `base` its offset in the file.
pub(super) fn plain<'s>(inner: &'s str, base: usize, span: Span, diagnostics: &mut Vec<Diagnostic>) -> Template<'s> {
    // Most strings are one piece of text: room for exactly one part makes
    // them one allocation, which `shrink_to_fit` leaves alone.
    let mut template = Template {
        parts: Vec::with_capacity(1),
        span,
    };
    scan(inner, base, true, &mut template.parts, diagnostics);
    template.parts.shrink_to_fit();
    template
}

/// Lowers a `"""…"""` literal: a first line that is blank is dropped, as is
/// a last line of only whitespace, and the indentation common to all
/// non-blank lines is removed. Escapes are not decoded in triple strings.
pub(super) fn triple<'s>(inner: &'s str, base: usize, span: Span, diagnostics: &mut Vec<Diagnostic>) -> Template<'s> {
    let mut lines: Vec<(usize, &'s str)> = Vec::new();
    let mut offset = 0;
    for line in inner.split('\n') {
        lines.push((offset, line));
        offset += line.len() + 1;
    }
    if lines.len() > 1 && lines[0].1.trim().is_empty() {
        lines.remove(0);
    }
    if lines.len() > 1 && lines.last().is_some_and(|(_, line)| line.trim().is_empty()) {
        lines.pop();
    }
    let indent = lines
        .iter()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(_, line)| line.len() - line.trim_start_matches([' ', '\t']).len())
        .min()
        .unwrap_or(0);

    let mut template = Template {
        parts: Vec::new(),
        span,
    };
    for (index, &(start, line)) in lines.iter().enumerate() {
        if index > 0 {
            push_text(&mut template.parts, Cow::Borrowed("\n"));
        }
        let line = line.strip_suffix('\r').unwrap_or(line);
        let cut = indent.min(line.len() - line.trim_start_matches([' ', '\t']).len());
        scan(
            &line[cut..],
            base + start + cut,
            false,
            &mut template.parts,
            diagnostics,
        );
    }
    template.parts.shrink_to_fit();
    template
}

/// Splits `text` into literal text and variable references. Text without
/// escapes stays borrowed from the source.
fn scan<'s>(text: &'s str, base: usize, escapes: bool, parts: &mut Vec<Part<'s>>, diagnostics: &mut Vec<Diagnostic>) {
    let bytes = text.as_bytes();
    // Start of the literal run not yet pushed.
    let mut run = 0;
    let mut i = 0;
    while let Some(found) = text[i..].find(|c| c == '{' || escapes && c == '\\') {
        i += found;
        if text[i..].starts_with("{{{{") {
            push_text(parts, Cow::Borrowed(&text[run..i + 2]));
            i += 4;
            run = i;
        } else if text[i..].starts_with("{{") {
            let Some(close) = text[i + 2..].find("}}") else {
                diagnostics.push(
                    Diagnostic::error(Code::BadInterpolation, "unclosed `{{` in string")
                        .label(Span::new(base + i, base + i + 2), "this `{{` has no `}}`")
                        .help("close it with `}}`, or write `{{{{` for a literal `{{`"),
                );
                break;
            };
            let inner = &text[i + 2..i + 2 + close];
            let name = inner.trim();
            let name_start = i + 2 + (inner.len() - inner.trim_start().len());
            let whole = Span::new(base + i, base + i + close + 4);
            match parse_reference(name, Span::new(base + name_start, base + name_start + name.len())) {
                Some(var) => {
                    push_text(parts, Cow::Borrowed(&text[run..i]));
                    parts.push(Part::Var(var));
                }
                None => diagnostics.push(
                    Diagnostic::error(
                        Code::BadInterpolation,
                        format!("`{{{{{name}}}}}` does not name a variable"),
                    )
                    .label(whole, "expected a name such as `version` or `service.path`")
                    .help("write `{{{{` for a literal `{{`"),
                ),
            }
            i += close + 4;
            run = i;
        } else if bytes[i] == b'\\' && i + 1 < text.len() {
            let decoded = match bytes[i + 1] {
                b'n' => "\n",
                b't' => "\t",
                b'r' => "\r",
                b'0' => "\0",
                b'"' => "\"",
                b'\\' => "\\",
                // Unknown escapes stay as written, for the shell.
                _ => {
                    i += 1;
                    continue;
                }
            };
            push_text(parts, Cow::Borrowed(&text[run..i]));
            push_text(parts, Cow::Borrowed(decoded));
            i += 2;
            run = i;
        } else {
            i += 1;
        }
    }
    push_text(parts, Cow::Borrowed(&text[run..]));
}

/// Appends text, joining it to the previous piece of text if there is one.
fn push_text<'s>(parts: &mut Vec<Part<'s>>, text: Cow<'s, str>) {
    if text.is_empty() {
        return;
    }
    if let Some(Part::Text(last)) = parts.last_mut() {
        last.to_mut().push_str(&text);
    } else {
        parts.push(Part::Text(text));
    }
}

/// `name` or `name.attr`, each an identifier as in the grammar.
fn parse_reference(text: &str, span: Span) -> Option<VarRef<'_>> {
    let (name, attr) = match text.split_once('.') {
        Some((name, attr)) => (name, Some(attr)),
        None => (text, None),
    };
    if !is_ident(name) || attr.is_some_and(|attr| !is_ident(attr)) {
        return None;
    }
    Some(VarRef { name, attr, span })
}

/// Whether `text` is an identifier: a letter or `_`, then letters, digits,
/// `_` or `-`.
#[must_use]
pub(crate) fn is_ident(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(template: &Template) -> Vec<String> {
        template
            .parts
            .iter()
            .map(|part| match part {
                Part::Text(text) => format!("T:{text}"),
                Part::Var(var) => format!("V:{}@{}..{}", var.display(), var.span.start(), var.span.end()),
            })
            .collect()
    }

    #[test]
    fn plain_strings_decode_escapes_and_find_references() {
        let mut diags = Vec::new();
        let t = plain(
            r#"a\"b {{ x }}-{{service.path}} {{{{lit"#,
            10,
            Span::default(),
            &mut diags,
        );
        assert!(diags.is_empty());
        assert_eq!(
            parts(&t),
            ["T:a\"b ", "V:x@18..19", "T:-", "V:service.path@25..37", "T: {{lit"]
        );
    }

    #[test]
    fn unknown_escapes_stay_for_the_shell() {
        let mut diags = Vec::new();
        let t = plain(r"s/\./x/ \\ \t \$HOME", 0, Span::default(), &mut diags);
        assert_eq!(parts(&t), ["T:s/\\./x/ \\ \t \\$HOME"]);
    }

    #[test]
    fn triple_strings_strip_common_indentation() {
        let mut diags = Vec::new();
        let inner = "\n    set -e\n      echo {{v}}\n  ";
        let t = triple(inner, 0, Span::default(), &mut diags);
        assert!(diags.is_empty());
        assert_eq!(parts(&t), ["T:set -e\n  echo ", "V:v@25..26"]);
    }

    #[test]
    fn bad_interpolations_are_reported() {
        let mut diags = Vec::new();
        plain("{{ }} {{a b}} {{open", 0, Span::default(), &mut diags);
        assert_eq!(diags.len(), 3);
        assert!(diags.iter().all(|d| d.code == Code::BadInterpolation));
    }
}
