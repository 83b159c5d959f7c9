//! Payload archives: VMware's *vmtar* (`vgz` payloads) and plain POSIX ustar (`tgz`).
//!
//! Both use 512-byte tar headers. A vmtar, as VMware's `vmtar`/VIB Author writes it
//! (fixture: `shared/fixtures/vib/`), differs from a tar in three ways that make GNU tar
//! choke on it:
//! - magic `visor  \0` at byte 257 instead of `ustar\0` `00`;
//! - *all* headers come first, followed by one zero block, then the file data;
//! - each regular file's data starts at the little-endian `u32` offset stored in header bytes
//!   496..500 (the tail of ustar's `prefix` field); 500..512 hold `textoffset`, `textsize` and
//!   `numfixuppgs`, all zero for ordinary files. Data blocks are 512-aligned and the last one
//!   is not padded.
//!
//! The writers normalise everything that could vary between builds: owner `root:root`
//! (uid/gid 0), one fixed mtime, entries sorted by path with every parent directory emitted
//! as its own entry before its children (ESXi's installer needs explicit directories).
//!
//! The reader takes either format, header by header: a `visor` header with a non-zero
//! offset points at its data, any other header is followed by its data (ustar, and the
//! sequential "visor tar" some community scripts write).

use std::collections::BTreeMap;

const BLOCK: usize = 512;
const VISOR_MAGIC: &[u8; 8] = b"visor  \0";
const USTAR_MAGIC: &[u8; 8] = b"ustar\x0000";

/// The kind of a payload entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A directory (path ends with `/` in the archive).
    Dir,
    /// A regular file.
    File,
}

/// One entry of a payload archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    /// Relative path without leading `/`; directories without the trailing `/`.
    pub path: String,
    /// Directory or regular file.
    pub kind: EntryKind,
    /// Permission bits including sticky/setuid bits (e.g. `0o1644`).
    pub mode: u32,
    /// File contents (empty for directories).
    pub data: Vec<u8>,
}

/// The two archive formats a payload can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarFormat {
    /// VMware vmtar (headers first, data at offsets).
    Vmtar,
    /// POSIX ustar, sequential.
    Ustar,
}

/// Why bytes are not a readable payload archive, or entries cannot be written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TarError {
    /// A header's checksum does not match its bytes.
    #[error("payload archive header at byte {offset} has a bad checksum: the payload is damaged")]
    BadChecksum {
        /// Offset of the header.
        offset: usize,
    },
    /// A header is neither vmtar nor ustar.
    #[error(
        "payload archive header at byte {offset} has unknown magic {magic:?} (expected `visor` or `ustar`)"
    )]
    BadMagic {
        /// Offset of the header.
        offset: usize,
        /// The 8 magic bytes, lossily decoded.
        magic: String,
    },
    /// A numeric field is not octal.
    #[error("payload archive header at byte {offset}: field `{field}` is not an octal number")]
    BadNumber {
        /// Offset of the header.
        offset: usize,
        /// Field name.
        field: &'static str,
    },
    /// The archive ends inside a header or a file's data.
    #[error("payload archive truncated: `{path}` needs bytes {start}..{end}, archive has {len}")]
    Truncated {
        /// Entry being read.
        path: String,
        /// First byte needed.
        start: usize,
        /// One past the last byte needed.
        end: usize,
        /// Archive length.
        len: usize,
    },
    /// The archive has no end-of-archive zero block.
    #[error("payload archive ends without its end-of-archive block at byte {offset}")]
    MissingEnd {
        /// Where the archive stopped.
        offset: usize,
    },
    /// An entry type other than file or directory.
    #[error(
        "payload entry `{path}` has type {typeflag:?}; only files and directories are supported"
    )]
    UnsupportedType {
        /// Entry path.
        path: String,
        /// Raw type flag.
        typeflag: char,
    },
    /// A path cannot be stored or is unsafe.
    #[error(
        "payload path `{0}` is invalid: it must be relative, at most 99 bytes, without `..` or empty parts"
    )]
    BadPath(String),
    /// Two entries with one path.
    #[error("payload path `{0}` appears twice")]
    Duplicate(String),
}

