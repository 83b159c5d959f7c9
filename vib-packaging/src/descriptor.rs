//! `descriptor.xml`: the VIB's metadata, written exactly as VMware's tools write it.
//!
//! VIB Author writes the descriptor on one line, without an XML declaration or trailing
//! newline, elements in a fixed order (see `shared/fixtures/vib/` and research §1.2).
//! ESXi validates the descriptor against a schema ("Element vib failed to validate
//! content"), so [`Descriptor::to_xml`] keeps that order and [`Descriptor::parse`] reports
//! elements that are missing, out of order or malformed.
//!
//! The same type also writes the `vibs/*.xml` copy of an offline bundle, which adds the
//! `.vib`'s `relative-path`, `packed-size` and `sha-256` right after `<software-tags/>`.

use serde::Serialize;

use crate::xml::{self, Element};

/// The order VIB Author writes the children of `<vib>` in.
pub const ELEMENT_ORDER: [&str; 20] = [
    "type",
    "name",
    "version",
    "vendor",
    "summary",
    "description",
    "release-date",
    "urls",
    "relationships",
    "software-tags",
    "system-requires",
    "file-list",
    "acceptance-level",
    "live-install-allowed",
    "live-remove-allowed",
    "cimom-restart",
    "stateless-ready",
    "overlay",
    "payloads",
    // Only in a host's database; tolerated.
    "installdate",
];

const DEPOT_ELEMENTS: [&str; 3] = ["relative-path", "packed-size", "checksum"];
const REQUIRED: [&str; 7] = [
    "type",
    "name",
    "version",
    "vendor",
    "summary",
    "acceptance-level",
    "payloads",
];

/// A `<url key="…">…</url>` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Url {
    /// Key (at most 20 characters).
    pub key: String,
    /// The URL.
    pub url: String,
}

/// A relationship constraint, e.g. `esx-base >= 7.0.0`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Constraint {
    /// VIB or feature name.
    pub name: String,
    /// `<<`, `<=`, `=`, `>=` or `>>`; absent means any version.
    pub relation: Option<String>,
    /// Version the relation compares with.
    pub version: Option<String>,
}

/// `<relationships>`: what the VIB depends on, conflicts with, replaces, provides.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Relationships {
    /// `<depends>` constraints.
    pub depends: Vec<Constraint>,
    /// `<conflicts>` constraints.
    pub conflicts: Vec<Constraint>,
    /// `<replaces>` constraints.
    pub replaces: Vec<Constraint>,
    /// `<provides>` entries (`<provide name= version=/>`).
    pub provides: Vec<Constraint>,
    /// `<compatibleWith>` constraints.
    pub compatible_with: Vec<Constraint>,
}

/// `<softwarePlatform version="8.*" locale="" productLineID="embeddedEsx"/>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SoftwarePlatform {
    /// Version pattern, e.g. `8.*`.
    pub version: String,
    /// Locale, usually empty.
    pub locale: String,
    /// Product line, `embeddedEsx` for ESXi.
    pub product_line_id: String,
}

/// The four acceptance levels, strictest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AcceptanceLevel {
    /// VMwareCertified.
    Certified,
    /// VMwareAccepted.
    Accepted,
    /// PartnerSupported (the host default).
    Partner,
    /// CommunitySupported: unsigned.
    Community,
}

impl AcceptanceLevel {
    /// The descriptor spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Certified => "certified",
            Self::Accepted => "accepted",
            Self::Partner => "partner",
            Self::Community => "community",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "certified" => Self::Certified,
            "accepted" => Self::Accepted,
            "partner" => Self::Partner,
            "community" => Self::Community,
            _ => return None,
        })
    }
}

/// One `<checksum>` of a payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checksum {
    /// `sha-256` or `sha-1`.
    pub checksum_type: String,
    /// `gunzip` when computed over the decompressed stream.
    pub verify_process: Option<String>,
    /// Lowercase hex digest.
    pub value: String,
}

