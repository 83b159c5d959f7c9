//! Compute-instance profiles, placements, capacity and CI lifecycle (inside a GPU instance).
use std::ffi::c_uint;

use mig::{CiProfile, CiProfileId, ComputeInstanceId, GiProfile, Placement};

use super::types::{
    CI_PROFILE_INFO_V2, CI_PROFILE_INFO_V3, ComputeInstanceInfo, ComputeInstanceProfileInfo,
    ComputeInstanceProfileInfoV2, ComputeInstanceProfileInfoV3, InstancePlacement, NvmlReturn,
    RawHandle, fill_name,
};
use super::{
    get, gpu_of, guard, non_null, put, put_slice, raw, resolve_ci, resolve_gi, with_state,
    with_state_mut,
};
use crate::code::{NvmlCode, NvmlResult};
use crate::handle::Handle;
use crate::state::SimState;

/// `NVML_COMPUTE_INSTANCE_PROFILE_COUNT` of the newest header (0x9).
pub const CI_PROFILE_COUNT: u32 = 0x9;
/// `NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_COUNT`: only `..._SHARED` (0) exists.
pub const CI_ENGINE_PROFILE_COUNT: u32 = 0x1;

/// The GI profile of GI handle `gpu_instance` and the CI profile `profile` inside it.
fn ci_profile(
    s: &SimState,
    gpu_instance: RawHandle,
    profile: u32,
) -> NvmlResult<(&'static GiProfile, &'static CiProfile)> {
    let (gpu, gi) = resolve_gi(s, gpu_instance)?;
    let gp = gpu_of(s, gpu)?.gi_profile_of(gi)?;
    if profile >= CI_PROFILE_COUNT {
        return Err(NvmlCode::INVALID_ARGUMENT);
    }
    let cp = gp
        .ci_profile(CiProfileId(profile))
        .ok_or(NvmlCode::NOT_SUPPORTED)?;
    Ok((gp, cp))
}

fn info_v1(gp: &GiProfile, cp: &CiProfile) -> ComputeInstanceProfileInfo {
    ComputeInstanceProfileInfo {
        id: cp.id.0,
        sliceCount: cp.compute_slices,
        instanceCount: cp.instance_count,
        multiprocessorCount: cp.sm_count,
        sharedCopyEngineCount: gp.engines.ce,
        sharedDecoderCount: gp.engines.dec,
        sharedEncoderCount: gp.engines.enc,
        sharedJpegCount: gp.engines.jpeg,
        sharedOfaCount: gp.engines.ofa,
    }
}

/// `nvmlGpuInstanceGetComputeInstanceProfileInfo` (v1 struct).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpuInstanceGetComputeInstanceProfileInfo(
    gpu_instance: RawHandle,
    profile: c_uint,
    eng_profile: c_uint,
    info: *mut ComputeInstanceProfileInfo,
) -> NvmlReturn {
    guard(|| {
        non_null(info)?;
        if eng_profile >= CI_ENGINE_PROFILE_COUNT {
            return Err(NvmlCode::INVALID_ARGUMENT);
        }
        with_state(|s| {
            let (gp, cp) = ci_profile(s, gpu_instance, profile)?;
            unsafe { put(info, info_v1(gp, cp)) }
        })
    })
}

