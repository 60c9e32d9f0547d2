//! The worker thread: it loads the engine (fetching the model folder first when it is
//! missing), then runs queued jobs one at a time, streaming their events; and the janitor
//! that enforces retention.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;
use consistentid_core::api::{
    Candidate, CandidatesEvent, Metrics, OutputEvent, OutputInfo, PreviewEvent, ProgressEvent,
    Status, StatusEvent, StreamEvent,
};
use consistentid_core::face::ChannelOrder;
use consistentid_core::image::RgbImage;
use consistentid_core::pipeline::into::PasteSink;
use consistentid_core::pipeline::{Engine, GeneratedImage, Phase, Sink};

use super::AppState;
use super::ids::now;
use super::store::Record;
use super::views;
use crate::device::{DeviceChoice, DtypeChoice, select};
use crate::io::png::encode_rgb;

/// Previews at most this often.
const PREVIEW_INTERVAL: Duration = Duration::from_millis(250);
/// Finished jobs' live buffers are kept this long for late streams.
const KEEP_FINISHED: Duration = Duration::from_secs(60);
/// How often a job's end is written again when the store could not take it.
const FINISH_RETRY: Duration = Duration::from_secs(1);

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
            let engine = match load(&state, &model, device, dtype) {
                Ok(engine) => engine,
                Err(e) => {
                    let message = format!("{e:#}");
                    eprintln!("error: cannot load the models: {message}");
                    state.set_health("failed", message);
                    return;
                }
            };
            if state.args.paused {
                state.set_health("ready", "paused: jobs are queued, not run (--paused)");
                eprintln!("models loaded: paused (--paused), jobs wait for a restart");
                while !state.is_draining() {
                    state.wake.wait(Duration::from_secs(1));
                }
                return;
            }
            state.set_health("ready", "ready");
            eprintln!("models loaded: ready");
            work(&state, &engine);
        })
        .expect("a thread for the worker")
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
        eprintln!("no model folder at {}: fetching it first", model.display());
        crate::commands::fetch::fetch_into(model)?;
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
    let mut engine =
        crate::commands::generate::load_engine(model, ChannelOrder::Official, dtype, &device)?;
    engine.max_batch = crate::device::default_batch(backend);
    eprintln!(
        "loaded {} on {backend} in {:.1}s",
        model.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(engine)
}

/// Runs jobs until the host drains.
fn work(state: &AppState, engine: &Engine) {
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
        let next = match state.store.start_next() {
            Ok(next) => next,
            Err(e) => {
                eprintln!("error: the queue cannot be read: {e:#}");
                state.wake.wait(Duration::from_secs(1));
                continue;
            }
        };
        let Some(record) = next else {
            state.wake.wait(Duration::from_secs(1));
            continue;
        };
        announce_queue(state);
        state.hub.send(
            &record.id,
            StreamEvent::Status(StatusEvent {
                status: Status::Processing,
                queue_position: None,
            }),
        );
        let id = record.id.clone();
        run_one(state, engine, record);
        finished.push((Instant::now(), id));
    }
}

/// Tells every waiting job its new place in the queue.
pub fn announce_queue(state: &AppState) {
    if let Ok(queued) = state.store.queued() {
        for (position, id) in queued.iter().enumerate() {
            if state.hub.existing(id).is_some() {
                state.hub.send(
                    id,
                    StreamEvent::Status(StatusEvent {
                        status: Status::Starting,
                        queue_position: Some(position),
                    }),
                );
            }
        }
    }
}

fn run_one(state: &AppState, engine: &Engine, record: Record) {
    let mut sink = HostSink::new(state, &record);
    let outcome = match super::jobs::build_job(state, &record) {
        Err(reason) => Err(reason),
        Ok((mut job, warnings)) => {
            for w in warnings {
                sink.warning(&w);
            }
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
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
                    if state.is_draining() && !sink.canceled_by_owner() {
                        // Shutting down: the job runs again after the restart.
                        let _ = state.store.requeue(&record.id);
                        eprintln!("queued {} again for the next start", record.id);
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
        state.hub.send(&record.id, StreamEvent::Error(e.clone()));
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
    while let Err(e) = state
        .store
        .finish(&record.id, status, error.as_deref(), &logs, &metrics)
    {
        if !warned {
            eprintln!(
                "error: cannot record the end of {}: {e:#}; retrying until the data folder can be written",
                record.id
            );
            warned = true;
        }
        if state.is_draining() {
            return;
        }
        state.wake.wait(FINISH_RETRY);
    }
    if warned {
        eprintln!("recorded the end of {}", record.id);
    }
    finish_job(state, &record.id);
}

/// After a job ends: the face goes unless its owner keeps it (and the upload it came from, once
/// no other job waits for it); the stream gets `completed`.
pub fn finish_job(state: &AppState, id: &str) {
    let Ok(Some(record)) = state.store.get(id) else {
        return;
    };
    if let Err(e) = state.store.release_faces() {
        // The janitor tries again every minute.
        eprintln!("error: cannot delete an uploaded face: {e:#}");
    }
    state.hub.send(
        id,
        // Streams rebuild its data with their own URLs; the id is what counts.
        StreamEvent::Completed(Box::new(views::prediction(
            state,
            &state.base,
            &record,
            false,
        ))),
    );
}

/// Streams a job's events and stores its images.
struct HostSink<'a> {
    state: &'a AppState,
    id: String,
    owner: String,
    started: Instant,
    phase_started: Instant,
    last_preview: Option<Instant>,
    outputs: Vec<String>,
    /// Per stored output: its seed and likeness.
    metadata: Vec<OutputInfo>,
    logs: String,
    metrics: Metrics,
}

impl<'a> HostSink<'a> {
    fn new(state: &'a AppState, record: &Record) -> Self {
        Self {
            state,
            id: record.id.clone(),
            owner: record.owner.clone(),
            started: Instant::now(),
            phase_started: Instant::now(),
            last_preview: None,
            outputs: Vec::new(),
            metadata: Vec::new(),
            logs: String::new(),
            metrics: Metrics::default(),
        }
    }

    fn canceled_by_owner(&self) -> bool {
        self.state
            .cancel
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&self.id)
    }

    fn send(&self, event: StreamEvent) {
        self.state.hub.send(&self.id, event);
    }
}

fn add(slot: &mut Option<f64>, secs: f64) {
    *slot = Some(slot.unwrap_or_default() + secs);
}

/// A small PNG as a data URI.
fn png_data_uri(image: &RgbImage) -> Option<String> {
    let png = encode_rgb(&image.data, image.width as u32, image.height as u32, "").ok()?;
    Some(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    ))
}

