//! `vmig-agent export`: the GPUs' current layouts as a layout file that `apply` reproduces
//! exactly. Unlike mig-parted's export (profile counts only), every GI is written with its
//! placement (`"3g.20gb@4": 1`) and, when it is not the single full-GI CI, its CI split
//! (`{count: 1, compute: [...]}`). The text is hand-written YAML so that it can carry comments
//! naming each GPU; the same content is available as JSON (`--json`), which is also valid YAML.
use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::error::LayoutError;
use super::host::GpuView;
use super::plan::emit_json;
use super::read::read_host;
use crate::error::AgentError;
use crate::gpu_selector::GpuSelector;
use crate::nvml::Driver;

/// One `mig-devices` key and value for a GI, plus a warning if the file cannot say it.
fn gi_item(model: &'static mig::GpuModel, g: &mig::GpuInstance) -> (String, Value, Option<String>) {
    let Some(p) = model.gi_profile(g.profile) else {
        return (
            format!("profile-{}@{}", g.profile, g.placement.start),
            json!(1),
            Some(format!("GI {} has a profile vmig does not know", g.id)),
        );
    };
    let key = format!("{}@{}", p.name, g.placement.start);
    let mut cis: Vec<&mig::ComputeInstance> = g.compute_instances.values().collect();
    cis.sort_by_key(|c| (c.placement.start, c.id));
    let default = p.default_ci_profile();
    if cis.is_empty() {
        return (
            key,
            json!(1),
            Some(format!(
                "GI {} ({} at {}) has no compute instance; apply gives it its default one ({})",
                g.id, p.name, g.placement, default.name
            )),
        );
    }
    if cis.len() == 1 && cis[0].profile == default.id {
        return (key, json!(1), None);
    }
    let names: Vec<&str> = cis
        .iter()
        .map(|c| p.ci_profile(c.profile).map_or("?", |c| c.name))
        .collect();
    (key, json!({"count": 1, "compute": names}), None)
}

fn yaml_value(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let count = m.get("count").map(|c| c.to_string()).unwrap_or_default();
            let compute = m
                .get("compute")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|s| format!("\"{}\"", s.as_str().unwrap_or("?")))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            format!("{{count: {count}, compute: [{compute}]}}")
        }
        other => other.to_string(),
    }
}

/// Export `views` as config `label`: the YAML text and the same as a JSON value.
pub fn export(views: &[&GpuView], label: &str, by_uuid: bool) -> (String, Value) {
    let mut yaml = String::from(
        "# Exported by vmig-agent export: `vmig-agent apply -f FILE` reproduces it.\nversion: v1\nmig-configs:\n",
    );
    yaml.push_str(&format!("  {}:\n", yaml_key(label)));
    let mut entries = Vec::new();
    for v in views {
        let Some(mode) = v.mig_mode else {
            yaml.push_str(&format!(
                "    # GPU {} ({}) does not support MIG; not exported\n",
                v.index, v.name
            ));
            continue;
        };
        yaml.push_str(&format!(
            "    # GPU {}: {}, {}{}\n",
            v.index,
            v.name,
            v.uuid,
            v.pci_bus_id
                .as_deref()
                .map(|b| format!(", {b}"))
                .unwrap_or_default()
        ));
        if mode.current != mode.pending {
            yaml.push_str(&format!(
                "    # MIG mode change pending: {} after the next reset\n",
                if mode.pending { "enabled" } else { "disabled" }
            ));
        }
        let device = if by_uuid {
            json!(v.uuid)
        } else {
            json!(v.index)
        };
        let filter = v
            .pci_device
            .or_else(|| v.model.map(mig::GpuModel::pci_device_id_word))
            .map(|d| format!("0x{d:08X}"));
        yaml.push_str(&format!("    - devices: [{device}]\n"));
        if let Some(f) = &filter {
            yaml.push_str(&format!("      device-filter: [\"{f}\"]\n"));
        }
        yaml.push_str(&format!("      mig-enabled: {}\n", mode.current));
        let mut entry = serde_json::Map::new();
        entry.insert("devices".into(), json!([device]));
        if let Some(f) = &filter {
            entry.insert("device-filter".into(), json!([f]));
        }
        entry.insert("mig-enabled".into(), json!(mode.current));
        if mode.current {
            let mut devices = BTreeMap::new();
            let mut lines = Vec::new();
            match (&v.state, v.model) {
                (Some(state), Some(model)) => {
                    for g in state.gpu_instances.values() {
                        let (k, val, warn) = gi_item(model, g);
                        if let Some(w) = warn {
                            lines.push(format!("        # {w}"));
                        }
                        lines.push(format!("        \"{k}\": {}", yaml_value(&val)));
                        devices.insert(k, val);
                    }
                }
                _ => lines.push(format!(
                    "        # vmig does not know the MIG geometry of {}; its instances are not exported",
                    v.name
                )),
            }
            if devices.is_empty() {
                yaml.push_str("      mig-devices: {}\n");
                for l in lines {
                    yaml.push_str(&l);
                    yaml.push('\n');
                }
            } else {
                yaml.push_str("      mig-devices:\n");
                for l in lines {
                    yaml.push_str(&l);
                    yaml.push('\n');
                }
            }
            entry.insert("mig-devices".into(), json!(devices));
        }
        entries.push(Value::Object(entry));
    }
    let value = json!({"version": "v1", "mig-configs": {label: entries}});
    (yaml, value)
}

