//! vGPU types and time-sliced vGPUs (issue 18): the types a GPU supports and may create now,
//! their per-GPU and per-GI maxima, and per GPU instance the types it takes and the vGPUs it
//! runs. The rules are `SimGpu`'s (state/vgpu_rules.rs); the types and limits per model are
//! `crate::vgpu_types`. Signatures as NVIDIA's NVML API reference (vGPU Management).
use std::ffi::c_uint;

use super::types::{
    ACTIVE_VGPU_INSTANCE_INFO_V1, ActiveVgpuInstanceInfoV1, NvmlReturn, RawHandle,
    VGPU_TYPE_ID_INFO_V1, VGPU_TYPE_MAX_INSTANCE_V1, VgpuTypeIdInfoV1, VgpuTypeMaxInstanceV1,
};
use super::{get, gpu_of, guard, non_null, put, put_counted, resolve_gi, resolve_gpu, with_state};
use crate::code::{NvmlCode, NvmlResult};
use crate::state::{SimGpu, SimState};
use crate::vgpu_types::{self, TypeSpec};

/// `NVML_INVALID_GPU_INSTANCE_PROFILE_ID`: the GI profile of a type that is not MIG-backed.
const INVALID_GI_PROFILE_ID: c_uint = 0xFFFF_FFFF;

/// The first driver branch whose NVML has the per-GI vGPU calls, as simulated: R575, the
/// first to run MIG on the RTX PRO 6000 (NVIDIA MIG user guide, "≥ 575.51.03"). Which
/// release really added the calls is not stated in NVIDIA's documents found (inferred; see
/// docs/nvml-sim.md). Older drivers answer FUNCTION_NOT_FOUND, as a library whose entry
/// point exists but whose driver lacks the function does.
const PER_GI_CALLS_SINCE: u32 = 575;

/// FUNCTION_NOT_FOUND unless the simulated driver has the per-GI vGPU calls.
fn per_gi_calls(s: &SimState) -> NvmlResult<()> {
    match crate::driver::driver_major(&s.driver_version) {
        Some(major) if major >= PER_GI_CALLS_SINCE => Ok(()),
        _ => Err(NvmlCode::FUNCTION_NOT_FOUND),
    }
}

fn ids(gpu: &SimGpu, types: &[&TypeSpec]) -> Vec<c_uint> {
    types.iter().map(|t| t.id(gpu.model())).collect()
}

/// `nvmlDeviceGetSupportedVgpus(nvmlDevice_t device, unsigned int *vgpuCount,
/// nvmlVgpuTypeId_t *vgpuTypeIds)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetSupportedVgpus(
    device: RawHandle,
    vgpu_count: *mut c_uint,
    vgpu_type_ids: *mut c_uint,
) -> NvmlReturn {
    guard(|| {
        with_state(|s| {
            let g = gpu_of(s, resolve_gpu(s, device)?)?;
            let list = ids(g, &g.supported_types());
            // SAFETY: the caller's count/buffer pair unchanged (nvml.h), as `put_counted` needs.
            unsafe { put_counted(vgpu_count, vgpu_type_ids, &list) }
        })
    })
}

/// `nvmlDeviceGetCreatableVgpus(nvmlDevice_t device, unsigned int *vgpuCount,
/// nvmlVgpuTypeId_t *vgpuTypeIds)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetCreatableVgpus(
    device: RawHandle,
    vgpu_count: *mut c_uint,
    vgpu_type_ids: *mut c_uint,
) -> NvmlReturn {
    guard(|| {
        with_state(|s| {
            let g = gpu_of(s, resolve_gpu(s, device)?)?;
            let list = ids(g, &g.creatable_types());
            // SAFETY: the caller's count/buffer pair unchanged (nvml.h), as `put_counted` needs.
            unsafe { put_counted(vgpu_count, vgpu_type_ids, &list) }
        })
    })
}

/// `nvmlVgpuTypeGetMaxInstances(nvmlDevice_t device, nvmlVgpuTypeId_t vgpuTypeId,
/// unsigned int *vgpuInstanceCount)`: a type of another model is INVALID_ARGUMENT.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlVgpuTypeGetMaxInstances(
    device: RawHandle,
    vgpu_type_id: c_uint,
    vgpu_instance_count: *mut c_uint,
) -> NvmlReturn {
    guard(|| {
        non_null(vgpu_instance_count)?;
        with_state(|s| {
            let g = gpu_of(s, resolve_gpu(s, device)?)?;
            let (model, t) = vgpu_types::by_id(vgpu_type_id).ok_or(NvmlCode::INVALID_ARGUMENT)?;
            if model.key != g.model().key {
                return Err(NvmlCode::INVALID_ARGUMENT);
            }
            // SAFETY: checked not NULL above; a writable `unsigned int` (nvml.h).
            unsafe { put(vgpu_instance_count, t.max_per_gpu(model)) }
        })
    })
}

/// `nvmlVgpuTypeGetGpuInstanceProfileId(nvmlVgpuTypeId_t vgpuTypeId, unsigned int
/// *gpuInstanceProfileId)`: `NVML_INVALID_GPU_INSTANCE_PROFILE_ID` for a whole-GPU type.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlVgpuTypeGetGpuInstanceProfileId(
    vgpu_type_id: c_uint,
    gpu_instance_profile_id: *mut c_uint,
) -> NvmlReturn {
    guard(|| {
        non_null(gpu_instance_profile_id)?;
        let (model, t) = vgpu_types::by_id(vgpu_type_id).ok_or(NvmlCode::INVALID_ARGUMENT)?;
        let id = t
            .gi_profile_id(model)
            .map_or(INVALID_GI_PROFILE_ID, |p| p.0);
        // SAFETY: checked not NULL above; a writable `unsigned int` (nvml.h).
        unsafe { put(gpu_instance_profile_id, id) }
    })
}

