//! Reads a VIB or an offline bundle back and validates it the way ESXi would.
//!
//! Structural failures that stop reading (not an ar/zip, no descriptor, malformed XML) are
//! returned as [`InspectError`]. Everything else is collected, one [`Defect`] per problem, so
//! a user fixes them all in one pass; [`VibReport::warnings`] lists what is legal but will
//! bite on some ESXi version (e.g. a payload without the `sha-256` gunzip checksum that
//! ESXi 8 requires — VIB Author's own output, like the fixture, lacks it).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Serialize, Serializer};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::ar::{self, ArError};
use crate::bundle::Component;
use crate::descriptor::{AcceptanceLevel, Descriptor, DescriptorError};
use crate::gz;
use crate::tarball::{self, EntryKind, TarFormat};
use crate::version::{self, IdError, VibVersion};
use crate::xml::{self, Element};
use crate::zip::{self, ZipError};

/// A problem that makes a VIB or bundle unacceptable to ESXi.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Defect {
    /// First members are not `descriptor.xml`, `sig.pkcs7`.
    #[error("ar members are {found:?}; ESXi expects descriptor.xml, sig.pkcs7, then the payloads")]
    MemberOrder {
        /// Member names in file order.
        found: Vec<String>,
    },
    /// Name, vendor or version invalid.
    #[error("{0}")]
    BadId(#[from] IdError),
    /// `<type>` is not `bootbank`.
    #[error("descriptor type is {0:?}; ESXi 5+ VIBs are `bootbank`")]
    BadVibType(String),
    /// A payload named in the descriptor has no member.
    #[error("payload `{0}` is listed in descriptor.xml but has no ar member")]
    MissingPayload(String),
    /// An ar member no payload names.
    #[error("ar member `{0}` is not a payload listed in descriptor.xml")]
    ExtraMember(String),
    /// Declared payload size differs.
    #[error("payload `{payload}`: descriptor says size {declared}, member has {actual} bytes")]
    PayloadSize {
        /// Payload.
        payload: String,
        /// Declared.
        declared: u64,
        /// Actual.
        actual: u64,
    },
    /// A checksum does not match.
    #[error(
        "payload `{payload}`: {kind} checksum mismatch: descriptor has {declared}, content gives {actual}"
    )]
    ChecksumMismatch {
        /// Payload.
        payload: String,
        /// e.g. `sha-256 (gunzip)`.
        kind: String,
        /// Declared digest.
        declared: String,
        /// Computed digest.
        actual: String,
    },
    /// A checksum type this tool (and ESXi) does not know.
    #[error("payload `{payload}`: unknown checksum {kind}")]
    UnknownChecksum {
        /// Payload.
        payload: String,
        /// Type and process.
        kind: String,
    },
    /// The payload has no plain `sha-256`.
    #[error("payload `{0}` has no sha-256 checksum of the stored member")]
    MissingSha256(String),
    /// Payload is not readable.
    #[error("payload `{payload}` cannot be read: {error}")]
    PayloadUnreadable {
        /// Payload.
        payload: String,
        /// Why.
        error: String,
    },
    /// `<file-list>` differs from the payload files.
    #[error(
        "file-list does not match the payloads: only in file-list {only_in_list:?}, only in payloads {only_in_payloads:?}"
    )]
    FileListMismatch {
        /// Listed but not shipped.
        only_in_list: Vec<String>,
        /// Shipped but not listed.
        only_in_payloads: Vec<String>,
    },
    /// A required bundle file is absent.
    #[error("bundle lacks `{0}`")]
    MissingEntry(String),
    /// A bundle XML file is unreadable.
    #[error("bundle file `{file}` is not valid: {error}")]
    BadMetadata {
        /// File.
        file: String,
        /// Why.
        error: String,
    },
    /// `vmware.xml` names a VIB the bundle does not contain.
    #[error("vmware.xml lists VIB {vib_id} at `{path}`, which the bundle does not contain")]
    VibMissing {
        /// VIB ID.
        vib_id: String,
        /// Relative path.
        path: String,
    },
    /// Metadata about a VIB file disagrees with the file.
    #[error("{file}: {what} for `{path}` is {declared}, the .vib gives {actual}")]
    VibFileMismatch {
        /// Metadata file.
        file: String,
        /// Which field.
        what: &'static str,
        /// `.vib` path.
        path: String,
        /// Declared value.
        declared: String,
        /// Actual value.
        actual: String,
    },
    /// A VIB inside a bundle is unreadable.
    #[error("bundled VIB `{path}` cannot be read: {error}")]
    VibUnreadable {
        /// Path.
        path: String,
        /// Why.
        error: String,
    },
    /// A VIB inside a bundle has defects.
    #[error("bundled VIB `{path}`: {defect}")]
    InVib {
        /// Path.
        path: String,
        /// The defect.
        defect: Box<Defect>,
    },
    /// `vibs/*.xml` missing or differs from the VIB's descriptor.
    #[error("metadata.zip vibs/*.xml for {vib_id}: {problem}")]
    VibsXml {
        /// VIB ID.
        vib_id: String,
        /// What.
        problem: String,
    },
    /// `bulletins/<id>.xml` disagrees with `vmware.xml`.
    #[error("bulletin {id}: {problem}")]
    Bulletin {
        /// Bulletin ID.
        id: String,
        /// What.
        problem: String,
    },
}

