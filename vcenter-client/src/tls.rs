//! How the client decides to trust a vCenter's TLS certificate.
//!
//! vCenter is usually installed with a self-signed VMCA certificate, so
//! besides the ordinary web PKI (system roots or a CA bundle file) the vSphere
//! habit of pinning the server certificate's SHA-256 thumbprint is supported.
//! Turning verification off needs the explicit [`TlsPolicy::Insecure`].
//!
//! Every policy records the thumbprint of the certificate the server actually
//! presented, so a failed handshake can be reported with that thumbprint
//! instead of a bare "invalid certificate". Only rustls with the *ring*
//! provider is used: no OpenSSL, no aws-lc.
//!
//! *ring* verifies RSA handshake signatures only with keys of 2048 bits or more. A server
//! with a smaller key (govmomi's vcsim test certificate is 1024-bit) is refused with a
//! sentence naming the size whenever the server is verified (CA or pin), and accepted under
//! [`TlsPolicy::Insecure`]: with verification off there is no identity for the signature to
//! prove, so checking its strength would only refuse what the admin asked to allow.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

mod key_size;
use key_size::{MIN_RSA_BITS, rsa_key_bits, weak_key_error};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::Error;

/// Which server certificates to accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsPolicy {
    /// Verify the chain and host name against the operating system's roots.
    SystemRoots,
    /// Verify the chain and host name against the PEM certificates in this file
    /// (e.g. the VMCA root downloaded from `https://<vc>/certs/download.zip`).
    CaFile(PathBuf),
    /// Like [`TlsPolicy::CaFile`], with the certificates of several PEM files (govc's
    /// `GOVC_TLS_CA_CERTS` is a `:`-separated list).
    CaFiles(Vec<PathBuf>),
    /// Accept exactly the server certificate with this SHA-256 thumbprint; the
    /// chain and host name are not checked (vSphere's usual pinning).
    Thumbprint(Sha256Thumbprint),
    /// Accept any certificate. Only for labs; never the default.
    Insecure,
}

/// SHA-256 digest of a DER certificate, printed the vSphere way
/// (`AB:CD:…`, upper case, colon-separated).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct Sha256Thumbprint([u8; 32]);

impl Sha256Thumbprint {
    /// Thumbprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<Sha256Thumbprint> for String {
    fn from(t: Sha256Thumbprint) -> String {
        t.to_string()
    }
}

impl fmt::Display for Sha256Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sha256Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Thumbprint({self})")
    }
}

/// Accepts 64 hex digits, with or without `:` separators, any case.
impl FromStr for Sha256Thumbprint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let hexdigits: String = s.trim().chars().filter(|&c| c != ':').collect();
        let bad = || Error::InvalidInput {
            what: "SHA-256 thumbprint",
            detail: format!("{s:?} is not 32 hex bytes (e.g. AB:CD:…, 95 characters with colons)"),
        };
        let bytes = hex::decode(&hexdigits).map_err(|_| bad())?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
        Ok(Self(arr))
    }
}

/// Where the verifier writes the thumbprint of the last certificate seen, so
/// the transport can name it when a handshake fails.
pub(crate) type SeenThumbprint = Arc<Mutex<Option<Sha256Thumbprint>>>;

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls configuration for `policy`.
pub(crate) fn client_config(
    policy: &TlsPolicy,
    seen: SeenThumbprint,
) -> Result<rustls::ClientConfig, Error> {
    let provider = provider();
    let algs = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ServerCertVerifier> = match policy {
        TlsPolicy::SystemRoots => {
            let loaded = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
            if added == 0 {
                return Err(Error::TlsConfig(format!(
                    "no usable system root certificates found ({} errors); install ca-certificates or use a CA file or thumbprint",
                    loaded.errors.len()
                )));
            }
            webpki(roots, &provider, seen)?
        }
        TlsPolicy::CaFile(path) => webpki(ca_roots(std::slice::from_ref(path))?, &provider, seen)?,
        TlsPolicy::CaFiles(paths) => webpki(ca_roots(paths)?, &provider, seen)?,
        TlsPolicy::Thumbprint(expected) => Arc::new(Pinned {
            expected: Some(*expected),
            algs,
            seen,
        }),
        TlsPolicy::Insecure => Arc::new(Pinned {
            expected: None,
            algs,
            seen,
        }),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::TlsConfig(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(config)
}

/// The certificates of every PEM file in `paths`; each file must hold at least one.
fn ca_roots(paths: &[PathBuf]) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for path in paths {
        add_pem_file(&mut roots, path)?;
    }
    if roots.is_empty() {
        return Err(Error::TlsConfig("no CA file given".into()));
    }
    Ok(roots)
}

fn add_pem_file(roots: &mut RootCertStore, path: &Path) -> Result<(), Error> {
    let ca_err = |detail: String| Error::CaFile {
        path: path.to_path_buf(),
        detail,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| ca_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ca_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(ca_err("no PEM CERTIFICATE blocks found".into()));
    }
    for c in certs {
        roots
            .add(c)
            .map_err(|e| ca_err(format!("unusable certificate: {e}")))?;
    }
    Ok(())
}

/// What to do with a handshake signature that did not verify: when the key is RSA below
/// [`MIN_RSA_BITS`], say so (`how` the server is verified), or accept it when nothing is
/// verified (`how` is `None`); any other failure stays as rustls reported it.
fn judge_signature(
    verified: Result<HandshakeSignatureValid, rustls::Error>,
    cert: &CertificateDer<'_>,
    how: Option<&str>,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    let Err(e) = verified else {
        return verified;
    };
    match (rsa_key_bits(cert.as_ref()), how) {
        (Some(bits), None) if bits < MIN_RSA_BITS => Ok(HandshakeSignatureValid::assertion()),
        (Some(bits), Some(how)) if bits < MIN_RSA_BITS => Err(weak_key_error(bits, how)),
        _ => Err(e),
    }
}

fn webpki(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
    seen: SeenThumbprint,
) -> Result<Arc<dyn ServerCertVerifier>, Error> {
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| Error::TlsConfig(e.to_string()))?;
    Ok(Arc::new(Recording { inner, seen }))
}

