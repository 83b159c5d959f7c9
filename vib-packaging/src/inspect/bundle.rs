//! Validation of an offline bundle: `index.xml` → `vendor-index.xml` → each `metadata.zip`
//! (`vmware.xml`, `bulletins/*.xml`, `vibs/*.xml`) → each `.vib`, which is inspected in full.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::vib::{VibReport, inspect_vib};
use super::{Defect, InspectError, sha256_hex};
use crate::bundle::Component;
use crate::descriptor::Descriptor;
use crate::xml::{self, Element};
use crate::zip;

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

/// Files of one zip by name.
type ZipFiles<'a> = BTreeMap<&'a str, &'a [u8]>;

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

/// Metadata about a `.vib` (in `file`) that disagrees with the `.vib` at `path`.
fn mismatch(
    file: &str,
    what: &'static str,
    path: &str,
    declared: String,
    actual: String,
) -> Defect {
    Defect::VibFileMismatch {
        file: file.into(),
        what,
        path: path.into(),
        declared,
        actual,
    }
}

/// Inspects and validates an offline bundle, including every VIB it contains.
///
/// # Errors
/// [`InspectError::Zip`] when the outer zip cannot be read.
pub fn inspect_bundle(bytes: &[u8]) -> Result<BundleReport, InspectError> {
    let outer = zip::read(bytes)?;
    let mut scan = BundleScan {
        files: outer
            .iter()
            .map(|e| (e.name.as_str(), e.data.as_slice()))
            .collect(),
        referenced: BTreeSet::new(),
        report: BundleReport {
            entries: outer.iter().map(|e| e.name.clone()).collect(),
            metadata_entries: Vec::new(),
            vendors: Vec::new(),
            metadata: Vec::new(),
            bulletins: Vec::new(),
            vibs: Vec::new(),
            defects: Vec::new(),
            warnings: Vec::new(),
        },
    };
    let index_files = scan.read_index();
    let urls = scan.read_vendor_indexes(&index_files);
    if !index_files.is_empty()
        && scan.report.metadata.is_empty()
        && !scan
            .report
            .defects
            .iter()
            .any(|d| matches!(d, Defect::MissingEntry(_)))
    {
        scan.report.defects.push(Defect::BadMetadata {
            file: "vendor-index.xml".into(),
            error: "no <metadata> entries".into(),
        });
    }
    for url in &urls {
        scan.read_metadata_zip(url);
    }
    for e in &outer {
        if e.name.ends_with(".vib") && !scan.referenced.contains(&e.name) {
            scan.report.warnings.push(format!(
                "{} is in the bundle but no metadata lists it",
                e.name
            ));
        }
    }
    Ok(scan.report)
}

/// The walk through one bundle: its files, the report so far, and the `.vib` paths some
/// metadata names (the rest are reported as unreferenced at the end).
struct BundleScan<'a> {
    files: ZipFiles<'a>,
    referenced: BTreeSet<String>,
    report: BundleReport,
}

