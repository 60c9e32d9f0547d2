//! The ConsistentID web app: mounts [`app::App`] on the page body.

mod analysis;
mod api;
mod app;
mod components;
mod pages;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
