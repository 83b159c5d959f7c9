//! One read of the full MIG state of every GPU on the host, as a plain serde value.
//!
//! This is what the daemon publishes and what the layout planner starts from, so it holds
//! everything NVML can tell (modes, profiles with free capacity and placements, instances
//! with their compute instances and MIG devices, processes, vGPUs) and nothing derived from a
//! built-in table except the catalog key of the GPU model. Reading never changes the GPU.
use std::collections::BTreeMap;

use mig::{CiProfileId, ComputeInstanceId, GiProfileId, GpuInstanceId, Placement};
use serde::{Deserialize, Serialize};

use crate::error::AgentError;
use crate::nvml::{
    ActiveVgpu, CallError, Driver, GiProfileInfo, Gpu, GpuProcess, MigDeviceInfo, MigMode,
};

/// The MIG state of a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostMigState {
    /// NVIDIA driver version, if NVML reports it.
    pub driver_version: Option<String>,
    /// Every GPU NVML sees, in index order.
    pub gpus: Vec<GpuMigState>,
}

/// The MIG state of one GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuMigState {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub pci_bus_id: Option<String>,
    pub memory_mib: Option<u64>,
    /// Catalog key of the GPU model (`a100-pcie-40gb`), if the catalog knows the name.
    pub model: Option<String>,
    /// `None` when the GPU does not support MIG.
    pub mig_mode: Option<MigMode>,
    /// GI profiles with live capacity (empty unless MIG is currently enabled).
    pub gi_profiles: Vec<GiProfileState>,
    /// GPU instances, by id.
    pub gpu_instances: Vec<GpuInstanceState>,
    /// MIG devices that exist (not the maximum count).
    pub mig_devices: Vec<MigDeviceInfo>,
    pub processes: Vec<GpuProcess>,
    pub vgpus: Vec<ActiveVgpu>,
}

/// A GI profile and how much of it is still available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiProfileState {
    #[serde(flatten)]
    pub profile: GiProfileInfo,
    /// `nvmlDeviceGetGpuInstanceRemainingCapacity` now.
    pub instances_free: u32,
    /// Every legal placement (free or not).
    pub placements: Vec<Placement>,
    /// Legal placements that overlap no existing GPU instance.
    pub free_placements: Vec<Placement>,
}

/// A GPU instance with its compute instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuInstanceState {
    pub gi_id: GpuInstanceId,
    pub profile_id: GiProfileId,
    /// Profile name without `MIG ` (`3g.20gb`).
    pub name: String,
    pub placement: Placement,
    pub compute_instances: Vec<ComputeInstanceState>,
    /// Processes run in it or a VM's vGPU is backed by it.
    pub in_use: bool,
}

/// A compute instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputeInstanceState {
    pub ci_id: ComputeInstanceId,
    pub profile_id: CiProfileId,
    /// Profile name without `MIG ` (`1c.3g.20gb`).
    pub name: String,
    pub placement: Placement,
    /// `MIG-…` UUID of the MIG device of this CI, if NVML enumerates it.
    pub mig_device_uuid: Option<String>,
    /// Processes run on it.
    pub in_use: bool,
}

fn overlaps(a: &Placement, b: &Placement) -> bool {
    a.start < b.start + b.size && b.start < a.start + a.size
}

/// Read the state of every GPU.
pub fn observe(driver: &Driver) -> Result<HostMigState, AgentError> {
    let gpus = driver.gpus().map_err(|e| AgentError::Nvml {
        gpu: None,
        operation: "list GPUs".into(),
        source: e,
    })?;
    let mut out = Vec::with_capacity(gpus.len());
    for gpu in &gpus {
        out.push(
            observe_gpu(gpu).map_err(|e| AgentError::nvml(gpu.index(), "read the MIG state", e))?,
        );
    }
    Ok(HostMigState {
        driver_version: driver.driver_version(),
        gpus: out,
    })
}

