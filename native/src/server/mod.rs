//! `consistentid serve`: the host the web app talks to. A Replicate-compatible prediction API
//! with server-sent progress, SQLite persistence, share links and the web app on one origin.
//! One worker thread owns the engine; HTTP runs on tokio.

pub mod args;
pub mod bus;
pub mod hub;
pub mod ids;
pub mod janitor;
pub mod jobs;
pub mod listen;
pub mod logs;
pub mod metrics;
pub mod openapi;
pub mod photo;
pub mod presence;
pub mod problem;
pub mod routes;
pub mod security;
pub mod sink;
pub mod store;
#[cfg(feature = "test-engine")]
pub mod test_engine;
pub mod views;
pub mod worker;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use consistentid_core::api::Health;

pub use args::{Role, ServeArgs};

use crate::device::{DeviceChoice, DtypeChoice};
use hub::Hub;
use problem::ApiError;
use security::RateLimiter;
use store::{Blobs, PgBus, PgStore, SharedStore, SqliteStore, Store};

/// Uploads and new jobs are refused (507) when the data folder has less free space than this.
pub const MIN_FREE_BYTES: u64 = 8 << 20;

/// What `/v1/health` reports.
#[derive(Clone, Debug)]
pub struct HealthState {
    pub status: &'static str,
    pub detail: String,
    pub device: String,
}

/// Wakes the worker when a job is queued or canceled.
#[derive(Default)]
pub struct Wake {
    count: Mutex<u64>,
    cond: Condvar,
}

impl Wake {
    pub fn notify(&self) {
        *self.count.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.cond.notify_all();
    }

    /// Waits up to `timeout` for a notification.
    pub fn wait(&self, timeout: Duration) {
        let guard = self.count.lock().unwrap_or_else(|p| p.into_inner());
        let seen = *guard;
        let _ = self.cond.wait_timeout_while(guard, timeout, |c| *c == seen);
    }
}

/// Everything the handlers and the worker share.
pub struct AppState {
    pub store: SharedStore,
    /// Live events from and to the other processes on the same store.
    pub bus: bus::SharedBus,
    /// The async runtime, for the worker thread's calls into the store.
    pub runtime: tokio::runtime::Handle,
    /// This process's worker name, on every job it claims (`pid<N>-<random>`).
    pub worker: String,
    pub hub: Hub,
    pub args: ServeArgs,
    /// Absolute base of every URL we hand out (no trailing slash).
    pub base: String,
    /// SHA-256 of the `--api-key`s.
    pub api_keys: HashSet<String>,
    pub health: Mutex<HealthState>,
    pub wake: Wake,
    /// Running jobs whose owner asked to cancel.
    pub cancel: Mutex<HashSet<String>>,
    /// Set by SIGTERM: no new jobs; the running one stops at its next step and is re-queued.
    pub draining: AtomicBool,
    /// Set with `draining`: open event streams end so the server can stop.
    pub stop: tokio::sync::watch::Sender<bool>,
    pub limiter: RateLimiter,
    /// The web app's folder, if built.
    pub web: Option<PathBuf>,
    /// The Content-Security-Policy (with hashes of the app's inline scripts).
    pub csp: String,
    /// The face detector of `GET /v1/files/{id}/faces`, loaded on first use.
    pub detector: std::sync::OnceLock<Arc<consistentid_core::face::scrfd::Scrfd>>,
    /// ControlNets loaded by the worker, kept for the next job.
    pub controlnets: photo::ControlNets,
    /// What `GET /metrics` counts.
    pub metrics: metrics::Metrics,
    /// Whether this process's worker is running a job.
    pub busy: AtomicBool,
}

impl AppState {
    pub async fn health(&self) -> Health {
        let mut h = self
            .health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let workers = self
            .store
            .workers(self.args.heartbeat_every() * 3)
            .await
            .unwrap_or_default();
        if self.args.role == Role::Api {
            h = presence::health_of(&workers, self.args.heartbeat_every() * 3);
        }
        if h.status == "ready"
            && let Some(problem) = self.storage_problem()
        {
            h.status = "degraded";
            h.detail = problem;
        }
        let queue_length = match self.store.count_queued().await {
            Ok(n) => n,
            Err(e) => {
                if h.status == "ready" {
                    h.status = "degraded";
                    h.detail = format!("{} cannot be read: {e:#}", self.store.describe());
                }
                0
            }
        };
        Health {
            status: h.status.to_string(),
            detail: h.detail,
            device: h.device,
            queue_length,
            queue_capacity: self.args.queue_size,
            version: env!("CARGO_PKG_VERSION").to_string(),
            controlnets: photo::controlnet_names(&self.args.model),
            workers: workers.iter().map(presence::view).collect(),
        }
    }

