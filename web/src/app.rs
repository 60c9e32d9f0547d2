//! The app: a header, and the page for the address: `/` create, `/p/{id}` a prediction,
//! `/s/{share_id}` a share, `/mine`, `/bench` the analysis benchmark. Routes are real URLs, so
//! every page survives a reload; moves inside the app do not reload it (nav.rs).

use leptos::prelude::*;

use crate::nav;

use crate::pages::bench::BenchPage;
use crate::pages::create::CreatePage;
use crate::pages::mine::MyImages;
use crate::pages::prediction::PredictionPage;
use crate::pages::share::SharePage;

/// The root component.
#[component]
pub fn App() -> impl IntoView {
    let route = nav::route();
    let page = move || {
        let address = route.get();
        let path = address.split('?').next().unwrap_or_default();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        match parts.as_slice() {
            ["p", id] => view! { <PredictionPage id=id.to_string() /> }.into_any(),
            ["s", id] => view! { <SharePage share_id=id.to_string() /> }.into_any(),
            ["mine"] => view! { <MyImages /> }.into_any(),
            ["bench"] => view! { <BenchPage /> }.into_any(),
            _ => view! { <CreatePage /> }.into_any(),
        }
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
