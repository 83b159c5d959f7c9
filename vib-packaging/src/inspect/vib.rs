//! Validation of one `.vib`: ar layout, descriptor identity, then each payload (size,
//! checksums, archive contents), then the members and files no payload accounts for.

use std::collections::BTreeSet;

use serde::Serialize;
use sha1::Sha1;
use sha2::Digest;

use super::{Defect, Findings, InspectError, sha256_hex};
use crate::ar::{self, ArMember};
use crate::descriptor::{AcceptanceLevel, Descriptor, Payload};
use crate::gz;
use crate::tarball::{self, EntryKind, TarFormat};
use crate::version::{self, VibVersion};

/// One ar member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberInfo {
    /// Name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

/// One file or directory of a payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PayloadEntry {
    /// Path.
    pub path: String,
    /// File or directory.
    pub kind: EntryKind,
    /// Octal mode, e.g. `1644`.
    pub mode: String,
    /// Size (0 for directories).
    pub size: u64,
}

/// What a payload holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PayloadReport {
    /// Payload name.
    pub name: String,
    /// `vmtar` or `ustar`, as found inside the gzip.
    pub format: String,
    /// Stored (compressed) size.
    pub size: u64,
    /// Decompressed size.
    pub uncompressed_size: u64,
    /// Entries in archive order.
    pub entries: Vec<PayloadEntry>,
}

/// Everything `inspect` learnt about a VIB.
#[derive(Debug, Clone, Serialize)]
pub struct VibReport {
    /// `<vendor>_<type>_<name>_<version>`.
    pub vib_id: String,
    /// Size of the `.vib`.
    pub size: u64,
    /// SHA-256 of the `.vib`.
    pub sha256: String,
    /// ar members in order.
    pub members: Vec<MemberInfo>,
    /// Size of `sig.pkcs7` (0 = unsigned).
    pub signature_size: u64,
    /// The parsed descriptor.
    pub descriptor: Descriptor,
    /// Payload contents.
    pub payloads: Vec<PayloadReport>,
    /// Problems ESXi would reject.
    pub defects: Vec<Defect>,
    /// Legal but risky.
    pub warnings: Vec<String>,
}

/// Inspects and validates a `.vib`.
///
/// # Errors
/// [`InspectError`] when the file cannot be read as a VIB at all.
pub fn inspect_vib(bytes: &[u8]) -> Result<VibReport, InspectError> {
    let members = ar::read(bytes)?;
    let mut found = Findings::default();
    check_member_order(&members, &mut found);
    let desc_member = members
        .iter()
        .find(|m| m.name == "descriptor.xml")
        .ok_or(InspectError::NoDescriptor)?;
    let descriptor = Descriptor::parse(&desc_member.data)?;
    let signature_size = members
        .iter()
        .find(|m| m.name == "sig.pkcs7")
        .map_or(0, |m| m.data.len() as u64);
    check_identity(&descriptor, &mut found);
    check_signature(descriptor.acceptance_level, signature_size, &mut found);

    let mut payloads = Vec::new();
    for p in &descriptor.payloads {
        let Some(m) = members.iter().find(|m| m.name == p.name) else {
            found.defects.push(Defect::MissingPayload(p.name.clone()));
            continue;
        };
        if let Some(report) = inspect_payload(p, &m.data, &mut found) {
            payloads.push(report);
        }
    }
    check_extra_members(&members, &descriptor, &mut found);
    // Compare only when every payload was read; otherwise the mismatch is noise.
    if payloads.len() == descriptor.payloads.len() {
        check_file_list(&descriptor, &payloads, &mut found);
    }
    Ok(VibReport {
        vib_id: descriptor.vib_id(),
        size: bytes.len() as u64,
        sha256: sha256_hex(bytes),
        members: members
            .iter()
            .map(|m| MemberInfo {
                name: m.name.clone(),
                size: m.data.len() as u64,
            })
            .collect(),
        signature_size,
        descriptor,
        payloads,
        defects: found.defects,
        warnings: found.warnings,
    })
}

/// ESXi reads `descriptor.xml` and `sig.pkcs7` as the first two members.
fn check_member_order(members: &[ArMember], found: &mut Findings) {
    let names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
    if names.len() < 2 || names[0] != "descriptor.xml" || names[1] != "sig.pkcs7" {
        found.defects.push(Defect::MemberOrder { found: names });
    }
}

/// Name, vendor, version and type, plus elements this tool does not know.
fn check_identity(descriptor: &Descriptor, found: &mut Findings) {
    for r in [
        version::check_name("VIB name", &descriptor.name),
        version::check_name("vendor", &descriptor.vendor),
        VibVersion::parse(&descriptor.version).map(|_| ()),
    ] {
        if let Err(e) = r {
            found.defects.push(e.into());
        }
    }
    if descriptor.vib_type != "bootbank" {
        found
            .defects
            .push(Defect::BadVibType(descriptor.vib_type.clone()));
    }
    if !descriptor.unknown_elements.is_empty() {
        found.warnings.push(format!(
            "descriptor has elements this tool does not know: {:?}",
            descriptor.unknown_elements
        ));
    }
}

/// A signature only matters above CommunitySupported; say when one is pointless or missing.
fn check_signature(level: AcceptanceLevel, signature_size: u64, found: &mut Findings) {
    match (level, signature_size) {
        (AcceptanceLevel::Community, n) if n > 0 => found
            .warnings
            .push("CommunitySupported VIB carries a signature; ESXi ignores it".into()),
        (level, 0) if level != AcceptanceLevel::Community => found.warnings.push(format!(
            "acceptance level {} but sig.pkcs7 is empty: installs only with --no-sig-check",
            level.as_str()
        )),
        _ => {}
    }
}

