//! The face of this tab's last request, kept in the tab's memory only (never stored, gone on a
//! reload), so that its prediction page can run it again with a new seed: the host deletes its
//! own copy of the face when the job ends.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::web_sys;

/// The photo a "put me into a photo" request sent, and its mask.
pub struct Target {
    pub photo: web_sys::Blob,
    /// The mask as the request's PNG data URI.
    pub mask: String,
}

/// What the request sent as the face.
pub struct Face {
    /// The uploaded file (the browser's lossless PNG of the decoded photo, or the photo as it is).
    pub photo: web_sys::Blob,
    /// Its file name in the upload.
    pub name: String,
    /// The browser's label map (PNG data URI), when it analysed the photo.
    pub parsing: Option<String>,
    /// The photo the face was put into, for a "put me into a photo" request.
    pub target: Option<Target>,
}

thread_local! {
    /// (prediction id, its face).
    static LAST: RefCell<Option<(String, Rc<Face>)>> = const { RefCell::new(None) };
}

/// Keeps `face` as the face of prediction `id` (forgetting the one before).
pub fn remember(id: &str, face: Rc<Face>) {
    LAST.set(Some((id.to_string(), face)));
}

/// The face of prediction `id`, if this tab made it and still holds it.
pub fn recall(id: &str) -> Option<Rc<Face>> {
    LAST.with_borrow(|l| {
        l.as_ref()
            .filter(|(last, _)| last == id)
            .map(|(_, f)| f.clone())
    })
}
