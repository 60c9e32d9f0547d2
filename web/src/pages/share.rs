//! A share (`/s/{share_id}`): the images with their prompt, style, seed and parameters, and a
//! way to make your own. Never the face, unless its owner chose to share it.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;
use crate::components::gallery::Gallery;

#[component]
pub fn SharePage(share_id: String) -> impl IntoView {
    let again = format!("/?from_share={share_id}");
    let view_data = RwSignal::new(None::<consistentid_core::api::ShareView>);
    let error = RwSignal::new(None::<String>);
    spawn_local(async move {
        match api::shared(&share_id).await {
            Ok(v) => view_data.set(Some(v)),
            Err(e) => error.set(Some(e)),
        }
    });
    let field = move |f: fn(&consistentid_core::api::PredictionInput) -> Option<String>| {
        move || {
            view_data
                .get()
                .and_then(|v| f(&v.input))
                .unwrap_or_default()
        }
    };
    view! {
        <h1>"A ConsistentID portrait"</h1>
        <Show when=move || error.get().is_some()>
            <p id="error" class="error" role="alert">{move || error.get().unwrap_or_default()}</p>
        </Show>
        <p id="share-prompt" class="prompt">{field(|i| i.prompt.clone())}</p>
        <Gallery
            urls=Signal::derive(move || view_data.get().map(|v| v.output).unwrap_or_default())
            info=Signal::derive(move || view_data.get().map(|v| v.output_metadata).unwrap_or_default())
        />
        <dl id="share-params" class="params">
            <dt>"Style"</dt><dd>{field(|i| Some(i.style.clone().unwrap_or_else(|| "Official".into())))}</dd>
            <dt>"Seed"</dt><dd id="share-seed">{field(|i| i.seed.map(|s| s.to_string()))}</dd>
            <dt>"Steps"</dt><dd>{field(|i| i.num_inference_steps.map(|s| s.to_string()))}</dd>
            <dt>"Guidance"</dt><dd>{field(|i| i.guidance_scale.map(|s| s.to_string()))}</dd>
            <dt>"Identity starts after step"</dt><dd>{field(|i| i.start_merge_step.map(|s| s.to_string()))}</dd>
            <dt>"Size"</dt><dd>{field(|i| Some(format!("{}×{}", i.width.unwrap_or(512), i.height.unwrap_or(768))))}</dd>
            <dt>"Sampler"</dt><dd>{field(|i| i.scheduler.map(|s| s.name().to_string()))}</dd>
            <dt>"Negative prompt"</dt><dd>{field(|i| Some(i.negative_prompt.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "none (the style's own)".into())))}</dd>
        </dl>
        <p><a id="make-your-own" class="button" href=again>"Make your own with these settings"</a></p>
    }
}
