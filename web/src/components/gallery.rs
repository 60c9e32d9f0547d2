//! Finished images, each with a download link (the PNG carries its parameters).

use leptos::prelude::*;

/// The images at `urls`.
#[component]
pub fn Gallery(urls: Signal<Vec<String>>) -> impl IntoView {
    view! {
        <section id="results" class="gallery" aria-live="polite">
            <For
                each={move || urls.get().into_iter().enumerate().collect::<Vec<_>>()}
                key={|(i, u): &(usize, String)| (*i, u.clone())}
                children=move |(i, url)| {
                    let name = format!("consistentid-{}.png", i + 1);
                    view! {
                        <figure>
                            <img src=url.clone() alt=format!("Generated portrait {}", i + 1) />
                            <figcaption>
                                <a href=url download=name>"Download PNG"</a>
                            </figcaption>
                        </figure>
                    }
                }
            />
        </section>
    }
}
