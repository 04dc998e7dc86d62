//! TLS for the PostgreSQL state, when the URL asks for it (`sslmode=require`
//! or `prefer`): rustls with the `ring` provider, verifying the server's
//! certificate and host name against the machine's trusted roots.

use std::sync::Arc;

use postgres_rustls::MakeTlsConnector;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// A connector trusting the machine's root certificates.
pub(super) fn connector() -> Result<MakeTlsConnector, String> {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for certificate in found.certs {
        // A certificate rustls cannot use is skipped, as a browser would.
        let _ = roots.add(certificate);
    }
    if roots.is_empty() {
        return Err("TLS was asked for (`sslmode`) but this machine has no trusted root certificates".to_owned());
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("cannot set up TLS: {error}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    postgres_rustls::set_postgresql_alpn(&mut config);
    Ok(MakeTlsConnector::new(tokio_rustls::TlsConnector::from(Arc::new(
        config,
    ))))
}
