//! [`Store`] over [`PgStore`]'s own methods (queue.rs, files.rs).

use std::time::Duration;

use anyhow::Result;
use async_trait::async_trait;
use consistentid_core::api::{Candidate, Metrics, OutputInfo, Status};

use super::PgStore;
use crate::server::store::{Fence, FileRecord, Reaped, Record, Store, StoredEvent, WorkerInfo};

#[async_trait]
impl Store for PgStore {
    fn describe(&self) -> String {
        format!(
            "the database {} (files in {})",
            self.shown,
            self.blobs.describe()
        )
    }

    fn free_bytes(&self) -> Option<u64> {
        self.blobs.free_bytes()
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn insert_if_room(
        &self,
        record: &Record,
        capacity: usize,
        per_owner: usize,
    ) -> Result<Option<i64>> {
        PgStore::insert_if_room(self, record, capacity, per_owner).await
    }

    async fn get(&self, id: &str) -> Result<Option<Record>> {
        PgStore::get(self, id).await
    }

    async fn list(&self, owner: &str, before: Option<i64>, limit: usize) -> Result<Vec<Record>> {
        PgStore::list(self, owner, before, limit).await
    }

    async fn has_newer(&self, owner: &str, seq: i64) -> Result<bool> {
        PgStore::has_newer(self, owner, seq).await
    }

    async fn queued(&self) -> Result<Vec<String>> {
        PgStore::queued(self).await
    }

    async fn queue_position(&self, seq: i64) -> Result<usize> {
        PgStore::queue_position(self, seq).await
    }

    async fn count_queued(&self) -> Result<usize> {
        PgStore::count_waiting(self, None).await
    }

    async fn count_queued_of(&self, owner: &str) -> Result<usize> {
        PgStore::count_waiting(self, Some(owner)).await
    }

    async fn claim(&self, worker: &str, lease: Duration) -> Result<Option<Record>> {
        PgStore::claim(self, worker, lease).await
    }

    async fn heartbeat(&self, fence: &Fence, lease: Duration) -> Result<Option<bool>> {
        PgStore::heartbeat(self, fence, lease).await
    }

    async fn finish(
        &self,
        fence: &Fence,
        status: Status,
        error: Option<&str>,
        logs: &str,
        metrics: &Metrics,
    ) -> Result<bool> {
        PgStore::finish(self, fence, status, error, logs, metrics).await
    }

    async fn requeue(&self, fence: &Fence) -> Result<bool> {
        PgStore::requeue(self, fence).await
    }

    async fn set_progress(
        &self,
        fence: &Fence,
        outputs: &[String],
        metadata: &[OutputInfo],
        logs: &str,
    ) -> Result<bool> {
        PgStore::set_progress(self, fence, outputs, metadata, logs).await
    }

    async fn set_candidates(&self, fence: &Fence, candidates: &[Candidate]) -> Result<bool> {
        PgStore::set_candidates(self, fence, candidates).await
    }

    async fn cancel_queued(&self, id: &str) -> Result<bool> {
        PgStore::cancel_queued(self, id).await
    }

    async fn request_cancel(&self, id: &str) -> Result<bool> {
        PgStore::request_cancel(self, id).await
    }

    async fn reap(&self) -> Result<Reaped> {
        PgStore::reap(self).await
    }

    async fn unannounced(&self, grace: Duration) -> Result<Vec<String>> {
        PgStore::unannounced(self, grace).await
    }

    async fn delete(&self, id: &str) -> Result<Vec<String>> {
        PgStore::delete(self, id).await
    }

    async fn expired(&self, before: f64) -> Result<Vec<String>> {
        PgStore::expired(self, before).await
    }

    async fn stale_uploads(&self, before: f64) -> Result<Vec<String>> {
        PgStore::stale_uploads(self, before).await
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
        PgStore::add_file(self, bytes, owner, name, content_type, kind, prediction).await
    }

    async fn file(&self, id: &str) -> Result<Option<FileRecord>> {
        PgStore::file(self, id).await
    }

    async fn attach_file(&self, file: &str, prediction: &str) -> Result<()> {
        PgStore::attach_file(self, file, prediction).await
    }

    async fn read_blob(&self, file: &FileRecord) -> Result<Vec<u8>> {
        PgStore::read_blob(self, file).await
    }

    async fn delete_file(&self, id: &str) -> Result<()> {
        PgStore::delete_file(self, id).await
    }

    async fn set_source(&self, file: &str, source: &str) -> Result<()> {
        PgStore::set_source(self, file, source).await
    }

    async fn release_faces(&self) -> Result<usize> {
        PgStore::release_faces(self).await
    }

    async fn add_event(&self, prediction: &str, seq: u64, name: &str, data: &str) -> Result<()> {
        PgStore::add_event(self, prediction, seq, name, data).await
    }

    async fn events_after(&self, prediction: &str, last: u64) -> Result<Vec<StoredEvent>> {
        PgStore::events_after(self, prediction, last).await
    }

    async fn reserve_events(
        &self,
        prediction: &str,
        after: u64,
        count: u64,
    ) -> Result<Option<u64>> {
        PgStore::reserve_events(self, prediction, after, count).await
    }

    async fn event_floor(&self, prediction: &str) -> Result<u64> {
        PgStore::event_floor(self, prediction).await
    }

    async fn create_share(&self, prediction: &str, include_face: bool) -> Result<String> {
        PgStore::create_share(self, prediction, include_face).await
    }

    async fn share(&self, share_id: &str) -> Result<Option<(String, bool)>> {
        PgStore::share(self, share_id).await
    }

    async fn face_shared(&self, file: &str) -> Result<bool> {
        PgStore::face_shared(self, file).await
    }

    async fn delete_shares(&self, prediction: &str) -> Result<usize> {
        PgStore::delete_shares(self, prediction).await
    }

    async fn sweep_orphans(&self, age: Duration) -> Result<usize> {
        PgStore::sweep_orphans(self, age).await
    }

    async fn take_token(&self, key: &str, per_minute: u32) -> Result<Option<Result<(), u64>>> {
        PgStore::take_token(self, key, per_minute).await.map(Some)
    }

    async fn expire_rate_limits(&self) -> Result<()> {
        PgStore::expire_rate_limits(self).await
    }

    async fn worker_seen(&self, worker: &WorkerInfo) -> Result<()> {
        PgStore::worker_seen(self, worker).await
    }

    async fn workers(&self, within: Duration) -> Result<Vec<WorkerInfo>> {
        PgStore::workers(self, within).await
    }

    async fn worker_gone(&self, id: &str) -> Result<()> {
        PgStore::worker_gone(self, id).await
    }
}
