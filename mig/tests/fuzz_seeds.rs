//! The fuzz targets' entry points (`mig::fuzzing`) on stable Rust: every seed of
//! `fuzz/seeds/`, every truncation and single-byte corruption of each seed, and random input
//! from proptest must parse or fail cleanly, never panic (nor break a round trip the entry
//! point checks). `cargo +nightly fuzz run` explores further from the same seeds.

use std::path::Path;

use mig::fuzzing;
use mig::report::HostReport;
use proptest::prelude::*;
use vmig_testkit::{Mutations, Seed, fuzz_seeds, mutations};

/// Every seed file, at least 12 of them.
fn seeds() -> Vec<Seed> {
    fuzz_seeds(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &["report", "vgpu_type"],
        12,
    )
}

fn run(target: &str, data: &[u8]) {
    match target {
        "report" => fuzzing::report(data),
        "vgpu_type" => fuzzing::vgpu_type(data),
        other => panic!("no fuzz target {other}"),
    }
}

#[test]
fn seeds_truncations_and_corruptions_never_panic() {
    for Seed {
        target,
        path,
        bytes,
    } in seeds()
    {
        // Both entry points see every seed: a fuzzer's mutations cross over too.
        fuzzing::report(&bytes);
        fuzzing::vgpu_type(&bytes);
        let how = Mutations::sampled(bytes.len(), 400, b"\"{}[]:,-_ 90\\\xff");
        for input in mutations(&bytes, how) {
            run(target, &input);
        }
        eprintln!("ok: {}", path.display());
    }
}

/// The seeds are what they claim to be: every report but the one marked unsupported reads,
/// and the realistic ones hold layouts the model accepts; every vGPU seed parses.
#[test]
fn seeds_hold_what_they_claim() {
    for seed in seeds() {
        let name = seed.name();
        let text = std::str::from_utf8(&seed.bytes).unwrap();
        match seed.target {
            "report" => {
                let parsed = HostReport::from_json(text);
                if name.starts_with("unsupported") {
                    assert!(parsed.is_err(), "{name}");
                    continue;
                }
                let report = parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
                for gpu in &report.gpus {
                    let Some(model) = gpu.model.as_deref().and_then(mig::GpuModel::by_key) else {
                        continue;
                    };
                    for gi in &gpu.gpu_instances {
                        let p = model.gi_profile(gi.profile_id).unwrap_or_else(|| {
                            panic!("{name}: GI {} profile {}", gi.gi_id, gi.profile_id)
                        });
                        assert_eq!(p.name, gi.profile, "{name}: GI {}", gi.gi_id);
                        assert!(
                            p.placements.contains(&gi.placement),
                            "{name}: GI {} at {}",
                            gi.gi_id,
                            gi.placement
                        );
                    }
                }
            }
            _ => assert!(mig::VgpuType::parse(text).is_some(), "{name}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        fuzzing::report(&data);
        fuzzing::vgpu_type(&data);
    }

    #[test]
    fn random_vgpu_like_names_never_panic(name in "(grid|nvidia|GRID|NVIDIA)?[_ ]?[a-z0-9]{0,6}(-[0-9]{0,3}){0,3}[0-9]{0,4}[abcqz]?(me|nome|meall|gfx|x)?") {
        fuzzing::vgpu_type(name.as_bytes());
    }

    /// Documents of the right shape with arbitrary numbers: ids, placements (up to u32::MAX)
    /// and profile names a real report never holds.
    #[test]
    fn random_reports_never_panic(
        model in prop_oneof![Just("a100-pcie-40gb"), Just("h100-sxm5-80gb"), Just("a30-24gb"), Just("nope")],
        gis in proptest::collection::vec(
            (any::<u32>(), 0u32..40, prop_oneof![0u32..10, Just(u32::MAX - 1), Just(u32::MAX)],
             prop_oneof![0u32..10, Just(u32::MAX)], any::<bool>(),
             prop_oneof![Just("3g.20gb"), Just("1g.5gb"), Just("7g.40gb"), Just("x")]),
            0..8),
        fragmentation in prop_oneof![Just("0.0"), Just("1e308"), Just("-0.5"), Just("1e-320")],
    ) {
        let gis: Vec<String> = gis.iter().map(|(id, pid, start, size, in_use, prof)| format!(
            r#"{{"gi_id":{id},"profile_id":{pid},"profile":"{prof}","placement":{{"start":{start},"size":{size}}},"compute_instances":[{{"ci_id":0,"profile":"{prof}","uuid":"MIG-x"}}],"in_use":{in_use},"vgpu_type":"grid_a100-{size}-{start}c"}}"#
        )).collect();
        let doc = format!(
            r#"{{"schema":"vmig.mig/v1","agent_version":"0","host_uuid":"u","generation":1,"observed_at":"2026-11-26T14:02:11Z","heartbeat_interval_s":1,"gpus":[{{"index":0,"uuid":"GPU-x","name":"n","pci_bus_id":"p","model":"{model}","gpu_instances":[{}],"fragmentation":{fragmentation}}}]}}"#,
            gis.join(",")
        );
        fuzzing::report(doc.as_bytes());
    }
}
