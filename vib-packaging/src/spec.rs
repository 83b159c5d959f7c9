//! `vib.toml`: what to package, read once at the edge and turned into typed values.
//!
//! The spec names the VIB, its metadata and the files to ship (source path relative to the
//! spec file, destination path on the host, mode). `packaging/esxi/vib.toml` is the real
//! vmig spec; `docs/packaging.md` documents every key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::descriptor::{AcceptanceLevel, Constraint};

/// Payload archive type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PayloadType {
    /// Gzipped vmtar, as VMware's tools write it (default).
    #[default]
    Vgz,
    /// Gzipped ustar, as community scripts write it.
    Tgz,
}

impl PayloadType {
    /// Descriptor spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vgz => "vgz",
            Self::Tgz => "tgz",
        }
    }
}

/// A relationship entry in the spec.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecConstraint {
    /// VIB or feature name.
    pub name: String,
    /// `<<`, `<=`, `=`, `>=`, `>>`.
    pub relation: Option<String>,
    /// Version compared with.
    pub version: Option<String>,
}

impl From<&SpecConstraint> for Constraint {
    fn from(c: &SpecConstraint) -> Self {
        Constraint {
            name: c.name.clone(),
            relation: c.relation.clone(),
            version: c.version.clone(),
        }
    }
}

fn yes() -> bool {
    true
}
fn auto() -> String {
    "auto".into()
}

/// `[vib]`: the descriptor's content.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VibSpec {
    /// VIB name.
    pub name: String,
    /// Vendor.
    pub vendor: String,
    /// One line, ≤ 80 characters.
    pub summary: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// `auto` (derived, see [`crate::version::derive`]) or a literal VIB version.
    #[serde(default = "auto")]
    pub version: String,
    /// Upstream part of a derived version; the CLI's `--upstream-version` overrides it.
    #[serde(default)]
    pub upstream_version: Option<String>,
    /// Acceptance level (default community).
    #[serde(default = "community")]
    pub acceptance_level: AcceptanceLevel,
    /// Payload member name (≤ 8 characters, `[a-z0-9_-]`).
    pub payload_name: String,
    /// Payload type (default vgz).
    #[serde(default)]
    pub payload_type: PayloadType,
    /// `<urls>`: key → URL.
    #[serde(default)]
    pub urls: BTreeMap<String, String>,
    /// `<software-tags>`.
    #[serde(default)]
    pub software_tags: Vec<String>,
    /// `<depends>`.
    #[serde(default)]
    pub depends: Vec<SpecConstraint>,
    /// `<conflicts>`.
    #[serde(default)]
    pub conflicts: Vec<SpecConstraint>,
    /// `<replaces>`.
    #[serde(default)]
    pub replaces: Vec<SpecConstraint>,
    /// `<provides>`.
    #[serde(default)]
    pub provides: Vec<SpecConstraint>,
    /// `<compatibleWith>`.
    #[serde(default)]
    pub compatible_with: Vec<SpecConstraint>,
    /// `<maintenance-mode>`.
    #[serde(default)]
    pub maintenance_mode: bool,
    /// `<live-install-allowed>`.
    #[serde(default = "yes")]
    pub live_install_allowed: bool,
    /// `<live-remove-allowed>`.
    #[serde(default = "yes")]
    pub live_remove_allowed: bool,
    /// `<stateless-ready>`.
    #[serde(default = "yes")]
    pub stateless_ready: bool,
    /// Detached PKCS#7 signature for `sig.pkcs7` (relative to the spec); empty if absent.
    #[serde(default)]
    pub signature: Option<PathBuf>,
}

fn community() -> AcceptanceLevel {
    AcceptanceLevel::Community
}

fn platforms() -> Vec<String> {
    vec!["7.*".into(), "8.*".into()]
}

/// `[bundle]`: offline bundle and vLCM component metadata.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleSpec {
    /// Depot vendor code in `index.xml` (VIB Author writes `Unknown`).
    pub vendor_code: String,
    /// Component name (default: the VIB name).
    #[serde(default)]
    pub component_name: Option<String>,
    /// Component display name.
    pub component_ui_name: String,
    /// Bulletin `kbUrl`.
    #[serde(default)]
    pub kb_url: String,
    /// Bulletin `contact`.
    #[serde(default)]
    pub contact: String,
    /// ESXi versions (`vendor-index.xml`, bulletin platforms), default `["7.*", "8.*"]`.
    #[serde(default = "platforms")]
    pub platforms: Vec<String>,
}

