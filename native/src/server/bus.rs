//! Live events between processes. A worker's events (progress, previews, outputs, the end)
//! reach the event streams of every API process at once through the [`Bus`]; the events table
//! stays the record (a stream that opens late, or a bus that lost notes while reconnecting,
//! reads it). One process alone has nothing to tell: [`LocalBus`] publishes nowhere.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use async_trait::async_trait;
use consistentid_core::api::StreamEvent;

use super::AppState;

/// One event as published: its prediction, id, name and data (`None`: too large to send;
/// the listener reads it from the store).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub prediction: String,
    pub id: u64,
    pub name: String,
    pub data: Option<String>,
}

/// What a subscription yields.
pub enum Heard {
    Note(Note),
    /// The connection was lost and is back: notes may have been missed.
    Gap,
}

/// Events from other processes.
#[async_trait]
pub trait Subscription: Send {
    async fn recv(&mut self) -> Result<Heard>;
}

/// Publishes a process's events to the others.
#[async_trait]
pub trait Bus: Send + Sync {
    async fn publish(&self, note: &Note) -> Result<()>;
    /// `None` when no other process can publish (the embedded host).
    async fn subscribe(&self) -> Result<Option<Box<dyn Subscription>>>;
    /// The latest preview of a prediction published without its data (too large for a
    /// note): (event id, data).
    async fn preview(&self, prediction: &str) -> Result<Option<(u64, String)>>;
}

/// One process: nothing to tell anyone.
pub struct LocalBus;

#[async_trait]
impl Bus for LocalBus {
    async fn publish(&self, _note: &Note) -> Result<()> {
        Ok(())
    }

    async fn subscribe(&self) -> Result<Option<Box<dyn Subscription>>> {
        Ok(None)
    }

    async fn preview(&self, _prediction: &str) -> Result<Option<(u64, String)>> {
        Ok(None)
    }
}

/// The bus as the host holds it.
pub type SharedBus = Arc<dyn Bus>;

/// Brings other processes' events into this process's live channels (those a stream is
/// following), until the host stops. After a gap every channel is woken so that its streams
/// read the store.
pub async fn relay(state: Arc<AppState>) {
    loop {
        let mut subscription = match state.bus.subscribe().await {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(_) => {
                // The database is away: streams poll the store meanwhile.
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            match subscription.recv().await {
                Ok(Heard::Note(note)) => deliver(&state, note).await,
                Ok(Heard::Gap) => state.hub.wake_all(),
                Err(_) => break,
            }
        }
        state.hub.wake_all();
    }
}

async fn deliver(state: &AppState, note: Note) {
    let Some(channel) = state.hub.existing(&note.prediction) else {
        return;
    };
    let event = match (note.name.as_str(), note.data) {
        // Rebuilt from the record when sent (its URLs are each request's own).
        ("completed", _) => match state.store.get(&note.prediction).await {
            Ok(Some(record)) => StreamEvent::Completed(Box::new(
                super::views::prediction(state, &state.base, &record, false).await,
            )),
            _ => return,
        },
        (name, Some(data)) => match StreamEvent::parse(name, &data) {
            Some(event) => event,
            None => return,
        },
        ("preview", None) => match state.bus.preview(&note.prediction).await {
            Ok(Some((id, data))) if id == note.id => match StreamEvent::parse("preview", &data) {
                Some(event) => event,
                None => return,
            },
            _ => return,
        },
        (_, None) => {
            let stored = state
                .store
                .events_after(&note.prediction, note.id.saturating_sub(1))
                .await
                .unwrap_or_default();
            match stored.into_iter().find(|(id, _, _)| *id == note.id) {
                Some((_, name, data)) => match StreamEvent::parse(&name, &data) {
                    Some(event) => event,
                    None => return,
                },
                None => return,
            }
        }
    };
    channel.insert(note.id, event);
}
