//! The durable part of each prediction's event stream (status, output, log, error, completed;
//! not progress or previews), stored with the ids they went out with.

use anyhow::Result;
use rusqlite::{OptionalExtension, params};

use super::SqliteDb;

use crate::server::store::StoredEvent;

impl SqliteDb {
    /// Ended within the last hour, more than `grace_secs` ago, with no stored `completed`.
    pub fn unannounced(&self, grace_secs: f64) -> Result<Vec<String>> {
        let now = crate::server::ids::now();
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT id FROM predictions p WHERE status IN ('succeeded', 'failed', 'canceled') \
               AND completed_at > ?1 AND completed_at < ?2 \
               AND NOT EXISTS (SELECT 1 FROM events e WHERE e.prediction = p.id AND e.name = 'completed')",
        )?;
        let rows = stmt.query_map(params![now - 3600.0, now - grace_secs], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn add_event(&self, prediction: &str, seq: u64, name: &str, data: &str) -> Result<()> {
        self.db().execute(
            "INSERT OR REPLACE INTO events (prediction, seq, name, data) VALUES (?1, ?2, ?3, ?4)",
            params![prediction, seq as i64, name, data],
        )?;
        Ok(())
    }

    /// A prediction's stored events after id `last`, in order.
    pub fn events_after(&self, prediction: &str, last: u64) -> Result<Vec<StoredEvent>> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT seq, name, data FROM events WHERE prediction = ?1 AND seq > ?2 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![prediction, last as i64], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The highest event id a prediction has stored (0 for none).
    pub fn last_event(&self, prediction: &str) -> Result<u64> {
        Ok(self.db().query_row(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE prediction = ?1",
            [prediction],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// A block of `count` ids above `after` and every earlier block (progress events are
    /// not stored, so a restarted host starts above every id it may have sent): its first id,
    /// `None` when the prediction is not stored yet.
    pub fn reserve_events(&self, prediction: &str, after: u64, count: u64) -> Result<Option<u64>> {
        let end: Option<i64> = self
            .db()
            .query_row(
                "UPDATE predictions SET events_reserved = MAX(events_reserved, ?2) + ?3 WHERE id = ?1 RETURNING events_reserved",
                params![prediction, after as i64, count as i64],
                |r| r.get(0),
            )
            .optional()?;
        Ok(end.map(|end| end as u64 + 1 - count))
    }

    /// The highest id a prediction may have sent: a new channel starts above it.
    pub fn event_floor(&self, prediction: &str) -> Result<u64> {
        let reserved: i64 = self
            .db()
            .query_row(
                "SELECT events_reserved FROM predictions WHERE id = ?1",
                [prediction],
                |r| r.get(0),
            )
            .unwrap_or(0);
        Ok(self.last_event(prediction)?.max(reserved as u64))
    }
}
