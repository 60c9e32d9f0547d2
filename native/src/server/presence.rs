//! Workers tell the store they are alive every heartbeat (state, device, busy), so that any
//! process can list them in `/v1/health`, and an API process that runs no jobs itself reports
//! ready only while some worker is.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use consistentid_core::api::WorkerHealth;

use super::store::WorkerInfo;
use super::{AppState, HealthState};

/// Writes this process's worker row every heartbeat until the task is dropped.
pub async fn run(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(state.args.heartbeat_every());
    loop {
        tick.tick().await;
        // The store being out of reach shows as the worker going quiet; the next beat tells.
        let _ = state.store.worker_seen(&me(&state)).await;
    }
}

/// This process's worker as the others see it.
fn me(state: &AppState) -> WorkerInfo {
    let h = state
        .health
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let status = if state.is_draining() {
        "draining"
    } else {
        h.status
    };
    WorkerInfo {
        id: state.worker.clone(),
        device: h.device,
        status: status.to_string(),
        detail: h.detail,
        busy: state.busy.load(Ordering::SeqCst),
        seen_ago: 0.0,
    }
}

/// The health of an API process from the workers heard from within `window`: ready while one
/// is ready, else what the others are doing.
pub fn health_of(workers: &[WorkerInfo], window: Duration) -> HealthState {
    let with = |status: &str| workers.iter().find(|w| w.status == status);
    let ready = workers.iter().filter(|w| w.status == "ready").count();
    if let Some(w) = with("ready") {
        return HealthState {
            status: "ready",
            detail: format!("{ready} of {} worker(s) ready", workers.len()),
            device: w.device.clone(),
        };
    }
    if let Some(w) = with("loading") {
        return HealthState {
            status: "loading",
            detail: format!("worker {}: {}", w.id, w.detail),
            device: w.device.clone(),
        };
    }
    if let Some(w) = with("failed")
        && workers.iter().all(|w| w.status == "failed")
    {
        return HealthState {
            status: "failed",
            detail: format!("worker {}: {}", w.id, w.detail),
            device: w.device.clone(),
        };
    }
    HealthState {
        status: "degraded",
        detail: format!(
            "no worker is ready (none heard from in the last {:.0} s): jobs are queued and run once one starts",
            window.as_secs_f64()
        ),
        device: String::new(),
    }
}

pub fn view(w: &WorkerInfo) -> WorkerHealth {
    WorkerHealth {
        id: w.id.clone(),
        status: w.status.clone(),
        detail: w.detail.clone(),
        device: w.device.clone(),
        busy: w.busy,
        last_seen_seconds: (w.seen_ago * 10.0).round() / 10.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(id: &str, status: &str) -> WorkerInfo {
        WorkerInfo {
            id: id.into(),
            device: "cpu".into(),
            status: status.into(),
            detail: format!("{status} detail"),
            busy: false,
            seen_ago: 0.5,
        }
    }

    #[test]
    fn an_api_is_ready_while_one_worker_is() {
        let window = Duration::from_secs(3);
        let h = health_of(&[worker("a", "loading"), worker("b", "ready")], window);
        assert_eq!(
            (h.status, h.detail.as_str()),
            ("ready", "1 of 2 worker(s) ready")
        );
        assert_eq!(
            health_of(&[worker("a", "loading")], window).status,
            "loading"
        );
        let failed = health_of(&[worker("a", "failed")], window);
        assert_eq!(
            (failed.status, failed.detail.as_str()),
            ("failed", "worker a: failed detail")
        );
        // One failed worker and one draining: not every worker failed, jobs still wait.
        let mixed = health_of(&[worker("a", "failed"), worker("b", "draining")], window);
        assert_eq!(mixed.status, "degraded");
        let none = health_of(&[], window);
        assert_eq!(none.status, "degraded");
        assert!(none.detail.contains("last 3 s"), "{}", none.detail);
    }
}