/// One `<payload>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payload {
    /// Member name in the ar archive (≤ 8 characters by convention).
    pub name: String,
    /// `vgz` or `tgz`.
    #[serde(rename = "type")]
    pub payload_type: String,
    /// Size of the member as stored (compressed).
    pub size: u64,
    /// Checksums in document order.
    pub checksums: Vec<Checksum>,
}

/// What an offline bundle's `vibs/*.xml` adds to the descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DepotInfo {
    /// Path of the `.vib` inside the bundle.
    pub relative_path: String,
    /// Size of the `.vib`.
    pub packed_size: u64,
    /// SHA-256 of the `.vib`.
    pub sha256: String,
}

/// A parsed or to-be-written `descriptor.xml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Descriptor {
    /// Always `bootbank` for ESXi 5+.
    #[serde(rename = "type")]
    pub vib_type: String,
    /// VIB name.
    pub name: String,
    /// VIB version (validated separately by [`crate::version::VibVersion`]).
    pub version: String,
    /// Vendor.
    pub vendor: String,
    /// One-line summary.
    pub summary: String,
    /// Free text.
    pub description: String,
    /// `YYYY-MM-DDTHH:MM:SS+00:00`.
    pub release_date: String,
    /// `<urls>`.
    pub urls: Vec<Url>,
    /// `<relationships>`.
    pub relationships: Relationships,
    /// `<software-tags>`.
    pub software_tags: Vec<String>,
    /// `<maintenance-mode>` text (`false` or `true`).
    pub maintenance_mode: String,
    /// `<softwarePlatform>` entries inside `<system-requires>`.
    pub software_platforms: Vec<SoftwarePlatform>,
    /// `<file-list>`: relative paths of the files (no directories).
    pub files: Vec<String>,
    /// `<acceptance-level>`.
    pub acceptance_level: AcceptanceLevel,
    /// `<live-install-allowed>`.
    pub live_install_allowed: bool,
    /// `<live-remove-allowed>`.
    pub live_remove_allowed: bool,
    /// `<cimom-restart>`.
    pub cimom_restart: bool,
    /// `<stateless-ready>`.
    pub stateless_ready: bool,
    /// `<overlay>`.
    pub overlay: bool,
    /// `<payloads>`.
    pub payloads: Vec<Payload>,
    /// Present in a bundle's `vibs/*.xml` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depot: Option<DepotInfo>,
    /// Children of `<vib>` this parser does not know (kept for reports).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_elements: Vec<String>,
}

/// Why a descriptor cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DescriptorError {
    /// Not XML.
    #[error("descriptor.xml is not well-formed XML: {0}")]
    Xml(#[from] xml::XmlError),
    /// Root is not `<vib>`.
    #[error("descriptor.xml root element is <{0}>, expected <vib version=\"5.0\">")]
    WrongRoot(String),
    /// Required element absent.
    #[error("descriptor.xml lacks the required <{0}> element")]
    Missing(&'static str),
    /// Element out of VIB Author's order.
    #[error("descriptor.xml has <{element}> after <{after}>; ESXi's schema expects it before")]
    OutOfOrder {
        /// The misplaced element.
        element: String,
        /// The element it follows.
        after: String,
    },
    /// Element given twice.
    #[error("descriptor.xml has <{0}> more than once")]
    Duplicate(String),
    /// A boolean that is not `true`/`false`.
    #[error("descriptor.xml <{element}> must be `true` or `false`, found {value:?}")]
    BadBool {
        /// Element.
        element: &'static str,
        /// Found text.
        value: String,
    },
    /// Unknown acceptance level.
    #[error(
        "descriptor.xml <acceptance-level> {0:?} is not one of certified, accepted, partner, community"
    )]
    BadAcceptance(String),
    /// A payload attribute is missing or malformed.
    #[error("descriptor.xml payload {payload:?}: {problem}")]
    BadPayload {
        /// Payload name (may be empty).
        payload: String,
        /// What is wrong.
        problem: String,
    },
    /// Depot info is partial or malformed.
    #[error("vibs/*.xml depot fields are incomplete or malformed: {0}")]
    BadDepotInfo(String),
}