fn check_path(path: &str) -> Result<(), TarError> {
    let ok = !path.is_empty()
        && path.len() < 100
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..")
        && path.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(TarError::BadPath(path.to_string()))
    }
}

/// Completes and sorts `entries`: adds every missing parent directory (mode 0755) and
/// orders parents before children. Rejects unsafe or duplicate paths.
///
/// # Errors
/// [`TarError::BadPath`] or [`TarError::Duplicate`].
pub fn normalise(entries: &[TarEntry]) -> Result<Vec<TarEntry>, TarError> {
    let mut map: BTreeMap<String, TarEntry> = BTreeMap::new();
    for e in entries {
        check_path(&e.path)?;
        if map.insert(sort_key(&e.path, e.kind), e.clone()).is_some() {
            return Err(TarError::Duplicate(e.path.clone()));
        }
    }
    for e in entries {
        let mut parent = e.path.as_str();
        while let Some((p, _)) = parent.rsplit_once('/') {
            map.entry(sort_key(p, EntryKind::Dir))
                .or_insert_with(|| TarEntry {
                    path: p.to_string(),
                    kind: EntryKind::Dir,
                    mode: 0o755,
                    data: Vec::new(),
                });
            parent = p;
        }
    }
    Ok(map.into_values().collect())
}

/// Directories sort as `path/` so that a parent always precedes its children.
fn sort_key(path: &str, kind: EntryKind) -> String {
    match kind {
        EntryKind::Dir => format!("{path}/"),
        EntryKind::File => path.to_string(),
    }
}

fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

fn header(entry: &TarEntry, mtime: u64, magic: &[u8; 8]) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let name = sort_key(&entry.path, entry.kind);
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name.as_bytes()[..n]);
    octal(&mut h[100..108], u64::from(entry.mode & 0o7777));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], entry.data.len() as u64);
    octal(&mut h[136..148], mtime);
    h[156] = match entry.kind {
        EntryKind::Dir => b'5',
        EntryKind::File => b'0',
    };
    h[257..265].copy_from_slice(magic);
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    h
}

/// Header checksum with the chksum field as spaces. VMware's vmtar sums the bytes as
/// *signed* chars (visible in the fixture when an offset byte is >= 0x80); tar readers accept
/// either sum, so the writer uses VMware's and the reader takes both.
fn checksums(h: &[u8]) -> (i64, i64) {
    let field = |i: usize, b: u8| if (148..156).contains(&i) { b' ' } else { b };
    let unsigned = h
        .iter()
        .enumerate()
        .map(|(i, &b)| i64::from(field(i, b)))
        .sum();
    let signed = h
        .iter()
        .enumerate()
        .map(|(i, &b)| i64::from(field(i, b) as i8))
        .sum();
    (unsigned, signed)
}

fn seal(h: &mut [u8; BLOCK]) {
    let (_, sum) = checksums(h);
    // GNU/VMware layout: six octal digits, NUL, space.
    let s = format!("{:06o}", sum.rem_euclid(0o1000000));
    h[148..154].copy_from_slice(s.as_bytes());
    h[154] = 0;
    h[155] = b' ';
}

fn padded(len: usize) -> usize {
    len.div_ceil(BLOCK) * BLOCK
}

/// Writes `entries` (after [`normalise`]) as an uncompressed archive of `format`.
///
/// # Errors
/// [`TarError::BadPath`] or [`TarError::Duplicate`] from [`normalise`].
pub fn write(entries: &[TarEntry], format: TarFormat, mtime: u64) -> Result<Vec<u8>, TarError> {
    Ok(write_in_order(&normalise(entries)?, format, mtime))
}