/// Checks one payload against its member (`stored`); its report when its archive was read.
fn inspect_payload(p: &Payload, stored: &[u8], found: &mut Findings) -> Option<PayloadReport> {
    if p.size != stored.len() as u64 {
        found.defects.push(Defect::PayloadSize {
            payload: p.name.clone(),
            declared: p.size,
            actual: stored.len() as u64,
        });
    }
    if !matches!(p.payload_type.as_str(), "vgz" | "tgz") {
        found.warnings.push(format!(
            "payload `{}` has type {:?}; only vgz and tgz are checked",
            p.name, p.payload_type
        ));
        return None;
    }
    let unpacked = match gz::decompress(&p.name, stored, gz::MAX_UNCOMPRESSED) {
        Ok(u) => Some(u),
        Err(e) => {
            found.defects.push(Defect::PayloadUnreadable {
                payload: p.name.clone(),
                error: e.to_string(),
            });
            None
        }
    };
    check_checksum_kinds(p, found);
    verify_checksums(p, stored, unpacked.as_deref(), found);
    read_payload_archive(p, stored, &unpacked?, found)
}

/// The checksums ESXi insists on: `sha-256` of the member (all versions) and of the
/// gunzipped payload (ESXi 8).
fn check_checksum_kinds(p: &Payload, found: &mut Findings) {
    let has = |t: &str, v: Option<&str>| {
        p.checksums
            .iter()
            .any(|c| c.checksum_type == t && c.verify_process.as_deref() == v)
    };
    if !has("sha-256", None) {
        found.defects.push(Defect::MissingSha256(p.name.clone()));
    }
    if !has("sha-256", Some("gunzip")) {
        found.warnings.push(format!(
            "payload `{}` has no sha-256 gunzip checksum: ESXi 8 refuses it (MISSING_GUNZIP_CHECKSUM_VIB_ERRORS)",
            p.name
        ));
    }
}

/// Recomputes every declared checksum over the stored member or, for `gunzip`, over the
/// decompressed payload (skipped when it could not be decompressed: already a defect).
fn verify_checksums(p: &Payload, stored: &[u8], unpacked: Option<&[u8]>, found: &mut Findings) {
    for c in &p.checksums {
        let kind = match &c.verify_process {
            Some(v) => format!("{} ({v})", c.checksum_type),
            None => c.checksum_type.clone(),
        };
        let unknown = || Defect::UnknownChecksum {
            payload: p.name.clone(),
            kind: kind.clone(),
        };
        let input = match c.verify_process.as_deref() {
            None => Some(stored),
            Some("gunzip") => unpacked,
            Some(_) => {
                found.defects.push(unknown());
                continue;
            }
        };
        let Some(input) = input else { continue };
        let actual = match c.checksum_type.as_str() {
            "sha-256" => sha256_hex(input),
            "sha-1" => hex::encode(Sha1::digest(input)),
            _ => {
                found.defects.push(unknown());
                continue;
            }
        };
        if !actual.eq_ignore_ascii_case(&c.value) {
            found.defects.push(Defect::ChecksumMismatch {
                payload: p.name.clone(),
                kind,
                declared: c.value.clone(),
                actual,
            });
        }
    }
}

/// Reads the tar inside a decompressed payload and lists its entries.
fn read_payload_archive(
    p: &Payload,
    stored: &[u8],
    unpacked: &[u8],
    found: &mut Findings,
) -> Option<PayloadReport> {
    let archive = match tarball::read(unpacked) {
        Ok(a) => a,
        Err(e) => {
            found.defects.push(Defect::PayloadUnreadable {
                payload: p.name.clone(),
                error: e.to_string(),
            });
            return None;
        }
    };
    let format = match archive.format {
        TarFormat::Vmtar => "vmtar",
        TarFormat::Ustar => "ustar",
    };
    let expected = if p.payload_type == "vgz" {
        "vmtar"
    } else {
        "ustar"
    };
    if format != expected {
        found.warnings.push(format!(
            "payload `{}` is type {} but holds a {format} archive (VMware writes {expected})",
            p.name, p.payload_type
        ));
    }
    Some(PayloadReport {
        name: p.name.clone(),
        format: format.into(),
        size: stored.len() as u64,
        uncompressed_size: unpacked.len() as u64,
        entries: archive
            .entries
            .iter()
            .map(|e| PayloadEntry {
                path: e.path.clone(),
                kind: e.kind,
                mode: format!("{:04o}", e.mode),
                size: e.data.len() as u64,
            })
            .collect(),
    })
}

/// Members after the first two that no payload names.
fn check_extra_members(members: &[ArMember], descriptor: &Descriptor, found: &mut Findings) {
    for m in members.iter().skip(2) {
        if !descriptor.payloads.iter().any(|p| p.name == m.name)
            && m.name != "descriptor.xml"
            && m.name != "sig.pkcs7"
        {
            found.defects.push(Defect::ExtraMember(m.name.clone()));
        }
    }
}

/// `<file-list>` must name exactly the files the payloads ship.
fn check_file_list(descriptor: &Descriptor, payloads: &[PayloadReport], found: &mut Findings) {
    let shipped: BTreeSet<String> = payloads
        .iter()
        .flat_map(|p| &p.entries)
        .filter(|e| e.kind == EntryKind::File)
        .map(|e| e.path.clone())
        .collect();
    let listed: BTreeSet<String> = descriptor.files.iter().cloned().collect();
    if listed != shipped {
        found.defects.push(Defect::FileListMismatch {
            only_in_list: listed.difference(&shipped).cloned().collect(),
            only_in_payloads: shipped.difference(&listed).cloned().collect(),
        });
    }
}
