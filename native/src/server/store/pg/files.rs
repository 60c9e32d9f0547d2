//! Files, the durable events of streams, and share links on PostgreSQL. A file's row is written
//! after its object and deleted before it, so a row never names a missing object.

use anyhow::Result;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::{Blobs, PgStore};
use crate::server::ids::new_id;
use crate::server::store::{FileRecord, StoredEvent};

const FILE_COLUMNS: &str = "SELECT id, sha256, owner, name, content_type, size, kind, prediction, \
     extract(epoch from created_at)::float8 AS created_at FROM files WHERE id = $1";

fn file_record(row: &PgRow) -> Result<FileRecord> {
    Ok(FileRecord {
        id: row.try_get("id")?,
        sha256: row.try_get("sha256")?,
        owner: row.try_get("owner")?,
        name: row.try_get("name")?,
        content_type: row.try_get("content_type")?,
        size: row.try_get::<i64, _>("size")?.max(0) as u64,
        kind: row.try_get("kind")?,
        prediction: row.try_get("prediction")?,
        created_at: row.try_get("created_at")?,
    })
}

impl PgStore {
    pub async fn add_file(
        &self,
        bytes: &[u8],
        owner: &str,
        name: &str,
        content_type: &str,
        kind: &str,
        prediction: Option<&str>,
    ) -> Result<FileRecord> {
        let file = FileRecord::new(bytes, owner, name, content_type, kind, prediction);
        let key = Blobs::key(kind, &file.id);
        self.blobs.put(&key, bytes).await?;
        let inserted = sqlx::query(
            "INSERT INTO files (id, sha256, owner, name, content_type, size, kind, prediction, object_key, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, to_timestamp($10))",
        )
        .bind(&file.id)
        .bind(&file.sha256)
        .bind(&file.owner)
        .bind(&file.name)
        .bind(&file.content_type)
        .bind(file.size as i64)
        .bind(&file.kind)
        .bind(&file.prediction)
        .bind(&key)
        .bind(file.created_at)
        .execute(&self.pool)
        .await;
        if let Err(e) = inserted {
            let _ = self.blobs.delete(&key).await;
            return Err(e.into());
        }
        Ok(file)
    }

    pub async fn file(&self, id: &str) -> Result<Option<FileRecord>> {
        let row = sqlx::query(FILE_COLUMNS)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(file_record).transpose()
    }

