//! Which commands can be spawned without a shell: [`direct_words`].

/// Shell keywords and builtins that must not be spawned as programs: they
/// exist only in the shell, or a program of that name behaves differently.
const SHELL_WORDS: &[&str] = &[
    "!", ".", ":", "[", "[[", "{", "}", "alias", "bg", "break", "case", "cd", "command", "continue", "do", "done",
    "echo", "elif", "else", "esac", "eval", "exec", "exit", "export", "fc", "fg", "fi", "for", "function", "getopts",
    "hash", "if", "in", "jobs", "local", "printf", "pwd", "read", "readonly", "return", "select", "set", "shift",
    "source", "then", "time", "times", "trap", "type", "ulimit", "umask", "unalias", "unset", "until", "wait", "while",
];

/// The words of `command` when it can be spawned without a shell (see the
/// module docs), else `None`.
pub(super) fn direct_words(command: &str) -> Option<Vec<&str>> {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !command.chars().all(|c| c == ' ' || c == '\t' || safe(c)) {
        return None;
    }
    let words: Vec<&str> = command.split([' ', '\t']).filter(|word| !word.is_empty()).collect();
    let first = *words.first()?;
    if first.contains('=') || SHELL_WORDS.contains(&first) {
        return None;
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_are_spawned_directly() {
        assert_eq!(direct_words("true"), Some(vec!["true"]));
        assert_eq!(
            direct_words("  ./bin/migrate --pre\tprod "),
            Some(vec!["./bin/migrate", "--pre", "prod"])
        );
        assert_eq!(
            direct_words("docker build -t host:5000/app-api:1.2+b@x%y,z services/api --flag=1"),
            Some(vec![
                "docker",
                "build",
                "-t",
                "host:5000/app-api:1.2+b@x%y,z",
                "services/api",
                "--flag=1"
            ])
        );
    }

    #[test]
    fn shell_syntax_goes_through_sh() {
        for command in [
            "", "   ", "echo hi", "cd x", "exit 3", ": ok", "A=1 env", "a 'b'", "a \"b\"", "a $HOME", "a *", "a ?",
            "a; b", "a | b", "a & b", "a > f", "a < f", "a\nb", "a ~", "a #c", "a \\b", "(a)", "a {b}", "a [b]", "a !",
            "a `b`", "héllo", "a\rb", "set -e",
        ] {
            assert_eq!(direct_words(command), None, "{command:?}");
        }
    }
}
