//! Helpers of the MIG tests (`ffi_mig.rs`, `ffi_compute.rs`): return codes, A100 profile ids,
//! and the raw nvml-wrapper-sys calls nvml-wrapper has no safe wrapper for.
#![allow(
    unsafe_code,
    reason = "nvml-wrapper has no safe wrapper for these MIG calls: the helpers call the C ABI as the agent does"
)]

use std::mem::{size_of, zeroed};
use std::ptr::null_mut;

use nvml_wrapper::{Device, Nvml};
use nvml_wrapper_sys::bindings::*;

pub const SUCCESS: u32 = nvmlReturn_enum_NVML_SUCCESS;
pub const INVALID_ARGUMENT: u32 = nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
pub const NOT_SUPPORTED: u32 = nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED;
pub const NOT_FOUND: u32 = nvmlReturn_enum_NVML_ERROR_NOT_FOUND;
pub const IN_USE: u32 = nvmlReturn_enum_NVML_ERROR_IN_USE;
pub const INSUFFICIENT_RESOURCES: u32 = nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_RESOURCES;

/// A100-40GB profile ids (nvidia-smi `-lgip`).
pub const GI_1G_5GB: u32 = 19;
pub const GI_3G_20GB: u32 = 9;
pub const GI_7G_40GB: u32 = 0;

/// The C structs these tests let the library fill: integers, arrays of `c_char` and handles
/// (raw pointers), nothing else.
pub trait PlainC: Copy {}
impl PlainC for nvmlGpuInstanceInfo_t {}
impl PlainC for nvmlComputeInstanceInfo_t {}
impl PlainC for nvmlGpuInstanceProfileInfo_v2_t {}
impl PlainC for nvmlGpuInstanceProfileInfo_v3_t {}
impl PlainC for nvmlComputeInstanceProfileInfo_t {}
impl PlainC for nvmlComputeInstanceProfileInfo_v2_t {}
impl PlainC for nvmlComputeInstanceProfileInfo_v3_t {}
impl PlainC for nvmlProcessInfo_t {}

/// An all-zero C struct to pass as an out-parameter (bindgen derives no `Default`).
pub fn zeroed_c<T: PlainC>() -> T {
    // SAFETY: `PlainC` is implemented only for structs of integers, `c_char` arrays and raw
    // pointers (nested the same way), for which all-zero bytes are valid: 0 and NULL.
    unsafe { zeroed() }
}

pub fn version_of<T>(v: u32) -> u32 {
    size_of::<T>() as u32 | (v << 24)
}

pub fn dev(nvml: &Nvml) -> (Device<'_>, nvmlDevice_t) {
    let d = nvml.device_by_index(0).unwrap();
    // SAFETY: the raw handle is only passed back to this library's calls while `nvml` is alive;
    // nothing frees or dereferences it on our side.
    let h = unsafe { d.handle() };
    (d, h)
}

pub fn create_gi(
    nvml: &Nvml,
    dev: nvmlDevice_t,
    profile: u32,
    start: Option<u32>,
) -> Result<nvmlGpuInstance_t, u32> {
    let mut gi: nvmlGpuInstance_t = null_mut();
    // SAFETY: `dev` is a live device handle, `pl` a local placement read by the call, and `gi` a
    // local handle slot the call writes.
    let rc = unsafe {
        match start {
            None => nvml
                .lib()
                .nvmlDeviceCreateGpuInstance(dev, profile, &mut gi),
            Some(start) => {
                let size = if profile == GI_1G_5GB { 1 } else { 4 };
                let pl = nvmlGpuInstancePlacement_t { start, size };
                nvml.lib()
                    .nvmlDeviceCreateGpuInstanceWithPlacement(dev, profile, &pl, &mut gi)
            }
        }
    };
    if rc == SUCCESS { Ok(gi) } else { Err(rc) }
}

pub fn gi_info(nvml: &Nvml, gi: nvmlGpuInstance_t) -> Result<nvmlGpuInstanceInfo_t, u32> {
    let mut info: nvmlGpuInstanceInfo_t = zeroed_c();
    // SAFETY: handles are decoded and checked by the library, never dereferenced; `info` is a local
    // `nvmlGpuInstanceInfo_t`, the struct the call writes.
    let rc = unsafe { nvml.lib().nvmlGpuInstanceGetInfo(gi, &mut info) };
    if rc == SUCCESS { Ok(info) } else { Err(rc) }
}

pub fn create_ci(
    nvml: &Nvml,
    gi: nvmlGpuInstance_t,
    profile: u32,
    start: Option<u32>,
) -> Result<nvmlComputeInstance_t, u32> {
    let mut ci: nvmlComputeInstance_t = null_mut();
    // SAFETY: `gi` is a GI handle of this library, `pl` a local placement read by the call, and
    // `ci` a local handle slot the call writes.
    let rc = unsafe {
        match start {
            None => nvml
                .lib()
                .nvmlGpuInstanceCreateComputeInstance(gi, profile, &mut ci),
            Some(start) => {
                let pl = nvmlComputeInstancePlacement_t { start, size: 1 };
                nvml.lib()
                    .nvmlGpuInstanceCreateComputeInstanceWithPlacement(gi, profile, &pl, &mut ci)
            }
        }
    };
    if rc == SUCCESS { Ok(ci) } else { Err(rc) }
}

pub fn ci_info(nvml: &Nvml, ci: nvmlComputeInstance_t) -> nvmlComputeInstanceInfo_t {
    let mut info: nvmlComputeInstanceInfo_t = zeroed_c();
    assert_eq!(
        // SAFETY: `ci` is a CI handle of this library; `info` is a local
        // `nvmlComputeInstanceInfo_t`, the struct the call writes.
        unsafe { nvml.lib().nvmlComputeInstanceGetInfo_v2(ci, &mut info) },
        SUCCESS
    );
    info
}
