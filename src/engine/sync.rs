//! What is durable: the steps the executor recorded, the ones a sync has
//! covered, and the thread that syncs (see the module docs of `execute`,
//! *Durability* and *Claims*).

use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::Instant;

use super::event::{Event, RecordError, Syncer};

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