impl Serialize for Defect {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why a file could not be inspected at all.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// Neither an ar nor a zip.
    #[error("not a VIB (ar archive) or offline bundle (zip)")]
    UnknownFormat,
    /// Broken ar.
    #[error(transparent)]
    Ar(#[from] ArError),
    /// No descriptor.
    #[error("the VIB has no descriptor.xml member")]
    NoDescriptor,
    /// Bad descriptor.
    #[error(transparent)]
    Descriptor(#[from] DescriptorError),
    /// Broken zip.
    #[error("offline bundle: {0}")]
    Zip(#[from] ZipError),
}

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

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Inspects and validates a `.vib`.
///
/// # Errors
/// [`InspectError`] when the file cannot be read as a VIB at all.
pub fn inspect_vib(bytes: &[u8]) -> Result<VibReport, InspectError> {
    let members = ar::read(bytes)?;
    let mut defects = Vec::new();
    let mut warnings = Vec::new();
    let names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
    if names.len() < 2 || names[0] != "descriptor.xml" || names[1] != "sig.pkcs7" {
        defects.push(Defect::MemberOrder {
            found: names.clone(),
        });
    }
    let desc_member = members
        .iter()
        .find(|m| m.name == "descriptor.xml")
        .ok_or(InspectError::NoDescriptor)?;
    let descriptor = Descriptor::parse(&desc_member.data)?;
    let signature_size = members
        .iter()
        .find(|m| m.name == "sig.pkcs7")
        .map_or(0, |m| m.data.len() as u64);

    for r in [
        version::check_name("VIB name", &descriptor.name),
        version::check_name("vendor", &descriptor.vendor),
        VibVersion::parse(&descriptor.version).map(|_| ()),
    ] {
        if let Err(e) = r {
            defects.push(e.into());
        }
    }
    if descriptor.vib_type != "bootbank" {
        defects.push(Defect::BadVibType(descriptor.vib_type.clone()));
    }
    if !descriptor.unknown_elements.is_empty() {
        warnings.push(format!(
            "descriptor has elements this tool does not know: {:?}",
            descriptor.unknown_elements
        ));
    }
    match (descriptor.acceptance_level, signature_size) {
        (AcceptanceLevel::Community, n) if n > 0 => {
            warnings.push("CommunitySupported VIB carries a signature; ESXi ignores it".into())
        }
        (level, 0) if level != AcceptanceLevel::Community => warnings.push(format!(
            "acceptance level {} but sig.pkcs7 is empty: installs only with --no-sig-check",
            level.as_str()
        )),
        _ => {}
    }

    let mut payloads = Vec::new();
    let mut shipped: BTreeSet<String> = BTreeSet::new();
    for p in &descriptor.payloads {
        let Some(m) = members.iter().find(|m| m.name == p.name) else {
            defects.push(Defect::MissingPayload(p.name.clone()));
            continue;
        };
        if p.size != m.data.len() as u64 {
            defects.push(Defect::PayloadSize {
                payload: p.name.clone(),
                declared: p.size,
                actual: m.data.len() as u64,
            });
        }
        if !matches!(p.payload_type.as_str(), "vgz" | "tgz") {
            warnings.push(format!(
                "payload `{}` has type {:?}; only vgz and tgz are checked",
                p.name, p.payload_type
            ));
            continue;
        }
        let unpacked = match gz::decompress(&p.name, &m.data, gz::MAX_UNCOMPRESSED) {
            Ok(u) => Some(u),
            Err(e) => {
                defects.push(Defect::PayloadUnreadable {
                    payload: p.name.clone(),
                    error: e.to_string(),
                });
                None
            }
        };
        let has = |t: &str, v: Option<&str>| {
            p.checksums
                .iter()
                .any(|c| c.checksum_type == t && c.verify_process.as_deref() == v)
        };
        if !has("sha-256", None) {
            defects.push(Defect::MissingSha256(p.name.clone()));
        }
        if !has("sha-256", Some("gunzip")) {
            warnings.push(format!(
                "payload `{}` has no sha-256 gunzip checksum: ESXi 8 refuses it (MISSING_GUNZIP_CHECKSUM_VIB_ERRORS)",
                p.name
            ));
        }
        for c in &p.checksums {
            let kind = match &c.verify_process {
                Some(v) => format!("{} ({v})", c.checksum_type),
                None => c.checksum_type.clone(),
            };
            let input: Option<&[u8]> = match c.verify_process.as_deref() {
                None => Some(&m.data),
                Some("gunzip") => unpacked.as_deref(),
                Some(_) => {
                    defects.push(Defect::UnknownChecksum {
                        payload: p.name.clone(),
                        kind,
                    });
                    continue;
                }
            };
            let Some(input) = input else { continue };
            let actual = match c.checksum_type.as_str() {
                "sha-256" => sha256_hex(input),
                "sha-1" => hex::encode(Sha1::digest(input)),
                _ => {
                    defects.push(Defect::UnknownChecksum {
                        payload: p.name.clone(),
                        kind,
                    });
                    continue;
                }
            };
            if !actual.eq_ignore_ascii_case(&c.value) {
                defects.push(Defect::ChecksumMismatch {
                    payload: p.name.clone(),
                    kind,
                    declared: c.value.clone(),
                    actual,
                });
            }
        }
        let Some(unpacked) = unpacked else { continue };
        match tarball::read(&unpacked) {
            Ok(archive) => {
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
                    warnings.push(format!(
                        "payload `{}` is type {} but holds a {format} archive (VMware writes {expected})",
                        p.name, p.payload_type
                    ));
                }
                for e in &archive.entries {
                    if e.kind == EntryKind::File {
                        shipped.insert(e.path.clone());
                    }
                }
                payloads.push(PayloadReport {
                    name: p.name.clone(),
                    format: format.into(),
                    size: m.data.len() as u64,
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
                });
            }
            Err(e) => defects.push(Defect::PayloadUnreadable {
                payload: p.name.clone(),
                error: e.to_string(),
            }),
        }
    }
    for m in members.iter().skip(2) {
        if !descriptor.payloads.iter().any(|p| p.name == m.name)
            && m.name != "descriptor.xml"
            && m.name != "sig.pkcs7"
        {
            defects.push(Defect::ExtraMember(m.name.clone()));
        }
    }
    // Compare only when every payload was read; otherwise the mismatch is noise.
    if payloads.len() == descriptor.payloads.len() {
        let listed: BTreeSet<String> = descriptor.files.iter().cloned().collect();
        if listed != shipped {
            defects.push(Defect::FileListMismatch {
                only_in_list: listed.difference(&shipped).cloned().collect(),
                only_in_payloads: shipped.difference(&listed).cloned().collect(),
            });
        }
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
        defects,
        warnings,
    })
}

/// One `<metadata>` of `vendor-index.xml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetadataRef {
    /// `productId`.
    pub product_id: String,
    /// ESXi version pattern.
    pub version: String,
    /// `metadata.zip` path.
    pub url: String,
}

