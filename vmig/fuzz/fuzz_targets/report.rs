//! Fuzzes a host's `vmig.mig` document through analysis and every renderer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vmig::fuzzing::report(data);
});