fn empty_or(name: &str, inner: String) -> String {
    if inner.is_empty() {
        format!("<{name}/>")
    } else {
        format!("<{name}>{inner}</{name}>")
    }
}

fn constraints(tag: &str, items: &[Constraint]) -> String {
    let mut s = String::new();
    for c in items {
        s.push_str(&format!("<{tag} name=\"{}\"", xml::attr(&c.name)));
        if let Some(r) = &c.relation {
            s.push_str(&format!(" relation=\"{}\"", xml::attr(r)));
        }
        if let Some(v) = &c.version {
            s.push_str(&format!(" version=\"{}\"", xml::attr(v)));
        }
        s.push_str("/>");
    }
    s
}

fn platform(tag: &str, p: &SoftwarePlatform) -> String {
    format!(
        "<{tag} version=\"{}\" locale=\"{}\" productLineID=\"{}\"/>",
        xml::attr(&p.version),
        xml::attr(&p.locale),
        xml::attr(&p.product_line_id)
    )
}

impl Descriptor {
    /// The VIB ID ESXi and bundles use: `<vendor>_<type>_<name>_<version>`.
    pub fn vib_id(&self) -> String {
        format!(
            "{}_{}_{}_{}",
            self.vendor, self.vib_type, self.name, self.version
        )
    }

    /// Serialises as VIB Author does: one line, no declaration, no trailing newline; with
    /// [`Descriptor::depot`] set, as an offline bundle's `vibs/*.xml`.
    pub fn to_xml(&self) -> String {
        let t = xml::text;
        let mut s = String::from("<vib version=\"5.0\">");
        let mut leaf =
            |name: &str, value: &str| s.push_str(&format!("<{name}>{}</{name}>", t(value)));
        leaf("type", &self.vib_type);
        leaf("name", &self.name);
        leaf("version", &self.version);
        leaf("vendor", &self.vendor);
        leaf("summary", &self.summary);
        leaf("description", &self.description);
        leaf("release-date", &self.release_date);
        let urls: String = self
            .urls
            .iter()
            .map(|u| format!("<url key=\"{}\">{}</url>", xml::attr(&u.key), t(&u.url)))
            .collect();
        s.push_str(&empty_or("urls", urls));
        let r = &self.relationships;
        s.push_str("<relationships>");
        s.push_str(&empty_or("depends", constraints("constraint", &r.depends)));
        s.push_str(&empty_or(
            "conflicts",
            constraints("constraint", &r.conflicts),
        ));
        s.push_str(&empty_or(
            "replaces",
            constraints("constraint", &r.replaces),
        ));
        s.push_str(&empty_or("provides", constraints("provide", &r.provides)));
        s.push_str(&empty_or(
            "compatibleWith",
            constraints("constraint", &r.compatible_with),
        ));
        s.push_str("</relationships>");
        let tags: String = self
            .software_tags
            .iter()
            .map(|g| format!("<tag>{}</tag>", t(g)))
            .collect();
        s.push_str(&empty_or("software-tags", tags));
        if let Some(d) = &self.depot {
            s.push_str(&format!(
                "<relative-path>{}</relative-path><packed-size>{}</packed-size>\
                 <checksum checksum-type=\"sha-256\">{}</checksum>",
                t(&d.relative_path),
                d.packed_size,
                t(&d.sha256)
            ));
        }
        s.push_str("<system-requires>");
        s.push_str(&format!(
            "<maintenance-mode>{}</maintenance-mode>",
            t(&self.maintenance_mode)
        ));
        for p in &self.software_platforms {
            s.push_str(&platform("softwarePlatform", p));
        }
        s.push_str("</system-requires>");
        let files: String = self
            .files
            .iter()
            .map(|f| format!("<file>{}</file>", t(f)))
            .collect();
        s.push_str(&empty_or("file-list", files));
        let b = |v: bool| if v { "true" } else { "false" };
        s.push_str(&format!(
            "<acceptance-level>{}</acceptance-level>",
            self.acceptance_level.as_str()
        ));
        s.push_str(&format!(
            "<live-install-allowed>{}</live-install-allowed>",
            b(self.live_install_allowed)
        ));
        s.push_str(&format!(
            "<live-remove-allowed>{}</live-remove-allowed>",
            b(self.live_remove_allowed)
        ));
        s.push_str(&format!(
            "<cimom-restart>{}</cimom-restart>",
            b(self.cimom_restart)
        ));
        s.push_str(&format!(
            "<stateless-ready>{}</stateless-ready>",
            b(self.stateless_ready)
        ));
        s.push_str(&format!("<overlay>{}</overlay>", b(self.overlay)));
        s.push_str("<payloads>");
        for p in &self.payloads {
            s.push_str(&format!(
                "<payload name=\"{}\" type=\"{}\" size=\"{}\">",
                xml::attr(&p.name),
                xml::attr(&p.payload_type),
                p.size
            ));
            for c in &p.checksums {
                s.push_str(&format!(
                    "<checksum checksum-type=\"{}\"",
                    xml::attr(&c.checksum_type)
                ));
                if let Some(v) = &c.verify_process {
                    s.push_str(&format!(" verify-process=\"{}\"", xml::attr(v)));
                }
                s.push_str(&format!(">{}</checksum>", t(&c.value)));
            }
            s.push_str("</payload>");
        }
        s.push_str("</payloads></vib>");
        s
    }

