//! The VMware-built fixtures (`../shared/fixtures/vib/`) are the reference: `inspect` must
//! accept them and report their fields, and every writer must reproduce their bytes.

mod common;

use std::process::Command;

use common::{FIXTURE_BUNDLE, FIXTURE_VIB, fixture, fixture_dir};
use vib_packaging::ar;
use vib_packaging::bundle::{self, BundleMeta};
use vib_packaging::descriptor::{AcceptanceLevel, Descriptor};
use vib_packaging::tarball::{self, TarFormat};
use vib_packaging::{Report, gz, inspect, zip};

#[test]
fn inspect_reports_the_fixture_vib_fields() {
    let Some(bytes) = fixture(FIXTURE_VIB) else {
        return;
    };
    let Report::Vib(r) = inspect(&bytes).unwrap() else {
        panic!("not a VIB report")
    };
    assert!(r.defects.is_empty(), "{:?}", r.defects);
    assert_eq!(r.vib_id, "virtuallyGhetto_bootbank_ghettoVCB_1.0.0-0.0.0");
    let d = &r.descriptor;
    assert_eq!(
        (d.name.as_str(), d.version.as_str(), d.vendor.as_str()),
        ("ghettoVCB", "1.0.0-0.0.0", "virtuallyGhetto")
    );
    assert_eq!(d.acceptance_level, AcceptanceLevel::Community);
    assert_eq!(d.release_date, "2020-12-29T03:03:07+00:00");
    assert_eq!(r.signature_size, 0);
    assert_eq!(
        r.members
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        ["descriptor.xml", "sig.pkcs7", "payload1"]
    );
    assert_eq!(r.payloads[0].format, "vmtar");
    assert_eq!(r.payloads[0].size, 35315);
    assert_eq!(d.files.len(), 6);
    // VIB Author's output lacks the gunzip sha-256 ESXi 8 needs: a warning, not a defect.
    assert!(
        r.warnings.iter().any(|w| w.contains("sha-256 gunzip")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn inspect_reports_the_fixture_bundle_fields() {
    let Some(bytes) = fixture(FIXTURE_BUNDLE) else {
        return;
    };
    let Report::Bundle(b) = inspect(&bytes).unwrap() else {
        panic!("not a bundle report")
    };
    assert!(b.defects.is_empty(), "{:?}", b.defects);
    assert_eq!(
        b.entries,
        [
            "metadata.zip",
            "vendor-index.xml",
            "index.xml",
            "vib20/ghettoVCB/virtuallyGhetto_bootbank_ghettoVCB_1.0.0-0.0.0.vib"
        ]
    );
    assert_eq!(
        b.metadata_entries,
        [
            "vmware.xml",
            "vendor-index.xml",
            "vibs/ghettoVCB-8888121678286672132.xml",
            "bulletins/ghettoVCB.xml"
        ]
    );
    assert_eq!(
        b.vendors,
        [("virtuallyGhetto".to_string(), "Unknown".to_string())]
    );
    assert_eq!(b.bulletins[0].id, "ghettoVCB");
    assert_eq!(b.bulletins[0].component, None);
    assert_eq!(b.bulletins[0].platforms, ["5.*"]);
    assert_eq!(b.vibs.len(), 1);
    assert!(b.warnings.iter().any(|w| w.contains("legacy bulletin")));
}

/// The human-facing JSON of `vibpack inspect --json`, from the real binary.
#[test]
fn inspect_json_snapshots() {
    let Some(dir) = fixture_dir() else { return };
    for (name, snap) in [
        (FIXTURE_VIB, "inspect_fixture_vib"),
        (FIXTURE_BUNDLE, "inspect_fixture_bundle"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_vibpack"))
            .arg("inspect")
            .arg("--json")
            .arg(dir.join(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        insta::assert_json_snapshot!(snap, json);
    }
}

#[test]
fn descriptor_writer_reproduces_vib_author_bytes() {
    let Some(vib) = fixture(FIXTURE_VIB) else {
        return;
    };
    let members = ar::read(&vib).unwrap();
    let desc = &members[0].data;
    assert_eq!(
        Descriptor::parse(desc).unwrap().to_xml().as_bytes(),
        desc.as_slice()
    );
}

#[test]
fn ar_writer_reproduces_the_fixture_vib() {
    let Some(vib) = fixture(FIXTURE_VIB) else {
        return;
    };
    assert_eq!(ar::write(&ar::read(&vib).unwrap()).unwrap(), vib);
}

#[test]
fn vmtar_writer_reproduces_the_fixture_payload() {
    let Some(vib) = fixture(FIXTURE_VIB) else {
        return;
    };
    let members = ar::read(&vib).unwrap();
    let vmtar = gz::decompress("payload1", &members[2].data, gz::MAX_UNCOMPRESSED).unwrap();
    let archive = tarball::read(&vmtar).unwrap();
    // VIB Author wrote the entries in directory-walk order with the build time as mtime.
    let mtime = u64::from_str_radix(std::str::from_utf8(&vmtar[136..147]).unwrap(), 8).unwrap();
    assert_eq!(
        tarball::write_in_order(&archive.entries, TarFormat::Vmtar, mtime),
        vmtar
    );
}

#[test]
fn bundle_writers_reproduce_the_fixture_metadata() {
    let Some(bytes) = fixture(FIXTURE_BUNDLE) else {
        return;
    };
    let outer = zip::read(&bytes).unwrap();
    let get = |entries: &[zip::ZipEntry], n: &str| {
        entries.iter().find(|e| e.name == n).unwrap().data.clone()
    };
    let meta = zip::read(&get(&outer, "metadata.zip")).unwrap();
    let vib = get(
        &outer,
        "vib20/ghettoVCB/virtuallyGhetto_bootbank_ghettoVCB_1.0.0-0.0.0.vib",
    );
    let d = Descriptor::parse(&ar::read(&vib).unwrap()[0].data).unwrap();

    assert_eq!(
        bundle::index_xml(&d.vendor, "Unknown").as_bytes(),
        get(&outer, "index.xml")
    );
    assert_eq!(
        bundle::vendor_index_xml(&["5.*".into()]).as_bytes(),
        get(&outer, "vendor-index.xml")
    );
    assert_eq!(
        get(&meta, "vendor-index.xml"),
        get(&outer, "vendor-index.xml")
    );

    let m = BundleMeta {
        vendor_code: "Unknown".into(),
        bulletin_id: "ghettoVCB".into(),
        component: None,
        kb_url: "unknown".into(),
        contact: "unkown".into(),
        platforms: vec!["5.*".into()],
    };
    assert_eq!(
        bundle::bulletin_xml(&d, &m).as_bytes(),
        get(&meta, "bulletins/ghettoVCB.xml")
    );

    let vibs_xml = get(&meta, "vibs/ghettoVCB-8888121678286672132.xml");
    let with_depot = Descriptor::parse(&vibs_xml).unwrap();
    assert_eq!(with_depot.to_xml().as_bytes(), vibs_xml.as_slice());
    let depot = with_depot.depot.clone().unwrap();
    assert_eq!(depot.relative_path, bundle::vib_relative_path(&d));

    // vmware.xml: identical except the timestamp's microseconds, which we fix at zero.
    let ours = bundle::vmware_xml(&d, &m, &depot, 1_609_252_862);
    let theirs = String::from_utf8(get(&meta, "vmware.xml")).unwrap();
    assert_eq!(
        ours,
        theirs.replace("2020-12-29T14:41:02.736854", "2020-12-29T14:41:02.000000")
    );
}