/// `nvmlGpuInstanceGetComputeInstanceProfileInfoV` (v2 or v3 by `info->version`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpuInstanceGetComputeInstanceProfileInfoV(
    gpu_instance: RawHandle,
    profile: c_uint,
    eng_profile: c_uint,
    info: *mut ComputeInstanceProfileInfoV2,
) -> NvmlReturn {
    guard(|| {
        // SAFETY: the version word is the first field; the caller set it.
        let version = unsafe { get(info.cast::<c_uint>())? };
        if eng_profile >= CI_ENGINE_PROFILE_COUNT
            || (version != CI_PROFILE_INFO_V2 && version != CI_PROFILE_INFO_V3)
        {
            return Err(NvmlCode::INVALID_ARGUMENT);
        }
        with_state(|s| {
            let (gp, cp) = ci_profile(s, gpu_instance, profile)?;
            let v1 = info_v1(gp, cp);
            let name = fill_name(&format!("MIG {}", cp.name));
            let v2 = ComputeInstanceProfileInfoV2 {
                version,
                id: v1.id,
                sliceCount: v1.sliceCount,
                instanceCount: v1.instanceCount,
                multiprocessorCount: v1.multiprocessorCount,
                sharedCopyEngineCount: v1.sharedCopyEngineCount,
                sharedDecoderCount: v1.sharedDecoderCount,
                sharedEncoderCount: v1.sharedEncoderCount,
                sharedJpegCount: v1.sharedJpegCount,
                sharedOfaCount: v1.sharedOfaCount,
                name,
            };
            if version == CI_PROFILE_INFO_V2 {
                unsafe { put(info, v2) }
            } else {
                // v3 = v2 + capabilities (no graphics-capable CI profiles are modelled).
                let v3 = ComputeInstanceProfileInfoV3 {
                    version,
                    id: v2.id,
                    sliceCount: v2.sliceCount,
                    instanceCount: v2.instanceCount,
                    multiprocessorCount: v2.multiprocessorCount,
                    sharedCopyEngineCount: v2.sharedCopyEngineCount,
                    sharedDecoderCount: v2.sharedDecoderCount,
                    sharedEncoderCount: v2.sharedEncoderCount,
                    sharedJpegCount: v2.sharedJpegCount,
                    sharedOfaCount: v2.sharedOfaCount,
                    name: v2.name,
                    capabilities: 0,
                };
                // SAFETY: the version word says the caller passed a v3 struct (140 bytes).
                unsafe { put(info.cast::<ComputeInstanceProfileInfoV3>(), v3) }
            }
        })
    })
}

/// `nvmlGpuInstanceGetComputeInstancePossiblePlacements`: every legal placement (compute
/// slices inside the GI); `placements == NULL` asks for the count.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpuInstanceGetComputeInstancePossiblePlacements(
    gpu_instance: RawHandle,
    profile_id: c_uint,
    placements: *mut InstancePlacement,
    count: *mut c_uint,
) -> NvmlReturn {
    guard(|| {
        non_null(count)?;
        with_state(|s| {
            let (_, cp) = ci_profile(s, gpu_instance, profile_id)?;
            let list: Vec<InstancePlacement> = cp
                .placements
                .iter()
                .map(|p| InstancePlacement {
                    start: p.start,
                    size: p.size,
                })
                .collect();
            unsafe {
                put(count, list.len() as c_uint)?;
                if placements.is_null() {
                    Ok(())
                } else {
                    put_slice(placements, &list)
                }
            }
        })
    })
}

/// `nvmlGpuInstanceGetComputeInstanceRemainingCapacity`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpuInstanceGetComputeInstanceRemainingCapacity(
    gpu_instance: RawHandle,
    profile_id: c_uint,
    count: *mut c_uint,
) -> NvmlReturn {
    guard(|| {
        non_null(count)?;
        with_state(|s| {
            let (gpu, gi) = resolve_gi(s, gpu_instance)?;
            ci_profile(s, gpu_instance, profile_id)?;
            let n = gpu_of(s, gpu)?
                .mig
                .remaining_ci_capacity(mig::GpuInstanceId(gi), CiProfileId(profile_id))?;
            unsafe { put(count, n) }
        })
    })
}

fn create(
    s: &mut SimState,
    gpu_instance: RawHandle,
    profile_id: u32,
    placement: Option<Placement>,
) -> NvmlResult<RawHandle> {
    let (gpu, gi) = resolve_gi(s, gpu_instance)?;
    ci_profile(s, gpu_instance, profile_id)?;
    let ci = s.gpu_mut(gpu)?.create_ci(gi, profile_id, placement)?;
    Ok(raw(Handle::ComputeInstance { gpu, gi, ci }))
}

/// `nvmlGpuInstanceCreateComputeInstance`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpuInstanceCreateComputeInstance(
    gpu_instance: RawHandle,
    profile_id: c_uint,
    compute_instance: *mut RawHandle,
) -> NvmlReturn {
    guard(|| {
        non_null(compute_instance)?;
        with_state_mut(|s| unsafe {
            put(compute_instance, create(s, gpu_instance, profile_id, None)?)
        })
    })
}