    /// Parses and checks the structure of a `descriptor.xml` or `vibs/*.xml`.
    ///
    /// # Errors
    /// [`DescriptorError`] for the first structural defect.
    pub fn parse(bytes: &[u8]) -> Result<Self, DescriptorError> {
        let root = xml::parse(bytes)?;
        if root.name != "vib" {
            return Err(DescriptorError::WrongRoot(root.name));
        }
        // The checks run in this order, so the first defect reported stays the same: element
        // order, required elements, acceptance level, payloads, depot fields, flags.
        let unknown = check_elements(&root)?;
        let text = |n: &str| root.child_text(n).unwrap_or_default().to_string();
        let acceptance = text("acceptance-level");
        let acceptance_level = AcceptanceLevel::parse(acceptance.trim())
            .ok_or_else(|| DescriptorError::BadAcceptance(acceptance.clone()))?;
        let payloads = parse_payloads(&root)?;
        let depot = parse_depot(&root)?;
        let sysreq = root.child("system-requires");
        Ok(Self {
            vib_type: text("type"),
            name: text("name"),
            version: text("version"),
            vendor: text("vendor"),
            summary: text("summary"),
            description: text("description"),
            release_date: text("release-date"),
            urls: root
                .child("urls")
                .into_iter()
                .flat_map(|u| u.children_named("url"))
                .map(|u| Url {
                    key: u.attr("key").unwrap_or_default().to_string(),
                    url: u.text.clone(),
                })
                .collect(),
            relationships: parse_relationships(&root),
            software_tags: child_texts(&root, "software-tags", "tag"),
            maintenance_mode: sysreq
                .and_then(|s| s.child_text("maintenance-mode"))
                .unwrap_or("false")
                .to_string(),
            software_platforms: sysreq
                .into_iter()
                .flat_map(|s| s.children_named("softwarePlatform"))
                .map(|p| SoftwarePlatform {
                    version: p.attr("version").unwrap_or_default().to_string(),
                    locale: p.attr("locale").unwrap_or_default().to_string(),
                    product_line_id: p.attr("productLineID").unwrap_or_default().to_string(),
                })
                .collect(),
            files: child_texts(&root, "file-list", "file"),
            acceptance_level,
            live_install_allowed: flag(&root, "live-install-allowed", false)?,
            live_remove_allowed: flag(&root, "live-remove-allowed", false)?,
            cimom_restart: flag(&root, "cimom-restart", false)?,
            stateless_ready: flag(&root, "stateless-ready", false)?,
            overlay: flag(&root, "overlay", false)?,
            payloads,
            depot,
            unknown_elements: unknown,
        })
    }
}