    pub fn set_health(&self, status: &'static str, detail: impl Into<String>) {
        let mut h = self.health.lock().unwrap_or_else(|p| p.into_inner());
        h.status = status;
        h.detail = detail.into();
    }

    /// Runs a store call from a thread outside the runtime (the worker's).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Why nothing more can be stored, if the data folder is (nearly) full.
    pub fn storage_problem(&self) -> Option<String> {
        let free = self.store.free_bytes()?;
        (free < MIN_FREE_BYTES).then(|| {
            format!(
                "{} is full ({} kB free): uploads and new jobs wait until space is freed",
                self.store.describe(),
                free / 1024
            )
        })
    }
}

/// The jobs one owner may have waiting.
pub fn owner_share(args: &ServeArgs) -> usize {
    args.owner_queue
        .unwrap_or(args.queue_size.div_ceil(2))
        .clamp(1, args.queue_size.max(1))
}

/// 507 when the data folder is full.
pub fn check_storage(state: &AppState) -> std::result::Result<(), ApiError> {
    match state.storage_problem() {
        Some(_) => Err(ApiError::storage_full()),
        None => Ok(()),
    }
}

/// The platform's data folder for the host.
fn default_data_dir() -> PathBuf {
    let home = || PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
    if cfg!(target_os = "macos") {
        return home().join("Library/Application Support/consistentid");
    }
    if cfg!(windows)
        && let Some(appdata) = std::env::var_os("APPDATA")
    {
        return PathBuf::from(appdata).join("consistentid");
    }
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".local/share"))
        .join("consistentid")
}

/// The web app's folder: `--web`, ./dist, or the workspace's dist/ (a source checkout).
fn web_dir(args: &ServeArgs) -> Option<PathBuf> {
    if let Some(dir) = &args.web {
        return Some(dir.clone());
    }
    [
        PathBuf::from("dist"),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dist"),
    ]
    .into_iter()
    .find(|d| d.join("index.html").is_file())
}

/// Takes the data folder for this process: an exclusive lock on `consistentid.lock` (held until
/// the process ends), which names the process holding it.
fn lock_data(dir: &std::path::Path) -> Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data folder {}", dir.display()))?;
    let path = dir.join("consistentid.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| {
            format!(
                "cannot open {} (is the data folder writable?)",
                path.display()
            )
        })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            anyhow::bail!(
                "the data folder {} is in use by another `consistentid serve` ({}); stop it first or pass another --data",
                dir.display(),
                holder.trim()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "process {}", std::process::id())?;
    file.flush()?;
    Ok(file)
}

