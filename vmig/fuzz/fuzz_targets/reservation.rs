//! Fuzzes a VM's `vmig.reservation` through analysis and every renderer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vmig::fuzzing::reservation(data);
});
