//! The page's side of the analysis worker: starts it once (this page's own wasm module and JS
//! glue, loaded again in a dedicated module worker), sends it the photos and the benchmark, and
//! hands back its answers. Without a worker the analysis fails and the host analyses the photo.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use futures_channel::oneshot;
use leptos::web_sys;
use wasm_bindgen::prelude::*;

use super::protocol::{Reply, Request};
use super::{Analysis, js_error};

/// A request waiting for its answer.
struct Pending {
    status: Box<dyn Fn(&str)>,
    done: oneshot::Sender<Reply>,
}

struct Client {
    worker: web_sys::Worker,
    next_id: Cell<u32>,
    pending: RefCell<HashMap<u32, Pending>>,
    /// Messages sent before the worker said it listens (`None` once it has).
    queued: RefCell<Option<Vec<JsValue>>>,
}

thread_local! {
    static CLIENT: RefCell<Option<Rc<Client>>> = const { RefCell::new(None) };
}

/// The module the page's JS glue loads: the worker imports the same file.
fn glue_url() -> Result<String, String> {
    let window = web_sys::window().ok_or("no browser window")?;
    let document = window.document().ok_or("no document")?;
    // trunk names the glue in a modulepreload link.
    let href = document
        .query_selector("link[rel=modulepreload]")
        .map_err(js_error)?
        .and_then(|link| link.get_attribute("href"))
        .ok_or("the page does not name its wasm module")?;
    let base = window.location().href().map_err(js_error)?;
    Ok(web_sys::Url::new_with_base(&href, &base)
        .map_err(js_error)?
        .href())
}

fn spawn() -> Result<Rc<Client>, String> {
    // The worker waits for the page's compiled module, so the wasm is not compiled twice.
    let source = format!(
        "import init from {};\nself.onmessage = (e) => {{ self.onmessage = null; init({{ module_or_path: e.data }}); }};\n",
        serde_json::to_string(&glue_url()?).map_err(|e| e.to_string())?
    );
    let parts = js_sys::Array::of1(&JsValue::from_str(&source));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("text/javascript");
    let blob =
        web_sys::Blob::new_with_str_sequence_and_options(&parts, &options).map_err(js_error)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(js_error)?;
    let worker_options = web_sys::WorkerOptions::new();
    worker_options.set_type(web_sys::WorkerType::Module);
    let worker = web_sys::Worker::new_with_options(&url, &worker_options).map_err(js_error)?;
    worker
        .post_message(&wasm_bindgen::module())
        .map_err(js_error)?;
    let client = Rc::new(Client {
        worker,
        next_id: Cell::new(1),
        pending: RefCell::new(HashMap::new()),
        queued: RefCell::new(Some(Vec::new())),
    });
    let weak = Rc::downgrade(&client);
    let on_message =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
            if let (Some(client), Some((id, reply))) = (weak.upgrade(), Reply::from_js(&ev.data()))
            {
                client.answer(id, reply);
            }
        });
    client
        .worker
        .set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    let weak = Rc::downgrade(&client);
    let on_error =
        Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |ev: web_sys::ErrorEvent| {
            if let Some(client) = weak.upgrade() {
                client.fail_all(&format!("the analysis worker stopped: {}", ev.message()));
            }
        });
    client
        .worker
        .set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
    Ok(client)
}

impl Client {
    fn answer(&self, id: u32, reply: Reply) {
        match reply {
            Reply::Ready => {
                let queued = self.queued.borrow_mut().take().unwrap_or_default();
                for message in queued {
                    self.post(&message);
                }
            }
            Reply::Status(text) => {
                if let Some(p) = self.pending.borrow().get(&id) {
                    (p.status)(&text);
                }
            }
            done => {
                if let Some(p) = self.pending.borrow_mut().remove(&id) {
                    let _ = p.done.send(done);
                }
            }
        }
    }

    fn fail_all(&self, why: &str) {
        for (_, p) in self.pending.borrow_mut().drain() {
            let _ = p.done.send(Reply::Failed(why.to_string()));
        }
    }

    fn post(&self, message: &JsValue) {
        if let Err(e) = self.worker.post_message(message) {
            self.fail_all(&js_error(e));
        }
    }

    /// Sends `request`; the answer comes through the returned channel.
    fn send(&self, request: Request, status: Box<dyn Fn(&str)>) -> oneshot::Receiver<Reply> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (done, answer) = oneshot::channel();
        self.pending
            .borrow_mut()
            .insert(id, Pending { status, done });
        self.enqueue(request.to_js(id));
        answer
    }

    /// Posts `message`, or keeps it until the worker listens.
    fn enqueue(&self, message: JsValue) {
        let mut queued = self.queued.borrow_mut();
        match queued.as_mut() {
            Some(queue) => queue.push(message),
            None => {
                drop(queued);
                self.post(&message);
            }
        }
    }
}

fn client() -> Result<Rc<Client>, String> {
    if let Some(c) = CLIENT.with_borrow(Clone::clone) {
        return Ok(c);
    }
    let c = spawn()?;
    CLIENT.set(Some(c.clone()));
    Ok(c)
}

async fn ask(request: Request, status: Box<dyn Fn(&str)>) -> Result<Reply, String> {
    let answer = client()?.send(request, status);
    match answer.await {
        Ok(Reply::Failed(e)) => Err(e),
        Ok(reply) => Ok(reply),
        Err(_) => Err("the analysis worker went away".into()),
    }
}

/// Starts the worker and its model downloads early (when the page opens), so the first photo
/// is faster.
pub fn preload() {
    // No answer comes: the next request finds the models loaded.
    if let Ok(c) = client() {
        c.enqueue(Request::Preload.to_js(0));
    }
}

/// Decodes and analyses `file` in the worker; `status` is told each step. `Ok(None)` when the
/// host serves no analysis models (it will analyse the photo itself).
pub async fn analyse(
    file: &web_sys::Blob,
    status: impl Fn(&str) + 'static,
) -> Result<Option<Analysis>, String> {
    match ask(Request::Analyse(file.clone()), Box::new(status)).await? {
        Reply::Analysed(a) => Ok(Some(*a)),
        Reply::NoModels => Ok(None),
        _ => Err("the analysis worker answered something else".into()),
    }
}

/// The benchmark (`runs` timed runs) in the worker, as JSON.
pub async fn bench(runs: usize) -> Result<String, String> {
    match ask(Request::Bench(runs), Box::new(|_| {})).await? {
        Reply::Bench(json) => Ok(json),
        _ => Err("the analysis worker answered something else".into()),
    }
}
