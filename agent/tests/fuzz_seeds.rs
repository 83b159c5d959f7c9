//! The fuzz targets' entry points (`vmig_agent::fuzzing`) on stable Rust: every seed of
//! `fuzz/seeds/`, every truncation and single-byte corruption of each seed, and random input
//! from proptest must parse or fail cleanly, never panic (nor break a round trip the entry
//! point checks). `cargo +nightly fuzz run` explores further from the same seeds.

use std::path::Path;

use proptest::prelude::*;
use vmig_agent::fuzzing;
use vmig_testkit::{Mutations, Seed, fuzz_seeds, mutations};

const TARGETS: [&str; 4] = ["config", "layout", "profile_spec", "gpu_selector"];

/// Every seed file, at least 20 of them.
fn seeds() -> Vec<Seed> {
    fuzz_seeds(Path::new(env!("CARGO_MANIFEST_DIR")), &TARGETS, 20)
}

fn run(target: &str, data: &[u8]) {
    match target {
        "config" => fuzzing::config(data),
        "layout" => fuzzing::layout(data),
        "profile_spec" => fuzzing::profile_spec(data),
        "gpu_selector" => fuzzing::gpu_selector(data),
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
        for t in TARGETS {
            run(t, &bytes);
        }
        // Layout files resolve every entry against every catalog model (planner runs): sample
        // fewer cuts so the debug build stays fast.
        let budget = if target == "layout" { 60 } else { 400 };
        let how = Mutations::sampled(bytes.len(), budget, b"\"'{[:,-. \n#9@\xff");
        for input in mutations(&bytes, how) {
            run(target, &input);
        }
        eprintln!("ok: {}", path.display());
    }
}

/// The realistic seeds are accepted by their parser (the `invalid-*` ones are refused), so
/// the fuzzer starts from inputs that reach the deep checks.
#[test]
fn seeds_hold_what_they_claim() {
    for seed in seeds() {
        let (target, name) = (seed.target, seed.name());
        let text = std::str::from_utf8(&seed.bytes).unwrap();
        let ok = match target {
            "config" => {
                vmig_agent::daemon::config::Config::parse(Path::new("/etc/vmig/agent.toml"), text)
                    .is_ok()
            }
            "layout" => vmig_agent::layout::config::LayoutFile::parse(&name, text).is_ok(),
            "profile_spec" => vmig_agent::profile_spec::parse_profiles(text).is_ok(),
            _ => {
                text.parse::<vmig_agent::gpu_selector::GpuSelector>()
                    .is_ok()
                    || vmig_agent::layout::config::DeviceFilter::parse(text).is_some()
                    || name.starts_with("mig-uuid")
            }
        };
        assert_eq!(ok, !name.starts_with("invalid"), "{target}/{name}");
    }
}

/// Regression: a layout count is a `u32`, and resolving an entry used to expand it into that
/// many GPU instances (and plan each one), so `1g.5gb: 4000000000` never finished.
#[test]
fn huge_layout_counts_are_refused_quickly() {
    for key in ["1g.5gb", "1c.7g.40gb"] {
        let text = format!(
            "version: v1\nmig-configs:\n  x:\n    - devices: all\n      device-filter: \"0x20F110DE\"\n      mig-enabled: true\n      mig-devices:\n        \"{key}\": 4000000000\n"
        );
        fuzzing::layout(text.as_bytes());
        let err = vmig_agent::layout::config::LayoutFile::parse("x.yaml", &text).unwrap_err();
        assert!(err.message.contains("does not fit"), "{err}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        for t in TARGETS {
            run(t, &data);
        }
    }

    #[test]
    fn random_selectors_never_panic(s in "[ ]?(GPU-|MIG-|gpu-)?[0-9a-fA-FxX:.+-]{0,20}[ ]?") {
        fuzzing::gpu_selector(s.as_bytes());
        fuzzing::profile_spec(s.as_bytes());
    }

    /// Layout files of the right shape with arbitrary keys and counts.
    #[test]
    fn random_layouts_never_panic(
        filter in prop_oneof![Just(""), Just("      device-filter: \"0x20F110DE\"\n"), Just("      device-filter: [\"0x233010DE\", \"0x20B210DE\"]\n")],
        devices in prop_oneof![Just("all"), Just("[0, 1]"), Just("[\"GPU-1\", \"0000:3b:00.0\"]"), Just("[]")],
        specs in proptest::collection::vec(
            (prop_oneof![Just("1g.5gb"), Just("3g.20gb"), Just("3g.20gb@4"), Just("7g.40gb@0"), Just("1c.3g.20gb"),
                         Just("2c.3g.20gb"), Just("1g.10gb+me"), Just("4g.20gb"), Just("2g.10gb@9"), Just("x")],
             prop_oneof![0u64..9, Just(u64::from(u32::MAX)), Just(u64::from(u32::MAX) + 1)]),
            0..5),
    ) {
        let mut text = format!("version: v1\nmig-configs:\n  c:\n    - devices: {devices}\n{filter}      mig-enabled: true\n      mig-devices:\n");
        for (key, count) in &specs {
            text.push_str(&format!("        \"{key}\": {count}\n"));
        }
        if specs.is_empty() {
            text.push_str("        {}\n");
        }
        fuzzing::layout(text.as_bytes());
    }
}
