//! The desired layout of a cluster or host, as `vmig layout set` writes it into vCenter (the
//! `vmig.layout` custom attribute of a `ClusterComputeResource` or `HostSystem`) and the agent
//! reads it back on every poll (issue #21; docs/layouts.md, "Desired layouts in vCenter").
//!
//! The document carries the whole layout file, not just a name, so every agent applies the
//! same text whatever layouts its own build ships, and a later change of the built-in file
//! does not silently change what a cluster asked for. It is outside input for the agent (any
//! account with `Global.SetCustomField` can write it), so [`DesiredLayoutDoc::parse`] bounds
//! it before anything looks inside, and the layout file then goes through the same parsing and
//! validation as `vmig-agent apply`.
use serde::{Deserialize, Serialize};

use crate::layout_file::{ConfigError, LayoutFile};

/// The custom attribute holding the desired layout (global definition: clusters and hosts).
pub const FIELD_DESIRED_LAYOUT: &str = "vmig.layout";
/// The document's schema tag.
pub const SCHEMA_V1: &str = "vmig.layout/v1";
/// Largest document accepted, in bytes: the shipped layout file is under 5 KiB.
pub const MAX_DESIRED_BYTES: usize = 64 * 1024;
/// Longest layout name, origin or user name, in characters.
pub const MAX_NAME_CHARS: usize = 256;
/// Largest version accepted (2^53 − 1: every JSON reader holds it exactly).
pub const MAX_VERSION: u64 = (1 << 53) - 1;

/// The `vmig.layout` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesiredLayoutDoc {
    /// [`SCHEMA_V1`].
    pub schema: String,
    /// The named config of `file` to apply.
    pub name: String,
    /// The layout file's text (mig-parted `version: v1` with vmig's extensions).
    pub file: String,
    /// Where the text came from when it was set (a path, or `<built-in vmig-layouts.yaml>`).
    pub origin: String,
    /// Increases by one at every `vmig layout set` on this object.
    pub version: u64,
    /// The vCenter user who set it.
    pub set_by: String,
    /// When, by vCenter's clock (RFC 3339 UTC).
    pub set_at: String,
}

/// Why a `vmig.layout` value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DesiredLayoutError {
    #[error(
        "the desired-layout document is {size} bytes, more than the {MAX_DESIRED_BYTES}-byte limit"
    )]
    TooLarge { size: usize },
    #[error("the desired-layout document is not valid JSON of schema {SCHEMA_V1}: {0}")]
    Malformed(String),
    #[error(
        "unsupported desired-layout schema `{found}` (this build reads `{SCHEMA_V1}`); upgrade vmig and the agents"
    )]
    UnsupportedSchema { found: String },
    #[error("invalid desired-layout document: {0}")]
    Invalid(String),
    #[error("the desired layout's file does not parse: {0}")]
    Layout(#[from] ConfigError),
}

impl DesiredLayoutDoc {
    /// Parses and bounds a `vmig.layout` value, then parses its layout file and checks that
    /// the named config is in it. Returns the document and the parsed file.
    pub fn parse(text: &str) -> Result<(DesiredLayoutDoc, LayoutFile), DesiredLayoutError> {
        if text.len() > MAX_DESIRED_BYTES {
            return Err(DesiredLayoutError::TooLarge { size: text.len() });
        }
        // The schema first, so a newer document says "upgrade" rather than "missing field".
        #[derive(Deserialize)]
        struct Head {
            schema: Option<String>,
        }
        let malformed = |e: serde_json::Error| DesiredLayoutError::Malformed(e.to_string());
        let head: Head = serde_json::from_str(text).map_err(malformed)?;
        if let Some(found) = head.schema.filter(|s| s != SCHEMA_V1) {
            return Err(DesiredLayoutError::UnsupportedSchema {
                found: found.chars().take(40).collect(),
            });
        }
        let doc: DesiredLayoutDoc = serde_json::from_str(text).map_err(malformed)?;
        doc.validate()?;
        let file = doc.layout_file()?;
        Ok((doc, file))
    }

    /// The bounds every reader relies on (names short and printable, version in range).
    pub fn validate(&self) -> Result<(), DesiredLayoutError> {
        for (field, v) in [
            ("name", &self.name),
            ("origin", &self.origin),
            ("set_by", &self.set_by),
            ("set_at", &self.set_at),
        ] {
            if v.chars().count() > MAX_NAME_CHARS {
                return Err(DesiredLayoutError::Invalid(format!(
                    "{field} is longer than {MAX_NAME_CHARS} characters"
                )));
            }
            if v.chars().any(char::is_control) {
                return Err(DesiredLayoutError::Invalid(format!(
                    "{field} contains control characters"
                )));
            }
        }
        if self.name.trim().is_empty() {
            return Err(DesiredLayoutError::Invalid("name is empty".into()));
        }
        if self.version == 0 || self.version > MAX_VERSION {
            return Err(DesiredLayoutError::Invalid(format!(
                "version {} is outside 1..={MAX_VERSION}",
                self.version
            )));
        }
        Ok(())
    }

    /// The layout file, parsed, with the named config checked to exist.
    pub fn layout_file(&self) -> Result<LayoutFile, DesiredLayoutError> {
        let file = LayoutFile::parse(&self.origin, &self.file)?;
        file.config(Some(&self.name))?;
        Ok(file)
    }

    /// The document as written into vCenter.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `all-balanced v3`, for tables and logs.
    pub fn label(&self) -> String {
        format!("{} v{}", self.name, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout_file::{DEFAULT_LAYOUTS_ORIGIN, DEFAULT_LAYOUTS_YAML};

    fn doc() -> DesiredLayoutDoc {
        DesiredLayoutDoc {
            schema: SCHEMA_V1.into(),
            name: "all-balanced".into(),
            file: DEFAULT_LAYOUTS_YAML.into(),
            origin: DEFAULT_LAYOUTS_ORIGIN.into(),
            version: 1,
            set_by: "admin".into(),
            set_at: "2026-12-02T10:00:00Z".into(),
        }
    }

    #[test]
    fn round_trips() {
        let (d, file) = DesiredLayoutDoc::parse(&doc().to_json()).unwrap();
        assert_eq!(d, doc());
        assert!(file.config(Some("all-balanced")).is_ok());
    }

    #[test]
    fn hostile_documents_are_refused_with_a_reason() {
        let cases: Vec<(String, &str)> = vec![
            ("x".repeat(MAX_DESIRED_BYTES + 1), "limit"),
            ("{".into(), "not valid JSON"),
            (r#"{"schema":"vmig.layout/v9"}"#.into(), "unsupported"),
            (
                doc().to_json().replace("\"version\":1", "\"version\":0"),
                "version 0",
            ),
            (
                doc()
                    .to_json()
                    .replace("\"version\":1", "\"version\":9007199254740992"),
                "outside",
            ),
            (
                doc()
                    .to_json()
                    .replace("\"name\":\"all-balanced\"", "\"name\":\"no-such-layout\""),
                "no config named",
            ),
            (
                doc().to_json().replace("\"admin\"", "\"a\\u001b[31m\""),
                "control",
            ),
            (
                doc()
                    .to_json()
                    .replace("\"admin\"", &format!("\"{}\"", "a".repeat(300))),
                "longer",
            ),
            (
                doc()
                    .to_json()
                    .replace("\"schema\"", "\"extra\":1,\"schema\""),
                "unknown field",
            ),
            (
                doc().to_json().replace("version: v1", "version: v2"),
                "unknown version",
            ),
        ];
        for (text, needle) in cases {
            let e = DesiredLayoutDoc::parse(&text).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }
}