/// A bulletin as `vmware.xml` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BulletinReport {
    /// Bulletin ID.
    pub id: String,
    /// Vendor.
    pub vendor: String,
    /// The vLCM component, when both specs are present.
    pub component: Option<Component>,
    /// `softwarePlatform` versions.
    pub platforms: Vec<String>,
    /// VIB IDs.
    pub vib_ids: Vec<String>,
}

/// A VIB inside a bundle.
#[derive(Debug, Clone, Serialize)]
pub struct BundledVib {
    /// Path inside the bundle.
    pub path: String,
    /// Its report.
    pub report: VibReport,
}

/// Everything `inspect` learnt about an offline bundle.
#[derive(Debug, Clone, Serialize)]
pub struct BundleReport {
    /// Entries of the outer zip, in order.
    pub entries: Vec<String>,
    /// Entries of `metadata.zip`, in order.
    pub metadata_entries: Vec<String>,
    /// `index.xml` vendor (name, code).
    pub vendors: Vec<(String, String)>,
    /// `vendor-index.xml` metadata references.
    pub metadata: Vec<MetadataRef>,
    /// Bulletins.
    pub bulletins: Vec<BulletinReport>,
    /// VIBs, validated.
    pub vibs: Vec<BundledVib>,
    /// Problems ESXi or vLCM would reject (including those of bundled VIBs).
    pub defects: Vec<Defect>,
    /// Legal but risky.
    pub warnings: Vec<String>,
}

