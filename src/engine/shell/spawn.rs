//! Starting a command's process: `std::process::Command`, set up so that
//! the standard library starts it with `posix_spawn(3)`, as ninja does,
//! rather than `fork` and `exec`.
//!
//! The standard library takes the `posix_spawn` path on Linux (glibc 2.29
//! or later, for the working directory) as long as the command sets no
//! user, group or `pre_exec` hook and its program is a path whenever the
//! environment sets `PATH`: the runner always passes a path (`/bin/sh`, or
//! a program it looked up itself). A new process group and the working
//! directory are spawn attributes; `SIGPIPE` goes back to its default in
//! the child.
//!
//! The child gets: the working directory, stdin from `/dev/null`, stdout
//! and stderr on the given pipe, a new process group (its pid), this
//! thread's signal mask (the executor blocks none) and `SIGPIPE` back to
//! its default (Rust ignores it in this process). Its environment is the
//! one this process had when the [`Spawner`] was made, with a run's secrets
//! ([`Spawner::with`]), plus the variables
//! of each spawn. Every other descriptor of this process is close-on-exec
//! (the standard library opens them so, and so does the runner).

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// What every spawn shares: the inherited environment, without the
/// variables each spawn sets, and with a run's secrets. Its `Debug` shows
/// no value.
pub(super) struct Spawner {
    environment: Vec<(OsString, OsString)>,
}

impl std::fmt::Debug for Spawner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Spawner({} variables)", self.environment.len())
    }
}

impl Spawner {
    /// Reads this process's environment, leaving out the variables named
    /// in `overridden` (each spawn sets them).
    pub(super) fn new(overridden: &[&str]) -> Self {
        let environment = std::env::vars_os()
            .filter(|(key, _)| !overridden.iter().any(|name| key == OsStr::new(name)))
            .collect();
        Self { environment }
    }

    /// This environment with `variables` set (over inherited ones of the
    /// same names).
    pub(super) fn with(&self, variables: &[(String, String)]) -> Self {
        let mut environment: Vec<(OsString, OsString)> = self
            .environment
            .iter()
            .filter(|(key, _)| !variables.iter().any(|(name, _)| key == OsStr::new(name)))
            .cloned()
            .collect();
        environment.extend(variables.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))));
        Self { environment }
    }

    /// Starts `program` with `args` (its `argv[0]` is `program`) in `dir`,
    /// with `variables` added to the environment and stdout and stderr on
    /// `output`.
    ///
    /// # Errors
    ///
    /// An argument, the directory or a variable holds a NUL byte (an
    /// `InvalidInput` error), or the spawn failed (the program cannot be
    /// executed, the directory does not exist, …): the error is the one
    /// `exec` or `chdir` gave.
    pub(super) fn spawn(
        &self,
        program: &Path,
        args: &[&OsStr],
        dir: &Path,
        variables: &[(impl AsRef<str>, impl AsRef<str>)],
        output: io::PipeWriter,
    ) -> io::Result<Child> {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(dir)
            .env_clear()
            .envs(self.environment.iter().map(|(key, value)| (key, value)))
            .envs(variables.iter().map(|(key, value)| (key.as_ref(), value.as_ref())))
            .stdin(Stdio::null())
            .stderr(output.try_clone()?)
            .stdout(output)
            .process_group(0);
        command.spawn()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overridden_variables_are_left_out() {
        let spawner = Spawner::new(&["PATH"]);
        assert!(!spawner.environment.iter().any(|(key, _)| key == "PATH"));
    }

    #[test]
    fn secrets_are_added_over_inherited_variables_and_never_shown() {
        let spawner = Spawner::new(&[]).with(&[("PATH".to_owned(), "hunter2".to_owned())]);
        let paths: Vec<_> = spawner.environment.iter().filter(|(key, _)| key == "PATH").collect();
        assert_eq!(paths, [&(OsString::from("PATH"), OsString::from("hunter2"))]);
        assert!(!format!("{spawner:?}").contains("hunter2"));
    }

    #[test]
    fn a_nul_byte_is_an_error_not_a_truncation() {
        let spawner = Spawner::new(&[]);
        let (_reader, writer) = io::pipe().unwrap();
        let error = spawner
            .spawn(
                Path::new("/bin/sh"),
                &[OsStr::new("-c"), OsStr::new("true\0false")],
                Path::new("/"),
                &[] as &[(&str, &str)],
                writer,
            )
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn the_child_leads_a_new_group_in_its_directory_with_the_variables() {
        let spawner = Spawner::new(&["STAGECRAFT_TEST"]);
        let (mut reader, writer) = io::pipe().unwrap();
        let mut child = spawner
            .spawn(
                Path::new("/bin/sh"),
                &[
                    OsStr::new("-c"),
                    OsStr::new("pwd; echo $STAGECRAFT_TEST; ps -o pgid= -p $$ >&2"),
                ],
                Path::new("/"),
                &[("STAGECRAFT_TEST", "v")],
                writer,
            )
            .unwrap();
        let mut text = String::new();
        io::Read::read_to_string(&mut reader, &mut text).unwrap();
        assert!(child.wait().unwrap().success());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..2], ["/", "v"]);
        if let Some(group) = lines.get(2) {
            // `ps` may be missing; when it is there, the group is the child's.
            assert_eq!(group.trim(), child.id().to_string());
        }
    }
}
