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