fn record(seen: &SeenThumbprint, cert: &CertificateDer<'_>) -> Sha256Thumbprint {
    let t = Sha256Thumbprint::of_der(cert.as_ref());
    if let Ok(mut slot) = seen.lock() {
        *slot = Some(t);
    }
    t
}

/// Web PKI verification that also remembers the presented certificate.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    seen: SeenThumbprint,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        record(&self.seen, end_entity);
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        // A server key below the minimum is what to fix whatever else webpki objects to: a
        // self-signed 1024-bit certificate (govmomi's stock vcsim one) is refused as a CA used
        // as an end entity before its signature is ever checked.
        match rsa_key_bits(end_entity.as_ref()) {
            Some(bits) if verified.is_err() && bits < MIN_RSA_BITS => {
                Err(weak_key_error(bits, "against trusted CA certificates"))
            }
            _ => verified,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        judge_signature(
            self.inner.verify_tls12_signature(message, cert, dss),
            cert,
            Some("against trusted CA certificates"),
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        judge_signature(
            self.inner.verify_tls13_signature(message, cert, dss),
            cert,
            Some("against trusted CA certificates"),
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Thumbprint pinning (or, with `expected: None`, no certificate check).
/// Handshake signatures are still verified with the presented key, so the
/// peer must hold the pinned certificate's private key (under `Insecure` a
/// key too weak for *ring* is accepted unverified: see the module comment).
#[derive(Debug)]
struct Pinned {
    expected: Option<Sha256Thumbprint>,
    algs: WebPkiSupportedAlgorithms,
    seen: SeenThumbprint,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = record(&self.seen, end_entity);
        match self.expected {
            Some(want) if want != got => Err(rustls::Error::General(format!(
                "server certificate SHA-256 thumbprint {got} does not match the pinned {want}"
            ))),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        judge_signature(
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs),
            cert,
            self.expected.map(|_| "with a pinned thumbprint"),
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        judge_signature(
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs),
            cert,
            self.expected.map(|_| "with a pinned thumbprint"),
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_parses_both_spellings_and_prints_vsphere_style() {
        let colon = "AB:".repeat(31) + "CD";
        let t: Sha256Thumbprint = colon.parse().unwrap();
        let plain: Sha256Thumbprint = colon.replace(':', "").to_lowercase().parse().unwrap();
        assert_eq!(t, plain);
        assert_eq!(t.to_string(), colon);
        assert!("AB:CD".parse::<Sha256Thumbprint>().is_err());
        assert!("zz".repeat(32).parse::<Sha256Thumbprint>().is_err());
    }

    #[test]
    fn missing_ca_file_is_named() {
        let seen = SeenThumbprint::default();
        let err =
            client_config(&TlsPolicy::CaFile("/nonexistent/ca.pem".into()), seen).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty.pem");
        std::fs::write(&p, "not a pem\n").unwrap();
        let err = client_config(&TlsPolicy::CaFile(p), SeenThumbprint::default()).unwrap_err();
        assert!(err.to_string().contains("no PEM CERTIFICATE"), "{err}");
    }
}
