//! GPU-instance profiles, placements, capacity and GI lifecycle.
use std::ffi::c_uint;

use mig::{GiProfile, GiProfileId, GpuInstanceId, Placement};

use super::types::{
    GI_CAPS_GFX, GI_CAPS_P2P, GI_PROFILE_INFO_V2, GI_PROFILE_INFO_V3, GpuInstanceInfo,
    GpuInstanceProfileInfo, GpuInstanceProfileInfoV2, GpuInstanceProfileInfoV3, InstancePlacement,
    NvmlReturn, RawHandle, fill_name,
};
use super::{
    get, gpu_of, guard, non_null, put, put_slice, raw, resolve_gi, resolve_gpu, with_state,
    with_state_mut,
};
use crate::code::{NvmlCode, NvmlResult};
use crate::driver::Behaviour;
use crate::handle::Handle;
use crate::state::{SimGpu, SimState};

/// `NVML_GPU_INSTANCE_PROFILE_COUNT` of the newest header (13.2+, 0x12): profile indices at or
/// past it are INVALID_ARGUMENT, indices below it that the model lacks are NOT_SUPPORTED.
pub const GI_PROFILE_COUNT: u32 = 0x12;

/// The profile at NVML profile *index* `index` (the `NVML_GPU_INSTANCE_PROFILE_*` constant),
/// as this driver reports it.
fn profile_at_index(s: &SimState, g: &SimGpu, index: u32) -> NvmlResult<GiProfile> {
    let b = require_profiles(s, g)?;
    if index >= GI_PROFILE_COUNT {
        return Err(NvmlCode::INVALID_ARGUMENT);
    }
    g.model()
        .gi_profile_by_index(index)
        .and_then(|p| b.view(p))
        .ok_or(NvmlCode::NOT_SUPPORTED)
}

/// The profile-info calls need MIG enabled, except on drivers that answer them with MIG off
/// (`Behaviour::profiles_with_mig_off`); a GPU without MIG never answers them. Returns the
/// driver's behaviour, which the caller then views the profile through.
fn require_profiles(s: &SimState, g: &SimGpu) -> NvmlResult<Behaviour> {
    if g.model().gi_profiles.is_empty() {
        return Err(NvmlCode::NOT_SUPPORTED);
    }
    let b = s.behaviour(g);
    if !b.profiles_with_mig_off {
        g.require_mig()?;
    }
    Ok(b)
}

/// The profile with NVML profile *id* `id` as this driver reports it; a profile the driver
/// does not offer is an invalid argument, as an id the GPU lacks is.
fn profile_by_id(s: &SimState, g: &SimGpu, id: u32) -> NvmlResult<GiProfile> {
    view_by_id(g, &s.behaviour(g), id)
}

/// [`profile_by_id`] through a behaviour the caller already has.
fn view_by_id(g: &SimGpu, b: &Behaviour, id: u32) -> NvmlResult<GiProfile> {
    g.model()
        .gi_profile(GiProfileId(id))
        .and_then(|p| b.view(p))
        .ok_or(NvmlCode::INVALID_ARGUMENT)
}

/// `capabilities` of the v3 profile info: P2P as the catalog says, GFX for `+gfx` profiles.
fn gi_capabilities(p: &GiProfile) -> c_uint {
    let p2p = if p.p2p { GI_CAPS_P2P } else { 0 };
    let gfx = if p.variant.graphics() { GI_CAPS_GFX } else { 0 };
    p2p | gfx
}

fn profile_name(p: &GiProfile) -> String {
    format!("MIG {}", p.name)
}

fn info_v1(p: &GiProfile) -> GpuInstanceProfileInfo {
    GpuInstanceProfileInfo {
        id: p.id.0,
        isP2pSupported: c_uint::from(p.p2p),
        sliceCount: p.compute_slices,
        instanceCount: p.instance_count,
        multiprocessorCount: p.engines.sm,
        copyEngineCount: p.engines.ce,
        decoderCount: p.engines.dec,
        encoderCount: p.engines.enc,
        jpegCount: p.engines.jpeg,
        ofaCount: p.engines.ofa,
        memorySizeMB: p.memory_mib,
    }
}

