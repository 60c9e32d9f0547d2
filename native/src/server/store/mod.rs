//! The host's persistence behind one async trait: predictions (the queue), files, the durable
//! part of each event stream, and share links. Nothing else in the host writes SQL. The
//! embedded default is [`SqliteStore`] (SQLite + a folder, one process); the handlers and the
//! worker see only [`Store`], so they never branch on the backend.

mod pg;
mod sqlite;

pub use pg::{Blobs, PgBus, PgStore, Unavailable, migrate_only, redact};
pub use sqlite::SqliteStore;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use async_trait::async_trait;
use consistentid_core::api::{Candidate, Metrics, OutputInfo, PredictionInput, Status};

/// A prediction as stored.
#[derive(Clone, Debug)]
pub struct Record {
    pub seq: i64,
    pub id: String,
    pub owner: String,
    pub model: String,
    pub version: String,
    pub status: Status,
    pub input: PredictionInput,
    /// The uploaded face's file id (deleted when the job ends unless kept).
    pub face_file: Option<String>,
    pub keep_face: bool,
    /// Output file ids, in order.
    pub outputs: Vec<String>,
    /// Per output: its seed and likeness (empty for predictions made before it was kept).
    pub output_metadata: Vec<OutputInfo>,
    /// Best-of-N: every candidate's likeness.
    pub candidates: Option<Vec<Candidate>>,
    pub error: Option<String>,
    pub logs: String,
    pub metrics: Metrics,
    pub created_at: f64,
    pub started_at: Option<f64>,
    pub completed_at: Option<f64>,
    pub attempts: u32,
}

/// A stored file (an upload or an output image).
#[derive(Clone, Debug)]
pub struct FileRecord {
    pub id: String,
    pub sha256: String,
    pub owner: String,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    /// `upload` or `output`.
    pub kind: String,
    /// The prediction this record belongs to: its own reference to the blob.
    pub prediction: Option<String>,
    pub created_at: f64,
}

impl FileRecord {
    /// A new record for `bytes` (a fresh id, their SHA-256, now).
    pub fn new(
        bytes: &[u8],
        owner: &str,
        name: &str,
        content_type: &str,
        kind: &str,
        prediction: Option<&str>,
    ) -> Self {
        use sha2::Digest as _;
        Self {
            id: crate::server::ids::new_id(),
            sha256: crate::server::ids::hex(&sha2::Sha256::digest(bytes)),
            owner: owner.to_string(),
            name: name.to_string(),
            content_type: content_type.to_string(),
            size: bytes.len() as u64,
            kind: kind.to_string(),
            prediction: prediction.map(str::to_string),
            created_at: crate::server::ids::now(),
        }
    }
}

/// One stored event: (id, SSE event name, JSON data).
pub type StoredEvent = (u64, String, String);

/// One attempt at a running job. Every write a worker makes names it, so a worker whose
/// attempt ended (re-queued, reaped, finished elsewhere) changes nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    pub id: String,
    pub worker: String,
    pub attempt: u32,
}

impl Fence {
    /// The attempt a claim just started.
    pub fn of(record: &Record, worker: &str) -> Self {
        Self {
            id: record.id.clone(),
            worker: worker.to_string(),
            attempt: record.attempts,
        }
    }
}

/// What a restart or the reaper did with jobs whose worker stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reaped {
    /// Queued again (their first attempt was lost).
    pub again: Vec<String>,
    /// Ended: a second attempt was lost (failed), or its owner had asked to cancel.
    pub failed: Vec<String>,
}

/// A worker process as the others see it (`/v1/health`).
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerInfo {
    pub id: String,
    /// The compute backend (`cuda`, `cpu`…).
    pub device: String,
    /// `loading`, `ready`, `failed` or `draining`.
    pub status: String,
    pub detail: String,
    /// Whether it is running a job.
    pub busy: bool,
    /// Seconds since it was last heard from.
    pub seen_ago: f64,
}

/// Why a prediction whose runs were lost twice failed (the README's wording).
pub const LOST_TWICE: &str =
    "the host stopped twice while this prediction ran; it was not retried again";

/// Why a prediction failed after `max_attempts` runs were lost (2: the README's wording).
pub fn lost_message(max_attempts: u32) -> String {
    match max_attempts {
        0 | 1 => {
            "the host stopped while this prediction ran; it was not retried (max attempts 1)".into()
        }
        2 => LOST_TWICE.into(),
        n => format!(
            "the host stopped {n} times while this prediction ran; it was not retried again"
        ),
    }
}

