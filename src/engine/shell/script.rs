//! Commands too long to pass as an argument: written to a script file the
//! shell runs (`sh -e [-o pipefail] FILE`), removed once the attempt ends.
//!
//! Linux refuses a single argument over 128 KiB (`E2BIG`, "Argument list
//! too long"), and every system limits the total size of the arguments
//! and the environment. A command longer than [`SCRIPT_THRESHOLD`], or
//! one whose spawn fails with `E2BIG`, is written to a file readable,
//! writable and executable by this user only (mode 0700), in the runner's
//! script directory (the CLI gives one in the state directory, which the
//! next run of the env empties, so that a run killed outright leaves
//! nothing behind for long), else in the temporary directory.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Commands longer than this run from a script file.
pub(super) const SCRIPT_THRESHOLD: usize = 64 * 1024;

/// A script file holding a command; removed when dropped.
#[derive(Debug)]
pub(super) struct Script(PathBuf);

impl Script {
    /// Writes `command` to a new script file in `dir` (created if
    /// missing), else in the temporary directory.
    ///
    /// # Errors
    ///
    /// The file could not be created or written (nothing is left behind).
    pub(super) fn write(dir: Option<&Path>, command: &str) -> io::Result<Self> {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let dir = dir.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let context = |error: io::Error| {
            io::Error::new(
                error.kind(),
                format!(
                    "cannot write the command to a script file in {}: {error}",
                    dir.display()
                ),
            )
        };
        fs::create_dir_all(&dir).map_err(context)?;
        loop {
            let count = COUNT.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("stagecraft-{}-{count}.sh", std::process::id()));
            let mut file = match OpenOptions::new().write(true).create_new(true).mode(0o700).open(&path) {
                Ok(file) => file,
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(context(error)),
            };
            let script = Self(path);
            // A script without its last line break would still run; the
            // break keeps its last line a line.
            file.write_all(command.as_bytes())
                .and_then(|()| file.write_all(b"\n"))
                .map_err(context)?;
            return Ok(script);
        }
    }

    /// The file's path.
    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_script_is_private_and_removed_when_dropped() {
        let script = Script::write(None, "echo hi").unwrap();
        let path = script.path().to_owned();
        assert_eq!(fs::read_to_string(&path).unwrap(), "echo hi\n");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o700);
        drop(script);
        assert!(!path.exists());
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("scripts");
        let script = Script::write(Some(&inner), "echo hi").unwrap();
        assert_eq!(script.path().parent(), Some(inner.as_path()));
    }
}
