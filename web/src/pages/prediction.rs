//! A prediction's page (`/p/{id}`): status and queue position, a progress bar with ETA, live
//! previews, the host's warnings, cancel, the images, share, and the same request again with a
//! new seed or an edited prompt (while this tab still holds the face). Reload-safe: it reads the
//! prediction and reconnects to its event stream; an unknown id says so, and a lost stream
//! says it is reconnecting.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use consistentid_core::api::{
    Candidate, CandidatesEvent, OutputEvent, OutputInfo, Prediction, Status,
};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;

use crate::components::gallery::Gallery;
use crate::{api, nav, remembered};

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
    /// Per output: its seed and likeness to the face.
    info: RwSignal<Vec<OutputInfo>>,
    /// Best-of-N: every candidate's likeness.
    candidates: RwSignal<Vec<Candidate>>,
    error: RwSignal<Option<String>>,
    prediction: RwSignal<Option<Prediction>>,
    /// The first denoising step this page saw live: (time in ms, image, step), for the ETA.
    seen: RwSignal<Option<(f64, u64, u64)>>,
    /// When the last progress event arrived (ms): a reconnect replays the steps already done
    /// in a burst, which says nothing about the pace.
    last_progress: RwSignal<f64>,
    /// What the host warned about (identity not used, words cut, …).
    warnings: RwSignal<Vec<String>>,
    /// The event stream is lost: `Some(true)` for good, `Some(false)` while reconnecting.
    lost: RwSignal<Option<bool>>,
}

/// Progress events closer together than this are a replay, not steps being done (no job that
/// needs an ETA does 50 steps a second).
const REPLAY_GAP_MS: f64 = 20.0;

fn now() -> f64 {
    js_sys::Date::now()
}

impl Live {
    /// A prediction's images, their likeness and the candidates (a read or `completed`).
    fn show_outputs(&self, p: &Prediction) {
        self.outputs.set(p.output.clone().unwrap_or_default());
        self.info.set(p.output_metadata.clone().unwrap_or_default());
        self.candidates
            .set(p.candidates.clone().unwrap_or_default());
    }

    fn warn(&self, text: &str) {
        let text = text.trim();
        if !text.is_empty()
            && !self
                .warnings
                .with_untracked(|w| w.iter().any(|t| t == text))
        {
            self.warnings.update(|w| w.push(text.to_string()));
        }
    }

    /// The warnings in a prediction's logs (`warning: …` lines).
    fn warnings_from_logs(&self, logs: &str) {
        for line in logs.lines() {
            if let Some(w) = line.strip_prefix("warning: ") {
                self.warn(w);
            }
        }
    }

