//! The `ar` container a VIB is made of.
//!
//! ESXi reads a VIB as a System V / GNU `ar` archive whose members are `descriptor.xml`,
//! `sig.pkcs7` and then one member per payload. The writer reproduces the headers VMware's
//! VIB Author writes (see the fixture in `shared/fixtures/vib/`): name left-aligned in 16
//! columns without GNU's trailing `/`, mtime, uid, gid and mode all `0`, decimal size, and
//! one `\n` of padding after odd-sized members. Because every varying field is fixed, the
//! same members always give the same bytes.
//!
//! The reader accepts any well-formed archive (GNU names with a trailing `/`, other
//! modes) but never panics or over-reads on hostile input: it is a fuzz target.

/// The 8-byte global header that starts every `ar` archive.
pub const MAGIC: &[u8; 8] = b"!<arch>\n";
const HEADER_LEN: usize = 60;

/// One member of an `ar` archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArMember {
    /// Member name (at most 16 bytes, no `/`).
    pub name: String,
    /// Member contents.
    pub data: Vec<u8>,
}

/// Why bytes are not a readable `ar` archive.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArError {
    /// The file does not start with `!<arch>\n`.
    #[error(
        "not an ar archive (a VIB starts with `!<arch>\\n`): the file is not a VIB or is damaged"
    )]
    BadMagic,
    /// A member header is cut short.
    #[error(
        "ar archive truncated: member header at byte {offset} needs 60 bytes, only {available} left"
    )]
    TruncatedHeader {
        /// Offset of the header.
        offset: usize,
        /// Bytes left in the file.
        available: usize,
    },
    /// A header does not end with the two bytes "`\n".
    #[error("ar member header at byte {offset} does not end with \"`\\n\": the archive is damaged")]
    BadHeaderEnd {
        /// Offset of the header.
        offset: usize,
    },
    /// The size field is not a decimal number.
    #[error("ar member `{name}` has an unreadable size field {field:?}")]
    BadSize {
        /// Member name.
        name: String,
        /// The raw field.
        field: String,
    },
    /// A member's data runs past the end of the file.
    #[error(
        "ar archive truncated: member `{name}` declares {declared} bytes, only {available} left"
    )]
    TruncatedMember {
        /// Member name.
        name: String,
        /// Declared size.
        declared: usize,
        /// Bytes left in the file.
        available: usize,
    },
    /// A member name cannot be written in a 16-byte header.
    #[error("ar member name `{0}` must be 1..=16 ASCII bytes without `/` or spaces")]
    BadName(String),
}

/// Serialises members into an archive with VIB Author's fixed header fields.
///
/// # Errors
/// [`ArError::BadName`] if a name does not fit the 16-byte field.
pub fn write(members: &[ArMember]) -> Result<Vec<u8>, ArError> {
    let total: usize = members.iter().map(|m| HEADER_LEN + m.data.len() + 1).sum();
    let mut out = Vec::with_capacity(MAGIC.len() + total);
    out.extend_from_slice(MAGIC);
    for m in members {
        let valid = !m.name.is_empty()
            && m.name.len() <= 16
            && m.name.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
        if !valid {
            return Err(ArError::BadName(m.name.clone()));
        }
        let header = format!(
            "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            m.name,
            0,
            0,
            0,
            0,
            m.data.len()
        );
        debug_assert_eq!(header.len(), HEADER_LEN);
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&m.data);
        if !m.data.len().is_multiple_of(2) {
            out.push(b'\n');
        }
    }
    Ok(out)
}

/// Parses an archive into its members, in file order.
///
/// # Errors
/// Any [`ArError`] describing the first defect met.
pub fn read(bytes: &[u8]) -> Result<Vec<ArMember>, ArError> {
    if !bytes.starts_with(MAGIC) {
        return Err(ArError::BadMagic);
    }
    let mut members = Vec::new();
    let mut off = MAGIC.len();
    while off < bytes.len() {
        // A lone padding byte at the very end is tolerated (some writers pad the archive).
        if bytes.len() - off == 1 && bytes[off] == b'\n' {
            break;
        }
        let Some(header) = bytes.get(off..off + HEADER_LEN) else {
            return Err(ArError::TruncatedHeader {
                offset: off,
                available: bytes.len() - off,
            });
        };
        if &header[58..60] != b"`\n" {
            return Err(ArError::BadHeaderEnd { offset: off });
        }
        let raw_name = String::from_utf8_lossy(&header[0..16]);
        let name = raw_name.trim_end().trim_end_matches('/').to_string();
        let size_field = String::from_utf8_lossy(&header[48..58]).trim().to_string();
        let size: usize = size_field.parse().map_err(|_| ArError::BadSize {
            name: name.clone(),
            field: size_field.clone(),
        })?;
        let start = off + HEADER_LEN;
        let available = bytes.len() - start;
        if size > available {
            return Err(ArError::TruncatedMember {
                name,
                declared: size,
                available,
            });
        }
        members.push(ArMember {
            name,
            data: bytes[start..start + size].to_vec(),
        });
        off = start + size + size % 2;
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_matches_vib_author_layout() {
        let out = write(&[ArMember {
            name: "sig.pkcs7".into(),
            data: vec![],
        }])
        .unwrap();
        assert_eq!(
            &out[8..],
            b"sig.pkcs7       0           0     0     0       0         `\n"
        );
    }

    #[test]
    fn odd_members_are_padded_and_round_trip() {
        let members = vec![
            ArMember {
                name: "a".into(),
                data: b"abc".to_vec(),
            },
            ArMember {
                name: "b".into(),
                data: b"de".to_vec(),
            },
        ];
        let out = write(&members).unwrap();
        assert_eq!(out.len(), 8 + 60 + 4 + 60 + 2);
        assert_eq!(read(&out).unwrap(), members);
    }

    #[test]
    fn gnu_names_lose_their_slash() {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(b"x/              0           0     0     100644  1         `\nZ\n");
        assert_eq!(read(&out).unwrap()[0].name, "x");
    }

    #[test]
    fn rejects_bad_names() {
        for n in ["", "a/b", "seventeen-chars-x", "a b"] {
            assert!(matches!(
                write(&[ArMember {
                    name: n.into(),
                    data: vec![]
                }]),
                Err(ArError::BadName(_))
            ));
        }
    }

    #[test]
    fn reports_truncation() {
        let out = write(&[ArMember {
            name: "a".into(),
            data: vec![1; 10],
        }])
        .unwrap();
        assert!(matches!(
            read(&out[..50]),
            Err(ArError::TruncatedHeader { offset: 8, .. })
        ));
        assert!(matches!(
            read(&out[..70]),
            Err(ArError::TruncatedMember {
                declared: 10,
                available: 2,
                ..
            })
        ));
        assert_eq!(read(b"junk"), Err(ArError::BadMagic));
    }
}
