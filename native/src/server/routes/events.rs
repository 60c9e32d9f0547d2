//! `GET /v1/predictions/{id}/events`: the prediction's server-sent events. Each event has an
//! `id:`, so a client that reconnects with `Last-Event-ID` continues where it left off; a
//! keep-alive comment goes out every 15 s; the stream ends after `completed`. Disconnecting
//! does not cancel the job.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use consistentid_core::api::{OutputEvent, Status, StatusEvent, StreamEvent};
use futures_util::Stream;

use crate::server::AppState;
use crate::server::hub::Channel;
use crate::server::ids::is_id;
use crate::server::problem::ApiError;
use crate::server::views;

const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[utoipa::path(get, path = "/v1/predictions/{id}/events", params(("id" = String, Path),
        ("Last-Event-ID" = Option<String>, Header, description = "resume after this event")),
    responses((status = 200, description = "Server-sent events: status, progress, preview, output, log, error, completed", content_type = "text/event-stream"),
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
        .get(&id)?
        .ok_or_else(|| ApiError::not_found("prediction"))?;
    let last: u64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let source = match state.hub.existing(&id) {
        Some(channel) => Source::Live(channel),
        None if record.status.is_terminal() => {
            // Long finished: rebuild the end of the story from the database.
            let mut events = vec![StreamEvent::Status(StatusEvent {
                status: record.status,
                queue_position: None,
            })];
            for (index, f) in record.outputs.iter().enumerate() {
                events.push(StreamEvent::Output(OutputEvent {
                    index,
                    url: views::file_url(&state, f),
                }));
            }
            events.push(StreamEvent::Completed(Box::new(views::prediction(
                &state, &record, false,
            ))));
            Source::Replay(
                events
                    .into_iter()
                    .enumerate()
                    .map(|(i, e)| (i as u64 + 1, e))
                    .filter(|(i, _)| *i > last)
                    .collect(),
            )
        }
        None => {
            // Queued or running after a restart: start a live channel.
            let channel = state.hub.channel(&id);
            if channel.after(0).is_empty() {
                state.hub.send(
                    &id,
                    StreamEvent::Status(StatusEvent {
                        status: record.status,
                        queue_position: (record.status == Status::Starting)
                            .then(|| state.store.queue_position(record.seq).ok())
                            .flatten(),
                    }),
                );
            }
            Source::Live(channel)
        }
    };
    let reader = Reader {
        source,
        last,
        pending: VecDeque::new(),
        done: false,
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
    Replay(VecDeque<(u64, StreamEvent)>),
}

struct Reader {
    source: Source,
    last: u64,
    pending: VecDeque<(u64, StreamEvent)>,
    done: bool,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl Reader {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if self.done {
                return None;
            }
            if let Some((id, event)) = self.pending.pop_front() {
                self.last = id;
                if matches!(event, StreamEvent::Completed(_)) {
                    self.done = true;
                }
                return Some(
                    Event::default()
                        .id(id.to_string())
                        .event(event.name())
                        .data(event.data()),
                );
            }
            match &mut self.source {
                Source::Replay(events) => {
                    if events.is_empty() {
                        return None;
                    }
                    self.pending.append(events);
                }
                Source::Live(channel) => {
                    let mut changes = channel.subscribe();
                    let fresh = channel.after(self.last);
                    if fresh.is_empty() {
                        if *self.stop.borrow() {
                            return None;
                        }
                        tokio::select! {
                            _ = changes.changed() => {}
                            _ = self.stop.changed() => {}
                        }
                        continue;
                    }
                    self.pending.extend(fresh);
                }
            }
        }
    }
}
