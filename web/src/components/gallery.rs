//! Finished images, each with a download link (the PNG carries its parameters) and how much it
//! looks like the face.

use consistentid_core::api::OutputInfo;
use leptos::prelude::*;

/// What the identity match means, shown on hover and to screen readers.
const EXPLAIN: &str = "How much the face in this portrait looks like the uploaded face: the cosine similarity of two face-recognition (ArcFace) embeddings, from −1 to 1. Photos of the same person usually score above 0.4.";

/// The card's line about likeness: `identity match 0.71`, or why there is none.
pub fn likeness_text(info: &OutputInfo) -> String {
    match (info.face_similarity, &info.face_similarity_reason) {
        (Some(s), _) => format!("Identity match {s:.2}"),
        (None, Some(reason)) => format!("Identity not measured: {reason}"),
        (None, None) => "Identity not measured".to_string(),
    }
}

/// The images at `urls`, with `info[i]` (when known) under image `i`.
#[component]
pub fn Gallery(urls: Signal<Vec<String>>, info: Signal<Vec<OutputInfo>>) -> impl IntoView {
    view! {
        <section id="results" class="gallery" aria-live="polite">
            <For
                each={move || urls.get().into_iter().enumerate().collect::<Vec<_>>()}
                key={|(i, u): &(usize, String)| (*i, u.clone())}
                children=move |(i, url)| {
                    let name = format!("consistentid-{}.png", i + 1);
                    let line = move || info.get().get(i).map(likeness_text);
                    view! {
                        <figure>
                            <img src=url.clone() alt=format!("Generated portrait {}", i + 1) />
                            <figcaption>
                                <Show when=move || line().is_some()>
                                    <span class="likeness" title=EXPLAIN>{line}</span>
                                    " · "
                                </Show>
                                <a href=url download=name>"Download PNG"</a>
                            </figcaption>
                        </figure>
                    }
                }
            />
        </section>
    }
}
