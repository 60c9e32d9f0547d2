//! The app: a header, and the page for the address (routes are real URLs, so every page
//! survives a reload): `/` create, `/p/{id}` a prediction, `/s/{share_id}` a share, `/mine`,
//! `/bench` the analysis benchmark.

use leptos::prelude::*;

use crate::pages::bench::BenchPage;
use crate::pages::create::CreatePage;
use crate::pages::mine::MyImages;
use crate::pages::prediction::PredictionPage;
use crate::pages::share::SharePage;

/// The root component.
#[component]
pub fn App() -> impl IntoView {
    let path = leptos::web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .unwrap_or_default();
    let parts: Vec<String> = path
        .split('/')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    let page = match parts.as_slice() {
        [p, id] if p == "p" => view! { <PredictionPage id=id.clone() /> }.into_any(),
        [s, id] if s == "s" => view! { <SharePage share_id=id.clone() /> }.into_any(),
        [m] if m == "mine" => view! { <MyImages /> }.into_any(),
        [b] if b == "bench" => view! { <BenchPage /> }.into_any(),
        _ => view! { <CreatePage /> }.into_any(),
    };
    view! {
        <header class="bar">
            <a class="brand" href="/">"ConsistentID"</a>
            <nav aria-label="Pages">
                <a href="/">"Create"</a>
                <a href="/mine">"My images"</a>
            </nav>
        </header>
        <main>{page}</main>
    }
}
