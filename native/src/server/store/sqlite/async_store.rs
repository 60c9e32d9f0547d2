//! [`Store`] over [`SqliteDb`]: each call runs on tokio's blocking pool, so a slow disk never
//! stalls the async runtime.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use async_trait::async_trait;
use consistentid_core::api::{Candidate, Metrics, OutputInfo, Status};

use super::SqliteDb;
use crate::server::store::{Fence, FileRecord, Reaped, Record, Store, StoredEvent, WorkerInfo};

/// The embedded store.
#[derive(Clone)]
pub struct SqliteStore {
    db: SqliteDb,
    /// Whether running jobs were recovered since opening (see [`Store::reap`]).
    reaped: Arc<AtomicBool>,
    /// Runs a job gets when the host stops under it.
    max_attempts: u32,
    /// This process's worker (one process owns the database): when it was last heard from.
    workers: Arc<Mutex<HashMap<String, (WorkerInfo, Instant)>>>,
}

impl SqliteStore {
    /// Opens (creating) the database and file folder under `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        Ok(Self {
            db: SqliteDb::open(dir)?,
            reaped: Arc::default(),
            max_attempts: 2,
            workers: Arc::default(),
        })
    }

    /// Jobs fail after `n` runs lost to stops (default 2).
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }
}

/// Runs `body` with the database on the blocking pool; owned copies of the arguments go in.
macro_rules! blocking {
    ($self:ident, |$db:ident| $body:expr) => {{
        let $db = $self.db.clone();
        tokio::task::spawn_blocking(move || $body).await?
    }};
}

fn own(text: &str) -> String {
    text.to_string()
}

#[async_trait]
impl Store for SqliteStore {
    fn describe(&self) -> String {
        format!("the data folder {}", self.db.dir().display())
    }

    fn free_bytes(&self) -> Option<u64> {
        self.db.free_bytes()
    }

    async fn insert_if_room(
        &self,
        record: &Record,
        capacity: usize,
        per_owner: usize,
    ) -> Result<Option<i64>> {
        let record = record.clone();
        blocking!(self, |db| db.insert_if_room(&record, capacity, per_owner))
    }

    async fn get(&self, id: &str) -> Result<Option<Record>> {
        let id = own(id);
        blocking!(self, |db| db.get(&id))
    }

    async fn list(&self, owner: &str, before: Option<i64>, limit: usize) -> Result<Vec<Record>> {
        let owner = own(owner);
        blocking!(self, |db| db.list(&owner, before, limit))
    }

    async fn has_newer(&self, owner: &str, seq: i64) -> Result<bool> {
        let owner = own(owner);
        blocking!(self, |db| db.has_newer(&owner, seq))
    }

    async fn queued(&self) -> Result<Vec<String>> {
        blocking!(self, |db| db.queued())
    }

    async fn queue_position(&self, seq: i64) -> Result<usize> {
        blocking!(self, |db| db.queue_position(seq))
    }

    async fn count_queued(&self) -> Result<usize> {
        blocking!(self, |db| db.count_queued())
    }

    async fn count_queued_of(&self, owner: &str) -> Result<usize> {
        let owner = own(owner);
        blocking!(self, |db| db.count_queued_of(&owner))
    }

    async fn claim(&self, _worker: &str, _lease: Duration) -> Result<Option<Record>> {
        blocking!(self, |db| db.claim())
    }

    async fn heartbeat(&self, fence: &Fence, _lease: Duration) -> Result<Option<bool>> {
        // Cancel requests reach the one worker in memory; only whether it still runs is stored.
        let fence = fence.clone();
        Ok(blocking!(self, |db| db.holds(&fence))?.then_some(false))
    }

    async fn finish(
        &self,
        fence: &Fence,
        status: Status,
        error: Option<&str>,
        logs: &str,
        metrics: &Metrics,
    ) -> Result<bool> {
        let (fence, error, logs, metrics) =
            (fence.clone(), error.map(own), own(logs), metrics.clone());
        blocking!(self, |db| db.finish(
            &fence,
            status,
            error.as_deref(),
            &logs,
            &metrics
        ))
    }

    async fn requeue(&self, fence: &Fence) -> Result<bool> {
        let fence = fence.clone();
        blocking!(self, |db| db.requeue(&fence))
    }

    async fn set_progress(
        &self,
        fence: &Fence,
        outputs: &[String],
        metadata: &[OutputInfo],
        logs: &str,
    ) -> Result<bool> {
        let (fence, outputs, metadata, logs) = (
            fence.clone(),
            outputs.to_vec(),
            metadata.to_vec(),
            own(logs),
        );
        blocking!(self, |db| db
            .set_progress(&fence, &outputs, &metadata, &logs))
    }

    async fn set_candidates(&self, fence: &Fence, candidates: &[Candidate]) -> Result<bool> {
        let (fence, candidates) = (fence.clone(), candidates.to_vec());
        blocking!(self, |db| db.set_candidates(&fence, &candidates))
    }

    async fn cancel_queued(&self, id: &str) -> Result<bool> {
        let id = own(id);
        blocking!(self, |db| db.cancel_queued(&id))
    }

