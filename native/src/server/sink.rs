//! The worker's sink: it streams a job's events and stores its images, while a task on the
//! async runtime keeps the job's lease alive (not the engine's thread: a long decode would
//! starve it). A worker that lost its lease stops at the next step: the job is another's now.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use consistentid_core::api::{
    Candidate, CandidatesEvent, Metrics, OutputEvent, OutputInfo, PreviewEvent, ProgressEvent,
    StreamEvent,
};
use consistentid_core::image::RgbImage;
use consistentid_core::pipeline::{GeneratedImage, Phase, Sink};

use super::AppState;
use super::store::{Fence, Record};
use super::views;
use crate::io::png::encode_rgb;

/// Previews at most this often.
const PREVIEW_INTERVAL: Duration = Duration::from_millis(250);

/// Renews a running job's lease every `--heartbeat` (a third of it by default: one late beat
/// is harmless) until dropped.
struct Heartbeat {
    task: tokio::task::JoinHandle<()>,
    /// The lease was lost: the reaper gave the job to another worker.
    lost: Arc<AtomicBool>,
    /// The owner asked to cancel (through any process).
    cancel: Arc<AtomicBool>,
}

impl Heartbeat {
    fn start(state: &AppState, fence: Fence) -> Self {
        let (lost, cancel) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (store, lease, every) = (
            state.store.clone(),
            state.args.lease,
            state.args.heartbeat_every(),
        );
        let (lost2, cancel2) = (lost.clone(), cancel.clone());
        let task = state.runtime.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                match store.heartbeat(&fence, lease).await {
                    Ok(Some(asked)) => cancel2.fetch_or(asked, Ordering::SeqCst),
                    Ok(None) => {
                        lost2.store(true, Ordering::SeqCst);
                        return;
                    }
                    // The store is unreachable: keep going; the next beat tells.
                    Err(_) => false,
                };
            }
        });
        Self { task, lost, cancel }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Streams a job's events and stores its images.
pub struct HostSink<'a> {
    state: &'a AppState,
    id: String,
    /// The attempt this worker runs; every write names it.
    pub fence: Fence,
    heartbeat: Heartbeat,
    /// A write found the attempt over (the job went to another worker).
    fenced_out: bool,
    owner: String,
    pub started: Instant,
    phase_started: Instant,
    last_preview: Option<Instant>,
    outputs: Vec<String>,
    /// Per stored output: its seed and likeness.
    metadata: Vec<OutputInfo>,
    pub logs: String,
    pub metrics: Metrics,
    /// Why an image could not be stored, when the object store was away (the job then goes
    /// back to the queue rather than failing).
    pub unavailable: Option<String>,
}

impl<'a> HostSink<'a> {
    pub fn new(state: &'a AppState, record: &Record) -> Self {
        Self {
            state,
            id: record.id.clone(),
            fence: Fence::of(record, &state.worker),
            heartbeat: Heartbeat::start(state, Fence::of(record, &state.worker)),
            fenced_out: false,
            owner: record.owner.clone(),
            started: Instant::now(),
            phase_started: Instant::now(),
            last_preview: None,
            outputs: Vec::new(),
            metadata: Vec::new(),
            logs: String::new(),
            metrics: Metrics::default(),
            unavailable: None,
        }
    }

    /// Whether this attempt lost the job (its lease ran out, or a write found it over).
    pub fn lost(&self) -> bool {
        self.fenced_out || self.heartbeat.lost.load(Ordering::SeqCst)
    }

    pub fn canceled_by_owner(&self) -> bool {
        self.heartbeat.cancel.load(Ordering::SeqCst)
            || self
                .state
                .cancel
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&self.id)
    }

    fn send(&self, event: StreamEvent) {
        self.state.block_on(self.state.hub.send(&self.id, event));
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
        self.lost() || self.state.is_draining() || self.canceled_by_owner()
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
                .block_on(self.state.store.add_file(
                    &png,
                    &self.owner,
                    &format!("{}-{}.png", image.seed, image.index),
                    "image/png",
                    "output",
                    Some(&self.id),
                ))
                .map_err(|e| {
                    if crate::server::store::is_unreachable(&e) {
                        self.unavailable = Some(format!("{e:#}"));
                        return consistentid_core::Error::Canceled;
                    }
                    consistentid_core::Error::InvalidRequest(format!(
                        "cannot store the image: {e:#}"
                    ))
                })
        })?;
        let info = OutputInfo::new(image.seed, image.likeness.clone().unwrap_or_default());
        self.outputs.push(stored.id.clone());
        self.metadata.push(info.clone());
        let progress = self.state.block_on(self.state.store.set_progress(
            &self.fence,
            &self.outputs,
            &self.metadata,
            &self.logs,
        ));
        if matches!(progress, Ok(false)) {
            // Another attempt owns the job now: this image is not one of its outputs.
            let _ = self
                .state
                .block_on(self.state.store.delete_file(&stored.id));
            self.fenced_out = true;
            return Err(consistentid_core::Error::Canceled);
        }
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
        let store = &self.state.store;
        if matches!(
            self.state
                .block_on(store.set_candidates(&self.fence, candidates)),
            Ok(false)
        ) {
            self.fenced_out = true;
        }
        self.send(StreamEvent::Candidates(CandidatesEvent {
            candidates: candidates.to_vec(),
        }));
    }
}