/// Fill a versioned profile struct; the layout depends on `info->version`.
///
/// # Safety
/// `info` is NULL or points to a profile-info struct whose first word is an initialised
/// version and whose size is the one that version encodes (v2 and v3 are both 152 bytes).
unsafe fn put_versioned(info: *mut GpuInstanceProfileInfoV2, p: &GiProfile) -> NvmlResult<()> {
    // SAFETY: `info` is NULL (refused by `get`) or a struct whose first field is the version
    // word the caller set (this function's contract), so reading one `c_uint` there is valid.
    let version = unsafe { get(info.cast::<c_uint>())? };
    match version {
        GI_PROFILE_INFO_V2 => {
            let v1 = info_v1(p);
            let v2 = GpuInstanceProfileInfoV2 {
                version,
                id: v1.id,
                isP2pSupported: v1.isP2pSupported,
                sliceCount: v1.sliceCount,
                instanceCount: v1.instanceCount,
                multiprocessorCount: v1.multiprocessorCount,
                copyEngineCount: v1.copyEngineCount,
                decoderCount: v1.decoderCount,
                encoderCount: v1.encoderCount,
                jpegCount: v1.jpegCount,
                ofaCount: v1.ofaCount,
                memorySizeMB: v1.memorySizeMB,
                name: fill_name(&profile_name(p)),
            };
            // SAFETY: `info` is not NULL (its version word was read above) and its version says v2,
            // whose size the version encodes, so it holds a v2 struct (this function's contract).
            unsafe { put(info, v2) }
        }
        GI_PROFILE_INFO_V3 => {
            let v3 = GpuInstanceProfileInfoV3 {
                version,
                id: p.id.0,
                sliceCount: p.compute_slices,
                instanceCount: p.instance_count,
                multiprocessorCount: p.engines.sm,
                copyEngineCount: p.engines.ce,
                decoderCount: p.engines.dec,
                encoderCount: p.engines.enc,
                jpegCount: p.engines.jpeg,
                ofaCount: p.engines.ofa,
                memorySizeMB: p.memory_mib,
                name: fill_name(&profile_name(p)),
                capabilities: gi_capabilities(p),
            };
            // SAFETY: not NULL (its version was read above), and the version says v3; v2 and v3
            // are both 152 bytes (asserted in types.rs), so the caller's buffer holds a v3.
            unsafe { put(info.cast::<GpuInstanceProfileInfoV3>(), v3) }
        }
        // nvml.h documents INVALID_ARGUMENT for a bad version on these two calls.
        _ => Err(NvmlCode::INVALID_ARGUMENT),
    }
}

/// `nvmlDeviceGetGpuInstanceProfileInfo` (v1 struct; `profile` is the index constant).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstanceProfileInfo(
    device: RawHandle,
    profile: c_uint,
    info: *mut GpuInstanceProfileInfo,
) -> NvmlReturn {
    guard(|| {
        non_null(info)?;
        with_state(|s| {
            let p = profile_at_index(s, gpu_of(s, resolve_gpu(s, device)?)?, profile)?;
            // SAFETY: `info` was checked not NULL above and is a writable v1
            // `nvmlGpuInstanceProfileInfo_t` by the nvml.h contract.
            unsafe { put(info, info_v1(&p)) }
        })
    })
}

/// `nvmlDeviceGetGpuInstanceProfileInfoV` (v2 or v3 by `info->version`; index argument).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstanceProfileInfoV(
    device: RawHandle,
    profile: c_uint,
    info: *mut GpuInstanceProfileInfoV2,
) -> NvmlReturn {
    guard(|| {
        non_null(info)?;
        with_state(|s| {
            let p = profile_at_index(s, gpu_of(s, resolve_gpu(s, device)?)?, profile)?;
            // SAFETY: `info` was checked not NULL above; nvml.h makes it a struct of the v2 or v3
            // layout its version word names, which is what `put_versioned` needs.
            unsafe { put_versioned(info, &p) }
        })
    })
}

/// `nvmlDeviceGetGpuInstanceProfileInfoByIdV` (v2 or v3; profile *id* argument).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstanceProfileInfoByIdV(
    device: RawHandle,
    profile_id: c_uint,
    info: *mut GpuInstanceProfileInfoV2,
) -> NvmlReturn {
    guard(|| {
        non_null(info)?;
        with_state(|s| {
            let g = gpu_of(s, resolve_gpu(s, device)?)?;
            let b = require_profiles(s, g)?;
            let p = view_by_id(g, &b, profile_id)?;
            // SAFETY: `info` was checked not NULL above and, per nvml.h, is a struct of the layout
            // its version word names, as `put_versioned` needs.
            unsafe { put_versioned(info, &p) }
        })
    })
}

