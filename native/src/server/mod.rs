//! `consistentid serve`: the host the web app talks to. A Replicate-compatible prediction API
//! with server-sent progress, SQLite persistence, share links and the web app on one origin.
//! One worker thread owns the engine; HTTP runs on tokio.

pub mod hub;
pub mod ids;
pub mod janitor;
pub mod jobs;
pub mod listen;
pub mod metrics;
pub mod openapi;
pub mod photo;
pub mod problem;
pub mod routes;
pub mod security;
pub mod sink;
pub mod store;
pub mod views;
pub mod worker;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use consistentid_core::api::Health;

use crate::device::{DeviceChoice, DtypeChoice};
use hub::Hub;
use problem::ApiError;
use security::RateLimiter;
use store::{Blobs, PgStore, SharedStore, SqliteStore, Store};

/// Uploads and new jobs are refused (507) when the data folder has less free space than this.
pub const MIN_FREE_BYTES: u64 = 8 << 20;

/// `serve` options.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The ConsistentID model folder; fetched first when it does not exist.
    #[arg(long, value_name = "DIR", default_value = "consistentid-model")]
    pub model: PathBuf,
    /// Where predictions, uploads and images are kept (default: the platform's data folder).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Address to listen on (127.0.0.1: this machine only).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    #[arg(long, default_value_t = 7860)]
    pub port: u16,
    /// The web app (trunk's dist/ folder); default: ./dist, then the one next to the sources.
    #[arg(long, value_name = "DIR")]
    pub web: Option<PathBuf>,
    /// The URL people reach this host at (behind a proxy); default http://HOST:PORT.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Only these bearer tokens may create predictions (repeatable; hosted mode).
    #[arg(long = "api-key", value_name = "KEY")]
    pub api_keys: Vec<String>,
    /// Origins allowed to call the API from another site (CORS; repeatable). Default: none.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// Jobs that may wait; more are refused with 429.
    #[arg(long, default_value_t = 32)]
    pub queue_size: usize,
    /// Jobs one token may have waiting (default: half the queue, at least 1), so that one
    /// client cannot fill it.
    #[arg(long, value_name = "N")]
    pub owner_queue: Option<usize>,
    /// POST and DELETE requests per minute per client address (0: no limit).
    #[arg(long, default_value_t = 120)]
    pub rate_limit: u32,
    /// A reverse proxy whose `X-Forwarded-For` names the client (repeatable); without it the
    /// header is ignored.
    #[arg(long = "trusted-proxy", value_name = "IP")]
    pub trusted_proxies: Vec<IpAddr>,
    /// A request's head must arrive within this (e.g. 30s); a connection idle this long
    /// between requests is closed.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub header_timeout: Duration,
    /// A request's body must arrive within this (uploads included).
    #[arg(long, value_parser = parse_duration, default_value = "120s")]
    pub body_timeout: Duration,
    /// Open connections at most (event streams included); more are closed at once. Lowered
    /// to fit the process's limit on open files.
    #[arg(long, default_value_t = 512)]
    pub max_connections: usize,
    /// Largest upload or request body, in MB.
    #[arg(long, default_value_t = 10)]
    pub max_upload_mb: usize,
    /// Delete unshared results this long after they finish (e.g. 1h, 7d; hosted mode).
    #[arg(long, value_parser = parse_duration)]
    pub retention: Option<Duration>,
    /// Do not download the model folder when it is missing.
    #[arg(long)]
    pub no_fetch: bool,
    /// Maintenance: accept and queue jobs without running them; they run after a restart
    /// without this flag.
    #[arg(long)]
    pub paused: bool,
    /// Keep predictions and the queue in PostgreSQL (postgres://user@host:5432/db), so that
    /// several hosts share them; default: SQLite in --data. The password comes from the URL
    /// or PGPASSWORD and is never printed.
    #[arg(
        long,
        env = "CONSISTENTID_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Do not bring the database's schema up to date at start (another process does).
    #[arg(long)]
    pub no_migrate: bool,
    /// A running job's lease: a worker silent this long has stopped, and its job goes to
    /// another (renewed every third of it).
    #[arg(long, value_parser = parse_duration, default_value = "15s")]
    pub lease: Duration,
    /// This process's worker name on the jobs it runs (default: pid<N>-<random>).
    #[arg(long, value_name = "ID")]
    pub worker_id: Option<String>,
}

/// `500ms`, `90s`, `30m`, `24h`, `7d`.
fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    if let Some(ms) = text.strip_suffix("ms") {
        return match ms.parse::<u64>() {
            Ok(n) if n > 0 => Ok(Duration::from_millis(n)),
            _ => Err(format!(
                "`{text}`: expected a positive number of milliseconds"
            )),
        };
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: u64 = number.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
        format!("`{text}`: expected a positive number and s, m, h or d (e.g. 24h)")
    })?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("`{text}`: the unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(secs))
}

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
}

impl AppState {
    pub async fn health(&self) -> Health {
        let mut h = self
            .health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
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
    if args.queue_size == 0 {
        anyhow::bail!("--queue-size must be at least 1");
    }
    if args.max_connections == 0 {
        anyhow::bail!("--max-connections must be at least 1");
    }
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
    let store: SharedStore = match &args.database_url {
        Some(url) => {
            let blobs = Blobs::open(&data.join("objects"))?;
            let pg = runtime.block_on(PgStore::connect(url, blobs, !args.no_migrate))?;
            eprintln!("store: {}", pg.describe());
            Arc::new(pg)
        }
        None => Arc::new(SqliteStore::open(&data)?),
    };
    let reaped = runtime.block_on(store.reap())?;
    if !reaped.again.is_empty() || !reaped.failed.is_empty() {
        eprintln!(
            "recovered after a stop: {} job(s) queued again, {} marked failed",
            reaped.again.len(),
            reaped.failed.len()
        );
    }
    // Faces of jobs that ended (here, or before a stop) without being deleted.
    if let Err(e) = runtime.block_on(store.release_faces()) {
        eprintln!("error: cannot delete the faces of finished jobs: {e:#}");
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
        hub: Hub::new(store.clone()),
        store,
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
    });
    if state.web.is_none() {
        eprintln!(
            "note: the web app is not built (run `trunk build` or scripts/build.sh); the API works without it"
        );
    }
    let worker = worker::spawn(state.clone(), args.model.clone(), device, dtype);
    let app = routes::router(state.clone());
    let limits = listen::Limits {
        header_timeout: args.header_timeout,
        max_connections: listen::connection_cap(args.max_connections),
    };
    println!("ConsistentID is listening on {base}/ (API: {base}/v1, OpenAPI: {base}/openapi.json)");
    let shutdown_state = state.clone();
    let janitor_state = state.clone();
    runtime.block_on(async move {
        let reaper = tokio::spawn(janitor::reaper(janitor_state.clone()));
        let janitor = tokio::spawn(janitor::run(janitor_state));
        listen::serve(listener, app, limits, async move {
            shutdown_signal().await;
            eprintln!("stopping: no new jobs; the running one is finished or queued again");
            shutdown_state.draining.store(true, Ordering::SeqCst);
            shutdown_state.stop.send_replace(true);
            shutdown_state.wake.notify();
        })
        .await;
        janitor.abort();
        reaper.abort();
    });
    state.draining.store(true, Ordering::SeqCst);
    state.wake.notify();
    let _ = worker.join();
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
