//! The gateway's SIP sockets, with `guard` in front of the stack.
//!
//! UDP: rsipstack accepts any socket through its `UdpSocket` seam, so ours checks each
//! datagram before the stack's read returns it. TCP: the stack's TCP type is tied to
//! its own listener, so we accept connections ourselves, frame and check each message,
//! and relay what passes to the stack's listener on a private loopback port. (The stack
//! therefore sees loopback as the TCP peer address, so [`RelayedPeers`] remembers the
//! real one; responses still go back on the caller's own connection.) TLS is the
//! same with TLS on both hops (`tls`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::guard::{self, Framing, Verdict};
use super::tls::{self, SipTls};

/// Messages refused or dropped by the guard; registered as metrics.
#[derive(Debug, Default)]
pub struct GuardCounters {
    pub rejected: Counter,
    pub dropped: Counter,
}

impl GuardCounters {
    fn note(&self, v: &Verdict, peer: SocketAddr, transport: &str) {
        match v {
            Verdict::Reply { status, reason, .. } => {
                self.rejected.inc();
                tracing::info!(%peer, transport, status, reason = %reason, "refused malformed SIP request");
            }
            Verdict::Drop(why) => {
                self.dropped.inc();
                tracing::info!(%peer, transport, why = %why, "dropped unanswerable SIP message");
            }
            Verdict::Pass => {}
        }
    }
}

/// The real peer of each relayed TCP connection, by the relay's own address (which is
/// what the stack sees as the peer).
#[derive(Debug, Default)]
pub struct RelayedPeers(std::sync::Mutex<HashMap<SocketAddr, SocketAddr>>);

impl RelayedPeers {
    /// The real peer behind the address the stack saw; None if it is not a relay.
    pub fn peer(&self, seen: SocketAddr) -> Option<SocketAddr> {
        self.lock().get(&seen).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, SocketAddr>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Forgets a relay's peer when the relay ends.
struct Relayed<'a> {
    peers: &'a RelayedPeers,
    seen: SocketAddr,
}

impl Drop for Relayed<'_> {
    fn drop(&mut self) {
        self.peers.lock().remove(&self.seen);
    }
}

pub struct GuardedUdp {
    socket: UdpSocket,
    counters: Arc<GuardCounters>,
}

impl GuardedUdp {
    pub fn new(socket: UdpSocket, counters: Arc<GuardCounters>) -> Self {
        GuardedUdp { socket, counters }
    }
}

#[async_trait::async_trait]
impl rsipstack::platform::net::UdpSocket for GuardedUdp {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        // Read more than the stack would, so an oversized message is seen whole and refused.
        let mut big = vec![0u8; 65536];
        loop {
            let (n, peer) = self.socket.recv_from(&mut big).await?;
            let packet = &big[..n];
            if packet.iter().all(u8::is_ascii_whitespace) {
                // Keepalives: the stack answers them itself.
                let k = n.min(buf.len());
                buf[..k].copy_from_slice(&packet[..k]);
                return Ok((k, peer));
            }
            let verdict = guard::check(packet);
            self.counters.note(&verdict, peer, "udp");
            match verdict {
                Verdict::Pass if n <= buf.len() => {
                    buf[..n].copy_from_slice(packet);
                    return Ok((n, peer));
                }
                Verdict::Pass => {}
                Verdict::Reply { response, .. } => {
                    self.socket.send_to(&response, peer).await.ok();
                }
                Verdict::Drop(_) => {}
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        Ok(self.socket.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
}

/// Bounds on the SIP TCP listener: each connection costs three file descriptors (the
/// caller's, and both ends of the relay to the stack) and the stack's buffers.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    /// Connections open at once; one more is closed as soon as it is accepted.
    pub max_connections: usize,
    /// Closes a connection that brings no complete message or keepalive for this long
    /// (a silent or trickling peer).
    pub idle: Duration,
}

/// How long the accept loop rests after a failed accept (out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What a stream listener speaks to callers, and so to the stack behind it.
#[derive(Clone)]
pub enum Front {
    Tcp,
    Tls(SipTls),
}

impl Front {
    fn name(&self) -> &'static str {
        match self {
            Front::Tcp => "tcp",
            Front::Tls(_) => "tls",
        }
    }
}

/// Accepts TCP (or TLS) on the public address and relays checked messages to the stack.
pub async fn serve_tcp(
    listener: TcpListener,
    front: Front,
    stack: SocketAddr,
    counters: Arc<GuardCounters>,
    limits: TcpLimits,
    peers: Arc<RelayedPeers>,
    cancel: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((conn, peer)) => {
                let transport = front.name();
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, transport, limit = limits.max_connections, "SIP connection limit reached: closed");
                    continue;
                };
                let link = Link {
                    peer,
                    transport,
                    counters: counters.clone(),
                    idle: limits.idle,
                    peers: peers.clone(),
                };
                let front = front.clone();
                let cancel = cancel.child_token();
                tokio::spawn(async move {
                    let _slot = slot;
                    if let Err(e) = open(conn, front, stack, link, cancel).await {
                        tracing::debug!(%peer, transport, error = %e, "sip connection ended");
                    }
                });
            }
            Err(e) => {
                // EMFILE/ENFILE leave the connection in the backlog: accepting again at
                // once would spin. Rest, so calls ending can free descriptors.
                tracing::warn!(error = %e, "sip tcp accept failed");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                }
            }
        }
    }
}

