//! One read of the full MIG state of every GPU on the host, as a plain serde value.
//!
//! This is what the daemon publishes and what the layout planner starts from, so it holds
//! everything NVML can tell (modes, profiles with free capacity and placements, instances
//! with their compute instances and MIG devices, processes, vGPUs) and nothing derived from a
//! built-in table except the catalog key of the GPU model. Reading never changes the GPU.
//!
//! A resident reader (the daemon polls every few seconds) passes an [`ObserveCache`]: on a GPU
//! host every NVML call is a round trip into the driver, and most of what a full read asks
//! (names, bus ids, GI and CI profiles, possible placements, what a MIG device UUID stands
//! for) cannot change while the GPU's MIG mode stays the same. Only the instance lists,
//! capacities, MIG device UUIDs, processes and vGPUs are asked for on every read.
use std::collections::{BTreeMap, HashMap};

use mig::{CiProfileId, ComputeInstanceId, GiProfileId, GpuInstanceId, Placement};
use serde::{Deserialize, Serialize};

use crate::error::AgentError;
use crate::nvml::{
    ActiveVgpu, CallError, CiProfileInfo, Driver, GiProfileInfo, Gpu, GpuProcess, MigDeviceInfo,
    MigMode,
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
    /// `nvmlDeviceGetGpuInstanceRemainingCapacity` now, as NVML says it (an ESXi host read 0
    /// on an empty GPU: not believed, see `instances_placeable`).
    pub instances_free: u32,
    /// How many more GIs of this profile fit, computed from the placements, the instances
    /// that exist and the engine pool ([`mig::geometry`]): what the agent publishes.
    pub instances_placeable: u32,
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
    observe_gpu_cached(gpu, &mut ObserveCache::default())
}

/// What stays true about the GPUs between reads, by GPU UUID (see the module docs).
///
/// An entry is dropped, and read again in full, when the GPU's MIG mode (current or pending)
/// differs from when it was filled, when reading that GPU fails, and when the GPU is no longer
/// there ([`ObserveCache::retain_gpus`]). Nothing in it is dynamic: instance lists,
/// capacities, processes and vGPUs are always read from NVML.
#[derive(Debug, Default)]
pub struct ObserveCache {
    gpus: HashMap<String, StaticGpu>,
}

#[derive(Debug)]
struct StaticGpu {
    /// The MIG mode this entry is valid for.
    mig_mode: Option<MigMode>,
    name: String,
    /// `None` is not cached: a failed read is tried again next time.
    pci_bus_id: Option<String>,
    memory_mib: Option<u64>,
    /// GI profiles with every legal placement; read when first needed with MIG current.
    gi_profiles: Option<Vec<(GiProfileInfo, Vec<Placement>)>>,
    /// CI profiles offered inside a GI, by the GI's profile (they depend on nothing else).
    ci_profiles: HashMap<GiProfileId, Vec<CiProfileInfo>>,
    /// What each MIG device UUID stands for (GI, CI, name, memory), minted at CI creation.
    mig_devices: HashMap<String, MigDeviceInfo>,
}

impl ObserveCache {
    /// Forget everything (the NVML library was reloaded).
    pub fn clear(&mut self) {
        self.gpus.clear();
    }

    /// Keep only the GPUs whose UUID `keep` accepts (the GPUs seen in the last read).
    pub fn retain_gpus(&mut self, keep: impl Fn(&str) -> bool) {
        self.gpus.retain(|uuid, _| keep(uuid));
    }

    /// Number of GPUs with cached data.
    pub fn len(&self) -> usize {
        self.gpus.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.gpus.is_empty()
    }
}

/// Read the state of one GPU, taking the static parts from `cache` where it has them.
/// Returns the same state [`observe_gpu`] would.
pub fn observe_gpu_cached(
    gpu: &Gpu<'_>,
    cache: &mut ObserveCache,
) -> Result<GpuMigState, CallError> {
    let uuid = gpu.uuid()?;
    let r = observe_with(gpu, &uuid, cache);
    if r.is_err() {
        // The error may come from what was cached (a profile that is gone): start afresh.
        cache.gpus.remove(&uuid);
    }
    r
}