/// Writes `entries` exactly in the given order, without adding parents or checking paths
/// (used by [`write`], and to reproduce archives written by other tools byte for byte).
/// Paths of 100 bytes or more are cut: call [`normalise`] first for checked input.
pub fn write_in_order(entries: &[TarEntry], format: TarFormat, mtime: u64) -> Vec<u8> {
    let mut out = Vec::new();
    match format {
        TarFormat::Ustar => {
            for e in entries {
                let mut h = header(e, mtime, USTAR_MAGIC);
                seal(&mut h);
                out.extend_from_slice(&h);
                out.extend_from_slice(&e.data);
                out.resize(padded(out.len()), 0);
            }
            out.resize(out.len() + 2 * BLOCK, 0);
        }
        TarFormat::Vmtar => {
            // Headers, one zero block, then data blocks in header order.
            let mut data_off = (entries.len() + 1) * BLOCK;
            let mut offsets = Vec::with_capacity(entries.len());
            for e in entries {
                if e.kind == EntryKind::File {
                    offsets.push(data_off);
                    data_off = padded(data_off + e.data.len());
                } else {
                    offsets.push(0);
                }
            }
            for (e, &off) in entries.iter().zip(&offsets) {
                let mut h = header(e, mtime, VISOR_MAGIC);
                let off = u32::try_from(off).unwrap_or(u32::MAX);
                h[496..500].copy_from_slice(&off.to_le_bytes());
                seal(&mut h);
                out.extend_from_slice(&h);
            }
            out.resize(out.len() + BLOCK, 0);
            let files: Vec<&TarEntry> = entries
                .iter()
                .filter(|e| e.kind == EntryKind::File)
                .collect();
            for (i, e) in files.iter().enumerate() {
                out.extend_from_slice(&e.data);
                if i + 1 < files.len() {
                    out.resize(padded(out.len()), 0);
                }
            }
        }
    }
    out
}

fn parse_octal(field: &[u8], offset: usize, name: &'static str) -> Result<u64, TarError> {
    let s: Vec<u8> = field.iter().copied().take_while(|&b| b != 0).collect();
    let s = String::from_utf8_lossy(&s);
    let s = s.trim();
    if s.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(s, 8).map_err(|_| TarError::BadNumber {
        offset,
        field: name,
    })
}

fn cstr(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// A parsed archive: its format (of the first header) and its entries in archive order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    /// Format of the first header.
    pub format: TarFormat,
    /// Entries in archive order.
    pub entries: Vec<TarEntry>,
}

