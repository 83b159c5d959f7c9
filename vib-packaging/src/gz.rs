//! Reproducible gzip for payloads, and a bounded gunzip for reading untrusted ones.
//!
//! VIB Author stores the payload's file name and build time in the gzip header; we store
//! neither (mtime 0, no name, OS byte 3 = Unix), so the compressed bytes depend on content
//! alone. The reader caps the decompressed size so that a hostile payload cannot exhaust
//! memory (it is reached from the fuzz targets).

use std::io::{Read, Write};

use flate2::{Compression, GzBuilder, read::GzDecoder};

/// Largest decompressed payload accepted: far above a real agent payload, small enough to
/// keep a decompression bomb harmless.
pub const MAX_UNCOMPRESSED: u64 = 1 << 30;

/// Why a gzip stream cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum GzError {
    /// Not gzip or corrupt.
    #[error("payload `{name}` is not a valid gzip stream: {source}")]
    Corrupt {
        /// Payload name.
        name: String,
        /// Decoder error.
        source: std::io::Error,
    },
    /// Larger than [`MAX_UNCOMPRESSED`].
    #[error("payload `{name}` decompresses to more than {limit} bytes; refusing to read it")]
    TooLarge {
        /// Payload name.
        name: String,
        /// The limit.
        limit: u64,
    },
}

/// Gzips `data` with fixed header fields.
pub fn compress(data: &[u8]) -> Vec<u8> {
    let mut enc = GzBuilder::new()
        .mtime(0)
        .operating_system(3)
        .write(Vec::new(), Compression::best());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// Gunzips `data` (payload `name`, for messages), up to `limit` bytes.
///
/// # Errors
/// [`GzError`] if the stream is damaged or too large.
pub fn decompress(name: &str, data: &[u8], limit: u64) -> Result<Vec<u8>, GzError> {
    let mut out = Vec::new();
    let mut dec = GzDecoder::new(data).take(limit + 1);
    dec.read_to_end(&mut out)
        .map_err(|source| GzError::Corrupt {
            name: name.to_string(),
            source,
        })?;
    if out.len() as u64 > limit {
        return Err(GzError::TooLarge {
            name: name.to_string(),
            limit,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_fixed_header() {
        let z = compress(b"hello");
        assert_eq!(&z[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
        assert_eq!(decompress("p", &z, 100).unwrap(), b"hello");
        assert!(matches!(
            decompress("p", &z, 3),
            Err(GzError::TooLarge { .. })
        ));
        assert!(matches!(
            decompress("p", b"nope", 3),
            Err(GzError::Corrupt { .. })
        ));
    }
}
