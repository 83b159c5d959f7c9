//! A safe MIG API over NVML: load the library, address GPUs, read profiles and placements,
//! create, list and destroy GPU and compute instances, enumerate MIG devices, processes and
//! vGPUs.
//!
//! It uses nvml-wrapper's safe methods where they exist and work, and [`ffi`] for the rest.
//! The four known traps of nvml-wrapper 0.13 (research `nvml-mig.md` §5) are handled here,
//! each once:
//! - `Device::possible_placements()` always returns `[]` → [`Gpu::gi_possible_placements`]
//!   makes the raw `_v2` call;
//! - codes 23–30 arrive as `UnexpectedVariant(code)` → [`CallError::from_wrapper`] turns
//!   them back into [`NvmlCode`]s (`INSUFFICIENT_RESOURCES` …);
//! - `Device::mig_device_count()` is the *maximum* → [`Gpu::mig_devices`] walks every index
//!   and keeps only the handles that exist;
//! - a raw `nvml.lib()` call of a missing symbol panics → [`ffi`] checks the symbol first and
//!   returns [`CallError::MissingSymbol`]; a library without `nvmlShutdown` (which `Drop for
//!   Nvml` calls unchecked) is refused at [`Driver::load`].
//!
//! Handles are tied to the [`Driver`] that loaded the library (`Gpu<'n>`, `GpuInstance<'n>`,
//! `ComputeInstance<'n>`), so none can outlive it. Everything here reports what NVML says;
//! deciding what an error *means* for the admin is `operations`'s job.
mod code;
mod ffi;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use mig::{CiProfileId, ComputeInstanceId, GiProfileId, GpuInstanceId, Placement};
use nvml_wrapper::Nvml;
use serde::{Deserialize, Serialize};

pub use code::{CallError, NvmlCode};
use ffi::{RawCi, RawError, RawGi};

/// Library names tried, in order, when no path is given: the versioned soname first (what the
/// driver installs and what nvml-wrapper itself loads), then the unversioned development link.
/// Both are resolved through the dynamic loader's search path, which is where NVIDIA's vGPU
/// manager VIB puts NVML on an ESXi host (docs/agent-cli.md, "Which NVML library").
pub const DEFAULT_LIBRARY_NAMES: [&str; 2] = ["libnvidia-ml.so.1", "libnvidia-ml.so"];

/// Highest GI profile index we probe. NVML ends the list with `INVALID_ARGUMENT`; the cap only
/// protects against a library that never does (0x12 profiles exist as of NVML 13.2).
const MAX_GI_PROFILE_INDEX: u32 = 64;
/// Same for CI profile indices (9 as of NVML 13.3).
const MAX_CI_PROFILE_INDEX: u32 = 32;

impl From<RawError> for CallError {
    fn from(e: RawError) -> Self {
        match e {
            RawError::MissingSymbol(symbol) => CallError::MissingSymbol {
                symbol: symbol.into(),
            },
            RawError::Code { function, code } => CallError::Failed {
                function,
                code: NvmlCode(code),
            },
        }
    }
}

fn wrap<T>(
    function: &'static str,
    r: Result<T, nvml_wrapper::error::NvmlError>,
) -> Result<T, CallError> {
    r.map_err(|e| CallError::from_wrapper(function, e))
}

/// Why the NVML library could not be opened and initialised.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No candidate could be opened by the dynamic loader.
    #[error(
        "cannot load the NVML library (tried {}): {reason}; install NVIDIA's host driver (vGPU manager VIB) or pass --nvml-lib PATH / set VMIG_NVML_LIB",
        .tried.join(", ")
    )]
    NotFound { tried: Vec<String>, reason: String },
    /// The file loaded but lacks the entry points every NVML has.
    #[error("{path} is not an NVML library: it does not export {symbol}")]
    NotNvml { path: String, symbol: &'static str },
    /// `nvmlInit_v2` failed (driver not loaded, no permission, …).
    #[error("nvmlInit_v2 failed in {path}: {source}")]
    Init { path: String, source: CallError },
}

