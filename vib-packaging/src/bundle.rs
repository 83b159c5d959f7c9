//! The offline bundle (depot zip) and its `metadata.zip`, laid out as VIB Author does.
//!
//! ```text
//! bundle.zip: metadata.zip, vendor-index.xml, index.xml, vib20/<name>/<VIB-ID>.vib
//! metadata.zip: vmware.xml, vendor-index.xml, vibs/<name>-<digits>.xml, bulletins/<id>.xml
//! ```
//! Entry order, indentation and trailing newlines follow the VMware-built fixture
//! (`shared/fixtures/vib/`). On top of the fixture, the bulletin carries
//! `componentNameSpec`/`componentVersionSpec` (before `releaseDate`), which makes the bundle a
//! vSphere 7+ *component* that vLCM and `esxcli software component apply` accept.

use sha2::{Digest, Sha256};

use crate::descriptor::{DepotInfo, Descriptor};
use crate::time;
use crate::xml::{attr, text};
use crate::zip::{self, ZipEntry};

/// The `vibVersion` VIB Author records for each VIB in `vmware.xml`.
pub const VIB_FORMAT_VERSION: &str = "1.4.5";

/// A vLCM component's name and version specs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Component {
    /// `componentNameSpec name`.
    pub name: String,
    /// `componentNameSpec uiString`.
    pub ui_name: String,
    /// `componentVersionSpec version`.
    pub version: String,
    /// `componentVersionSpec uiString`.
    pub ui_version: String,
}

/// Bundle-level metadata that is not in the descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleMeta {
    /// `index.xml` vendor code.
    pub vendor_code: String,
    /// Bulletin ID ([`bulletin_id`] for components; VIB Author uses the VIB name).
    pub bulletin_id: String,
    /// The component this bundle is; `None` writes a legacy bulletin like VIB Author's.
    pub component: Option<Component>,
    /// Bulletin `kbUrl`.
    pub kb_url: String,
    /// Bulletin `contact`.
    pub contact: String,
    /// ESXi version patterns (`7.*`, `8.*`).
    pub platforms: Vec<String>,
}

/// `vib20/<name>/<VIB-ID>.vib`.
pub fn vib_relative_path(d: &Descriptor) -> String {
    format!("vib20/{}/{}.vib", d.name, d.vib_id())
}

/// The bulletin ID: `<component>_<version>`, new for every version.
pub fn bulletin_id(c: &Component) -> String {
    format!("{}_{}", c.name, c.version)
}

/// `index.xml`: the depot's vendor list.
pub fn index_xml(vendor: &str, code: &str) -> String {
    format!(
        "<vendorList>\n  <vendor>\n    <name>{}</name>\n    <code>{}</code>\n    \
         <indexfile>vendor-index.xml</indexfile>\n    <patchUrl></patchUrl>\n    <relativePath></relativePath>\n    \
         <content>\n      <name>VMware ESX</name>\n      <type>http://www.vmware.com/depotmanagement/esx</type>\n    \
         </content>\n  </vendor>\n</vendorList>\n",
        text(vendor),
        text(code)
    )
}

/// `vendor-index.xml`: one `<metadata>` per ESXi version pattern, all pointing at `metadata.zip`.
pub fn vendor_index_xml(platforms: &[String]) -> String {
    let mut s = String::from("<metaList>\n");
    for p in platforms {
        s.push_str(&format!(
            "  <metadata>\n    <productId>embeddedEsx</productId>\n    <version>{}</version>\n    \
             <locale></locale>\n    <url>metadata.zip</url>\n    <channelName>default</channelName>\n  </metadata>\n",
            text(p)
        ));
    }
    s.push_str("</metaList>\n");
    s
}

fn platform(p: &str) -> String {
    format!(
        "<softwarePlatform locale=\"\" version=\"{}\" productLineID=\"embeddedEsx\"/>",
        attr(p)
    )
}

/// The bulletin's leading fields, shared by `vmware.xml` (indented) and `bulletins/*.xml`.
fn bulletin_head(d: &Descriptor, m: &BundleMeta) -> Vec<String> {
    let mut v = vec![
        format!("<id>{}</id>", text(&m.bulletin_id)),
        format!("<vendor>{}</vendor>", text(&d.vendor)),
        format!("<summary>{}</summary>", text(&d.summary)),
        "<severity>general</severity>".into(),
        "<category>general</category>".into(),
        "<urgency>important</urgency>".into(),
        "<releaseType>extension</releaseType>".into(),
        format!("<description>{}</description>", text(&d.description)),
        format!("<kbUrl>{}</kbUrl>", text(&m.kb_url)),
        format!("<contact>{}</contact>", text(&m.contact)),
    ];
    if let Some(c) = &m.component {
        v.push(format!(
            "<componentNameSpec name=\"{}\" uiString=\"{}\"/>",
            attr(&c.name),
            attr(&c.ui_name)
        ));
        v.push(format!(
            "<componentVersionSpec version=\"{}\" uiString=\"{}\"/>",
            attr(&c.version),
            attr(&c.ui_version)
        ));
    }
    v.push(format!(
        "<releaseDate>{}</releaseDate>",
        text(&d.release_date)
    ));
    v
}

