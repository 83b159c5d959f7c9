//! Builds a VIB and its offline bundle from a [`Spec`] and the files to ship.
//!
//! Everything that could vary between two builds of the same inputs is fixed: the epoch
//! (`SOURCE_DATE_EPOCH`) supplies every date, archives are sorted and owned by root, gzip
//! and zip headers carry no wall-clock time. Building twice gives the same bytes; a new
//! epoch gives a new version (see [`crate::version::derive`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::ar::{self, ArMember};
use crate::bundle::{self, BundleMeta, Component};
use crate::descriptor::{Checksum, Descriptor, Payload, Relationships, Url};
use crate::spec::{PayloadType, Spec, parse_mode};
use crate::tarball::{self, EntryKind, TarEntry, TarFormat};
use crate::version::{self, IdError, VibVersion};
use crate::{gz, time};

/// What goes into one build besides the spec.
#[derive(Debug, Clone)]
pub struct BuildInputs {
    /// Files and directories to ship (destination path, mode, contents).
    pub files: Vec<TarEntry>,
    /// `sig.pkcs7` contents (empty for community builds).
    pub signature: Vec<u8>,
    /// `SOURCE_DATE_EPOCH`: every date and the derived build number.
    pub epoch: u64,
    /// Upstream version for a derived VIB version (overrides the spec's).
    pub upstream_version: Option<String>,
    /// Build a partner/accepted/certified VIB without signature: the first pass of signing
    /// (its `descriptor.xml` is what gets signed), or for `--no-sig-check` tests.
    pub allow_unsigned: bool,
}