/// A loaded, initialised NVML library. Shuts NVML down when dropped.
#[derive(Debug)]
pub struct Driver {
    nvml: Nvml,
    lib_path: PathBuf,
}

impl Driver {
    /// Load NVML from `path`, or from [`DEFAULT_LIBRARY_NAMES`] when `None`, and initialise it.
    pub fn load(path: Option<&Path>) -> Result<Driver, LoadError> {
        let candidates: Vec<PathBuf> = match path {
            Some(p) => vec![p.to_path_buf()],
            None => DEFAULT_LIBRARY_NAMES.iter().map(PathBuf::from).collect(),
        };
        let mut last_reason = String::new();
        for candidate in &candidates {
            let shown = candidate.display().to_string();
            match Nvml::builder()
                .lib_path(OsStr::new(candidate.as_os_str()))
                .init()
            {
                Ok(nvml) => {
                    if !ffi::has_shutdown(&nvml) {
                        // `Drop for Nvml` would panic on the missing symbol: never drop it.
                        std::mem::forget(nvml);
                        return Err(LoadError::NotNvml {
                            path: shown,
                            symbol: "nvmlShutdown",
                        });
                    }
                    return Ok(Driver {
                        nvml,
                        lib_path: candidate.clone(),
                    });
                }
                Err(nvml_wrapper::error::NvmlError::LibloadingError(e)) => {
                    last_reason = e.to_string();
                }
                Err(nvml_wrapper::error::NvmlError::FailedToLoadSymbol(_)) => {
                    return Err(LoadError::NotNvml {
                        path: shown,
                        symbol: "nvmlInit_v2",
                    });
                }
                Err(e) => {
                    return Err(LoadError::Init {
                        path: shown,
                        source: CallError::from_wrapper("nvmlInit_v2", e),
                    });
                }
            }
        }
        Err(LoadError::NotFound {
            tried: candidates.iter().map(|c| c.display().to_string()).collect(),
            reason: last_reason,
        })
    }

    /// The path or name the library was loaded from.
    pub fn lib_path(&self) -> &Path {
        &self.lib_path
    }

    /// The nvml-wrapper handle, for safe calls this module does not wrap.
    pub fn nvml(&self) -> &Nvml {
        &self.nvml
    }

    /// Driver version string, if the library reports one.
    pub fn driver_version(&self) -> Option<String> {
        self.nvml.sys_driver_version().ok()
    }

    /// NVML's own text for a code (`nvmlErrorString`), falling back to the built-in table.
    pub fn error_text(&self, code: NvmlCode) -> String {
        ffi::error_string(&self.nvml, code.0).unwrap_or_else(|| code.text().to_string())
    }

    /// Number of GPUs NVML sees.
    pub fn gpu_count(&self) -> Result<u32, CallError> {
        wrap("nvmlDeviceGetCount_v2", self.nvml.device_count())
    }

