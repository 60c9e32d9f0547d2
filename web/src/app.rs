//! The page: a face upload with its preview and a status line.

use leptos::prelude::*;

use crate::components::upload::FaceUpload;

/// The root component.
#[component]
pub fn App() -> impl IntoView {
    let status = RwSignal::new(String::from("Choose a photo of one face to begin."));
    view! {
        <main>
            <h1>"ConsistentID"</h1>
            <p class="lead">"New portraits of one person, from a single reference photo."</p>
            <FaceUpload status=status />
            <p id="status" class="status" role="status">{move || status.get()}</p>
        </main>
    }
}
