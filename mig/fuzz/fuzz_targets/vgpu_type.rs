//! Fuzzes the vGPU type name parser and its print/parse round trip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mig::fuzzing::vgpu_type(data);
});
