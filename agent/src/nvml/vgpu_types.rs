//! The vGPU types a GPU supports (issue 18): per type its name, the GI profile a MIG-backed
//! type runs in, how many one GPU runs (`nvmlVgpuTypeGetMaxInstances`) and how many one GI
//! runs time-sliced (`nvmlVgpuTypeGetMaxInstancesPerGpuInstance`, raw in `ffi_vgpu`); and
//! which types may start now (`nvmlDeviceGetCreatableVgpus`).
//!
//! "The driver does not answer this" (symbol missing, `NOT_SUPPORTED`,
//! `FUNCTION_NOT_FOUND`: older drivers, GPUs or hosts without vGPU) is an empty answer, not an
//! error, and a type whose details fail is listed without them: the types are an addition to
//! the report and must never mark a GPU as failing.
use mig::GiProfileId;

use super::ffi_vgpu;
use super::usage::unsupported;
use super::{CallError, Gpu};

/// More types than any board offers (a few dozen): a driver listing more is cut here.
const MAX_TYPES: usize = 128;

/// One vGPU type a GPU supports in its current mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VgpuTypeInfo {
    /// `nvmlVgpuTypeId_t`.
    pub id: u32,
    /// The name as the driver spells it (`NVIDIA DC-1-8C`).
    pub name: String,
    /// The GI profile a MIG-backed type runs in; `None` for a whole-GPU type
    /// (`NVML_INVALID_GPU_INSTANCE_PROFILE_ID`) or when not answered.
    pub gi_profile_id: Option<GiProfileId>,
    /// Most vGPUs of the type on one GPU, when answered.
    pub max_per_gpu: Option<u32>,
    /// Most vGPUs of the type in one GI (MIG-backed types, drivers that answer).
    pub max_per_gi: Option<u32>,
}

impl Gpu<'_> {
    /// The vGPU types this GPU supports now (MIG-backed ones in MIG mode, whole-GPU ones
    /// otherwise, as the driver lists them); empty when the driver does not answer.
    pub fn vgpu_types(&self) -> Result<Vec<VgpuTypeInfo>, CallError> {
        let types = match self.device.vgpu_supported_types() {
            Ok(t) => t,
            Err(e) => return none_if_unsupported("nvmlDeviceGetSupportedVgpus", e),
        };
        Ok(types
            .iter()
            .take(MAX_TYPES)
            .filter_map(|t| {
                // A type without a name cannot be published; skip it.
                let name = t.name().ok()?;
                let gi_profile_id = t
                    .instance_profile_id()
                    .ok()
                    .filter(|&p| p != u32::MAX)
                    .map(GiProfileId);
                let max_per_gi = gi_profile_id
                    .and_then(|_| ffi_vgpu::max_instances_per_gi(self.driver.nvml(), t.id()).ok());
                Some(VgpuTypeInfo {
                    id: t.id(),
                    name,
                    gi_profile_id,
                    max_per_gpu: t.max_instances().ok(),
                    max_per_gi,
                })
            })
            .collect())
    }

    /// The ids of the vGPU types that may start on this GPU now; empty when the driver does
    /// not answer.
    pub fn creatable_vgpu_types(&self) -> Result<Vec<u32>, CallError> {
        match self.device.vgpu_creatable_types() {
            Ok(t) => Ok(t.iter().take(MAX_TYPES).map(|t| t.id()).collect()),
            Err(e) => none_if_unsupported("nvmlDeviceGetCreatableVgpus", e),
        }
    }
}

fn none_if_unsupported<T>(
    function: &'static str,
    e: nvml_wrapper::error::NvmlError,
) -> Result<Vec<T>, CallError> {
    let e = CallError::from_wrapper(function, e);
    if unsupported(&e) {
        Ok(Vec::new())
    } else {
        Err(e)
    }
}
