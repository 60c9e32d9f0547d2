//! `--object-store URL`: an S3-compatible bucket (S3, R2, SeaweedFS, Garage, MinIO, GCS's S3
//! interoperability…) as `s3://bucket/prefix?endpoint=http://127.0.0.1:8333&region=us-east-1`.
//! Credentials come from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, …) or
//! the URL's query, and are never printed. `memory://` keeps objects in this process (tests).
//! Requests are retried a few times within a bound, so that a bucket that is away shows as
//! unavailable (503, a job queued again) within seconds rather than minutes.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

/// Query keys that are not secrets (shown in messages); every other key's value is hidden.
const SHOWN: [&str; 4] = ["endpoint", "region", "aws_endpoint", "aws_region"];

/// The object store cannot be reached (or refused a request it should take): requests get
/// 503 with `Retry-After`, a job is queued again rather than failed.
#[derive(Debug)]
pub struct Unavailable(String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unavailable {}

impl Unavailable {
    pub fn wrap(e: object_store::Error, what: &str) -> anyhow::Error {
        anyhow::Error::new(Unavailable(format!(
            "{what}: the object store did not answer as expected: {e}"
        )))
    }
}

/// The store of a URL, and the URL as shown (no credentials).
pub fn parse_url(text: &str) -> Result<(Arc<dyn ObjectStore>, String)> {
    if text == "memory://" {
        return Ok((
            Arc::new(object_store::memory::InMemory::new()),
            "memory://".into(),
        ));
    }
    // HTTPS to the bucket with the same TLS stack as the database (ring); installed once.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = url::Url::parse(text)
        .with_context(|| "--object-store: expected a URL such as s3://bucket/prefix?endpoint=…")?;
    if url.scheme() != "s3" {
        anyhow::bail!(
            "--object-store: only s3:// URLs are supported (S3 and S3-compatible stores), not {}://",
            url.scheme()
        );
    }
    let bucket = url
        .host_str()
        .filter(|b| !b.is_empty())
        .context("--object-store: the URL names no bucket (s3://BUCKET/prefix)")?
        .to_string();
    let prefix = url.path().trim_matches('/').to_string();
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(&bucket)
        // One object at a time: plain DELETE works on every S3-compatible store (moto's
        // DeleteObjects answered 200 and kept the object).
        .with_config(AmazonS3ConfigKey::DisableBulkDelete, "true")
        .with_retry(RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: 4,
            retry_timeout: Duration::from_secs(10),
        })
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(Duration::from_secs(3))
                .with_timeout(Duration::from_secs(30)),
        );
    let mut shown_query = Vec::new();
    for (key, value) in url.query_pairs() {
        let (key, value) = (key.to_string(), value.to_string());
        if key == "allow_http" || key == "aws_allow_http" {
            let allow = value.parse().with_context(|| {
                format!("--object-store: {key} must be true or false, not `{value}`")
            })?;
            builder = builder.with_allow_http(allow);
            shown_query.push(format!("{key}={value}"));
            continue;
        }
        let config: AmazonS3ConfigKey = key
            .parse()
            .map_err(|_| anyhow::anyhow!("--object-store: unknown setting `{key}`"))?;
        if config == AmazonS3ConfigKey::Endpoint && value.starts_with("http://") {
            // A plain-HTTP endpoint (a store on this machine or network) is what was asked for.
            builder = builder.with_allow_http(true);
        }
        builder = builder.with_config(config, &value);
        let shown = if SHOWN.contains(&key.as_str()) {
            value
        } else {
            "…".into()
        };
        shown_query.push(format!("{key}={shown}"));
    }
    let store = builder
        .build()
        .context("--object-store: cannot use this bucket")?;
    let mut shown = format!("s3://{bucket}/{prefix}");
    if !shown_query.is_empty() {
        shown = format!("{shown}?{}", shown_query.join("&"));
    }
    let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
        Arc::new(store)
    } else {
        Arc::new(PrefixStore::new(store, prefix.as_str()))
    };
    Ok((store, shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_secrets_never_shown() {
        let (_, shown) = parse_url(
            "s3://cid/demo/a?endpoint=http://127.0.0.1:9000&region=us-east-1&secret_access_key=hunter2&access_key_id=AK",
        )
        .unwrap();
        assert_eq!(
            shown,
            "s3://cid/demo/a?endpoint=http://127.0.0.1:9000&region=us-east-1&secret_access_key=…&access_key_id=…"
        );
        let err = |url: &str| format!("{:#}", parse_url(url).unwrap_err());
        assert!(
            err("gs://bucket").contains("only s3://"),
            "{}",
            err("gs://bucket")
        );
        assert!(err("s3://b?colour=blue").contains("unknown setting `colour`"));
        assert!(err("s3://b?allow_http=maybe").contains("true or false"));
        assert!(err("not a url").contains("expected a URL"));
    }
}
