//! A safe MIG API over NVML: load the library, address GPUs, read profiles and placements,
//! create, list and destroy GPU and compute instances, enumerate MIG devices, processes and
//! vGPUs.
//!
//! It uses nvml-wrapper's safe methods where they exist and work, and `ffi` for the rest.
//! The four known traps of nvml-wrapper 0.13 (research `nvml-mig.md` §5) are handled here,
//! each once:
//! - `Device::possible_placements()` always returns `[]` → [`Gpu::gi_possible_placements`]
//!   makes the raw `_v2` call;
//! - codes 23–30 arrive as `UnexpectedVariant(code)` → [`CallError::from_wrapper`] turns
//!   them back into [`NvmlCode`]s (`INSUFFICIENT_RESOURCES` …);
//! - `Device::mig_device_count()` is the *maximum* → [`Gpu::mig_devices`] walks every index
//!   and keeps only the handles that exist;
//! - a raw `nvml.lib()` call of a missing symbol panics → `ffi` checks the symbol first and
//!   returns [`CallError::MissingSymbol`]; a library without `nvmlShutdown` (which `Drop for
//!   Nvml` calls unchecked) is refused at [`Driver::load`].
//!
//! Handles are tied to the [`Driver`] that loaded the library (`Gpu<'n>`, `GpuInstance<'n>`,
//! `ComputeInstance<'n>`), so none can outlive it. Everything here reports what NVML says;
//! deciding what an error *means* for the admin is `operations`'s job.
//!
//! Files: `code` NVML return codes and [`CallError`]; `ffi` the raw calls (the only
//! `unsafe`); `info` the plain values reported; `gpu` one GPU; `instance` GPU and compute
//! instances; `pci` bus ids; `usage` (with `ffi_usage`, its raw call) vGPU utilization and ECC counts; `vgpu_types` (with `ffi_vgpu`) the vGPU types and their per-GPU and per-GI maxima. This file loads the library ([`Driver`]).
mod code;
mod events;
mod ffi;
mod ffi_events;
mod ffi_gpm;
mod ffi_usage;
mod ffi_vgpu;
mod gpu;
mod info;
mod instance;
mod pci;
mod usage;
mod vgpu_types;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use nvml_wrapper::Nvml;

pub use code::{CallError, NvmlCode};
pub use events::{XidEvent, XidWatch};
use ffi::RawError;
pub use ffi_gpm::{GpmFigures, GpmSampleHandle};
pub use gpu::Gpu;
pub use info::{
    ActiveVgpu, CiInfo, CiProfileInfo, GiInfo, GiProfileInfo, GpuProcess, MigDeviceInfo, MigMode,
    MigModeChange, default_ci_profile,
};
pub use instance::{ComputeInstance, GpuInstance};
pub use pci::PciBusId;
pub use usage::{EccCounts, VgpuUsage};
pub use vgpu_types::VgpuTypeInfo;

#[cfg(test)]
pub(crate) use ffi::sim_call_count;

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
    /// Unique per load in this process: raw handles kept across calls (GPM samples) name the
    /// driver that made them, and are only handed back to it.
    id: u64,
}

/// The next [`Driver::id`].
static NEXT_DRIVER_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

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
                        id: NEXT_DRIVER_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
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
