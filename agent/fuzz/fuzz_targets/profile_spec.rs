//! Fuzzes the PROFILES and `--placement` argument parsers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vmig_agent::fuzzing::profile_spec(data);
});
