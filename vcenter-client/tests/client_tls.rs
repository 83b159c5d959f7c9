//! TLS policies against vcsim serving a certificate from a generated CA:
//! the right CA and the right pin are accepted; a wrong CA, a wrong pin and
//! the system roots are refused with errors that name the thumbprint seen.

mod client_support;

use client_support::{options_with, start};
use vcenter_client::{Client, Error, Sha256Thumbprint, TlsPolicy};
use vmig_testkit::{Vcsim, temp_dir, unrelated_ca_pem};

#[tokio::test]
async fn tls_policies_against_vcsim() {
    let sim = start(Vcsim::builder());
    let real: Sha256Thumbprint = sim.thumbprint().unwrap().parse().unwrap();

    // Right CA: accepted.
    let ca = TlsPolicy::CaFile(sim.ca_pem_path().unwrap().to_path_buf());
    let c = Client::connect(options_with(&sim, ca)).await.unwrap();
    assert!(!c.current_time().await.unwrap().is_empty());

    // Pinned thumbprint: accepted (no CA needed).
    let c = Client::connect(options_with(&sim, TlsPolicy::Thumbprint(real)))
        .await
        .unwrap();
    c.current_time().await.unwrap();

    // Insecure: accepted, only because it was asked for.
    Client::connect(options_with(&sim, TlsPolicy::Insecure))
        .await
        .unwrap();

    // Wrong CA: refused, and the error names the certificate's thumbprint.
    let dir = temp_dir("vcc-tls");
    let other = unrelated_ca_pem(dir.path()).unwrap();
    let err = Client::connect(options_with(&sim, TlsPolicy::CaFile(other)))
        .await
        .unwrap_err();
    match &err {
        Error::Tls { seen, .. } => assert_eq!(*seen, Some(real), "{err}"),
        other => panic!("expected a TLS error, got {other:?}"),
    }
    assert!(err.to_string().contains(&real.to_string()), "{err}");

    // Wrong pin: refused, naming both thumbprints.
    let wrong: Sha256Thumbprint = format!("{}01", "00:".repeat(31)).parse().unwrap();
    let err = Client::connect(options_with(&sim, TlsPolicy::Thumbprint(wrong)))
        .await
        .unwrap_err();
    match &err {
        Error::ThumbprintMismatch { expected, seen, .. } => {
            assert_eq!(*expected, wrong);
            assert_eq!(*seen, real);
        }
        other => panic!("expected ThumbprintMismatch, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&real.to_string()) && msg.contains(&wrong.to_string()),
        "{msg}"
    );

    // System roots do not hold the throw-away CA.
    let err = Client::connect(options_with(&sim, TlsPolicy::SystemRoots))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Tls { .. } | Error::TlsConfig(_)),
        "{err:?}"
    );
}

/// A server with a 1024-bit RSA key (govmomi's own vcsim test certificate is one): reachable
/// with verification off, refused with a sentence naming the key size when verified.
#[tokio::test]
async fn rsa_1024_server_is_insecure_only() {
    let sim = start(Vcsim::builder().tls(vmig_testkit::TlsMode::StockRsa1024));
    let c = Client::connect(options_with(&sim, TlsPolicy::Insecure))
        .await
        .expect("--insecure connects to a 1024-bit server");
    assert!(!c.current_time().await.unwrap().is_empty());

    let pin: Sha256Thumbprint = sim.thumbprint().unwrap().parse().unwrap();
    let ca = TlsPolicy::CaFile(sim.ca_pem_path().unwrap().to_path_buf());
    for policy in [ca, TlsPolicy::Thumbprint(pin)] {
        let err = Client::connect(options_with(&sim, policy.clone()))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("1024-bit RSA key") && err.contains("at least 2048 bits"),
            "{policy:?}: {err}"
        );
    }
}
