//! Entry points for the cargo-fuzz targets in `agent/fuzz/` and the stable seed-corpus test
//! (`tests/fuzz_seeds.rs`). Each runs a parser of outside input the way the agent does —
//! the daemon config, layout files, and the `-i` / PROFILES / `--placement` arguments — and
//! must never panic, hang or allocate without bound, whatever the bytes. Where a parser
//! promises a canonical form, the entry point checks that the form parses back to itself.
//! No I/O: texts are parsed as if read from a fixed path.
#![doc(hidden)]

use std::path::Path;
use std::str::FromStr;

use crate::daemon::config::{Config, parse_thumbprint, parse_uuid};
use crate::gpu_selector::GpuSelector;
use crate::layout::config::{DeviceFilter, LayoutFile};
use crate::nvml::PciBusId;
use crate::profile_spec::{parse_profiles, parse_starts};

/// Where a fuzzed daemon config pretends to live (relative paths inside resolve against it).
const CONFIG_PATH: &str = "/etc/vmig/agent.toml";

/// Parses `data` as the daemon's TOML config (`vmig-agent run --config`), and its thumbprint
/// and UUID fields on their own; canonical thumbprints and UUIDs must parse back unchanged.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(Path::new(CONFIG_PATH), text) {
        Ok(c) => {
            let _ = format!("{c:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if let Ok(t) = parse_thumbprint(text) {
        assert_eq!(parse_thumbprint(&t).as_ref(), Ok(&t), "thumbprint {t}");
    }
    if let Ok(u) = parse_uuid(text) {
        assert_eq!(parse_uuid(&u).as_ref(), Ok(&u), "uuid {u}");
    }
}

/// Parses `data` as a layout file (`vmig-agent plan|apply|assert -f`, `[agent] layout_file`)
/// and resolves every entry of every config for every catalog model, as `apply` does for
/// the GPUs an entry selects.
pub fn layout(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = match LayoutFile::parse("fuzz.yaml", text) {
        Ok(f) => f,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let _ = file.config(None).map_err(|e| e.to_string());
    for c in &file.configs {
        assert!(file.config(Some(&c.name)).is_ok(), "config {}", c.name);
        for e in &c.entries {
            let _ = file.entry_line(&c.name, e.index);
            for f in &e.device_filter {
                let _ = (f.to_string(), f.matches(f.device, f.subsystem));
            }
            for model in mig::catalog() {
                if let Err(err) = file.target_for(&c.name, e, model) {
                    let _ = err.to_string();
                }
            }
        }
    }
}

/// Parses `data` as a PROFILES list (`cgi`/`cci`) and as a `--placement` list of starts.
pub fn profile_spec(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(specs) = parse_profiles(text) {
        assert!(!specs.is_empty(), "{text:?} parsed to no profiles");
        for s in &specs {
            let _ = (s.to_string(), s.matches(9, "MIG 3g.20gb"));
        }
    }
    if let Ok(starts) = parse_starts(text) {
        let shown = starts
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(parse_starts(&shown), Ok(starts), "starts {shown}");
    }
}

/// Parses `data` as a `-i` GPU selector, a PCI bus id and a layout `device-filter` item;
/// what each prints must parse back to the same value.
pub fn gpu_selector(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(sel) = GpuSelector::from_str(text) {
        let shown = sel.to_string();
        assert_eq!(
            GpuSelector::from_str(&shown).as_ref(),
            Ok(&sel),
            "selector {text:?} printed as {shown:?}"
        );
    }
    if let Some(id) = PciBusId::parse(text) {
        let shown = id.to_string();
        assert_eq!(PciBusId::parse(&shown), Some(id), "PCI bus id {shown}");
    }
    if let Some(f) = DeviceFilter::parse(text) {
        let shown = f.to_string();
        assert_eq!(
            DeviceFilter::parse(&shown),
            Some(f),
            "device filter {shown}"
        );
        let _ = f.catalog_models().count();
    }
}
