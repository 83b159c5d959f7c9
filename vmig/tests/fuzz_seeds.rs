//! The fuzz targets' entry points (`vmig::fuzzing`) on stable Rust: every seed of
//! `fuzz/seeds/` (hostile documents and reservations from issue 16 among them), every
//! truncation and sampled corruption of each, and random bytes must analyse and render in
//! every format without a panic, a hang or the other host being affected.
//! `cargo +nightly fuzz run report fuzz/seeds/report` (from vmig/) explores further.

use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use vmig::fuzzing;
use vmig_testkit::{Mutations, Seed, fuzz_seeds, mutations};

fn seeds() -> Vec<Seed> {
    fuzz_seeds(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &["report", "reservation"],
        16,
    )
}

fn run(target: &str, data: &[u8]) {
    match target {
        "report" => fuzzing::report(data),
        "reservation" => fuzzing::reservation(data),
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
        let started = Instant::now();
        run(target, &bytes);
        // The hang of issue 16 took over a minute on one document; all renderers of one
        // input take milliseconds.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{} took {:?}",
            path.display(),
            started.elapsed()
        );
        let how = Mutations::sampled(bytes.len(), 60, b"\"{}[]:,-_ 90\\\xff");
        for input in mutations(&bytes, how) {
            run(target, &input);
        }
        eprintln!("ok: {}", path.display());
    }
}

/// The hostile seeds make host-1 invalid with a reason; the good ones keep it ok.
#[test]
fn hostile_documents_flag_their_host_only() {
    use vmig::analysis::{AgentStatus, analyse};
    for seed in seeds().into_iter().filter(|s| s.target == "report") {
        let name = seed.name();
        let text = String::from_utf8(seed.bytes.clone()).unwrap();
        let inv = vmig::fuzzing::inventory_for_test(&text);
        let a = analyse(vec![inv], vmig::fuzzing::judged_at());
        let h1 = a.hosts.iter().find(|h| h.host.name == "esx01").unwrap();
        // Injected text is shown escaped, not refused.
        let good = name.starts_with("a100-good") || name.contains("injection");
        if good {
            assert_eq!(h1.status, AgentStatus::Ok, "{name}: {:?}", h1.status_detail);
        } else {
            assert_eq!(h1.status, AgentStatus::Invalid, "{name}");
            let d = h1.status_detail.as_deref().unwrap_or_default();
            assert!(d.starts_with("invalid report: "), "{name}: {d}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        fuzzing::report(&data);
        fuzzing::reservation(&data);
    }
}
