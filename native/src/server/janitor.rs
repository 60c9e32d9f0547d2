//! The janitor: retention (`--retention`), uploads never used by a job, faces whose deletion
//! failed, and jobs whose worker stopped (the reaper).

use std::sync::Arc;
use std::time::Duration;

use super::AppState;
use super::ids::now;

/// How often it runs.
const EVERY: Duration = Duration::from_secs(60);
/// Uploads no job used are deleted after this long.
const STALE_UPLOAD_SECS: f64 = 3600.0;
/// Objects no file names are deleted after this long (a write may still be on its way).
const ORPHAN_AGE: Duration = Duration::from_secs(3600);

/// Runs the sweep every minute until the host stops.
pub async fn run(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        sweep(&state).await;
    }
}

/// Gives the jobs of workers whose lease ran out to others (or fails them after a second
/// loss), a few times per lease.
pub async fn reaper(state: Arc<AppState>) {
    let mut tick = tokio::time::interval((state.args.lease / 4).max(Duration::from_millis(100)));
    loop {
        tick.tick().await;
        if let Ok(reaped) = state.store.reap().await {
            for id in reaped.again.iter().chain(&reaped.failed) {
                tracing::warn!(prediction_id = %id, "its worker stopped answering; the job was taken back");
            }
            if !reaped.again.is_empty() {
                state.wake.notify();
            }
            for id in &reaped.failed {
                super::worker::finish_job(&state, id).await;
            }
        }
        // A job's end whose worker stopped before announcing it: announced here (its face
        // released, `completed` sent and stored), once the lease says the worker is gone.
        if let Ok(ended) = state.store.unannounced(state.args.lease).await {
            for id in ended {
                super::worker::finish_job(&state, &id).await;
            }
        }
    }
}

async fn sweep(state: &AppState) {
    // Streams of ended jobs that ran in other processes replay from the store from now on.
    if state.store.is_shared() {
        state.hub.forget_completed();
    }
    let store = &state.store;
    // Faces whose deletion at the job's end failed (a full disk) go as soon as possible.
    let _ = store.release_faces().await;
    if let Ok(stale) = store.stale_uploads(now() - STALE_UPLOAD_SECS).await {
        for id in stale {
            let _ = store.delete_file(&id).await;
        }
    }
    let _ = store.expire_rate_limits().await;
    if let Ok(n) = store.sweep_orphans(ORPHAN_AGE).await
        && n > 0
    {
        tracing::info!("deleted {n} stored object(s) no file refers to");
    }
    if let Some(retention) = state.args.retention
        && let Ok(expired) = store.expired(now() - retention.as_secs_f64()).await
    {
        for id in expired {
            if let Ok(files) = store.delete(&id).await {
                for f in files {
                    let _ = store.delete_file(&f).await;
                }
            }
        }
    }
}
