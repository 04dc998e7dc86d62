//! Starting a command's process with `posix_spawn(3)`, as ninja does,
//! through `nix`'s safe wrapper.
//!
//! The inherited environment is turned into `KEY=VALUE` strings once per
//! [`Spawner`], and `/dev/null` is opened once: a spawn only builds the
//! job's variables and its arguments. (`std::process::Command` rebuilds
//! the whole environment into two maps and a string array at every spawn
//! when any variable is set, and opens `/dev/null` and duplicates the
//! output pipe in this process: with the environment of a `cargo` build,
//! most of the executor's own time per command.)
//!
//! The child gets: stdin from `/dev/null`, stdout and stderr on the given
//! pipe, a new process group (its pid), an empty signal mask and `SIGPIPE`
//! back to its default (Rust ignores it in this process). Its environment
//! is the one this process had when the [`Spawner`] was made, with a run's
//! secrets ([`Spawner::with`]), plus the variables of each spawn. Every
//! other descriptor of this process is close-on-exec (the standard library
//! opens them so, and so does the runner).
//!
//! **The working directory.** `nix` has no safe call for the spawn action
//! that changes directory (`posix_spawn_file_actions_addchdir_np`). A
//! command whose directory is this process's own (`.` or empty: what the
//! CLI passes when the pipeline file is in the current directory) needs
//! none; for any other directory the spawn goes through
//! `std::process::Command`, which takes the same `posix_spawn` path with
//! the directory as a spawn action.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags, posix_spawn};
use nix::sys::signal::{SigSet, Signal};
use rustix::process::Pid;

/// The standard streams, as file descriptors in the child.
const STDIN: i32 = 0;
const STDOUT: i32 = 1;
const STDERR: i32 = 2;

/// What every spawn shares: the inherited environment, without the
/// variables each spawn sets, with a run's secrets, and `/dev/null`. Its
/// `Debug` shows no value.
pub(super) struct Spawner {
    /// `KEY=VALUE`, for `posix_spawn`.
    environment: Vec<CString>,
    /// `/dev/null`, for the children's stdin; `None` if it could not be
    /// opened (each spawn then fails with the error of opening it again).
    null: Option<File>,
    /// The name of a secret added with a NUL byte in its name or value
    /// (which no environment can hold): every spawn then fails naming it,
    /// rather than run the command without it.
    refused: Option<String>,
}

impl std::fmt::Debug for Spawner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Spawner({} variables)", self.environment.len())
    }
}

impl Spawner {
    /// Reads this process's environment, leaving out the variables named
    /// in `overridden` (each spawn sets them) and any entry a C string
    /// cannot hold, and opens `/dev/null`.
    pub(super) fn new(overridden: &[&str]) -> Self {
        let environment = std::env::vars_os()
            .filter(|(key, _)| !overridden.iter().any(|name| key == OsStr::new(name)))
            .filter_map(|(key, value)| entry(key.as_bytes(), value.as_bytes()))
            .collect();
        Self {
            environment,
            null: File::open("/dev/null").ok(),
            refused: None,
        }
    }

    /// This environment with `variables` set (over inherited ones of the
    /// same names). A variable with a NUL byte cannot be set: every spawn
    /// of the result fails, naming it.
    pub(super) fn with(&self, variables: &[(String, String)]) -> Self {
        let mut environment: Vec<CString> = self
            .environment
            .iter()
            .filter(|entry| {
                let key = entry.as_bytes().split(|&b| b == b'=').next().unwrap_or_default();
                !variables.iter().any(|(name, _)| key == name.as_bytes())
            })
            .cloned()
            .collect();
        let mut refused = self.refused.clone();
        for (key, value) in variables {
            match entry(key.as_bytes(), value.as_bytes()) {
                Some(entry) => environment.push(entry),
                None => {
                    refused.get_or_insert_with(|| key.clone());
                }
            }
        }
        Self {
            environment,
            null: self.null.as_ref().and_then(|null| null.try_clone().ok()),
            refused,
        }
    }