fn parse_xml(file: &str, data: &[u8], defects: &mut Vec<Defect>) -> Option<Element> {
    match xml::parse(data) {
        Ok(e) => Some(e),
        Err(e) => {
            defects.push(Defect::BadMetadata {
                file: file.into(),
                error: e.to_string(),
            });
            None
        }
    }
}

fn component_of(
    b: &Element,
    defects: &mut Vec<Defect>,
    warnings: &mut Vec<String>,
    id: &str,
) -> Option<Component> {
    match (
        b.child("componentNameSpec"),
        b.child("componentVersionSpec"),
    ) {
        (Some(n), Some(v)) => Some(Component {
            name: n.attr("name").unwrap_or_default().into(),
            ui_name: n.attr("uiString").unwrap_or_default().into(),
            version: v.attr("version").unwrap_or_default().into(),
            ui_version: v.attr("uiString").unwrap_or_default().into(),
        }),
        (None, None) => {
            warnings.push(format!(
                "bulletin {id} has no componentNameSpec/componentVersionSpec: a legacy bulletin, not a vSphere 7+ component (vLCM cannot add it to an image)"
            ));
            None
        }
        _ => {
            defects.push(Defect::Bulletin {
                id: id.into(),
                problem: "has only one of componentNameSpec and componentVersionSpec".into(),
            });
            None
        }
    }
}