/// `nvmlVgpuTypeGetMaxInstancesPerGpuInstance(nvmlVgpuTypeMaxInstance_t *pMaxInstance)`:
/// `version` must be `nvmlVgpuTypeMaxInstance_v1`; a type that does not run in a GI is
/// INVALID_ARGUMENT (what the driver answers there is not documented; inferred).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlVgpuTypeGetMaxInstancesPerGpuInstance(
    p_max_instance: *mut VgpuTypeMaxInstanceV1,
) -> NvmlReturn {
    guard(|| {
        // SAFETY: NULL is refused by `get`; otherwise the struct's first field is the version
        // word the caller set (nvml.h), so reading one `c_uint` there is valid.
        let version = unsafe { get(p_max_instance.cast::<c_uint>())? };
        if version != VGPU_TYPE_MAX_INSTANCE_V1 {
            return Err(NvmlCode::ARGUMENT_VERSION_MISMATCH);
        }
        // SAFETY: not NULL (read above) and its version says v1, the struct we mirror, which
        // the caller initialised (version and `vgpuTypeId` are IN fields).
        let mut info = unsafe { get(p_max_instance)? };
        with_state(per_gi_calls)?;
        let (_, t) = vgpu_types::by_id(info.vgpuTypeId).ok_or(NvmlCode::INVALID_ARGUMENT)?;
        info.maxInstancePerGI = t.max_per_gi().ok_or(NvmlCode::INVALID_ARGUMENT)?;
        // SAFETY: the same writable v1 struct.
        unsafe { put(p_max_instance, info) }
    })
}

/// The GI behind a handle, on a model whose GIs run time-sliced vGPUs (NOT_SUPPORTED
/// otherwise, as on GPUs without the feature).
fn timesliced_gi(s: &SimState, gpu_instance: RawHandle) -> NvmlResult<(&SimGpu, u32)> {
    per_gi_calls(s)?;
    let (gpu, gi) = resolve_gi(s, gpu_instance)?;
    let g = gpu_of(s, gpu)?;
    if !vgpu_types::mig_timeslicing(g.model()) {
        return Err(NvmlCode::NOT_SUPPORTED);
    }
    Ok((g, gi))
}

/// Write a list into one of the v1 `{version, count, pointer}` structs.
///
/// # Safety
/// `count` points at the struct's `vgpuCount` and `buf` is its pointer field, as the caller
/// filled them (nvml.h: `buf` holds `*count` elements, or the call is a size query).
unsafe fn put_listed(count: *mut c_uint, buf: *mut c_uint, items: &[c_uint]) -> NvmlResult<()> {
    // SAFETY: passed through from our own contract, which is `put_counted`'s.
    unsafe { put_counted(count, buf, items) }
}

/// `nvmlGpuInstanceGetCreatableVgpus(nvmlGpuInstance_t gpuInstance, nvmlVgpuTypeIdInfo_t
/// *pVgpus)`: the types this GI takes one more of now.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpuInstanceGetCreatableVgpus(
    gpu_instance: RawHandle,
    p_vgpus: *mut VgpuTypeIdInfoV1,
) -> NvmlReturn {
    guard(|| {
        // SAFETY: NULL is refused by `get`; the first field is the caller's version word.
        let version = unsafe { get(p_vgpus.cast::<c_uint>())? };
        if version != VGPU_TYPE_ID_INFO_V1 {
            return Err(NvmlCode::ARGUMENT_VERSION_MISMATCH);
        }
        // SAFETY: not NULL and a v1 struct the caller initialised (version says so).
        let info = unsafe { get(p_vgpus)? };
        with_state(|s| {
            let (g, gi) = timesliced_gi(s, gpu_instance)?;
            let list = ids(g, &g.creatable_in_gi(gi));
            // SAFETY: `vgpuCount` of the caller's v1 struct (not NULL, checked above) and its
            // pointer field as the caller set it.
            unsafe { put_listed(&raw mut (*p_vgpus).vgpuCount, info.vgpuTypeIds, &list) }
        })
    })
}

/// `nvmlGpuInstanceGetActiveVgpus(nvmlGpuInstance_t gpuInstance,
/// nvmlActiveVgpuInstanceInfo_t *pVgpuInstanceInfo)`: the vGPUs this GI runs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpuInstanceGetActiveVgpus(
    gpu_instance: RawHandle,
    p_vgpu_instance_info: *mut ActiveVgpuInstanceInfoV1,
) -> NvmlReturn {
    guard(|| {
        // SAFETY: NULL is refused by `get`; the first field is the caller's version word.
        let version = unsafe { get(p_vgpu_instance_info.cast::<c_uint>())? };
        if version != ACTIVE_VGPU_INSTANCE_INFO_V1 {
            return Err(NvmlCode::ARGUMENT_VERSION_MISMATCH);
        }
        // SAFETY: not NULL and a v1 struct the caller initialised (version says so).
        let info = unsafe { get(p_vgpu_instance_info)? };
        with_state(|s| {
            let (g, gi) = timesliced_gi(s, gpu_instance)?;
            let list = g.active_in_gi(gi);
            // SAFETY: `vgpuCount` of the caller's v1 struct (not NULL, checked above) and its
            // pointer field as the caller set it.
            unsafe {
                put_listed(
                    &raw mut (*p_vgpu_instance_info).vgpuCount,
                    info.vgpuInstances,
                    &list,
                )
            }
        })
    })
}