/// Read the state of one GPU.
pub fn observe_gpu(gpu: &Gpu<'_>) -> Result<GpuMigState, CallError> {
    let name = gpu.name()?;
    let mig_mode = match gpu.mig_mode() {
        Ok(m) => Some(m),
        Err(e) if e.is(crate::nvml::NvmlCode::NOT_SUPPORTED) => None,
        Err(e) => return Err(e),
    };
    let processes = gpu.processes().unwrap_or_default();
    let vgpus = gpu.vgpus()?;
    let mut state = GpuMigState {
        index: gpu.index(),
        model: mig::GpuModel::by_nvml_name(&name).map(|m| m.key.to_string()),
        name,
        uuid: gpu.uuid()?,
        pci_bus_id: gpu.pci_bus_id().ok(),
        memory_mib: gpu.memory_mib().ok(),
        mig_mode,
        gi_profiles: Vec::new(),
        gpu_instances: Vec::new(),
        mig_devices: Vec::new(),
        processes,
        vgpus,
    };
    if !mig_mode.is_some_and(|m| m.current) {
        return Ok(state);
    }
    let profiles = gpu.gi_profiles()?;
    let mig_devices = gpu.mig_devices()?;
    let mut instances = Vec::new();
    for gi in gpu.gpu_instances()? {
        let info = gi.info();
        let ci_profiles = gi.ci_profiles()?;
        let mut cis = Vec::new();
        for ci in gi.compute_instances()? {
            let c = ci.info();
            cis.push(ComputeInstanceState {
                ci_id: c.id,
                profile_id: c.profile_id,
                name: ci_profiles
                    .iter()
                    .find(|p| p.id == c.profile_id)
                    .map(|p| p.name.clone())
                    .unwrap_or_else(|| c.profile_id.0.to_string()),
                placement: c.placement,
                mig_device_uuid: mig_devices
                    .iter()
                    .find(|d| d.gi_id == info.id && d.ci_id == c.id)
                    .map(|d| d.uuid.clone()),
                in_use: state
                    .processes
                    .iter()
                    .any(|p| p.gi_id == Some(info.id) && p.ci_id == Some(c.id)),
            });
        }
        instances.push(GpuInstanceState {
            gi_id: info.id,
            profile_id: info.profile_id,
            name: profiles
                .iter()
                .find(|p| p.id == info.profile_id)
                .map(|p| p.name.clone())
                .unwrap_or_else(|| info.profile_id.0.to_string()),
            placement: info.placement,
            in_use: state.processes.iter().any(|p| p.gi_id == Some(info.id))
                || state.vgpus.iter().any(|v| v.gi_id == Some(info.id)),
            compute_instances: cis,
        });
    }
    let mut gi_profiles = Vec::new();
    for p in profiles {
        let placements = gpu.gi_possible_placements(p.id)?;
        let free_placements = placements
            .iter()
            .filter(|pl| !instances.iter().any(|gi| overlaps(pl, &gi.placement)))
            .copied()
            .collect();
        gi_profiles.push(GiProfileState {
            instances_free: gpu.gi_remaining_capacity(p.id)?,
            placements,
            free_placements,
            profile: p,
        });
    }
    state.gi_profiles = gi_profiles;
    state.gpu_instances = instances;
    state.mig_devices = mig_devices;
    Ok(state)
}

impl GpuMigState {
    /// This GPU's layout as the pure model's [`mig::MigState`], for the planner. `None` when
    /// the catalog does not know the model (the planner cannot reason about it then).
    pub fn to_mig_state(&self) -> Option<mig::MigState> {
        let model = self.model.clone()?;
        let gpu_instances = self
            .gpu_instances
            .iter()
            .map(|gi| {
                let cis = gi
                    .compute_instances
                    .iter()
                    .map(|ci| {
                        (
                            ci.ci_id,
                            mig::ComputeInstance {
                                id: ci.ci_id,
                                profile: ci.profile_id,
                                placement: ci.placement,
                                in_use: ci.in_use,
                            },
                        )
                    })
                    .collect::<BTreeMap<_, _>>();
                (
                    gi.gi_id,
                    mig::GpuInstance {
                        id: gi.gi_id,
                        profile: gi.profile_id,
                        placement: gi.placement,
                        compute_instances: cis,
                        in_use: gi.in_use,
                    },
                )
            })
            .collect();
        Some(mig::MigState {
            model,
            gpu_instances,
        })
    }
}
