//! Create: upload a face, write a prompt, choose settings, generate. The new prediction's
//! page (`/p/{id}`) shows its progress.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;
use crate::components::prompt_form::{Controls, PromptForm};
use crate::components::upload::{Face, FaceUpload};

#[component]
pub fn CreatePage() -> impl IntoView {
    let face = RwSignal::new(None::<Face>);
    let face_box = RwSignal::new(None::<[f32; 4]>);
    let controls = Controls::new();
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let ready =
        move || face.get().is_some() && !controls.prompt.get().trim().is_empty() && !busy.get();
    let generate = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(face) = face.get_untracked() else {
            return;
        };
        let input = match controls.input(face.url, face.parsing, face_box.get_untracked()) {
            Ok(i) => i,
            Err(e) => {
                error.set(Some(e));
                return;
            }
        };
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            match api::create(&input).await {
                Ok(p) => api::go(&format!("/p/{}", p.id)),
                Err(e) => {
                    error.set(Some(e));
                    busy.set(false);
                }
            }
        });
    };
    view! {
        <h1>"New portraits of one person"</h1>
        <p class="lead">"Upload one face photo, describe the picture, and get new portraits of that person."</p>
        <form on:submit=generate>
            <FaceUpload face=face face_box=face_box />
            <PromptForm controls=controls />
            <Show when=move || error.get().is_some()>
                <p id="error" class="error" role="alert">{move || error.get().unwrap_or_default()}</p>
            </Show>
            <button id="generate" type="submit" disabled=move || !ready()>
                {move || if busy.get() { "Sending…" } else { "Generate" }}
            </button>
        </form>
    }
}
