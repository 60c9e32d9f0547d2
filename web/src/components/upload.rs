//! Face-image upload: a file input, the picture it holds, and status updates.

use leptos::prelude::*;
use leptos::web_sys;
use wasm_bindgen::JsCast;

/// Lets the user pick an image file and previews it; reports progress through `status`.
#[component]
pub fn FaceUpload(status: RwSignal<String>) -> impl IntoView {
    let preview = RwSignal::new(None::<String>);
    let file_name = RwSignal::new(String::new());

    let on_change = move |ev: leptos::ev::Event| {
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        let Some(file) = input.files().and_then(|files| files.get(0)) else {
            status.set("No file chosen.".into());
            return;
        };
        if !file.type_().starts_with("image/") {
            status.set(format!("{} is not an image.", file.name()));
            return;
        }
        // Release the previous picture's object URL before replacing it.
        if let Some(old) = preview.get_untracked() {
            let _ = web_sys::Url::revoke_object_url(&old);
        }
        match web_sys::Url::create_object_url_with_blob(&file) {
            Ok(url) => {
                file_name.set(file.name());
                status.set(format!("Loading {}…", file.name()));
                preview.set(Some(url));
            }
            Err(_) => status.set(format!("Cannot read {}.", file.name())),
        }
    };

    let on_load = move |ev: leptos::ev::Event| {
        if let Some(img) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlImageElement>().ok())
        {
            status.set(format!(
                "Loaded {} ({}×{} px).",
                file_name.get_untracked(),
                img.natural_width(),
                img.natural_height()
            ));
        }
    };
    let on_error = move |_| {
        status.set(format!(
            "{} could not be decoded as an image.",
            file_name.get_untracked()
        ))
    };

    view! {
        <section class="upload">
            <label for="face-input">"Reference face"</label>
            <input id="face-input" type="file" accept="image/*" on:change=on_change />
            <Show when=move || preview.get().is_some()>
                <img
                    id="face-preview"
                    alt="The uploaded face"
                    src=move || preview.get().unwrap_or_default()
                    on:load=on_load
                    on:error=on_error
                />
            </Show>
        </section>
    }
}
