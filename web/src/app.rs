//! The app: a header, and the page for the address: `/` create, `/p/{id}` a prediction,
//! `/s/{share_id}` a share, `/mine`, `/bench` the analysis benchmark. Routes are real URLs, so
//! every page survives a reload (the host serves the app at each address of core's `PAGES`);
//! moves inside the app do not reload it (nav.rs).

use consistentid_core::api::Page;
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
        // Addresses the app has no page for show Create, as the host serves the app only at
        // the pages' addresses.
        match Page::at(&route.get()).unwrap_or(Page::Create) {
            Page::Prediction(id) => view! { <PredictionPage id=id /> }.into_any(),
            Page::Share(id) => view! { <SharePage share_id=id /> }.into_any(),
            Page::Mine => view! { <MyImages /> }.into_any(),
            Page::Bench => view! { <BenchPage /> }.into_any(),
            Page::Create => view! { <CreatePage /> }.into_any(),
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
