//! descriptor.xml (and the XML tree under it) on arbitrary bytes; what parses must re-parse.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vib_packaging::descriptor::Descriptor;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = Descriptor::parse(data) {
        let again = Descriptor::parse(d.to_xml().as_bytes()).expect("written descriptor re-parses");
        assert_eq!(again.files, d.files);
    }
});
