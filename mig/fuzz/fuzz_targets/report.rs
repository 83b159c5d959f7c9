//! Fuzzes the `vmig.mig/v1` host report reader and what `vmig` does with a report.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mig::fuzzing::report(data);
});
