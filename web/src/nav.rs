//! Moving between the app's pages without reloading it: the address changes (history
//! `pushState`, so Back and a reload still work) and the app renders the new page. What the
//! tab holds in memory, such as the face of its last request, survives the move.

use std::cell::Cell;

use leptos::prelude::*;
use leptos::web_sys;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

thread_local! {
    /// The address the app shows; set once the app is mounted.
    static ROUTE: Cell<Option<RwSignal<String>>> = const { Cell::new(None) };
}

/// The window's path and query.
fn here() -> String {
    web_sys::window()
        .map(|w| {
            let l = w.location();
            format!(
                "{}{}",
                l.pathname().unwrap_or_default(),
                l.search().unwrap_or_default()
            )
        })
        .unwrap_or_default()
}

/// The address as a signal that follows [`go`] and the browser's Back and Forward buttons.
pub fn route() -> RwSignal<String> {
    if let Some(r) = ROUTE.get() {
        return r;
    }
    let r = RwSignal::new(here());
    ROUTE.set(Some(r));
    if let Some(w) = web_sys::window() {
        let back = Closure::<dyn FnMut()>::new(move || r.set(here()));
        let _ = w.add_event_listener_with_callback("popstate", back.as_ref().unchecked_ref());
        // Lives as long as the page.
        back.forget();
    }
    r
}

/// Goes to another page of the app; a full load when the history cannot be written.
pub fn go(path: &str) {
    let Some(w) = web_sys::window() else {
        return;
    };
    // `history.pushState(null, "", path)`, through Reflect: one call does not merit a web-sys
    // feature (and a rebuild of its dependants).
    let pushed = js_sys::Reflect::get(&w, &JsValue::from_str("history"))
        .ok()
        .and_then(|h| {
            let push = js_sys::Reflect::get(&h, &JsValue::from_str("pushState")).ok()?;
            let push = push.dyn_ref::<js_sys::Function>()?.clone();
            push.call3(&h, &JsValue::NULL, &JsValue::from_str(""), &path.into())
                .ok()
        })
        .is_some();
    match ROUTE.get() {
        Some(r) if pushed => {
            r.set(here());
            w.scroll_to_with_x_and_y(0.0, 0.0);
        }
        _ => {
            let _ = w.location().assign(path);
        }
    }
}
