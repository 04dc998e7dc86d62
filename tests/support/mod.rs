//! A builder for running the `stagecraft` binary in a temporary directory,
//! in the style of casey/just's `tests/test.rs`:
//!
//! ```ignore
//! Test::new()
//!     .file("pipeline.stagecraft", SRC)
//!     .args(["plan", "--env", "dev"])
//!     .stdout_contains("build[api]")
//!     .status(0)
//!     .run();
//! ```
//!
//! The binary never sees a terminal (stdin is null, stdout and stderr are
//! pipes) and runs with `NO_COLOR=1`, so its output is plain and stable.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

pub(crate) mod postgres;

/// The variables that stand for flags, which a test's run must not
/// inherit from the shell that runs the tests.
pub(crate) const FLAG_VARIABLES: [&str; 3] = ["STAGECRAFT_FILE", "STAGECRAFT_ENV", "STAGECRAFT_DRY_RUN"];

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_stagecraft");

/// The binary with `args`, run in `dir` as the tests run it: no colour, no
/// terminal on stdin, and none of the variables that stand for flags or
/// fix the clock (`STAGECRAFT_STATE_DIR`, `STAGECRAFT_STATE`, `STAGECRAFT_NOW`, the
/// [`FLAG_VARIABLES`]) inherited from the test's own environment. A test
/// adds what it needs.
pub(crate) fn command(dir: &Path, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("STAGECRAFT_STATE_DIR")
        .env_remove("STAGECRAFT_STATE")
        .env_remove("STAGECRAFT_NOW")
        .stdin(std::process::Stdio::null());
    for name in FLAG_VARIABLES {
        command.env_remove(name);
    }
    command
}

/// What a run printed and how it ended.
#[derive(Debug)]
pub(crate) struct Output {
    /// Standard output, lossily decoded.
    pub(crate) stdout: String,
    /// Standard error, lossily decoded.
    pub(crate) stderr: String,
    /// The exit code (`-1` when killed by a signal).
    pub(crate) status: i32,
    /// The directory the test ran in; kept alive as long as the output.
    pub(crate) _tempdir: TempDir,
}

impl Output {
    /// Stdout, stderr and the exit code as one text, for snapshots.
    pub(crate) fn transcript(&self) -> String {
        let mut out = String::new();
        if !self.stdout.is_empty() {
            let _ = write!(out, "--- stdout\n{}", self.stdout);
            if !self.stdout.ends_with('\n') {
                out.push('\n');
            }
        }
        if !self.stderr.is_empty() {
            let _ = write!(out, "--- stderr\n{}", self.stderr);
            if !self.stderr.ends_with('\n') {
                out.push('\n');
            }
        }
        let _ = writeln!(out, "--- exit {}", self.status);
        out
    }

    /// Stdout parsed as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// One run of the binary and what is expected of it.
#[must_use]
pub(crate) struct Test {
    tempdir: TempDir,
    args: Vec<OsString>,
    current_dir: PathBuf,
    stdout: Option<String>,
    stderr: Option<String>,
    stdout_contains: Vec<String>,
    stderr_contains: Vec<String>,
    stdout_lacks: Vec<String>,
    stderr_lacks: Vec<String>,
    status: i32,
}

impl Test {
    /// A run in a fresh, empty temporary directory, expected to exit 0.
    pub(crate) fn new() -> Self {
        Self {
            tempdir: tempfile::Builder::new()
                .prefix("stagecraft-test")
                .tempdir()
                .expect("create a temporary directory"),
            args: Vec::new(),
            current_dir: PathBuf::new(),
            stdout: None,
            stderr: None,
            stdout_contains: Vec::new(),
            stderr_contains: Vec::new(),
            stdout_lacks: Vec::new(),
            stderr_lacks: Vec::new(),
            status: 0,
        }
    }

    /// Writes `contents` to `path` (relative to the temporary directory),
    /// creating parent directories.
    pub(crate) fn file(self, path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> Self {
        let path = self.tempdir.path().join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent directories");
        }
        std::fs::write(&path, contents).expect("write a test file");
        self
    }

    /// Creates a directory (relative to the temporary directory).
    pub(crate) fn dir(self, path: impl AsRef<Path>) -> Self {
        std::fs::create_dir_all(self.tempdir.path().join(path)).expect("create a directory");
        self
    }

    /// Adds one argument.
    pub(crate) fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments.
    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Runs in `dir`, relative to the temporary directory.
    pub(crate) fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.current_dir = dir.as_ref().to_path_buf();
        self
    }

