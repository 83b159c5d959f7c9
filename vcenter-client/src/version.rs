//! vim25 API version negotiation.
//!
//! vCenter filters fields and methods by the version named in the
//! `SOAPAction: urn:vim25/<version>` header: vGPU profile details need 7.0.3.0,
//! `vgpuMode=multiInstanceGpu` 8.0.3.0. The client reads
//! `/sdk/vimServiceVersions.xml` and asks for the highest version both sides
//! know. vcsim 0.24 advertises 6.5 and ignores the header.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::Error;
use crate::soap::decode::Node;

/// A dotted vim25 API version such as `8.0.3.0`, ordered numerically.
#[derive(Debug, Clone, Eq, Serialize)]
#[serde(into = "String")]
pub struct ApiVersion {
    text: String,
    parts: Vec<u32>,
}

impl ApiVersion {
    /// The newest version this client was written against.
    pub const NEWEST_KNOWN: &'static str = "9.0.0.0";
    /// Used for the first call when the server publishes no version list.
    pub const FALLBACK: &'static str = "6.5";

    /// The version text as sent in `SOAPAction`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True if this version is at least `other` (e.g. `"7.0.3.0"`).
    pub fn at_least(&self, other: &str) -> bool {
        other.parse::<ApiVersion>().is_ok_and(|o| *self >= o)
    }

    pub(crate) fn newest_known() -> ApiVersion {
        ApiVersion::parse_known(Self::NEWEST_KNOWN)
    }

    pub(crate) fn fallback() -> ApiVersion {
        ApiVersion::parse_known(Self::FALLBACK)
    }

    fn parse_known(s: &str) -> ApiVersion {
        s.parse().unwrap_or_else(|_| ApiVersion {
            text: s.to_string(),
            parts: vec![0],
        })
    }

    /// Caps a server's version at the newest one this client knows.
    pub(crate) fn capped(self) -> ApiVersion {
        let newest = Self::newest_known();
        if self > newest { newest } else { self }
    }
}

impl FromStr for ApiVersion {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        let parts: Option<Vec<u32>> = s.split('.').map(|p| p.parse().ok()).collect();
        match parts {
            Some(parts) if !parts.is_empty() => Ok(ApiVersion {
                text: s.to_string(),
                parts,
            }),
            _ => Err(Error::InvalidInput {
                what: "vim25 API version",
                detail: format!("{s:?} is not a dotted number such as 8.0.3.0"),
            }),
        }
    }
}

impl PartialEq for ApiVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Ord for ApiVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        // Missing trailing components count as 0: 6.7 == 6.7.0.
        let n = self.parts.len().max(other.parts.len());
        (0..n)
            .map(|i| {
                let a = self.parts.get(i).copied().unwrap_or(0);
                let b = other.parts.get(i).copied().unwrap_or(0);
                a.cmp(&b)
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for ApiVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<ApiVersion> for String {
    fn from(v: ApiVersion) -> String {
        v.text
    }
}

/// Picks the version to speak from a parsed `vimServiceVersions.xml`: the
/// highest `urn:vim25` version (current or prior) not newer than
/// [`ApiVersion::NEWEST_KNOWN`]. `None` if the document lists no vim25 namespace.
pub(crate) fn negotiate(doc: &Node) -> Option<ApiVersion> {
    let ns = doc
        .children_named("namespace")
        .find(|n| n.child_text("name").map(str::trim) == Some("urn:vim25"))?;
    let mut all: Vec<ApiVersion> = ns
        .children_named("version")
        .filter_map(|v| v.text().parse().ok())
        .collect();
    if let Some(prior) = ns.child("priorVersions") {
        all.extend(
            prior
                .children_named("version")
                .filter_map(|v| v.text().parse().ok()),
        );
    }
    let newest = ApiVersion::newest_known();
    all.iter()
        .filter(|v| **v <= newest)
        .max()
        .cloned()
        .or_else(|| (!all.is_empty()).then_some(newest))
}

#[cfg(test)]
mod tests {
    use std::ops::ControlFlow;

    use super::*;
    use crate::soap::decode::{Mode, parse_sync};

    fn doc(xml: &str) -> Node {
        parse_sync(xml.as_bytes(), Mode::Plain, &mut |_| {
            Ok(ControlFlow::Continue(()))
        })
        .unwrap()
        .unwrap()
    }

    #[test]
    fn vcsim_document_negotiates_6_5() {
        let d = doc(r#"<?xml version="1.0" encoding="UTF-8"?>
<namespaces version="1.0">
 <namespace>
  <name>urn:vim25</name>
  <version>6.5</version>
  <priorVersions>
   <version>6.0</version>
   <version>5.5</version>
  </priorVersions>
 </namespace>
</namespaces>"#);
        assert_eq!(negotiate(&d).unwrap().as_str(), "6.5");
    }

    #[test]
    fn newer_server_is_capped_to_a_listed_known_version() {
        let d = doc(
            r#"<namespaces><namespace><name>urn:vim25</name><version>9.1.0.0</version><priorVersions><version>9.0.0.0</version><version>8.0.3.0</version></priorVersions></namespace></namespaces>"#,
        );
        assert_eq!(negotiate(&d).unwrap().as_str(), "9.0.0.0");
        let d = doc(
            r#"<namespaces><namespace><name>urn:vim25</name><version>10.0</version></namespace></namespaces>"#,
        );
        assert_eq!(negotiate(&d).unwrap().as_str(), ApiVersion::NEWEST_KNOWN);
        let d = doc(
            r#"<namespaces><namespace><name>urn:other</name><version>1.0</version></namespace></namespaces>"#,
        );
        assert!(negotiate(&d).is_none());
    }

    #[test]
    fn ordering_is_numeric() {
        let v = |s: &str| s.parse::<ApiVersion>().unwrap();
        assert!(v("8.0.10.0") > v("8.0.3.0"));
        assert_eq!(v("6.7"), v("6.7.0"));
        assert!(v("7.0.3.0").at_least("7.0.3"));
        assert!(!v("6.5").at_least("7.0.3.0"));
        assert!("x.y".parse::<ApiVersion>().is_err());
    }
}