/// `nvmlGpuInstanceCreateComputeInstanceWithPlacement`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpuInstanceCreateComputeInstanceWithPlacement(
    gpu_instance: RawHandle,
    profile_id: c_uint,
    placement: *const InstancePlacement,
    compute_instance: *mut RawHandle,
) -> NvmlReturn {
    guard(|| {
        non_null(compute_instance)?;
        let pl = unsafe { get(placement)? };
        let pl = Placement {
            start: pl.start,
            size: pl.size,
        };
        with_state_mut(|s| unsafe {
            put(
                compute_instance,
                create(s, gpu_instance, profile_id, Some(pl))?,
            )
        })
    })
}

/// `nvmlComputeInstanceDestroy`: IN_USE while processes run on it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlComputeInstanceDestroy(compute_instance: RawHandle) -> NvmlReturn {
    guard(|| {
        with_state_mut(|s| {
            let (gpu, gi, ci) = resolve_ci(s, compute_instance)?;
            s.gpu_mut(gpu)?.destroy_ci(gi, ci)
        })
    })
}

/// `nvmlGpuInstanceGetComputeInstances`: the CIs of one profile; the buffer must hold the
/// profile's `instanceCount` handles; `*count` is output only (nvml.h).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpuInstanceGetComputeInstances(
    gpu_instance: RawHandle,
    profile_id: c_uint,
    compute_instances: *mut RawHandle,
    count: *mut c_uint,
) -> NvmlReturn {
    guard(|| {
        non_null(count)?;
        non_null(compute_instances)?;
        with_state(|s| {
            let (gpu, gi) = resolve_gi(s, gpu_instance)?;
            let (_, cp) = ci_profile(s, gpu_instance, profile_id)?;
            let inst = gpu_of(s, gpu)?
                .gpu_instance(gi)
                .ok_or(NvmlCode::INVALID_ARGUMENT)?;
            let list: Vec<RawHandle> = inst
                .compute_instances
                .values()
                .filter(|c| c.profile == cp.id)
                .take(cp.instance_count as usize)
                .map(|c| {
                    raw(Handle::ComputeInstance {
                        gpu,
                        gi,
                        ci: c.id.0,
                    })
                })
                .collect();
            unsafe {
                put(count, list.len() as c_uint)?;
                put_slice(compute_instances, &list)
            }
        })
    })
}

/// `nvmlGpuInstanceGetComputeInstanceById`: NOT_FOUND if absent.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpuInstanceGetComputeInstanceById(
    gpu_instance: RawHandle,
    id: c_uint,
    compute_instance: *mut RawHandle,
) -> NvmlReturn {
    guard(|| {
        non_null(compute_instance)?;
        with_state(|s| {
            let (gpu, gi) = resolve_gi(s, gpu_instance)?;
            let inst = gpu_of(s, gpu)?
                .gpu_instance(gi)
                .ok_or(NvmlCode::INVALID_ARGUMENT)?;
            if !inst.compute_instances.contains_key(&ComputeInstanceId(id)) {
                return Err(NvmlCode::NOT_FOUND);
            }
            unsafe {
                put(
                    compute_instance,
                    raw(Handle::ComputeInstance { gpu, gi, ci: id }),
                )
            }
        })
    })
}

unsafe fn ci_info(compute_instance: RawHandle, info: *mut ComputeInstanceInfo) -> NvmlReturn {
    guard(|| {
        non_null(info)?;
        with_state(|s| {
            let (gpu, gi, ci) = resolve_ci(s, compute_instance)?;
            let inst = gpu_of(s, gpu)?
                .compute_instance(gi, ci)
                .ok_or(NvmlCode::INVALID_ARGUMENT)?;
            let out = ComputeInstanceInfo {
                device: raw(Handle::Device { gpu }),
                gpuInstance: raw(Handle::GpuInstance { gpu, gi }),
                id: ci,
                profileId: inst.profile.0,
                placement: InstancePlacement {
                    start: inst.placement.start,
                    size: inst.placement.size,
                },
            };
            unsafe { put(info, out) }
        })
    })
}

/// `nvmlComputeInstanceGetInfo_v2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlComputeInstanceGetInfo_v2(
    compute_instance: RawHandle,
    info: *mut ComputeInstanceInfo,
) -> NvmlReturn {
    unsafe { ci_info(compute_instance, info) }
}

/// Legacy `nvmlComputeInstanceGetInfo` (same struct).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlComputeInstanceGetInfo(
    compute_instance: RawHandle,
    info: *mut ComputeInstanceInfo,
) -> NvmlReturn {
    unsafe { ci_info(compute_instance, info) }
}
