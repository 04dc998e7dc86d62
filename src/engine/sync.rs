//! What is durable: the steps the executor recorded, the ones a sync has
//! covered, and the thread that syncs (see the module docs of `execute`,
//! *Durability* and *Claims*).

use std::collections::{BTreeSet, VecDeque};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use super::event::{Event, RecordError, Syncer};

/// The most instances per job the executor keeps claimed ahead.
pub const CLAIM_AHEAD: usize = 32;

/// Claims ahead cover about as many starts as this long saw (or three
/// syncs, if longer), so that short commands share syncs and long ones
/// claim little more than the next.
pub(super) const CLAIM_WINDOW: Duration = Duration::from_millis(20);

/// The longest a recorded event waits for a sync when no claim needs one.
pub(super) const SYNC_DELAY: Duration = Duration::from_millis(25);

/// What the sync thread tells the executor: every step up to this one is
/// durable, and how long the sync took; or the sync failed.
pub(super) type Synced = Result<(u64, Duration), RecordError>;

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
    /// it had none (0: neither yet); once its undo is recorded as started,
    /// that step.
    pub(super) claimed: Vec<u64>,
    /// Requests to the syncer thread: sync up to this step.
    pub(super) requests: Option<Sender<u64>>,
    /// When to ask for a sync of the steps written and not yet asked for.
    pub(super) due: Option<Instant>,
    /// How long a sync takes: the last one's time if longer, else
    /// drifting down towards it.
    pub(super) sync_time: Duration,
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
            sync_time: Duration::ZERO,
        }
    }

    /// A step was recorded.
    pub(super) fn wrote(&mut self, events: &[Event]) {
        self.written += 1;
        for event in events {
            match *event {
                Event::Claimed { instance } | Event::Started { instance, .. } if self.claimed[instance] == 0 => {
                    self.claimed[instance] = self.written;
                }
                // An undo starts once its own `UndoStarted` is durable.
                Event::UndoStarted { instance } => self.claimed[instance] = self.written,
                _ => {}
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
    /// next, or one of the claims to be used within about two syncs (the
    /// first `jobs` in plan order, and one more for every start of the last
    /// two sync times), is not covered by a sync asked for; else within
    /// [`SYNC_DELAY`] of `now`.
    pub(super) fn request_for(&mut self, claims: &Claims, now: Instant) {
        let uncovered = |instance: &usize| self.claimed[*instance] > self.requested;
        let soon = claims.jobs + claims.starts_within(2 * self.sync_time, now);
        if claims.imminent.iter().any(uncovered) || claims.claimed.iter().take(soon).any(uncovered) {
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
    pub(super) fn synced(&mut self, result: Synced) -> Result<(), RecordError> {
        let (step, took) = result?;
        self.durable = self.durable.max(step);
        self.sync_time = if took > self.sync_time {
            took
        } else {
            (self.sync_time * 3 + took) / 4
        };
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
                let began = Instant::now();
                let result = syncer.sync().map(|()| (step, began.elapsed()));
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
    /// When the instances started in the last `window` did.
    recent: VecDeque<Instant>,
    /// How far back starts count: [`CLAIM_WINDOW`], or three sync times
    /// if longer ([`Claims::set_sync_time`]).
    window: Duration,
}

impl Claims {
    pub(super) fn new(jobs: usize) -> Self {
        Self {
            jobs,
            claimed: BTreeSet::new(),
            cursor: 0,
            imminent: Vec::new(),
            recent: VecDeque::new(),
            window: CLAIM_WINDOW,
        }
    }

    /// How long a sync takes now: claims ahead cover the starts of three.
    pub(super) fn set_sync_time(&mut self, sync_time: Duration) {
        self.window = CLAIM_WINDOW.max(3 * sync_time);
    }

    /// How many instances started in the `span` before `now`.
    fn starts_within(&self, span: Duration, now: Instant) -> usize {
        self.recent
            .iter()
            .rev()
            .take_while(|&&start| now.duration_since(start) <= span)
            .count()
    }

    /// Claims the first `jobs` of `expected` (the instances expected to
    /// start next, in plan order), then the next instances in plan order
    /// for which `claimable` holds, among the `count` of the plan, until
    /// `jobs` plus the number of starts in the last `window` are
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

    /// Keeps only the starts of the `window` before `now`.
    fn forget_starts_before(&mut self, now: Instant) {
        while self
            .recent
            .front()
            .is_some_and(|&start| now.duration_since(start) > self.window)
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

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn claims_ahead_cover_the_starts_of_three_syncs() {
        let start = Instant::now();
        let now = start + 30 * MS;
        let claims_with = |sync_time: Duration| {
            let mut claims = Claims::new(1);
            claims.set_sync_time(sync_time);
            // 30, 28, 24 and 19 ms ago.
            for after in [0, 2, 6, 11] {
                claims.started(start + after * MS);
            }
            claims.claim(BTreeSet::new(), 100, |_| true, now)
        };
        // Within 20 ms: one start, so 1 + 1 claims.
        assert_eq!(claims_with(Duration::ZERO), [0, 1]);
        // Syncs of 8 ms: the starts of the last 24 ms count.
        assert_eq!(claims_with(8 * MS), [0, 1, 2]);
        // Syncs of 10 ms: the starts of the last 30 ms count.
        assert_eq!(claims_with(10 * MS), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_sync_is_asked_for_when_a_claim_is_needed_within_two_syncs() {
        let start = Instant::now();
        let now = start + 2 * MS;
        let asked = |sync_time: Duration| {
            let (sender, requests) = mpsc::channel();
            let mut durability = Durability::new(3);
            durability.requests = Some(sender);
            durability.sync_time = sync_time;
            let mut claims = Claims::new(1);
            claims.started(start);
            claims.started(start + MS);
            claims.claimed.extend([0, 1, 2]);
            // Instance 0's claim is asked for already; 1 and 2 are new.
            durability.wrote(&[Event::Claimed { instance: 0 }]);
            durability.request();
            durability.wrote(&[Event::Claimed { instance: 1 }, Event::Claimed { instance: 2 }]);
            durability.request_for(&claims, now);
            requests.try_iter().collect::<Vec<_>>()
        };
        // Instant syncs: the next claim is covered, the rest can wait.
        assert_eq!(asked(Duration::ZERO), [1]);
        // Syncs of 2 ms: the two starts of the last 4 ms say instance 1
        // is needed before a sync asked later would end.
        assert_eq!(asked(2 * MS), [1, 2]);
    }
}
