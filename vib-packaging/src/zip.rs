//! The zip container of offline bundles and their `metadata.zip`.
//!
//! Only what depots use: deflate or stored entries, no zip64, no encryption. The writer is
//! reproducible: entry order is the caller's (fixed by [`crate::bundle`]), every entry gets
//! the same DOS time from `SOURCE_DATE_EPOCH`, Unix mode `0644` and "made by Unix 2.0" as in
//! the VMware-built fixture. The reader checks sizes and CRCs and bounds decompression; it
//! is a fuzz target.

use std::io::{Read, Write};

use flate2::{Compression, Crc, read::DeflateDecoder, write::DeflateEncoder};

use crate::time::dos_datetime;

const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const EOCD_SIG: u32 = 0x0605_4b50;
/// Largest entry the reader inflates.
pub const MAX_ENTRY: u64 = 1 << 30;

/// One file in a zip archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    /// Path inside the archive (`/`-separated).
    pub name: String,
    /// Uncompressed contents.
    pub data: Vec<u8>,
}

/// Why bytes are not a readable zip archive.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZipError {
    /// No end-of-central-directory record.
    #[error(
        "not a zip archive (no end-of-central-directory record): the bundle is not a depot zip or is truncated"
    )]
    NotZip,
    /// A record runs past the end of the data.
    #[error("zip archive truncated or damaged: {0}")]
    Truncated(String),
    /// A record has the wrong signature.
    #[error("zip archive damaged: bad {record} signature at byte {offset}")]
    BadSignature {
        /// Record kind.
        record: &'static str,
        /// Offset.
        offset: usize,
    },
    /// Zip64, encryption or a compression method other than stored/deflate.
    #[error("zip entry `{name}` uses an unsupported feature: {feature}")]
    Unsupported {
        /// Entry name.
        name: String,
        /// What.
        feature: String,
    },
    /// Data does not match the recorded CRC or size.
    #[error("zip entry `{name}` is corrupt: {problem}")]
    Corrupt {
        /// Entry name.
        name: String,
        /// What does not match.
        problem: String,
    },
    /// Two entries with one name.
    #[error("zip archive has two entries named `{0}`")]
    Duplicate(String),
}