    /// Starts `program` with `args` (its `argv[0]` is `program`) in `dir`,
    /// with `variables` added to the environment and stdout and stderr on
    /// `output`, and returns its pid. `output` is closed here once the
    /// child has its copies.
    ///
    /// # Errors
    ///
    /// An argument, the directory, a variable or a secret given to
    /// [`with`](Self::with) holds a NUL byte (an `InvalidInput` error), or the spawn failed (the program cannot be
    /// executed, the directory does not exist, …): the error is the one
    /// `exec` or `chdir` gave.
    pub(super) fn spawn(
        &self,
        program: &Path,
        args: &[&OsStr],
        dir: &Path,
        variables: &[(impl AsRef<str>, impl AsRef<str>)],
        output: io::PipeWriter,
    ) -> io::Result<Pid> {
        if let Some(name) = &self.refused {
            return Err(nul_error(&format!("the secret `{}`", name.escape_debug())));
        }
        if !is_current(dir) {
            return self.spawn_in(program, args, dir, variables, output);
        }
        let Some(null) = &self.null else {
            let error = File::open("/dev/null").err();
            return Err(error.unwrap_or_else(|| io::Error::other("cannot open `/dev/null`")));
        };
        let words = std::iter::once(program.as_os_str())
            .chain(args.iter().copied())
            .map(|arg| CString::new(arg.as_bytes()).map_err(|_| nul_error("the command")))
            .collect::<io::Result<Vec<_>>>()?;
        // The variables as `KEY=VALUE\0` entries one after another in one
        // buffer (one allocation rather than one per variable).
        let mut block = Vec::with_capacity(
            variables
                .iter()
                .map(|(k, v)| k.as_ref().len() + v.as_ref().len() + 2)
                .sum(),
        );
        let mut ends = Vec::with_capacity(variables.len());
        for (key, value) in variables {
            block.extend_from_slice(key.as_ref().as_bytes());
            block.push(b'=');
            block.extend_from_slice(value.as_ref().as_bytes());
            block.push(0);
            ends.push(block.len());
        }
        let mut envp: Vec<&CStr> = Vec::with_capacity(self.environment.len() + variables.len());
        envp.extend(self.environment.iter().map(CString::as_c_str));
        let mut start = 0;
        for end in ends {
            // Fails on a NUL byte inside the key or the value.
            envp.push(CStr::from_bytes_with_nul(&block[start..end]).map_err(|_| nul_error("a variable"))?);
            start = end;
        }
        let mut actions = PosixSpawnFileActions::init()?;
        actions.add_dup2(null.as_raw_fd(), STDIN)?;
        actions.add_dup2(output.as_raw_fd(), STDOUT)?;
        actions.add_dup2(output.as_raw_fd(), STDERR)?;
        let pid = posix_spawn(words[0].as_c_str(), &actions, &attributes()?, &words, &envp)?;
        drop(output);
        // A pid from a successful spawn is positive.
        Pid::from_raw(pid.as_raw()).ok_or_else(|| io::Error::other("`posix_spawn` gave no pid"))
    }

    /// The spawn of a command that runs in another directory than this
    /// process: `std::process::Command` (see the module docs).
    fn spawn_in(
        &self,
        program: &Path,
        args: &[&OsStr],
        dir: &Path,
        variables: &[(impl AsRef<str>, impl AsRef<str>)],
        output: io::PipeWriter,
    ) -> io::Result<Pid> {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(dir)
            .env_clear()
            .envs(self.environment.iter().filter_map(|entry| split(entry)))
            .envs(variables.iter().map(|(key, value)| (key.as_ref(), value.as_ref())))
            .stdin(Stdio::null())
            .stderr(output.try_clone()?)
            .stdout(output)
            .process_group(0);
        let child = command.spawn()?;
        // Reaped by pid, like a child of `posix_spawn`.
        Ok(Pid::from_child(&child))
    }
}

/// The spawn attributes: a new process group, an empty signal mask and
/// `SIGPIPE` back to its default.
fn attributes() -> io::Result<PosixSpawnAttr> {
    let mut attributes = PosixSpawnAttr::init()?;
    attributes.set_flags(
        PosixSpawnFlags::POSIX_SPAWN_SETPGROUP
            | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF
            | PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK,
    )?;
    // Group 0: the child's own pid.
    attributes.set_pgroup(nix::unistd::Pid::from_raw(0))?;
    let mut default = SigSet::empty();
    default.add(Signal::SIGPIPE);
    attributes.set_sigdefault(&default)?;
    attributes.set_sigmask(&SigSet::empty())?;
    Ok(attributes)
}

/// Whether `dir` is this process's current directory as written: `.` or
/// empty.
fn is_current(dir: &Path) -> bool {
    dir.as_os_str().is_empty() || dir == Path::new(".")
}

/// `KEY=VALUE` as a C string, or `None` if either holds a NUL byte.
fn entry(key: &[u8], value: &[u8]) -> Option<CString> {
    let mut bytes = Vec::with_capacity(key.len() + value.len() + 1);
    bytes.extend_from_slice(key);
    bytes.push(b'=');
    bytes.extend_from_slice(value);
    CString::new(bytes).ok()
}

/// The key and value of a `KEY=VALUE` entry.
fn split(entry: &CString) -> Option<(&OsStr, &OsStr)> {
    let bytes = entry.as_bytes();
    let equals = bytes.iter().position(|&byte| byte == b'=')?;
    Some((
        OsStr::from_bytes(&bytes[..equals]),
        OsStr::from_bytes(&bytes[equals + 1..]),
    ))
}

