//! The `workers` table: each worker process's presence, written every heartbeat.

use std::time::Duration;

use anyhow::Result;
use sqlx::Row;

use super::PgStore;
use crate::server::store::WorkerInfo;

impl PgStore {
    pub async fn worker_seen(&self, w: &WorkerInfo) -> Result<()> {
        sqlx::query(
            "INSERT INTO workers (id, device, status, detail, busy) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET device = $2, status = $3, detail = $4, busy = $5, \
               last_seen = now()",
        )
        .bind(&w.id)
        .bind(&w.device)
        .bind(&w.status)
        .bind(&w.detail)
        .bind(w.busy)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn workers(&self, within: Duration) -> Result<Vec<WorkerInfo>> {
        let rows = sqlx::query(
            "SELECT id, device, status, detail, busy, \
               extract(epoch from now() - last_seen)::float8 AS ago \
             FROM workers WHERE last_seen > now() - make_interval(secs => $1) ORDER BY started_at, id",
        )
        .bind(within.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WorkerInfo {
                    id: r.try_get("id")?,
                    device: r.try_get("device")?,
                    status: r.try_get("status")?,
                    detail: r.try_get("detail")?,
                    busy: r.try_get("busy")?,
                    seen_ago: r.try_get("ago")?,
                })
            })
            .collect()
    }

    /// Removes a worker that stopped cleanly, and rows silent for a day (crashed workers).
    pub async fn worker_gone(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM workers WHERE id = $1 OR last_seen < now() - interval '1 day'")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