    /// The GPU with this NVML index.
    pub fn gpu_by_index(&self, index: u32) -> Result<Gpu<'_>, CallError> {
        let device = wrap(
            "nvmlDeviceGetHandleByIndex_v2",
            self.nvml.device_by_index(index),
        )?;
        Ok(Gpu {
            driver: self,
            device,
            index,
        })
    }

    /// Every GPU, in NVML index order.
    pub fn gpus(&self) -> Result<Vec<Gpu<'_>>, CallError> {
        (0..self.gpu_count()?)
            .map(|i| self.gpu_by_index(i))
            .collect()
    }

    /// The GPU with this UUID (`GPU-…`), or `None` if NVML knows none.
    pub fn gpu_by_uuid(&self, uuid: &str) -> Result<Option<Gpu<'_>>, CallError> {
        match self.nvml.device_by_uuid(uuid) {
            Ok(device) => self.with_index(device).map(Some),
            Err(e) => {
                let e = CallError::from_wrapper("nvmlDeviceGetHandleByUUID", e);
                if e.is(NvmlCode::NOT_FOUND) || e.is(NvmlCode::INVALID_ARGUMENT) {
                    // Fall back to a scan: some libraries only match the exact case.
                    self.scan(|g| Ok(g.uuid()?.eq_ignore_ascii_case(uuid)))
                } else {
                    Err(e)
                }
            }
        }
    }

    /// The GPU at this PCI bus id (any of `0000:3B:00.0`, `00000000:3b:00.0`, `3b:00.0`).
    /// Asks `nvmlDeviceGetHandleByPciBusId_v2` with NVML's canonical form first, then
    /// compares every GPU's bus id, so the match does not depend on how the id was typed.
    pub fn gpu_by_pci_bus_id(&self, bus_id: &PciBusId) -> Result<Option<Gpu<'_>>, CallError> {
        if let Ok(device) = self.nvml.device_by_pci_bus_id(bus_id.to_string()) {
            return self.with_index(device).map(Some);
        }
        self.scan(|g| Ok(PciBusId::parse(&g.pci_bus_id()?).as_ref() == Some(bus_id)))
    }

    fn with_index<'n>(&'n self, device: nvml_wrapper::Device<'n>) -> Result<Gpu<'n>, CallError> {
        let index = wrap("nvmlDeviceGetIndex", device.index())?;
        Ok(Gpu {
            driver: self,
            device,
            index,
        })
    }

    fn scan(
        &self,
        mut matches: impl FnMut(&Gpu<'_>) -> Result<bool, CallError>,
    ) -> Result<Option<Gpu<'_>>, CallError> {
        for gpu in self.gpus()? {
            if matches(&gpu)? {
                return Ok(Some(gpu));
            }
        }
        Ok(None)
    }
}

/// A PCI bus id in NVML's canonical form `DDDDDDDD:BB:DD.F` (domain, bus, device, function).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PciBusId {
    pub domain: u32,
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

impl PciBusId {
    /// Parse `[domain:]bus:device.function` in hex, any case, any domain width.
    pub fn parse(s: &str) -> Option<PciBusId> {
        let s = s.trim();
        let (rest, function) = s.rsplit_once('.')?;
        let parts: Vec<&str> = rest.split(':').collect();
        let (domain, bus, device) = match parts.as_slice() {
            [bus, device] => ("0", *bus, *device),
            [domain, bus, device] => (*domain, *bus, *device),
            _ => return None,
        };
        let hex = |t: &str, max_len: usize| {
            if t.is_empty() || t.len() > max_len {
                None
            } else {
                u32::from_str_radix(t, 16).ok()
            }
        };
        Some(PciBusId {
            domain: hex(domain, 8)?,
            bus: u8::try_from(hex(bus, 2)?).ok()?,
            device: u8::try_from(hex(device, 2)?).ok()?,
            function: u8::try_from(hex(function, 1)?).ok()?,
        })
    }
}

impl std::fmt::Display for PciBusId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:08X}:{:02X}:{:02X}.{:X}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

/// Current and pending MIG mode of a GPU (`true` = enabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigMode {
    pub current: bool,
    pub pending: bool,
}

/// A GPU-instance profile as NVML describes it on this GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiProfileInfo {
    /// NVML profile index (`NVML_GPU_INSTANCE_PROFILE_*`), the argument of the info call.
    pub index: u32,
    /// Profile id (`info.id`), what every other call and nvidia-smi use.
    pub id: GiProfileId,
    /// Name without the `MIG ` prefix, e.g. `3g.20gb`.
    pub name: String,
    /// Compute slices (`sliceCount`).
    pub slice_count: u32,
    /// Instances of this profile an empty GPU holds (`instanceCount`).
    pub instance_count: u32,
    pub memory_mib: u64,
    pub sm: u32,
    pub ce: u32,
    pub dec: u32,
    pub enc: u32,
    pub jpeg: u32,
    pub ofa: u32,
    pub p2p: bool,
}

