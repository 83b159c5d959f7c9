//! Fuzzes the `-i` selector, PCI bus id and `device-filter` parsers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vmig_agent::fuzzing::gpu_selector(data);
});
