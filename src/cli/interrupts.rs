//! What Ctrl-C, `SIGTERM` and `SIGHUP` do to a command that executes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Exit;
use crate::engine::Cancel;

/// What Ctrl-C, `SIGTERM` and `SIGHUP` do. Installed before the state is
/// opened: until the run is [`armed`](Interrupts::arm) (nothing of it
/// recorded yet, or only what recovery repairs as after a kill), a signal
/// exits 130 at once, so waiting for a lock or reading the history can be
/// interrupted; once armed, it cancels the run, which records the
/// interruption and then exits 130.
pub(super) struct Interrupts {
    cancel: Cancel,
    armed: Arc<AtomicBool>,
}

impl Interrupts {
    pub(super) fn install() -> Self {
        let cancel = Cancel::new();
        let armed = Arc::new(AtomicBool::new(false));
        let (on_interrupt, is_armed) = (cancel.clone(), Arc::clone(&armed));
        // Set once per process; a second run in one process keeps the first.
        let _ = ctrlc::set_handler(move || {
            if is_armed.load(Ordering::SeqCst) {
                on_interrupt.cancel();
            } else {
                eprintln!("error: interrupted before anything ran");
                std::process::exit(Exit::Interrupted as i32);
            }
        });
        Self { cancel, armed }
    }

    /// From now on a signal cancels the run instead of ending the process.
    pub(super) fn arm(&self) -> &Cancel {
        self.armed.store(true, Ordering::SeqCst);
        &self.cancel
    }
}
