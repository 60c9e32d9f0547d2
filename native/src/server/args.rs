//! `serve`'s options: the host's limits, its store, and the role this process plays.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::logs::LogFormat;

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
    /// Keep uploads and images in an S3-compatible bucket (with --database-url), e.g.
    /// s3://bucket/prefix?endpoint=http://127.0.0.1:8333&region=us-east-1; credentials from
    /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, never printed. Default: --data/objects.
    #[arg(
        long,
        env = "CONSISTENTID_OBJECT_STORE",
        value_name = "URL",
        hide_env_values = true
    )]
    pub object_store: Option<String>,
    /// Do not bring the database's schema up to date at start (another process does).
    #[arg(long)]
    pub no_migrate: bool,
    /// A running job's lease: a worker silent this long has stopped, and its job goes to
    /// another (renewed every --heartbeat).
    #[arg(long, value_parser = parse_duration, default_value = "15s")]
    pub lease: Duration,
    /// How often a worker renews its running job's lease and tells it is alive (default: a
    /// third of --lease).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub heartbeat: Option<Duration>,
    /// Runs a job gets when its workers stop under it (a crash, a lost machine): it fails
    /// after this many (each new job keeps the value it was queued with).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub max_attempts: u32,
    /// This process's worker name on the jobs it runs (default: pid<N>-<random>).
    #[arg(long, value_name = "ID")]
    pub worker_id: Option<String>,
    /// What this process does: `all` (the API and a worker: one machine), `api` (HTTP only,
    /// no models loaded) or `worker` (loads the models and runs jobs; its port answers only
    /// /v1/health and /metrics). `api` and `worker` share their queue through --database-url.
    #[arg(long, value_enum, default_value_t = Role::All)]
    pub role: Role,
    /// The log on stderr: `text` for people, `json` (one object a line) for a log pipeline.
    /// `CONSISTENTID_LOG` filters it (e.g. `debug`, `warn`).
    #[arg(long, value_enum, env = "CONSISTENTID_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The part a `serve` process plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Role {
    All,
    Api,
    Worker,
}

impl Role {
    /// Whether it serves the API (and so the janitor's sweeps).
    pub fn serves_api(self) -> bool {
        self != Role::Worker
    }

    /// Whether it loads the models and runs jobs.
    pub fn runs_jobs(self) -> bool {
        self != Role::Api
    }
}

impl ServeArgs {
    /// How often the running job's lease is renewed and the worker's presence written.
    pub fn heartbeat_every(&self) -> Duration {
        self.heartbeat
            .unwrap_or(self.lease / 3)
            .max(Duration::from_millis(50))
    }

    /// Options that cannot work together, before anything starts.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.queue_size == 0 {
            anyhow::bail!("--queue-size must be at least 1");
        }
        if self.max_connections == 0 {
            anyhow::bail!("--max-connections must be at least 1");
        }
        if self.heartbeat_every() >= self.lease {
            anyhow::bail!(
                "--heartbeat must be shorter than --lease (a lease would run out between two beats)"
            );
        }
        if self.object_store.is_some() && self.database_url.is_none() {
            anyhow::bail!(
                "--object-store goes with --database-url (the embedded store keeps its files in --data)"
            );
        }
        if self.role != Role::All && self.database_url.is_none() {
            anyhow::bail!(
                "--role {} shares its queue with the other processes through PostgreSQL: pass --database-url (or set CONSISTENTID_DATABASE_URL)",
                if self.role == Role::Api {
                    "api"
                } else {
                    "worker"
                }
            );
        }
        Ok(())
    }
}

/// `500ms`, `90s`, `30m`, `24h`, `7d`.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
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
