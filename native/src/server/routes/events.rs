//! `GET /v1/predictions/{id}/events`: the prediction's server-sent events. Each event has an
//! `id:` from one sequence per prediction, the same in the live stream, in the replay from the
//! database after the live buffer is gone, and after a restart; a client that reconnects with
//! `Last-Event-ID` continues where it left off, and one that resumes at or past the end of a
//! finished prediction gets its `completed` event and the end of the stream. A keep-alive
//! comment goes out every 15 s. Disconnecting does not cancel the job.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use consistentid_core::api::{OutputEvent, Status, StatusEvent, StreamEvent};
use futures_util::Stream;

use super::base_url;
use crate::server::AppState;
use crate::server::hub::Channel;
use crate::server::ids::is_id;
use crate::server::problem::ApiError;
use crate::server::views;

const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// With a shared store, how often a waiting stream reads the events another process's worker
/// stored (progress and previews stay with that process).
const STORE_POLL: Duration = Duration::from_secs(1);

#[utoipa::path(get, path = "/v1/predictions/{id}/events", params(("id" = String, Path),
        ("Last-Event-ID" = Option<String>, Header, description = "resume after this event")),
    responses((status = 200, description = "Server-sent events: status, progress, preview, output, candidates (best_of), log, error, completed", content_type = "text/event-stream"),
        (status = 404, body = consistentid_core::api::Problem, content_type = "application/problem+json")))]
pub async fn stream(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    if !is_id(&id) {
        return Err(ApiError::not_found("prediction"));
    }
    let record = state
        .store
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("prediction"))?;
    let last: u64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let source = match state.hub.existing(&id) {
        Some(channel) => Source::Live(channel),
        None if record.status.is_terminal() => Source::Stored,
        None => {
            // Queued or running after a restart: start a live channel. With a shared store the
            // job may run in another process, which numbers its events: they come from the
            // store, and this process adds none of its own.
            let channel = state.hub.channel(&id).await;
            if channel.after(0).is_empty() && !state.store.is_shared() {
                let queue_position = if record.status == Status::Starting {
                    state.store.queue_position(record.seq).await.ok()
                } else {
                    None
                };
                let status = StatusEvent {
                    status: record.status,
                    queue_position,
                };
                state.hub.send(&id, StreamEvent::Status(status)).await;
            }
            Source::Live(channel)
        }
    };
    let reader = Reader {
        base: base_url(&state, &headers),
        state: state.clone(),
        id,
        source,
        last,
        pending: VecDeque::new(),
        done: false,
        polled: false,
        stop: state.stop.subscribe(),
    };
    let events =
        futures_util::stream::unfold(
            reader,
            |mut r| async move { r.next().await.map(|e| (Ok(e), r)) },
        );
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive")))
}

enum Source {
    Live(Arc<Channel>),
    /// A finished prediction whose live buffer is gone: the stored events.
    Stored,
}

/// An event ready to send: (id, name, JSON data).
type Ready = (u64, String, String);

