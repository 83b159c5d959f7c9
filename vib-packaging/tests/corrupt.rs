//! Every validator error, each provoked by one defect in an otherwise valid VIB or bundle.

mod common;

use common::sample_build;
use vib_packaging::ar::{self, ArError, ArMember};
use vib_packaging::descriptor::Descriptor;
use vib_packaging::zip::{self, ZipEntry, ZipError};
use vib_packaging::{Defect, InspectError, gz, inspect_bundle, inspect_vib, tarball};

fn members() -> Vec<ArMember> {
    ar::read(&sample_build().vib).unwrap()
}

fn defects_of(m: &[ArMember]) -> Vec<Defect> {
    inspect_vib(&ar::write(m).unwrap()).unwrap().defects
}

/// Rewrites the descriptor member through `f`.
fn with_descriptor(f: impl FnOnce(&mut Descriptor)) -> Vec<ArMember> {
    let mut m = members();
    let mut d = Descriptor::parse(&m[0].data).unwrap();
    f(&mut d);
    m[0].data = d.to_xml().into_bytes();
    m
}

#[test]
fn truncated_ar_is_reported() {
    let vib = sample_build().vib;
    let err = inspect_vib(&vib[..vib.len() - 100]).unwrap_err();
    assert!(
        matches!(err, InspectError::Ar(ArError::TruncatedMember { ref name, .. }) if name == "vmigagnt"),
        "{err}"
    );
    assert!(err.to_string().contains("truncated"));
    assert!(matches!(
        inspect_vib(&vib[..30]).unwrap_err(),
        InspectError::Ar(ArError::TruncatedHeader { .. })
    ));
    assert!(matches!(
        inspect_vib(b"!<arch>\n").unwrap_err(),
        InspectError::NoDescriptor
    ));
}

#[test]
fn wrong_payload_checksum_is_reported() {
    let mut m = members();
    m[2].data[30] ^= 0x55;
    let d = defects_of(&m);
    assert!(
        d.iter()
            .any(|d| matches!(d, Defect::ChecksumMismatch { kind, .. } if kind == "sha-256")),
        "{d:?}"
    );

    let m = with_descriptor(|d| d.payloads[0].checksums[2].value = "00".repeat(20));
    assert_eq!(defects_of(&m).len(), 1);
    assert!(
        matches!(&defects_of(&m)[0], Defect::ChecksumMismatch { kind, .. } if kind == "sha-1 (gunzip)")
    );
}

#[test]
fn file_list_mismatch_is_reported() {
    let m = with_descriptor(|d| {
        d.files.retain(|f| f != "etc/init.d/vmig-agent");
        d.files.push("opt/vmig/bin/ghost".into());
    });
    let d = defects_of(&m);
    assert_eq!(
        d,
        [Defect::FileListMismatch {
            only_in_list: vec!["opt/vmig/bin/ghost".into()],
            only_in_payloads: vec!["etc/init.d/vmig-agent".into()],
        }]
    );
    assert!(d[0].to_string().contains("ghost"));
}

#[test]
fn payload_size_member_order_extra_and_missing_members() {
    let m = with_descriptor(|d| d.payloads[0].size += 1);
    assert!(matches!(defects_of(&m)[..], [Defect::PayloadSize { .. }]));

    let mut m = members();
    m.swap(0, 1);
    assert!(matches!(defects_of(&m)[..], [Defect::MemberOrder { .. }]));

    let mut m = members();
    m.push(ArMember {
        name: "stray".into(),
        data: vec![1],
    });
    assert_eq!(defects_of(&m), [Defect::ExtraMember("stray".into())]);

    let mut m = members();
    m.pop();
    assert!(defects_of(&m).contains(&Defect::MissingPayload("vmigagnt".into())));
}

