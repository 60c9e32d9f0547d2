//! The bus on PostgreSQL: `NOTIFY consistentid_events` with the event in the payload, and a
//! `LISTEN` connection per process. A payload over PostgreSQL's limit goes without its data:
//! a durable event is read from the events table, a preview from the `previews` table.

use anyhow::Result;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgListener, PgPool};

use crate::server::bus::{Bus, Heard, Note, Subscription};

const CHANNEL: &str = "consistentid_events";
/// PostgreSQL refuses payloads of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7900;

/// The bus of processes sharing one database.
#[derive(Clone)]
pub struct PgBus {
    pool: PgPool,
}

#[derive(Serialize)]
struct Payload<'a> {
    p: &'a str,
    i: u64,
    n: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    d: Option<&'a str>,
}

/// A payload as received (owned: the data is JSON inside a JSON string, full of escapes).
#[derive(Deserialize)]
struct Received {
    p: String,
    i: u64,
    n: String,
    d: Option<String>,
}

impl PgBus {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl Bus for PgBus {
    async fn publish(&self, note: &Note) -> Result<()> {
        let mut payload = Payload {
            p: &note.prediction,
            i: note.id,
            n: &note.name,
            d: note.data.as_deref(),
        };
        let mut text = serde_json::to_string(&payload)?;
        if text.len() > MAX_PAYLOAD {
            if note.name == "preview"
                && let Some(data) = &note.data
            {
                sqlx::query(
                    "INSERT INTO previews (prediction, seq, data) VALUES ($1, $2, $3) \
                     ON CONFLICT (prediction) DO UPDATE SET seq = $2, data = $3",
                )
                .bind(&note.prediction)
                .bind(note.id as i64)
                .bind(data)
                .execute(&self.pool)
                .await?;
            }
            payload.d = None;
            text = serde_json::to_string(&payload)?;
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(&text)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn subscribe(&self) -> Result<Option<Box<dyn Subscription>>> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(Box::new(PgSubscription { listener })))
    }

    async fn preview(&self, prediction: &str) -> Result<Option<(u64, String)>> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, data FROM previews WHERE prediction = $1")
                .bind(prediction)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(seq, data)| (seq as u64, data)))
    }
}

struct PgSubscription {
    listener: PgListener,
}

#[async_trait]
impl Subscription for PgSubscription {
    async fn recv(&mut self) -> Result<Heard> {
        loop {
            let Some(notification) = self.listener.try_recv().await? else {
                return Ok(Heard::Gap);
            };
            // A payload that is not ours (someone else's NOTIFY on the channel) is skipped.
            if let Ok(p) = serde_json::from_str::<Received>(notification.payload()) {
                return Ok(Heard::Note(Note {
                    prediction: p.p,
                    id: p.i,
                    name: p.n,
                    data: p.d,
                }));
            }
        }
    }
}
