//! Create: upload a face, write a prompt, choose settings, generate. The new prediction's
//! page (`/p/{id}`) shows its progress. What the host would warn about is shown beside the
//! form before Generate; `/?from={id}` and `/?from_share={share_id}` start from an earlier
//! request's settings.

use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::components::prompt_form::{Controls, PromptForm};
use crate::components::upload::{Face, FaceUpload};
use crate::{api, nav, remembered};

/// A query parameter of the page's address.
fn query(name: &str) -> Option<String> {
    let search = leptos::web_sys::window()?.location().search().ok()?;
    leptos::web_sys::UrlSearchParams::new_with_str(&search)
        .ok()?
        .get(name)
}

#[component]
pub fn CreatePage() -> impl IntoView {
    let face = RwSignal::new(None::<Face>);
    let face_box = RwSignal::new(None::<[f32; 4]>);
    let faces_found = RwSignal::new(0usize);
    let controls = Controls::new();
    if let Some(id) = query("from") {
        spawn_local(async move {
            if let Ok(p) = api::prediction(&id).await {
                controls.prefill(&p.input);
            }
        });
    } else if let Some(share) = query("from_share") {
        spawn_local(async move {
            if let Ok(v) = api::shared(&share).await {
                controls.prefill(&v.input);
            }
        });
    }
    let warnings = move || {
        let mut w = controls.warnings();
        let n = faces_found.get();
        if n > 1 {
            w.push(format!(
                "{n} faces were found: only the one chosen above gives the identity"
            ));
        }
        w
    };
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let ready =
        move || face.get().is_some() && !controls.prompt.get().trim().is_empty() && !busy.get();
    let generate = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(face) = face.get_untracked() else {
            return;
        };
        let input = match controls.input(
            face.url.clone(),
            face.parsing.clone(),
            face_box.get_untracked(),
        ) {
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
                Ok(p) => {
                    remembered::remember(
                        &p.id,
                        Rc::new(remembered::Face {
                            photo: face.photo,
                            name: face.name,
                            parsing: face.parsing,
                        }),
                    );
                    nav::go(&format!("/p/{}", p.id));
                }
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
            <FaceUpload face=face face_box=face_box faces_found=faces_found />
            <PromptForm controls=controls />
            <Show when=move || !warnings().is_empty()>
                <ul id="form-warnings" class="warnings" aria-label="Before you generate">
                    {move || warnings().into_iter().map(|w| view! { <li>{w}</li> }).collect_view()}
                </ul>
            </Show>
            <Show when=move || error.get().is_some()>
                <p id="error" class="error" role="alert">{move || error.get().unwrap_or_default()}</p>
            </Show>
            <button id="generate" type="submit" disabled=move || !ready()>
                {move || if busy.get() { "Sending…" } else { "Generate" }}
            </button>
        </form>
    }
}
