//! The embedded store: one SQLite database (WAL, versioned migrations) under `--data`, plus
//! the content-addressed files next to it. Blocking calls, run off the async runtime by
//! [`super::SqliteStore`].

mod async_store;
mod events;
mod files;
mod shares;

pub use async_store::SqliteStore;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result};
use consistentid_core::api::{Candidate, Metrics, OutputInfo, Status};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Fence, Record, lost_message};
use crate::server::ids::now;

/// Each entry upgrades the schema by one version (`PRAGMA user_version`).
const MIGRATIONS: [&str; 3] = [
    r#"
CREATE TABLE predictions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT NOT NULL,
    face_file TEXT,
    keep_face INTEGER NOT NULL DEFAULT 0,
    outputs TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    logs TEXT NOT NULL DEFAULT '',
    metrics TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    started_at REAL,
    completed_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX predictions_owner ON predictions (owner, seq);
CREATE INDEX predictions_status ON predictions (status, seq);
CREATE TABLE files (
    id TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    kind TEXT NOT NULL,
    prediction TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX files_sha ON files (sha256);
CREATE INDEX files_prediction ON files (prediction);
CREATE TABLE shares (
    share_id TEXT PRIMARY KEY,
    prediction TEXT NOT NULL,
    include_face INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE INDEX shares_prediction ON shares (prediction);
"#,
    // The durable events of each prediction's stream, numbered as they went out, so a client
    // resuming with `Last-Event-ID` gets the same ids from the live buffer, the database and
    // after a restart.
    r#"
CREATE TABLE events (
    prediction TEXT NOT NULL,
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (prediction, seq)
) WITHOUT ROWID;
ALTER TABLE predictions ADD COLUMN events_reserved INTEGER NOT NULL DEFAULT 0;
-- A prediction's own reference to a face names the upload it was made from: the upload goes
-- when no prediction still waiting or running refers to it.
ALTER TABLE files ADD COLUMN source TEXT;
CREATE INDEX files_source ON files (source);
"#,
    // Per output image its seed and likeness to the face; with best-of-N every candidate's.
    r#"
ALTER TABLE predictions ADD COLUMN output_metadata TEXT NOT NULL DEFAULT '[]';
ALTER TABLE predictions ADD COLUMN candidates TEXT;
"#,
];

/// The database and the file folder.
#[derive(Clone)]
pub struct SqliteDb {
    db: Arc<Mutex<Connection>>,
    files: PathBuf,
    dir: PathBuf,
}

fn record(row: &Row) -> rusqlite::Result<Record> {
    let json = |i: usize| -> rusqlite::Result<String> { row.get(i) };
    Ok(Record {
        seq: row.get(0)?,
        id: row.get(1)?,
        owner: row.get(2)?,
        model: row.get(3)?,
        version: row.get(4)?,
        status: Status::parse(&row.get::<_, String>(5)?).unwrap_or(Status::Failed),
        input: serde_json::from_str(&json(6)?).unwrap_or_default(),
        face_file: row.get(7)?,
        keep_face: row.get::<_, i64>(8)? != 0,
        outputs: serde_json::from_str(&json(9)?).unwrap_or_default(),
        error: row.get(10)?,
        logs: row.get(11)?,
        metrics: serde_json::from_str(&json(12)?).unwrap_or_default(),
        created_at: row.get(13)?,
        started_at: row.get(14)?,
        completed_at: row.get(15)?,
        attempts: row.get(16)?,
        output_metadata: serde_json::from_str(&json(17)?).unwrap_or_default(),
        candidates: row
            .get::<_, Option<String>>(18)?
            .and_then(|j| serde_json::from_str(&j).ok()),
    })
}

/// A running attempt's rows: `?1` the id, `?2` the attempt.
const FENCED: &str = "id = ?1 AND attempts = ?2 AND status = 'processing'";

const COLUMNS: &str = "seq, id, owner, model, version, status, input, face_file, keep_face, outputs, error, logs, metrics, created_at, started_at, completed_at, attempts, output_metadata, candidates";

impl SqliteDb {
    /// Opens (creating) `dir/consistentid.sqlite3` and `dir/files/`, migrating the schema.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir.join("files"))
            .with_context(|| format!("cannot create the data folder {}", dir.display()))?;
        let path = dir.join("consistentid.sqlite3");
        let cannot = || format!("cannot open the database {}", path.display());
        let db = Connection::open(&path).with_context(cannot)?;
        db.pragma_update(None, "journal_mode", "WAL")
            .with_context(cannot)?;
        db.pragma_update(None, "synchronous", "NORMAL")?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        let version = db
            .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
            .with_context(cannot)? as usize;
        if version > MIGRATIONS.len() {
            anyhow::bail!(
                "the database {} was written by a newer consistentid (schema {version})",
                path.display()
            );
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let migrate = || -> rusqlite::Result<()> {
                let tx = db.unchecked_transaction()?;
                tx.execute_batch(sql)?;
                tx.pragma_update(None, "user_version", (i + 1) as i64)?;
                tx.commit()
            };
            migrate().with_context(|| {
                format!(
                    "cannot update the database {} to schema {}",
                    path.display(),
                    i + 1
                )
            })?;
        }
        Ok(Self {
            db: Arc::new(Mutex::new(db)),
            files: dir.join("files"),
            dir: dir.to_path_buf(),
        })
    }

    /// The data folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes free for us on the data folder's file system.
    pub fn free_bytes(&self) -> Option<u64> {
        let s = rustix::fs::statvfs(&self.dir).ok()?;
        Some(s.f_bavail.saturating_mul(s.f_frsize))
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (statements are atomic).
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a queued prediction if fewer than `capacity` wait, checking and inserting in
    /// one statement (never more than `capacity`, however many requests race); its `seq`,
    /// or `None` when the queue is full.
    pub fn insert_if_room(
        &self,
        r: &Record,
        capacity: usize,
        per_owner: usize,
    ) -> Result<Option<i64>> {
        let db = self.db();
        let added = db.execute(
            "INSERT INTO predictions (id, owner, model, version, status, input, face_file, keep_face, created_at, logs) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?12 WHERE (SELECT COUNT(*) FROM predictions WHERE status = 'starting') < ?10 AND (SELECT COUNT(*) FROM predictions WHERE status = 'starting' AND owner = ?2) < ?11",
            params![
                r.id,
                r.owner,
                r.model,
                r.version,
                r.status.as_str(),
                serde_json::to_string(&r.input)?,
                r.face_file,
                r.keep_face,
                r.created_at,
                capacity as i64,
                per_owner as i64,
                r.logs
            ],
        )?;
        Ok((added == 1).then(|| db.last_insert_rowid()))
    }

    pub fn get(&self, id: &str) -> Result<Option<Record>> {
        Ok(self
            .db()
            .query_row(
                &format!("SELECT {COLUMNS} FROM predictions WHERE id = ?1"),
                [id],
                record,
            )
            .optional()?)
    }

    /// The owner's predictions, newest first, before `before` (a `seq` cursor).
    pub fn list(&self, owner: &str, before: Option<i64>, limit: usize) -> Result<Vec<Record>> {
        let db = self.db();
        let mut stmt = db.prepare(&format!(
            "SELECT {COLUMNS} FROM predictions WHERE owner = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
        ))?;
        let rows = stmt.query_map(
            params![owner, before.unwrap_or(i64::MAX), limit as i64],
            record,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Whether the owner has predictions newer than `seq` (for the `previous` cursor).
    pub fn has_newer(&self, owner: &str, seq: i64) -> Result<bool> {
        Ok(self.db().query_row(
            "SELECT EXISTS (SELECT 1 FROM predictions WHERE owner = ?1 AND seq > ?2)",
            params![owner, seq],
            |r| r.get(0),
        )?)
    }

    /// Queued (`starting`) ids in queue order.
    pub fn queued(&self) -> Result<Vec<String>> {
        let db = self.db();
        let mut stmt =
            db.prepare("SELECT id FROM predictions WHERE status = 'starting' ORDER BY seq")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Jobs queued ahead of `seq`.
    pub fn queue_position(&self, seq: i64) -> Result<usize> {
        Ok(self.db().query_row(
            "SELECT COUNT(*) FROM predictions WHERE status = 'starting' AND seq < ?1",
            [seq],
            |r| r.get::<_, i64>(0),
        )? as usize)
    }

    /// The oldest queued job, marked `processing` (one more attempt). One process owns the
    /// database (the data-folder lock), so the claim needs no lease.
    pub fn claim(&self) -> Result<Option<Record>> {
        let db = self.db();
        let next: Option<String> = db
            .query_row(
                "SELECT id FROM predictions WHERE status = 'starting' ORDER BY seq LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let Some(id) = next else { return Ok(None) };
        db.execute(
            "UPDATE predictions SET status = 'processing', started_at = ?2, attempts = attempts + 1 WHERE id = ?1",
            params![id, now()],
        )?;
        Ok(db
            .query_row(
                &format!("SELECT {COLUMNS} FROM predictions WHERE id = ?1"),
                [&id],
                record,
            )
            .optional()?)
    }

    /// Whether the attempt still runs (not ended, not re-queued).
    pub fn holds(&self, fence: &Fence) -> Result<bool> {
        Ok(self.db().query_row(
            "SELECT EXISTS (SELECT 1 FROM predictions WHERE id = ?1 AND attempts = ?2 AND status = 'processing')",
            params![fence.id, fence.attempt],
            |r| r.get(0),
        )?)
    }

    /// Ends a running attempt; `false` when it no longer runs.
    pub fn finish(
        &self,
        fence: &Fence,
        status: Status,
        error: Option<&str>,
        logs: &str,
        metrics: &Metrics,
    ) -> Result<bool> {
        Ok(self.db().execute(
            &format!("UPDATE predictions SET status = ?3, error = ?4, logs = ?5, metrics = ?6, completed_at = ?7 WHERE {FENCED}"),
            params![fence.id, fence.attempt, status.as_str(), error, logs, serde_json::to_string(metrics)?, now()],
        )? == 1)
    }

    /// Cancels a queued job; `false` when it is no longer queued.
    pub fn cancel_queued(&self, id: &str) -> Result<bool> {
        Ok(self.db().execute(
            "UPDATE predictions SET status = 'canceled', completed_at = ?2 WHERE id = ?1 AND status = 'starting'",
            params![id, now()],
        )? == 1)
    }

    /// Puts a running attempt back in the queue (shutdown), not counting it.
    pub fn requeue(&self, fence: &Fence) -> Result<bool> {
        Ok(self.db().execute(
            &format!("UPDATE predictions SET status = 'starting', started_at = NULL, attempts = MAX(attempts - 1, 0), outputs = '[]', output_metadata = '[]', candidates = NULL WHERE {FENCED}"),
            params![fence.id, fence.attempt],
        )? == 1)
    }

    /// The images stored so far, what is known of each, and the logs.
    pub fn set_progress(
        &self,
        fence: &Fence,
        outputs: &[String],
        metadata: &[OutputInfo],
        logs: &str,
    ) -> Result<bool> {
        Ok(self.db().execute(
            &format!("UPDATE predictions SET outputs = ?3, output_metadata = ?4, logs = ?5 WHERE {FENCED}"),
            params![
                fence.id,
                fence.attempt,
                serde_json::to_string(outputs)?,
                serde_json::to_string(metadata)?,
                logs
            ],
        )? == 1)
    }

    /// Best-of-N: every candidate's likeness.
    pub fn set_candidates(&self, fence: &Fence, candidates: &[Candidate]) -> Result<bool> {
        Ok(self.db().execute(
            &format!("UPDATE predictions SET candidates = ?3 WHERE {FENCED}"),
            params![fence.id, fence.attempt, serde_json::to_string(candidates)?],
        )? == 1)
    }

    /// After a restart: jobs that were running are queued again while they have had fewer
    /// than `max_attempts` runs, else fail with a reason. Returns (re-queued, failed).
    pub fn recover(&self, max_attempts: u32) -> Result<(Vec<String>, Vec<String>)> {
        let db = self.db();
        let mut stmt =
            db.prepare("SELECT id, attempts FROM predictions WHERE status = 'processing'")?;
        let running: Vec<(String, u32)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        drop(stmt);
        let (mut again, mut failed) = (Vec::new(), Vec::new());
        let mut lost = Vec::new();
        for (id, _) in &running {
            // Images the lost run stored are not the job's: a re-run makes its own.
            let mut stmt =
                db.prepare("SELECT id FROM files WHERE prediction = ?1 AND kind = 'output'")?;
            let files = stmt.query_map([id], |r| r.get::<_, String>(0))?;
            lost.extend(files.collect::<rusqlite::Result<Vec<_>>>()?);
        }
        for (id, attempts) in running {
            if attempts < max_attempts {
                db.execute(
                    "UPDATE predictions SET status = 'starting', started_at = NULL, outputs = '[]', output_metadata = '[]', candidates = NULL WHERE id = ?1",
                    [&id],
                )?;
                again.push(id);
            } else {
                db.execute(
                    "UPDATE predictions SET status = 'failed', error = ?2, completed_at = ?3 WHERE id = ?1",
                    params![id, lost_message(max_attempts), now()],
                )?;
                failed.push(id);
            }
        }
        drop(db);
        for file in lost {
            self.delete_file(&file)?;
        }
        Ok((again, failed))
    }

    /// Deletes a prediction and its shares; returns its file ids (outputs and face).
    pub fn delete(&self, id: &str) -> Result<Vec<String>> {
        let db = self.db();
        let mut stmt = db.prepare("SELECT id FROM files WHERE prediction = ?1")?;
        let files: Vec<String> = stmt
            .query_map([id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        drop(stmt);
        db.execute("DELETE FROM shares WHERE prediction = ?1", [id])?;
        db.execute("DELETE FROM events WHERE prediction = ?1", [id])?;
        db.execute("DELETE FROM predictions WHERE id = ?1", [id])?;
        Ok(files)
    }

    /// Finished, unshared predictions completed before `before` (retention).
    pub fn expired(&self, before: f64) -> Result<Vec<String>> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT id FROM predictions WHERE completed_at IS NOT NULL AND completed_at < ?1 AND id NOT IN (SELECT prediction FROM shares)",
        )?;
        let rows = stmt.query_map([before], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Uploads not attached to any job, older than `before`.
    pub fn stale_uploads(&self, before: f64) -> Result<Vec<String>> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT id FROM files WHERE kind = 'upload' AND prediction IS NULL AND created_at < ?1",
        )?;
        let rows = stmt.query_map([before], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn count_queued_of(&self, owner: &str) -> Result<usize> {
        Ok(self.db().query_row(
            "SELECT COUNT(*) FROM predictions WHERE status = 'starting' AND owner = ?1",
            [owner],
            |r| r.get::<_, i64>(0),
        )? as usize)
    }

    pub fn count_queued(&self) -> Result<usize> {
        Ok(self.db().query_row(
            "SELECT COUNT(*) FROM predictions WHERE status = 'starting'",
            [],
            |r| r.get::<_, i64>(0),
        )? as usize)
    }
}
