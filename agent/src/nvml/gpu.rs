//! One physical GPU: identity, MIG mode, GI profiles and placements, GPU instances, MIG
//! devices, processes and vGPUs.
use mig::{ComputeInstanceId, GiProfileId, GpuInstanceId, Placement};

use super::ffi::{self, RawError};
use super::info::short_name;
use super::{
    ActiveVgpu, CallError, Driver, GiProfileInfo, GpuInstance, GpuProcess, MAX_GI_PROFILE_INDEX,
    MigDeviceInfo, MigMode, MigModeChange, NvmlCode, wrap,
};

/// One physical GPU.
#[derive(Debug)]
pub struct Gpu<'n> {
    pub(super) driver: &'n Driver,
    pub(super) device: nvml_wrapper::Device<'n>,
    pub(super) index: u32,
}

impl<'n> Gpu<'n> {
    /// NVML index (may change between reboots; prefer UUID or PCI bus id to address a GPU).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The driver this GPU was found through.
    pub fn driver(&self) -> &'n Driver {
        self.driver
    }

    /// nvml-wrapper's device, for safe calls this module does not wrap.
    pub fn device(&self) -> &nvml_wrapper::Device<'n> {
        &self.device
    }

    pub fn name(&self) -> Result<String, CallError> {
        wrap("nvmlDeviceGetName", self.device.name())
    }

    pub fn uuid(&self) -> Result<String, CallError> {
        wrap("nvmlDeviceGetUUID", self.device.uuid())
    }

    /// Bus id as NVML reports it (`00000000:3B:00.0`).
    pub fn pci_bus_id(&self) -> Result<String, CallError> {
        Ok(wrap("nvmlDeviceGetPciInfo_v3", self.device.pci_info())?.bus_id)
    }

    /// Total framebuffer in MiB.
    pub fn memory_mib(&self) -> Result<u64, CallError> {
        Ok(wrap("nvmlDeviceGetMemoryInfo_v2", self.device.memory_info())?.total / (1024 * 1024))
    }

    pub fn mig_mode(&self) -> Result<MigMode, CallError> {
        let m = wrap("nvmlDeviceGetMigMode", self.device.mig_mode())?;
        Ok(MigMode {
            current: m.current != 0,
            pending: m.pending != 0,
        })
    }

    /// Ask for MIG on or off. Success means accepted; see [`MigModeChange::activation`].
    pub fn set_mig_mode(&self, enable: bool) -> Result<MigModeChange, CallError> {
        let status = wrap("nvmlDeviceSetMigMode", self.device.set_mig_mode(enable))?;
        let mode = self.mig_mode()?;
        Ok(MigModeChange {
            activation: (status != 0).then_some(NvmlCode(status)),
            mode,
        })
    }

    /// Every GI profile this GPU offers, in NVML index order (empty while MIG is off).
    pub fn gi_profiles(&self) -> Result<Vec<GiProfileInfo>, CallError> {
        let nvml = &self.driver.nvml;
        let mut out = Vec::new();
        for index in 0..MAX_GI_PROFILE_INDEX {
            match ffi::gi_profile_info(nvml, &self.device, index) {
                Ok(p) => out.push(GiProfileInfo {
                    index,
                    id: GiProfileId(p.id),
                    name: short_name(p.name)
                        .or_else(|| self.catalog_gi_name(GiProfileId(p.id)))
                        .unwrap_or_else(|| format!("{}g (profile {})", p.slice_count, p.id)),
                    slice_count: p.slice_count,
                    instance_count: p.instance_count,
                    memory_mib: p.memory_mib,
                    engines: p.engines,
                    p2p: p.p2p,
                }),
                Err(RawError::Code { code, .. }) if NvmlCode(code) == NvmlCode::NOT_SUPPORTED => {}
                Err(RawError::Code { code, .. })
                    if NvmlCode(code) == NvmlCode::INVALID_ARGUMENT =>
                {
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    /// Only for a library without the v2 profile call, which carries no name.
    fn catalog_gi_name(&self, id: GiProfileId) -> Option<String> {
        let model = mig::GpuModel::by_nvml_name(&self.name().ok()?)?;
        Some(model.gi_profile(id)?.name.to_string())
    }

    /// Every legal placement of a GI profile, free or not (raw `_v2` call; see module docs).
    pub fn gi_possible_placements(
        &self,
        profile: GiProfileId,
    ) -> Result<Vec<Placement>, CallError> {
        let v = ffi::gi_possible_placements(&self.driver.nvml, &self.device, profile.0)?;
        Ok(v.into_iter()
            .map(|(start, size)| Placement { start, size })
            .collect())
    }

    /// How many more GIs of this profile NVML would create now.
    pub fn gi_remaining_capacity(&self, profile: GiProfileId) -> Result<u32, CallError> {
        Ok(ffi::gi_remaining_capacity(
            &self.driver.nvml,
            &self.device,
            profile.0,
        )?)
    }

    /// Create a GI; `placement: None` lets the driver choose.
    pub fn create_gi(
        &self,
        profile: GiProfileId,
        placement: Option<Placement>,
    ) -> Result<GpuInstance<'n>, CallError> {
        let nvml = &self.driver.nvml;
        let raw = ffi::create_gi(
            nvml,
            &self.device,
            profile.0,
            placement.map(|p| (p.start, p.size)),
        )?;
        GpuInstance::from_raw(self.driver, self.index, raw)
    }

    /// Every GPU instance on this GPU, sorted by id (listing is per profile in NVML, so this
    /// walks all profiles).
    pub fn gpu_instances(&self) -> Result<Vec<GpuInstance<'n>>, CallError> {
        let profiles: Vec<GiProfileId> = self.gi_profiles()?.iter().map(|p| p.id).collect();
        self.gpu_instances_of(&profiles)
    }

    /// The GPU instances of these profiles, sorted by id: [`Gpu::gpu_instances`] for a caller
    /// that already knows the GPU's profiles (they do not change while MIG mode does not), so
    /// a poll does not ask for them again.
    pub fn gpu_instances_of(
        &self,
        profiles: &[GiProfileId],
    ) -> Result<Vec<GpuInstance<'n>>, CallError> {
        let nvml = &self.driver.nvml;
        let mut out = Vec::new();
        for profile in profiles {
            for raw in ffi::gpu_instances(nvml, &self.device, profile.0)? {
                out.push(GpuInstance::from_raw(self.driver, self.index, raw)?);
            }
        }
        out.sort_by_key(GpuInstance::id);
        out.dedup_by_key(|gi| gi.id());
        Ok(out)
    }

    /// The GPU instance with this id (`NOT_FOUND` if none).
    pub fn gpu_instance(&self, id: GpuInstanceId) -> Result<GpuInstance<'n>, CallError> {
        let raw = ffi::gi_by_id(&self.driver.nvml, &self.device, id.0)?;
        GpuInstance::from_raw(self.driver, self.index, raw)
    }

    /// The MIG devices that exist now. `nvmlDeviceGetMaxMigDeviceCount` is only an upper
    /// bound, so every index below it is tried and empty slots (`NOT_FOUND`,
    /// `INVALID_ARGUMENT`) are skipped.
    pub fn mig_devices(&self) -> Result<Vec<MigDeviceInfo>, CallError> {
        self.mig_devices_with(|_| None)
    }

    /// [`Gpu::mig_devices`], taking what `known` remembers about a MIG device UUID instead of
    /// asking NVML again. A MIG device's UUID is minted when its compute instance is created,
    /// so its GI id, CI id, name and memory never change under one UUID; only the handle and
    /// UUID of each slot are read (the `index` is always the current one).
    pub fn mig_devices_with(
        &self,
        known: impl Fn(&str) -> Option<MigDeviceInfo>,
    ) -> Result<Vec<MigDeviceInfo>, CallError> {
        let max = wrap(
            "nvmlDeviceGetMaxMigDeviceCount",
            self.device.mig_device_count(),
        )?;
        let nvml = &self.driver.nvml;
        let mut out = Vec::new();
        for index in 0..max {
            let mig = match self.device.mig_device_by_index(index) {
                Ok(m) => m,
                Err(e) => {
                    let e = CallError::from_wrapper("nvmlDeviceGetMigDeviceHandleByIndex", e);
                    if e.is(NvmlCode::NOT_FOUND) || e.is(NvmlCode::INVALID_ARGUMENT) {
                        continue;
                    }
                    return Err(e);
                }
            };
            let uuid = wrap("nvmlDeviceGetUUID", mig.uuid())?;
            if let Some(info) = known(&uuid) {
                out.push(MigDeviceInfo {
                    index,
                    uuid,
                    ..info
                });
                continue;
            }
            let gi_id = GpuInstanceId(ffi::mig_device_gi_id(nvml, &mig)?);
            let ci_id = ComputeInstanceId(ffi::mig_device_ci_id(nvml, &mig)?);
            let raw_name = wrap("nvmlDeviceGetName", mig.name())?;
            // Drivers differ in whether the board name precedes "MIG …"; keep what -L shows.
            let name = match raw_name.find("MIG ") {
                Some(i) => raw_name[i..].to_string(),
                None => raw_name,
            };
            out.push(MigDeviceInfo {
                index,
                gi_id,
                ci_id,
                name,
                uuid,
                memory_mib: mig.memory_info().ok().map(|m| m.total / (1024 * 1024)),
            });
        }
        Ok(out)
    }

    /// Compute processes on the GPU (aggregate over all instances on the parent handle).
    pub fn processes(&self) -> Result<Vec<GpuProcess>, CallError> {
        let procs = wrap(
            "nvmlDeviceGetComputeRunningProcesses_v3",
            self.device.running_compute_processes(),
        )?;
        Ok(procs
            .into_iter()
            .map(|p| GpuProcess {
                pid: p.pid,
                name: self
                    .driver
                    .nvml
                    .sys_process_name(p.pid, 256)
                    .ok()
                    .filter(|n| !n.is_empty()),
                gi_id: p.gpu_instance_id.map(GpuInstanceId),
                ci_id: p.compute_instance_id.map(ComputeInstanceId),
                used_memory_mib: match p.used_gpu_memory {
                    nvml_wrapper::enums::device::UsedGpuMemory::Used(b) => Some(b / (1024 * 1024)),
                    nvml_wrapper::enums::device::UsedGpuMemory::Unavailable => None,
                },
            })
            .collect())
    }

    /// Active vGPUs (running VMs) on this GPU. A library without the vGPU calls, or a GPU
    /// not in vGPU host mode, has none.
    pub fn vgpus(&self) -> Result<Vec<ActiveVgpu>, CallError> {
        let list = match self.device.active_vgpus() {
            Ok(l) => l,
            Err(e) => {
                let e = CallError::from_wrapper("nvmlDeviceGetActiveVgpus", e);
                return match e {
                    CallError::MissingSymbol { .. } => Ok(Vec::new()),
                    e if e.is(NvmlCode::NOT_SUPPORTED) => Ok(Vec::new()),
                    e => Err(e),
                };
            }
        };
        Ok(list
            .iter()
            .map(|v| ActiveVgpu {
                vm_id: match v.vm_id() {
                    Ok(nvml_wrapper::enum_wrappers::vgpu::VmId::Uuid(s))
                    | Ok(nvml_wrapper::enum_wrappers::vgpu::VmId::Domain(s)) => s,
                    Err(_) => "unknown VM".to_string(),
                },
                vgpu_type: v.instance_type().ok().and_then(|t| t.name().ok()),
                gi_id: v
                    .gpu_instance_id()
                    .ok()
                    .filter(|&id| id != u32::MAX)
                    .map(GpuInstanceId),
            })
            .collect())
    }
}