fn yaml_key(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// What `vmig-agent export` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// Only this GPU.
    pub gpu: Option<GpuSelector>,
    /// Name of the exported config.
    pub label: String,
    /// Name GPUs by UUID instead of index (vmig extension; mig-parted cannot read it).
    pub by_uuid: bool,
}

/// `vmig-agent export`: the current layout as a config file (or JSON), appended to `out`.
pub fn export_current(
    driver: &Driver,
    a: &ExportOptions,
    json: bool,
    out: &mut String,
) -> Result<(), LayoutError> {
    let (_, views) = read_host(driver)?;
    let views: Vec<&GpuView> = views
        .iter()
        .filter(|v| a.gpu.as_ref().is_none_or(|s| v.is_named_by(s)))
        .collect();
    if views.is_empty()
        && let Some(s) = &a.gpu
    {
        return Err(AgentError::NoSuchGpu {
            selector: s.to_string(),
            available: Vec::new(),
        }
        .into());
    }
    let (yaml, value) = export(&views, &a.label, a.by_uuid);
    if json {
        emit_json(out, &value);
    } else {
        out.push_str(&yaml);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::config::{LayoutFile, Target};
    use crate::nvml::MigMode;

    #[test]
    fn export_round_trips_placements_and_splits() {
        let m = mig::GpuModel::by_key("a100-pcie-40gb").unwrap();
        let mut s = mig::MigState::new(m);
        let three = m.gi_profile_by_name("3g.20gb").unwrap();
        let g = s
            .create_gi(three.id, Some(mig::Placement::new(0, 4)))
            .unwrap();
        s.create_ci(g, three.ci_profile_by_name("1c.3g.20gb").unwrap().id, None)
            .unwrap();
        s.create_ci(g, three.ci_profile_by_name("2c.3g.20gb").unwrap().id, None)
            .unwrap();
        let one = m.gi_profile_by_name("1g.5gb").unwrap();
        let g = s
            .create_gi(one.id, Some(mig::Placement::new(6, 1)))
            .unwrap();
        s.create_ci(g, one.default_ci_profile().id, None).unwrap();
        let v = GpuView {
            index: 0,
            name: m.nvml_name.into(),
            uuid: "GPU-x".into(),
            pci_bus_id: None,
            pci_device: Some(m.pci_device_id_word()),
            pci_subsystem: None,
            model: Some(m),
            mig_mode: Some(MigMode {
                current: true,
                pending: true,
            }),
            state: Some(s.clone()),
            users: Default::default(),
        };
        let (yaml, value) = export(&[&v], "current", false);
        assert!(
            yaml.contains("\"3g.20gb@0\": {count: 1, compute: [\"1c.3g.20gb\", \"2c.3g.20gb\"]}"),
            "{yaml}"
        );
        assert!(yaml.contains("\"1g.5gb@6\": 1"), "{yaml}");
        for text in [yaml, serde_json::to_string(&value).unwrap()] {
            let f = LayoutFile::parse("export", &text).unwrap();
            let c = f.config(None).unwrap();
            let Target::Enabled(d) = f.target_for(&c.name, &c.entries[0], m).unwrap() else {
                panic!()
            };
            assert!(d.is_satisfied_by(&s), "{text}");
            assert!(mig::plan(&s, &d).unwrap().is_noop());
        }
    }
}
