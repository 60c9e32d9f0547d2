//! The controls: prompt, style, and under "Advanced" the negative prompt, steps, guidance,
//! the merge step, seed (with randomise), size presets, number of images and sampler. Every
//! field has a label; values are kept as text and turned into the request on submit.

use consistentid_core::api::PredictionInput;
use consistentid_core::consistentid::styles;
use consistentid_core::scheduler::SchedulerKind;
use leptos::prelude::*;

/// The form's state.
#[derive(Clone, Copy)]
pub struct Controls {
    pub prompt: RwSignal<String>,
    pub style: RwSignal<String>,
    pub negative: RwSignal<String>,
    pub steps: RwSignal<String>,
    pub guidance: RwSignal<String>,
    pub merge_step: RwSignal<String>,
    pub seed: RwSignal<String>,
    pub size: RwSignal<String>,
    pub width: RwSignal<String>,
    pub height: RwSignal<String>,
    pub num_outputs: RwSignal<String>,
    /// Best-of-N: candidates made, of which the most alike are kept (empty: off).
    pub best_of: RwSignal<String>,
    pub scheduler: RwSignal<String>,
}

impl Controls {
    /// `generate --face`'s defaults (the official infer.py).
    pub fn new() -> Self {
        Self {
            prompt: RwSignal::new(String::new()),
            style: RwSignal::new(String::new()),
            negative: RwSignal::new(String::new()),
            steps: RwSignal::new("50".into()),
            guidance: RwSignal::new("5".into()),
            merge_step: RwSignal::new("30".into()),
            seed: RwSignal::new(String::new()),
            size: RwSignal::new("512x768".into()),
            width: RwSignal::new("512".into()),
            height: RwSignal::new("768".into()),
            num_outputs: RwSignal::new("1".into()),
            best_of: RwSignal::new(String::new()),
            scheduler: RwSignal::new("euler".into()),
        }
    }

    /// Fills the form from an earlier request (its face is not reused: the host keeps none).
    pub fn prefill(&self, input: &PredictionInput) {
        let set = |signal: RwSignal<String>, value: Option<String>| {
            if let Some(v) = value {
                signal.set(v);
            }
        };
        set(self.prompt, input.prompt.clone());
        set(self.style, input.style.clone());
        set(self.negative, input.negative_prompt.clone());
        set(self.steps, input.num_inference_steps.map(|v| v.to_string()));
        set(self.guidance, input.guidance_scale.map(|v| v.to_string()));
        set(
            self.merge_step,
            input.start_merge_step.map(|v| v.to_string()),
        );
        set(self.num_outputs, input.num_outputs.map(|v| v.to_string()));
        set(self.best_of, input.best_of.map(|v| v.to_string()));
        set(
            self.scheduler,
            input.scheduler.map(|s| s.name().to_string()),
        );
        if let (Some(w), Some(h)) = (input.width, input.height) {
            let preset = format!("{w}x{h}");
            let known = ["512x768", "512x512", "768x512"].contains(&preset.as_str());
            self.size.set(if known { preset } else { "custom".into() });
            self.width.set(w.to_string());
            self.height.set(h.to_string());
        }
    }

    /// What the host will warn about, knowable before sending (the identity never applied,
    /// reserved markers removed); `None` while a number does not parse.
    pub fn warnings(&self) -> Vec<String> {
        // `input` reads untracked; a warnings view must follow every field.
        for field in [
            self.prompt,
            self.style,
            self.negative,
            self.steps,
            self.guidance,
            self.merge_step,
            self.seed,
            self.size,
            self.width,
            self.height,
            self.num_outputs,
            self.best_of,
            self.scheduler,
        ] {
            field.track();
        }
        let Ok(input) = self.input(String::new(), None, None) else {
            return Vec::new();
        };
        let Ok(request) = input.to_request() else {
            return Vec::new();
        };
        match request.validate() {
            Ok((_, warnings)) => warnings,
            Err(_) => Vec::new(),
        }
    }

    /// The request's input (the host validates every number again).
    /// `face_parsing`: the browser's label map of the face, if it analysed it; `face_box`: the
    /// face chosen among several.
    pub fn input(
        &self,
        face_image: String,
        face_parsing: Option<String>,
        face_box: Option<[f32; 4]>,
    ) -> Result<PredictionInput, String> {
        fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<Option<T>, String> {
            let t = text.trim();
            if t.is_empty() {
                return Ok(None);
            }
            t.parse()
                .map(Some)
                .map_err(|_| format!("{what} must be a number (got “{t}”)"))
        }
        let (width, height) = match self.size.get_untracked().as_str() {
            "custom" => (
                number(&self.width.get_untracked(), "Width")?,
                number(&self.height.get_untracked(), "Height")?,
            ),
            preset => {
                let (w, h) = preset.split_once('x').unwrap_or(("512", "768"));
                (w.parse().ok(), h.parse().ok())
            }
        };
        let text = |s: RwSignal<String>| Some(s.get_untracked()).filter(|t| !t.trim().is_empty());
        Ok(PredictionInput {
            prompt: Some(self.prompt.get_untracked()),
            negative_prompt: text(self.negative),
            style: text(self.style),
            num_inference_steps: number(&self.steps.get_untracked(), "Steps")?,
            guidance_scale: number(&self.guidance.get_untracked(), "Guidance")?,
            start_merge_step: number(&self.merge_step.get_untracked(), "Identity start")?,
            seed: number(&self.seed.get_untracked(), "Seed")?,
            width,
            height,
            num_outputs: number(&self.num_outputs.get_untracked(), "Number of images")?,
            best_of: number(&self.best_of.get_untracked(), "Keep the best of")?,
            scheduler: SchedulerKind::from_name(&self.scheduler.get_untracked()),
            face_image: Some(face_image),
            face_parsing,
            face_box,
            ..PredictionInput::default()
        })
    }
}

