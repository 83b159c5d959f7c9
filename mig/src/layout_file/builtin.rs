//! The named layouts shipped with vmig (`mig/layouts/vmig-layouts.yaml`), compiled into the
//! binary so that `vmig-agent apply -c all-balanced` works on a host with no file deployed:
//! an ESXi host has no package manager to install a config file, and the admin should get the
//! same layouts on every host of the fleet. `-f FILE` replaces the built-in file entirely.
use super::{ConfigError, LayoutFile};

/// Text of the built-in layout file.
pub const DEFAULT_LAYOUTS_YAML: &str = include_str!("../../layouts/vmig-layouts.yaml");

/// Name the built-in file has in messages.
pub const DEFAULT_LAYOUTS_ORIGIN: &str = "<built-in vmig-layouts.yaml>";

/// The built-in layout file, parsed.
pub fn default_layouts() -> Result<LayoutFile, ConfigError> {
    LayoutFile::parse(DEFAULT_LAYOUTS_ORIGIN, DEFAULT_LAYOUTS_YAML)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MigState;
    use crate::layout_file::Target;

    /// Every built-in layout selects exactly one entry for every catalog GPU, and that entry
    /// resolves and fits; `seed-mixed` is the seed's 3g+2g+1g+1g on A100-40GB.
    #[test]
    fn every_layout_is_sensible_on_every_catalog_gpu() {
        let file = default_layouts().unwrap();
        let names: Vec<&str> = file.configs.iter().map(|c| c.name.as_str()).collect();
        for n in [
            "all-disabled",
            "all-enabled",
            "all-1g",
            "all-balanced",
            "seed-mixed",
        ] {
            assert!(names.contains(&n), "missing {n}");
        }
        for c in &file.configs {
            for model in crate::catalog() {
                let matching: Vec<_> = c
                    .entries
                    .iter()
                    .filter(|e| {
                        e.device_filter.is_empty()
                            || e.device_filter
                                .iter()
                                .any(|f| f.matches(model.pci_device_id_word(), None))
                    })
                    .collect();
                assert_eq!(matching.len(), 1, "{} on {}", c.name, model.key);
                let target = file.target_for(&c.name, matching[0], model).unwrap();
                if let Target::Enabled(d) = target {
                    let plan = crate::plan(&MigState::new(model), &d).unwrap();
                    let mut s = MigState::new(model);
                    crate::planner::apply_plan(&mut s, &plan).unwrap();
                    assert!(d.is_satisfied_by(&s));
                    if c.name == "all-1g" {
                        assert_eq!(s.gpu_instances.len() as u32, model.compute_slices.min(7));
                    }
                }
            }
        }
        let a100 = crate::GpuModel::by_key("a100-pcie-40gb").unwrap();
        let seed = file.config(Some("seed-mixed")).unwrap();
        let Target::Enabled(d) = file
            .target_for("seed-mixed", &seed.entries[0], a100)
            .unwrap()
        else {
            panic!("seed-mixed enables MIG")
        };
        let names: Vec<&str> = d
            .gpu_instances
            .iter()
            .map(|g| a100.gi_profile(g.profile).unwrap().name)
            .collect();
        assert_eq!(names, ["3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb"]);
    }
}
