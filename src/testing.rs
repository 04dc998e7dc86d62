//! Test doubles for the engine, and plans written by hand ([`instance`],
//! [`plan`]), for this crate's tests and benchmarks and
//! for anyone driving [`execute`](crate::engine::execute) without processes
//! or storage: [`ScriptedRunner`] (outcomes and output scripted per
//! instance, no processes), [`MemoryRecorder`] (events kept in memory,
//! durable at once) and [`MemorySink`] (output kept in memory).

mod plan;
mod scripted;

use crate::engine::{Event, OutputSink, RecordError, Recorder};

pub use plan::{instance, plan};
pub use scripted::{Call, ScriptedRunner};

/// A recorder that keeps events in memory, each step durable at once.
#[derive(Debug, Default)]
pub struct MemoryRecorder {
    /// Every event, in order, with the step it was recorded in.
    pub events: Vec<(usize, Event)>,
    steps: usize,
}

impl Recorder for MemoryRecorder {
    fn record(&mut self, events: &[Event]) -> Result<(), RecordError> {
        self.steps += 1;
        self.events
            .extend(events.iter().cloned().map(|event| (self.steps, event)));
        Ok(())
    }
}

/// A sink that keeps every block of output in memory (tests), or drops it.
#[derive(Debug, Default)]
pub struct MemorySink {
    /// Each call, in order: the instance's id and its lines.
    pub blocks: Vec<(String, Vec<String>)>,
}

impl OutputSink for MemorySink {
    fn output(&mut self, _instance: usize, id: &str, lines: &[String]) {
        self.blocks.push((id.to_owned(), lines.to_vec()));
    }
}
