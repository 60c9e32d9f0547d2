//! The store on PostgreSQL (`serve --database-url`), for several API and worker processes: the
//! queue is claimed with `FOR UPDATE SKIP LOCKED` under a lease that the running worker renews,
//! every write about a running job is fenced by (worker, attempt), and a reaper gives the jobs
//! of silent workers to others. Times are the database's clock. The bytes of files are in a
//! [`Blobs`] folder, one object per file (no sharing: deleting one is immediate and final).

mod as_store;
mod blobs;
mod bus;
mod files;
mod limits;
mod objects;
mod queue;
mod workers;

pub use blobs::Blobs;
pub use bus::PgBus;
pub use objects::Unavailable;

use std::time::Duration;

use anyhow::{Context, Result};
use consistentid_core::api::Status;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{Row, migrate::MigrateError};

use super::Record;

/// The schema, embedded and checksummed; applied under sqlx's advisory lock so that processes
/// starting together migrate once.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Connections per process (the worker holds one while a job runs; handlers share the rest).
const POOL: u32 = 8;
/// A request waits this long for a connection before it fails (503) rather than hangs.
const ACQUIRE: Duration = Duration::from_secs(5);

/// The store on PostgreSQL.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    blobs: Blobs,
    /// The URL without its password, for messages.
    shown: String,
    /// Runs a job newly queued here gets (kept in its row: every reaper honours it).
    max_attempts: u32,
}

/// A database URL with its password (if any) elided, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(a database URL)".into();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some((auth, host)) => (Some(auth), host),
        None => (None, rest),
    };
    let host = host.split('?').next().unwrap_or(host);
    match auth {
        Some(auth) => {
            let user = auth.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}")
        }
        None => format!("{scheme}://{host}"),
    }
}

/// Brings the schema up to date under sqlx's advisory lock (processes starting together
/// migrate once; a database newer than this binary is refused).
async fn migrate(pool: &PgPool, shown: &str) -> Result<()> {
    MIGRATOR.run(pool).await.map_err(|e| match e {
        MigrateError::VersionMissing(v) => {
            anyhow::anyhow!(
                "the database {shown} was written by a newer consistentid (migration {v})"
            )
        }
        e => anyhow::Error::new(e).context(format!("cannot migrate the database {shown}")),
    })
}

/// `consistentid migrate`: the schema brought up to date; the versions applied, oldest first
/// (as (version, description)).
pub async fn migrate_only(url: &str) -> Result<Vec<(i64, String)>> {
    let shown = redact(url);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(ACQUIRE)
        .connect(url)
        .await
        .with_context(|| format!("cannot connect to the database {shown}"))?;
    migrate(&pool, &shown).await?;
    let rows = sqlx::query(
        "SELECT version, description FROM _sqlx_migrations WHERE success ORDER BY version",
    )
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

impl PgStore {
    /// Connects, then brings the schema up to date (unless `migrate` is false).
    pub async fn connect(url: &str, blobs: Blobs, migrate: bool) -> Result<Self> {
        let shown = redact(url);
        let pool = PgPoolOptions::new()
            .max_connections(POOL)
            .acquire_timeout(ACQUIRE)
            .connect(url)
            .await
            .with_context(|| format!("cannot connect to the database {shown}"))?;
        if migrate {
            self::migrate(&pool, &shown).await?;
        }
        Ok(Self {
            pool,
            blobs,
            shown,
            max_attempts: 2,
        })
    }

    /// Jobs queued from now on fail after `n` lost runs (default 2).
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn shown(&self) -> &str {
        &self.shown
    }
}

/// A prediction's columns, times as seconds since the epoch (as the embedded store keeps them).
macro_rules! record_columns {
    () => {
        "seq, id, owner, model, version, status, input, face_file, keep_face, outputs, error, logs, metrics, \
         extract(epoch from created_at)::float8 AS created_at, \
         extract(epoch from started_at)::float8 AS started_at, \
         extract(epoch from completed_at)::float8 AS completed_at, \
         attempts, output_metadata, candidates"
    };
}
pub(crate) use record_columns;

/// A running attempt's row: `$1` the id, `$2` the worker, `$3` the attempt.
macro_rules! fenced {
    () => {
        "id = $1 AND worker_id = $2 AND attempts = $3 AND status = 'processing'"
    };
}
pub(crate) use fenced;

fn json<T: serde::de::DeserializeOwned + Default>(row: &PgRow, column: &str) -> Result<T> {
    let value: serde_json::Value = row.try_get(column)?;
    Ok(serde_json::from_value(value).unwrap_or_default())
}

fn record(row: &PgRow) -> Result<Record> {
    let status: String = row.try_get("status")?;
    let candidates: Option<serde_json::Value> = row.try_get("candidates")?;
    Ok(Record {
        seq: row.try_get("seq")?,
        id: row.try_get("id")?,
        owner: row.try_get("owner")?,
        model: row.try_get("model")?,
        version: row.try_get("version")?,
        status: Status::parse(&status).unwrap_or(Status::Failed),
        input: json(row, "input")?,
        face_file: row.try_get("face_file")?,
        keep_face: row.try_get("keep_face")?,
        outputs: json(row, "outputs")?,
        output_metadata: json(row, "output_metadata")?,
        candidates: candidates.and_then(|v| serde_json::from_value(v).ok()),
        error: row.try_get("error")?,
        logs: row.try_get("logs")?,
        metrics: json(row, "metrics")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        completed_at: row.try_get("completed_at")?,
        attempts: row.try_get::<i32, _>("attempts")?.max(0) as u32,
    })
}

/// Whether an error is PostgreSQL's disk being full (SQLSTATE 53100).
pub fn is_disk_full(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        matches!(cause.downcast_ref::<sqlx::Error>(),
            Some(sqlx::Error::Database(e)) if e.code().as_deref() == Some("53100"))
    })
}

/// Whether an error is PostgreSQL out of reach: no connection within the pool's wait, a
/// connection lost, or the server shutting down or starting (SQLSTATE classes 08 and 57P).
pub fn is_unreachable(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| match cause.downcast_ref::<sqlx::Error>() {
            Some(
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::WorkerCrashed,
            ) => true,
            Some(sqlx::Error::Database(e)) => e
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("postgres://cid:s3cret@db.local:5432/cid?sslmode=require"),
            "postgres://cid@db.local:5432/cid"
        );
        assert_eq!(
            redact("postgres://127.0.0.1/cid"),
            "postgres://127.0.0.1/cid"
        );
        assert_eq!(redact("not a url"), "(a database URL)");
        assert!(!redact("postgres://u:p@ss@h/d").contains("ss"));
    }
}