#[test]
fn unreadable_payload_and_bad_ids() {
    let mut m = members();
    let mut tar = gz::decompress("p", &m[2].data, 1 << 24).unwrap();
    tar[0] ^= 1; // breaks the first header's checksum
    m[2].data = gz::compress(&tar);
    let d = defects_of(&m);
    assert!(
        d.iter()
            .any(|d| matches!(d, Defect::PayloadUnreadable { .. })),
        "{d:?}"
    );
    assert!(
        d.iter()
            .any(|d| matches!(d, Defect::ChecksumMismatch { .. })),
        "{d:?}"
    );

    let m = with_descriptor(|d| {
        d.version = "latest".into();
        d.vib_type = "locker".into();
    });
    let d = defects_of(&m);
    assert!(d.iter().any(|d| matches!(d, Defect::BadId(_))), "{d:?}");
    assert!(
        d.iter().any(|d| matches!(d, Defect::BadVibType(_))),
        "{d:?}"
    );

    let m = with_descriptor(|d| {
        d.payloads[0].checksums.remove(0);
    });
    assert_eq!(defects_of(&m), [Defect::MissingSha256("vmigagnt".into())]);
    let m = with_descriptor(|d| d.payloads[0].checksums[0].checksum_type = "md5".into());
    assert!(
        defects_of(&m)
            .iter()
            .any(|d| matches!(d, Defect::UnknownChecksum { .. }))
    );
}

#[test]
fn malformed_descriptor_is_a_hard_error() {
    let mut m = members();
    m[0].data = b"<vib version=\"5.0\"><type>bootbank</type>".to_vec();
    assert!(matches!(
        inspect_vib(&ar::write(&m).unwrap()).unwrap_err(),
        InspectError::Descriptor(_)
    ));
}

fn bundle_entries() -> (Vec<ZipEntry>, Vec<ZipEntry>) {
    let outer = zip::read(&sample_build().bundle).unwrap();
    let meta = zip::read(&outer[0].data).unwrap();
    (outer, meta)
}

fn repack(mut outer: Vec<ZipEntry>, meta: Vec<ZipEntry>) -> Vec<u8> {
    outer[0].data = zip::write(&meta, 0);
    zip::write(&outer, 0)
}

#[test]
fn missing_metadata_is_reported() {
    let (outer, _) = bundle_entries();
    let without: Vec<ZipEntry> = outer
        .iter()
        .filter(|e| e.name != "metadata.zip")
        .cloned()
        .collect();
    let r = inspect_bundle(&zip::write(&without, 0)).unwrap();
    assert_eq!(r.defects, [Defect::MissingEntry("metadata.zip".into())]);
    assert!(
        r.defects[0]
            .to_string()
            .contains("bundle lacks `metadata.zip`")
    );

    let (outer, meta) = bundle_entries();
    let meta: Vec<ZipEntry> = meta
        .into_iter()
        .filter(|e| e.name != "vmware.xml")
        .collect();
    let r = inspect_bundle(&repack(outer, meta)).unwrap();
    assert_eq!(
        r.defects,
        [Defect::MissingEntry("metadata.zip/vmware.xml".into())]
    );

    let (outer, _) = bundle_entries();
    let without: Vec<ZipEntry> = outer
        .iter()
        .filter(|e| e.name != "index.xml")
        .cloned()
        .collect();
    assert_eq!(
        inspect_bundle(&zip::write(&without, 0)).unwrap().defects,
        [Defect::MissingEntry("index.xml".into())]
    );

    let (outer, meta) = bundle_entries();
    let meta: Vec<ZipEntry> = meta
        .into_iter()
        .filter(|e| !e.name.starts_with("bulletins/"))
        .collect();
    let r = inspect_bundle(&repack(outer, meta)).unwrap();
    assert!(
        matches!(&r.defects[..], [Defect::MissingEntry(n)] if n.contains("bulletins/")),
        "{:?}",
        r.defects
    );

    let (outer, meta) = bundle_entries();
    let meta: Vec<ZipEntry> = meta
        .into_iter()
        .filter(|e| !e.name.starts_with("vibs/"))
        .collect();
    let r = inspect_bundle(&repack(outer, meta)).unwrap();
    assert!(
        matches!(&r.defects[..], [Defect::VibsXml { .. }]),
        "{:?}",
        r.defects
    );
}

