//! Throw-away certificate authorities for tests.
//!
//! A real vCenter presents a certificate signed by its VMCA; clients must verify it against
//! that CA (or pin its thumbprint). Tests do the same against a CA generated per simulator,
//! never with verification switched off, so the TLS code paths are the production ones.
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use sha2::{Digest, Sha256};

use crate::{Result, io_err};

/// A certificate authority that exists only for one test run.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs even in tests; the certificate identifies the CA.
        f.debug_struct("TestCa")
            .field("cert_pem", &self.cert.pem())
            .finish_non_exhaustive()
    }
}

/// A server certificate issued by a [`TestCa`].
#[derive(Debug, Clone)]
pub struct ServerCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The certificate, DER (what a TLS server sends and thumbprints hash).
    pub der: Vec<u8>,
}

impl TestCa {
    /// A new CA (ECDSA P-256) whose subject common name is `common_name`.
    pub fn generate(common_name: &str) -> Result<TestCa> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "vmig tests");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(TestCa { cert, key })
    }

    /// The CA certificate, PEM: what a client trusts.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// Writes the CA certificate (PEM) to `path`.
    pub fn write_pem(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.cert_pem()).map_err(io_err(format!("writing {}", path.display())))
    }

    /// Issues a server certificate for `names` (IP addresses become IP SANs, the rest DNS
    /// names); the first name is also the subject common name.
    pub fn issue_server_cert(&self, names: &[&str]) -> Result<ServerCert> {
        let sans: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(sans)?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("localhost"),
        );
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        })
    }
}

impl ServerCert {
    /// SHA-256 thumbprint as vSphere shows it: `AB:CD:...` (32 uppercase hex pairs).
    pub fn sha256_thumbprint(&self) -> String {
        sha256_thumbprint(&self.der)
    }
}

/// SHA-256 of a DER certificate as colon-separated uppercase hex pairs, as vSphere shows it.
pub fn sha256_thumbprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let pairs: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    pairs.join(":")
}

/// The DER bytes of the first certificate in `pem` (standard base64 between the
/// `-----BEGIN CERTIFICATE-----` lines); `None` when there is none or it is not base64.
pub fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    let body = pem
        .split("-----BEGIN CERTIFICATE-----")
        .nth(1)?
        .split("-----END CERTIFICATE-----")
        .next()?;
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in body.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xFF) as u8);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Writes the certificate of a fresh CA that signed nothing to `dir/unrelated-ca.pem` and
/// returns the path: trusting it instead of the right CA must make TLS fail.
pub fn unrelated_ca_pem(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("unrelated-ca.pem");
    TestCa::generate("vmig unrelated test CA")?.write_pem(&path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_decodes_to_the_der_rcgen_wrote() {
        let ca = TestCa::generate("vmig pem test CA").expect("CA");
        let server = ca.issue_server_cert(&["127.0.0.1"]).expect("cert");
        assert_eq!(
            pem_to_der(&server.cert_pem).map(|d| sha256_thumbprint(&d)),
            Some(server.sha256_thumbprint())
        );
        assert_eq!(pem_to_der("no certificate"), None);
    }

    #[test]
    fn thumbprint_format() {
        let t = sha256_thumbprint(b"");
        // SHA-256 of the empty string.
        assert!(t.starts_with("E3:B0:C4:42:98:FC:1C:14"), "{t}");
        assert_eq!(t.len(), 32 * 3 - 1);
    }

    #[test]
    fn server_cert_is_signed_and_pem_encoded() {
        let ca = TestCa::generate("test CA").unwrap();
        let server = ca.issue_server_cert(&["127.0.0.1", "localhost"]).unwrap();
        assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(server.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(server.key_pem.contains("PRIVATE KEY"));
        assert_eq!(server.sha256_thumbprint(), sha256_thumbprint(&server.der));
    }
}