/// A compute-instance profile as NVML describes it inside one GPU instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiProfileInfo {
    /// NVML CI profile index (`NVML_COMPUTE_INSTANCE_PROFILE_*`).
    pub index: u32,
    pub id: CiProfileId,
    /// Name without the `MIG ` prefix, e.g. `1c.3g.20gb` or `3g.20gb`.
    pub name: String,
    pub slice_count: u32,
    pub instance_count: u32,
    /// Exclusive SMs of one such CI.
    pub sm: u32,
    /// Engines shared with the rest of the GI.
    pub ce: u32,
    pub dec: u32,
    pub enc: u32,
    pub jpeg: u32,
    pub ofa: u32,
}

/// Identity and placement of a GPU instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiInfo {
    pub id: GpuInstanceId,
    pub profile_id: GiProfileId,
    /// In memory slices of the GPU.
    pub placement: Placement,
}

/// Identity and placement of a compute instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiInfo {
    pub gi_id: GpuInstanceId,
    pub id: ComputeInstanceId,
    pub profile_id: CiProfileId,
    /// In compute slices of the parent GI.
    pub placement: Placement,
}

/// A MIG device (one per compute instance) as the parent GPU enumerates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigDeviceInfo {
    /// Index under the parent GPU (`nvmlDeviceGetMigDeviceHandleByIndex`).
    pub index: u32,
    pub gi_id: GpuInstanceId,
    pub ci_id: ComputeInstanceId,
    /// `nvmlDeviceGetName` of the MIG handle, from `MIG ` on (e.g. `MIG 1g.5gb`).
    pub name: String,
    /// `MIG-…` UUID.
    pub uuid: String,
    /// Framebuffer of the MIG device, if NVML reports it.
    pub memory_mib: Option<u64>,
}

/// A compute process on a GPU, with the instance it runs in when MIG is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuProcess {
    pub pid: u32,
    /// Process name, if NVML can tell (`nvmlSystemGetProcessName`).
    pub name: Option<String>,
    pub gi_id: Option<GpuInstanceId>,
    pub ci_id: Option<ComputeInstanceId>,
    pub used_memory_mib: Option<u64>,
}

/// An active vGPU on a GPU (a running VM).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveVgpu {
    /// The VM's id as NVML reports it (a UUID or domain id on ESXi).
    pub vm_id: String,
    /// vGPU type name, e.g. `grid_a100-3-20c`.
    pub vgpu_type: Option<String>,
    /// The GPU instance backing it, for MIG-backed vGPUs.
    pub gi_id: Option<GpuInstanceId>,
}

/// What `nvmlDeviceSetMigMode` reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigModeChange {
    /// `None` when the change took effect; otherwise why not yet (`IN_USE`, `RESET_REQUIRED`).
    pub activation: Option<NvmlCode>,
    /// The mode read back after the call.
    pub mode: MigMode,
}

fn short_name(raw: Option<String>) -> Option<String> {
    raw.map(|n| {
        n.trim()
            .strip_prefix("MIG ")
            .unwrap_or(n.trim())
            .to_string()
    })
    .filter(|n| !n.is_empty())
}

/// The CI profile that `cgi -C` / `cci` without a profile create: the one spanning the whole
/// GI. Where several do (Hopper's double-memory 1g GIs offer profile 0 and the REV1 profile
/// 7, and the driver shows 7 as default), the highest id wins.
pub fn default_ci_profile(gi_slices: u32, profiles: &[CiProfileInfo]) -> Option<&CiProfileInfo> {
    profiles
        .iter()
        .filter(|p| p.slice_count == gi_slices)
        .max_by_key(|p| p.id)
}

/// One physical GPU.
#[derive(Debug)]
pub struct Gpu<'n> {
    driver: &'n Driver,
    device: nvml_wrapper::Device<'n>,
    index: u32,
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
                    sm: p.sm,
                    ce: p.ce,
                    dec: p.dec,
                    enc: p.enc,
                    jpeg: p.jpeg,
                    ofa: p.ofa,
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
        out.sort_by_key(|gi| gi.info.id);
        out.dedup_by_key(|gi| gi.info.id);
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

