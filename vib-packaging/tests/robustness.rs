//! The readers take untrusted bytes: on random and mutated input they return errors, never
//! panic. These run the same entry points as the cargo-fuzz targets in `fuzz/`, on stable.

mod common;

use proptest::prelude::*;
use vib_packaging::descriptor::Descriptor;
use vib_packaging::{ar, inspect, tarball, xml, zip};

fn seeds() -> Vec<Vec<u8>> {
    let b = common::sample_build();
    let mut v = vec![b.vib.clone(), b.bundle.clone()];
    v.push(ar::read(&b.vib).unwrap()[0].data.clone());
    v.extend(common::fixture(common::FIXTURE_VIB));
    v
}

fn all_readers(data: &[u8]) {
    let _ = inspect(data);
    let _ = ar::read(data);
    let _ = zip::read(data);
    let _ = Descriptor::parse(data);
    let _ = xml::parse(data);
    let _ = tarball::read(data);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        all_readers(&data);
        let mut with_magic = b"!<arch>\n".to_vec();
        with_magic.extend_from_slice(&data);
        all_readers(&with_magic);
    }

    #[test]
    fn mutated_packages_never_panic(
        seed in 0usize..4,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let seeds = seeds();
        let mut data = seeds[seed % seeds.len()].clone();
        for (at, byte) in edits {
            let i = at.index(data.len());
            data[i] = byte;
        }
        all_readers(&data);
        let keep = cut.index(data.len() + 1);
        all_readers(&data[..keep]);
    }
}

fn text() -> impl Strategy<Value = String> {
    "[ -~]{0,12}"
}

fn constraints() -> impl Strategy<Value = Vec<vib_packaging::descriptor::Constraint>> {
    proptest::collection::vec(
        (
            text(),
            proptest::option::of("(<<|<=|=|>=|>>)"),
            proptest::option::of(text()),
        )
            .prop_map(
                |(name, relation, version)| vib_packaging::descriptor::Constraint {
                    name,
                    relation,
                    version,
                },
            ),
        0..3,
    )
}

proptest! {
    /// Whatever the descriptor holds (markup characters included), writing then parsing gives
    /// it back: the writer escapes exactly what the parser unescapes.
    #[test]
    fn descriptor_round_trips(
        strings in proptest::collection::vec(text(), 8),
        files in proptest::collection::vec(text(), 0..4),
        flags in proptest::collection::vec(any::<bool>(), 5),
        depends in constraints(),
        provides in constraints(),
        size in any::<u64>(),
        with_depot in any::<bool>(),
    ) {
        use vib_packaging::descriptor::*;
        let d = Descriptor {
            vib_type: strings[0].clone(),
            name: strings[1].clone(),
            version: strings[2].clone(),
            vendor: strings[3].clone(),
            summary: strings[4].clone(),
            description: strings[5].clone(),
            release_date: strings[6].clone(),
            urls: vec![Url { key: strings[7].clone(), url: strings[0].clone() }],
            relationships: Relationships { depends, provides, ..Default::default() },
            software_tags: files.clone(),
            maintenance_mode: strings[1].clone(),
            software_platforms: vec![],
            files,
            acceptance_level: AcceptanceLevel::Partner,
            live_install_allowed: flags[0],
            live_remove_allowed: flags[1],
            cimom_restart: flags[2],
            stateless_ready: flags[3],
            overlay: flags[4],
            payloads: vec![Payload {
                name: "p".into(),
                payload_type: strings[2].clone(),
                size,
                checksums: vec![Checksum { checksum_type: "sha-1".into(), verify_process: Some(strings[3].clone()), value: "ab".into() }],
            }],
            depot: with_depot.then(|| DepotInfo { relative_path: strings[4].clone(), packed_size: size, sha256: "cd".into() }),
            unknown_elements: vec![],
        };
        prop_assert_eq!(Descriptor::parse(d.to_xml().as_bytes()).unwrap(), d);
    }
}