    async fn request_cancel(&self, _id: &str) -> Result<bool> {
        // One process: the worker sees the in-memory request at its next step.
        Ok(true)
    }

    async fn reap(&self) -> Result<Reaped> {
        // One process owns the database (the data-folder lock): a job runs only in it, so
        // the jobs left running were lost when the last process stopped; the first reap
        // after opening finds them all, later ones find none.
        if self.reaped.swap(true, Ordering::SeqCst) {
            return Ok(Reaped::default());
        }
        let max = self.max_attempts;
        let (again, failed) = blocking!(self, |db| db.recover(max))?;
        Ok(Reaped { again, failed })
    }

    async fn unannounced(&self, grace: Duration) -> Result<Vec<String>> {
        let secs = grace.as_secs_f64();
        blocking!(self, |db| db.unannounced(secs))
    }

    async fn delete(&self, id: &str) -> Result<Vec<String>> {
        let id = own(id);
        blocking!(self, |db| db.delete(&id))
    }

    async fn expired(&self, before: f64) -> Result<Vec<String>> {
        blocking!(self, |db| db.expired(before))
    }

    async fn stale_uploads(&self, before: f64) -> Result<Vec<String>> {
        blocking!(self, |db| db.stale_uploads(before))
    }

    async fn add_file(
        &self,
        bytes: &[u8],
        owner: &str,
        name: &str,
        content_type: &str,
        kind: &str,
        prediction: Option<&str>,
    ) -> Result<FileRecord> {
        let (bytes, owner, name, content_type, kind, prediction) = (
            bytes.to_vec(),
            own(owner),
            own(name),
            own(content_type),
            own(kind),
            prediction.map(own),
        );
        blocking!(self, |db| db.add_file(
            &bytes,
            &owner,
            &name,
            &content_type,
            &kind,
            prediction.as_deref()
        ))
    }

    async fn file(&self, id: &str) -> Result<Option<FileRecord>> {
        let id = own(id);
        blocking!(self, |db| db.file(&id))
    }

    async fn attach_file(&self, file: &str, prediction: &str) -> Result<()> {
        let (file, prediction) = (own(file), own(prediction));
        blocking!(self, |db| db.attach_file(&file, &prediction))
    }

    async fn read_blob(&self, file: &FileRecord) -> Result<Vec<u8>> {
        let file = file.clone();
        blocking!(self, |db| db.read_blob(&file))
    }

    async fn delete_file(&self, id: &str) -> Result<()> {
        let id = own(id);
        blocking!(self, |db| db.delete_file(&id))
    }

    async fn set_source(&self, file: &str, source: &str) -> Result<()> {
        let (file, source) = (own(file), own(source));
        blocking!(self, |db| db.set_source(&file, &source))
    }

    async fn release_faces(&self) -> Result<usize> {
        blocking!(self, |db| db.release_faces())
    }

    async fn add_event(&self, prediction: &str, seq: u64, name: &str, data: &str) -> Result<()> {
        let (prediction, name, data) = (own(prediction), own(name), own(data));
        blocking!(self, |db| db.add_event(&prediction, seq, &name, &data))
    }

    async fn events_after(&self, prediction: &str, last: u64) -> Result<Vec<StoredEvent>> {
        let prediction = own(prediction);
        blocking!(self, |db| db.events_after(&prediction, last))
    }

    async fn reserve_events(
        &self,
        prediction: &str,
        after: u64,
        count: u64,
    ) -> Result<Option<u64>> {
        let prediction = own(prediction);
        blocking!(self, |db| db.reserve_events(&prediction, after, count))
    }

    async fn event_floor(&self, prediction: &str) -> Result<u64> {
        let prediction = own(prediction);
        blocking!(self, |db| db.event_floor(&prediction))
    }

    async fn create_share(&self, prediction: &str, include_face: bool) -> Result<String> {
        let prediction = own(prediction);
        blocking!(self, |db| db.create_share(&prediction, include_face))
    }

    async fn share(&self, share_id: &str) -> Result<Option<(String, bool)>> {
        let share_id = own(share_id);
        blocking!(self, |db| db.share(&share_id))
    }

    async fn face_shared(&self, file: &str) -> Result<bool> {
        let file = own(file);
        blocking!(self, |db| db.face_shared(&file))
    }

    async fn delete_shares(&self, prediction: &str) -> Result<usize> {
        let prediction = own(prediction);
        blocking!(self, |db| db.delete_shares(&prediction))
    }

    async fn worker_seen(&self, worker: &WorkerInfo) -> Result<()> {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers.insert(worker.id.clone(), (worker.clone(), Instant::now()));
        Ok(())
    }

    async fn workers(&self, within: Duration) -> Result<Vec<WorkerInfo>> {
        let workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        let mut seen: Vec<WorkerInfo> = workers
            .values()
            .filter(|(_, at)| at.elapsed() <= within)
            .map(|(w, at)| WorkerInfo {
                seen_ago: at.elapsed().as_secs_f64(),
                ..w.clone()
            })
            .collect();
        seen.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(seen)
    }

    async fn worker_gone(&self, id: &str) -> Result<()> {
        self.workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        Ok(())
    }
}
