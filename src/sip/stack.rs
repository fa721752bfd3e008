//! Starting rsipstack on our guarded sockets: one endpoint, one dialog layer, used by
//! the gateway (as UAS) and by the test caller (as UAC).

use std::net::SocketAddr;
use std::sync::Arc;

use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::transaction::TransactionReceiver;
use rsipstack::transport::tls::{TlsConfig, TlsListenerConnection};
use rsipstack::transport::{udp::UdpConnection, TcpListenerConnection, TransportLayer};
use rsipstack::EndpointBuilder;
use tokio_util::sync::CancellationToken;

use super::tls::SipTls;
use super::transport::{serve_tcp, Front, GuardCounters, GuardedUdp, RelayedPeers, TcpLimits};

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("cannot bind SIP {transport} on {addr}: {source}")]
    Bind {
        transport: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("SIP stack: {0}")]
    Stack(#[from] rsipstack::Error),
}

pub struct Stack {
    pub dialogs: Arc<DialogLayer>,
    /// Our address as it appears in Contact.
    pub contact: rsipstack::sip::Uri,
    /// Contact for dialogs over TLS (`;transport=tls` on the TLS port).
    tls_contact: Option<rsipstack::sip::Uri>,
    pub local: SocketAddr,
    pub guard: Arc<GuardCounters>,
    relayed: Arc<RelayedPeers>,
}

impl Stack {
    /// Where a request came from: the datagram's source, or the far end of the TCP
    /// connection our relay accepted. None when that cannot be told (never trusted).
    pub fn source(
        &self,
        tx: &rsipstack::transaction::transaction::Transaction,
    ) -> Option<SocketAddr> {
        let conn = tx.connection.as_ref()?;
        let seen = conn.get_remote_addr()?.get_socketaddr().ok()?;
        match conn.transport() {
            rsipstack::sip::transport::Transport::Udp => Some(seen),
            _ => self.relayed.peer(seen),
        }
    }

    /// The request came over SIP/TLS.
    pub fn over_tls(&self, tx: &rsipstack::transaction::transaction::Transaction) -> bool {
        tx.connection.as_ref().map(|c| c.transport())
            == Some(rsipstack::sip::transport::Transport::Tls)
    }

    /// Our Contact for a dialog the request starts: on TLS, the TLS listener's.
    pub fn contact_for(
        &self,
        tx: &rsipstack::transaction::transaction::Transaction,
    ) -> rsipstack::sip::Uri {
        match &self.tls_contact {
            Some(tls) if self.over_tls(tx) => tls.clone(),
            _ => self.contact.clone(),
        }
    }
}

/// SIP over TLS: where, with which certificate, under which stream limits.
pub struct TlsListen {
    pub listen: SocketAddr,
    pub tls: SipTls,
    pub limits: TcpLimits,
}

pub struct Started {
    pub stack: Stack,
    pub incoming: TransactionReceiver,
}

/// Binds UDP (and TCP, if given its limits) on `listen`, and TLS if given, and runs
/// the endpoint until `cancel`.
pub async fn start(
    listen: SocketAddr,
    tcp: Option<TcpLimits>,
    tls: Option<TlsListen>,
    cancel: CancellationToken,
) -> Result<Started, StackError> {
    let guard = Arc::new(GuardCounters::default());
    let relayed = Arc::new(RelayedPeers::default());
    let transport_layer = TransportLayer::new(cancel.clone());
    let bind_err = |transport, addr| {
        move |source| StackError::Bind {
            transport,
            addr,
            source,
        }
    };

    let udp = tokio::net::UdpSocket::bind(listen)
        .await
        .map_err(bind_err("UDP", listen))?;
    let local = udp.local_addr().map_err(bind_err("UDP", listen))?;
    let conn = UdpConnection::from_socket(
        Arc::new(GuardedUdp::new(udp, guard.clone())),
        None,
        Some(cancel.child_token()),
    )
    .await?;
    transport_layer.add_transport(conn.into());

    if let Some(limits) = tcp {
        let public = SocketAddr::new(local.ip(), local.port());
        let front = tokio::net::TcpListener::bind(public)
            .await
            .map_err(bind_err("TCP", public))?;
        // The stack binds its own listener; find it a free private port first.
        let private = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(bind_err("TCP", public))?;
        let inner = TcpListenerConnection::new(private, Some(public)).await?;
        transport_layer.add_transport(inner.into());
        tokio::spawn(serve_tcp(
            front,
            Front::Tcp,
            private,
            guard.clone(),
            limits,
            relayed.clone(),
            cancel.child_token(),
        ));
    }

    let mut tls_contact = None;
    if let Some(TlsListen {
        listen: public,
        tls,
        limits,
    }) = tls
    {
        let front = tokio::net::TcpListener::bind(public)
            .await
            .map_err(bind_err("TLS", public))?;
        let public = front.local_addr().map_err(bind_err("TLS", public))?;
        let private = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(bind_err("TLS", public))?;
        let config = TlsConfig {
            cert: Some(tls.cert_pem.clone()),
            key: Some(tls.key_pem.clone()),
            ..TlsConfig::default()
        };
        let inner = TlsListenerConnection::new(private, Some(public), config).await?;
        transport_layer.add_transport(inner.into());
        tokio::spawn(serve_tcp(
            front,
            Front::Tls(tls),
            private,
            guard.clone(),
            limits,
            relayed.clone(),
            cancel.child_token(),
        ));
        tls_contact = Some(rsipstack::sip::Uri {
            scheme: Some(rsipstack::sip::Scheme::Sip),
            auth: None,
            host_with_port: public.into(),
            params: vec![rsipstack::sip::Param::Transport(
                rsipstack::sip::transport::Transport::Tls,
            )],
            headers: vec![],
        });
    }

    let endpoint = EndpointBuilder::new()
        .with_cancel_token(cancel.clone())
        .with_transport_layer(transport_layer)
        .with_user_agent(super::AGENT)
        .build();
    let incoming = endpoint.incoming_transactions()?;
    let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
    let contact = rsipstack::sip::Uri {
        scheme: Some(rsipstack::sip::Scheme::Sip),
        auth: None,
        host_with_port: local.into(),
        params: vec![],
        headers: vec![],
    };
    tokio::spawn(async move {
        endpoint.serve().await;
    });
    Ok(Started {
        stack: Stack {
            dialogs,
            contact,
            tls_contact,
            local,
            guard,
            relayed,
        },
        incoming,
    })
}