/// Checks the top-level elements: known ones at most once and in [`ELEMENT_ORDER`], every
/// [`REQUIRED`] one present. Returns the names of the unknown ones (kept, not rejected).
fn check_elements(root: &Element) -> Result<Vec<String>, DescriptorError> {
    let mut last: Option<(usize, &str)> = None;
    let mut seen: Vec<&str> = Vec::new();
    let mut unknown = Vec::new();
    for c in &root.children {
        if DEPOT_ELEMENTS.contains(&c.name.as_str()) {
            continue;
        }
        let Some(pos) = ELEMENT_ORDER.iter().position(|n| *n == c.name) else {
            unknown.push(c.name.clone());
            continue;
        };
        if seen.contains(&c.name.as_str()) {
            return Err(DescriptorError::Duplicate(c.name.clone()));
        }
        seen.push(&c.name);
        if let Some((lp, ln)) = last
            && pos < lp
        {
            return Err(DescriptorError::OutOfOrder {
                element: c.name.clone(),
                after: ln.to_string(),
            });
        }
        last = Some((pos, &c.name));
    }
    for r in REQUIRED {
        if root.child(r).is_none() {
            return Err(DescriptorError::Missing(r));
        }
    }
    Ok(unknown)
}

/// A `true`/`false` element; `default` when absent.
fn flag(root: &Element, n: &'static str, default: bool) -> Result<bool, DescriptorError> {
    match root.child_text(n).map(str::trim) {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(v) => Err(DescriptorError::BadBool {
            element: n,
            value: v.to_string(),
        }),
    }
}

/// The texts of the `item` children of `list` (empty when `list` is absent).
fn child_texts(root: &Element, list: &str, item: &str) -> Vec<String> {
    root.child(list)
        .into_iter()
        .flat_map(|l| l.children_named(item))
        .map(|i| i.text.clone())
        .collect()
}

