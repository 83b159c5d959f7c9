//! Per-device queries (GPU and MIG device handles), processes, MIG mode and MIG device handles.
use std::ffi::{c_char, c_uint};

use super::types::{
    DeviceAttributes, MEMORY_V2, Memory, MemoryV2, NvmlReturn, PciInfo, ProcessInfo, ProcessInfoV1,
    RawHandle, fill_name,
};
use super::{
    get, gpu_of, guard, non_null, put, put_counted, put_str, raw, resolve, resolve_device,
    resolve_gpu, with_state, with_state_mut,
};
use crate::code::NvmlCode;
use crate::handle::Handle;
use crate::state::NO_INSTANCE;

/// `nvmlDeviceGetName`: `NVIDIA A100-PCIE-40GB`, or `NVIDIA A100-PCIE-40GB MIG 3g.20gb` for a MIG device.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetName(
    device: RawHandle,
    name: *mut c_char,
    length: c_uint,
) -> NvmlReturn {
    guard(|| {
        with_state(|s| {
            let (gpu, mig) = resolve_device(s, device)?;
            let g = gpu_of(s, gpu)?;
            let text = match mig {
                None => g.model().nvml_name.to_string(),
                Some((gi, ci)) => g.mig_name(gi, ci)?,
            };
            unsafe { put_str(name, length, &text) }
        })
    })
}

/// `nvmlDeviceGetUUID`: `GPU-…` or, for a MIG device, `MIG-…`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetUUID(
    device: RawHandle,
    uuid: *mut c_char,
    length: c_uint,
) -> NvmlReturn {
    guard(|| {
        with_state(|s| {
            let (gpu, mig) = resolve_device(s, device)?;
            let g = gpu_of(s, gpu)?;
            let text = match mig {
                None => g.uuid.clone(),
                Some((gi, ci)) => g.mig_uuid(gi, ci),
            };
            unsafe { put_str(uuid, length, &text) }
        })
    })
}

/// `nvmlDeviceGetSerial` (physical GPUs only).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetSerial(
    device: RawHandle,
    serial: *mut c_char,
    length: c_uint,
) -> NvmlReturn {
    guard(|| {
        with_state(|s| {
            let gpu = resolve_gpu(s, device)?;
            unsafe { put_str(serial, length, &gpu_of(s, gpu)?.serial) }
        })
    })
}

/// `nvmlDeviceGetIndex` (physical GPUs only).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetIndex(device: RawHandle, index: *mut c_uint) -> NvmlReturn {
    guard(|| with_state(|s| unsafe { put(index, resolve_gpu(s, device)?) }))
}

/// `nvmlDeviceGetMinorNumber`: `/dev/nvidiaN`, equal to the index here.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMinorNumber(
    device: RawHandle,
    minor_number: *mut c_uint,
) -> NvmlReturn {
    guard(|| with_state(|s| unsafe { put(minor_number, resolve_gpu(s, device)?) }))
}

/// `nvmlDeviceGetPciInfo_v3` (a MIG device reports its parent's PCI location).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetPciInfo_v3(
    device: RawHandle,
    pci: *mut PciInfo,
) -> NvmlReturn {
    guard(|| {
        with_state(|s| {
            let (gpu, _) = resolve_device(s, device)?;
            let g = gpu_of(s, gpu)?;
            let id = (u32::from(g.model().pci_device_id) << 16) | 0x10DE;
            let info = PciInfo {
                busIdLegacy: fill_name(&g.pci_bus_id_legacy()),
                domain: 0,
                bus: g.pci_bus,
                device: 0,
                pciDeviceId: id,
                // NVIDIA's own boards carry the device id as subsystem id with vendor 0x10DE.
                pciSubSystemId: id,
                busId: fill_name(&g.pci_bus_id()),
            };
            unsafe { put(pci, info) }
        })
    })
}

/// `nvmlDeviceGetMemoryInfo` (v1; nvml-wrapper ≤ 0.10). MIG devices report their GI's memory.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMemoryInfo(
    device: RawHandle,
    memory: *mut Memory,
) -> NvmlReturn {
    guard(|| {
        non_null(memory)?;
        with_state(|s| {
            let (gpu, mig) = resolve_device(s, device)?;
            let (total, used) = gpu_of(s, gpu)?.memory_bytes(mig)?;
            unsafe {
                put(
                    memory,
                    Memory {
                        total,
                        free: total.saturating_sub(used),
                        used,
                    },
                )
            }
        })
    })
}

/// `nvmlDeviceGetMemoryInfo_v2` (nvml-wrapper ≥ 0.11): `version` must be `nvmlMemory_v2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMemoryInfo_v2(
    device: RawHandle,
    memory: *mut MemoryV2,
) -> NvmlReturn {
    guard(|| {
        // SAFETY: the version word is the first field; the caller set it (nvml.h contract).
        let version = unsafe { get(memory.cast::<c_uint>())? };
        if version != MEMORY_V2 {
            return Err(NvmlCode::ARGUMENT_VERSION_MISMATCH);
        }
        with_state(|s| {
            let (gpu, mig) = resolve_device(s, device)?;
            let (total, used) = gpu_of(s, gpu)?.memory_bytes(mig)?;
            let info = MemoryV2 {
                version,
                total,
                reserved: 0,
                free: total.saturating_sub(used),
                used,
            };
            unsafe { put(memory, info) }
        })
    })
}

