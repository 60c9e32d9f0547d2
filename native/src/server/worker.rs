//! The worker thread: it loads the engine (fetching the model folder first when it is
//! missing), then claims queued jobs one at a time and runs them, streaming their events.
//! Every write about a running job names its attempt ([`Fence`]), so a worker that lost its
//! lease changes nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use consistentid_core::api::{Status, StatusEvent, StreamEvent};
use consistentid_core::face::ChannelOrder;
use consistentid_core::pipeline::into::PasteSink;
use consistentid_core::pipeline::{Engine, Sink};

use super::AppState;
use super::ids::now;
use super::jobs::NotRunnable;
use super::sink::HostSink;
use super::store::Record;
use super::views;
use crate::device::{DeviceChoice, DtypeChoice, select};
/// Finished jobs' live buffers are kept this long for late streams.
const KEEP_FINISHED: Duration = Duration::from_secs(60);
/// How long a worker waits after handing a job back because its files were out of reach.
const UNAVAILABLE_PAUSE: Duration = Duration::from_secs(2);
/// How often a job's end is written again when the store could not take it.
const FINISH_RETRY: Duration = Duration::from_secs(1);

/// What runs the jobs: the models, or (tests) a script that emits the same events.
enum Runner {
    Models(Box<Engine>),
    #[cfg(feature = "test-engine")]
    Scripted(super::test_engine::Script),
}

/// Starts the worker thread.
pub fn spawn(
    state: Arc<AppState>,
    model: PathBuf,
    device: DeviceChoice,
    dtype: DtypeChoice,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("consistentid-worker".into())
        .spawn(move || {
            let span = tracing::info_span!("worker", worker_id = %state.worker);
            let _entered = span.enter();
            let engine = match load_runner(&state, &model, device, dtype) {
                Ok(engine) => engine,
                Err(e) => {
                    let message = format!("{e:#}");
                    tracing::error!("cannot load the models: {message}");
                    state.set_health("failed", message);
                    return;
                }
            };
            if state.args.paused {
                state.set_health("ready", "paused: jobs are queued, not run (--paused)");
                tracing::info!("models loaded: paused (--paused), jobs wait for a restart");
                while !state.is_draining() {
                    state.wake.wait(Duration::from_secs(1));
                }
                return;
            }
            state.set_health("ready", "ready");
            tracing::info!("models loaded: ready");
            work(&state, &engine);
        })
        .expect("a thread for the worker")
}

/// The models, or with `--features test-engine` and `CONSISTENTID_TEST_ENGINE` set, the script.
fn load_runner(
    state: &AppState,
    model: &Path,
    device: DeviceChoice,
    dtype: DtypeChoice,
) -> anyhow::Result<Runner> {
    #[cfg(feature = "test-engine")]
    if let Some(script) = super::test_engine::Script::from_env() {
        state
            .health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .device = "test-engine".into();
        return Ok(Runner::Scripted(script.map_err(anyhow::Error::msg)?));
    }
    Ok(Runner::Models(Box::new(load(state, model, device, dtype)?)))
}

