//! Parsing, refusals with their lines, resolution and CI packing of layout files.
use super::resolve::pack_cis;
use super::*;
use crate::{GpuModel, Placement};

fn a100() -> &'static GpuModel {
    GpuModel::by_key("a100-pcie-40gb").unwrap()
}

fn parse(text: &str) -> Result<LayoutFile, ConfigError> {
    LayoutFile::parse("t.yaml", text)
}

/// Parses `text`, resolves the first entry of its first config (`mixed`) for an A100 and
/// checks the refusal: at `line`, its message holding `needle`. Returns the error for
/// further checks.
fn refused_at(text: &str, line: usize, needle: &str) -> ConfigError {
    let f = parse(text).unwrap();
    let e = f
        .target_for("mixed", &f.configs[0].entries[0], a100())
        .unwrap_err();
    assert_eq!(e.line, Some(line), "{e}");
    assert!(e.message.contains(needle), "{e}");
    e
}

const MIXED: &str = r#"version: v1
mig-configs:
  mixed:
    - devices: all
      mig-enabled: true
      mig-devices:
        "3g.20gb": 1
        "2g.10gb": 1
        "1g.5gb": 2
"#;

/// Regression (found by the `layout` fuzz target): counts are `u32` and were expanded
/// into one desired GI (or CI) each before planning, so a huge count never finished.
#[test]
fn counts_beyond_the_model_are_refused_before_expansion() {
    for (key, count, most) in [
        ("1g.5gb", "4000000000", 7),
        ("2g.10gb", "4", 3),
        ("1c.7g.40gb", "4294967295", 7),
    ] {
        let text = MIXED
            .replace("\"1g.5gb\": 2", &format!("\"{key}\": {count}"))
            .replace("\"3g.20gb\": 1\n        \"2g.10gb\": 1\n", "");
        let e = refused_at(&text, 6, "does not fit");
        assert!(e.message.contains(&format!("at most {most} fit")), "{e}");
    }
}

#[test]
fn reads_mig_parted_v1() {
    let f = parse(MIXED).unwrap();
    let c = f.config(None).unwrap();
    assert_eq!(c.name, "mixed");
    let e = &c.entries[0];
    assert_eq!(e.devices, Devices::All);
    assert!(e.mig_enabled);
    assert_eq!(e.mig_devices.len(), 3);
    let Target::Enabled(d) = f.target_for("mixed", e, a100()).unwrap() else {
        panic!("enabled")
    };
    assert_eq!(d.gpu_instances.len(), 4);
}

#[test]
fn duplicate_keys_are_refused_at_the_key() {
    let text = MIXED.replace("\"1g.5gb\": 2", "\"1g.5gb\": 2\n        \"2g.10gb\": 1");
    let e = parse(&text).unwrap_err();
    assert_eq!(e.line, Some(10), "{e}");
    assert!(e.message.contains("duplicate key `2g.10gb`"), "{e}");
    let e =
        parse("version: v1\nversion: v1\nmig-configs: {a: [{devices: all, mig-enabled: false}]}\n")
            .unwrap_err();
    assert_eq!(e.line, Some(2), "{e}");
}

#[test]
fn unknown_profile_names_the_line_and_lists_valid_ones() {
    let text = MIXED.replace("\"2g.10gb\"", "\"2g.20gb\"");
    let e = refused_at(&text, 8, "unknown GPU instance profile `2g.20gb`");
    assert!(e.message.contains("3g.20gb"), "{e}");
    assert!(e.to_string().starts_with("t.yaml:8:9: "), "{e}");
}

#[test]
fn impossible_placement_and_overfull_layouts_are_refused() {
    let text = MIXED.replace("\"3g.20gb\": 1", "\"3g.20gb@3\": 1");
    refused_at(&text, 7, "legal starts for 3g.20gb: 0, 4");

    let text = MIXED.replace("\"1g.5gb\": 2", "\"1g.5gb\": 3");
    refused_at(&text, 6, "does not fit");
}