/// One caller's connection, as the relay sees it.
struct Link {
    peer: SocketAddr,
    transport: &'static str,
    counters: Arc<GuardCounters>,
    idle: Duration,
    peers: Arc<RelayedPeers>,
}

/// Opens the hop to the stack (after the caller's TLS handshake, if TLS) and relays.
async fn open(
    conn: TcpStream,
    front: Front,
    stack: SocketAddr,
    link: Link,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    match front {
        Front::Tcp => {
            let inner = TcpStream::connect(stack).await?;
            let seen = inner.local_addr()?;
            relay(conn, inner, seen, link, cancel).await
        }
        Front::Tls(tls) => {
            // A peer that never finishes its handshake holds a slot no longer than idle.
            let handshake = tokio::time::timeout(link.idle, tls.acceptor.accept(conn));
            let conn = handshake.await.map_err(std::io::Error::other)??;
            let inner = TcpStream::connect(stack).await?;
            let seen = inner.local_addr()?;
            let inner = tls.relay.connect(tls::relay_name(), inner).await?;
            relay(conn, inner, seen, link, cancel).await
        }
    }
}

/// Relays between the caller's stream and the stack's, whose end of the hop is `seen`.
async fn relay<P, S>(
    conn: P,
    inner: S,
    seen: SocketAddr,
    link: Link,
    cancel: CancellationToken,
) -> std::io::Result<()>
where
    P: AsyncRead + AsyncWrite + Send + 'static,
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let Link {
        peer,
        transport,
        counters,
        idle,
        peers,
    } = link;
    peers.lock().insert(seen, peer);
    let _forget = Relayed {
        peers: &peers,
        seen,
    };
    let (mut peer_rd, peer_wr) = tokio::io::split(conn);
    let (mut inner_rd, mut inner_wr) = tokio::io::split(inner);
    let peer_wr = Arc::new(Mutex::new(peer_wr));

    let back = {
        let peer_wr = peer_wr.clone();
        async move {
            let mut buf = vec![0u8; 16384];
            loop {
                let n = inner_rd.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<(), std::io::Error>(());
                }
                send(&mut *peer_wr.lock().await, &buf[..n]).await?;
            }
        }
    };
    let forth = async move {
        let mut pending: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 16384];
        // Only whole messages and keepalives move it: trickled bytes do not.
        let mut deadline = Instant::now() + idle;
        loop {
            let Ok(read) = tokio::time::timeout_at(deadline, peer_rd.read(&mut buf)).await else {
                tracing::debug!(%peer, transport, "sip connection idle: closed");
                return Ok(());
            };
            let n = read?;
            if n == 0 {
                return Ok::<(), std::io::Error>(());
            }
            pending.extend_from_slice(&buf[..n]);
            loop {
                match guard::frame(&pending) {
                    Framing::Incomplete => break,
                    Framing::Keepalive(k) => {
                        send(&mut inner_wr, &pending[..k]).await?;
                        pending.drain(..k);
                        deadline = Instant::now() + idle;
                    }
                    Framing::Message(len) => {
                        deadline = Instant::now() + idle;
                        let verdict = guard::check_stream(&pending[..len]);
                        counters.note(&verdict, peer, transport);
                        match verdict {
                            Verdict::Pass => send(&mut inner_wr, &pending[..len]).await?,
                            Verdict::Reply { response, .. } => {
                                send(&mut *peer_wr.lock().await, &response).await?
                            }
                            Verdict::Drop(_) => {}
                        }
                        pending.drain(..len);
                    }
                    Framing::Broken(verdict) => {
                        counters.note(&verdict, peer, transport);
                        if let Verdict::Reply { response, .. } = verdict {
                            send(&mut *peer_wr.lock().await, &response).await?;
                        }
                        // Without a trustworthy length the stream cannot be resynchronised.
                        return Ok(());
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = cancel.cancelled() => Ok(()),
        r = back => r,
        r = forth => r,
    }
}

/// Writes and flushes: a TLS stream holds written records until flushed.
async fn send<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(bytes).await?;
    w.flush().await
}
