//! HTTPS for the staff pages when `[http] tls_cert` and `tls_key` are set (PEM files):
//! the login cookie and the dashboard's call records then never cross the network in
//! clear. rustls (already in the build for outgoing HTTPS) serves it.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Loads the certificate chain and key; errors name the file.
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| anyhow::anyhow!("[http] tls_cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("[http] tls_cert {}: no certificate in it", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("[http] tls_key {}: {e}", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| anyhow::anyhow!("[http] tls_cert and tls_key do not fit: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
