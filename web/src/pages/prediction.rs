//! A prediction's page (`/p/{id}`): status and queue position, a progress bar with ETA, live
//! previews, cancel, the images, and share. Reload-safe: it reads the prediction and
//! reconnects to its event stream.

use consistentid_core::api::{Prediction, Status};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;

use crate::api;
use crate::components::gallery::Gallery;

/// What the page shows, updated by the event stream.
#[derive(Clone, Copy)]
struct Live {
    status: RwSignal<String>,
    queue: RwSignal<Option<u64>>,
    step: RwSignal<(u64, u64)>,
    phase: RwSignal<String>,
    image: RwSignal<u64>,
    preview: RwSignal<Option<String>>,
    outputs: RwSignal<Vec<String>>,
    error: RwSignal<Option<String>>,
    prediction: RwSignal<Option<Prediction>>,
    /// When the current image's denoising began (ms), for the ETA.
    started: RwSignal<f64>,
}

fn now() -> f64 {
    js_sys::Date::now()
}

impl Live {
    fn on_event(&self, name: &str, data: Value) {
        match name {
            "status" => {
                self.status
                    .set(data["status"].as_str().unwrap_or("").to_string());
                self.queue.set(data["queue_position"].as_u64());
            }
            "progress" => {
                let phase = data["phase"].as_str().unwrap_or("").to_string();
                let (step, total) = (
                    data["step"].as_u64().unwrap_or(0),
                    data["total"].as_u64().unwrap_or(0),
                );
                if phase == "denoise" && step <= 1 {
                    self.started.set(now());
                }
                self.status.set("processing".into());
                self.queue.set(None);
                self.image.set(data["image"].as_u64().unwrap_or(0));
                self.phase.set(phase);
                self.step.set((step, total));
            }
            "preview" => self
                .preview
                .set(data["data_uri"].as_str().map(str::to_string)),
            "output" => {
                if let Some(url) = data["url"].as_str() {
                    self.outputs.update(|o| o.push(url.to_string()));
                }
            }
            "error" => self.error.set(data["detail"].as_str().map(str::to_string)),
            "completed" => {
                if let Ok(p) = serde_json::from_value::<Prediction>(data) {
                    self.status.set(p.status.as_str().to_string());
                    self.outputs.set(p.output.clone().unwrap_or_default());
                    if p.error.is_some() {
                        self.error.set(p.error.clone());
                    }
                    self.prediction.set(Some(p));
                }
            }
            _ => {}
        }
    }
}

/// Seconds left, from the time per step so far.
fn eta(started: f64, step: u64, total: u64) -> String {
    if step == 0 || total == 0 {
        return String::new();
    }
    let per = (now() - started) / 1000.0 / step as f64;
    let left = per * (total - step) as f64;
    format!("{per:.2} s/step, about {left:.0} s left")
}

#[component]
pub fn PredictionPage(id: String) -> impl IntoView {
    let live = Live {
        status: RwSignal::new("starting".into()),
        queue: RwSignal::new(None),
        step: RwSignal::new((0, 0)),
        phase: RwSignal::new(String::new()),
        image: RwSignal::new(0),
        preview: RwSignal::new(None),
        outputs: RwSignal::new(Vec::new()),
        error: RwSignal::new(None),
        prediction: RwSignal::new(None),
        started: RwSignal::new(now()),
    };
    let share_url = RwSignal::new(None::<String>);
    let id_for_load = id.clone();
    spawn_local(async move {
        match api::prediction(&id_for_load).await {
            Ok(p) => {
                live.status.set(p.status.as_str().to_string());
                live.queue.set(p.queue_position.map(|q| q as u64));
                live.outputs.set(p.output.clone().unwrap_or_default());
                live.prediction.set(Some(p));
            }
            Err(e) => live.error.set(Some(e)),
        }
        api::events(&id_for_load, move |name, data| live.on_event(name, data));
    });
    let terminal = move || Status::parse(&live.status.get()).is_some_and(|s| s.is_terminal());
    let id_cancel = id.clone();
    let cancel = move |_| {
        let id = id_cancel.clone();
        spawn_local(async move {
            if let Err(e) = api::cancel(&id).await {
                live.error.set(Some(e));
            }
        });
    };
    let id_share = id.clone();
    let share = move |_| {
        let id = id_share.clone();
        spawn_local(async move {
            match api::share(&id).await {
                Ok(s) => {
                    api::copy(&s.url);
                    share_url.set(Some(s.url));
                }
                Err(e) => live.error.set(Some(e)),
            }
        });
    };
    let percent = move || {
        let (s, t) = live.step.get();
        (s * 100).checked_div(t).unwrap_or(0)
    };
    let total_images = move || {
        live.prediction
            .get()
            .and_then(|p| p.input.num_outputs)
            .unwrap_or(1)
    };
    view! {
        <h1>"Your portrait"</h1>
        <p class="prompt">{move || live.prediction.get().and_then(|p| p.input.prompt).unwrap_or_default()}</p>
        <p id="pstatus" class="status" role="status">
            {move || match (live.status.get().as_str(), live.queue.get()) {
                ("starting", Some(q)) => format!("Waiting: {q} job(s) ahead."),
                ("starting", None) => "Waiting for the host…".to_string(),
                ("processing", _) => format!(
                    "Image {} of {}: {} {}",
                    live.image.get() + 1,
                    total_images(),
                    live.phase.get(),
                    eta(live.started.get(), live.step.get().0, live.step.get().1)
                ),
                ("succeeded", _) => "Done.".to_string(),
                ("canceled", _) => "Canceled.".to_string(),
                ("failed", _) => "Failed.".to_string(),
                (other, _) => other.to_string(),
            }}
        </p>
        <Show when=move || !terminal()>
            <div
                id="progress"
                class="progress"
                role="progressbar"
                aria-label="Denoising progress"
                aria-valuemin="0"
                aria-valuemax="100"
                aria-valuenow=move || percent().to_string()
            >
                <div class="fill" style=move || format!("width: {}%", percent())></div>
            </div>
            <p class="steps">{move || { let (s, t) = live.step.get(); if t > 0 { format!("Step {s} of {t}") } else { String::new() } }}</p>
            <Show when=move || live.preview.get().is_some()>
                <img id="preview" class="preview" alt="Live preview" src=move || live.preview.get().unwrap_or_default() />
            </Show>
            <button id="cancel" type="button" on:click=cancel.clone()>"Cancel"</button>
        </Show>
        <Show when=move || live.error.get().is_some()>
            <p id="error" class="error" role="alert">{move || live.error.get().unwrap_or_default()}</p>
        </Show>
        <Gallery urls=Signal::derive(move || live.outputs.get()) />
        <Show when=move || live.status.get() == "succeeded">
            <p class="seed">{move || live.prediction.get().and_then(|p| p.input.seed).map(|s| format!("Seed {s}")).unwrap_or_default()}</p>
            <button id="share" type="button" on:click=share.clone()>"Share"</button>
            <Show when=move || share_url.get().is_some()>
                <p>"Link copied: " <a id="share-url" href=move || share_url.get().unwrap_or_default()>{move || share_url.get().unwrap_or_default()}</a></p>
            </Show>
        </Show>
        <p><a href="/">"Make another"</a></p>
    }
}
