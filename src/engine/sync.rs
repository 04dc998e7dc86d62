//! What is durable: the steps the executor recorded, the ones a sync has
//! covered, and the thread that syncs (see the module docs of `execute`,
//! *Durability* and *Claims*).

use std::collections::{BTreeSet, VecDeque};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use super::event::{Event, RecordError, Syncer};

/// The most instances per job the executor keeps claimed ahead.
pub const CLAIM_AHEAD: usize = 8;

/// Claims ahead cover about as many starts as this long saw, so that short
/// commands share syncs and long ones claim little more than the next.
pub(super) const CLAIM_WINDOW: Duration = Duration::from_millis(5);

/// The longest a recorded event waits for a sync when no claim needs one.
pub(super) const SYNC_DELAY: Duration = Duration::from_millis(10);

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

    /// Asks for a sync after the step's commands started (so that the
    /// sync thread does not compete with them): at once if a claim expected
    /// next, or one of the first `jobs` in plan order, is not covered by a
    /// sync asked for; else within [`SYNC_DELAY`] of `now`.
    pub(super) fn request_for(&mut self, claims: &Claims, now: Instant) {
        let uncovered = |instance: &usize| self.claimed[*instance] > self.requested;
        if claims.imminent.iter().any(uncovered) || claims.claimed.iter().take(claims.jobs).any(uncovered) {
            self.request();
        } else {
            self.request_by(now + SYNC_DELAY);
        }
    }

    /// Takes the syncer's answers that came.
    pub(super) fn take_synced(&mut self, synced: &Receiver<Synced>) -> Result<(), RecordError> {
        for result in synced.try_iter() {
            self.synced(result)?;
        }
        if self.due.is_some_and(|due| due <= Instant::now()) {
            self.request();
        }
        Ok(())
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

/// The instances claimed ahead (see the module docs, *Claims*): which are
/// claimed and not yet started or skipped, and how far ahead to claim.
pub(super) struct Claims {
    /// How many commands may run at once.
    jobs: usize,
    /// Instances claimed and not yet started or skipped.
    claimed: BTreeSet<usize>,
    /// Every instance before this position was considered for a claim.
    cursor: usize,
    /// The claimed instances expected to start first.
    imminent: Vec<usize>,
    /// When the instances started in the last [`CLAIM_WINDOW`] did.
    recent: VecDeque<Instant>,
}

impl Claims {
    pub(super) fn new(jobs: usize) -> Self {
        Self {
            jobs,
            claimed: BTreeSet::new(),
            cursor: 0,
            imminent: Vec::new(),
            recent: VecDeque::new(),
        }
    }

    /// Claims the first `jobs` of `expected` (the instances expected to
    /// start next, in plan order), then the next instances in plan order
    /// for which `claimable` holds, among the `count` of the plan, until
    /// `jobs` plus the number of starts in the last [`CLAIM_WINDOW`] are
    /// claimed, at most [`CLAIM_AHEAD`] × `jobs`. Returns the instances
    /// newly claimed, in the order they were.
    pub(super) fn claim(
        &mut self,
        expected: BTreeSet<usize>,
        count: usize,
        claimable: impl Fn(usize) -> bool,
        now: Instant,
    ) -> Vec<usize> {
        self.forget_starts_before(now);
        let ahead = (self.jobs + self.recent.len()).min(CLAIM_AHEAD * self.jobs);
        let mut claimed = Vec::new();
        self.imminent.clear();
        for instance in expected.into_iter().take(self.jobs) {
            self.imminent.push(instance);
            if self.claimed.insert(instance) {
                claimed.push(instance);
            }
        }
        while self.claimed.len() < ahead && self.cursor < count {
            let instance = self.cursor;
            self.cursor += 1;
            if claimable(instance) && self.claimed.insert(instance) {
                claimed.push(instance);
            }
        }
        claimed
    }

    /// An instance started at `now` (it counts for the window).
    pub(super) fn started(&mut self, now: Instant) {
        self.forget_starts_before(now);
        self.recent.push_back(now);
    }

    /// Keeps only the starts of the [`CLAIM_WINDOW`] before `now`.
    fn forget_starts_before(&mut self, now: Instant) {
        while self
            .recent
            .front()
            .is_some_and(|&start| now.duration_since(start) > CLAIM_WINDOW)
        {
            self.recent.pop_front();
        }
    }

    /// `instance` started or was skipped: its claim, if any, is used up.
    pub(super) fn remove(&mut self, instance: usize) {
        self.claimed.remove(&instance);
    }

    /// The instances claimed and not yet started or skipped, in plan order.
    #[cfg(test)]
    pub(super) fn claimed(&self) -> impl Iterator<Item = usize> + '_ {
        self.claimed.iter().copied()
    }
}
