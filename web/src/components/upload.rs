//! Face upload: file picker, drag and drop, or paste; type and size checked with a clear
//! message; the picture previewed; the file sent to the host (`POST /v1/files`).

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos::web_sys;
use wasm_bindgen::JsCast;

use crate::api;

/// The largest photo accepted (the host's default upload limit).
pub const MAX_BYTES: f64 = 10.0 * 1024.0 * 1024.0;

/// Lets the user pick a face photo and shows its status; sets `face_url` once the host has
/// it.
#[component]
pub fn FaceUpload(face_url: RwSignal<Option<String>>) -> impl IntoView {
    let status = RwSignal::new(String::from("Choose a photo of one face to begin."));
    // " (W×H px)" once the browser has decoded the picture.
    let dims = RwSignal::new(String::new());
    let preview = RwSignal::new(None::<String>);
    let file_name = RwSignal::new(String::new());

    let take = move |file: web_sys::File| {
        if !["image/png", "image/jpeg", "image/webp"].contains(&file.type_().as_str()) {
            status.set(format!("{} is not a PNG, JPEG or WebP image.", file.name()));
            return;
        }
        if file.size() > MAX_BYTES {
            status.set(format!(
                "{} is {:.1} MB; photos up to 10 MB are accepted.",
                file.name(),
                file.size() / 1024.0 / 1024.0
            ));
            return;
        }
        // Release the previous picture's object URL before replacing it.
        if let Some(old) = preview.get_untracked() {
            let _ = web_sys::Url::revoke_object_url(&old);
        }
        if let Ok(url) = web_sys::Url::create_object_url_with_blob(&file) {
            preview.set(Some(url));
        }
        file_name.set(file.name());
        dims.set(String::new());
        face_url.set(None);
        status.set(format!("Uploading {}…", file.name()));
        spawn_local(async move {
            match api::upload(&file).await {
                Ok(url) => {
                    face_url.set(Some(url));
                    status.set(format!("{} is ready", file.name()));
                }
                Err(e) => status.set(format!("Upload failed: {e}")),
            }
        });
    };

    let on_change = move |ev: leptos::ev::Event| {
        if let Some(file) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
            .and_then(|input| input.files())
            .and_then(|files| files.get(0))
        {
            take(file);
        }
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        if let Some(file) = ev
            .data_transfer()
            .and_then(|d| d.files())
            .and_then(|files| files.get(0))
        {
            take(file);
        }
    };
    let on_paste = move |ev: leptos::ev::ClipboardEvent| {
        if let Some(file) = ev
            .clipboard_data()
            .and_then(|d| d.files())
            .and_then(|files| files.get(0))
        {
            take(file);
        }
    };
    let on_load = move |ev: leptos::ev::Event| {
        if let Some(img) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlImageElement>().ok())
        {
            dims.set(format!(
                " ({}×{} px)",
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
        <section
            class="upload"
            on:dragover=|ev: leptos::ev::DragEvent| ev.prevent_default()
            on:drop=on_drop
            on:paste=on_paste
        >
            <label for="face-input">"Reference face (one person, PNG, JPEG or WebP up to 10 MB)"</label>
            <input id="face-input" type="file" accept="image/png,image/jpeg,image/webp" on:change=on_change />
            <p class="hint">"…or drop a photo here, or paste one."</p>
            <p id="status" class="status" role="status">
                {move || format!("{}{}", status.get(), dims.get())}
            </p>
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
