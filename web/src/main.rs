//! The ConsistentID web app: mounts [`app::App`] on the page body; the same module started in
//! the analysis worker serves the analysis instead.

mod analysis;
mod api;
mod app;
mod components;
mod nav;
mod pages;
mod remembered;

fn main() {
    console_error_panic_hook::set_once();
    if analysis::worker::is_worker() {
        analysis::worker::serve();
        return;
    }
    leptos::mount::mount_to_body(app::App);
}
