//! The RSA key size of a server certificate, for one sentence: *ring* verifies RSA handshake
//! signatures only for keys of 2048 bits or more and answers a smaller key with a bare
//! "BadSignature", which tells an admin nothing. Reading the size takes a walk over a few
//! DER headers of the certificate (no X.509 library is linked for this one number).

/// The smallest RSA key the client verifies a server with.
pub(crate) const MIN_RSA_BITS: usize = 2048;

/// `rsaEncryption`, 1.2.840.113549.1.1.1.
const RSA_ENCRYPTION: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// One DER element at the start of `d`: its tag, its contents and what follows it.
fn tlv(d: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = d.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(n)?;
        let len = bytes.iter().try_fold(0usize, |acc, b| {
            acc.checked_mul(256)?.checked_add(usize::from(*b))
        })?;
        (len, rest)
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

/// The modulus size in bits of `cert_der`'s public key when it is RSA; `None` for other
/// keys and for anything that does not parse (the caller then keeps rustls's own error).
pub(crate) fn rsa_key_bits(cert_der: &[u8]) -> Option<usize> {
    const SEQUENCE: u8 = 0x30;
    let (SEQUENCE, cert, _) = tlv(cert_der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = tlv(cert)? else {
        return None;
    };
    // [0] version (optional), then serial, signature, issuer, validity, subject.
    let mut rest = tbs;
    let (tag, _, after) = tlv(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    for _ in 0..5 {
        rest = tlv(rest)?.2;
    }
    let (SEQUENCE, spki, _) = tlv(rest)? else {
        return None;
    };
    let (SEQUENCE, algorithm, key) = tlv(spki)? else {
        return None;
    };
    let (0x06, oid, _) = tlv(algorithm)? else {
        return None;
    };
    if oid != RSA_ENCRYPTION {
        return None;
    }
    let (0x03, bits, _) = tlv(key)? else {
        return None;
    };
    // The BIT STRING's first byte counts unused bits: 0 for a DER key.
    let (SEQUENCE, rsa_key, _) = tlv(bits.strip_prefix(&[0])?)? else {
        return None;
    };
    let (0x02, modulus, _) = tlv(rsa_key)? else {
        return None;
    };
    let start = modulus.iter().position(|b| *b != 0)?;
    let significant = &modulus[start..];
    Some(significant.len() * 8 - significant[0].leading_zeros() as usize)
}

/// The sentence for a server whose RSA key is too small to verify it with.
pub(crate) fn weak_key_error(bits: usize, how: &str) -> rustls::Error {
    rustls::Error::General(format!(
        "the server certificate has a {bits}-bit RSA key, and vmig verifies a server ({how}) \
         only with an RSA key of at least {MIN_RSA_BITS} bits; give vCenter a {MIN_RSA_BITS}-bit \
         (or larger) certificate, or for a lab simulator only connect with --insecure"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    fn der(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .expect("pem")
            .to_vec()
    }

    #[test]
    fn reads_rsa_key_sizes() {
        let server = include_str!("../../../tests/testkit/fixtures/rsa1024/server.pem");
        let ca = include_str!("../../../tests/testkit/fixtures/rsa1024/ca.pem");
        assert_eq!(rsa_key_bits(&der(server)), Some(1024));
        assert_eq!(rsa_key_bits(&der(ca)), Some(2048));
    }

    #[test]
    fn never_panics_on_garbage() {
        let server = der(include_str!(
            "../../../tests/testkit/fixtures/rsa1024/server.pem"
        ));
        for cut in 0..server.len() {
            let _ = rsa_key_bits(&server[..cut]);
        }
        for i in 0..server.len() {
            let mut bad = server.clone();
            bad[i] ^= 0xff;
            let _ = rsa_key_bits(&bad);
        }
        assert_eq!(rsa_key_bits(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    }
}
