//! Host-side vGPU queries for MIG-backed vGPUs started with `nvml-sim occupy --vgpu`.
//!
//! Only what a host agent needs to tell which VM's vGPU sits on which GPU instance.
use std::ffi::{c_char, c_uint};

use super::types::{NvmlReturn, RawHandle};
use super::{get, gpu_of, guard, non_null, put, put_counted, put_str, resolve_gpu, with_state};
use crate::code::NvmlCode;
use crate::state::SimState;

/// `nvmlDeviceGetActiveVgpus`: `*vgpuCount` in = capacity, out = number active.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetActiveVgpus(
    device: RawHandle,
    vgpu_count: *mut c_uint,
    vgpu_instances: *mut c_uint,
) -> NvmlReturn {
    guard(|| {
        with_state(|s| {
            let g = gpu_of(s, resolve_gpu(s, device)?)?;
            let ids: Vec<c_uint> = g.vgpus.iter().map(|v| v.instance).collect();
            // SAFETY: `vgpu_count` and `vgpu_instances` are the caller's count/buffer pair
            // unchanged: `*vgpu_count` readable and writable, the buffer holding that many ids
            // (nvml.h), as `put_counted` requires.
            unsafe { put_counted(vgpu_count, vgpu_instances, &ids) }
        })
    })
}

/// `nvmlVgpuInstanceGetType`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlVgpuInstanceGetType(
    vgpu_instance: c_uint,
    vgpu_type_id: *mut c_uint,
) -> NvmlReturn {
    guard(|| {
        non_null(vgpu_type_id)?;
        with_state(|s| {
            let (gpu, v) = s.vgpu(vgpu_instance)?;
            let id = SimState::vgpu_type_id_on(gpu_of(s, gpu)?, &v.vgpu_type);
            // SAFETY: `vgpu_type_id` was checked not NULL above and is a writable
            // `nvmlVgpuTypeId_t` by the nvml.h contract.
            unsafe { put(vgpu_type_id, id) }
        })
    })
}

/// `nvmlVgpuInstanceGetVmID`: the VM name as a domain id, or its BIOS UUID as a UUID.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlVgpuInstanceGetVmID(
    vgpu_instance: c_uint,
    vm_id: *mut c_char,
    size: c_uint,
    vm_id_type: *mut c_uint,
) -> NvmlReturn {
    guard(|| {
        non_null(vm_id_type)?;
        with_state(|s| {
            let (_, v) = s.vgpu(vgpu_instance)?;
            // SAFETY: `vm_id` and `size` are the caller's buffer and its byte size (NULL or `size`
            // writable bytes, checked by `put_str`); `vm_id_type` was checked not NULL above and is
            // writable (nvml.h).
            unsafe {
                put_str(vm_id, size, &v.vm)?;
                put(vm_id_type, v.vm_id_type())
            }
        })
    })
}

/// `nvmlVgpuInstanceGetGpuInstanceId`: the GI backing a MIG-backed vGPU.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlVgpuInstanceGetGpuInstanceId(
    vgpu_instance: c_uint,
    gpu_instance_id: *mut c_uint,
) -> NvmlReturn {
    guard(|| {
        non_null(gpu_instance_id)?;
        with_state(|s| {
            let (_, v) = s.vgpu(vgpu_instance)?;
            // SAFETY: `gpu_instance_id` was checked not NULL above and is a writable `unsigned int`
            // by the nvml.h contract.
            unsafe { put(gpu_instance_id, v.gi) }
        })
    })
}

/// `nvmlVgpuTypeGetName`: `*size` in = buffer bytes, out = bytes needed (with NUL) when too small.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlVgpuTypeGetName(
    vgpu_type_id: c_uint,
    vgpu_type_name: *mut c_char,
    size: *mut c_uint,
) -> NvmlReturn {
    guard(|| {
        // SAFETY: `size` is the caller's `unsigned int *` in/out parameter: NULL (refused by `get`)
        // or an initialised, writable value, per nvml.h.
        let capacity = unsafe { get(size)? };
        with_state(|s| {
            let name = s
                .vgpu_type_name(vgpu_type_id)
                .ok_or(NvmlCode::INVALID_ARGUMENT)?
                .to_string();
            let needed = name.len() as c_uint + 1;
            if capacity < needed {
                // SAFETY: `size` was read by `get` above, so it is not NULL, and nvml.h makes it
                // writable.
                unsafe { put(size, needed)? };
                return Err(NvmlCode::INSUFFICIENT_SIZE);
            }
            // SAFETY: `vgpu_type_name` holds `capacity` bytes (the `*size` the caller declared,
            // nvml.h) and `capacity >= needed` was checked above; `size` is not NULL (read above)
            // and writable.
            unsafe {
                put_str(vgpu_type_name, capacity, &name)?;
                put(size, needed)
            }
        })
    })
}