impl Sink for HostSink<'_> {
    fn phase_started(&mut self, phase: Phase, image: Option<usize>) {
        self.phase_started = Instant::now();
        self.send(StreamEvent::Progress(ProgressEvent {
            phase,
            image,
            step: 0,
            total: 0,
        }));
    }

    fn phase_finished(&mut self, phase: Phase, image: Option<usize>) {
        let secs = self.phase_started.elapsed().as_secs_f64();
        let m = &mut self.metrics;
        match phase {
            Phase::Analyse => add(&mut m.analyse_time, secs),
            Phase::Parse => add(&mut m.parse_time, secs),
            Phase::Encode => add(&mut m.encode_time, secs),
            Phase::Denoise => add(&mut m.denoise_time, secs),
            Phase::Decode => add(&mut m.decode_time, secs),
            Phase::Score => add(&mut m.score_time, secs),
        }
        let which = image
            .map(|k| format!(" (image {})", k + 1))
            .unwrap_or_default();
        self.logs
            .push_str(&format!("{}{which}: {secs:.2}s\n", phase.label()));
    }

    fn step(&mut self, image: usize, step: usize, total: usize) {
        self.state.metrics.step(step == 1);
        self.send(StreamEvent::Progress(ProgressEvent {
            phase: Phase::Denoise,
            image: Some(image),
            step,
            total,
        }));
    }

    fn wants_preview(&mut self, _image: usize, _step: usize, _total: usize) -> bool {
        self.last_preview
            .is_none_or(|t| t.elapsed() >= PREVIEW_INTERVAL)
    }

    fn preview(&mut self, image: usize, step: usize, preview: RgbImage) {
        self.last_preview = Some(Instant::now());
        if let Some(data_uri) = png_data_uri(&preview) {
            self.send(StreamEvent::Preview(PreviewEvent {
                image,
                step,
                data_uri,
            }));
        }
    }

    fn warning(&mut self, text: &str) {
        self.logs.push_str(&format!("warning: {text}\n"));
        self.send(StreamEvent::Log(format!("warning: {text}")));
    }

    fn info(&mut self, _text: &str) {
        // The marked prompt and region names stay out of the logs: they describe the face.
    }

    fn cancelled(&mut self) -> bool {
        self.state.is_draining() || self.canceled_by_owner()
    }

    fn image(&mut self, image: &GeneratedImage) -> consistentid_core::Result<()> {
        let stored = encode_rgb(
            &image.image.data,
            image.image.width as u32,
            image.image.height as u32,
            &image.parameters,
        )
        .map_err(|e| consistentid_core::Error::InvalidRequest(format!("{e:#}")))
        .and_then(|png| {
            self.state
                .store
                .add_file(
                    &png,
                    &self.owner,
                    &format!("{}-{}.png", image.seed, image.index),
                    "image/png",
                    "output",
                    Some(&self.id),
                )
                .map_err(|e| {
                    consistentid_core::Error::InvalidRequest(format!(
                        "cannot store the image: {e:#}"
                    ))
                })
        })?;
        let info = OutputInfo::new(image.seed, image.likeness.clone().unwrap_or_default());
        self.outputs.push(stored.id.clone());
        self.metadata.push(info.clone());
        let _ = self
            .state
            .store
            .set_progress(&self.id, &self.outputs, &self.metadata, &self.logs);
        self.send(StreamEvent::Output(OutputEvent {
            index: image.index,
            url: views::file_path(&stored.id),
            seed: Some(info.seed),
            face_similarity: info.face_similarity,
            face_similarity_reason: info.face_similarity_reason.clone(),
        }));
        Ok(())
    }

    fn candidates(&mut self, candidates: &[Candidate]) {
        let _ = self.state.store.set_candidates(&self.id, candidates);
        self.send(StreamEvent::Candidates(CandidatesEvent {
            candidates: candidates.to_vec(),
        }));
    }
}

/// Deletes expired results (`--retention`) and uploads never used by a job (after an hour).
pub async fn janitor(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        let state = state.clone();
        let _ = tokio::task::spawn_blocking(move || sweep(&state)).await;
    }
}

fn sweep(state: &AppState) {
    // Faces whose deletion at the job's end failed (a full disk) go as soon as possible.
    let _ = state.store.release_faces();
    if let Ok(stale) = state.store.stale_uploads(now() - 3600.0) {
        for id in stale {
            let _ = state.store.delete_file(&id);
        }
    }
    if let Some(retention) = state.args.retention
        && let Ok(expired) = state.store.expired(now() - retention.as_secs_f64())
    {
        for id in expired {
            if let Ok(files) = state.store.delete(&id) {
                for f in files {
                    let _ = state.store.delete_file(&f);
                }
            }
        }
    }
}
