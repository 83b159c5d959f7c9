//! The whole validator (VIB or bundle) on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vib_packaging::inspect(data);
});
