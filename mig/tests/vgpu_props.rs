//! Properties of the vGPU type-name parser: it never panics on any input, and every name
//! built from the grammar parses back to the same parts under both vendor prefixes.
use mig::VgpuType;
use proptest::prelude::*;

proptest! {
    #[test]
    fn parse_never_panics(s in "\\PC{0,40}") {
        let _ = VgpuType::parse(&s);
    }

    #[test]
    fn grammar_names_round_trip(
        prefix in prop_oneof![Just("grid"), Just("nvidia")],
        board in "[a-z][a-z0-9]{0,6}",
        slices in proptest::option::of(1u32..9),
        fb in 1u32..200,
        attr in prop_oneof![Just(""), Just("me"), Just("nome"), Just("meall"), Just("gfx")],
    ) {
        let suffix = if slices.is_some() { format!("c{attr}") } else { "c".to_string() };
        let name = match slices {
            Some(s) => format!("{prefix}_{board}-{s}-{fb}{suffix}"),
            None => format!("{prefix}_{board}-{fb}{suffix}"),
        };
        let t = VgpuType::parse(&name).unwrap();
        prop_assert_eq!(&t.prefix, prefix);
        prop_assert_eq!(&t.board, &board);
        prop_assert_eq!(t.mig_slices, slices);
        prop_assert_eq!(t.fb_gb, fb);
        prop_assert_eq!(&t.suffix, &suffix);
        prop_assert_eq!(t.to_string(), name.clone());
        let shown = name.replacen('_', " ", 1).to_ascii_uppercase();
        prop_assert_eq!(VgpuType::parse(&shown), Some(t));
    }
}
