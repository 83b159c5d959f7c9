//! What a GPU's vGPUs are doing: per-vGPU utilization (`nvmlDeviceGetVgpuUtilization`, raw in
//! `ffi_usage`), framebuffer used (`nvmlVgpuInstanceGetFbUsage`) and the GPU instance behind
//! each, plus the GPU's ECC error counts. Which of these calls an ESXi driver answers is
//! recorded in docs/reported-data.md ("Utilization: which NVML calls").
//!
//! "The driver does not answer this" (symbol missing, `NOT_SUPPORTED`, ECC off) is `Ok(None)`,
//! not an error: utilization is an addition to the report and its absence must not mark a GPU
//! as failing.
use mig::GpuInstanceId;
use nvml_wrapper::enum_wrappers::device::{EccCounter, MemoryError};
use nvml_wrapper::vgpu::VgpuInstance;

use super::ffi_usage;
use super::{CallError, Gpu, NvmlCode, wrap};

/// One vGPU's sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VgpuUsage {
    /// The VM's id as NVML reports it (as [`super::ActiveVgpu::vm_id`]).
    pub vm_id: String,
    /// The GPU instance backing it (MIG-backed vGPUs).
    pub gi_id: Option<GpuInstanceId>,
    /// CPU time of the sample, µs (pass the largest back as `last_seen`).
    pub time_stamp_us: u64,
    /// Utilization, percent.
    pub sm: u8,
    pub mem: u8,
    pub enc: u8,
    pub dec: u8,
    /// Framebuffer used, MiB, when NVML answers.
    pub fb_mib: Option<u64>,
}

/// Volatile ECC error counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EccCounts {
    pub corrected: u64,
    pub uncorrected: u64,
}

/// Whether an error only says "this driver or GPU does not do that".
pub(super) fn unsupported(e: &CallError) -> bool {
    matches!(e, CallError::MissingSymbol { .. })
        || e.is(NvmlCode::NOT_SUPPORTED)
        || e.is(NvmlCode(13)) // NVML_ERROR_FUNCTION_NOT_FOUND
}

fn percent(v: u32) -> u8 {
    v.min(100) as u8
}

impl Gpu<'_> {
    /// The samples of this GPU's vGPUs newer than `last_seen_us`; `None` when the driver does
    /// not report vGPU utilization.
    pub fn vgpu_usage(&self, last_seen_us: u64) -> Result<Option<Vec<VgpuUsage>>, CallError> {
        let samples =
            match ffi_usage::vgpu_utilization(self.driver.nvml(), &self.device, last_seen_us) {
                Ok(s) => s,
                Err(e) => {
                    let e = CallError::from(e);
                    return if unsupported(&e) { Ok(None) } else { Err(e) };
                }
            };
        Ok(Some(
            samples
                .into_iter()
                .map(|s| {
                    let v = VgpuInstance::new(s.vgpu_instance, &self.device);
                    VgpuUsage {
                        vm_id: match v.vm_id() {
                            Ok(nvml_wrapper::enum_wrappers::vgpu::VmId::Uuid(id))
                            | Ok(nvml_wrapper::enum_wrappers::vgpu::VmId::Domain(id)) => id,
                            Err(_) => "unknown VM".to_string(),
                        },
                        gi_id: v
                            .gpu_instance_id()
                            .ok()
                            .filter(|&id| id != u32::MAX)
                            .map(GpuInstanceId),
                        time_stamp_us: s.time_stamp,
                        sm: percent(s.sm),
                        mem: percent(s.mem),
                        enc: percent(s.enc),
                        dec: percent(s.dec),
                        fb_mib: v.fb_usage().ok().map(|b| b / (1024 * 1024)),
                    }
                })
                .collect(),
        ))
    }

    /// Volatile ECC error counts; `None` when ECC is off or not reported.
    pub fn ecc_counts(&self) -> Result<Option<EccCounts>, CallError> {
        let read = |kind: MemoryError| {
            wrap(
                "nvmlDeviceGetTotalEccErrors",
                self.device.total_ecc_errors(kind, EccCounter::Volatile),
            )
        };
        match (read(MemoryError::Corrected), read(MemoryError::Uncorrected)) {
            (Ok(corrected), Ok(uncorrected)) => Ok(Some(EccCounts {
                corrected,
                uncorrected,
            })),
            (Err(e), _) | (_, Err(e)) if unsupported(&e) => Ok(None),
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    }
}
