//! The listener's optional TLS: a PEM certificate chain and private key loaded into a rustls
//! server configuration (the *ring* provider, as the vCenter client uses), checked before
//! the listener opens so a wrong file is a clear start-up error rather than a failed
//! handshake on the first request.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::AdminError;

/// A TLS acceptor for `cert` (PEM, the server certificate first, then any intermediates)
/// and `key` (PEM, PKCS#8, PKCS#1 or SEC1), or a sentence saying which file is wrong and
/// what to do about it.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, AdminError> {
    let chain = certificates(cert)?;
    let key_der = private_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| AdminError::Internal(format!("TLS protocol versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| {
            let why = match e {
                rustls::Error::InconsistentKeys(_) => {
                    "the key does not belong to the certificate (the first certificate in the \
                     file must be the one the key was made for)"
                        .to_string()
                }
                other => other.to_string(),
            };
            usage(format!(
                "--tls-cert {} and --tls-key {} cannot be used together: {why}",
                cert.display(),
                key.display()
            ))
        })?;
    let mut config = config;
    // The listener speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn usage(msg: String) -> AdminError {
    AdminError::Usage(msg)
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, AdminError> {
    let pem = std::fs::read(path).map_err(|e| {
        usage(format!(
            "cannot read the TLS certificate --tls-cert {}: {e}",
            path.display()
        ))
    })?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            usage(format!(
                "--tls-cert {} is not a PEM certificate chain: {e}",
                path.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(usage(format!(
            "--tls-cert {} holds no certificate (expected PEM blocks \"-----BEGIN CERTIFICATE-----\")",
            path.display()
        )));
    }
    Ok(chain)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, AdminError> {
    match vcenter_client::check_private(path) {
        Ok(()) => {}
        Err(vcenter_client::PasswordFileError::Mode { who, mode, .. }) => {
            return Err(usage(format!(
                "the TLS key --tls-key {} is readable or writable by {who} (mode {mode:o}): \
                 chmod 600 it",
                path.display()
            )));
        }
        Err(e) => {
            return Err(usage(format!(
                "cannot read the TLS key --tls-key {}: {}",
                path.display(),
                std::error::Error::source(&e).map_or_else(|| e.to_string(), ToString::to_string)
            )));
        }
    }
    let pem = std::fs::read(path).map_err(|e| {
        usage(format!(
            "cannot read the TLS key --tls-key {}: {e}",
            path.display()
        ))
    })?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        usage(format!(
            "--tls-key {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
            path.display()
        ))
    })
}

/// Whether a bearer token would cross the network in clear: it is set, TLS is not, and the
/// address is not loopback.
pub fn token_in_clear(listen: SocketAddr, token: bool, tls: bool) -> bool {
    token && !tls && !listen.ip().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_in_clear_only_off_loopback_without_tls() {
        let lo: SocketAddr = "127.0.0.1:9790".parse().unwrap();
        let lo6: SocketAddr = "[::1]:9790".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:9790".parse().unwrap();
        assert!(!token_in_clear(lo, true, false));
        assert!(!token_in_clear(lo6, true, false));
        assert!(token_in_clear(any, true, false));
        assert!(!token_in_clear(any, true, true));
        assert!(!token_in_clear(any, false, false));
    }
}
