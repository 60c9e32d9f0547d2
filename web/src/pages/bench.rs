//! `/bench?runs=N`: times the in-browser analysis (BlazeFace, BiSeNet 512²) on this browser's
//! backend and shows the figures as JSON (`#bench-json`) for `scripts/bench-browser.sh`.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::analysis::client;

/// Timed runs when the address does not say (`?runs=N`, 1 to 50).
const DEFAULT_RUNS: usize = 5;

fn runs() -> usize {
    leptos::web_sys::window()
        .and_then(|w| w.location().search().ok())
        .and_then(|q| {
            q.trim_start_matches('?')
                .split('&')
                .find_map(|kv| kv.strip_prefix("runs=").and_then(|v| v.parse().ok()))
        })
        .unwrap_or(DEFAULT_RUNS)
        .clamp(1, 50)
}

#[component]
pub fn BenchPage() -> impl IntoView {
    let result = RwSignal::new(None::<Result<String, String>>);
    let n = runs();
    spawn_local(async move {
        result.set(Some(client::bench(n).await));
    });
    view! {
        <h1>"Analysis benchmark"</h1>
        <p class="lead">{format!("BlazeFace and BiSeNet (512×512) in this browser: one warm-up run, then {n} timed runs.")}</p>
        {move || match result.get() {
            None => view! { <p id="bench-status" role="status">"Running…"</p> }.into_any(),
            Some(Ok(json)) => view! { <pre id="bench-json">{json}</pre> }.into_any(),
            Some(Err(e)) => view! { <p id="error" class="error" role="alert">{e}</p> }.into_any(),
        }}
    }
}