    fn on_event(&self, name: &str, data: Value) {
        if name != api::STREAM_LOST {
            self.lost.set(None);
        }
        match name {
            api::STREAM_LOST => self
                .lost
                .set(Some(data["closed"].as_bool().unwrap_or(false))),
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
                let image = data["image"].as_u64().unwrap_or(0);
                let t = now();
                let replayed = t - self.last_progress.get_untracked() < REPLAY_GAP_MS;
                self.last_progress.set(t);
                if phase == "denoise"
                    && step > 0
                    && (replayed || self.seen.get_untracked().is_none())
                {
                    self.seen.set(Some((t, image, step)));
                }
                self.status.set("processing".into());
                self.queue.set(None);
                self.image.set(image);
                self.phase.set(phase);
                self.step.set((step, total));
            }
            "preview" => self
                .preview
                .set(data["data_uri"].as_str().map(str::to_string)),
            "output" => {
                if let Ok(event) = serde_json::from_value::<OutputEvent>(data) {
                    if let Some(info) = event.info() {
                        self.info.update(|i| i.push(info));
                    }
                    self.outputs.update(|o| o.push(event.url));
                }
            }
            "candidates" => {
                if let Ok(event) = serde_json::from_value::<CandidatesEvent>(data) {
                    self.candidates.set(event.candidates);
                }
            }
            "log" => {
                if let Some(w) = data["text"]
                    .as_str()
                    .and_then(|t| t.strip_prefix("warning: "))
                {
                    self.warn(w);
                }
            }
            "error" => {
                if let Some(detail) = data["detail"].as_str() {
                    self.error.set(Some(detail.to_string()));
                }
            }
            "completed" => {
                if let Ok(p) = serde_json::from_value::<Prediction>(data) {
                    self.warnings_from_logs(&p.logs);
                    self.status.set(p.status.as_str().to_string());
                    self.show_outputs(&p);
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

/// Time per step and the time left for every image, from the steps this page has watched
/// (not from when it opened: after a reload the job is already far along).
fn eta(seen: Option<(f64, u64, u64)>, image: u64, step: u64, total: u64, images: u64) -> String {
    let Some((t0, image0, step0)) = seen else {
        return String::new();
    };
    let done = (image * total + step).saturating_sub(image0 * total + step0);
    if done < 2 || total == 0 {
        return String::new();
    }
    let per = (now() - t0) / 1000.0 / done as f64;
    let left_steps = (images * total).saturating_sub(image * total + step);
    let left = per * left_steps as f64;
    format!("{per:.2} s/step, about {left:.0} s left")
}

/// How to get this prediction, and make another like it, from a terminal or Python.
fn api_snippet(p: &Prediction) -> String {
    let mut input = p.input.clone();
    input.face_image = Some("<your face photo's URL>".into());
    input.face_parsing = None;
    input.id_embedding = None;
    input.seed = None;
    // As a Python dict (the only JSON literals an input has besides strings and numbers).
    let input = serde_json::to_string(&input)
        .unwrap_or_default()
        .replace(":true", ":True")
        .replace(":false", ":False");
    let base = p.urls.get.split("/v1/").next().unwrap_or_default();
    format!(
        "# this prediction (your token: localStorage \"consistentid-token\")\ncurl -s -H \"Authorization: Bearer $TOKEN\" {get}\n\n# another like it\nimport replicate\nclient = replicate.Client(api_token=TOKEN, base_url=\"{base}\")\noutput = client.run(\"consistentid/consistentid\", input={input})",
        get = p.urls.get,
    )
}

/// Sends `p`'s request again with the face this tab remembers: with a new seed, or with
/// another prompt (`prompt`, the same seed); the new prediction's id.
async fn run_again(
    p: &Prediction,
    face: Rc<remembered::Face>,
    prompt: Option<String>,
) -> Result<String, String> {
    let url = api::upload(&face.photo, &face.name).await?;
    let mut input = p.input.clone();
    input.face_image = Some(url);
    input.face_parsing = face.parsing.clone();
    if let Some(t) = &face.target {
        // The host deleted its copies of the photo and the mask with the job.
        input.image = Some(api::upload(&t.photo, "target.png").await?);
        input.mask = Some(t.mask.clone());
    }
    match prompt {
        Some(text) => input.prompt = Some(text),
        None => input.seed = Some((js_sys::Math::random() * 1e12).floor() as u64),
    }
    let next = api::create(&input).await?;
    remembered::remember(&next.id, face);
    Ok(next.id)
}

/// The photo before and the result after, one over the other; the slider uncovers the result.
#[component]
fn Compare(before: String, after: String) -> impl IntoView {
    let at = RwSignal::new(50.0f64);
    view! {
        <figure id="compare" class="compare" aria-label="Before and after">
            <img id="compare-after" alt="After" src=after />
            <img
                id="compare-before"
                alt="Before"
                src=before
                style=move || format!("clip-path: inset(0 {}% 0 0)", 100.0 - at.get())
            />
            <input
                id="compare-slider"
                type="range"
                min="0"
                max="100"
                aria-label="Before / after"
                prop:value=move || at.get().to_string()
                on:input=move |ev| {
                    if let Ok(v) = event_target_value(&ev).parse() {
                        at.set(v);
                    }
                }
            />
        </figure>
    }
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
        info: RwSignal::new(Vec::new()),
        candidates: RwSignal::new(Vec::new()),
        error: RwSignal::new(None),
        prediction: RwSignal::new(None),
        seen: RwSignal::new(None),
        last_progress: RwSignal::new(0.0),
        warnings: RwSignal::new(Vec::new()),
        lost: RwSignal::new(None),
    };
    let missing = RwSignal::new(false);
    // The share link, and whether it reached the clipboard.
    let share_url = RwSignal::new(None::<(String, bool)>);
    // Whether this page is still the one shown (the app moves between pages without a reload).
    let shown = Arc::new(AtomicBool::new(true));
    let gone = shown.clone();
    on_cleanup(move || gone.store(false, Ordering::Relaxed));
    let id_for_load = id.clone();
    spawn_local(async move {
        match api::find_prediction(&id_for_load).await {
            Ok(Some(p)) => {
                live.status.set(p.status.as_str().to_string());
                live.queue.set(p.queue_position.map(|q| q as u64));
                live.show_outputs(&p);
                live.warnings_from_logs(&p.logs);
                live.prediction.set(Some(p));
            }
            Ok(None) => {
                missing.set(true);
                return;
            }
            Err(e) => live.error.set(Some(e)),
        }
        let open = shown.clone();
        api::events(
            &id_for_load,
            move || open.load(Ordering::Relaxed),
            move |name, data| live.on_event(name, data),
        );
    });
    let terminal =
        move || missing.get() || Status::parse(&live.status.get()).is_some_and(|s| s.is_terminal());
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
                    let copied = api::copy(&s.url).await;
                    share_url.set(Some((s.url, copied)));
                }
                Err(e) => live.error.set(Some(e)),
            }
        });
    };
    let percent = move || {
        let (s, t) = live.step.get();
        (s * 100).checked_div(t).unwrap_or(0)
    };
    // Best-of-N makes every candidate: progress counts them all.
    let total_images = move || {
        live.prediction
            .get()
            .map(|p| {
                let n = p.input.num_outputs.unwrap_or(1);
                p.input.best_of.unwrap_or(0).max(n)
            })
            .unwrap_or(1)
    };
    let select_all = |ev: leptos::ev::FocusEvent| {
        if let Some(input) = ev.target().and_then(|t| {
            wasm_bindgen::JsCast::dyn_into::<leptos::web_sys::HtmlInputElement>(t).ok()
        }) {
            input.select();
        }
    };
    let again = format!("/?from={id}");
    // Before/after for a "put me into a photo" request made in this tab.
    let before = remembered::recall(&id).and_then(|f| {
        f.target
            .as_ref()
            .and_then(|t| leptos::web_sys::Url::create_object_url_with_blob(&t.photo).ok())
    });
    // The face stays only in this tab's memory: after a reload the form is the way.
    let can_rerun = remembered::recall(&id).is_some();
    let rerunning = RwSignal::new(false);
    let id_rerun = id.clone();
    let new_seed = move |_| {
        let (Some(p), Some(face)) = (
            live.prediction.get_untracked(),
            remembered::recall(&id_rerun),
        ) else {
            return;
        };
        rerunning.set(true);
        spawn_local(async move {
            match run_again(&p, face, None).await {
                Ok(next) => nav::go(&format!("/p/{next}")),
                Err(e) => {
                    live.error.set(Some(e));
                    rerunning.set(false);
                }
            }
        });
    };
    // The prompt, editable beside the result (filled in once the prediction is read).
    let edited = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(text) = live.prediction.get().and_then(|p| p.input.prompt)
            && edited.get_untracked().is_empty()
        {
            edited.set(text);
        }
    });
    let id_edit = id.clone();
    let edit_again = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (Some(p), Some(face)) = (
            live.prediction.get_untracked(),
            remembered::recall(&id_edit),
        ) else {
            return;
        };
        let prompt = edited.get_untracked();
        rerunning.set(true);
        spawn_local(async move {
            match run_again(&p, face, Some(prompt)).await {
                Ok(next) => nav::go(&format!("/p/{next}")),
                Err(e) => {
                    live.error.set(Some(e));
                    rerunning.set(false);
                }
            }
        });
    };
    view! {
        <h1>"Your portrait"</h1>
        <Show when=move || missing.get()>
            <p id="error" class="error" role="alert">
                "This prediction does not exist: the link may be mistyped, or it was deleted."
            </p>
        </Show>
        <Show when=move || !missing.get()>
        <p class="prompt">{move || live.prediction.get().and_then(|p| p.input.prompt).unwrap_or_default()}</p>
        <p id="pstatus" class="status" role="status">
            {move || match (live.status.get().as_str(), live.queue.get()) {
                ("starting", Some(0)) => "Next in line: it starts when the running job ends.".to_string(),
                ("starting", Some(q)) => format!("Waiting: {q} job(s) ahead of yours, after the running one."),
                ("starting", None) => "Waiting for the host…".to_string(),
                ("processing", _) => format!(
                    "Image {} of {}: {} {}",
                    live.image.get() + 1,
                    total_images(),
                    live.phase.get(),
                    eta(
                        live.seen.get(),
                        live.image.get(),
                        live.step.get().0,
                        live.step.get().1,
                        total_images() as u64
                    )
                ),
                ("succeeded", _) => "Done.".to_string(),
                ("canceled", _) => "Canceled.".to_string(),
                ("failed", _) => "Failed.".to_string(),
                (other, _) => other.to_string(),
            }}
        </p>
        <Show when=move || live.lost.get().is_some()>
            <p id="stream-lost" class="note" role="status">
                {move || if live.lost.get() == Some(true) {
                    "The connection to the host was lost. Reload the page to see how it went."
                } else {
                    "The connection to the host was lost; reconnecting…"
                }}
            </p>
        </Show>
        <Show when=move || !live.warnings.get().is_empty()>
            <ul id="warnings" class="warnings" aria-label="Warnings">
                {move || live.warnings.get().into_iter().map(|w| view! { <li>{w}</li> }).collect_view()}
            </ul>
        </Show>
        </Show>
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
        <Gallery urls=Signal::derive(move || live.outputs.get()) info=Signal::derive(move || live.info.get()) />
        {move || {
            let after = live.outputs.get().into_iter().next()?;
            before.clone().map(|before| view! { <Compare before=before after=after /> })
        }}
        <Show when=move || !live.candidates.get().is_empty()>
            <details id="candidates">
                <summary>{move || format!("Kept the most alike of {} candidates", live.candidates.get().len())}</summary>
                <ul>
                    {move || live.candidates.get().into_iter().map(|c| {
                        let score = c.face_similarity.map(|s| format!("{s:.2}")).unwrap_or_else(|| "no face".into());
                        let kept = if c.kept { " (kept)" } else { "" };
                        view! { <li>{format!("Seed {}: {score}{kept}", c.seed)}</li> }
                    }).collect_view()}
                </ul>
            </details>
        </Show>
        <Show when=move || live.status.get() == "succeeded">
            <p class="seed">{move || live.prediction.get().and_then(|p| p.input.seed).map(|s| format!("Seed {s}")).unwrap_or_default()}</p>
            <button id="share" type="button" on:click=share.clone()>"Share"</button>
            {move || share_url.get().map(|(url, copied)| if copied {
                view! { <p id="share-note">"Link copied: " <a id="share-url" href=url.clone()>{url.clone()}</a></p> }.into_any()
            } else {
                view! {
                    <p id="share-note">
                        <label for="share-url-text">"Copy this link (the browser did not allow copying it): "</label>
                        <input id="share-url-text" type="text" readonly=true value=url.clone() on:focus=select_all autofocus=true />
                        " " <a id="share-url" href=url.clone()>"open"</a>
                    </p>
                }.into_any()
            })}
        </Show>
        <Show when=move || can_rerun && terminal() && live.prediction.get().is_some()>
            <button id="new-seed" type="button" disabled=move || rerunning.get() on:click=new_seed.clone()>
                {move || if rerunning.get() { "Sending…" } else { "Again with a new seed" }}
            </button>
        </Show>
        <Show when=move || can_rerun && terminal() && live.prediction.get().is_some()>
            <form id="edit-again" on:submit=edit_again.clone()>
                <label for="again-prompt">"Change the prompt and run again (same face, seed and settings)"</label>
                <textarea
                    id="again-prompt"
                    rows="2"
                    prop:value=move || edited.get()
                    on:input=move |ev| edited.set(event_target_value(&ev))
                ></textarea>
                <button id="again-run" type="submit" disabled=move || rerunning.get() || edited.get().trim().is_empty()>
                    "Run with this prompt"
                </button>
            </form>
        </Show>
        <p><a id="again" href=again>"Make another with these settings"</a></p>
        <Show when=move || live.prediction.get().is_some()>
            <details id="api-snippet">
                <summary>"Use the API"</summary>
                <pre>{move || live.prediction.get().map(|p| api_snippet(&p)).unwrap_or_default()}</pre>
            </details>
        </Show>
    }
}