/// A GPU instance, valid while its [`Driver`] lives (NVML invalidates it on destroy/reset).
#[derive(Debug)]
pub struct GpuInstance<'n> {
    driver: &'n Driver,
    gpu_index: u32,
    raw: RawGi,
    info: GiInfo,
}

impl<'n> GpuInstance<'n> {
    fn from_raw(driver: &'n Driver, gpu_index: u32, raw: RawGi) -> Result<Self, CallError> {
        let i = ffi::gi_info(&driver.nvml, raw)?;
        let info = GiInfo {
            id: GpuInstanceId(i.id),
            profile_id: GiProfileId(i.profile_id),
            placement: Placement {
                start: i.start,
                size: i.size,
            },
        };
        Ok(GpuInstance {
            driver,
            gpu_index,
            raw,
            info,
        })
    }

    /// Id, profile and placement as NVML reported them when this handle was obtained.
    pub fn info(&self) -> GiInfo {
        self.info
    }

    pub fn id(&self) -> GpuInstanceId {
        self.info.id
    }

    /// NVML index of the parent GPU.
    pub fn gpu_index(&self) -> u32 {
        self.gpu_index
    }

    /// CI profiles offered inside this GI, in NVML index order.
    pub fn ci_profiles(&self) -> Result<Vec<CiProfileInfo>, CallError> {
        let mut out = Vec::new();
        for index in 0..MAX_CI_PROFILE_INDEX {
            match ffi::ci_profile_info(&self.driver.nvml, self.raw, index) {
                Ok(p) => out.push(CiProfileInfo {
                    index,
                    id: CiProfileId(p.id),
                    name: short_name(p.name)
                        .unwrap_or_else(|| format!("{}c (profile {})", p.slice_count, p.id)),
                    slice_count: p.slice_count,
                    instance_count: p.instance_count,
                    sm: p.sm,
                    ce: p.ce,
                    dec: p.dec,
                    enc: p.enc,
                    jpeg: p.jpeg,
                    ofa: p.ofa,
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

    /// Legal placements (in compute slices of this GI) of a CI profile.
    pub fn ci_possible_placements(
        &self,
        profile: CiProfileId,
    ) -> Result<Vec<Placement>, CallError> {
        let v = ffi::ci_possible_placements(&self.driver.nvml, self.raw, profile.0)?;
        Ok(v.into_iter()
            .map(|(start, size)| Placement { start, size })
            .collect())
    }

    /// How many more CIs of this profile fit in this GI now.
    pub fn ci_remaining_capacity(&self, profile: CiProfileId) -> Result<u32, CallError> {
        Ok(ffi::ci_remaining_capacity(
            &self.driver.nvml,
            self.raw,
            profile.0,
        )?)
    }

    /// Create a compute instance; `placement: None` lets the driver choose.
    pub fn create_ci(
        &self,
        profile: CiProfileId,
        placement: Option<Placement>,
    ) -> Result<ComputeInstance<'n>, CallError> {
        let raw = ffi::create_ci(
            &self.driver.nvml,
            self.raw,
            profile.0,
            placement.map(|p| (p.start, p.size)),
        )?;
        ComputeInstance::from_raw(self.driver, self.info.id, raw)
    }

    /// Every compute instance in this GI, sorted by id.
    pub fn compute_instances(&self) -> Result<Vec<ComputeInstance<'n>>, CallError> {
        let profiles: Vec<CiProfileId> = self.ci_profiles()?.iter().map(|p| p.id).collect();
        self.compute_instances_of(&profiles)
    }

    /// The compute instances of these CI profiles, sorted by id: [`GpuInstance::compute_instances`]
    /// for a caller that already knows the CI profiles of this GI's profile.
    pub fn compute_instances_of(
        &self,
        profiles: &[CiProfileId],
    ) -> Result<Vec<ComputeInstance<'n>>, CallError> {
        let mut out = Vec::new();
        for profile in profiles {
            for raw in ffi::compute_instances(&self.driver.nvml, self.raw, profile.0)? {
                out.push(ComputeInstance::from_raw(self.driver, self.info.id, raw)?);
            }
        }
        out.sort_by_key(|ci| ci.info.id);
        out.dedup_by_key(|ci| ci.info.id);
        Ok(out)
    }

    /// The compute instance with this id (`NOT_FOUND` if none).
    pub fn compute_instance(
        &self,
        id: ComputeInstanceId,
    ) -> Result<ComputeInstance<'n>, CallError> {
        let raw = ffi::ci_by_id(&self.driver.nvml, self.raw, id.0)?;
        ComputeInstance::from_raw(self.driver, self.info.id, raw)
    }

    /// Destroy this GI. NVML refuses (`IN_USE`) while CIs or processes exist; it never cascades.
    pub fn destroy(self) -> Result<(), CallError> {
        Ok(ffi::destroy_gi(&self.driver.nvml, self.raw)?)
    }
}

/// A compute instance, valid while its [`Driver`] lives and its GI exists.
#[derive(Debug)]
pub struct ComputeInstance<'n> {
    driver: &'n Driver,
    raw: RawCi,
    info: CiInfo,
}