/// Runs the host until SIGTERM / Ctrl-C.
pub fn run(args: ServeArgs, device: DeviceChoice, dtype: DtypeChoice) -> Result<()> {
    args.check()?;
    logs::init(args.log_format);
    let data = args.data.clone().unwrap_or_else(default_data_dir);
    // The folder is ours before anything in it is touched, and the port before any job is
    // recovered: a second host on the same folder or port changes nothing.
    // With PostgreSQL, several hosts share the store (and the file folder): no lock.
    let _lock = match args.database_url {
        Some(_) => None,
        None => Some(lock_data(&data)?),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let addr = SocketAddr::new(args.host, args.port);
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(addr))
        .with_context(|| {
            format!("cannot listen on {addr} (is another server using the port? try --port)")
        })?;
    let (store, bus): (SharedStore, bus::SharedBus) = match &args.database_url {
        Some(url) => {
            let blobs = match &args.object_store {
                Some(url) => Blobs::bucket(url)?,
                None => {
                    if args.role != Role::All {
                        tracing::warn!(
                            "files are kept in {} (no --object-store): processes on other machines cannot read them",
                            data.join("objects").display()
                        );
                    }
                    Blobs::open(&data.join("objects"))?
                }
            };
            let pg = runtime
                .block_on(PgStore::connect(url, blobs, !args.no_migrate))?
                .with_max_attempts(args.max_attempts);
            tracing::info!("store: {}", pg.describe());
            let bus = PgBus::new(pg.pool().clone());
            (Arc::new(pg), Arc::new(bus))
        }
        None => (
            Arc::new(SqliteStore::open(&data)?.with_max_attempts(args.max_attempts)),
            Arc::new(bus::LocalBus),
        ),
    };
    let reaped = runtime.block_on(store.reap())?;
    if !reaped.again.is_empty() || !reaped.failed.is_empty() {
        tracing::warn!(
            "recovered after a stop: {} job(s) queued again, {} marked failed",
            reaped.again.len(),
            reaped.failed.len()
        );
    }
    // Faces of jobs that ended (here, or before a stop) without being deleted.
    if let Err(e) = runtime.block_on(store.release_faces()) {
        tracing::error!("cannot delete the faces of finished jobs: {e:#}");
    }
    let local = listener.local_addr()?;
    let shown_host = if args.host.is_unspecified() {
        "127.0.0.1".to_string()
    } else if local.is_ipv6() {
        format!("[{}]", local.ip())
    } else {
        local.ip().to_string()
    };
    let base = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{shown_host}:{}", local.port()))
        .trim_end_matches('/')
        .to_string();
    let web = web_dir(&args);
    let csp = security::content_security_policy(web.as_deref());
    let state = Arc::new(AppState {
        hub: Hub::new(store.clone(), bus.clone()),
        store,
        bus,
        runtime: runtime.handle().clone(),
        worker: args
            .worker_id
            .clone()
            .unwrap_or_else(|| format!("pid{}-{}", std::process::id(), &ids::new_id()[..8])),
        api_keys: args.api_keys.iter().map(|k| ids::owner_of(k)).collect(),
        limiter: RateLimiter::new(args.rate_limit),
        args: args.clone(),
        base: base.clone(),
        health: Mutex::new(HealthState {
            status: "loading",
            detail: "starting".into(),
            device: String::new(),
        }),
        wake: Wake::default(),
        cancel: Mutex::new(HashSet::new()),
        draining: AtomicBool::new(false),
        stop: tokio::sync::watch::channel(false).0,
        web,
        csp,
        detector: std::sync::OnceLock::new(),
        controlnets: Default::default(),
        metrics: Default::default(),
        busy: AtomicBool::new(false),
    });
    if state.web.is_none() {
        tracing::info!(
            "the web app is not built (run `trunk build` or scripts/build.sh); the API works without it"
        );
    }
    let role = args.role;
    let worker = role
        .runs_jobs()
        .then(|| worker::spawn(state.clone(), args.model.clone(), device, dtype));
    let app = if role.serves_api() {
        routes::router(state.clone())
    } else {
        routes::probe_router(state.clone())
    };
    let limits = listen::Limits {
        header_timeout: args.header_timeout,
        max_connections: listen::connection_cap(args.max_connections),
    };
    match role {
        Role::Worker => println!(
            "ConsistentID worker {} is listening on {base}/ (health: {base}/v1/health, metrics: {base}/metrics)",
            state.worker
        ),
        _ => println!(
            "ConsistentID is listening on {base}/ (API: {base}/v1, OpenAPI: {base}/openapi.json)"
        ),
    }
    let shutdown_state = state.clone();
    let janitor_state = state.clone();
    // The process's background tasks log under its worker id (every role has one).
    let process = tracing::info_span!("process", worker_id = %state.worker);
    let spawn = |task: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>| {
        tokio::spawn(tracing::Instrument::instrument(task, process.clone()))
    };
    runtime.block_on(async move {
        let reaper = spawn(Box::pin(janitor::reaper(janitor_state.clone())));
        let presence = role
            .runs_jobs()
            .then(|| spawn(Box::pin(presence::run(janitor_state.clone()))));
        let relay = role
            .serves_api()
            .then(|| spawn(Box::pin(bus::relay(janitor_state.clone()))));
        let janitor = role
            .serves_api()
            .then(|| spawn(Box::pin(janitor::run(janitor_state))));
        listen::serve(listener, app, limits, async move {
            shutdown_signal().await;
            tracing::info!("stopping: no new jobs; the running one is finished or queued again");
            shutdown_state.draining.store(true, Ordering::SeqCst);
            shutdown_state.stop.send_replace(true);
            shutdown_state.wake.notify();
        })
        .await;
        for task in [Some(reaper), presence, relay, janitor]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    });
    state.draining.store(true, Ordering::SeqCst);
    state.wake.notify();
    if let Some(worker) = worker {
        let _ = worker.join();
        let _ = runtime.block_on(state.store.worker_gone(&state.worker));
    }
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