struct Reader {
    state: Arc<AppState>,
    /// This request's base URL, for the URLs in `output` and `completed`.
    base: String,
    id: String,
    source: Source,
    last: u64,
    pending: VecDeque<Ready>,
    done: bool,
    /// Whether the store was read for this stream yet (shared stores).
    polled: bool,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl Reader {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if self.done {
                return None;
            }
            if let Some((id, name, data)) = self.pending.pop_front() {
                self.last = self.last.max(id);
                if name == "completed" {
                    self.done = true;
                }
                return Some(Event::default().id(id.to_string()).event(name).data(data));
            }
            match &self.source {
                Source::Stored => {
                    let fresh = self.stored_after().await;
                    if fresh.is_empty() {
                        return None;
                    }
                    self.pending.extend(fresh);
                }
                Source::Live(channel) => {
                    let channel = channel.clone();
                    let mut changes = channel.subscribe();
                    let fresh = channel.after(self.last);
                    if !fresh.is_empty() {
                        for (id, e) in fresh {
                            let data = self.render(&e).await;
                            self.pending.push_back((id, e.name().to_string(), data));
                        }
                        continue;
                    }
                    if let Some(end) = channel.completed() {
                        // Resumed at or past the end: the end again, then close.
                        let data = self.completed_data().await;
                        self.pending.push_back((end, "completed".into(), data));
                        continue;
                    }
                    let shared = self.state.store.is_shared();
                    // An id from the future (a stale client): continue from the present. (With
                    // a shared store the present is in the store, not in this buffer.)
                    if !shared {
                        self.last = self.last.min(channel.latest());
                    }
                    if *self.stop.borrow() {
                        return None;
                    }
                    if shared && !self.polled {
                        // What happened before this stream opened, at once.
                        self.polled = true;
                        self.merge_stored(&channel).await;
                        continue;
                    }
                    let polled = tokio::select! {
                        _ = changes.changed() => false,
                        _ = self.stop.changed() => false,
                        _ = tokio::time::sleep(STORE_POLL), if shared => true,
                    };
                    if polled {
                        self.merge_stored(&channel).await;
                    }
                }
            }
        }
    }

    /// Events stored after `last` (by whichever process runs the job) with the live ones,
    /// in id order: each id once, the live rendering first.
    async fn merge_stored(&mut self, channel: &Channel) {
        let stored = self
            .state
            .store
            .events_after(&self.id, self.last)
            .await
            .unwrap_or_default();
        if stored.is_empty() {
            // Ended without a `completed` this stream can see (its worker died, or numbered
            // it below an id this stream already sent): end it from the record.
            if let Ok(Some(r)) = self.state.store.get(&self.id).await
                && r.status.is_terminal()
                && channel.after(self.last).is_empty()
            {
                let data = self.completed_data().await;
                self.pending
                    .push_back((self.last + 1, "completed".into(), data));
            }
            return;
        }
        // Read after the store: every live event numbered before a stored one is here.
        let live = channel.after(self.last);
        let mut ready: Vec<Ready> = Vec::new();
        for (id, e) in &live {
            ready.push((*id, e.name().to_string(), self.render(e).await));
        }
        for (id, name, data) in stored {
            if !live.iter().any(|(l, _)| *l == id) {
                let data = self.stored_data(&name, data).await;
                ready.push((id, name, data));
            }
        }
        ready.sort_by_key(|(id, _, _)| *id);
        self.pending.extend(ready);
    }

    /// A stored event's data as this request sends it.
    async fn stored_data(&self, name: &str, data: String) -> String {
        match name {
            "completed" => self.completed_data().await,
            "output" => match serde_json::from_str::<OutputEvent>(&data) {
                Ok(mut o) => {
                    o.url = views::absolute(&self.base, &o.url);
                    StreamEvent::Output(o).data()
                }
                Err(_) => data,
            },
            _ => data,
        }
    }

    /// A live event's data, with this request's URLs.
    async fn render(&self, event: &StreamEvent) -> String {
        match event {
            StreamEvent::Output(o) => StreamEvent::Output(OutputEvent {
                url: views::absolute(&self.base, &o.url),
                ..o.clone()
            })
            .data(),
            StreamEvent::Completed(_) => self.completed_data().await,
            other => other.data(),
        }
    }

    /// The prediction as it is now, as a `completed` event's data.
    async fn completed_data(&self) -> String {
        match self.state.store.get(&self.id).await {
            Ok(Some(record)) => {
                let view = views::prediction(&self.state, &self.base, &record, false).await;
                StreamEvent::Completed(Box::new(view)).data()
            }
            _ => "{}".into(),
        }
    }

    /// The stored events after `last`, ending with `completed` (sent again to a client that
    /// resumes at or past it).
    async fn stored_after(&self) -> Vec<Ready> {
        let store = &self.state.store;
        let mut events: Vec<Ready> = Vec::new();
        for (id, name, data) in store
            .events_after(&self.id, self.last)
            .await
            .unwrap_or_default()
        {
            let data = self.stored_data(&name, data).await;
            events.push((id, name, data));
        }
        if events.last().is_none_or(|(_, name, _)| name != "completed") {
            let stored_end = store
                .events_after(&self.id, 0)
                .await
                .unwrap_or_default()
                .iter()
                .rev()
                .find(|(_, name, _)| name == "completed")
                .map(|(id, _, _)| *id);
            let end = match stored_end {
                Some(id) => id,
                None => store.event_floor(&self.id).await.unwrap_or(0) + 1,
            };
            events.push((end, "completed".into(), self.completed_data().await));
        }
        events
    }
}
