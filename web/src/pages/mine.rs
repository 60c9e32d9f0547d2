//! My images: the predictions this browser made (its token is the owner), newest first.

use consistentid_core::api::Prediction;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;

#[component]
pub fn MyImages() -> impl IntoView {
    let items = RwSignal::new(Vec::<Prediction>::new());
    let next = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let load = move |cursor: Option<String>| {
        spawn_local(async move {
            match api::mine(cursor.as_deref()).await {
                Ok(page) => {
                    items.update(|i| i.extend(page.results));
                    next.set(page.next);
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    load(None);
    view! {
        <h1>"My images"</h1>
        <Show when=move || error.get().is_some()>
            <p class="error" role="alert">{move || error.get().unwrap_or_default()}</p>
        </Show>
        <ul id="mine" class="mine">
            <For
                each=move || items.get()
                key=|p| p.id.clone()
                children=move |p| {
                    let thumb = p.output.clone().unwrap_or_default().into_iter().next();
                    view! {
                        <li>
                            <a href=format!("/p/{}", p.id)>
                                {thumb.map(|t| view! { <img src=t alt="" /> })}
                                <span>{p.input.prompt.clone().unwrap_or_default()}</span>
                                <span class="badge">{p.status.as_str()}</span>
                            </a>
                        </li>
                    }
                }
            />
        </ul>
        <Show when=move || next.get().is_some()>
            <button type="button" on:click=move |_| load(next.get_untracked())>"More"</button>
        </Show>
    }
}