fn load(
    state: &AppState,
    model: &Path,
    device: DeviceChoice,
    dtype: DtypeChoice,
) -> anyhow::Result<Engine> {
    if !model.exists() {
        if state.args.no_fetch {
            anyhow::bail!(
                "no model folder at {} (run `consistentid fetch --model-dir {}` or drop --no-fetch)",
                model.display(),
                model.display()
            );
        }
        state.set_health(
            "loading",
            format!("fetching the official weights into {}", model.display()),
        );
        tracing::info!("no model folder at {}: fetching it first", model.display());
        crate::fetch::fetch_into(model)?;
    }
    let (device, backend) = select(device)?;
    {
        let mut h = state.health.lock().unwrap_or_else(|p| p.into_inner());
        h.device = backend.to_string();
    }
    state.set_health(
        "loading",
        format!("loading the models from {}", model.display()),
    );
    let started = Instant::now();
    let dtype = dtype.resolve(backend);
    let mut engine = crate::models::load_engine(model, ChannelOrder::Official, dtype, &device)?;
    engine.max_batch = crate::device::default_batch(backend);
    tracing::info!(
        "loaded {} on {backend} in {:.1}s",
        model.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(engine)
}

/// Runs jobs until the host drains.
fn work(state: &AppState, engine: &Runner) {
    let mut finished: Vec<(Instant, String)> = Vec::new();
    loop {
        finished.retain(|(at, id)| {
            let keep = at.elapsed() < KEEP_FINISHED;
            if !keep {
                state.hub.forget(id);
            }
            keep
        });
        if state.is_draining() {
            return;
        }
        let next = match state.block_on(state.store.claim(&state.worker, state.args.lease)) {
            Ok(next) => next,
            Err(e) => {
                tracing::error!("the queue cannot be read: {e:#}");
                state.wake.wait(Duration::from_secs(1));
                continue;
            }
        };
        let Some(record) = next else {
            state.wake.wait(Duration::from_secs(1));
            continue;
        };
        let status = StatusEvent {
            status: Status::Processing,
            queue_position: None,
        };
        state.block_on(async {
            announce_queue(state).await;
            state
                .hub
                .send(&record.id, StreamEvent::Status(status))
                .await;
        });
        let id = record.id.clone();
        state.busy.store(true, std::sync::atomic::Ordering::SeqCst);
        run_one(state, engine, record);
        state.busy.store(false, std::sync::atomic::Ordering::SeqCst);
        finished.push((Instant::now(), id));
    }
}

/// Tells every waiting job its new place in the queue.
pub async fn announce_queue(state: &AppState) {
    let Ok(queued) = state.store.queued().await else {
        return;
    };
    for (position, id) in queued.iter().enumerate() {
        if state.hub.existing(id).is_some() {
            let status = StatusEvent {
                status: Status::Starting,
                queue_position: Some(position),
            };
            state.hub.send(id, StreamEvent::Status(status)).await;
        }
    }
}

fn run_one(state: &AppState, runner: &Runner, record: Record) {
    let mut sink = HostSink::new(state, &record);
    let span = tracing::info_span!("job", prediction_id = %record.id, attempt = sink.fence.attempt);
    let _entered = span.enter();
    tracing::info!(
        queued_s = (now() - record.created_at).max(0.0),
        "job started"
    );
    let outcome = match state.block_on(super::jobs::build_job(state, &record)) {
        Err(NotRunnable::Unavailable(why)) => return hand_back(state, &sink, &why),
        Err(NotRunnable::Invalid(reason)) => Err(reason),
        Ok((mut job, warnings)) => {
            for w in warnings {
                sink.warning(&w);
            }
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // One variant without the test engine.
                #[allow(clippy::infallible_destructuring_match)]
                let engine = match runner {
                    Runner::Models(engine) => engine,
                    #[cfg(feature = "test-engine")]
                    Runner::Scripted(script) => return script.run(&job, &mut sink),
                };
                let mut notes = Vec::new();
                let photo =
                    super::photo::build(state, engine, &record.input, &job.face, &mut notes)
                        .map_err(consistentid_core::Error::InvalidRequest)?;
                for note in notes {
                    sink.warning(&note);
                }
                match photo {
                    Some((photo, Some(paste))) => {
                        job.photo = Some(photo);
                        engine.run(
                            &job,
                            &mut PasteSink {
                                inner: &mut sink,
                                paste: &paste,
                            },
                        )
                    }
                    Some((photo, None)) => {
                        job.photo = Some(photo);
                        engine.run(&job, &mut sink)
                    }
                    None => engine.run(&job, &mut sink),
                }
            }));
            let run = run.unwrap_or_else(|panic| {
                let msg = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("unknown panic");
                Err(consistentid_core::Error::InvalidRequest(format!(
                    "internal failure: {msg}"
                )))
            });
            match run {
                Ok(_) => Ok(()),
                Err(consistentid_core::Error::Canceled) => {
                    if let Some(why) = sink.unavailable.take() {
                        return hand_back(state, &sink, &why);
                    }
                    if sink.lost() {
                        tracing::warn!(
                            "the lease ran out and the job went back to the queue; this run stops"
                        );
                        return;
                    }
                    if state.is_draining() && !sink.canceled_by_owner() {
                        // Shutting down: the job runs again after the restart.
                        let _ = state.block_on(state.store.requeue(&sink.fence));
                        tracing::info!("stopping: the job is queued again for the next start");
                        return;
                    }
                    Err(String::new())
                }
                Err(e) => Err(e.to_string()),
            }
        }
    };
    let (status, error) = match outcome {
        Ok(()) => (Status::Succeeded, None),
        Err(reason) if reason.is_empty() => (Status::Canceled, None),
        Err(reason) => (Status::Failed, Some(reason)),
    };
    if let Some(e) = &error {
        sink.logs.push_str(&format!("error: {e}\n"));
        state.block_on(state.hub.send(&record.id, StreamEvent::Error(e.clone())));
    }
    sink.metrics.predict_time = Some(sink.started.elapsed().as_secs_f64());
    sink.metrics.queue_time = record
        .started_at
        .map(|s| (s - record.created_at).max(0.0))
        .or(Some((now() - record.created_at).max(0.0)));
    let logs = sink.logs.clone();
    let metrics = sink.metrics.clone();
    state.metrics.ended(
        status,
        metrics.predict_time.unwrap_or_default(),
        metrics.queue_time.unwrap_or_default(),
    );
    state
        .cancel
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&record.id);
    // The end must be recorded before anything else runs: on a full disk, retried until the
    // store can be written again (or the host stops; recovery then ends it after the restart).
    let mut warned = false;
    let fence = sink.fence.clone();
    let finish = || {
        state.block_on(
            state
                .store
                .finish(&fence, status, error.as_deref(), &logs, &metrics),
        )
    };
    let held = loop {
        let e = match finish() {
            Ok(held) => break held,
            Err(e) => e,
        };
        if !warned {
            tracing::error!(
                "cannot record the job's end: {e:#}; retrying until the store can be written"
            );
            warned = true;
        }
        if state.is_draining() {
            return;
        }
        state.wake.wait(FINISH_RETRY);
    };
    if warned {
        tracing::info!("recorded the job's end");
    }
    if !held {
        // The lease ran out meanwhile (a long pause): the job is another attempt's now.
        tracing::warn!("the lease ran out; this run's end is not recorded");
        return;
    }
    tracing::info!(
        status = status.as_str(),
        seconds = metrics.predict_time.unwrap_or_default(),
        "job ended"
    );
    state.block_on(finish_job(state, &record.id));
}

