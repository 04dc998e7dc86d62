//! Starting a command's process with `posix_spawn(3)`, as ninja does.
//!
//! `std::process::Command` would do the same, but pays for what the runner
//! does not need on the path between two commands: it copies the whole
//! environment into a map at every spawn, opens `/dev/null` in the parent
//! and duplicates descriptors for each stream. Here the inherited
//! environment is read once per [`Spawner`], and a spawn only builds the
//! `STAGECRAFT_*` variables.
//!
//! The child gets: the working directory, stdin from `/dev/null`, stdout
//! and stderr on the given descriptor, a new process group (its pid), an
//! empty signal mask and `SIGPIPE` back to its default (Rust ignores it in
//! this process). Every other descriptor of this process is close-on-exec
//! (the standard library opens them so, and so does the runner).

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;

/// What every spawn shares: the inherited environment, without the
/// variables each spawn sets.
#[derive(Debug)]
pub(crate) struct Spawner {
    environment: Vec<CString>,
}

/// The standard streams, as file descriptors in the child.
const STDIN: RawFd = 0;
const STDOUT: RawFd = 1;
const STDERR: RawFd = 2;

impl Spawner {
    /// Reads this process's environment, leaving out the variables named
    /// in `overridden` (each spawn sets them) and any entry a C string
    /// cannot hold.
    pub(crate) fn new(overridden: &[&str]) -> Self {
        let environment = std::env::vars_os()
            .filter(|(key, _)| !overridden.iter().any(|name| key == OsStr::new(name)))
            .filter_map(|(key, value)| entry(&key, &value))
            .collect();
        Self { environment }
    }

    /// Starts `program` with `args` (its `argv[0]` is `program`) in `dir`,
    /// with `variables` added to the environment and stdout and stderr on
    /// `output`, and returns its pid.
    ///
    /// # Errors
    ///
    /// An argument, the directory or a variable holds a NUL byte, or
    /// `posix_spawn` failed (the program cannot be executed, the directory
    /// does not exist, …): the error is the one `exec` or `chdir` gave.
    pub(crate) fn spawn(
        &self,
        program: &Path,
        args: &[&OsStr],
        dir: &Path,
        variables: &[(&str, &str)],
        output: RawFd,
    ) -> io::Result<libc::pid_t> {
        let program = c_string(program.as_os_str(), "the program")?;
        let args = args
            .iter()
            .map(|arg| c_string(arg, "the command"))
            .collect::<io::Result<Vec<_>>>()?;
        let dir = c_string(dir.as_os_str(), "the directory")?;
        let variables = variables
            .iter()
            .map(|(key, value)| entry(OsStr::new(key), OsStr::new(value)))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| nul_error("a variable"))?;
        let arguments: Vec<*const libc::c_char> = std::iter::once(program.as_ptr())
            .chain(args.iter().map(|arg| arg.as_ptr()))
            .chain(std::iter::once(ptr::null()))
            .collect();
        let environment: Vec<*const libc::c_char> = self
            .environment
            .iter()
            .chain(&variables)
            .map(|entry| entry.as_ptr())
            .chain(std::iter::once(ptr::null()))
            .collect();
        let actions = FileActions::new()?;
        check(
            // SAFETY: `actions` is initialised; the path is a valid C string
            // that outlives the call (posix_spawn copies it).
            unsafe {
                libc::posix_spawn_file_actions_addopen(
                    actions.as_ptr(),
                    STDIN,
                    c"/dev/null".as_ptr(),
                    libc::O_RDONLY,
                    0,
                )
            },
        )?;
        for stream in [STDOUT, STDERR] {
            // SAFETY: `actions` is initialised; `output` is open here.
            check(unsafe { libc::posix_spawn_file_actions_adddup2(actions.as_ptr(), output, stream) })?;
        }
        // SAFETY: `actions` is initialised; `dir` is a valid C string that
        // lives until posix_spawn returns.
        check(unsafe { libc::posix_spawn_file_actions_addchdir_np(actions.as_ptr(), dir.as_ptr()) })?;
        let attributes = Attributes::new()?;
        let mut pid: libc::pid_t = 0;
        // SAFETY: every pointer is valid for the call: the attributes and
        // actions are initialised, argv and envp are NULL-terminated arrays
        // of C strings that outlive it, and `pid` is writable.
        let error = unsafe {
            libc::posix_spawn(
                &raw mut pid,
                program.as_ptr(),
                actions.as_ptr(),
                attributes.as_ptr(),
                arguments.as_ptr().cast(),
                environment.as_ptr().cast(),
            )
        };
        if error != 0 {
            return Err(io::Error::from_raw_os_error(error));
        }
        Ok(pid)
    }
}