impl<'n> ComputeInstance<'n> {
    fn from_raw(driver: &'n Driver, gi_id: GpuInstanceId, raw: RawCi) -> Result<Self, CallError> {
        let i = ffi::ci_info(&driver.nvml, raw)?;
        let info = CiInfo {
            gi_id,
            id: ComputeInstanceId(i.id),
            profile_id: CiProfileId(i.profile_id),
            placement: Placement {
                start: i.start,
                size: i.size,
            },
        };
        Ok(ComputeInstance { driver, raw, info })
    }

    pub fn info(&self) -> CiInfo {
        self.info
    }

    pub fn id(&self) -> ComputeInstanceId {
        self.info.id
    }

    /// Destroy this CI. NVML refuses (`IN_USE`) while processes run on it.
    pub fn destroy(self) -> Result<(), CallError> {
        Ok(ffi::destroy_ci(&self.driver.nvml, self.raw)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_bus_ids_normalise() {
        let canonical = PciBusId {
            domain: 0,
            bus: 0x3b,
            device: 0,
            function: 0,
        };
        for s in ["0000:3B:00.0", "00000000:3b:00.0", "3b:00.0", " 3B:00.0 "] {
            assert_eq!(PciBusId::parse(s), Some(canonical), "{s}");
        }
        assert_eq!(canonical.to_string(), "00000000:3B:00.0");
        for bad in ["3b:00", "zz:00.0", "0:1:2:3.0", "100:00.0", "3b:00.10", ""] {
            assert_eq!(PciBusId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn short_names_drop_the_mig_prefix() {
        assert_eq!(
            short_name(Some("MIG 3g.20gb".into())).as_deref(),
            Some("3g.20gb")
        );
        assert_eq!(
            short_name(Some("1c.3g.20gb".into())).as_deref(),
            Some("1c.3g.20gb")
        );
        assert_eq!(short_name(Some(String::new())), None);
    }

    fn ci(id: u32, slices: u32) -> CiProfileInfo {
        CiProfileInfo {
            index: id,
            id: CiProfileId(id),
            name: format!("{slices}c"),
            slice_count: slices,
            instance_count: 1,
            sm: 0,
            ce: 0,
            dec: 0,
            enc: 0,
            jpeg: 0,
            ofa: 0,
        }
    }

    #[test]
    fn default_ci_profile_spans_the_gi_and_prefers_rev1() {
        let three_g = [ci(0, 1), ci(1, 2), ci(2, 3)];
        assert_eq!(
            default_ci_profile(3, &three_g).map(|p| p.id),
            Some(CiProfileId(2))
        );
        let double_mem_1g = [ci(0, 1), ci(7, 1)];
        assert_eq!(
            default_ci_profile(1, &double_mem_1g).map(|p| p.id),
            Some(CiProfileId(7))
        );
        assert_eq!(default_ci_profile(4, &three_g), None);
    }
}
