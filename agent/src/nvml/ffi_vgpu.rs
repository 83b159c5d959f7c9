//! The raw vGPU-type call nvml-wrapper 0.13 has no safe method for:
//! `nvmlVgpuTypeGetMaxInstancesPerGpuInstance` (how many vGPUs of a type one GPU instance
//! runs, time-sliced). Same rules as `ffi.rs`: the symbol is looked up before the call (a
//! driver without it gives [`RawError::MissingSymbol`], never a panic).
#![allow(
    unsafe_code,
    reason = "nvmlVgpuTypeGetMaxInstancesPerGpuInstance has no safe wrapper in nvml-wrapper 0.13; each block states its SAFETY"
)]
use std::ffi::c_uint;

use nvml_wrapper::Nvml;
use nvml_wrapper_sys::bindings::nvmlVgpuTypeMaxInstance_t;

use super::ffi::{RawError, check};

/// `nvmlVgpuTypeMaxInstance_v1` = `NVML_STRUCT_VERSION(VgpuTypeMaxInstance, 1)`: size 12 |
/// 1 << 24.
const VGPU_TYPE_MAX_INSTANCE_V1: c_uint = 0x0100_000C;

/// `nvmlVgpuTypeGetMaxInstancesPerGpuInstance(nvmlVgpuTypeMaxInstance_t *pMaxInstance)`:
/// `maxInstancePerGI` of vGPU type `type_id`.
pub(crate) fn max_instances_per_gi(nvml: &Nvml, type_id: u32) -> Result<u32, RawError> {
    let name = "nvmlVgpuTypeGetMaxInstancesPerGpuInstance";
    let f = match nvml
        .lib()
        .nvmlVgpuTypeGetMaxInstancesPerGpuInstance
        .as_ref()
    {
        Ok(f) => *f,
        Err(_) => return Err(RawError::MissingSymbol(name)),
    };
    let mut info = nvmlVgpuTypeMaxInstance_t {
        version: VGPU_TYPE_MAX_INSTANCE_V1,
        vgpuTypeId: type_id,
        maxInstancePerGI: 0,
    };
    // SAFETY: `info` is a local, initialised v1 struct (version and type id are the IN
    // fields) that the call reads and writes; it holds no pointers.
    let rc = unsafe { f(&mut info) };
    check(name, rc).map(|()| info.maxInstancePerGI)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_word_matches_the_bound_struct() {
        let size = std::mem::size_of::<nvmlVgpuTypeMaxInstance_t>() as c_uint;
        assert_eq!(VGPU_TYPE_MAX_INSTANCE_V1, size | (1 << 24));
    }
}