/// Prompts to start from, one click each.
static EXAMPLES: [&str; 4] = [
    "a woman as an astronaut, oil painting",
    "portrait of a man in a café, 35mm film photo",
    "a knight in shining armour, fantasy illustration",
    "a person reading in a sunlit library, watercolour",
];

/// A labelled text/number input bound to a signal.
#[component]
fn Field(
    id: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    #[prop(optional)] kind: &'static str,
) -> impl IntoView {
    view! {
        <label for=id>{label}</label>
        <input
            id=id
            type=if kind.is_empty() { "text" } else { kind }
            prop:value=move || value.get()
            on:input=move |ev| value.set(event_target_value(&ev))
        />
    }
}

/// The prompt and settings.
#[component]
pub fn PromptForm(controls: Controls) -> impl IntoView {
    let c = controls;
    let randomise = move |_| {
        let seed = (js_sys::Math::random() * 1e12).floor() as u64;
        c.seed.set(seed.to_string());
    };
    view! {
        <section class="controls">
            <label for="prompt">"Prompt"</label>
            <textarea
                id="prompt"
                rows="3"
                placeholder="a woman as an astronaut, oil painting"
                prop:value=move || c.prompt.get()
                on:input=move |ev| c.prompt.set(event_target_value(&ev))
            ></textarea>
            <p class="examples" aria-label="Example prompts">
                "Try: "
                {EXAMPLES
                    .iter()
                    .copied()
                    .map(|e| view! {
                        <button type="button" class="example" on:click=move |_| c.prompt.set(e.to_string())>{e}</button>
                    })
                    .collect_view()}
            </p>
            <label for="style">"Style"</label>
            <select id="style" prop:value=move || c.style.get() on:change=move |ev| c.style.set(event_target_value(&ev))>
                <option value="">"Official (infer.py)"</option>
                {styles::names()
                    .into_iter()
                    .map(|n| view! { <option value=n>{n}</option> })
                    .collect_view()}
            </select>
            <details id="advanced">
                <summary>"Advanced"</summary>
                <div class="grid">
                    <Field id="negative" label="Negative prompt" value=c.negative />
                    <Field id="steps" label="Steps" value=c.steps kind="number" />
                    <Field id="guidance" label="Guidance" value=c.guidance kind="number" />
                    <Field id="merge-step" label="Identity starts after step" value=c.merge_step kind="number" />
                    <p class="hint">"When the identity starts being applied: earlier steps follow the prompt alone, later ones the face."</p>
                    <label for="seed">"Seed"</label>
                    <span class="row">
                        <input
                            id="seed"
                            type="number"
                            placeholder="random"
                            prop:value=move || c.seed.get()
                            on:input=move |ev| c.seed.set(event_target_value(&ev))
                        />
                        <button type="button" on:click=randomise>"Randomise"</button>
                    </span>
                    <label for="size">"Size"</label>
                    <select id="size" prop:value=move || c.size.get() on:change=move |ev| c.size.set(event_target_value(&ev))>
                        <option value="512x768">"Portrait 512×768"</option>
                        <option value="512x512">"Square 512×512"</option>
                        <option value="768x512">"Landscape 768×512"</option>
                        <option value="custom">"Custom"</option>
                    </select>
                    <Show when=move || c.size.get() == "custom">
                        <Field id="width" label="Width" value=c.width kind="number" />
                        <Field id="height" label="Height" value=c.height kind="number" />
                    </Show>
                    <Field id="num-outputs" label="Number of images" value=c.num_outputs kind="number" />
                    <Field id="best-of" label="Keep the best of" value=c.best_of kind="number" />
                    <label for="scheduler">"Sampler"</label>
                    <select id="scheduler" prop:value=move || c.scheduler.get() on:change=move |ev| c.scheduler.set(event_target_value(&ev))>
                        {SchedulerKind::NAMES
                            .iter()
                            .map(|n| view! { <option value=*n>{*n}</option> })
                            .collect_view()}
                    </select>
                </div>
            </details>
        </section>
    }
}