fn placements_of(p: &GiProfile) -> Vec<InstancePlacement> {
    p.placements
        .iter()
        .map(|pl| InstancePlacement {
            start: pl.start,
            size: pl.size,
        })
        .collect()
}

/// `nvmlDeviceGetGpuInstancePossiblePlacements_v2`: every legal placement, MIG on or off;
/// `placements == NULL` asks for the count. `*count` is output only (nvml.h).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstancePossiblePlacements_v2(
    device: RawHandle,
    profile_id: c_uint,
    placements: *mut InstancePlacement,
    count: *mut c_uint,
) -> NvmlReturn {
    guard(|| {
        non_null(count)?;
        with_state(|s| {
            let g = gpu_of(s, resolve_gpu(s, device)?)?;
            let p = profile_by_id(s, g, profile_id).map_err(|_| NvmlCode::NOT_SUPPORTED)?;
            let list = placements_of(&p);
            // SAFETY: `count` is not NULL (checked above) and writable (nvml.h); `placements` is
            // non-NULL only as a buffer for every legal placement, the documented maximum, which is
            // what `list` holds.
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

/// Deprecated `nvmlDeviceGetGpuInstancePossiblePlacements` (v1): needs MIG on and a buffer
/// sized for `instanceCount`, so at most `instanceCount` placements are written.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstancePossiblePlacements(
    device: RawHandle,
    profile_id: c_uint,
    placements: *mut InstancePlacement,
    count: *mut c_uint,
) -> NvmlReturn {
    guard(|| {
        non_null(count)?;
        non_null(placements)?;
        with_state(|s| {
            let g = gpu_of(s, resolve_gpu(s, device)?)?;
            g.require_mig()?;
            let p = profile_by_id(s, g, profile_id).map_err(|_| NvmlCode::NOT_SUPPORTED)?;
            let mut list = placements_of(&p);
            list.truncate(p.instance_count as usize);
            // SAFETY: both pointers were checked not NULL above; the v1 call documents a buffer of
            // `instanceCount` placements, and `list` is cut to that count.
            unsafe {
                put(count, list.len() as c_uint)?;
                put_slice(placements, &list)
            }
        })
    })
}

/// `nvmlDeviceGetGpuInstanceRemainingCapacity`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstanceRemainingCapacity(
    device: RawHandle,
    profile_id: c_uint,
    count: *mut c_uint,
) -> NvmlReturn {
    guard(|| {
        non_null(count)?;
        with_state(|s| {
            let g = gpu_of(s, resolve_gpu(s, device)?)?;
            g.require_mig()?;
            profile_by_id(s, g, profile_id)?;
            let behaviour = s.behaviour(g);
            let n = if behaviour.capacity_zero_when_empty && g.mig.is_empty()
                || !behaviour.allows_with(GiProfileId(profile_id), &g.mig)
            {
                0
            } else {
                g.mig.remaining_gi_capacity(GiProfileId(profile_id))?
            };
            // SAFETY: `count` was checked not NULL above and is a writable `unsigned int` by the
            // nvml.h contract.
            unsafe { put(count, n) }
        })
    })
}

fn create(
    s: &mut SimState,
    device: RawHandle,
    profile_id: u32,
    placement: Option<Placement>,
) -> NvmlResult<RawHandle> {
    let gpu = resolve_gpu(s, device)?;
    let g = gpu_of(s, gpu)?;
    g.require_mig()?;
    profile_by_id(s, g, profile_id)?;
    // A combination this driver refuses (pre-R510 `4g` with `3g`): no room, as a full GPU.
    if !s.behaviour(g).allows_with(GiProfileId(profile_id), &g.mig) {
        return Err(NvmlCode::INSUFFICIENT_RESOURCES);
    }
    let gi = s.gpu_mut(gpu)?.create_gi(profile_id, placement)?;
    Ok(raw(Handle::GpuInstance { gpu, gi }))
}

/// `nvmlDeviceCreateGpuInstance`: the modelled driver picks the placement.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceCreateGpuInstance(
    device: RawHandle,
    profile_id: c_uint,
    gpu_instance: *mut RawHandle,
) -> NvmlReturn {
    guard(|| {
        non_null(gpu_instance)?;
        // SAFETY: `gpu_instance` was checked not NULL before the state is touched and is a writable
        // `nvmlGpuInstance_t` by the nvml.h contract.
        with_state_mut(|s| unsafe { put(gpu_instance, create(s, device, profile_id, None)?) })
    })
}

/// `nvmlDeviceCreateGpuInstanceWithPlacement`: illegal start → INVALID_ARGUMENT, overlap or
/// no capacity → INSUFFICIENT_RESOURCES.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceCreateGpuInstanceWithPlacement(
    device: RawHandle,
    profile_id: c_uint,
    placement: *const InstancePlacement,
    gpu_instance: *mut RawHandle,
) -> NvmlReturn {
    guard(|| {
        non_null(gpu_instance)?;
        // SAFETY: `placement` is the caller's `const nvmlGpuInstancePlacement_t *`: NULL (refused
        // by `get`) or an initialised placement, per nvml.h.
        let pl = unsafe { get(placement)? };
        let pl = Placement {
            start: pl.start,
            size: pl.size,
        };
        // SAFETY: `gpu_instance` was checked not NULL before the state is touched and is a writable
        // `nvmlGpuInstance_t` by the nvml.h contract.
        with_state_mut(|s| unsafe { put(gpu_instance, create(s, device, profile_id, Some(pl))?) })
    })
}

/// `nvmlGpuInstanceDestroy`: IN_USE while it has CIs, processes or an active vGPU.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpuInstanceDestroy(gpu_instance: RawHandle) -> NvmlReturn {
    guard(|| {
        with_state_mut(|s| {
            let (gpu, gi) = resolve_gi(s, gpu_instance)?;
            s.gpu_mut(gpu)?.destroy_gi(gi)
        })
    })
}

