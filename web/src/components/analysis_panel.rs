//! What the browser's analysis found, drawn over the photo: each face's box and keypoints, the
//! five facial regions ConsistentID uses as a coloured overlay (each can be hidden), where it
//! ran and how long each step took. With several faces the person picks the one that gives the
//! identity (the highest-scoring one first, as the official rule). The label map can be
//! downloaded.

use std::sync::Arc;

use consistentid_core::bisenet::labels::official_name;
use consistentid_core::bisenet::preprocess::SIZE;
use consistentid_core::bisenet::regions::facial_regions;
use leptos::prelude::*;
use leptos::web_sys;
use wasm_bindgen::{Clamped, JsCast};

use crate::analysis::Analysis;

/// Overlay colours (RGBA) by region, in ConsistentID's order: face, eyes, ears, nose, mouth.
const COLOURS: [[u8; 4]; 5] = [
    [255, 209, 102, 110],
    [6, 214, 160, 150],
    [17, 138, 178, 150],
    [239, 71, 111, 150],
    [131, 56, 236, 150],
];

/// One region present in the label map.
#[derive(Clone)]
struct Shown {
    index: usize,
    word: &'static str,
    label: &'static str,
    mask: Arc<Vec<bool>>,
}

fn regions(labels: &[u8]) -> Vec<Shown> {
    facial_regions(labels, SIZE, SIZE)
        .into_iter()
        .map(|(region, label, mask)| Shown {
            index: consistentid_core::bisenet::labels::REGIONS
                .iter()
                .position(|r| r.name == region.name)
                .unwrap_or_default(),
            word: region.word,
            label: official_name(label),
            mask: Arc::new(mask.data),
        })
        .collect()
}

fn context(canvas: &web_sys::HtmlCanvasElement) -> Option<web_sys::CanvasRenderingContext2d> {
    canvas.get_context("2d").ok()??.dyn_into().ok()
}

/// Draws the photo, the enabled regions and the faces (the chosen one highlighted).
fn draw(
    canvas: &web_sys::HtmlCanvasElement,
    a: &Analysis,
    shown: &[Shown],
    on: &[bool],
    chosen: usize,
) {
    let (w, h) = (a.image.width as u32, a.image.height as u32);
    canvas.set_width(w);
    canvas.set_height(h);
    let Some(ctx) = context(canvas) else { return };
    let rgba: Vec<u8> = a
        .image
        .data
        .chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    if let Ok(img) = web_sys::ImageData::new_with_u8_clamped_array_and_sh(Clamped(&rgba), w, h) {
        let _ = ctx.put_image_data(&img, 0.0, 0.0);
    }
    // The label map is of the photo resized to 512 × 512: stretched back over it.
    let mut overlay = vec![0u8; SIZE * SIZE * 4];
    for (region, _) in shown.iter().zip(on).filter(|(_, on)| **on) {
        let colour = COLOURS[region.index % COLOURS.len()];
        for (px, _) in overlay
            .chunks_exact_mut(4)
            .zip(region.mask.iter())
            .filter(|(_, inside)| **inside)
        {
            px.copy_from_slice(&colour);
        }
    }
    let side = SIZE as u32;
    let layer = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.create_element("canvas").ok())
        .and_then(|c| c.dyn_into::<web_sys::HtmlCanvasElement>().ok());
    if let Some(layer) = layer {
        layer.set_width(side);
        layer.set_height(side);
        if let (Some(lctx), Ok(img)) = (
            context(&layer),
            web_sys::ImageData::new_with_u8_clamped_array_and_sh(Clamped(&overlay), side, side),
        ) {
            let _ = lctx.put_image_data(&img, 0.0, 0.0);
            ctx.set_image_smoothing_enabled(false);
            let _ = ctx.draw_image_with_html_canvas_element_and_dw_and_dh(
                &layer,
                0.0,
                0.0,
                f64::from(w),
                f64::from(h),
            );
        }
    }
    let line = (f64::from(w.max(h)) / 256.0).max(2.0);
    ctx.set_line_width(line);
    for (i, face) in a.faces.iter().enumerate() {
        let colour = if i == chosen { "#00e5ff" } else { "#ffffff" };
        ctx.set_stroke_style_str(colour);
        ctx.set_fill_style_str(colour);
        let [x0, y0, x1, y1] = face.bbox.map(f64::from);
        ctx.stroke_rect(x0, y0, x1 - x0, y1 - y0);
        for [x, y] in &face.landmarks {
            ctx.begin_path();
            let _ = ctx.arc(
                f64::from(*x),
                f64::from(*y),
                line * 1.5,
                0.0,
                std::f64::consts::TAU,
            );
            ctx.fill();
        }
    }
}

