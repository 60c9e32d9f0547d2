//! The accept loop: HTTP/1.1 connections with a deadline for each request's head (which also
//! closes a connection left idle between requests), a cap on open connections, and a graceful
//! stop. A silent or slow client holds a connection for at most the timeout, and a crowd of
//! them cannot take the descriptors the host needs for its own files.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// How long open connections may take to finish once the host stops.
const DRAIN: Duration = Duration::from_secs(10);

/// The connection limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// A request's head must arrive within this, and an idle connection closes after it.
    pub header_timeout: Duration,
    /// Open connections at most; more are closed as soon as they are accepted.
    pub max_connections: usize,
}

/// `requested`, lowered so that the host keeps 64 descriptors of its own (database, files,
/// models) under the process's limit on open files.
pub fn connection_cap(requested: usize) -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    let room = usize::try_from(soft.saturating_sub(64)).unwrap_or(usize::MAX);
    requested.min(room).max(1)
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open connections finish
/// (at most [`DRAIN`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, addr) = match accepted {
            Ok(a) => a,
            Err(_) => {
                // Out of descriptors, or a connection reset before it was accepted: wait a
                // moment rather than spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(addr));
            app.clone().oneshot(request)
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => {}
    }
}