fn u16le(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Writes `entries` in order, deflated, all dated `epoch`.
pub fn write(entries: &[ZipEntry], epoch: u64) -> Vec<u8> {
    let (date, time) = dos_datetime(epoch);
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let mut crc = Crc::new();
        crc.update(&e.data);
        let mut enc = DeflateEncoder::new(Vec::new(), Compression::best());
        // Writing into a Vec cannot fail.
        let _ = enc.write_all(&e.data);
        let packed = enc.finish().unwrap_or_default();
        let offset = out.len() as u32;
        let common = |v: &mut Vec<u8>| {
            v.extend_from_slice(&20u16.to_le_bytes()); // version needed: 2.0 (deflate)
            v.extend_from_slice(&0u16.to_le_bytes()); // flags
            v.extend_from_slice(&8u16.to_le_bytes()); // deflate
            v.extend_from_slice(&time.to_le_bytes());
            v.extend_from_slice(&date.to_le_bytes());
            v.extend_from_slice(&crc.sum().to_le_bytes());
            v.extend_from_slice(&(packed.len() as u32).to_le_bytes());
            v.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
            v.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes()); // extra length
        };
        out.extend_from_slice(&LOCAL_SIG.to_le_bytes());
        common(&mut out);
        out.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(&packed);

        central.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
        central.extend_from_slice(&0x0314u16.to_le_bytes()); // made by: Unix, 2.0
        common(&mut central);
        central.extend_from_slice(&0u16.to_le_bytes()); // comment length
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        central.extend_from_slice(&(0o100644u32 << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(e.name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&EOCD_SIG.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // disk numbers
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// Reads every entry (directories, i.e. names ending in `/`, are skipped), in central
/// directory order.
///
/// # Errors
/// [`ZipError`] for the first defect met.
pub fn read(bytes: &[u8]) -> Result<Vec<ZipEntry>, ZipError> {
    let trunc = |what: &str| ZipError::Truncated(what.to_string());
    let min_start = bytes.len().saturating_sub(22 + 0xffff);
    let eocd = (min_start..=bytes.len().saturating_sub(22))
        .rev()
        .find(|&i| u32le(bytes, i) == Some(EOCD_SIG))
        .ok_or(ZipError::NotZip)?;
    let count = u16le(bytes, eocd + 10).ok_or_else(|| trunc("end record"))? as usize;
    let cd_offset = u32le(bytes, eocd + 16).ok_or_else(|| trunc("end record"))? as usize;
    if cd_offset == 0xffff_ffff || count == 0xffff {
        return Err(ZipError::Unsupported {
            name: String::new(),
            feature: "zip64".into(),
        });
    }
    let mut entries: Vec<ZipEntry> = Vec::with_capacity(count.min(4096));
    let mut at = cd_offset;
    for _ in 0..count {
        if u32le(bytes, at) != Some(CENTRAL_SIG) {
            return Err(ZipError::BadSignature {
                record: "central directory",
                offset: at,
            });
        }
        let field16 = |o: usize| u16le(bytes, at + o).ok_or_else(|| trunc("central directory"));
        let field32 = |o: usize| u32le(bytes, at + o).ok_or_else(|| trunc("central directory"));
        let flags = field16(8)?;
        let method = field16(10)?;
        let crc = field32(16)?;
        let csize = field32(20)? as usize;
        let usize_ = field32(24)? as u64;
        let name_len = field16(28)? as usize;
        let extra_len = field16(30)? as usize;
        let comment_len = field16(32)? as usize;
        let local = field32(42)? as usize;
        let name_bytes = bytes
            .get(at + 46..at + 46 + name_len)
            .ok_or_else(|| trunc("central directory name"))?;
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        at += 46 + name_len + extra_len + comment_len;
        if flags & 1 != 0 {
            return Err(ZipError::Unsupported {
                name,
                feature: "encryption".into(),
            });
        }
        if csize == 0xffff_ffff || usize_ == 0xffff_ffff {
            return Err(ZipError::Unsupported {
                name,
                feature: "zip64".into(),
            });
        }
        if u32le(bytes, local) != Some(LOCAL_SIG) {
            return Err(ZipError::BadSignature {
                record: "local header",
                offset: local,
            });
        }
        let lname = u16le(bytes, local + 26).ok_or_else(|| trunc("local header"))? as usize;
        let lextra = u16le(bytes, local + 28).ok_or_else(|| trunc("local header"))? as usize;
        let start = local + 30 + lname + lextra;
        let packed = bytes
            .get(start..start.saturating_add(csize))
            .ok_or_else(|| ZipError::Corrupt {
                name: name.clone(),
                problem: format!(
                    "data bytes {start}..{} lie past the end of the archive",
                    start.saturating_add(csize)
                ),
            })?;
        if name.ends_with('/') {
            continue;
        }
        if usize_ > MAX_ENTRY {
            return Err(ZipError::Unsupported {
                name,
                feature: format!("entry larger than {MAX_ENTRY} bytes"),
            });
        }
        let data = match method {
            0 => packed.to_vec(),
            8 => {
                let mut out = Vec::with_capacity(usize_.min(1 << 24) as usize);
                DeflateDecoder::new(packed)
                    .take(usize_ + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| ZipError::Corrupt {
                        name: name.clone(),
                        problem: format!("deflate: {e}"),
                    })?;
                out
            }
            m => {
                return Err(ZipError::Unsupported {
                    name,
                    feature: format!("compression method {m}"),
                });
            }
        };
        if data.len() as u64 != usize_ {
            return Err(ZipError::Corrupt {
                name,
                problem: format!("{} bytes, central directory says {usize_}", data.len()),
            });
        }
        let mut c = Crc::new();
        c.update(&data);
        if c.sum() != crc {
            return Err(ZipError::Corrupt {
                name,
                problem: "CRC-32 mismatch".into(),
            });
        }
        if entries.iter().any(|e| e.name == name) {
            return Err(ZipError::Duplicate(name));
        }
        entries.push(ZipEntry { name, data });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_deterministic() {
        let e = vec![
            ZipEntry {
                name: "b.xml".into(),
                data: b"<b/>".repeat(50),
            },
            ZipEntry {
                name: "a/c".into(),
                data: vec![],
            },
        ];
        let z = write(&e, 1_609_252_862);
        assert_eq!(z, write(&e, 1_609_252_862));
        assert_eq!(read(&z).unwrap(), e);
    }

    #[test]
    fn detects_damage() {
        let z = write(
            &[ZipEntry {
                name: "x".into(),
                data: b"hello hello hello".to_vec(),
            }],
            0,
        );
        assert_eq!(read(&z[..z.len() - 5]), Err(ZipError::NotZip));
        let mut bad = z.clone();
        bad[14] ^= 0xff; // local CRC is not used; break the central one instead
        let cd = z.len() - 22 - 47;
        bad[cd + 16] ^= 0xff;
        assert!(matches!(read(&bad), Err(ZipError::Corrupt { .. })));
    }
}
