//! "Put me into a photo": the photo the face goes into. It is analysed in the browser like the
//! face (BlazeFace, then BiSeNet on the whole photo), the facial regions BiSeNet finds are
//! proposed as the mask (drawn over the photo in red), a brush and an eraser change it, and
//! the photo (the browser's lossless PNG of its decoded pixels) is uploaded; the mask goes with
//! the request as a PNG data URI of the photo's size.

use base64::Engine;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos::web_sys;
use wasm_bindgen::{Clamped, JsCast};

use consistentid_core::bisenet::preprocess::SIZE;

use crate::analysis::{client, decode};
use crate::api;

/// BiSeNet's classes of the face proposed as the mask: skin, brows, eyes, glasses, ears,
/// earrings, nose, mouth, lips.
const FACE_CLASSES: std::ops::RangeInclusive<u8> = 1..=13;

/// The target photo, uploaded, and the mask over it.
#[derive(Clone, Debug)]
pub struct Target {
    /// The uploaded photo's URL on the host.
    pub url: String,
    /// What was uploaded (kept in the tab for the before/after view).
    pub photo: web_sys::Blob,
}

/// The mask, one byte a pixel of the photo (1: repaint).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mask {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl Mask {
    /// The facial regions of a `side`² BiSeNet label map of the whole photo, at the photo's size.
    fn proposed(labels: &[u8], side: usize, width: usize, height: usize) -> Self {
        let data = (0..width * height)
            .map(|i| {
                let (y, x) = (i / width * side / height, i % width * side / width);
                u8::from(FACE_CLASSES.contains(&labels[y * side + x]))
            })
            .collect();
        Self {
            width,
            height,
            data,
        }
    }

    fn painted(&self) -> usize {
        self.data.iter().filter(|&&v| v == 1).count()
    }

    /// Paints (or erases) a disc of `radius` pixels at (`cx`, `cy`).
    fn dab(&mut self, cx: f64, cy: f64, radius: f64, value: u8) {
        let (w, h) = (self.width as f64, self.height as f64);
        let (x0, x1) = (
            (cx - radius).max(0.0) as usize,
            (cx + radius).min(w - 1.0) as usize,
        );
        let (y0, y1) = (
            (cy - radius).max(0.0) as usize,
            (cy + radius).min(h - 1.0) as usize,
        );
        for y in y0..=y1 {
            for x in x0..=x1 {
                let (dx, dy) = (x as f64 - cx, y as f64 - cy);
                if dx * dx + dy * dy <= radius * radius {
                    self.data[y * self.width + x] = value;
                }
            }
        }
    }

    /// The request's `mask`: white repaints, black keeps.
    pub fn data_uri(&self) -> Result<String, String> {
        let grey: Vec<u8> = self.data.iter().map(|&v| v * 255).collect();
        let png = decode::grey_png(&grey, self.width, self.height)?;
        Ok(format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(png)
        ))
    }
}

/// Draws the mask in translucent red on the canvas.
fn draw(canvas: &web_sys::HtmlCanvasElement, mask: &Mask) {
    canvas.set_width(mask.width as u32);
    canvas.set_height(mask.height as u32);
    canvas
        .set_attribute("data-masked", &mask.painted().to_string())
        .ok();
    let Some(ctx) = canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into::<web_sys::CanvasRenderingContext2d>().ok())
    else {
        return;
    };
    let rgba: Vec<u8> = mask
        .data
        .iter()
        .flat_map(|&v| {
            if v == 1 {
                [230, 40, 40, 120]
            } else {
                [0, 0, 0, 0]
            }
        })
        .collect();
    if let Ok(data) = web_sys::ImageData::new_with_u8_clamped_array_and_sh(
        Clamped(&rgba),
        mask.width as u32,
        mask.height as u32,
    ) {
        ctx.put_image_data(&data, 0.0, 0.0).ok();
    }
}

