//! The fuzz targets' entry points (`vcenter_client::fuzzing`) on stable Rust:
//! every seed of `fuzz/seeds/`, every truncation and single-byte corruption
//! of each seed, and random bytes from proptest must decode or fail cleanly,
//! never panic. `cargo fuzz` (nightly) explores further from the same seeds.

use std::path::Path;

use proptest::prelude::*;
use vcenter_client::fuzzing;
use vmig_testkit::{Mutations, Seed, fuzz_seeds, mutations};

/// Every seed file, at least 10 of them.
fn seeds() -> Vec<Seed> {
    fuzz_seeds(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &["response", "fault"],
        10,
    )
}

#[test]
fn seeds_truncations_and_corruptions_never_panic() {
    for Seed { path, bytes, .. } in seeds() {
        let run = |b: &[u8]| {
            fuzzing::response(b);
            fuzzing::fault(b);
        };
        run(&bytes);
        let how = Mutations {
            cut_step: 7,
            corrupt_step: 11,
            corruptions: b"<>&\"/\xff:",
        };
        for input in mutations(&bytes, how) {
            run(&input);
        }
        eprintln!("ok: {}", path.display());
    }
}

#[test]
fn seeds_decode_to_what_they_hold() {
    for Seed { path, bytes, .. } in seeds() {
        let err = vcenter_client::soap::decode::parse_whole(&bytes, "Seed").err();
        let is_fault_seed = path.parent().is_some_and(|p| p.ends_with("fault"));
        match err {
            Some(e) if is_fault_seed => assert!(e.fault().is_some(), "{}: {e}", path.display()),
            None if !is_fault_seed => {}
            other => panic!("{}: unexpected {other:?}", path.display()),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        fuzzing::response(&data);
        fuzzing::fault(&data);
    }

    #[test]
    fn random_xml_fragments_inside_an_envelope_never_panic(
        parts in proptest::collection::vec(prop_oneof![
            Just("<returnval>"), Just("</returnval>"), Just("<objects>"), Just("</objects>"),
            Just("<obj type=\"HostSystem\">"), Just("</obj>"), Just("<propSet>"), Just("</propSet>"),
            Just("<name>hardware.pciDevice</name>"), Just("<val xsi:type=\"ArrayOfHostPciDevice\">"), Just("</val>"),
            Just("<vendorId>-1</vendorId>"), Just("<bus>999</bus>"), Just("<token>t</token>"), Just("&amp;"), Just("&#0;"),
            Just("<soapenv:Fault>"), Just("</soapenv:Fault>"), Just("<detail>"), Just("</detail>"), Just("text"),
            Just("<fault xsi:type=\"NotAuthenticated\">"), Just("</fault>"), Just("<missingSet>"), Just("</missingSet>"),
        ], 0..40)
    ) {
        let doc = format!(
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25">{}</RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#,
            parts.concat()
        );
        fuzzing::response(doc.as_bytes());
        fuzzing::fault(doc.as_bytes());
    }
}