/// The store the host runs on.
#[async_trait]
pub trait Store: Send + Sync {
    /// Where it keeps things, for messages (never with a password).
    fn describe(&self) -> String;
    /// Bytes free for uploads and images, when the store can tell (a local folder).
    fn free_bytes(&self) -> Option<u64>;
    /// Whether other processes share it (their workers' events then reach this one's streams
    /// through it).
    fn is_shared(&self) -> bool {
        false
    }

    // Predictions and the queue.

    /// Stores a queued prediction if fewer than `capacity` wait (and fewer than `per_owner`
    /// of its owner), checked in the insert itself; its `seq`, or `None` when full.
    async fn insert_if_room(
        &self,
        record: &Record,
        capacity: usize,
        per_owner: usize,
    ) -> Result<Option<i64>>;
    async fn get(&self, id: &str) -> Result<Option<Record>>;
    /// The owner's predictions, newest first, before `before` (a `seq` cursor).
    async fn list(&self, owner: &str, before: Option<i64>, limit: usize) -> Result<Vec<Record>>;
    /// Whether the owner has predictions newer than `seq` (for the `previous` cursor).
    async fn has_newer(&self, owner: &str, seq: i64) -> Result<bool>;
    /// Queued (`starting`) ids in queue order.
    async fn queued(&self) -> Result<Vec<String>>;
    /// Jobs queued ahead of `seq`.
    async fn queue_position(&self, seq: i64) -> Result<usize>;
    async fn count_queued(&self) -> Result<usize>;
    async fn count_queued_of(&self, owner: &str) -> Result<usize>;
    /// The next queued job, now `processing` under `worker` for `lease` (one more attempt).
    async fn claim(&self, worker: &str, lease: Duration) -> Result<Option<Record>>;
    /// Renews the attempt's lease; `None` when it was lost, else whether its owner asked to
    /// cancel.
    async fn heartbeat(&self, fence: &Fence, lease: Duration) -> Result<Option<bool>>;
    /// Ends a running attempt; `false` when it no longer runs.
    async fn finish(
        &self,
        fence: &Fence,
        status: Status,
        error: Option<&str>,
        logs: &str,
        metrics: &Metrics,
    ) -> Result<bool>;
    /// Puts a running attempt back in the queue without counting it (a graceful stop).
    async fn requeue(&self, fence: &Fence) -> Result<bool>;
    /// The images stored so far, what is known of each, and the logs.
    async fn set_progress(
        &self,
        fence: &Fence,
        outputs: &[String],
        metadata: &[OutputInfo],
        logs: &str,
    ) -> Result<bool>;
    /// Best-of-N: every candidate's likeness.
    async fn set_candidates(&self, fence: &Fence, candidates: &[Candidate]) -> Result<bool>;
    /// Cancels a queued job; `false` when it is no longer queued.
    async fn cancel_queued(&self, id: &str) -> Result<bool>;
    /// Asks the worker running `id`, in whichever process, to stop; `false` when it is not
    /// running.
    async fn request_cancel(&self, id: &str) -> Result<bool>;
    /// Jobs whose worker stopped: queued again once, then failed with [`LOST_TWICE`].
    async fn reap(&self) -> Result<Reaped>;
    /// Predictions that ended within the last hour, more than `grace` ago, whose `completed`
    /// event was never stored (their worker stopped between the end and the event).
    async fn unannounced(&self, grace: Duration) -> Result<Vec<String>>;
    /// Deletes a prediction, its events and shares; returns its file ids.
    async fn delete(&self, id: &str) -> Result<Vec<String>>;
    /// Finished, unshared predictions completed before `before` (retention).
    async fn expired(&self, before: f64) -> Result<Vec<String>>;
    /// Uploads not attached to any job, older than `before`.
    async fn stale_uploads(&self, before: f64) -> Result<Vec<String>>;

    // Files.

    /// Stores `bytes` as a new file record.
    async fn add_file(
        &self,
        bytes: &[u8],
        owner: &str,
        name: &str,
        content_type: &str,
        kind: &str,
        prediction: Option<&str>,
    ) -> Result<FileRecord>;
    async fn file(&self, id: &str) -> Result<Option<FileRecord>>;
    /// Ties an upload to the job that uses it.
    async fn attach_file(&self, file: &str, prediction: &str) -> Result<()>;
    async fn read_blob(&self, file: &FileRecord) -> Result<Vec<u8>>;
    /// Deletes a file record, and its content once nothing refers to it.
    async fn delete_file(&self, id: &str) -> Result<()>;
    /// Deletes stored objects older than `age` that no file names (their write's answer was
    /// lost, or the process stopped before the row); how many. The embedded store writes its
    /// content-addressed files under one lock with their rows and has none to sweep.
    async fn sweep_orphans(&self, _age: Duration) -> Result<usize> {
        Ok(0)
    }
    /// Records that `file` (a prediction's reference) was made from the upload `source`.
    async fn set_source(&self, file: &str, source: &str) -> Result<()>;
    /// Deletes the faces of ended jobs (unless kept) and uploads no waiting job uses; how many.
    async fn release_faces(&self) -> Result<usize>;