/// `metadata.zip/vmware.xml`: the bulletin with full VIB records.
pub fn vmware_xml(d: &Descriptor, m: &BundleMeta, depot: &DepotInfo, epoch: u64) -> String {
    let mut s = format!(
        "<metadataResponse>\n  <version>3.0</version>\n  <timestamp>{}</timestamp>\n  <bulletin>\n",
        time::metadata_timestamp(epoch)
    );
    for line in bulletin_head(d, m) {
        s.push_str(&format!("    {line}\n"));
    }
    s.push_str("    <platforms>\n");
    for p in &m.platforms {
        s.push_str(&format!("      {}\n", platform(p)));
    }
    s.push_str("    </platforms>\n    <vibList>\n      <vib>\n");
    let i8 = "        ";
    let mut line = |l: String| s.push_str(&format!("{i8}{l}\n"));
    line(format!("<vibVersion>{VIB_FORMAT_VERSION}</vibVersion>"));
    line(format!("<vibID>{}</vibID>", text(&d.vib_id())));
    line(format!("<name>{}</name>", text(&d.name)));
    line(format!("<version>{}</version>", text(&d.version)));
    line(format!("<vendor>{}</vendor>", text(&d.vendor)));
    line(format!("<vibType>{}</vibType>", text(&d.vib_type)));
    line(format!("<summary>{}</summary>", text(&d.summary)));
    line("<systemReqs>".into());
    line(format!(
        "  <maintenanceMode>{}</maintenanceMode>",
        text(&d.maintenance_mode)
    ));
    for p in &m.platforms {
        line(format!(
            "  <swPlatform locale=\"\" version=\"{}\" productLineID=\"embeddedEsx\"/>",
            attr(p)
        ));
    }
    line("</systemReqs>".into());
    line("<relationships>".into());
    let r = &d.relationships;
    for (tag, items, inner) in [
        ("depends", &r.depends, "constraint"),
        ("conflicts", &r.conflicts, "constraint"),
        ("replaces", &r.replaces, "constraint"),
        ("provides", &r.provides, "provide"),
        ("compatibleWith", &r.compatible_with, "constraint"),
    ] {
        if items.is_empty() {
            line(format!("  <{tag}/>"));
        } else {
            line(format!("  <{tag}>"));
            for c in items {
                let mut e = format!("    <{inner} name=\"{}\"", attr(&c.name));
                if let Some(rel) = &c.relation {
                    e.push_str(&format!(" relation=\"{}\"", attr(rel)));
                }
                if let Some(v) = &c.version {
                    e.push_str(&format!(" version=\"{}\"", attr(v)));
                }
                e.push_str("/>");
                line(e);
            }
            line(format!("  </{tag}>"));
        }
    }
    line("</relationships>".into());
    line("<postInstall>".into());
    line("  <rebootRequired>false</rebootRequired>".into());
    line("  <hostdRestart>false</hostdRestart>".into());
    line("</postInstall>".into());
    line("<vibFile>".into());
    line("  <sourceUrl></sourceUrl>".into());
    line(format!(
        "  <relativePath>{}</relativePath>",
        text(&depot.relative_path)
    ));
    line(format!("  <packedSize>{}</packedSize>", depot.packed_size));
    line("  <checksum>".into());
    line("    <checksumType>sha-256</checksumType>".into());
    line(format!("    <checksum>{}</checksum>", depot.sha256));
    line("  </checksum>".into());
    line("</vibFile>".into());
    s.push_str("      </vib>\n    </vibList>\n  </bulletin>\n</metadataResponse>\n");
    s
}

/// `metadata.zip/bulletins/<id>.xml`: the bulletin on one line, VIBs by ID only.
pub fn bulletin_xml(d: &Descriptor, m: &BundleMeta) -> String {
    let mut s = String::from("<bulletin>");
    for l in bulletin_head(d, m) {
        s.push_str(&l);
    }
    s.push_str("<platforms>");
    for p in &m.platforms {
        s.push_str(&platform(p));
    }
    s.push_str(&format!(
        "</platforms><vibList><vibID>{}</vibID></vibList></bulletin>",
        text(&d.vib_id())
    ));
    s
}

/// The digits VIB Author puts in `vibs/<name>-<digits>.xml`: here derived from the `.vib`'s
/// SHA-256 so they are stable for identical content.
pub fn vibs_xml_name(d: &Descriptor, vib_sha256: &[u8]) -> String {
    let mut first = [0u8; 8];
    first.copy_from_slice(&vib_sha256[..8]);
    format!("vibs/{}-{}.xml", d.name, u64::from_be_bytes(first) >> 1)
}

/// Writes the offline bundle for one VIB (`vib` = its bytes, `d` = its descriptor).
pub fn write(d: &Descriptor, vib: &[u8], meta: &BundleMeta, epoch: u64) -> Vec<u8> {
    let sha = Sha256::digest(vib);
    let depot = DepotInfo {
        relative_path: vib_relative_path(d),
        packed_size: vib.len() as u64,
        sha256: hex::encode(sha),
    };
    let vendor_index = vendor_index_xml(&meta.platforms);
    let mut with_depot = d.clone();
    with_depot.depot = Some(depot.clone());
    let metadata = zip::write(
        &[
            ZipEntry {
                name: "vmware.xml".into(),
                data: vmware_xml(d, meta, &depot, epoch).into_bytes(),
            },
            ZipEntry {
                name: "vendor-index.xml".into(),
                data: vendor_index.clone().into_bytes(),
            },
            ZipEntry {
                name: vibs_xml_name(d, &sha),
                data: with_depot.to_xml().into_bytes(),
            },
            ZipEntry {
                name: format!("bulletins/{}.xml", meta.bulletin_id),
                data: bulletin_xml(d, meta).into_bytes(),
            },
        ],
        epoch,
    );
    zip::write(
        &[
            ZipEntry {
                name: "metadata.zip".into(),
                data: metadata,
            },
            ZipEntry {
                name: "vendor-index.xml".into(),
                data: vendor_index.into_bytes(),
            },
            ZipEntry {
                name: "index.xml".into(),
                data: index_xml(&d.vendor, &meta.vendor_code).into_bytes(),
            },
            ZipEntry {
                name: depot.relative_path.clone(),
                data: vib.to_vec(),
            },
        ],
        epoch,
    )
}
