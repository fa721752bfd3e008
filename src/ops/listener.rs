//! The HTTP listener: axum's router served by hyper with the limits `axum::serve`
//! lacks. A client must send a request's headers within `[http] header_timeout_secs`,
//! and a keep-alive connection idle that long between requests is closed (hyper's
//! header-read timer runs from the moment it waits for a request); and at most
//! `[http] max_connections` are open at once, so a trickling or idle client (slowloris)
//! cannot hold every socket or task.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// For a request's headers, and for the wait between requests on one connection.
    pub header_timeout: Duration,
    pub max_connections: usize,
}

/// Binds `listen` and serves `app` until `cancel`; returns the bound address.
pub async fn spawn(
    listen: SocketAddr,
    app: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    cancel: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(listen).await?;
    let local = listener.local_addr()?;
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    tokio::spawn(async move {
        let mut refused_logged = false;
        loop {
            let (stream, peer) = tokio::select! {
                _ = cancel.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: do not spin.
                        tracing::warn!(error = %e, "http accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                if !refused_logged {
                    refused_logged = true;
                    tracing::warn!(%peer, limit = limits.max_connections, "http connection limit reached: closing new connections");
                }
                drop(stream);
                continue;
            };
            refused_logged = false;
            // Handlers that limit per client (web call offers) see its address.
            let service = TowerToHyperService::new(
                app.clone()
                    .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
            );
            let cancel = cancel.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let _permit = permit;
                match tls {
                    None => serve(stream, service, limits, peer, cancel).await,
                    Some(tls) => {
                        // The handshake is held to the same limit as a request's headers.
                        match tokio::time::timeout(limits.header_timeout, tls.accept(stream)).await
                        {
                            Ok(Ok(stream)) => serve(stream, service, limits, peer, cancel).await,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "https handshake failed")
                            }
                            Err(_) => tracing::debug!(%peer, "https handshake too slow"),
                        }
                    }
                }
            });
        }
    });
    Ok(local)
}

/// Serves one connection (plain or TLS) until it ends or `cancel`.
async fn serve<S>(
    stream: S,
    service: TowerToHyperService<Router>,
    limits: Limits,
    peer: SocketAddr,
    cancel: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = http
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let ended = tokio::select! {
        r = conn.as_mut() => r,
        _ = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(%peer, error = %e, "http connection ended");
    }
}