fn parse_relationships(root: &Element) -> Relationships {
    let rel = root.child("relationships");
    let constraints_of = |list: &str, tag: &str| -> Vec<Constraint> {
        rel.and_then(|r| r.child(list))
            .map(|p| {
                p.children_named(tag)
                    .map(|c| Constraint {
                        name: c.attr("name").unwrap_or_default().to_string(),
                        relation: c.attr("relation").map(str::to_string),
                        version: c.attr("version").map(str::to_string),
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    Relationships {
        depends: constraints_of("depends", "constraint"),
        conflicts: constraints_of("conflicts", "constraint"),
        replaces: constraints_of("replaces", "constraint"),
        provides: constraints_of("provides", "provide"),
        compatible_with: constraints_of("compatibleWith", "constraint"),
    }
}

fn parse_payloads(root: &Element) -> Result<Vec<Payload>, DescriptorError> {
    root.child("payloads")
        .into_iter()
        .flat_map(|p| p.children_named("payload"))
        .map(parse_payload)
        .collect()
}

fn parse_payload(p: &Element) -> Result<Payload, DescriptorError> {
    let name = p.attr("name").unwrap_or_default().to_string();
    let bad = |problem: &str| DescriptorError::BadPayload {
        payload: name.clone(),
        problem: problem.into(),
    };
    if name.is_empty() {
        return Err(bad("no name attribute"));
    }
    let payload_type = p
        .attr("type")
        .ok_or_else(|| bad("no type attribute"))?
        .to_string();
    let size = p
        .attr("size")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("size attribute missing or not a number"))?;
    let checksums = p
        .children_named("checksum")
        .map(|c| Checksum {
            checksum_type: c.attr("checksum-type").unwrap_or_default().to_string(),
            verify_process: c.attr("verify-process").map(str::to_string),
            value: c.text.trim().to_string(),
        })
        .collect();
    Ok(Payload {
        name,
        payload_type,
        size,
        checksums,
    })
}

/// The depot fields of a `vibs/*.xml`: all three or none.
fn parse_depot(root: &Element) -> Result<Option<DepotInfo>, DescriptorError> {
    match DEPOT_ELEMENTS.map(|n| root.child(n)) {
        [None, None, None] => Ok(None),
        [Some(rp), Some(ps), Some(ck)] => {
            let packed_size =
                ps.text.trim().parse().map_err(|_| {
                    DescriptorError::BadDepotInfo(format!("packed-size {:?}", ps.text))
                })?;
            if ck.attr("checksum-type") != Some("sha-256") {
                return Err(DescriptorError::BadDepotInfo(
                    "checksum must be checksum-type=\"sha-256\"".into(),
                ));
            }
            Ok(Some(DepotInfo {
                relative_path: rp.text.clone(),
                packed_size,
                sha256: ck.text.trim().to_string(),
            }))
        }
        _ => Err(DescriptorError::BadDepotInfo(
            "relative-path, packed-size and checksum must appear together".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Descriptor {
        Descriptor {
            vib_type: "bootbank".into(),
            name: "n".into(),
            version: "1.0-1".into(),
            vendor: "v".into(),
            summary: "s & t".into(),
            description: "d".into(),
            release_date: "2020-01-01T00:00:00+00:00".into(),
            urls: vec![],
            relationships: Relationships {
                depends: vec![Constraint {
                    name: "esx-base".into(),
                    relation: Some(">=".into()),
                    version: Some("7.0.0".into()),
                }],
                ..Default::default()
            },
            software_tags: vec![],
            maintenance_mode: "false".into(),
            software_platforms: vec![],
            files: vec!["opt/x".into()],
            acceptance_level: AcceptanceLevel::Community,
            live_install_allowed: true,
            live_remove_allowed: true,
            cimom_restart: false,
            stateless_ready: true,
            overlay: false,
            payloads: vec![Payload {
                name: "p".into(),
                payload_type: "vgz".into(),
                size: 3,
                checksums: vec![Checksum {
                    checksum_type: "sha-256".into(),
                    verify_process: Some("gunzip".into()),
                    value: "ab".into(),
                }],
            }],
            depot: None,
            unknown_elements: vec![],
        }
    }

    #[test]
    fn round_trips_with_and_without_depot_info() {
        let mut d = sample();
        let x = d.to_xml();
        assert!(x.contains("<depends><constraint name=\"esx-base\" relation=\"&gt;=\" version=\"7.0.0\"/></depends>"));
        assert!(x.contains("<summary>s &amp; t</summary>"));
        assert_eq!(Descriptor::parse(x.as_bytes()).unwrap(), d);
        d.depot = Some(DepotInfo {
            relative_path: "vib20/n/x.vib".into(),
            packed_size: 9,
            sha256: "cd".into(),
        });
        let x = d.to_xml();
        assert!(x.contains("<software-tags/><relative-path>vib20/n/x.vib</relative-path>"));
        assert_eq!(Descriptor::parse(x.as_bytes()).unwrap(), d);
    }

    #[test]
    fn reports_structure_errors() {
        let x = sample().to_xml();
        let swapped = x.replace(
            "<type>bootbank</type><name>n</name>",
            "<name>n</name><type>bootbank</type>",
        );
        assert!(matches!(
            Descriptor::parse(swapped.as_bytes()),
            Err(DescriptorError::OutOfOrder { .. })
        ));
        let missing = x.replace("<vendor>v</vendor>", "");
        assert_eq!(
            Descriptor::parse(missing.as_bytes()),
            Err(DescriptorError::Missing("vendor"))
        );
        let badbool = x.replace("<overlay>false</overlay>", "<overlay>no</overlay>");
        assert!(matches!(
            Descriptor::parse(badbool.as_bytes()),
            Err(DescriptorError::BadBool { .. })
        ));
        let badacc = x.replace(">community<", ">friends<");
        assert!(matches!(
            Descriptor::parse(badacc.as_bytes()),
            Err(DescriptorError::BadAcceptance(_))
        ));
        assert!(matches!(
            Descriptor::parse(b"<vob/>"),
            Err(DescriptorError::WrongRoot(_))
        ));
    }
}
