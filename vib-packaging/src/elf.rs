//! Checks that an ELF binary can run in an ESXi 7.0/8.0 user world.
//!
//! ESXi's user worlds provide an old glibc (a glibc 2.17 baseline runs on 6.7–8.0) and no
//! system OpenSSL we could rely on; a binary that needs a newer `GLIBC_2.x` symbol version
//! fails to start, and fully static binaries make raw syscalls ESXi may not implement.
//! `cargo xtask vib` and the tests run [`check_esxi_binary`] on `vmig-agent` before packing it.

use object::elf::{self, FileHeader64};
use object::read::elf::{Dyn, FileHeader};
use object::{Endianness, read::StringTable};

/// The newest glibc symbol version allowed: ESXi 7.0/8.0 run binaries built against 2.17.
pub const GLIBC_BASELINE: (u32, u32) = (2, 17);

/// What the dynamic section and version needs of a binary say.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ElfReport {
    /// `DT_NEEDED` libraries.
    pub needed: Vec<String>,
    /// Every `GLIBC_x.y` version the binary requires, ascending.
    pub glibc_versions: Vec<String>,
    /// The newest of them.
    pub max_glibc: Option<(u32, u32)>,
}

/// Why a binary cannot be checked or would not run on ESXi.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ElfError {
    /// Not a 64-bit x86-64 ELF file.
    #[error("not an x86-64 ELF64 executable: {0}")]
    NotElf(String),
    /// No dynamic section.
    #[error(
        "the binary is statically linked; ESXi needs it dynamically linked against its glibc (build with `cargo zigbuild --target x86_64-unknown-linux-gnu.2.17`)"
    )]
    Static,
    /// A glibc symbol version newer than the baseline.
    #[error("the binary needs GLIBC_{}.{}, newer than ESXi's baseline GLIBC_{}.{}: build with `cargo zigbuild --target x86_64-unknown-linux-gnu.2.17`", .found.0, .found.1, .max.0, .max.1)]
    GlibcTooNew {
        /// Newest version found.
        found: (u32, u32),
        /// Allowed maximum.
        max: (u32, u32),
    },
    /// OpenSSL linked.
    #[error("the binary links {0}; ESXi ships no OpenSSL we may rely on: use rustls")]
    OpenSsl(String),
}

fn parse_glibc(v: &str) -> Option<(u32, u32)> {
    let rest = v.strip_prefix("GLIBC_")?;
    let mut it = rest.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next().unwrap_or("0").parse().ok()?;
    Some((major, minor))
}

/// Reads the `DT_NEEDED` entries and glibc version needs of an ELF64 binary.
///
/// # Errors
/// [`ElfError::NotElf`] or [`ElfError::Static`].
pub fn inspect(data: &[u8]) -> Result<ElfReport, ElfError> {
    let bad = |e: object::read::Error| ElfError::NotElf(e.to_string());
    let header = FileHeader64::<Endianness>::parse(data).map_err(bad)?;
    let endian = header.endian().map_err(bad)?;
    if header.e_machine(endian) != elf::EM_X86_64 {
        return Err(ElfError::NotElf(format!(
            "machine {}",
            header.e_machine(endian)
        )));
    }
    let sections = header.sections(endian, data).map_err(bad)?;
    let Some((dynamic, link)) = sections.dynamic(endian, data).map_err(bad)? else {
        return Err(ElfError::Static);
    };
    let strings: StringTable<'_> = sections.strings(endian, data, link).map_err(bad)?;
    let mut needed = Vec::new();
    for d in dynamic {
        if d.tag32(endian) == Some(elf::DT_NEEDED) {
            let name = d.string(endian, strings).map_err(bad)?;
            needed.push(String::from_utf8_lossy(name).into_owned());
        }
    }
    let mut versions: Vec<(u32, u32)> = Vec::new();
    if let Some((mut iter, link)) = sections.gnu_verneed(endian, data).map_err(bad)? {
        let strings = sections.strings(endian, data, link).map_err(bad)?;
        while let Some((_, mut aux)) = iter.next().map_err(bad)? {
            while let Some(a) = aux.next().map_err(bad)? {
                let name = a.name(endian, strings).map_err(bad)?;
                if let Some(v) = parse_glibc(&String::from_utf8_lossy(name)) {
                    versions.push(v);
                }
            }
        }
    }
    versions.sort_unstable();
    versions.dedup();
    Ok(ElfReport {
        needed,
        max_glibc: versions.last().copied(),
        glibc_versions: versions
            .iter()
            .map(|(a, b)| format!("GLIBC_{a}.{b}"))
            .collect(),
    })
}

/// Inspects `data` and checks it against ESXi's constraints: dynamically linked, no glibc
/// symbol version newer than `max_glibc` ([`GLIBC_BASELINE`]), no OpenSSL.
///
/// # Errors
/// The first [`ElfError`] found.
pub fn check_esxi_binary(data: &[u8], max_glibc: (u32, u32)) -> Result<ElfReport, ElfError> {
    let report = inspect(data)?;
    if let Some(ssl) = report
        .needed
        .iter()
        .find(|n| n.starts_with("libssl") || n.starts_with("libcrypto"))
    {
        return Err(ElfError::OpenSsl(ssl.clone()));
    }
    if let Some(found) = report.max_glibc
        && found > max_glibc
    {
        return Err(ElfError::GlibcTooNew {
            found,
            max: max_glibc,
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(parse_glibc("GLIBC_2.17"), Some((2, 17)));
        assert_eq!(parse_glibc("GLIBC_2.2.5"), Some((2, 2)));
        assert_eq!(parse_glibc("GLIBC_PRIVATE"), None);
        assert!((2, 9) < (2, 17) && (2, 34) > (2, 17));
    }

    #[test]
    fn rejects_non_elf() {
        assert!(matches!(inspect(b"not an elf"), Err(ElfError::NotElf(_))));
    }

    #[test]
    fn reads_the_test_binary_itself() {
        // The test executable is a dynamically linked host binary: it must parse.
        let exe = std::env::current_exe().unwrap();
        let data = std::fs::read(exe).unwrap();
        let report = inspect(&data).unwrap();
        assert!(
            report.needed.iter().any(|n| n.starts_with("libc.so")),
            "{report:?}"
        );
        assert!(report.max_glibc.is_some());
    }
}