/// Inspects and validates an offline bundle, including every VIB it contains.
///
/// # Errors
/// [`InspectError::Zip`] when the outer zip cannot be read.
pub fn inspect_bundle(bytes: &[u8]) -> Result<BundleReport, InspectError> {
    let outer = zip::read(bytes)?;
    let files: BTreeMap<&str, &[u8]> = outer
        .iter()
        .map(|e| (e.name.as_str(), e.data.as_slice()))
        .collect();
    let mut defects = Vec::new();
    let mut warnings = Vec::new();
    let mut vendors = Vec::new();
    let mut metadata = Vec::new();
    let mut bulletins = Vec::new();
    let mut vibs = Vec::new();
    let mut metadata_entries = Vec::new();

    let mut index_files = Vec::new();
    match files.get("index.xml") {
        None => defects.push(Defect::MissingEntry("index.xml".into())),
        Some(d) => {
            if let Some(idx) = parse_xml("index.xml", d, &mut defects) {
                for v in idx.children_named("vendor") {
                    vendors.push((
                        v.child_text("name").unwrap_or_default().to_string(),
                        v.child_text("code").unwrap_or_default().to_string(),
                    ));
                    index_files.push(v.child_text("indexfile").unwrap_or_default().to_string());
                }
            }
        }
    }
    let mut urls = BTreeSet::new();
    for f in &index_files {
        let Some(d) = files.get(f.as_str()) else {
            defects.push(Defect::MissingEntry(f.clone()));
            continue;
        };
        let Some(vi) = parse_xml(f, d, &mut defects) else {
            continue;
        };
        for m in vi.children_named("metadata") {
            let r = MetadataRef {
                product_id: m.child_text("productId").unwrap_or_default().into(),
                version: m.child_text("version").unwrap_or_default().into(),
                url: m.child_text("url").unwrap_or_default().into(),
            };
            urls.insert(r.url.clone());
            metadata.push(r);
        }
    }
    if !index_files.is_empty()
        && metadata.is_empty()
        && !defects.iter().any(|d| matches!(d, Defect::MissingEntry(_)))
    {
        defects.push(Defect::BadMetadata {
            file: "vendor-index.xml".into(),
            error: "no <metadata> entries".into(),
        });
    }
    let mut referenced = BTreeSet::new();
    for url in &urls {
        let Some(mz) = files.get(url.as_str()) else {
            defects.push(Defect::MissingEntry(url.clone()));
            continue;
        };
        let inner = match zip::read(mz) {
            Ok(i) => i,
            Err(e) => {
                defects.push(Defect::BadMetadata {
                    file: url.clone(),
                    error: e.to_string(),
                });
                continue;
            }
        };
        metadata_entries.extend(inner.iter().map(|e| e.name.clone()));
        let meta: BTreeMap<&str, &[u8]> = inner
            .iter()
            .map(|e| (e.name.as_str(), e.data.as_slice()))
            .collect();
        if let (Some(a), Some(b)) = (meta.get("vendor-index.xml"), files.get("vendor-index.xml"))
            && a != b
        {
            warnings.push(format!(
                "{url}/vendor-index.xml differs from the top-level vendor-index.xml"
            ));
        }
        let Some(vx) = meta.get("vmware.xml") else {
            defects.push(Defect::MissingEntry(format!("{url}/vmware.xml")));
            continue;
        };
        let Some(vm) = parse_xml("vmware.xml", vx, &mut defects) else {
            continue;
        };
        // vibs/*.xml, keyed by the relative path they describe.
        let mut vibs_xml: BTreeMap<String, Descriptor> = BTreeMap::new();
        for (name, data) in meta
            .iter()
            .filter(|(n, _)| n.starts_with("vibs/") && n.ends_with(".xml"))
        {
            match Descriptor::parse(data) {
                Ok(d) => match &d.depot {
                    Some(dep) => {
                        vibs_xml.insert(dep.relative_path.clone(), d);
                    }
                    None => defects.push(Defect::BadMetadata {
                        file: (*name).into(),
                        error: "lacks relative-path/packed-size/checksum".into(),
                    }),
                },
                Err(e) => defects.push(Defect::BadMetadata {
                    file: (*name).into(),
                    error: e.to_string(),
                }),
            }
        }
        let mut records: Vec<&Element> = vm.children_named("vib").collect();
        for b in vm.children_named("bulletin") {
            let id = b.child_text("id").unwrap_or_default().to_string();
            let component = component_of(b, &mut defects, &mut warnings, &id);
            let list = b.child("vibList");
            let mut vib_ids = Vec::new();
            for v in list.into_iter().flat_map(|l| l.children.iter()) {
                match v.name.as_str() {
                    "vib" => {
                        vib_ids.push(v.child_text("vibID").unwrap_or_default().to_string());
                        records.push(v);
                    }
                    "vibID" => vib_ids.push(v.text.clone()),
                    _ => {}
                }
            }
            let platforms = b
                .child("platforms")
                .into_iter()
                .flat_map(|p| p.children_named("softwarePlatform"))
                .map(|p| p.attr("version").unwrap_or_default().to_string())
                .collect();
            let bfile = format!("bulletins/{id}.xml");
            match meta.get(bfile.as_str()) {
                None => defects.push(Defect::MissingEntry(format!("{url}/{bfile}"))),
                Some(d) => {
                    if let Some(bx) = parse_xml(&bfile, d, &mut defects) {
                        let listed: Vec<String> = bx
                            .child("vibList")
                            .into_iter()
                            .flat_map(|l| l.children_named("vibID"))
                            .map(|v| v.text.clone())
                            .collect();
                        if listed != vib_ids {
                            defects.push(Defect::Bulletin {
                                id: id.clone(),
                                problem: format!(
                                    "{bfile} lists {listed:?}, vmware.xml lists {vib_ids:?}"
                                ),
                            });
                        }
                        let here = component_of(&bx, &mut Vec::new(), &mut Vec::new(), &id);
                        if here != component {
                            defects.push(Defect::Bulletin {
                                id: id.clone(),
                                problem: format!(
                                    "{bfile} and vmware.xml disagree on the component specs"
                                ),
                            });
                        }
                    }
                }
            }
            bulletins.push(BulletinReport {
                id,
                vendor: b.child_text("vendor").unwrap_or_default().into(),
                component,
                platforms,
                vib_ids,
            });
        }
        for r in records {
            let vib_id = r.child_text("vibID").unwrap_or_default().to_string();
            let vf = r.child("vibFile");
            let path = vf
                .and_then(|f| f.child_text("relativePath"))
                .unwrap_or_default()
                .to_string();
            referenced.insert(path.clone());
            let Some(data) = files.get(path.as_str()) else {
                defects.push(Defect::VibMissing { vib_id, path });
                continue;
            };
            let mismatch = |file: &str, what: &'static str, declared: String, actual: String| {
                Defect::VibFileMismatch {
                    file: file.into(),
                    what,
                    path: path.clone(),
                    declared,
                    actual,
                }
            };
            let size = data.len().to_string();
            let sha = sha256_hex(data);
            let declared_size = vf
                .and_then(|f| f.child_text("packedSize"))
                .unwrap_or_default()
                .trim()
                .to_string();
            if declared_size != size {
                defects.push(mismatch(
                    "vmware.xml",
                    "packedSize",
                    declared_size,
                    size.clone(),
                ));
            }
            let declared_sha = vf
                .and_then(|f| f.child("checksum"))
                .and_then(|c| c.child_text("checksum"))
                .unwrap_or_default()
                .trim()
                .to_string();
            if !declared_sha.eq_ignore_ascii_case(&sha) {
                defects.push(mismatch("vmware.xml", "sha-256", declared_sha, sha.clone()));
            }
            let report = match inspect_vib(data) {
                Ok(r) => r,
                Err(e) => {
                    defects.push(Defect::VibUnreadable {
                        path,
                        error: e.to_string(),
                    });
                    continue;
                }
            };
            if report.vib_id != vib_id {
                defects.push(mismatch(
                    "vmware.xml",
                    "vibID",
                    vib_id.clone(),
                    report.vib_id.clone(),
                ));
            }
            match vibs_xml.get(&path) {
                None => defects.push(Defect::VibsXml {
                    vib_id: vib_id.clone(),
                    problem: format!("none describes {path}"),
                }),
                Some(d) => {
                    let mut plain = d.clone();
                    let depot = plain.depot.take();
                    if plain != report.descriptor {
                        defects.push(Defect::VibsXml {
                            vib_id: vib_id.clone(),
                            problem: "differs from the VIB's descriptor.xml".into(),
                        });
                    }
                    if let Some(dep) = depot {
                        if dep.packed_size.to_string() != size {
                            defects.push(mismatch(
                                "vibs/*.xml",
                                "packed-size",
                                dep.packed_size.to_string(),
                                size,
                            ));
                        }
                        if !dep.sha256.eq_ignore_ascii_case(&sha) {
                            defects.push(mismatch("vibs/*.xml", "sha-256", dep.sha256, sha));
                        }
                    }
                }
            }
            defects.extend(report.defects.iter().map(|d| Defect::InVib {
                path: path.clone(),
                defect: Box::new(d.clone()),
            }));
            vibs.push(BundledVib { path, report });
        }
    }
    for e in &outer {
        if e.name.ends_with(".vib") && !referenced.contains(&e.name) {
            warnings.push(format!(
                "{} is in the bundle but no metadata lists it",
                e.name
            ));
        }
    }
    Ok(BundleReport {
        entries: outer.iter().map(|e| e.name.clone()).collect(),
        metadata_entries,
        vendors,
        metadata,
        bulletins,
        vibs,
        defects,
        warnings,
    })
}

