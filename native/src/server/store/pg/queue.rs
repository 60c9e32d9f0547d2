//! Predictions and the queue on PostgreSQL: admission under one advisory lock (exact across API
//! processes), claims with `SKIP LOCKED`, leases, fenced writes and the reaper.

use std::time::Duration;

use anyhow::Result;
use consistentid_core::api::{Candidate, Metrics, OutputInfo, Status};
use sqlx::Row;

use super::{PgStore, fenced, record, record_columns};
use crate::server::store::{Fence, LOST_TWICE, Reaped, Record, lost_message};

impl PgStore {
    pub async fn insert_if_room(
        &self,
        r: &Record,
        capacity: usize,
        per_owner: usize,
    ) -> Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        // Admissions take turns, so the counts below stay true until the insert commits.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('consistentid.admission'))")
            .execute(&mut *tx)
            .await?;
        let seq: Option<i64> = sqlx::query_scalar(
            "INSERT INTO predictions (id, owner, model, version, status, input, face_file, keep_face, created_at, logs, max_attempts) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, to_timestamp($9), $10, $13 \
             WHERE (SELECT count(*) FROM predictions WHERE status = 'starting') < $11 \
               AND (SELECT count(*) FROM predictions WHERE status = 'starting' AND owner = $2) < $12 \
             RETURNING seq",
        )
        .bind(&r.id)
        .bind(&r.owner)
        .bind(&r.model)
        .bind(&r.version)
        .bind(r.status.as_str())
        .bind(serde_json::to_value(&r.input)?)
        .bind(&r.face_file)
        .bind(r.keep_face)
        .bind(r.created_at)
        .bind(&r.logs)
        .bind(capacity as i64)
        .bind(per_owner as i64)
        .bind(self.max_attempts as i32)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(seq)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Record>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            record_columns!(),
            " FROM predictions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    pub async fn list(
        &self,
        owner: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Record>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            record_columns!(),
            " FROM predictions WHERE owner = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
        ))
        .bind(owner)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit.min(i64::MAX as usize) as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    pub async fn has_newer(&self, owner: &str, seq: i64) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM predictions WHERE owner = $1 AND seq > $2)",
        )
        .bind(owner)
        .bind(seq)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn queued(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM predictions WHERE status = 'starting' ORDER BY priority, seq",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn queue_position(&self, seq: i64) -> Result<usize> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM predictions WHERE status = 'starting' AND seq < $1",
        )
        .bind(seq)
        .fetch_one(&self.pool)
        .await?;
        Ok(n as usize)
    }

    pub async fn count_waiting(&self, owner: Option<&str>) -> Result<usize> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM predictions WHERE status = 'starting' AND ($1::text IS NULL OR owner = $1)",
        )
        .bind(owner)
        .fetch_one(&self.pool)
        .await?;
        Ok(n as usize)
    }

    /// The next queued job, now this worker's for `lease`: claimers skip rows another is
    /// claiming, so each job goes to exactly one.
    pub async fn claim(&self, worker: &str, lease: Duration) -> Result<Option<Record>> {
        let row = sqlx::query(concat!(
            "UPDATE predictions SET status = 'processing', worker_id = $1, attempts = attempts + 1, \
               started_at = now(), lease_until = now() + make_interval(secs => $2), cancel_requested = false \
             WHERE seq = (SELECT seq FROM predictions WHERE status = 'starting' AND run_after <= now() \
                          ORDER BY priority, seq LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING ",
            record_columns!()
        ))
        .bind(worker)
        .bind(lease.as_secs_f64())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    pub async fn heartbeat(&self, fence: &Fence, lease: Duration) -> Result<Option<bool>> {
        Ok(sqlx::query_scalar(concat!(
            "UPDATE predictions SET lease_until = now() + make_interval(secs => $4) WHERE ",
            fenced!(),
            " RETURNING cancel_requested"
        ))
        .bind(&fence.id)
        .bind(&fence.worker)
        .bind(fence.attempt as i32)
        .bind(lease.as_secs_f64())
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn finish(
        &self,
        fence: &Fence,
        status: Status,
        error: Option<&str>,
        logs: &str,
        metrics: &Metrics,
    ) -> Result<bool> {
        let done = sqlx::query(concat!(
            "UPDATE predictions SET status = $4, error = $5, logs = $6, metrics = $7, completed_at = now(), \
               lease_until = NULL WHERE ",
            fenced!()
        ))
        .bind(&fence.id)
        .bind(&fence.worker)
        .bind(fence.attempt as i32)
        .bind(status.as_str())
        .bind(error)
        .bind(logs)
        .bind(serde_json::to_value(metrics)?)
        .execute(&self.pool)
        .await?;
        // Its live preview is of no use now (a row left by a failure here goes with the
        // prediction).
        let _ = sqlx::query("DELETE FROM previews WHERE prediction = $1")
            .bind(&fence.id)
            .execute(&self.pool)
            .await;
        Ok(done.rows_affected() == 1)
    }

    /// A graceful stop: back to the queue at once, the attempt not counted.
    pub async fn requeue(&self, fence: &Fence) -> Result<bool> {
        let done = sqlx::query(concat!(
            "UPDATE predictions SET status = 'starting', started_at = NULL, attempts = GREATEST(attempts - 1, 0), \
               outputs = '[]', output_metadata = '[]', candidates = NULL, worker_id = NULL, lease_until = NULL \
             WHERE ",
            fenced!()
        ))
        .bind(&fence.id)
        .bind(&fence.worker)
        .bind(fence.attempt as i32)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn set_progress(
        &self,
        fence: &Fence,
        outputs: &[String],
        metadata: &[OutputInfo],
        logs: &str,
    ) -> Result<bool> {
        let done = sqlx::query(concat!(
            "UPDATE predictions SET outputs = $4, output_metadata = $5, logs = $6 WHERE ",
            fenced!()
        ))
        .bind(&fence.id)
        .bind(&fence.worker)
        .bind(fence.attempt as i32)
        .bind(serde_json::to_value(outputs)?)
        .bind(serde_json::to_value(metadata)?)
        .bind(logs)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn set_candidates(&self, fence: &Fence, candidates: &[Candidate]) -> Result<bool> {
        let done = sqlx::query(concat!(
            "UPDATE predictions SET candidates = $4 WHERE ",
            fenced!()
        ))
        .bind(&fence.id)
        .bind(&fence.worker)
        .bind(fence.attempt as i32)
        .bind(serde_json::to_value(candidates)?)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn cancel_queued(&self, id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE predictions SET status = 'canceled', completed_at = now() WHERE id = $1 AND status = 'starting'",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Asks the worker running `id` (in any process) to stop: its next heartbeat sees it.
    pub async fn request_cancel(&self, id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE predictions SET cancel_requested = true WHERE id = $1 AND status = 'processing'",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Jobs whose lease ran out: queued again while attempts remain, else failed; canceled if
    /// their owner had asked. Concurrent reapers skip each other's rows. Images the lost
    /// attempt stored go with it, in the same transaction (no new attempt can have begun).
    pub async fn reap(&self) -> Result<Reaped> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "UPDATE predictions p SET \
               status = CASE WHEN p.cancel_requested THEN 'canceled' \
                             WHEN p.attempts >= p.max_attempts THEN 'failed' ELSE 'starting' END, \
               error = CASE WHEN NOT p.cancel_requested AND p.attempts >= p.max_attempts THEN \
                 CASE p.max_attempts WHEN 2 THEN $1 WHEN 1 THEN $2 \
                   ELSE format('the host stopped %s times while this prediction ran; it was not retried again', p.max_attempts) END \
               END, \
               completed_at = CASE WHEN p.cancel_requested OR p.attempts >= p.max_attempts THEN now() END, \
               started_at = CASE WHEN p.cancel_requested OR p.attempts >= p.max_attempts THEN p.started_at END, \
               worker_id = NULL, lease_until = NULL, run_after = now(), \
               outputs = '[]', output_metadata = '[]', candidates = NULL \
             WHERE p.seq IN (SELECT seq FROM predictions WHERE status = 'processing' AND lease_until < now() \
                             FOR UPDATE SKIP LOCKED) \
             RETURNING p.id, p.status",
        )
        .bind(LOST_TWICE)
        .bind(lost_message(1))
        .fetch_all(&mut *tx)
        .await?;
        let ids: Vec<String> = rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let lost: Vec<String> = sqlx::query_scalar(
            "DELETE FROM files WHERE prediction = ANY($1) AND kind = 'output' RETURNING object_key",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        for key in lost {
            // An object left behind is unreachable (no row names it) and only costs space.
            let _ = self.blobs.delete(&key).await;
        }
        let mut reaped = Reaped::default();
        for row in rows {
            let (id, status): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            if status == "starting" {
                reaped.again.push(id);
            } else {
                reaped.failed.push(id);
            }
        }
        Ok(reaped)
    }

    /// Taken on by one process at a time (the claim lapses after a minute).
    pub async fn unannounced(&self, grace: Duration) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "UPDATE predictions SET announce_claimed = now() WHERE seq IN ( \
               SELECT seq FROM predictions p WHERE completed_at > now() - interval '1 hour' \
                 AND completed_at < now() - make_interval(secs => $1) \
                 AND (announce_claimed IS NULL OR announce_claimed < now() - interval '1 minute') \
                 AND NOT EXISTS (SELECT 1 FROM prediction_events e \
                                 WHERE e.prediction = p.id AND e.kind = 'completed') \
               FOR UPDATE SKIP LOCKED) \
             RETURNING id",
        )
        .bind(grace.as_secs_f64())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes a prediction, its events and shares; returns its file ids.
    pub async fn delete(&self, id: &str) -> Result<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        let files: Vec<String> = sqlx::query_scalar("SELECT id FROM files WHERE prediction = $1")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        for sql in [
            "DELETE FROM prediction_events WHERE prediction = $1",
            "DELETE FROM previews WHERE prediction = $1",
            "DELETE FROM predictions WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(files)
    }

    pub async fn expired(&self, before: f64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM predictions WHERE completed_at IS NOT NULL AND completed_at < to_timestamp($1) \
               AND id NOT IN (SELECT prediction FROM shares)",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn stale_uploads(&self, before: f64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM files WHERE kind = 'upload' AND prediction IS NULL AND created_at < to_timestamp($1)",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await?)
    }
}
