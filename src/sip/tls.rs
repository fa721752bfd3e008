//! SIP over TLS (`[sip] tls_listen`, `tls_cert`, `tls_key`).
//!
//! As with TCP, callers reach our own listener, whose guard checks each message
//! before the stack sees it (`transport`). Here that listener ends the caller's TLS,
//! and the relay to the stack's own TLS listener (rsipstack's, on a private loopback
//! port) is TLS again, so the stack treats the call as SIP over TLS: its Via and
//! Contact say so and requests we send in the dialog go back over the caller's
//! connection. The relay trusts exactly our certificate (pinned), nothing else.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_rustls::{TlsAcceptor, TlsConnector};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("[sip] tls_cert {path}: {message}")]
    Cert { path: String, message: String },
    #[error("[sip] tls_key {path}: {message}")]
    Key { path: String, message: String },
    #[error("[sip] tls_cert and tls_key do not fit: {0}")]
    Mismatch(rustls::Error),
}

/// Both ends of our TLS: the caller-facing acceptor, the relay's connector to the
/// stack, and the PEM the stack's listener is given.
#[derive(Clone)]
pub struct SipTls {
    pub acceptor: TlsAcceptor,
    pub relay: TlsConnector,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

/// The name the relay asks the stack's listener for (it serves one certificate to all).
pub fn relay_name() -> ServerName<'static> {
    ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into())
}

/// Loads the certificate chain and key (PEM); errors name the file.
pub fn load(cert: &Path, key: &Path) -> Result<SipTls, TlsError> {
    let cert_err = |message: String| TlsError::Cert {
        path: cert.display().to_string(),
        message,
    };
    let key_err = |message: String| TlsError::Key {
        path: key.display().to_string(),
        message,
    };
    let cert_pem = std::fs::read(cert).map_err(|e| cert_err(e.to_string()))?;
    let key_pem = std::fs::read(key).map_err(|e| key_err(e.to_string()))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    let Some(leaf) = chain.first().cloned() else {
        return Err(cert_err("no certificate in it".into()));
    };
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| key_err(e.to_string()))?;
    if matches!(private, PrivateKeyDer::Sec1(_)) {
        // The stack's listener reads PKCS#8 and PKCS#1 only.
        return Err(key_err(
            "an EC key in SEC1 form: convert it (openssl pkcs8 -topk8 -nocrypt)".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Mismatch)?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(TlsError::Mismatch)?;
    let client = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Mismatch)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned { leaf, provider }))
        .with_no_client_auth();
    Ok(SipTls {
        acceptor: TlsAcceptor::from(Arc::new(server)),
        relay: TlsConnector::from(Arc::new(client)),
        cert_pem,
        key_pem,
    })
}

/// Accepts only the one certificate the stack was given (the relay's hop is on
/// loopback, between two parts of this process).
#[derive(Debug)]
struct Pinned {
    leaf: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.leaf.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
