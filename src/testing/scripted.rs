//! [`ScriptedRunner`]: a [`Runner`] for tests, with no processes.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::engine::{Cancel, Child, Job, Outcome, Runner};

/// A runner for tests: no processes, outcomes and output scripted per
/// instance id and attempt. Unscripted attempts exit 0 with no output.
#[derive(Debug, Default)]
pub struct ScriptedRunner {
    outcomes: BTreeMap<(String, u32), Outcome>,
    always: BTreeMap<String, Outcome>,
    output: BTreeMap<String, Vec<String>>,
    delays: BTreeMap<String, Duration>,
    interrupts: BTreeSet<String>,
    calls: Mutex<Vec<Call>>,
    running: AtomicUsize,
    most: AtomicUsize,
}

/// One attempt a [`ScriptedRunner`] was asked to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The instance's id.
    pub id: String,
    /// The attempt.
    pub attempt: u32,
    /// The command.
    pub command: String,
    /// The working directory.
    pub dir: PathBuf,
    /// The `STAGECRAFT_*` variables, as [`Job::variables`] gives them.
    pub variables: Vec<(String, String)>,
    /// The timeout.
    pub timeout: Option<Duration>,
}

impl ScriptedRunner {
    /// A runner where every attempt exits 0.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Attempt `attempt` of `id` ends with `outcome`.
    #[must_use]
    pub fn on(mut self, id: &str, attempt: u32, outcome: Outcome) -> Self {
        self.outcomes.insert((id.to_owned(), attempt), outcome);
        self
    }

    /// Every attempt of `id` not scripted with [`ScriptedRunner::on`] ends
    /// with `outcome`.
    #[must_use]
    pub fn always(mut self, id: &str, outcome: Outcome) -> Self {
        self.always.insert(id.to_owned(), outcome);
        self
    }

    /// Every attempt of `id` prints these lines.
    #[must_use]
    pub fn output(mut self, id: &str, lines: &[&str]) -> Self {
        self.output
            .insert(id.to_owned(), lines.iter().map(|&line| line.to_owned()).collect());
        self
    }

    /// Every attempt of `id` takes this long (less if the run is
    /// cancelled meanwhile: then it ends [`Outcome::Interrupted`]).
    #[must_use]
    pub fn delay(mut self, id: &str, delay: Duration) -> Self {
        self.delays.insert(id.to_owned(), delay);
        self
    }

    /// When `id` runs, the run is cancelled (as Ctrl-C would) and `id`
    /// ends [`Outcome::Interrupted`].
    #[must_use]
    pub fn interrupt(mut self, id: &str) -> Self {
        self.interrupts.insert(id.to_owned());
        self
    }

    /// Every attempt run so far, in the order they started.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The most attempts that ran at the same time.
    pub fn most_at_once(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }
}

impl Runner for ScriptedRunner {
    fn start<'a>(&'a self, job: &Job<'a>) -> Box<dyn Child + 'a> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).push(Call {
            id: job.id.to_owned(),
            attempt: job.attempt,
            command: job.command.to_owned(),
            dir: job.dir.to_owned(),
            variables: job
                .variables()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.into_owned()))
                .collect(),
            timeout: job.timeout,
        });
        let running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(running, Ordering::SeqCst);
        Box::new(ScriptedChild {
            runner: self,
            id: job.id,
            attempt: job.attempt,
            cancel: job.cancel,
            printed: false,
            end: self.delays.get(job.id).map(|&delay| Instant::now() + delay),
            ended: false,
        })
    }
}

/// An attempt of a [`ScriptedRunner`].
struct ScriptedChild<'a> {
    runner: &'a ScriptedRunner,
    id: &'a str,
    attempt: u32,
    cancel: &'a Cancel,
    printed: bool,
    /// When its delay is over.
    end: Option<Instant>,
    ended: bool,
}

impl Child for ScriptedChild<'_> {
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    fn deadline(&self) -> Option<Instant> {
        self.end
    }

    fn poll(&mut self, output: &mut dyn FnMut(&str)) -> Option<Outcome> {
        if self.ended {
            return None;
        }
        if !self.printed {
            self.printed = true;
            for line in self.runner.output.get(self.id).into_iter().flatten() {
                output(line);
            }
        }
        let outcome = if self.runner.interrupts.contains(self.id) {
            self.cancel.cancel();
            Outcome::Interrupted
        } else if self.end.is_some() && self.cancel.is_cancelled() {
            Outcome::Interrupted
        } else if self.end.is_some_and(|end| Instant::now() < end) {
            return None;
        } else {
            self.runner
                .outcomes
                .get(&(self.id.to_owned(), self.attempt))
                .or_else(|| self.runner.always.get(self.id))
                .cloned()
                .unwrap_or(Outcome::Exited(0))
        };
        self.ended = true;
        self.runner.running.fetch_sub(1, Ordering::SeqCst);
        Some(outcome)
    }
}

impl Drop for ScriptedChild<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.runner.running.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
