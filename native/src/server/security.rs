//! Security defaults: a per-address rate limit on POST routes, the Content-Security-Policy
//! (allowing the app's wasm and, by hash, its inline scripts) and the other response headers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::AppState;
use super::problem::ApiError;

/// A token bucket per client address: `per_minute` requests, refilled continuously (0: no
/// limit).
pub struct RateLimiter {
    per_minute: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: f64::from(per_minute),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok` if `ip` may send one more request, else the seconds to wait.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        if self.per_minute == 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if buckets.len() > 100_000 {
            // Bounded memory: forget addresses whose buckets are full again.
            let full = self.per_minute;
            let rate = full / 60.0;
            buckets.retain(|_, (t, at)| *t + at.elapsed().as_secs_f64() * rate < full);
        }
        let (tokens, at) = buckets.entry(ip).or_insert((self.per_minute, now));
        *tokens =
            (*tokens + at.elapsed().as_secs_f64() * self.per_minute / 60.0).min(self.per_minute);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) * 60.0 / self.per_minute).ceil() as u64)
        }
    }
}

/// The client's address: the connection's, or, when that is a `--trusted-proxy`, the last
/// address in `X-Forwarded-For` that is not one (what the proxy saw).
pub fn client_ip(trusted: &[IpAddr], peer: IpAddr, headers: &axum::http::HeaderMap) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded
        .into_iter()
        .rev()
        .find(|a| !trusted.contains(a))
        .unwrap_or(peer)
}

/// Rate-limits POST (and DELETE) requests per client address.
pub async fn rate_limit(
    State(state): State<std::sync::Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let ip = client_ip(&state.args.trusted_proxies, addr.ip(), request.headers());
    let limit = state.args.rate_limit;
    if limit > 0 && matches!(*request.method(), Method::POST | Method::DELETE) {
        // The store's buckets when it keeps them (shared by every API process), else ours.
        let verdict = match state.store.take_token(&ip.to_string(), limit).await {
            Ok(Some(verdict)) => verdict,
            Ok(None) => state.limiter.check(ip),
            Err(e) => return ApiError::from(e).into_response(),
        };
        if let Err(wait) = verdict {
            return ApiError::too_many("too many requests from your address; slow down", wait)
                .into_response();
        }
    }
    next.run(request).await
}

/// The CSP: same-origin everything, wasm compilation allowed, the app's inline scripts by
/// hash, no framing.
pub fn content_security_policy(web: Option<&Path>) -> String {
    let hashes: Vec<String> = web
        .and_then(|d| std::fs::read_to_string(d.join("index.html")).ok())
        .map(|html| inline_scripts(&html))
        .unwrap_or_default()
        .iter()
        .map(|s| {
            format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s.as_bytes()))
            )
        })
        .collect();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{}; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
        hashes.iter().map(|h| format!(" {h}")).collect::<String>()
    )
}

/// The bodies of `<script>` elements without `src`.
fn inline_scripts(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let after = &rest[start..];
        let Some(open_end) = after.find('>') else {
            break;
        };
        let tag = &after[..open_end];
        let body_start = open_end + 1;
        let Some(close) = after[body_start..].find("</script>") else {
            break;
        };
        if !tag.contains(" src=") {
            out.push(after[body_start..body_start + close].to_string());
        }
        rest = &after[body_start + close..];
    }
    out
}

/// Adds the security headers to every response.
pub async fn headers(
    State(state): State<std::sync::Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    if let Ok(csp) = HeaderValue::from_str(&state.csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_refuses_after_its_budget() {
        let limiter = RateLimiter::new(3);
        let ip: IpAddr = [127, 0, 0, 1].into();
        assert!((0..3).all(|_| limiter.check(ip).is_ok()));
        assert!(limiter.check(ip).is_err());
        assert!(limiter.check([127, 0, 0, 2].into()).is_ok());
        let off = RateLimiter::new(0);
        assert!((0..1000).all(|_| off.check(ip).is_ok()));
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let proxy: IpAddr = [10, 0, 0, 1].into();
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("x-forwarded-for", "1.2.3.4, 5.6.7.8".parse().unwrap());
        let peer: IpAddr = [9, 9, 9, 9].into();
        assert_eq!(client_ip(&[], peer, &headers), peer);
        assert_eq!(client_ip(&[proxy], peer, &headers), peer);
        assert_eq!(
            client_ip(&[proxy], proxy, &headers),
            IpAddr::from([5, 6, 7, 8])
        );
        assert_eq!(
            client_ip(&[proxy], proxy, &axum::http::HeaderMap::new()),
            proxy
        );
    }

    #[test]
    fn inline_scripts_are_found() {
        let html = r#"<script type="module">import x;</script><script src="/a.js"></script>"#;
        assert_eq!(inline_scripts(html), ["import x;"]);
    }
}
