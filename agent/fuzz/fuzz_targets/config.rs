//! Fuzzes the daemon's TOML config parser (`vmig-agent run --config`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vmig_agent::fuzzing::config(data);
});
