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
            let (_, v) = s.vgpu(vgpu_instance)?;
            unsafe { put(vgpu_type_id, SimState::vgpu_type_id(&v.vgpu_type)) }
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
        let capacity = unsafe { get(size)? };
        with_state(|s| {
            let name = s
                .vgpu_type_name(vgpu_type_id)
                .ok_or(NvmlCode::INVALID_ARGUMENT)?
                .to_string();
            let needed = name.len() as c_uint + 1;
            if capacity < needed {
                unsafe { put(size, needed)? };
                return Err(NvmlCode::INSUFFICIENT_SIZE);
            }
            unsafe {
                put_str(vgpu_type_name, capacity, &name)?;
                put(size, needed)
            }
        })
    })
}