/// `nvmlDeviceGetAttributes_v2`: for a MIG device its CI/GI resources, for a GPU the whole chip.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetAttributes_v2(
    device: RawHandle,
    attributes: *mut DeviceAttributes,
) -> NvmlReturn {
    guard(|| {
        non_null(attributes)?;
        with_state(|s| {
            let (gpu, mig) = resolve_device(s, device)?;
            let g = gpu_of(s, gpu)?;
            let model = g.model();
            let attrs = match mig {
                Some((gi, ci)) => {
                    let gp = g.gi_profile_of(gi)?;
                    let inst = g
                        .compute_instance(gi, ci)
                        .ok_or(NvmlCode::INVALID_ARGUMENT)?;
                    let cp = gp.ci_profile(inst.profile).ok_or(NvmlCode::UNKNOWN)?;
                    DeviceAttributes {
                        multiprocessorCount: cp.sm_count,
                        sharedCopyEngineCount: gp.engines.ce,
                        sharedDecoderCount: gp.engines.dec,
                        sharedEncoderCount: gp.engines.enc,
                        sharedJpegCount: gp.engines.jpeg,
                        sharedOfaCount: gp.engines.ofa,
                        gpuInstanceSliceCount: gp.compute_slices,
                        computeInstanceSliceCount: cp.compute_slices,
                        memorySizeMB: gp.memory_mib,
                    }
                }
                None => {
                    // The full-GPU engines are those of the largest GI profile.
                    let full = model
                        .gi_profiles
                        .iter()
                        .max_by_key(|p| (p.compute_slices, p.memory_slices));
                    DeviceAttributes {
                        multiprocessorCount: model.sm_count,
                        sharedCopyEngineCount: full.map_or(0, |p| p.engines.ce),
                        sharedDecoderCount: full.map_or(0, |p| p.engines.dec),
                        sharedEncoderCount: full.map_or(0, |p| p.engines.enc),
                        sharedJpegCount: full.map_or(0, |p| p.engines.jpeg),
                        sharedOfaCount: full.map_or(0, |p| p.engines.ofa),
                        gpuInstanceSliceCount: model.compute_slices,
                        computeInstanceSliceCount: model.compute_slices,
                        memorySizeMB: model.memory_mib,
                    }
                }
            };
            unsafe { put(attributes, attrs) }
        })
    })
}

/// Processes visible through `device`: all of the GPU, or those of one MIG device. GI/CI ids
/// are `0xFFFFFFFF` while MIG is off.
fn process_infos(
    s: &crate::state::SimState,
    device: RawHandle,
) -> crate::code::NvmlResult<Vec<ProcessInfo>> {
    let (gpu, mig) = resolve_device(s, device)?;
    let g = gpu_of(s, gpu)?;
    Ok(g.processes_on(mig)
        .into_iter()
        .map(|p| ProcessInfo {
            pid: p.pid,
            usedGpuMemory: p.used_memory_mib * 1024 * 1024,
            gpuInstanceId: if g.mig_mode.current {
                p.gi.unwrap_or(NO_INSTANCE)
            } else {
                NO_INSTANCE
            },
            computeInstanceId: if g.mig_mode.current {
                p.ci.unwrap_or(NO_INSTANCE)
            } else {
                NO_INSTANCE
            },
        })
        .collect())
}

/// `nvmlDeviceGetComputeRunningProcesses_v3` (`*infoCount == 0` asks for the count).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetComputeRunningProcesses_v3(
    device: RawHandle,
    info_count: *mut c_uint,
    infos: *mut ProcessInfo,
) -> NvmlReturn {
    guard(|| with_state(|s| unsafe { put_counted(info_count, infos, &process_infos(s, device)?) }))
}

/// `nvmlDeviceGetComputeRunningProcesses_v2` (same struct as v3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetComputeRunningProcesses_v2(
    device: RawHandle,
    info_count: *mut c_uint,
    infos: *mut ProcessInfo,
) -> NvmlReturn {
    guard(|| with_state(|s| unsafe { put_counted(info_count, infos, &process_infos(s, device)?) }))
}

/// Legacy `nvmlDeviceGetComputeRunningProcesses` (v1 struct without instance ids).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetComputeRunningProcesses(
    device: RawHandle,
    info_count: *mut c_uint,
    infos: *mut ProcessInfoV1,
) -> NvmlReturn {
    guard(|| {
        with_state(|s| {
            let v1: Vec<ProcessInfoV1> = process_infos(s, device)?
                .into_iter()
                .map(|p| ProcessInfoV1 {
                    pid: p.pid,
                    usedGpuMemory: p.usedGpuMemory,
                })
                .collect();
            unsafe { put_counted(info_count, infos, &v1) }
        })
    })
}