/// The products of a build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The descriptor written into the VIB.
    pub descriptor: Descriptor,
    /// `<VIB-ID>.vib`.
    pub vib_file_name: String,
    /// The VIB bytes.
    pub vib: Vec<u8>,
    /// `<component>_<version>.zip`.
    pub bundle_file_name: String,
    /// The offline bundle bytes.
    pub bundle: Vec<u8>,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Bad name, vendor or version.
    #[error(transparent)]
    Id(#[from] IdError),
    /// The payload cannot be archived.
    #[error("cannot build the payload: {0}")]
    Payload(#[from] tarball::TarError),
    /// The ar archive cannot be written.
    #[error(transparent)]
    Ar(#[from] ar::ArError),
    /// A derived version needs an upstream version.
    #[error(
        "spec has version = \"auto\" but no upstream_version: set [vib] upstream_version or pass --upstream-version"
    )]
    NoUpstreamVersion,
    /// Signature rules.
    #[error("{0}")]
    Signature(String),
    /// Cannot read an input file.
    #[error("cannot read {what} {path}: {source}")]
    Io {
        /// Which input.
        what: String,
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A `--file` override names no `[[file]]`.
    #[error("--file {0}=… matches no [[file]] path in the spec")]
    UnknownOverride(String),
}

fn read(what: &str, path: &Path) -> Result<Vec<u8>, BuildError> {
    std::fs::read(path).map_err(|source| BuildError::Io {
        what: what.into(),
        path: path.to_path_buf(),
        source,
    })
}

/// Reads the spec's files (with `overrides`: destination path → source path) and signature.
/// `epoch` defaults to the newest modification time of those files, so that a changed
/// input gives a new version even without `SOURCE_DATE_EPOCH`.
///
/// # Errors
/// [`BuildError::Io`] or [`BuildError::UnknownOverride`].
pub fn load_inputs(
    spec: &Spec,
    overrides: &BTreeMap<String, PathBuf>,
    signature: Option<&Path>,
    epoch: Option<u64>,
    upstream_version: Option<String>,
) -> Result<BuildInputs, BuildError> {
    if let Some(k) = overrides
        .keys()
        .find(|k| !spec.files.iter().any(|f| &f.path == *k))
    {
        return Err(BuildError::UnknownOverride(k.clone()));
    }
    let mut files = Vec::new();
    let mut newest = 0u64;
    for f in &spec.files {
        let src = overrides
            .get(&f.path)
            .cloned()
            .unwrap_or_else(|| spec.base_dir.join(&f.source));
        let data = read(&format!("file for {}", f.path), &src)?;
        if let Ok(m) = std::fs::metadata(&src).and_then(|m| m.modified())
            && let Ok(d) = m.duration_since(std::time::UNIX_EPOCH)
        {
            newest = newest.max(d.as_secs());
        }
        // Modes were validated when the spec was parsed.
        let mode = parse_mode(&f.mode).unwrap_or(0o644);
        files.push(TarEntry {
            path: f.path.clone(),
            kind: EntryKind::File,
            mode,
            data,
        });
    }
    for d in &spec.dirs {
        let mode = parse_mode(&d.mode).unwrap_or(0o755);
        files.push(TarEntry {
            path: d.path.clone(),
            kind: EntryKind::Dir,
            mode,
            data: Vec::new(),
        });
    }
    let sig_path = signature
        .map(Path::to_path_buf)
        .or_else(|| spec.vib.signature.as_ref().map(|s| spec.base_dir.join(s)));
    let signature = match sig_path {
        Some(p) => read("signature", &p)?,
        None => Vec::new(),
    };
    Ok(BuildInputs {
        files,
        signature,
        epoch: epoch.unwrap_or(newest),
        upstream_version,
        allow_unsigned: false,
    })
}

fn hex_sha256(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Builds the VIB and offline bundle.
///
/// # Errors
/// [`BuildError`] for invalid metadata or files.
pub fn build(spec: &Spec, inputs: &BuildInputs) -> Result<Built, BuildError> {
    let v = &spec.vib;
    version::check_name("VIB name", &v.name)?;
    version::check_name("vendor", &v.vendor)?;
    let vib_version = if v.version == "auto" {
        let upstream = inputs
            .upstream_version
            .as_deref()
            .or(v.upstream_version.as_deref())
            .ok_or(BuildError::NoUpstreamVersion)?;
        version::derive(upstream, inputs.epoch)?
    } else {
        VibVersion::parse(&v.version)?
    };
    let community = v.acceptance_level == crate::descriptor::AcceptanceLevel::Community;
    if community && !inputs.signature.is_empty() {
        return Err(BuildError::Signature(
            "a CommunitySupported VIB must have an empty sig.pkcs7: drop the signature or raise acceptance_level".into(),
        ));
    }
    if !community && inputs.signature.is_empty() && !inputs.allow_unsigned {
        return Err(BuildError::Signature(format!(
            "acceptance level {} needs a detached PKCS#7 signature (--signature FILE), or --allow-unsigned \
             for the first pass of signing; see docs/packaging.md",
            v.acceptance_level.as_str()
        )));
    }

    let format = match v.payload_type {
        PayloadType::Vgz => TarFormat::Vmtar,
        PayloadType::Tgz => TarFormat::Ustar,
    };
    let tar = tarball::write(&inputs.files, format, inputs.epoch)?;
    let packed = gz::compress(&tar);
    let mut files: Vec<String> = inputs
        .files
        .iter()
        .filter(|f| f.kind == EntryKind::File)
        .map(|f| f.path.clone())
        .collect();
    files.sort();

    let rels = |c: &[crate::spec::SpecConstraint]| c.iter().map(Into::into).collect();
    let descriptor = Descriptor {
        vib_type: "bootbank".into(),
        name: v.name.clone(),
        version: vib_version.to_string(),
        vendor: v.vendor.clone(),
        summary: v.summary.clone(),
        description: v.description.clone(),
        release_date: time::release_date(inputs.epoch),
        urls: v
            .urls
            .iter()
            .map(|(key, url)| Url {
                key: key.clone(),
                url: url.clone(),
            })
            .collect(),
        relationships: Relationships {
            depends: rels(&v.depends),
            conflicts: rels(&v.conflicts),
            replaces: rels(&v.replaces),
            provides: rels(&v.provides),
            compatible_with: rels(&v.compatible_with),
        },
        software_tags: v.software_tags.clone(),
        maintenance_mode: v.maintenance_mode.to_string(),
        software_platforms: vec![],
        files,
        acceptance_level: v.acceptance_level,
        live_install_allowed: v.live_install_allowed,
        live_remove_allowed: v.live_remove_allowed,
        cimom_restart: false,
        stateless_ready: v.stateless_ready,
        overlay: false,
        payloads: vec![Payload {
            name: v.payload_name.clone(),
            payload_type: v.payload_type.as_str().into(),
            size: packed.len() as u64,
            checksums: vec![
                Checksum {
                    checksum_type: "sha-256".into(),
                    verify_process: None,
                    value: hex_sha256(&packed),
                },
                Checksum {
                    checksum_type: "sha-256".into(),
                    verify_process: Some("gunzip".into()),
                    value: hex_sha256(&tar),
                },
                Checksum {
                    checksum_type: "sha-1".into(),
                    verify_process: Some("gunzip".into()),
                    value: hex::encode(Sha1::digest(&tar)),
                },
            ],
        }],
        depot: None,
        unknown_elements: vec![],
    };
    let vib = ar::write(&[
        ArMember {
            name: "descriptor.xml".into(),
            data: descriptor.to_xml().into_bytes(),
        },
        ArMember {
            name: "sig.pkcs7".into(),
            data: inputs.signature.clone(),
        },
        ArMember {
            name: v.payload_name.clone(),
            data: packed,
        },
    ])?;
    let component = Component {
        name: spec.component_name().to_string(),
        ui_name: spec.bundle.component_ui_name.clone(),
        version: descriptor.version.clone(),
        ui_version: descriptor.version.clone(),
    };
    let meta = BundleMeta {
        vendor_code: spec.bundle.vendor_code.clone(),
        bulletin_id: bundle::bulletin_id(&component),
        component: Some(component.clone()),
        kb_url: spec.bundle.kb_url.clone(),
        contact: spec.bundle.contact.clone(),
        platforms: spec.bundle.platforms.clone(),
    };
    let bundle = bundle::write(&descriptor, &vib, &meta, inputs.epoch);
    Ok(Built {
        vib_file_name: format!("{}.vib", descriptor.vib_id()),
        bundle_file_name: format!("{}_{}.zip", component.name, descriptor.version),
        descriptor,
        vib,
        bundle,
    })
}