impl BundleScan<'_> {
    /// `index.xml`: the vendors and their `vendor-index.xml` files.
    fn read_index(&mut self) -> Vec<String> {
        let mut index_files = Vec::new();
        let Some(d) = self.files.get("index.xml") else {
            self.report
                .defects
                .push(Defect::MissingEntry("index.xml".into()));
            return index_files;
        };
        if let Some(idx) = parse_xml("index.xml", d, &mut self.report.defects) {
            for v in idx.children_named("vendor") {
                self.report.vendors.push((
                    v.child_text("name").unwrap_or_default().to_string(),
                    v.child_text("code").unwrap_or_default().to_string(),
                ));
                index_files.push(v.child_text("indexfile").unwrap_or_default().to_string());
            }
        }
        index_files
    }

    /// Each `vendor-index.xml`: its `<metadata>` references; returns the `metadata.zip` paths.
    fn read_vendor_indexes(&mut self, index_files: &[String]) -> BTreeSet<String> {
        let mut urls = BTreeSet::new();
        for f in index_files {
            let Some(d) = self.files.get(f.as_str()) else {
                self.report.defects.push(Defect::MissingEntry(f.clone()));
                continue;
            };
            let Some(vi) = parse_xml(f, d, &mut self.report.defects) else {
                continue;
            };
            for m in vi.children_named("metadata") {
                let r = MetadataRef {
                    product_id: m.child_text("productId").unwrap_or_default().into(),
                    version: m.child_text("version").unwrap_or_default().into(),
                    url: m.child_text("url").unwrap_or_default().into(),
                };
                urls.insert(r.url.clone());
                self.report.metadata.push(r);
            }
        }
        urls
    }

    /// One `metadata.zip`: its bulletins, then every VIB `vmware.xml` lists.
    fn read_metadata_zip(&mut self, url: &str) {
        let Some(mz) = self.files.get(url) else {
            self.report.defects.push(Defect::MissingEntry(url.into()));
            return;
        };
        let inner = match zip::read(mz) {
            Ok(i) => i,
            Err(e) => {
                self.report.defects.push(Defect::BadMetadata {
                    file: url.into(),
                    error: e.to_string(),
                });
                return;
            }
        };
        self.report
            .metadata_entries
            .extend(inner.iter().map(|e| e.name.clone()));
        let meta: ZipFiles<'_> = inner
            .iter()
            .map(|e| (e.name.as_str(), e.data.as_slice()))
            .collect();
        if let (Some(a), Some(b)) = (
            meta.get("vendor-index.xml"),
            self.files.get("vendor-index.xml"),
        ) && a != b
        {
            self.report.warnings.push(format!(
                "{url}/vendor-index.xml differs from the top-level vendor-index.xml"
            ));
        }
        let Some(vx) = meta.get("vmware.xml") else {
            self.report
                .defects
                .push(Defect::MissingEntry(format!("{url}/vmware.xml")));
            return;
        };
        let Some(vm) = parse_xml("vmware.xml", vx, &mut self.report.defects) else {
            return;
        };
        let vibs_xml = self.read_vibs_xml(&meta);
        // VIB records: top-level ones, then those nested in bulletins' vibLists.
        let mut records: Vec<&Element> = vm.children_named("vib").collect();
        for b in vm.children_named("bulletin") {
            let bulletin = self.read_bulletin(b, url, &meta, &mut records);
            self.report.bulletins.push(bulletin);
        }
        for r in records {
            self.check_bundled_vib(r, &vibs_xml);
        }
    }

    /// `vibs/*.xml`, keyed by the relative path they describe.
    fn read_vibs_xml(&mut self, meta: &ZipFiles<'_>) -> BTreeMap<String, Descriptor> {
        let mut vibs_xml = BTreeMap::new();
        for (name, data) in meta
            .iter()
            .filter(|(n, _)| n.starts_with("vibs/") && n.ends_with(".xml"))
        {
            match Descriptor::parse(data) {
                Ok(d) => match &d.depot {
                    Some(dep) => {
                        vibs_xml.insert(dep.relative_path.clone(), d);
                    }
                    None => self.report.defects.push(Defect::BadMetadata {
                        file: (*name).into(),
                        error: "lacks relative-path/packed-size/checksum".into(),
                    }),
                },
                Err(e) => self.report.defects.push(Defect::BadMetadata {
                    file: (*name).into(),
                    error: e.to_string(),
                }),
            }
        }
        vibs_xml
    }

    /// One `<bulletin>` of `vmware.xml`, checked against its `bulletins/<id>.xml`. VIB
    /// records nested in its `vibList` are added to `records`.
    fn read_bulletin<'e>(
        &mut self,
        b: &'e Element,
        url: &str,
        meta: &ZipFiles<'_>,
        records: &mut Vec<&'e Element>,
    ) -> BulletinReport {
        let id = b.child_text("id").unwrap_or_default().to_string();
        let component = component_of(b, &mut self.report.defects, &mut self.report.warnings, &id);
        let mut vib_ids = Vec::new();
        for v in b
            .child("vibList")
            .into_iter()
            .flat_map(|l| l.children.iter())
        {
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
            None => self
                .report
                .defects
                .push(Defect::MissingEntry(format!("{url}/{bfile}"))),
            Some(d) => self.check_bulletin_file(&id, &bfile, d, &vib_ids, component.as_ref()),
        }
        BulletinReport {
            id,
            vendor: b.child_text("vendor").unwrap_or_default().into(),
            component,
            platforms,
            vib_ids,
        }
    }

    /// `bulletins/<id>.xml` must list the same VIBs and component as `vmware.xml`.
    fn check_bulletin_file(
        &mut self,
        id: &str,
        bfile: &str,
        data: &[u8],
        vib_ids: &[String],
        component: Option<&Component>,
    ) {
        let Some(bx) = parse_xml(bfile, data, &mut self.report.defects) else {
            return;
        };
        let listed: Vec<String> = bx
            .child("vibList")
            .into_iter()
            .flat_map(|l| l.children_named("vibID"))
            .map(|v| v.text.clone())
            .collect();
        if listed != vib_ids {
            self.report.defects.push(Defect::Bulletin {
                id: id.into(),
                problem: format!("{bfile} lists {listed:?}, vmware.xml lists {vib_ids:?}"),
            });
        }
        let here = component_of(&bx, &mut Vec::new(), &mut Vec::new(), id);
        if here.as_ref() != component {
            self.report.defects.push(Defect::Bulletin {
                id: id.into(),
                problem: format!("{bfile} and vmware.xml disagree on the component specs"),
            });
        }
    }

    /// One VIB record of `vmware.xml`: the `.vib` it names exists, matches its size,
    /// checksum and ID, matches its `vibs/*.xml`, and passes [`inspect_vib`].
    fn check_bundled_vib(&mut self, r: &Element, vibs_xml: &BTreeMap<String, Descriptor>) {
        let vib_id = r.child_text("vibID").unwrap_or_default().to_string();
        let vf = r.child("vibFile");
        let path = vf
            .and_then(|f| f.child_text("relativePath"))
            .unwrap_or_default()
            .to_string();
        self.referenced.insert(path.clone());
        let Some(data) = self.files.get(path.as_str()) else {
            self.report
                .defects
                .push(Defect::VibMissing { vib_id, path });
            return;
        };
        let size = data.len().to_string();
        let sha = sha256_hex(data);
        let declared_size = vf
            .and_then(|f| f.child_text("packedSize"))
            .unwrap_or_default()
            .trim()
            .to_string();
        if declared_size != size {
            let d = mismatch(
                "vmware.xml",
                "packedSize",
                &path,
                declared_size,
                size.clone(),
            );
            self.report.defects.push(d);
        }
        let declared_sha = vf
            .and_then(|f| f.child("checksum"))
            .and_then(|c| c.child_text("checksum"))
            .unwrap_or_default()
            .trim()
            .to_string();
        if !declared_sha.eq_ignore_ascii_case(&sha) {
            let d = mismatch("vmware.xml", "sha-256", &path, declared_sha, sha.clone());
            self.report.defects.push(d);
        }
        let report = match inspect_vib(data) {
            Ok(r) => r,
            Err(e) => {
                self.report.defects.push(Defect::VibUnreadable {
                    path,
                    error: e.to_string(),
                });
                return;
            }
        };
        if report.vib_id != vib_id {
            let d = mismatch(
                "vmware.xml",
                "vibID",
                &path,
                vib_id.clone(),
                report.vib_id.clone(),
            );
            self.report.defects.push(d);
        }
        self.check_vibs_xml(vibs_xml.get(&path), &report, &vib_id, &path, &size, &sha);
        self.report
            .defects
            .extend(report.defects.iter().map(|d| Defect::InVib {
                path: path.clone(),
                defect: Box::new(d.clone()),
            }));
        self.report.vibs.push(BundledVib { path, report });
    }

    /// The `vibs/*.xml` for a `.vib` repeats its descriptor plus its size and checksum.
    fn check_vibs_xml(
        &mut self,
        described: Option<&Descriptor>,
        report: &VibReport,
        vib_id: &str,
        path: &str,
        size: &str,
        sha: &str,
    ) {
        let Some(d) = described else {
            self.report.defects.push(Defect::VibsXml {
                vib_id: vib_id.into(),
                problem: format!("none describes {path}"),
            });
            return;
        };
        let mut plain = d.clone();
        let depot = plain.depot.take();
        if plain != report.descriptor {
            self.report.defects.push(Defect::VibsXml {
                vib_id: vib_id.into(),
                problem: "differs from the VIB's descriptor.xml".into(),
            });
        }
        if let Some(dep) = depot {
            if dep.packed_size.to_string() != size {
                let d = mismatch(
                    "vibs/*.xml",
                    "packed-size",
                    path,
                    dep.packed_size.to_string(),
                    size.into(),
                );
                self.report.defects.push(d);
            }
            if !dep.sha256.eq_ignore_ascii_case(sha) {
                let d = mismatch("vibs/*.xml", "sha-256", path, dep.sha256, sha.into());
                self.report.defects.push(d);
            }
        }
    }
}