    /// Expects exactly this stdout.
    pub(crate) fn stdout(mut self, stdout: impl Into<String>) -> Self {
        self.stdout = Some(stdout.into());
        self
    }

    /// Expects exactly this stderr.
    pub(crate) fn stderr(mut self, stderr: impl Into<String>) -> Self {
        self.stderr = Some(stderr.into());
        self
    }

    /// Expects stdout to contain `text`.
    pub(crate) fn stdout_contains(mut self, text: impl Into<String>) -> Self {
        self.stdout_contains.push(text.into());
        self
    }

    /// Expects stderr to contain `text`.
    pub(crate) fn stderr_contains(mut self, text: impl Into<String>) -> Self {
        self.stderr_contains.push(text.into());
        self
    }

    /// Expects stdout not to contain `text`.
    pub(crate) fn stdout_lacks(mut self, text: impl Into<String>) -> Self {
        self.stdout_lacks.push(text.into());
        self
    }

    /// Expects stderr not to contain `text`.
    pub(crate) fn stderr_lacks(mut self, text: impl Into<String>) -> Self {
        self.stderr_lacks.push(text.into());
        self
    }

    /// Expects this exit code (0 unless set).
    pub(crate) fn status(mut self, status: i32) -> Self {
        self.status = status;
        self
    }

    /// Runs the binary and returns what happened, checking nothing.
    pub(crate) fn output(self) -> Output {
        let mut command = Command::new(BIN);
        command
            .args(&self.args)
            .current_dir(self.tempdir.path().join(&self.current_dir))
            .env("NO_COLOR", "1")
            .env_remove("CLICOLOR_FORCE")
            .env_remove("STAGECRAFT_STATE_DIR")
            .env_remove("STAGECRAFT_STATE")
            .env_remove("STAGECRAFT_NOW")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in FLAG_VARIABLES {
            command.env_remove(name);
        }
        let output = command.output().expect("run the stagecraft binary");
        Output {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            status: output.status.code().unwrap_or(-1),
            _tempdir: self.tempdir,
        }
    }

    /// Runs the binary, checks every expectation and returns the output.
    #[track_caller]
    pub(crate) fn run(self) -> Output {
        let status = self.status;
        let stdout = self.stdout.clone();
        let stderr = self.stderr.clone();
        let stdout_contains = self.stdout_contains.clone();
        let stderr_contains = self.stderr_contains.clone();
        let stdout_lacks = self.stdout_lacks.clone();
        let stderr_lacks = self.stderr_lacks.clone();
        let args = self.args.clone();
        let output = self.output();
        let context = || format!("args: {args:?}\n{}", output.transcript());
        assert_eq!(output.status, status, "unexpected exit code\n{}", context());
        if let Some(stdout) = stdout {
            assert_eq!(output.stdout, stdout, "unexpected stdout\n{}", context());
        }
        if let Some(stderr) = stderr {
            assert_eq!(output.stderr, stderr, "unexpected stderr\n{}", context());
        }
        for text in stdout_contains {
            assert!(output.stdout.contains(&text), "stdout lacks {text:?}\n{}", context());
        }
        for text in stderr_contains {
            assert!(output.stderr.contains(&text), "stderr lacks {text:?}\n{}", context());
        }
        for text in stdout_lacks {
            assert!(!output.stdout.contains(&text), "stdout has {text:?}\n{}", context());
        }
        for text in stderr_lacks {
            assert!(!output.stderr.contains(&text), "stderr has {text:?}\n{}", context());
        }
        output
    }
}

/// The directory of the test sources (`tests/`).
pub(crate) fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// The project root.
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The ids of a JSON plan's phases, in order.
pub(crate) fn plan_ids(output: &Output) -> Vec<String> {
    output.json()["phases"]
        .as_array()
        .expect("a plan has phases")
        .iter()
        .map(|phase| phase["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// The phase with id `id` in a JSON plan.
pub(crate) fn plan_phase(output: &Output, id: &str) -> serde_json::Value {
    output.json()["phases"]
        .as_array()
        .expect("a plan has phases")
        .iter()
        .find(|phase| phase["id"] == id)
        .unwrap_or_else(|| panic!("no instance `{id}` in the plan:\n{}", output.stdout))
        .clone()
}

/// Whether process `pid` runs (exists and is not a zombie).
pub(crate) fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit_once(')').map_or("", |(_, rest)| rest.trim_start());
        !state.starts_with(['Z', 'X'])
    })
}

/// Waits for `what` (`done` to say true) for up to 20 seconds.
pub(crate) fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done() {
        assert!(std::time::Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
