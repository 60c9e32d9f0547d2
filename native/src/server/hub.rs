//! Live events of running predictions: a replay buffer per prediction (so a client that
//! reconnects with `Last-Event-ID` misses nothing) and a wake-up for waiting streams. Only the
//! latest preview is kept in the buffer, so memory stays bounded however long a job runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use consistentid_core::api::StreamEvent;
use tokio::sync::watch;

/// One prediction's events.
pub struct Channel {
    events: Mutex<Vec<(u64, StreamEvent)>>,
    next: Mutex<u64>,
    /// Bumped on every event; streams wait on it.
    changed: watch::Sender<u64>,
}

impl Channel {
    fn new() -> Self {
        Self {
            events: Mutex::new(Vec::new()),
            next: Mutex::new(1),
            changed: watch::channel(0).0,
        }
    }

    /// Events after `last` (an event id), in order.
    pub fn after(&self, last: u64) -> Vec<(u64, StreamEvent)> {
        lock(&self.events)
            .iter()
            .filter(|(id, _)| *id > last)
            .cloned()
            .collect()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn push(&self, event: StreamEvent) {
        let id = {
            let mut next = lock(&self.next);
            let id = *next;
            *next += 1;
            id
        };
        let mut events = lock(&self.events);
        if matches!(event, StreamEvent::Preview(_)) {
            events.retain(|(_, e)| !matches!(e, StreamEvent::Preview(_)));
        }
        events.push((id, event));
        drop(events);
        self.changed.send_replace(id);
    }

    /// Whether the stream has ended (a `completed` event was sent).
    pub fn completed(&self) -> bool {
        lock(&self.events)
            .iter()
            .any(|(_, e)| matches!(e, StreamEvent::Completed(_)))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// All live channels.
#[derive(Clone, Default)]
pub struct Hub {
    channels: Arc<Mutex<HashMap<String, Arc<Channel>>>>,
}

impl Hub {
    /// The channel of a prediction, created on first use.
    pub fn channel(&self, id: &str) -> Arc<Channel> {
        lock(&self.channels)
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(Channel::new()))
            .clone()
    }

    /// The channel if the prediction has live events.
    pub fn existing(&self, id: &str) -> Option<Arc<Channel>> {
        lock(&self.channels).get(id).cloned()
    }

    pub fn send(&self, id: &str, event: StreamEvent) {
        self.channel(id).push(event);
    }

    /// Forgets a finished prediction's buffer (streams then rebuild from the database).
    pub fn forget(&self, id: &str) {
        lock(&self.channels).remove(id);
    }

    /// Live channels (bounded by the queue: finished ones are forgotten after a grace time).
    pub fn len(&self) -> usize {
        lock(&self.channels).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
