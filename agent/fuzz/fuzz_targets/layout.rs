//! Fuzzes layout files (parse, then resolve every entry for every catalog model).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vmig_agent::fuzzing::layout(data);
});