/// `KEY=VALUE` as a C string, or `None` if either holds a NUL byte.
fn entry(key: &OsStr, value: &OsStr) -> Option<CString> {
    let mut bytes = Vec::with_capacity(key.len() + value.len() + 1);
    bytes.extend_from_slice(key.as_bytes());
    bytes.push(b'=');
    bytes.extend_from_slice(value.as_bytes());
    CString::new(bytes).ok()
}

fn c_string(text: &OsStr, what: &str) -> io::Result<CString> {
    CString::new(text.as_bytes()).map_err(|_| nul_error(what))
}

fn nul_error(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{what} contains a NUL byte"))
}

/// `posix_spawn_file_actions_t`, destroyed when dropped. It lives on the
/// heap and is only reached through its raw pointer.
struct FileActions(*mut libc::posix_spawn_file_actions_t);

impl FileActions {
    fn new() -> io::Result<Self> {
        // SAFETY: an all-zero value is a valid argument for init, which
        // overwrites it.
        let pointer = Box::into_raw(Box::new(unsafe { std::mem::zeroed() }));
        // SAFETY: the pointer is valid and writable.
        let error = unsafe { libc::posix_spawn_file_actions_init(pointer) };
        if error != 0 {
            // Never initialised: only the allocation to free.
            // SAFETY: from Box::into_raw above, not used again.
            drop(unsafe { Box::from_raw(pointer) });
            return Err(io::Error::from_raw_os_error(error));
        }
        Ok(Self(pointer))
    }

    fn as_ptr(&self) -> *mut libc::posix_spawn_file_actions_t {
        self.0
    }
}

/// A `posix_spawn*` function's result.
fn check(error: libc::c_int) -> io::Result<()> {
    if error == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(error))
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed and freed once.
        unsafe {
            libc::posix_spawn_file_actions_destroy(self.0);
            drop(Box::from_raw(self.0));
        }
    }
}

/// `posix_spawnattr_t` with the settings of the module docs, destroyed when
/// dropped. It lives on the heap and is only reached through its raw
/// pointer.
struct Attributes(*mut libc::posix_spawnattr_t);

impl Attributes {
    fn new() -> io::Result<Self> {
        // SAFETY: an all-zero value is a valid argument for init.
        let pointer = Box::into_raw(Box::new(unsafe { std::mem::zeroed() }));
        // SAFETY: the pointer is valid and writable.
        let error = unsafe { libc::posix_spawnattr_init(pointer) };
        if error != 0 {
            // SAFETY: from Box::into_raw above, not used again.
            drop(unsafe { Box::from_raw(pointer) });
            return Err(io::Error::from_raw_os_error(error));
        }
        let attributes = Self(pointer);
        // SAFETY: all-zero sigset_t values are valid; sigemptyset and
        // sigaddset initialise them, and the attribute calls copy them.
        let error = unsafe {
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&raw mut empty);
            let mut default: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&raw mut default);
            libc::sigaddset(&raw mut default, libc::SIGPIPE);
            let flags = libc::POSIX_SPAWN_SETPGROUP | libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF;
            [
                libc::posix_spawnattr_setsigmask(pointer, &raw const empty),
                libc::posix_spawnattr_setsigdefault(pointer, &raw const default),
                libc::posix_spawnattr_setpgroup(pointer, 0),
                libc::posix_spawnattr_setflags(pointer, libc::c_short::try_from(flags).unwrap_or(0)),
            ]
        };
        error.into_iter().try_for_each(check)?;
        Ok(attributes)
    }

    fn as_ptr(&self) -> *mut libc::posix_spawnattr_t {
        self.0
    }
}

impl Drop for Attributes {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed and freed once.
        unsafe {
            libc::posix_spawnattr_destroy(self.0);
            drop(Box::from_raw(self.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overridden_variables_are_left_out_and_entries_are_key_equals_value() {
        let spawner = Spawner::new(&["PATH"]);
        assert!(!spawner.environment.iter().any(|e| e.as_bytes().starts_with(b"PATH=")));
        assert_eq!(entry(OsStr::new("A"), OsStr::new("b=c")).unwrap().as_bytes(), b"A=b=c");
        assert!(entry(OsStr::new("A"), OsStr::new("b\0")).is_none());
    }

    #[test]
    fn a_nul_byte_is_an_error_not_a_truncation() {
        let spawner = Spawner::new(&[]);
        let error = spawner
            .spawn(
                Path::new("/bin/sh"),
                &[OsStr::new("-c"), OsStr::new("true\0false")],
                Path::new("/"),
                &[],
                2,
            )
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }
}
