//! The ar reader and the payload archive reader on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vib_packaging::ar::read(data);
    let _ = vib_packaging::tarball::read(data);
});