/// A report on either kind of file.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Report {
    /// A `.vib`.
    Vib(Box<VibReport>),
    /// An offline bundle.
    Bundle(Box<BundleReport>),
}

impl Report {
    /// All defects (a bundle's include its VIBs').
    pub fn defects(&self) -> &[Defect] {
        match self {
            Self::Vib(r) => &r.defects,
            Self::Bundle(r) => &r.defects,
        }
    }

    /// All warnings (a bundle's VIBs' warnings are in their reports).
    pub fn warnings(&self) -> Vec<String> {
        match self {
            Self::Vib(r) => r.warnings.clone(),
            Self::Bundle(r) => {
                let mut w = r.warnings.clone();
                for v in &r.vibs {
                    w.extend(v.report.warnings.iter().map(|x| format!("{}: {x}", v.path)));
                }
                w
            }
        }
    }
}

/// Inspects `bytes`, telling a VIB (`!<arch>`) from a bundle (`PK`) by its magic.
///
/// # Errors
/// [`InspectError`].
pub fn inspect(bytes: &[u8]) -> Result<Report, InspectError> {
    if bytes.starts_with(ar::MAGIC) {
        Ok(Report::Vib(Box::new(inspect_vib(bytes)?)))
    } else if bytes.starts_with(b"PK") {
        Ok(Report::Bundle(Box::new(inspect_bundle(bytes)?)))
    } else {
        Err(InspectError::UnknownFormat)
    }
}