#[test]
fn extensions_placements_and_ci_splits() {
    let f = parse(
        r#"version: v1
mig-configs:
  x:
    - devices: [0, "GPU-1234", "0000:3b:00.0"]
      device-filter: "0x20F110DE"
      mig-enabled: true
      mig-devices:
        "3g.20gb@4": {count: 1, compute: ["1c.3g.20gb", "2c.3g.20gb"]}
        "1c.2g.10gb": 2
"#,
    )
    .unwrap();
    let e = &f.configs[0].entries[0];
    assert!(matches!(&e.devices, Devices::List(l) if l.len() == 3));
    assert_eq!(e.device_filter[0].device, 0x20F1_10DE);
    let Target::Enabled(d) = f.target_for("x", e, a100()).unwrap() else {
        panic!()
    };
    assert_eq!(d.gpu_instances.len(), 2);
    assert_eq!(d.gpu_instances[0].placement, Some(Placement::new(4, 4)));
    assert_eq!(d.gpu_instances[0].compute.len(), 2);
    // Two 1c CIs of a 2g GI pack into one GI.
    assert_eq!(d.gpu_instances[1].compute.len(), 2);
}

#[test]
fn filtered_entries_are_checked_against_their_models_at_load() {
    let e = parse(
        r#"version: v1
mig-configs:
  x:
    - devices: all
      device-filter: ["0x233010DE"]
      mig-enabled: true
      mig-devices:
        "1g.5gb": 7
"#,
    )
    .unwrap_err();
    assert_eq!(e.line, Some(8), "{e}");
    assert!(e.message.contains("NVIDIA H100 80GB HBM3"), "{e}");
}

#[test]
fn structural_errors_have_lines() {
    for (text, line, needle) in [
        ("version: v2\nmig-configs: {}\n", Some(1), "unknown version"),
        (
            "version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: true\n",
            Some(4),
            "missing `mig-devices`",
        ),
        (
            "version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: false\n      bogus: 1\n",
            Some(6),
            "unknown field `bogus`",
        ),
        (
            "version: v1\nmig-configs:\n  a:\n    - devices: some\n      mig-enabled: false\n",
            Some(4),
            "devices",
        ),
        (
            "version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: true\n      mig-devices: {\"1g.5gb\": -1}\n",
            Some(6),
            "negative",
        ),
        (
            "version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: true\n      mig-devices: {\"3g.20gb@4\": 2}\n",
            Some(6),
            "one GI",
        ),
        (
            "version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: false\n      mig-devices: {\"1g.5gb\": 1}\n",
            Some(6),
            "mig-enabled: false",
        ),
        (
            "version: v1\nmig-configs:\n  a:\n    - devices: all\n      device-filter: nope\n      mig-enabled: false\n",
            Some(5),
            "PCI device id",
        ),
    ] {
        let e = parse(text).unwrap_err();
        assert_eq!(e.line, line, "{text}: {e}");
        assert!(e.to_string().contains(needle), "{text}: {e}");
    }
}

#[test]
fn device_filters_parse_and_match() {
    let f = DeviceFilter::parse("0x20b010de").unwrap();
    assert!(f.matches(0x20B0_10DE, None));
    assert!(!f.matches(0x20F1_10DE, None));
    let f = DeviceFilter::parse("0x233010DE:0x16C110DE").unwrap();
    assert!(f.matches(0x2330_10DE, Some(0x16C1_10DE)));
    assert!(!f.matches(0x2330_10DE, Some(0x2330_10DE)));
    assert_eq!(f.to_string(), "0x233010DE:0x16C110DE");
    assert!(DeviceFilter::parse("0x1234567890").is_none());
}

#[test]
fn ci_packing_follows_mig_parted() {
    let gi = a100().gi_profile_by_name("3g.20gb").unwrap();
    let one = gi.ci_profile_by_name("1c.3g.20gb").unwrap();
    let two = gi.ci_profile_by_name("2c.3g.20gb").unwrap();
    assert_eq!(pack_cis(gi, vec![one, two]).len(), 1);
    assert_eq!(pack_cis(gi, vec![one; 4]).len(), 2);
}