/// `nvmlDeviceGetMigMode`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMigMode(
    device: RawHandle,
    current_mode: *mut c_uint,
    pending_mode: *mut c_uint,
) -> NvmlReturn {
    guard(|| {
        non_null(current_mode)?;
        non_null(pending_mode)?;
        with_state(|s| {
            let mode = gpu_of(s, resolve_gpu(s, device)?)?.mig_mode;
            unsafe {
                put(current_mode, c_uint::from(mode.current))?;
                put(pending_mode, c_uint::from(mode.pending))
            }
        })
    })
}

/// `nvmlDeviceSetMigMode`: SUCCESS means "accepted"; `*activationStatus` says whether it is
/// effective (see `MigActivation` for the configurable driver behaviour).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceSetMigMode(
    device: RawHandle,
    mode: c_uint,
    activation_status: *mut NvmlReturn,
) -> NvmlReturn {
    guard(|| {
        non_null(activation_status)?;
        let enable = match mode {
            0 => false,
            1 => true,
            _ => return Err(NvmlCode::INVALID_ARGUMENT),
        };
        with_state_mut(|s| {
            let gpu = resolve_gpu(s, device)?;
            let status = s.set_mig_mode(gpu, enable)?;
            unsafe { put(activation_status, status) }
        })
    })
}

/// `nvmlDeviceGetMaxMigDeviceCount`: compute slices while MIG is on, else 0.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMaxMigDeviceCount(
    device: RawHandle,
    count: *mut c_uint,
) -> NvmlReturn {
    guard(|| {
        with_state(|s| {
            let max = gpu_of(s, resolve_gpu(s, device)?)?.max_mig_devices();
            unsafe { put(count, max) }
        })
    })
}

/// `nvmlDeviceGetMigDeviceHandleByIndex`: index past the maximum → INVALID_ARGUMENT, an
/// index without a MIG device → NOT_FOUND.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMigDeviceHandleByIndex(
    device: RawHandle,
    index: c_uint,
    mig_device: *mut RawHandle,
) -> NvmlReturn {
    guard(|| {
        non_null(mig_device)?;
        with_state(|s| {
            let gpu = resolve_gpu(s, device)?;
            let g = gpu_of(s, gpu)?;
            if !g.mig_mode.current {
                return Err(NvmlCode::NOT_SUPPORTED);
            }
            if index >= g.max_mig_devices() {
                return Err(NvmlCode::INVALID_ARGUMENT);
            }
            let (gi, ci) = *g
                .mig_device_list()
                .get(index as usize)
                .ok_or(NvmlCode::NOT_FOUND)?;
            unsafe { put(mig_device, raw(Handle::MigDevice { gpu, gi, ci })) }
        })
    })
}

/// `nvmlDeviceGetDeviceHandleFromMigDeviceHandle`: a physical GPU handle is not a MIG device
/// → INVALID_ARGUMENT.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetDeviceHandleFromMigDeviceHandle(
    mig_device: RawHandle,
    device: *mut RawHandle,
) -> NvmlReturn {
    guard(|| {
        non_null(device)?;
        with_state(|s| match resolve(s, mig_device)? {
            Handle::MigDevice { gpu, .. } => unsafe { put(device, raw(Handle::Device { gpu })) },
            _ => Err(NvmlCode::INVALID_ARGUMENT),
        })
    })
}

/// `nvmlDeviceIsMigDeviceHandle`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceIsMigDeviceHandle(
    device: RawHandle,
    is_mig_device: *mut c_uint,
) -> NvmlReturn {
    guard(|| {
        with_state(|s| {
            let (_, mig) = resolve_device(s, device)?;
            unsafe { put(is_mig_device, c_uint::from(mig.is_some())) }
        })
    })
}

/// `nvmlDeviceGetGpuInstanceId` (MIG device handles only; a GPU → NOT_SUPPORTED).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstanceId(
    device: RawHandle,
    id: *mut c_uint,
) -> NvmlReturn {
    guard(|| {
        with_state(|s| match resolve_device(s, device)? {
            (_, Some((gi, _))) => unsafe { put(id, gi) },
            (_, None) => Err(NvmlCode::NOT_SUPPORTED),
        })
    })
}

/// `nvmlDeviceGetComputeInstanceId` (MIG device handles only; a GPU → NOT_SUPPORTED).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetComputeInstanceId(
    device: RawHandle,
    id: *mut c_uint,
) -> NvmlReturn {
    guard(|| {
        with_state(|s| match resolve_device(s, device)? {
            (_, Some((_, ci))) => unsafe { put(id, ci) },
            (_, None) => Err(NvmlCode::NOT_SUPPORTED),
        })
    })
}
