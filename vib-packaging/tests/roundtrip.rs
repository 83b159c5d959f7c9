//! Build → inspect round trips, both payload types, and byte-for-byte reproducibility.

mod common;

use std::process::Command;

use common::{EPOCH, inputs, sample_build, sample_spec};
use vib_packaging::tarball::EntryKind;
use vib_packaging::{Report, ar, build, gz, inspect, inspect_bundle, inspect_vib};

#[test]
fn built_vib_and_bundle_inspect_clean() {
    let b = sample_build();
    let v = inspect_vib(&b.vib).unwrap();
    assert!(v.defects.is_empty(), "{:?}", v.defects);
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
    assert_eq!(
        v.vib_id,
        "vmig_bootbank_vmig-agent_0.1.0-29600000OEM.700.1.0.15843807"
    );
    assert_eq!(b.vib_file_name, format!("{}.vib", v.vib_id));
    assert_eq!(v.descriptor, b.descriptor);
    assert_eq!(v.payloads[0].format, "vmtar");
    let entries: Vec<(&str, EntryKind, &str)> = v.payloads[0]
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e.kind, e.mode.as_str()))
        .collect();
    assert_eq!(
        entries,
        [
            ("etc", EntryKind::Dir, "0755"),
            ("etc/init.d", EntryKind::Dir, "0755"),
            ("etc/init.d/vmig-agent", EntryKind::File, "0755"),
            ("etc/vmig", EntryKind::Dir, "1755"),
            ("etc/vmig/vcenter-password", EntryKind::File, "1600"),
            ("etc/vmware", EntryKind::Dir, "0755"),
            ("etc/vmware/firewall", EntryKind::Dir, "0755"),
            ("etc/vmware/firewall/vmig.xml", EntryKind::File, "0444"),
            ("opt", EntryKind::Dir, "0755"),
            ("opt/vmig", EntryKind::Dir, "0755"),
            ("opt/vmig/bin", EntryKind::Dir, "0755"),
            ("opt/vmig/bin/vmig-agent", EntryKind::File, "0755"),
        ]
    );
    // The three checksums ESXi 7 and 8 need, in VMware's order.
    let kinds: Vec<(String, Option<String>)> = b.descriptor.payloads[0]
        .checksums
        .iter()
        .map(|c| (c.checksum_type.clone(), c.verify_process.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("sha-256".to_string(), None),
            ("sha-256".to_string(), Some("gunzip".to_string())),
            ("sha-1".to_string(), Some("gunzip".to_string()))
        ]
    );

    let bundle = inspect_bundle(&b.bundle).unwrap();
    assert!(bundle.defects.is_empty(), "{:?}", bundle.defects);
    assert!(bundle.warnings.is_empty(), "{:?}", bundle.warnings);
    let c = bundle.bulletins[0]
        .component
        .clone()
        .expect("a component bundle");
    assert_eq!(
        (c.name.as_str(), c.version.as_str()),
        ("vmig-agent", b.descriptor.version.as_str())
    );
    assert_eq!(
        bundle.bulletins[0].id,
        format!("vmig-agent_{}", b.descriptor.version)
    );
    assert_eq!(bundle.bulletins[0].platforms, ["7.*", "8.*"]);
    assert_eq!(
        bundle
            .metadata
            .iter()
            .map(|m| m.version.as_str())
            .collect::<Vec<_>>(),
        ["7.*", "8.*"]
    );
    assert_eq!(
        bundle.entries[3],
        format!("vib20/vmig-agent/{}", b.vib_file_name)
    );
}

#[test]
fn descriptor_escapes_and_constrains_esxi_version() {
    let b = sample_build();
    let x = b.descriptor.to_xml();
    assert!(
        x.contains("<description>A &amp; B &lt;test&gt;</description>"),
        "{x}"
    );
    assert!(x.contains(
        "<depends><constraint name=\"esx-base\" relation=\"&gt;=\" version=\"7.0.0\"/></depends>"
    ));
    assert!(
        x.contains("<system-requires><maintenance-mode>false</maintenance-mode></system-requires>")
    );
    assert!(x.contains("<release-date>2026-04-12T13:20:00+00:00</release-date>"));
}