#[component]
pub fn TargetPhoto(target: RwSignal<Option<Target>>, mask: RwSignal<Mask>) -> impl IntoView {
    let status = RwSignal::new(String::from(
        "Choose the photo to put the face into (a face in it is repainted).",
    ));
    let preview = RwSignal::new(None::<String>);
    let canvas = NodeRef::<leptos::html::Canvas>::new();
    let erasing = RwSignal::new(false);
    let brush = RwSignal::new(24.0f64);
    let drawing = StoredValue::new(false);
    Effect::new(move |_| {
        let m = mask.get();
        if let Some(c) = canvas.get() {
            draw(&c, &m);
        }
    });
    let take = move |file: web_sys::File| {
        target.set(None);
        mask.set(Mask::default());
        if let Some(old) = preview.get_untracked() {
            let _ = web_sys::Url::revoke_object_url(&old);
        }
        preview.set(web_sys::Url::create_object_url_with_blob(&file).ok());
        status.set(format!("Reading {}…", file.name()));
        spawn_local(async move {
            let name = file.name();
            let found = client::analyse(&file, move |s| status.set(s.to_string())).await;
            let a = match found {
                Ok(Some(a)) => a,
                Ok(None) => {
                    status.set("This host does not serve the analysis models: the photo needs a face analysed in the browser to propose a mask.".into());
                    return;
                }
                Err(e) => {
                    status.set(format!("{name} could not be analysed: {e}"));
                    return;
                }
            };
            let (w, h) = (a.image.width, a.image.height);
            let proposed = Mask::proposed(&a.labels, SIZE, w, h);
            let photo = match crate::components::upload::blob(&a.photo_png) {
                Ok(b) => b,
                Err(e) => {
                    status.set(format!("Upload failed: {e}"));
                    return;
                }
            };
            status.set(format!("Uploading {name}…"));
            match api::upload(&photo, "target.png").await {
                Ok(url) => {
                    let n = proposed.painted();
                    mask.set(proposed);
                    target.set(Some(Target { url, photo }));
                    status.set(if n == 0 {
                        format!("{name} is ready: no face was found in it, paint where it should go")
                    } else {
                        format!("{name} is ready: the face found is marked in red; paint or erase to change it")
                    });
                }
                Err(e) => status.set(format!("Upload failed: {e}")),
            }
        });
    };
    let on_change = move |ev: leptos::ev::Event| {
        if let Some(file) = crate::components::upload::chosen_file(&ev) {
            take(file);
        }
    };
    // A pointer position in the photo's pixels.
    let at = move |ev: &leptos::ev::PointerEvent| -> Option<(f64, f64, f64)> {
        let c = canvas.get_untracked()?;
        let r = c.get_bounding_client_rect();
        let scale = f64::from(c.width()) / r.width().max(1.0);
        Some((
            (f64::from(ev.client_x()) - r.left()) * scale,
            (f64::from(ev.client_y()) - r.top()) * scale,
            brush.get_untracked() * scale,
        ))
    };
    let paint = move |ev: &leptos::ev::PointerEvent| {
        if let Some((x, y, radius)) = at(ev) {
            let value = u8::from(!erasing.get_untracked());
            mask.update(|m| {
                if !m.data.is_empty() {
                    m.dab(x, y, radius, value);
                }
            });
        }
    };
    view! {
        <section class="upload" id="target">
            <label for="target-input">"The photo to put the face into (PNG, JPEG or WebP)"</label>
            <input id="target-input" type="file" accept="image/png,image/jpeg,image/webp" on:change=on_change />
            <p id="target-status" class="status" role="status">{move || status.get()}</p>
            <Show when=move || preview.get().is_some()>
                <div class="mask-editor">
                    <img id="target-preview" alt="The photo the face goes into" src=move || preview.get().unwrap_or_default() />
                    <canvas
                        id="mask-canvas"
                        node_ref=canvas
                        on:pointerdown=move |ev| {
                            drawing.set_value(true);
                            paint(&ev);
                        }
                        on:pointermove=move |ev| {
                            if drawing.get_value() {
                                paint(&ev);
                            }
                        }
                        on:pointerup=move |_| drawing.set_value(false)
                        on:pointerleave=move |_| drawing.set_value(false)
                    ></canvas>
                </div>
                <fieldset class="tools">
                    <legend>"Mask"</legend>
                    <label><input id="brush" type="radio" name="tool" checked=move || !erasing.get() on:change=move |_| erasing.set(false) />" Brush"</label>
                    <label><input id="eraser" type="radio" name="tool" checked=move || erasing.get() on:change=move |_| erasing.set(true) />" Eraser"</label>
                    <label>
                        " Size "
                        <input id="brush-size" type="range" min="4" max="96" prop:value=move || brush.get().to_string()
                            on:input=move |ev| {
                                if let Ok(v) = event_target_value(&ev).parse() {
                                    brush.set(v);
                                }
                            } />
                    </label>
                </fieldset>
            </Show>
        </section>
    }
}
