//! Fuzzes the streaming response decoder and the typed host/VM/task readers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vcenter_client::fuzzing::response(data);
});
