//! Face upload: file picker, drag and drop, or paste; type and size checked with a clear
//! message; the picture previewed and analysed in the browser (faces, facial regions); then
//! sent to the host (`POST /v1/files`): the decoded pixels as a PNG with the browser's label
//! map, or, when the browser cannot analyse, the file as it is (the host analyses it).

use std::sync::Arc;

use base64::Engine;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos::web_sys;
use wasm_bindgen::JsCast;

use crate::analysis::{self, Analysis, client};
use crate::api;
use crate::components::analysis_panel::AnalysisPanel;

/// The largest photo accepted. The browser sends the decoded pixels (at most 1536 px a side)
/// as a PNG, not the file, so the host's 10 MB upload limit applies only when the browser
/// cannot analyse the photo and sends it as it is.
pub const MAX_BYTES: f64 = 50.0 * 1024.0 * 1024.0;

/// The image format of a file by its first bytes (not its name or type).
fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if head.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// The first bytes of a file.
async fn head(file: &web_sys::File) -> Vec<u8> {
    let Ok(slice) = file.slice_with_i32_and_i32(0, 16) else {
        return Vec::new();
    };
    match wasm_bindgen_futures::JsFuture::from(slice.array_buffer()).await {
        Ok(buffer) => js_sys::Uint8Array::new(&buffer).to_vec(),
        Err(_) => Vec::new(),
    }
}

/// The face as the request names it.
#[derive(Clone, Debug)]
pub struct Face {
    /// The uploaded photo's URL on the host.
    pub url: String,
    /// The browser's label map (PNG data URI), when it analysed the photo.
    pub parsing: Option<String>,
    /// What was uploaded, and under which name (to send it again for another run).
    pub photo: web_sys::Blob,
    pub name: String,
}

/// The bundled sample face (`web/assets/sample-face.jpg`: NASA's public-domain portrait of the
/// astronaut Eileen Collins, as scikit-image ships it, at 320 px).
const SAMPLE_FACE: &str = "/sample-face.jpg";

/// The sample face as a file, to go through the same path as a chosen photo.
async fn sample_face() -> Result<web_sys::File, String> {
    use wasm_bindgen_futures::JsFuture;
    let window = web_sys::window().ok_or("no window")?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str(SAMPLE_FACE))
        .await
        .map_err(analysis::js_error)?
        .dyn_into()
        .map_err(analysis::js_error)?;
    if !response.ok() {
        return Err(format!(
            "The sample face could not be loaded (HTTP {}).",
            response.status()
        ));
    }
    let photo = JsFuture::from(response.blob().map_err(analysis::js_error)?)
        .await
        .map_err(analysis::js_error)?;
    web_sys::File::new_with_blob_sequence(&js_sys::Array::of1(&photo), "sample-face.jpg")
        .map_err(analysis::js_error)
}

/// The file a file input's change event chose.
pub fn chosen_file(ev: &leptos::ev::Event) -> Option<web_sys::File> {
    ev.target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        .and_then(|input| input.files())
        .and_then(|files| files.get(0))
}

/// PNG bytes as a blob to upload.
pub fn blob(bytes: &[u8]) -> Result<web_sys::Blob, String> {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("image/png");
    web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options)
        .map_err(analysis::js_error)
}