/// One `[[file]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Destination on the host, relative (`opt/vmig/bin/vmig-agent`).
    pub path: String,
    /// Source file, relative to the spec file.
    pub source: PathBuf,
    /// Octal mode, e.g. `"0755"` or `"1644"` (sticky: persisted by ESXi's backup.sh).
    pub mode: String,
}

/// One `[[dir]]`: a directory whose mode differs from the default 0755 (parents of files
/// are added with 0755 automatically).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirSpec {
    /// Directory on the host, relative (`etc/vmig`).
    pub path: String,
    /// Octal mode, e.g. `"1755"`.
    pub mode: String,
}

/// A whole `vib.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// `[vib]`.
    pub vib: VibSpec,
    /// `[bundle]`.
    pub bundle: BundleSpec,
    /// `[[file]]` entries.
    #[serde(rename = "file")]
    pub files: Vec<FileSpec>,
    /// `[[dir]]` entries.
    #[serde(rename = "dir", default)]
    pub dirs: Vec<DirSpec>,
    /// Directory of the spec file (relative sources resolve against it).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// Why a spec cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Cannot read.
    #[error("cannot read spec {path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Not valid TOML for this schema.
    #[error("spec {path} is invalid: {source}")]
    Toml {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: Box<toml::de::Error>,
    },
    /// A semantic problem.
    #[error("spec {path}: {message}")]
    Invalid {
        /// Path.
        path: PathBuf,
        /// What and how to fix it.
        message: String,
    },
}

impl Spec {
    /// Parses `text` as a spec whose relative paths resolve against `base_dir`.
    ///
    /// # Errors
    /// [`SpecError`].
    pub fn parse(text: &str, base_dir: &Path, path_for_messages: &Path) -> Result<Self, SpecError> {
        let mut spec: Spec = toml::from_str(text).map_err(|e| SpecError::Toml {
            path: path_for_messages.to_path_buf(),
            source: Box::new(e),
        })?;
        spec.base_dir = base_dir.to_path_buf();
        let invalid = |message: String| SpecError::Invalid {
            path: path_for_messages.to_path_buf(),
            message,
        };
        let p = &spec.vib.payload_name;
        if p.is_empty()
            || p.len() > 8
            || !p
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b))
        {
            return Err(invalid(format!(
                "payload_name `{p}` must be 1..=8 characters from [a-z0-9_-] (ESXi stores it as an 8.3 name)"
            )));
        }
        if spec.vib.summary.chars().count() > 80 {
            return Err(invalid("summary is longer than 80 characters".into()));
        }
        if let Some(k) = spec.vib.urls.keys().find(|k| k.chars().count() > 20) {
            return Err(invalid(format!(
                "url key `{k}` is longer than 20 characters"
            )));
        }
        if spec.files.is_empty() {
            return Err(invalid(
                "no [[file]] entries: a VIB needs at least one file".into(),
            ));
        }
        for d in &spec.dirs {
            parse_mode(&d.mode).ok_or_else(|| {
                invalid(format!(
                    "dir {}: mode {:?} is not octal like \"0755\"",
                    d.path, d.mode
                ))
            })?;
        }
        for f in &spec.files {
            parse_mode(&f.mode).ok_or_else(|| {
                invalid(format!(
                    "file {}: mode {:?} is not octal like \"0755\"",
                    f.path, f.mode
                ))
            })?;
        }
        Ok(spec)
    }

    /// Reads and parses the spec file at `path`.
    ///
    /// # Errors
    /// [`SpecError`].
    pub fn load(path: &Path) -> Result<Self, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, &base, path)
    }

    /// The component name (defaults to the VIB name).
    pub fn component_name(&self) -> &str {
        self.bundle
            .component_name
            .as_deref()
            .unwrap_or(&self.vib.name)
    }
}

/// Parses an octal mode string such as `"0755"` or `"1644"`.
pub fn parse_mode(s: &str) -> Option<u32> {
    u32::from_str_radix(s, 8).ok().filter(|m| *m <= 0o7777)
}