/// The job's files cannot be read or written now (the object store is away): it goes back
/// to the queue, its run not counted, and this worker waits a little before the next claim.
fn hand_back(state: &AppState, sink: &HostSink, why: &str) {
    let back = state.block_on(state.store.requeue(&sink.fence));
    tracing::warn!("{why}; the job is queued again");
    if matches!(back, Ok(true)) {
        let status = StatusEvent {
            status: Status::Starting,
            queue_position: None,
        };
        state.block_on(state.hub.send(&sink.fence.id, StreamEvent::Status(status)));
    }
    state.wake.wait(UNAVAILABLE_PAUSE);
}

/// After a job ends: the face goes unless its owner keeps it (and the upload it came from, once
/// no other job waits for it); the stream gets `completed`.
pub async fn finish_job(state: &AppState, id: &str) {
    let Ok(Some(record)) = state.store.get(id).await else {
        return;
    };
    if let Err(e) = state.store.release_faces().await {
        // The janitor tries again every minute.
        tracing::error!("cannot delete an uploaded face: {e:#}");
    }
    // Streams rebuild its data with their own URLs; the id is what counts.
    let view = views::prediction(state, &state.base, &record, false).await;
    state
        .hub
        .send(id, StreamEvent::Completed(Box::new(view)))
        .await;
}