#[test]
fn tgz_payload_is_a_plain_tar_gnu_tar_reads() {
    let dir = tempfile::tempdir().unwrap();
    let spec = sample_spec(dir.path(), "tgz");
    let b = build(&spec, &inputs(&spec)).unwrap();
    let Report::Vib(v) = inspect(&b.vib).unwrap() else {
        panic!()
    };
    assert!(
        v.defects.is_empty() && v.warnings.is_empty(),
        "{:?} {:?}",
        v.defects,
        v.warnings
    );
    assert_eq!(v.payloads[0].format, "ustar");
    assert!(inspect_bundle(&b.bundle).unwrap().defects.is_empty());

    // GNU tar must list the tgz exactly (it cannot read a vmtar, which is why vgz exists).
    let payload = ar::read(&b.vib).unwrap().remove(2).data;
    let tgz = dir.path().join("p.tgz");
    std::fs::write(&tgz, &payload).unwrap();
    let out = Command::new("tar").arg("-tzvf").arg(&tgz).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("root/root"), "{listing}");
    assert!(listing.contains("opt/vmig/bin/vmig-agent"), "{listing}");
    assert!(
        listing.lines().next().unwrap().starts_with('d'),
        "{listing}"
    );
    assert!(gz::decompress("p", &payload, 1 << 20).is_ok());
}

#[test]
fn same_inputs_give_identical_bytes() {
    let a = sample_build();
    let b = sample_build();
    assert_eq!(a.vib, b.vib);
    assert_eq!(a.bundle, b.bundle);
    assert_eq!(a.bundle_file_name, b.bundle_file_name);
}

#[test]
fn a_later_epoch_or_other_content_changes_the_bytes_and_a_later_epoch_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let spec = sample_spec(dir.path(), "vgz");
    let base = build(&spec, &inputs(&spec)).unwrap();
    let mut later = inputs(&spec);
    later.epoch = EPOCH + 60;
    let later = build(&spec, &later).unwrap();
    assert!(
        later.descriptor.version > base.descriptor.version,
        "a later build must sort later"
    );
    assert_ne!(later.vib, base.vib);

    let mut changed = inputs(&spec);
    changed.files[0].data.push(b'!');
    let changed = build(&spec, &changed).unwrap();
    assert_ne!(changed.vib, base.vib);
    assert_ne!(
        changed.descriptor.payloads[0].checksums,
        base.descriptor.payloads[0].checksums
    );
}

#[test]
fn without_source_date_epoch_the_newest_input_mtime_sets_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let spec = sample_spec(dir.path(), "vgz");
    let i = vib_packaging::load_inputs(&spec, &Default::default(), None, None, None).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(i.epoch > 0 && i.epoch <= now + 5);
}

#[test]
fn signatures_follow_the_acceptance_level() {
    let dir = tempfile::tempdir().unwrap();
    let spec = sample_spec(dir.path(), "vgz");
    let mut i = inputs(&spec);
    i.signature = b"not really pkcs7".to_vec();
    let err = build(&spec, &i).unwrap_err().to_string();
    assert!(err.contains("CommunitySupported"), "{err}");

    let mut partner = spec.clone();
    partner.vib.acceptance_level = vib_packaging::descriptor::AcceptanceLevel::Partner;
    let err = build(&partner, &inputs(&partner)).unwrap_err().to_string();
    assert!(err.contains("--signature"), "{err}");
    let b = build(&partner, &i).unwrap();
    let v = inspect_vib(&b.vib).unwrap();
    assert_eq!(v.signature_size, 16);
    assert!(v.defects.is_empty());

    // First pass of signing: unsigned partner build; its descriptor is the one to sign and is
    // identical to the signed build's.
    let mut first = inputs(&partner);
    first.allow_unsigned = true;
    let unsigned = build(&partner, &first).unwrap();
    assert_eq!(unsigned.descriptor.to_xml(), b.descriptor.to_xml());
    assert!(
        inspect_vib(&unsigned.vib)
            .unwrap()
            .warnings
            .iter()
            .any(|w| w.contains("--no-sig-check"))
    );
}
