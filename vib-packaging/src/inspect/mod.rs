//! Reads a VIB or an offline bundle back and validates it the way ESXi would.
//!
//! Structural failures that stop reading (not an ar/zip, no descriptor, malformed XML) are
//! returned as [`InspectError`]. Everything else is collected, one [`Defect`] per problem, so
//! a user fixes them all in one pass; [`VibReport::warnings`] lists what is legal but will
//! bite on some ESXi version (e.g. a payload without the `sha-256` gunzip checksum that
//! ESXi 8 requires — VIB Author's own output, like the fixture, lacks it).

mod bundle;
mod vib;

use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

pub use bundle::{BulletinReport, BundleReport, BundledVib, MetadataRef, inspect_bundle};
pub use vib::{MemberInfo, PayloadEntry, PayloadReport, VibReport, inspect_vib};

use crate::ar::{self, ArError};
use crate::descriptor::DescriptorError;
use crate::version::IdError;
use crate::zip::ZipError;

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

/// What a check found: defects (ESXi refuses) and warnings (legal but risky), in the order
/// the checks ran.
#[derive(Debug, Default)]
struct Findings {
    defects: Vec<Defect>,
    warnings: Vec<String>,
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
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