/// Parses a vmtar or ustar archive (uncompressed).
///
/// # Errors
/// Any [`TarError`] for the first defect met.
pub fn read(bytes: &[u8]) -> Result<Archive, TarError> {
    let mut entries = Vec::new();
    let mut format = None;
    let mut off = 0usize;
    loop {
        let Some(h) = bytes.get(off..off + BLOCK) else {
            return Err(TarError::MissingEnd { offset: off });
        };
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let magic = &h[257..265];
        let is_visor = magic.starts_with(b"visor");
        if !is_visor && !magic.starts_with(b"ustar") {
            return Err(TarError::BadMagic {
                offset: off,
                magic: String::from_utf8_lossy(magic).into_owned(),
            });
        }
        format.get_or_insert(if is_visor {
            TarFormat::Vmtar
        } else {
            TarFormat::Ustar
        });
        let stored = parse_octal(&h[148..156], off, "chksum")? as i64;
        let (unsigned, signed) = checksums(h);
        if stored != unsigned && stored != signed {
            return Err(TarError::BadChecksum { offset: off });
        }
        let mut path = cstr(&h[0..100]);
        // ustar prefix; in a vmtar it ends where the offset field starts.
        let prefix = cstr(&h[345..if is_visor { 496 } else { 500 }]);
        if !prefix.is_empty() {
            path = format!("{prefix}/{path}");
        }
        let mode = parse_octal(&h[100..108], off, "mode")? as u32;
        let size = usize::try_from(parse_octal(&h[124..136], off, "size")?).unwrap_or(usize::MAX);
        let typeflag = h[156];
        let data_off = u32::from_le_bytes([h[496], h[497], h[498], h[499]]) as usize;
        off += BLOCK;
        let kind = match typeflag {
            b'5' => EntryKind::Dir,
            b'0' | 0 if !path.ends_with('/') => EntryKind::File,
            b'0' | 0 => EntryKind::Dir,
            other => {
                return Err(TarError::UnsupportedType {
                    path,
                    typeflag: char::from(other),
                });
            }
        };
        let path = path.trim_end_matches('/').to_string();
        let mut data = Vec::new();
        if kind == EntryKind::File && size > 0 {
            let start = if is_visor && data_off != 0 {
                data_off
            } else {
                off
            };
            let end = start.saturating_add(size);
            let Some(d) = bytes.get(start..end) else {
                return Err(TarError::Truncated {
                    path,
                    start,
                    end,
                    len: bytes.len(),
                });
            };
            data = d.to_vec();
            if !(is_visor && data_off != 0) {
                off = off.saturating_add(padded(size));
            }
        }
        entries.push(TarEntry {
            path,
            kind,
            mode,
            data,
        });
    }
    Ok(Archive {
        format: format.unwrap_or(TarFormat::Ustar),
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, mode: u32, data: &[u8]) -> TarEntry {
        TarEntry {
            path: path.into(),
            kind: EntryKind::File,
            mode,
            data: data.to_vec(),
        }
    }

    #[test]
    fn normalise_adds_parents_in_order() {
        let got = normalise(&[file("opt/a/b", 0o755, b"x"), file("etc/c", 0o1644, b"y")]).unwrap();
        let paths: Vec<_> = got.iter().map(|e| (e.path.as_str(), e.kind)).collect();
        assert_eq!(
            paths,
            [
                ("etc", EntryKind::Dir),
                ("etc/c", EntryKind::File),
                ("opt", EntryKind::Dir),
                ("opt/a", EntryKind::Dir),
                ("opt/a/b", EntryKind::File)
            ]
        );
    }

    #[test]
    fn both_formats_round_trip() {
        let input = [
            file("opt/x/big", 0o755, &[7u8; 1000]),
            file("opt/x/small", 0o644, b"hi"),
        ];
        for fmt in [TarFormat::Vmtar, TarFormat::Ustar] {
            let bytes = write(&input, fmt, 1_600_000_000).unwrap();
            let a = read(&bytes).unwrap();
            assert_eq!(a.format, fmt);
            assert_eq!(a.entries, normalise(&input).unwrap());
        }
    }

    #[test]
    fn vmtar_layout_headers_then_data() {
        let bytes = write(
            &[file("a", 0o644, b"abc"), file("b", 0o644, b"de")],
            TarFormat::Vmtar,
            0,
        )
        .unwrap();
        // 2 headers + zero block = 1536; "abc" padded to 2048; "de" unpadded.
        assert_eq!(bytes.len(), 2048 + 2);
        assert_eq!(&bytes[257..265], VISOR_MAGIC);
        assert_eq!(&bytes[496..500], &1536u32.to_le_bytes());
        assert_eq!(&bytes[512 + 496..512 + 500], &2048u32.to_le_bytes());
    }

    #[test]
    fn checksum_is_signed_like_vmware() {
        // Data at 0x18200 puts 0x82 in the offset field: VMware's sum counts it as -126.
        let big = vec![0u8; 0x18200 - 1024 - 512];
        let bytes = write(
            &[file("a", 0o644, &big), file("b", 0o644, b"x")],
            TarFormat::Vmtar,
            0,
        )
        .unwrap();
        let h = &bytes[512..1024];
        assert_eq!(h[497], 0x82);
        let (unsigned, signed) = checksums(h);
        assert_eq!(unsigned - signed, 256);
        assert_eq!(
            i64::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap(),
            signed
        );
        assert_eq!(read(&bytes).unwrap().entries.len(), 2);
    }

    #[test]
    fn rejects_unsafe_paths() {
        for p in ["/abs", "a/../b", "a//b", ""] {
            assert!(
                matches!(normalise(&[file(p, 0o644, b"")]), Err(TarError::BadPath(_))),
                "{p}"
            );
        }
        assert!(matches!(
            normalise(&[file("a", 0, b""), file("a", 0, b"")]),
            Err(TarError::Duplicate(_))
        ));
    }

    #[test]
    fn detects_corruption() {
        let mut bytes = write(&[file("a", 0o644, b"abc")], TarFormat::Vmtar, 0).unwrap();
        bytes[0] = b'z';
        assert!(matches!(
            read(&bytes),
            Err(TarError::BadChecksum { offset: 0 })
        ));
        let bytes = write(&[file("a", 0o644, b"abc")], TarFormat::Vmtar, 0).unwrap();
        assert!(matches!(
            read(&bytes[..1025]),
            Err(TarError::Truncated { .. })
        ));
    }
}