/// Lets the user pick a face photo and shows its status; sets `face` once the host has it, and
/// `face_box` to the chosen face's box when the browser found several (the host then uses the
/// face it detects there; with one face or none it applies the official rule itself).
#[component]
pub fn FaceUpload(
    face: RwSignal<Option<Face>>,
    face_box: RwSignal<Option<[f32; 4]>>,
    /// Faces the browser found in the current photo.
    faces_found: RwSignal<usize>,
) -> impl IntoView {
    let status = RwSignal::new(String::from("Choose a photo of one face to begin."));
    // " (W×H px)" once the browser has decoded the picture.
    let dims = RwSignal::new(String::new());
    let preview = RwSignal::new(None::<String>);
    let file_name = RwSignal::new(String::new());
    let found = RwSignal::new(None::<(Arc<Analysis>, String)>);
    let chosen = RwSignal::new(0usize);
    Effect::new(move |_| {
        let i = chosen.get();
        face_box.set(found.with(|f| {
            f.as_ref()
                .filter(|(a, _)| a.faces.len() > 1)
                .and_then(|(a, _)| a.faces.get(i))
                .map(|d| d.bbox)
        }));
    });
    Effect::new(move |_| {
        faces_found.set(found.with(|f| f.as_ref().map_or(0, |(a, _)| a.faces.len())));
    });
    // Each new photo supersedes the work still running for an earlier one.
    let generation = StoredValue::new(0u64);
    client::preload();
    // Forgets the current photo (a new one is coming, or the one chosen was refused): nothing
    // can be generated from an earlier photo.
    let reset = move || {
        if let Some(old) = preview.get_untracked() {
            let _ = web_sys::Url::revoke_object_url(&old);
        }
        preview.set(None);
        dims.set(String::new());
        face.set(None);
        found.set(None);
        chosen.set(0);
        generation.update_value(|g| *g += 1);
    };

    let take = move |file: web_sys::File| {
        reset();
        status.set(format!("Reading {}…", file.name()));
        let mine = generation.get_value();
        let current = move || generation.get_value() == mine;
        spawn_local(async move {
            let name = file.name();
            if sniff(&head(&file).await).is_none() {
                if current() {
                    status.set(format!(
                        "{name} is not an image (only PNG, JPEG and WebP photos can be used)."
                    ));
                }
                return;
            }
            if file.size() > MAX_BYTES {
                status.set(format!(
                    "{name} is {:.1} MB; photos up to 50 MB are accepted.",
                    file.size() / 1024.0 / 1024.0
                ));
                return;
            }
            if !current() {
                return;
            }
            if let Ok(url) = web_sys::Url::create_object_url_with_blob(&file) {
                preview.set(Some(url));
            }
            file_name.set(name.clone());
            let result = client::analyse(&file, move |s| {
                if current() {
                    status.set(s.to_string());
                }
            })
            .await;
            if !current() {
                return;
            }
            let (upload, parsing, note) = match result {
                Ok(Some(a)) => {
                    let note = if a.faces.is_empty() {
                        ": no face was found in the browser; the host will look again when you generate"
                    } else {
                        ""
                    };
                    let sent = blob(&a.photo_png);
                    let parsing_uri = format!(
                        "data:image/png;base64,{}",
                        base64::engine::general_purpose::STANDARD.encode(&a.labels_png)
                    );
                    found.set(Some((Arc::new(a), parsing_uri.clone())));
                    match sent {
                        Ok(b) => (b, Some(parsing_uri), note.to_string()),
                        Err(e) => {
                            status.set(format!("Upload failed: {e}"));
                            return;
                        }
                    }
                }
                Ok(None) => (file.clone().into(), None, String::new()),
                Err(e) => (
                    file.clone().into(),
                    None,
                    format!(" (the browser could not analyse it: {e}; the host will)"),
                ),
            };
            status.set(format!("Uploading {name}…"));
            let sent_name = if parsing.is_some() {
                "face.png".to_string()
            } else {
                name.clone()
            };
            match api::upload(&upload, &sent_name).await {
                Ok(url) if current() => {
                    face.set(Some(Face {
                        url,
                        parsing,
                        photo: upload,
                        name: sent_name,
                    }));
                    status.set(if note.is_empty() {
                        format!("{name} is ready")
                    } else {
                        format!("{name} is uploaded{note}")
                    });
                }
                Ok(_) => {}
                Err(e) => status.set(format!("Upload failed: {e}")),
            }
        });
    };

    let on_change = move |ev: leptos::ev::Event| {
        if let Some(file) = chosen_file(&ev) {
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
    let use_sample = move |_| {
        spawn_local(async move {
            match sample_face().await {
                Ok(file) => take(file),
                Err(e) => status.set(e),
            }
        });
    };
    // The browser's detector can miss a face the person sees (a small or turned one): the
    // host's detector, the one the job uses, looks again and its faces replace the list.
    let searching = RwSignal::new(false);
    let ask_host = move |_| {
        let (Some(f), Some((analysis, href))) = (face.get_untracked(), found.get_untracked())
        else {
            return;
        };
        searching.set(true);
        spawn_local(async move {
            match api::host_faces(&f.url).await {
                Ok(h) if h.faces.len() > analysis.faces.len() => {
                    let mut more = (*analysis).clone();
                    more.faces = h
                        .faces
                        .into_iter()
                        .map(|d| consistentid_core::face::Detection {
                            bbox: d.bbox,
                            score: d.score,
                            landmarks: d.landmarks,
                        })
                        .collect();
                    chosen.set(0);
                    found.set(Some((Arc::new(more), href)));
                    status.set(format!(
                        "The host's detector found {} faces: pick the one that gives the identity.",
                        h.found
                    ));
                }
                Ok(h) => status.set(format!(
                    "The host's detector found {} face(s): no more than the browser did.",
                    h.found
                )),
                Err(e) => status.set(format!("The host could not look for faces: {e}")),
            }
            searching.set(false);
        });
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
        let name = file_name.get_untracked();
        reset();
        status.set(format!("{name} could not be decoded as an image."));
    };

    view! {
        <section
            class="upload"
            on:dragover=|ev: leptos::ev::DragEvent| ev.prevent_default()
            on:drop=on_drop
            on:paste=on_paste
        >
            <label for="face-input">"Reference face (one person, PNG, JPEG or WebP up to 50 MB)"</label>
            <input id="face-input" type="file" accept="image/png,image/jpeg,image/webp" on:change=on_change />
            <p class="hint">
                "…or drop a photo here, or paste one, or "
                <button id="sample-face" type="button" class="link" on:click=use_sample>"try a sample face"</button>
                "."
            </p>
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
            {move || found.get().map(|(a, href)| view! { <AnalysisPanel analysis=a label_map_png=Some(href) chosen=chosen /> })}
            <Show when=move || found.with(Option::is_some) && face.with(Option::is_some)>
                <p class="hint">
                    "A face missing? "
                    <button id="host-faces" type="button" class="link" disabled=move || searching.get() on:click=ask_host>
                        {move || if searching.get() { "The host is looking…" } else { "Let the host look for faces" }}
                    </button>
                </p>
            </Show>
        </section>
    }
}