fn nul_error(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{what} contains a NUL byte"))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use rustix::process::{WaitOptions, waitpid};

    use super::*;

    /// Runs `script` with `sh -c` in `dir`; its output, and whether it
    /// exited 0.
    fn run(spawner: &Spawner, dir: &Path, script: &str, variables: &[(&str, &str)]) -> (String, Pid, bool) {
        let (mut reader, writer) = io::pipe().unwrap();
        let pid = spawner
            .spawn(
                Path::new("/bin/sh"),
                &[OsStr::new("-c"), OsStr::new(script)],
                dir,
                variables,
                writer,
            )
            .unwrap();
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        let (_, status) = waitpid(Some(pid), WaitOptions::empty()).unwrap().unwrap();
        (text, pid, status.exit_status() == Some(0))
    }

    #[test]
    fn overridden_variables_are_left_out() {
        let spawner = Spawner::new(&["PATH"]);
        assert!(
            !spawner
                .environment
                .iter()
                .any(|entry| entry.as_bytes().starts_with(b"PATH="))
        );
    }

    #[test]
    fn secrets_are_added_over_inherited_variables_and_never_shown() {
        let spawner = Spawner::new(&[]).with(&[("PATH".to_owned(), "hunter2".to_owned())]);
        let paths: Vec<_> = spawner
            .environment
            .iter()
            .filter(|entry| entry.as_bytes().starts_with(b"PATH="))
            .collect();
        assert_eq!(paths, [&CString::new("PATH=hunter2").unwrap()]);
        assert!(!format!("{spawner:?}").contains("hunter2"));
    }

    #[test]
    fn a_nul_byte_is_an_error_not_a_truncation() {
        let spawner = Spawner::new(&[]);
        for dir in [".", "/"] {
            let (_reader, writer) = io::pipe().unwrap();
            let error = spawner
                .spawn(
                    Path::new("/bin/sh"),
                    &[OsStr::new("-c"), OsStr::new("true\0false")],
                    Path::new(dir),
                    &[] as &[(&str, &str)],
                    writer,
                )
                .unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "in {dir}");
        }
    }

    #[test]
    fn a_secret_with_a_nul_byte_fails_every_spawn_never_runs_without_it() {
        let spawner = Spawner::new(&[]).with(&[("token".to_owned(), "a\0b".to_owned())]);
        for dir in [".", "/"] {
            let (_reader, writer) = io::pipe().unwrap();
            let no_args: [&OsStr; 0] = [];
            let variables: [(&str, &str); 0] = [];
            let error = spawner
                .spawn(Path::new("/bin/true"), &no_args, Path::new(dir), &variables, writer)
                .unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
            assert_eq!(error.to_string(), "the secret `token` contains a NUL byte");
        }
    }

    #[test]
    fn a_nul_byte_in_a_variable_is_an_error() {
        let spawner = Spawner::new(&[]);
        for variables in [[("OK", "v"), ("A\0B", "v")], [("OK", "v"), ("A", "v\0w")]] {
            for dir in [".", "/"] {
                let (_reader, writer) = io::pipe().unwrap();
                let error = spawner
                    .spawn(
                        Path::new("/bin/sh"),
                        &[OsStr::new("-c"), OsStr::new("true")],
                        Path::new(dir),
                        &variables,
                        writer,
                    )
                    .unwrap_err();
                assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{variables:?} in {dir}");
            }
        }
    }

    #[test]
    fn a_program_that_cannot_run_is_the_error_of_exec() {
        let spawner = Spawner::new(&[]);
        for dir in [".", "/"] {
            let (_reader, writer) = io::pipe().unwrap();
            let error = spawner
                .spawn(
                    Path::new("/nonexistent/program"),
                    &[],
                    Path::new(dir),
                    &[] as &[(&str, &str)],
                    writer,
                )
                .unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::NotFound, "in {dir}");
        }
    }

    #[test]
    fn the_child_leads_a_new_group_with_the_variables_and_stdin_from_null() {
        let spawner = Spawner::new(&["STAGECRAFT_TEST"]);
        let here = std::env::current_dir().unwrap();
        for (dir, expected) in [(".", here.as_path()), ("", here.as_path()), ("/", Path::new("/"))] {
            let script = "pwd; echo $STAGECRAFT_TEST; cat; ps -o pgid= -p $$ >&2";
            let (text, pid, success) = run(&spawner, Path::new(dir), script, &[("STAGECRAFT_TEST", "v")]);
            assert!(success, "in {dir:?}");
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines[..2], [expected.to_str().unwrap(), "v"], "in {dir:?}");
            if let Some(group) = lines.get(2) {
                // `ps` may be missing; when it is there, the group is the child's.
                assert_eq!(group.trim(), pid.as_raw_nonzero().to_string(), "in {dir:?}");
            }
        }
    }

    #[test]
    fn sigpipe_is_back_to_its_default_and_the_mask_empty() {
        let spawner = Spawner::new(&[]);
        for dir in [".", "/"] {
            // `SigIgn`/`SigBlk` of the spawned process (the shell, replaced
            // by `grep`, which inherits both): nothing ignored or blocked
            // that the spawn should have reset (bit 13 is SIGPIPE).
            let script = "exec grep -E '^Sig(Ign|Blk)' /proc/self/status";
            let (text, _, _) = run(&spawner, Path::new(dir), script, &[]);
            for line in text.lines() {
                let mask = u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap();
                assert_eq!(mask & (1 << 12), 0, "{line} in {dir}");
                if line.starts_with("SigBlk") {
                    assert_eq!(mask, 0, "{line} in {dir}");
                }
            }
        }
    }
}