    pub async fn attach_file(&self, file: &str, prediction: &str) -> Result<()> {
        sqlx::query("UPDATE files SET prediction = $2 WHERE id = $1")
            .bind(file)
            .bind(prediction)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn read_blob(&self, file: &FileRecord) -> Result<Vec<u8>> {
        self.blobs.get(&Blobs::key(&file.kind, &file.id)).await
    }

    /// Deletes objects older than `age` that no file row names (a write whose answer was lost
    /// though the store kept it, a process stopped between the object and its row); how many.
    pub async fn sweep_orphans(&self, age: std::time::Duration) -> Result<usize> {
        let keys = self.blobs.older_than(age).await?;
        let mut swept = 0;
        for chunk in keys.chunks(1000) {
            let known: Vec<String> =
                sqlx::query_scalar("SELECT object_key FROM files WHERE object_key = ANY($1)")
                    .bind(chunk)
                    .fetch_all(&self.pool)
                    .await?;
            for key in chunk.iter().filter(|k| !known.contains(k)) {
                self.blobs.delete(key).await?;
                swept += 1;
            }
        }
        Ok(swept)
    }

    /// The object goes first: a face whose object cannot be deleted now keeps its row, and
    /// the janitor tries again.
    pub async fn delete_file(&self, id: &str) -> Result<()> {
        let key: Option<String> = sqlx::query_scalar("SELECT object_key FROM files WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(key) = key {
            self.blobs.delete(&key).await?;
            sqlx::query("DELETE FROM files WHERE id = $1")
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    pub async fn set_source(&self, file: &str, source: &str) -> Result<()> {
        sqlx::query("UPDATE files SET source = $2 WHERE id = $1")
            .bind(file)
            .bind(source)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// As the embedded store: each ended prediction's copy of its face (unless kept), and each
    /// upload predictions were made from once none of them waits or runs.
    pub async fn release_faces(&self) -> Result<usize> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT u.id FROM files u WHERE u.kind = 'upload' AND u.prediction IS NULL \
               AND EXISTS (SELECT 1 FROM files r WHERE r.source = u.id) \
               AND NOT EXISTS (SELECT 1 FROM files r JOIN predictions p ON r.prediction = p.id \
                               WHERE r.source = u.id AND p.status IN ('starting', 'processing')) \
             UNION ALL \
             SELECT f.id FROM files f JOIN predictions p ON f.prediction = p.id \
               WHERE f.kind = 'upload' AND NOT p.keep_face AND p.status IN ('succeeded', 'failed', 'canceled')",
        )
        .fetch_all(&self.pool)
        .await?;
        for id in &ids {
            self.delete_file(id).await?;
        }
        Ok(ids.len())
    }

    pub async fn add_event(
        &self,
        prediction: &str,
        seq: u64,
        name: &str,
        data: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO prediction_events (prediction, seq, kind, data) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (prediction, seq) DO UPDATE SET kind = EXCLUDED.kind, data = EXCLUDED.data",
        )
        .bind(prediction)
        .bind(seq as i64)
        .bind(name)
        .bind(data)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn events_after(&self, prediction: &str, last: u64) -> Result<Vec<StoredEvent>> {
        let rows = sqlx::query(
            "SELECT seq, kind, data FROM prediction_events WHERE prediction = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(prediction)
        .bind(last.min(i64::MAX as u64) as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<i64, _>(0)? as u64, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    /// Under the row's lock: each process's block is above every earlier one.
    pub async fn reserve_events(
        &self,
        prediction: &str,
        after: u64,
        count: u64,
    ) -> Result<Option<u64>> {
        let end: Option<i64> = sqlx::query_scalar(
            "UPDATE predictions SET events_reserved = GREATEST(events_reserved, $2) + $3 WHERE id = $1 \
             RETURNING events_reserved",
        )
        .bind(prediction)
        .bind(after as i64)
        .bind(count as i64)
        .fetch_optional(&self.pool)
        .await?;
        Ok(end.map(|end| end as u64 + 1 - count))
    }

    pub async fn event_floor(&self, prediction: &str) -> Result<u64> {
        let floor: i64 = sqlx::query_scalar(
            "SELECT GREATEST(COALESCE((SELECT max(seq) FROM prediction_events WHERE prediction = $1), 0), \
                             COALESCE((SELECT events_reserved FROM predictions WHERE id = $1), 0))",
        )
        .bind(prediction)
        .fetch_one(&self.pool)
        .await?;
        Ok(floor.max(0) as u64)
    }

    pub async fn create_share(&self, prediction: &str, include_face: bool) -> Result<String> {
        let id = new_id();
        sqlx::query("INSERT INTO shares (share_id, prediction, include_face) VALUES ($1, $2, $3)")
            .bind(&id)
            .bind(prediction)
            .bind(include_face)
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    pub async fn share(&self, share_id: &str) -> Result<Option<(String, bool)>> {
        Ok(
            sqlx::query_as("SELECT prediction, include_face FROM shares WHERE share_id = $1")
                .bind(share_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn face_shared(&self, file: &str) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM shares s JOIN predictions p ON s.prediction = p.id \
             WHERE s.include_face AND p.face_file = $1)",
        )
        .bind(file)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn delete_shares(&self, prediction: &str) -> Result<usize> {
        let done = sqlx::query("DELETE FROM shares WHERE prediction = $1")
            .bind(prediction)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() as usize)
    }
}