    // The durable part of event streams.

    async fn add_event(&self, prediction: &str, seq: u64, name: &str, data: &str) -> Result<()>;
    /// A prediction's stored events after id `last`, in order.
    async fn events_after(&self, prediction: &str, last: u64) -> Result<Vec<StoredEvent>>;
    /// A block of `count` event ids for this process alone, above `after` and above every
    /// block handed out before (to any process): its first id, or `None` when the prediction
    /// is not stored yet.
    async fn reserve_events(&self, prediction: &str, after: u64, count: u64)
    -> Result<Option<u64>>;
    /// The highest id a prediction may have sent: a new channel starts above it.
    async fn event_floor(&self, prediction: &str) -> Result<u64>;

    // The rate limit.

    /// Takes one of `per_minute` tokens from `key`'s bucket, shared by every process on this
    /// store: `Ok(())` or the seconds to wait; `None` when the store keeps no buckets (one
    /// process: the host's own limiter counts).
    async fn take_token(&self, _key: &str, _per_minute: u32) -> Result<Option<Result<(), u64>>> {
        Ok(None)
    }
    /// Forgets buckets untouched for a while (full again).
    async fn expire_rate_limits(&self) -> Result<()> {
        Ok(())
    }

    // Workers.

    /// Records that a worker is alive, and its state.
    async fn worker_seen(&self, worker: &WorkerInfo) -> Result<()>;
    /// The workers heard from within `within`.
    async fn workers(&self, within: Duration) -> Result<Vec<WorkerInfo>>;
    /// A worker stopped cleanly.
    async fn worker_gone(&self, id: &str) -> Result<()>;

    // Share links.

    async fn create_share(&self, prediction: &str, include_face: bool) -> Result<String>;
    /// (prediction id, include_face) of a share.
    async fn share(&self, share_id: &str) -> Result<Option<(String, bool)>>;
    /// Whether an uploaded face is visible through a share whose owner chose to include it.
    async fn face_shared(&self, file: &str) -> Result<bool>;
    async fn delete_shares(&self, prediction: &str) -> Result<usize>;
}

/// The store as the host holds it.
pub type SharedStore = Arc<dyn Store>;

/// Whether an error is the database or the object store being out of reach (down,
/// restarting, no connection).
pub fn is_unreachable(error: &anyhow::Error) -> bool {
    pg::is_unreachable(error) || error.chain().any(|cause| cause.is::<Unavailable>())
}

/// Whether an error is a stored file's bytes being gone (deleted between reading its record
/// and its bytes, as a face released when its job ends), on disk or in a bucket.
pub fn is_missing(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<object_store::Error>(),
            Some(object_store::Error::NotFound { .. })
        ) || cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    })
}

/// Whether an error is the disk (or quota) being full, from SQLite or the file system.
pub fn is_full(error: &anyhow::Error) -> bool {
    pg::is_disk_full(error)
        || error.chain().any(|cause| {
            if let Some(rusqlite::Error::SqliteFailure(e, _)) =
                cause.downcast_ref::<rusqlite::Error>()
            {
                return e.code == rusqlite::ErrorCode::DiskFull;
            }
            cause.downcast_ref::<std::io::Error>().is_some_and(|e| {
                e.kind() == std::io::ErrorKind::StorageFull
                    || e.kind() == std::io::ErrorKind::QuotaExceeded
            })
        })
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::*;

    #[test]
    fn a_file_gone_from_disk_or_bucket_is_missing_and_nothing_else_is() {
        let disk = std::fs::read("/nonexistent/consistentid-file").context("cannot read");
        assert!(is_missing(&disk.unwrap_err()));
        let bucket = object_store::Error::NotFound {
            path: "files/u/x".into(),
            source: "gone".into(),
        };
        assert!(is_missing(&anyhow::Error::new(bucket).context("missing")));
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(!is_missing(&anyhow::Error::new(denied)));
    }
}
