//! What is durable: the steps the executor recorded, the ones a sync has
//! covered, and the thread that syncs (see the module docs of `execute`,
//! *Durability* and *Claims*).

use std::collections::BTreeSet;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use super::event::{Event, RecordError, Syncer};
use super::schedule::{Run, State};

/// The most instances per job the executor keeps claimed ahead.
pub const CLAIM_AHEAD: usize = 8;

/// Claims ahead cover about as many starts as this long saw, so that short
/// commands share syncs and long ones claim little more than the next.
pub const CLAIM_WINDOW: Duration = Duration::from_millis(5);

/// The longest a recorded event waits for a sync when no claim needs one.
pub const SYNC_DELAY: Duration = Duration::from_millis(10);

/// What the sync thread tells the executor: every step up to this one is
/// durable, or the sync failed.
pub(super) type Synced = Result<u64, RecordError>;

/// Which steps are written and which are durable, when the recorder syncs
/// on a thread of its own (see the module docs). Without a syncer, every
/// step is durable once recorded.
pub(super) struct Durability {
    /// Steps recorded so far.
    pub(super) written: u64,
    /// Steps the syncer was asked to make durable.
    pub(super) requested: u64,
    /// Steps known to be durable.
    pub(super) durable: u64,
    /// Per instance, the step that recorded its claim, or its first start if
    /// it had none (0: neither yet).
    pub(super) claimed: Vec<u64>,
    /// Requests to the syncer thread: sync up to this step.
    pub(super) requests: Option<Sender<u64>>,
    /// When to ask for a sync of the steps written and not yet asked for.
    pub(super) due: Option<Instant>,
}

impl Durability {
    pub(super) fn new(instances: usize) -> Self {
        Self {
            written: 0,
            requested: 0,
            durable: 0,
            claimed: vec![0; instances],
            requests: None,
            due: None,
        }
    }

    /// A step was recorded.
    pub(super) fn wrote(&mut self, events: &[Event]) {
        self.written += 1;
        for event in events {
            if let Event::Claimed { instance } | Event::Started { instance, .. } = *event
                && self.claimed[instance] == 0
            {
                self.claimed[instance] = self.written;
            }
        }
        if self.requests.is_none() {
            self.durable = self.written;
        }
    }

    /// Asks for a sync of every step written, unless one is asked already.
    pub(super) fn request(&mut self) {
        if let Some(requests) = &self.requests
            && self.written > self.requested
        {
            // The syncer only stops after a failure, which it reports.
            let _ = requests.send(self.written);
            self.requested = self.written;
        }
        self.due = None;
    }

    /// Asks for a sync of every step written by `due` at the latest.
    pub(super) fn request_by(&mut self, due: Instant) {
        if self.requests.is_some() && self.written > self.requested {
            self.due = Some(self.due.map_or(due, |earlier| earlier.min(due)));
        }
    }

    /// The syncer answered.
    pub(super) fn synced(&mut self, result: Result<u64, RecordError>) -> Result<(), RecordError> {
        self.durable = self.durable.max(result?);
        Ok(())
    }

    /// Waits until step `step` is durable. (The commands running go on
    /// meanwhile; their output waits in their pipes.)
    pub(super) fn wait(&mut self, step: u64, synced: &Receiver<Synced>) -> Result<(), RecordError> {
        if step > self.requested {
            self.request();
        }
        while self.durable < step {
            match synced.recv() {
                Ok(result) => self.synced(result)?,
                // The syncer stops only after reporting a failure.
                Err(_) => return Err(RecordError("the sync thread stopped".to_owned())),
            }
        }
        Ok(())
    }
}

/// Starts the thread that syncs on request: each request asks for every
/// step up to the one it names, and requests that queue up while a sync
/// runs are served by the next one.
pub(super) fn spawn_syncer<'scope>(
    scope: &'scope thread::Scope<'scope, '_>,
    mut syncer: Box<dyn Syncer>,
    reply: Sender<Synced>,
) -> Result<Sender<u64>, RecordError> {
    let (requests, received) = mpsc::channel::<u64>();
    thread::Builder::new()
        .name("stagecraft-sync".to_owned())
        .spawn_scoped(scope, move || {
            while let Ok(step) = received.recv() {
                let step = received.try_iter().fold(step, u64::max);
                let result = syncer.sync().map(|()| step);
                let failed = result.is_err();
                if reply.send(result).is_err() || failed {
                    break;
                }
            }
        })
        .map_err(|error| RecordError(format!("cannot start the sync thread: {error}")))?;
    Ok(requests)
}

impl Run<'_> {
    pub(super) fn claim_next(&mut self, now: Instant) {
        if self.stopping || self.interrupted {
            return;
        }
        self.forget_starts_before(now);
        let ahead = (self.jobs + self.recent.len()).min(CLAIM_AHEAD * self.jobs);
        let runs = |instance: usize| {
            let planned = &self.plan.phases[instance];
            planned.enabled && planned.command.is_some()
        };
        let mut next: BTreeSet<usize> = self
            .ready
            .iter()
            .copied()
            .filter(|&i| runs(i))
            .take(self.jobs)
            .collect();
        for &running in &self.running {
            for &dependent in &self.dependents[running] {
                let unfinished = self.plan.phases[dependent]
                    .after
                    .iter()
                    .filter(|&&dependency| self.running.contains(&dependency))
                    .count();
                if self.tracks[dependent].state == State::Pending
                    && unfinished == self.waiting[dependent]
                    && runs(dependent)
                {
                    next.insert(dependent);
                }
            }
        }
        self.imminent.clear();
        for instance in next.into_iter().take(self.jobs) {
            self.imminent.push(instance);
            if self.claims.insert(instance) {
                self.events.push(Event::Claimed { instance });
            }
        }
        while self.claims.len() < ahead && self.cursor < self.tracks.len() {
            let instance = self.cursor;
            self.cursor += 1;
            if runs(instance)
                && matches!(self.tracks[instance].state, State::Pending | State::Ready)
                && self.claims.insert(instance)
            {
                self.events.push(Event::Claimed { instance });
            }
        }
    }

    /// An instance started (for [`claim_next`](Self::claim_next)).
    pub(super) fn started_now(&mut self, now: Instant) {
        self.forget_starts_before(now);
        self.recent.push_back(now);
    }

    /// Keeps only the starts of the [`CLAIM_WINDOW`] before `now`.
    pub(super) fn forget_starts_before(&mut self, now: Instant) {
        while self
            .recent
            .front()
            .is_some_and(|&start| now.duration_since(start) > CLAIM_WINDOW)
        {
            self.recent.pop_front();
        }
    }
}
