//! Fuzzes SOAP fault decoding and rendering.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vcenter_client::fuzzing::fault(data);
});