/// `nvmlDeviceGetGpuInstances`: the GIs of one profile id. The buffer must hold the profile's
/// `instanceCount` handles; `*count` is output only (nvml.h).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstances(
    device: RawHandle,
    profile_id: c_uint,
    gpu_instances: *mut RawHandle,
    count: *mut c_uint,
) -> NvmlReturn {
    guard(|| {
        non_null(count)?;
        non_null(gpu_instances)?;
        with_state(|s| {
            let gpu = resolve_gpu(s, device)?;
            let g = gpu_of(s, gpu)?;
            g.require_mig()?;
            let p = profile_by_id(s, g, profile_id)?;
            let list: Vec<RawHandle> = g
                .mig
                .gpu_instances
                .values()
                .filter(|gi| gi.profile == p.id)
                .take(p.instance_count as usize)
                .map(|gi| raw(Handle::GpuInstance { gpu, gi: gi.id.0 }))
                .collect();
            // SAFETY: `count` and `gpu_instances` were checked not NULL above; nvml.h makes the
            // buffer hold the profile's `instanceCount` handles, and `list` is cut to that count.
            unsafe {
                put(count, list.len() as c_uint)?;
                put_slice(gpu_instances, &list)
            }
        })
    })
}

/// `nvmlDeviceGetGpuInstanceById`: NOT_FOUND if no GI has that id.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstanceById(
    device: RawHandle,
    id: c_uint,
    gpu_instance: *mut RawHandle,
) -> NvmlReturn {
    guard(|| {
        non_null(gpu_instance)?;
        with_state(|s| {
            let gpu = resolve_gpu(s, device)?;
            let g = gpu_of(s, gpu)?;
            g.require_mig()?;
            if !g.mig.gpu_instances.contains_key(&GpuInstanceId(id)) {
                return Err(NvmlCode::NOT_FOUND);
            }
            // SAFETY: `gpu_instance` was checked not NULL above and is a writable
            // `nvmlGpuInstance_t` by the nvml.h contract.
            unsafe { put(gpu_instance, raw(Handle::GpuInstance { gpu, gi: id })) }
        })
    })
}

/// `nvmlGpuInstanceGetInfo`: parent device, id, profile id, placement.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpuInstanceGetInfo(
    gpu_instance: RawHandle,
    info: *mut GpuInstanceInfo,
) -> NvmlReturn {
    guard(|| {
        non_null(info)?;
        with_state(|s| {
            let (gpu, gi) = resolve_gi(s, gpu_instance)?;
            let inst = gpu_of(s, gpu)?
                .gpu_instance(gi)
                .ok_or(NvmlCode::INVALID_ARGUMENT)?;
            let out = GpuInstanceInfo {
                device: raw(Handle::Device { gpu }),
                id: gi,
                profileId: inst.profile.0,
                placement: InstancePlacement {
                    start: inst.placement.start,
                    size: inst.placement.size,
                },
            };
            // SAFETY: `info` was checked not NULL above and is a writable `nvmlGpuInstanceInfo_t`
            // by the nvml.h contract.
            unsafe { put(info, out) }
        })
    })
}