fn observe_with(
    gpu: &Gpu<'_>,
    uuid: &str,
    cache: &mut ObserveCache,
) -> Result<GpuMigState, CallError> {
    let mig_mode = match gpu.mig_mode() {
        Ok(m) => Some(m),
        Err(e) if e.is(crate::nvml::NvmlCode::NOT_SUPPORTED) => None,
        Err(e) => return Err(e),
    };
    if cache
        .gpus
        .get(uuid)
        .is_some_and(|st| st.mig_mode != mig_mode)
    {
        cache.gpus.remove(uuid);
    }
    let st = match cache.gpus.entry(uuid.to_string()) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => e.insert(StaticGpu {
            mig_mode,
            name: gpu.name()?,
            pci_bus_id: None,
            memory_mib: None,
            gi_profiles: None,
            ci_profiles: HashMap::new(),
            mig_devices: HashMap::new(),
        }),
    };
    if st.pci_bus_id.is_none() {
        st.pci_bus_id = gpu.pci_bus_id().ok();
    }
    if st.memory_mib.is_none() {
        st.memory_mib = gpu.memory_mib().ok();
    }
    let processes = gpu.processes().unwrap_or_default();
    let vgpus = gpu.vgpus()?;
    let mut state = GpuMigState {
        index: gpu.index(),
        model: mig::GpuModel::by_nvml_name(&st.name).map(|m| m.key.to_string()),
        name: st.name.clone(),
        uuid: uuid.to_string(),
        pci_bus_id: st.pci_bus_id.clone(),
        memory_mib: st.memory_mib,
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
    let profiles = match &st.gi_profiles {
        Some(p) => p,
        None => {
            let mut read = Vec::new();
            for p in gpu.gi_profiles()? {
                let placements = gpu.gi_possible_placements(p.id)?;
                read.push((p, placements));
            }
            st.gi_profiles.insert(read)
        }
    };
    let known = &st.mig_devices;
    let mig_devices = gpu.mig_devices_with(|uuid| known.get(uuid).cloned())?;
    st.mig_devices = mig_devices
        .iter()
        .map(|d| (d.uuid.clone(), d.clone()))
        .collect();
    let profile_ids: Vec<GiProfileId> = profiles.iter().map(|(p, _)| p.id).collect();
    let mut instances = Vec::new();
    for gi in gpu.gpu_instances_of(&profile_ids)? {
        let info = gi.info();
        let ci_profiles = match st.ci_profiles.entry(info.profile_id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(gi.ci_profiles()?),
        };
        let ci_profile_ids: Vec<CiProfileId> = ci_profiles.iter().map(|p| p.id).collect();
        let mut cis = Vec::new();
        for ci in gi.compute_instances_of(&ci_profile_ids)? {
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
                .find(|(p, _)| p.id == info.profile_id)
                .map(|(p, _)| p.name.clone())
                .unwrap_or_else(|| info.profile_id.0.to_string()),
            placement: info.placement,
            in_use: state.processes.iter().any(|p| p.gi_id == Some(info.id))
                || state.vgpus.iter().any(|v| v.gi_id == Some(info.id)),
            compute_instances: cis,
        });
    }
    let gi_profiles = gi_profile_states(gpu, profiles, &instances)?;
    state.gi_profiles = gi_profiles;
    state.gpu_instances = instances;
    state.mig_devices = mig_devices;
    Ok(state)
}

/// Each GI profile with NVML's remaining capacity and the capacity computed from the
/// placements, the instances that exist and the engine pool ([`mig::geometry`]).
fn gi_profile_states(
    gpu: &Gpu<'_>,
    profiles: &[(GiProfileInfo, Vec<Placement>)],
    instances: &[GpuInstanceState],
) -> Result<Vec<GiProfileState>, CallError> {
    let geometry: Vec<mig::geometry::ProfileGeometry<'_>> = profiles
        .iter()
        .map(|(p, placements)| mig::geometry::ProfileGeometry {
            id: p.id,
            instance_count: p.instance_count,
            engines: p.engines,
            placements,
        })
        .collect();
    let pool = mig::geometry::engine_pool(&geometry);
    let existing: Vec<mig::geometry::ExistingGi> = instances
        .iter()
        .map(|gi| mig::geometry::ExistingGi {
            profile: gi.profile_id,
            engines: profiles
                .iter()
                .find(|(p, _)| p.id == gi.profile_id)
                .map(|(p, _)| p.engines)
                .unwrap_or_default(),
            placement: gi.placement,
        })
        .collect();
    let mut gi_profiles = Vec::new();
    for ((p, placements), geo) in profiles.iter().zip(&geometry) {
        let free_placements = placements
            .iter()
            .filter(|pl| !instances.iter().any(|gi| overlaps(pl, &gi.placement)))
            .copied()
            .collect();
        gi_profiles.push(GiProfileState {
            instances_free: gpu.gi_remaining_capacity(p.id)?,
            instances_placeable: mig::geometry::remaining_capacity(geo, pool, &existing),
            placements: placements.clone(),
            free_placements,
            profile: p.clone(),
        });
    }
    Ok(gi_profiles)
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