/// "x,y;x,y;…" with two decimals, for tests and the curious.
fn points(points: &[[f32; 2]]) -> String {
    points
        .iter()
        .map(|[x, y]| format!("{x:.2},{y:.2}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// `chosen`: the index of the face that gives the identity (in `analysis.faces`).
#[component]
pub fn AnalysisPanel(
    analysis: Arc<Analysis>,
    label_map_png: Option<String>,
    chosen: RwSignal<usize>,
) -> impl IntoView {
    let shown = regions(&analysis.labels);
    let on = RwSignal::new(vec![true; shown.len()]);
    let canvas = NodeRef::<leptos::html::Canvas>::new();
    {
        let (analysis, shown) = (analysis.clone(), shown.clone());
        Effect::new(move |_| {
            let enabled = on.get();
            let chosen = chosen.get();
            if let Some(c) = canvas.get() {
                draw(&c, &analysis, &shown, &enabled, chosen);
            }
        });
    }
    let timings = analysis
        .timings
        .iter()
        .map(|(step, ms)| format!("{step} {ms:.0} ms"))
        .collect::<Vec<_>>()
        .join(" · ");
    let faces = analysis.faces.clone();
    let several = faces.len() > 1;
    let count = match faces.len() {
        0 => "No face found: choose a photo where one face is clearly visible.".to_string(),
        1 => "One face found.".to_string(),
        n => format!(
            "{n} faces found: the chosen one (blue) gives the identity; the highest-scoring one is chosen first, pick another below."
        ),
    };
    let scaled = analysis.scaled_from.map(|(w, h)| {
        format!(
            "Scaled down from {w}×{h} to {}×{} px for analysis and upload.",
            analysis.image.width, analysis.image.height
        )
    });
    view! {
        <section class="analysis" aria-label="Face analysis">
            <canvas id="analysis-canvas" node_ref=canvas aria-label="The photo with the faces and facial regions found"></canvas>
            <details id="analysis-details">
                <summary>"Details"</summary>
                <p id="backend" class="hint">{format!("Analysed in this browser on {}.", analysis.backend)}</p>
                <p id="timings" class="hint">{timings}</p>
                {scaled.map(|s| view! { <p class="hint">{s}</p> })}
            </details>
            <p id="face-count">{count}</p>
            <ol id="faces">
                {faces
                    .into_iter()
                    .enumerate()
                    .map(|(i, f)| {
                        let [x0, y0, x1, y1] = f.bbox;
                        let text = format!(
                            "score {:.2}, {:.0}×{:.0} px at ({:.0}, {:.0})",
                            f.score,
                            x1 - x0,
                            y1 - y0,
                            x0,
                            y0
                        );
                        let id = format!("face-{i}");
                        // One face needs no choice; several get radio buttons.
                        let pick = several.then(|| {
                            let for_id = id.clone();
                            view! {
                                <input
                                    id=id
                                    type="radio"
                                    name="face-choice"
                                    prop:checked=move || chosen.get() == i
                                    on:change=move |_| chosen.set(i)
                                />
                                <label for=for_id>{text.clone()}</label>
                            }
                        });
                        view! {
                            <li
                                data-box=format!("{x0:.2},{y0:.2},{x1:.2},{y1:.2}")
                                data-keypoints=points(&f.landmarks)
                                class:chosen=move || chosen.get() == i
                            >
                                {if several { None } else { Some(text.clone()) }}
                                {pick}
                            </li>
                        }
                    })
                    .collect_view()}
            </ol>
            <fieldset class="regions">
                <legend>"Facial regions the identity uses (the boxes only change the drawing)"</legend>
                {shown
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let [cr, cg, cb, _] = COLOURS[r.index % COLOURS.len()];
                        let id = format!("region-{}", r.word);
                        let for_id = id.clone();
                        view! {
                            <label for=for_id class="region">
                                <input
                                    id=id
                                    type="checkbox"
                                    prop:checked=move || on.get().get(i).copied().unwrap_or(true)
                                    on:change=move |_| on.update(|v| v[i] = !v[i])
                                />
                                <span class="swatch" style=format!("background: rgb({cr},{cg},{cb})")></span>
                                {format!("{} ({})", r.word, r.label)}
                            </label>
                        }
                    })
                    .collect_view()}
                {(shown.is_empty()).then(|| view! { <p>"No facial region was found."</p> })}
            </fieldset>
            {label_map_png.map(|href| view! {
                <a id="label-map" href=href download="face_parsing.png">"Download the label map"</a>
            })}
        </section>
    }
}
