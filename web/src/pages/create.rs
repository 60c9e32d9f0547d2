//! Create: upload a face, write a prompt, choose settings, generate. The new prediction's
//! page (`/p/{id}`) shows its progress. What the host would warn about is shown beside the
//! form before Generate; `/?from={id}` and `/?from_share={share_id}` start from an earlier
//! request's settings.

use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::components::prompt_form::{Controls, PromptForm};
use crate::components::target::{Mask, Target, TargetPhoto};
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
    // "Put me into a photo": the photo and the mask over it.
    let into = RwSignal::new(false);
    let target = RwSignal::new(None::<Target>);
    let mask = RwSignal::new(Mask::default());
    let ready = move || {
        face.get().is_some()
            && !controls.prompt.get().trim().is_empty()
            && !busy.get()
            && (!into.get() || (target.get().is_some() && mask.with(|m| m.data.contains(&1))))
    };
    let generate = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(face) = face.get_untracked() else {
            return;
        };
        let mut input = match controls.input(
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
        let mut sent_target = None;
        if into.get_untracked() {
            let Some(t) = target.get_untracked() else {
                return;
            };
            let mask_uri = match mask.with_untracked(Mask::data_uri) {
                Ok(m) => m,
                Err(e) => {
                    error.set(Some(e));
                    return;
                }
            };
            // The face is repainted on a square crop: one side for both.
            let side = input.width.unwrap_or(512);
            input.width = Some(side);
            input.height = Some(side);
            input.image = Some(t.url.clone());
            input.mask = Some(mask_uri.clone());
            input.into = Some(Default::default());
            sent_target = Some(remembered::Target {
                photo: t.photo,
                mask: mask_uri,
            });
        }
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
                            target: sent_target,
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
            <fieldset id="mode" class="mode">
                <legend>"What to make"</legend>
                <label><input id="mode-portraits" type="radio" name="mode" checked=move || !into.get() on:change=move |_| into.set(false) />" New portraits"</label>
                <label><input id="mode-into" type="radio" name="mode" checked=move || into.get() on:change=move |_| into.set(true) />" Put me into a photo"</label>
            </fieldset>
            <FaceUpload face=face face_box=face_box faces_found=faces_found />
            <Show when=move || into.get()>
                <TargetPhoto target=target mask=mask />
            </Show>
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