#[test]
fn bundle_vib_mismatches_are_reported() {
    // A different .vib under the same path: size and hash in vmware.xml and vibs/*.xml disagree.
    let (mut outer, meta) = bundle_entries();
    let mut m = ar::read(&outer[3].data).unwrap();
    m[1].data = b"x".to_vec();
    outer[3].data = ar::write(&m).unwrap();
    let r = inspect_bundle(&repack(outer, meta)).unwrap();
    let whats: Vec<(&str, &str)> = r
        .defects
        .iter()
        .filter_map(|d| match d {
            Defect::VibFileMismatch { file, what, .. } => Some((file.as_str(), *what)),
            _ => None,
        })
        .collect();
    assert_eq!(
        whats,
        [
            ("vmware.xml", "packedSize"),
            ("vmware.xml", "sha-256"),
            ("vibs/*.xml", "packed-size"),
            ("vibs/*.xml", "sha-256")
        ]
    );

    // The .vib removed: vmware.xml points at nothing.
    let (outer, meta) = bundle_entries();
    let outer: Vec<ZipEntry> = outer.into_iter().take(3).collect();
    let r = inspect_bundle(&repack(outer, meta)).unwrap();
    assert!(
        matches!(&r.defects[..], [Defect::VibMissing { .. }]),
        "{:?}",
        r.defects
    );

    // A bundled VIB with its own defect is reported through the bundle.
    let (mut outer, meta) = bundle_entries();
    let mut m = ar::read(&outer[3].data).unwrap();
    m[2].data[40] ^= 1;
    outer[3].data = ar::write(&m).unwrap();
    let r = inspect_bundle(&repack(outer, meta)).unwrap();
    assert!(
        r.defects.iter().any(|d| matches!(d, Defect::InVib { .. })),
        "{:?}",
        r.defects
    );
}

#[test]
fn bulletin_and_vibs_xml_disagreements_are_reported() {
    let (outer, mut meta) = bundle_entries();
    for e in meta.iter_mut().filter(|e| e.name.starts_with("bulletins/")) {
        e.data = String::from_utf8(e.data.clone())
            .unwrap()
            .replace("<vibID>", "<vibID>other_")
            .into_bytes();
    }
    let r = inspect_bundle(&repack(outer, meta)).unwrap();
    assert!(
        matches!(&r.defects[..], [Defect::Bulletin { .. }]),
        "{:?}",
        r.defects
    );

    let (outer, mut meta) = bundle_entries();
    for e in meta.iter_mut().filter(|e| e.name == "vmware.xml") {
        let s = String::from_utf8(e.data.clone()).unwrap();
        let cut = s
            .lines()
            .filter(|l| !l.contains("componentVersionSpec"))
            .collect::<Vec<_>>()
            .join("\n");
        e.data = cut.into_bytes();
    }
    let r = inspect_bundle(&repack(outer, meta)).unwrap();
    assert!(
        r.defects
            .iter()
            .any(|d| matches!(d, Defect::Bulletin { problem, .. } if problem.contains("only one"))),
        "{:?}",
        r.defects
    );

    let (outer, mut meta) = bundle_entries();
    for e in meta.iter_mut().filter(|e| e.name.starts_with("vibs/")) {
        e.data = String::from_utf8(e.data.clone())
            .unwrap()
            .replace("<summary>test VIB", "<summary>other")
            .into_bytes();
    }
    let r = inspect_bundle(&repack(outer, meta)).unwrap();
    assert!(
        matches!(&r.defects[..], [Defect::VibsXml { problem, .. }] if problem.contains("differs")),
        "{:?}",
        r.defects
    );

    let (outer, mut meta) = bundle_entries();
    meta[0].data = b"<metadataResponse><bulletin>".to_vec();
    let r = inspect_bundle(&repack(outer, meta)).unwrap();
    assert!(
        matches!(&r.defects[..], [Defect::BadMetadata { .. }]),
        "{:?}",
        r.defects
    );
}

#[test]
fn damaged_zip_is_a_hard_error() {
    let bundle = sample_build().bundle;
    assert!(matches!(
        inspect_bundle(&bundle[..bundle.len() - 30]).unwrap_err(),
        InspectError::Zip(ZipError::NotZip)
    ));
    let mut bad = bundle.clone();
    // Flip a byte inside the first entry's deflate data.
    bad[100] ^= 0xff;
    assert!(matches!(
        inspect_bundle(&bad).unwrap_err(),
        InspectError::Zip(ZipError::Corrupt { .. })
    ));
}

#[test]
fn payload_archive_reader_rejects_unsafe_and_odd_entries() {
    let mut h = [0u8; 512];
    h[..4].copy_from_slice(b"link");
    h[156] = b'2';
    h[257..263].copy_from_slice(b"ustar\0");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut tar = h.to_vec();
    tar.extend_from_slice(&[0; 1024]);
    assert!(matches!(
        tarball::read(&tar),
        Err(tarball::TarError::UnsupportedType { .. })
    ));
}
