//! Live events of running predictions: a replay buffer per prediction (so a client that
//! reconnects with `Last-Event-ID` misses nothing) and a wake-up for waiting streams. Only the
//! latest preview is kept in the buffer, so memory stays bounded however long a job runs.
//!
//! Event ids are one sequence per prediction for its whole life: the durable events (all but
//! progress and previews) are stored with their ids, and ids are reserved in the database in
//! blocks, each above every block before it, so after a restart a new buffer starts above every
//! id already sent, and processes sharing a store never hand out the same id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use consistentid_core::api::StreamEvent;
use tokio::sync::watch;

use super::bus::{Bus, Note, SharedBus};
use super::store::{SharedStore, Store};

/// Ids reserved in the database at a time.
const RESERVE: u64 = 1000;

/// One prediction's events.
pub struct Channel {
    prediction: String,
    events: Mutex<Vec<(u64, StreamEvent)>>,
    /// (next id, ids reserved up to): held while an event is numbered and stored, so ids go
    /// out in order.
    next: tokio::sync::Mutex<(u64, u64)>,
    /// The latest id handed out.
    latest: std::sync::atomic::AtomicU64,
    /// Bumped on every event; streams wait on it.
    changed: watch::Sender<u64>,
}

/// Whether an event is kept in the database (progress and previews are only live).
pub fn is_durable(event: &StreamEvent) -> bool {
    !matches!(event, StreamEvent::Progress(_) | StreamEvent::Preview(_))
}

impl Channel {
    fn new(prediction: &str, floor: u64) -> Self {
        Self {
            prediction: prediction.to_string(),
            events: Mutex::new(Vec::new()),
            next: tokio::sync::Mutex::new((floor + 1, floor)),
            latest: floor.into(),
            changed: watch::channel(floor).0,
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

    /// The id of the latest event (or the floor the channel started at).
    pub fn latest(&self) -> u64 {
        self.latest.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    async fn push(&self, event: StreamEvent, store: &dyn Store, bus: &dyn Bus) {
        let mut next = self.next.lock().await;
        if next.0 > next.1
            && let Ok(Some(first)) = store
                .reserve_events(&self.prediction, next.0 - 1, RESERVE)
                .await
        {
            *next = (first, first + RESERVE - 1);
        }
        // Unreserved only before the prediction is stored (its stream's first event).
        let id = next.0;
        next.0 += 1;
        // A completed event is rebuilt from the record when sent; its id is what counts.
        let data = match &event {
            StreamEvent::Completed(_) => String::new(),
            other => other.data(),
        };
        if is_durable(&event) {
            // Not stored (full disk): the live stream still has it; a late replay lacks it.
            let _ = store
                .add_event(&self.prediction, id, event.name(), &data)
                .await;
        }
        let name = event.name().to_string();
        // In the buffer before it is published: this process hears its own notes too, and
        // finds the event already here.
        self.insert(id, event);
        // Published after it is stored: a listener that must read it finds it. Lost when the
        // database is away: other processes' streams read the store when it is back.
        let note = Note {
            prediction: self.prediction.clone(),
            id,
            name,
            data: Some(data),
        };
        let _ = bus.publish(&note).await;
        drop(next);
    }

    /// An event another process numbered and sent (through the bus), in id order; one
    /// already here is not added again.
    pub fn insert(&self, id: u64, event: StreamEvent) {
        let mut events = lock(&self.events);
        if events.binary_search_by_key(&id, |(i, _)| *i).is_ok() {
            return;
        }
        if matches!(event, StreamEvent::Preview(_)) {
            events.retain(|(_, e)| !matches!(e, StreamEvent::Preview(_)));
        }
        // Ids are in order: a local event goes at the end.
        let at = events.partition_point(|(i, _)| *i < id);
        events.insert(at, (id, event));
        drop(events);
        self.latest
            .fetch_max(id, std::sync::atomic::Ordering::SeqCst);
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The id of the `completed` event, once sent.
    pub fn completed(&self) -> Option<u64> {
        lock(&self.events)
            .iter()
            .find(|(_, e)| matches!(e, StreamEvent::Completed(_)))
            .map(|(id, _)| *id)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// All live channels.
#[derive(Clone)]
pub struct Hub {
    channels: Arc<Mutex<HashMap<String, Arc<Channel>>>>,
    store: SharedStore,
    bus: SharedBus,
}

impl Hub {
    pub fn new(store: SharedStore, bus: SharedBus) -> Self {
        Self {
            channels: Arc::default(),
            store,
            bus,
        }
    }

    /// The channel of a prediction, created on first use (numbered after what the prediction
    /// already sent, before a restart too).
    pub async fn channel(&self, id: &str) -> Arc<Channel> {
        if let Some(c) = self.existing(id) {
            return c;
        }
        let floor = self.store.event_floor(id).await.unwrap_or(0);
        lock(&self.channels)
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(Channel::new(id, floor)))
            .clone()
    }

    /// The channel if the prediction has live events.
    pub fn existing(&self, id: &str) -> Option<Arc<Channel>> {
        lock(&self.channels).get(id).cloned()
    }

    pub async fn send(&self, id: &str, event: StreamEvent) {
        self.channel(id)
            .await
            .push(event, &*self.store, &*self.bus)
            .await;
    }

    /// Forgets a finished prediction's buffer (streams then replay from the database).
    pub fn forget(&self, id: &str) {
        lock(&self.channels).remove(id);
    }

    /// Forgets the buffers of ended predictions (their streams replay from the database);
    /// the janitor's sweep, for channels no worker here forgets.
    pub fn forget_completed(&self) {
        lock(&self.channels).retain(|_, c| c.completed().is_none());
    }

    /// Wakes every stream (events may have been missed: they read the store).
    pub fn wake_all(&self) {
        for c in lock(&self.channels).values() {
            c.changed.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Live channels (bounded by the queue: finished ones are forgotten after a grace time).
    pub fn len(&self) -> usize {
        lock(&self.channels).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
