//! The real [`Observer`]: the agent's NVML module (`crate::nvml`, `crate::observe`) turned
//! into the published per-GPU reports.
//!
//! NVML is loaded once and kept; if listing GPUs fails the library is unloaded and loaded
//! again at the next poll (driver reloaded, VIB upgraded). Each GPU is read on its own, so one
//! failing GPU becomes an `error` in its report while the others are reported in full.
//! Derived figures that need the `mig` model (fragmentation, which is a search over
//! re-layouts) are cached per layout: the layout rarely changes, the poll runs every 5 s.
use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use mig::report::{CiReport, GiReport, GpuReport, MigModeReport, ProcessReport};

use super::config::LayoutRef;
use super::observe::Observer;
use crate::nvml::{Driver, Gpu};
use crate::observe::{GpuMigState, observe_gpu};

/// Observes the GPUs through NVML.
#[derive(Debug)]
pub struct NvmlObserver {
    lib: Option<PathBuf>,
    driver: Option<Driver>,
    /// fragmentation by (model, layout) key.
    fragmentation: HashMap<String, f64>,
}

impl NvmlObserver {
    /// An observer that loads NVML from `lib` (or the standard names) when first used.
    pub fn new(lib: Option<PathBuf>) -> Self {
        NvmlObserver {
            lib,
            driver: None,
            fragmentation: HashMap::new(),
        }
    }

    fn driver(&mut self) -> anyhow::Result<&Driver> {
        if self.driver.is_none() {
            let driver = Driver::load(self.lib.as_deref())?;
            tracing::info!(lib = %driver.lib_path().display(), driver = ?driver.driver_version(), "NVML loaded");
            self.driver = Some(driver);
        }
        self.driver.as_ref().context("NVML not loaded")
    }
}

impl Observer for NvmlObserver {
    fn observe(&mut self) -> anyhow::Result<Vec<GpuReport>> {
        let driver = self.driver()?;
        let gpus = match driver.gpus() {
            Ok(gpus) => gpus,
            Err(e) => {
                self.driver = None;
                return Err(e).context("cannot list the GPUs");
            }
        };
        let mut states = Vec::with_capacity(gpus.len());
        for gpu in &gpus {
            states.push(observe_gpu(gpu).map_err(|e| failed_report(gpu, &e.to_string())));
        }
        drop(gpus);
        let cache = &mut self.fragmentation;
        if cache.len() > 256 {
            cache.clear();
        }
        Ok(states
            .into_iter()
            .map(|s| match s {
                Ok(state) => gpu_report(&state, cache),
                Err(report) => report,
            })
            .collect())
    }

    /// `vmig-agent apply -f FILE -c NAME` without `--allow-partial`: a layout that would touch
    /// an instance in use is refused as a whole and the GPUs stay as they are.
    fn enforce_layout(&mut self, layout: &LayoutRef) -> anyhow::Result<String> {
        let driver = self.driver()?;
        let (report, outcome) =
            crate::layout::enforce(driver, Some(&layout.file), &layout.name, false);
        let report = report
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        match outcome {
            Ok(()) => Ok(report),
            Err(e) => Err(anyhow::anyhow!("{e}").context(report)),
        }
    }
}

/// What can still be said about a GPU whose MIG state could not be read.
fn failed_report(gpu: &Gpu<'_>, error: &str) -> GpuReport {
    let name = gpu.name().unwrap_or_default();
    GpuReport {
        index: gpu.index(),
        uuid: gpu.uuid().unwrap_or_default(),
        model: mig::GpuModel::by_nvml_name(&name).map(|m| m.key.to_string()),
        name,
        pci_bus_id: gpu.pci_bus_id().unwrap_or_default(),
        mig_mode: gpu.mig_mode().ok().map(|m| MigModeReport {
            current: m.current,
            pending: m.pending,
        }),
        gpu_instances: Vec::new(),
        free: Default::default(),
        largest_placeable: None,
        fragmentation: 0.0,
        placeable_vgpu_types: Vec::new(),
        error: Some(error.to_string()),
    }
}

/// The published form of one GPU's observed state.
pub fn gpu_report(
    state: &GpuMigState,
    fragmentation_cache: &mut HashMap<String, f64>,
) -> GpuReport {
    let model = state.model.as_deref().and_then(mig::GpuModel::by_key);
    let gpu_instances = state
        .gpu_instances
        .iter()
        .map(|gi| {
            let vgpu = state.vgpus.iter().find(|v| v.gi_id == Some(gi.gi_id));
            GiReport {
                gi_id: gi.gi_id,
                profile_id: gi.profile_id,
                profile: gi.name.clone(),
                placement: gi.placement,
                compute_instances: gi
                    .compute_instances
                    .iter()
                    .map(|ci| CiReport {
                        ci_id: ci.ci_id,
                        profile_id: Some(ci.profile_id),
                        profile: ci.name.clone(),
                        uuid: ci.mig_device_uuid.clone().unwrap_or_default(),
                    })
                    .collect(),
                in_use: gi.in_use,
                vm: vgpu.map(|v| v.vm_id.clone()),
                vgpu_type: vgpu.and_then(|v| v.vgpu_type.clone()),
                processes: state
                    .processes
                    .iter()
                    .filter(|p| p.gi_id == Some(gi.gi_id))
                    .map(|p| ProcessReport {
                        pid: p.pid,
                        name: p.name.clone(),
                        ci_id: p.ci_id,
                    })
                    .collect(),
            }
        })
        .collect();
    let free_profiles: Vec<_> = state
        .gi_profiles
        .iter()
        .filter(|p| p.instances_free > 0)
        .collect();
    let largest_placeable = free_profiles
        .iter()
        .max_by_key(|p| (p.profile.slice_count, p.profile.memory_mib))
        .map(|p| p.profile.name.clone());
    let placeable_vgpu_types = match model {
        Some(model) => {
            let mut types: Vec<String> = free_profiles
                .iter()
                .filter_map(|p| model.gi_profile(p.profile.id))
                .flat_map(|gp| mig::vgpu::vgpu_types_for(model, gp))
                .collect();
            types.sort();
            types.dedup();
            types
        }
        None => Vec::new(),
    };
    let fragmentation = match state.to_mig_state() {
        Some(ms) if state.mig_mode.is_some_and(|m| m.current) => {
            let key = serde_json::to_string(&ms).unwrap_or_default();
            *fragmentation_cache
                .entry(key)
                .or_insert_with(|| ms.fragmentation())
        }
        _ => 0.0,
    };
    GpuReport {
        index: state.index,
        uuid: state.uuid.clone(),
        name: state.name.clone(),
        pci_bus_id: state.pci_bus_id.clone().unwrap_or_default(),
        model: state.model.clone(),
        mig_mode: state.mig_mode.map(|m| MigModeReport {
            current: m.current,
            pending: m.pending,
        }),
        gpu_instances,
        free: free_profiles
            .iter()
            .map(|p| (p.profile.name.clone(), p.instances_free))
            .collect(),
        largest_placeable,
        fragmentation,
        placeable_vgpu_types,
        error: None,
    }
}
