//! Library lifetime, system queries and device enumeration.
use std::ffi::{c_char, c_int, c_uint};

use super::types::{NvmlReturn, RawHandle};
use super::{guard, init, put, put_str, raw, read_str, shutdown, with_state};
use crate::code::{NvmlCode, error_string};
use crate::handle::Handle;

/// `nvmlInit_v2`.
#[unsafe(no_mangle)]
pub extern "C" fn nvmlInit_v2() -> NvmlReturn {
    guard(init)
}

/// Legacy `nvmlInit` (same behaviour as v2 here).
#[unsafe(no_mangle)]
pub extern "C" fn nvmlInit() -> NvmlReturn {
    guard(init)
}

/// `nvmlInitWithFlags`: the flags (no-GPU / no-attach) change nothing in a simulation.
#[unsafe(no_mangle)]
pub extern "C" fn nvmlInitWithFlags(_flags: c_uint) -> NvmlReturn {
    guard(init)
}

/// `nvmlShutdown`. nvml-wrapper calls it from `Drop`, so it must exist.
#[unsafe(no_mangle)]
pub extern "C" fn nvmlShutdown() -> NvmlReturn {
    guard(shutdown)
}

/// `nvmlErrorString`: static text, valid forever, for any code (unknown → "Unknown Error").
#[unsafe(no_mangle)]
pub extern "C" fn nvmlErrorString(result: NvmlReturn) -> *const c_char {
    error_string(result).as_ptr()
}

/// `nvmlSystemGetDriverVersion`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetDriverVersion(
    version: *mut c_char,
    length: c_uint,
) -> NvmlReturn {
    // SAFETY: `version` and `length` are the caller's buffer and its byte size, unchanged: NULL or
    // `length` writable bytes (nvml.h), which `put_str` checks the text against.
    guard(|| with_state(|s| unsafe { put_str(version, length, &s.driver_version) }))
}

/// `nvmlSystemGetNVMLVersion`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetNVMLVersion(
    version: *mut c_char,
    length: c_uint,
) -> NvmlReturn {
    // SAFETY: `version` and `length` are the caller's buffer and its byte size, unchanged: NULL or
    // `length` writable bytes (nvml.h).
    guard(|| with_state(|s| unsafe { put_str(version, length, &s.nvml_version) }))
}

/// `nvmlSystemGetCudaDriverVersion`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetCudaDriverVersion(
    cuda_driver_version: *mut c_int,
) -> NvmlReturn {
    // SAFETY: `cuda_driver_version` is the caller's `int *` out-parameter: NULL (refused by `put`)
    // or writable, per nvml.h.
    guard(|| with_state(|s| unsafe { put(cuda_driver_version, s.cuda_driver_version) }))
}

/// `nvmlSystemGetCudaDriverVersion_v2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetCudaDriverVersion_v2(
    cuda_driver_version: *mut c_int,
) -> NvmlReturn {
    // SAFETY: `cuda_driver_version` is the caller's `int *` out-parameter: NULL (refused by `put`)
    // or writable, per nvml.h.
    guard(|| with_state(|s| unsafe { put(cuda_driver_version, s.cuda_driver_version) }))
}

/// `nvmlSystemGetProcessName`: the name `occupy --name` gave a simulated GPU process. As
/// NVIDIA documents it, a name longer than `length - 1` bytes is cut (not refused); an
/// unknown pid is `NOT_FOUND` (the real library reads any process of the host; here only the
/// simulated GPU processes exist).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetProcessName(
    pid: c_uint,
    name: *mut c_char,
    length: c_uint,
) -> NvmlReturn {
    guard(|| {
        super::non_null(name)?;
        if length == 0 {
            return Err(NvmlCode::INVALID_ARGUMENT);
        }
        with_state(|s| {
            let found = s
                .gpus
                .iter()
                .flat_map(|g| &g.processes)
                .find(|p| p.pid == pid)
                .ok_or(NvmlCode::NOT_FOUND)?;
            let mut end = found.name.len().min(length as usize - 1);
            while !found.name.is_char_boundary(end) {
                end -= 1;
            }
            // SAFETY: `name` was checked not NULL above and holds `length` bytes (nvml.h); the name
            // was cut to `length - 1` bytes so it always fits with its NUL.
            unsafe { put_str(name, length, &found.name[..end]) }
        })
    })
}

/// `nvmlDeviceGetCount*`: the number of simulated GPUs.
///
/// # Safety
/// `count` is NULL or valid for a write of one `unsigned int`.
unsafe fn device_count(count: *mut c_uint) -> NvmlReturn {
    // SAFETY: `count` comes from the exported `nvmlDeviceGetCount*`, whose caller gives NULL
    // (refused by `put`) or a writable `unsigned int`; that is this helper's own contract.
    guard(|| with_state(|s| unsafe { put(count, s.gpus.len() as c_uint) }))
}

/// `nvmlDeviceGetCount_v2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetCount_v2(device_count_out: *mut c_uint) -> NvmlReturn {
    // SAFETY: forwards this export's caller contract unchanged: `device_count_out` is NULL or a
    // writable `unsigned int`, all `device_count` needs.
    unsafe { device_count(device_count_out) }
}

/// Legacy `nvmlDeviceGetCount`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetCount(device_count_out: *mut c_uint) -> NvmlReturn {
    // SAFETY: the legacy call has the v2 signature, so its caller contract is the one
    // `device_count` needs.
    unsafe { device_count(device_count_out) }
}

/// `nvmlDeviceGetHandleByIndex*`: the handle of GPU `index`.
///
/// # Safety
/// `device` is NULL or valid for a write of one `nvmlDevice_t`.
unsafe fn handle_by_index(index: c_uint, device: *mut RawHandle) -> NvmlReturn {
    guard(|| {
        with_state(|s| {
            s.gpu(index)?;
            // SAFETY: `device` comes from the exported `nvmlDeviceGetHandleByIndex*`, whose caller
            // gives NULL (refused by `put`) or a writable `nvmlDevice_t`.
            unsafe { put(device, raw(Handle::Device { gpu: index })) }
        })
    })
}

/// `nvmlDeviceGetHandleByIndex_v2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetHandleByIndex_v2(
    index: c_uint,
    device: *mut RawHandle,
) -> NvmlReturn {
    // SAFETY: forwards this export's caller contract unchanged: `device` is NULL or a writable
    // `nvmlDevice_t`, all `handle_by_index` needs.
    unsafe { handle_by_index(index, device) }
}

/// Legacy `nvmlDeviceGetHandleByIndex`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetHandleByIndex(
    index: c_uint,
    device: *mut RawHandle,
) -> NvmlReturn {
    // SAFETY: the legacy call has the v2 signature, so its caller contract is the one
    // `handle_by_index` needs.
    unsafe { handle_by_index(index, device) }
}

/// `nvmlDeviceGetHandleByUUID`: GPU UUIDs and (while the CI lives) MIG device UUIDs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetHandleByUUID(
    uuid: *const c_char,
    device: *mut RawHandle,
) -> NvmlReturn {
    guard(|| {
        // SAFETY: `uuid` is the caller's `const char *`: NULL (refused by `read_str`) or a
        // NUL-terminated string, per nvml.h.
        let wanted = unsafe { read_str(uuid)? };
        super::non_null(device)?;
        with_state(|s| {
            for (i, g) in s.gpus.iter().enumerate() {
                let gpu = i as u32;
                if g.uuid.eq_ignore_ascii_case(&wanted) {
                    // SAFETY: `device` was checked not NULL above and is a writable `nvmlDevice_t`
                    // by the nvml.h contract.
                    return unsafe { put(device, raw(Handle::Device { gpu })) };
                }
                if !g.mig_mode.current {
                    continue;
                }
                for (gi, ci) in g.mig_device_list() {
                    if g.mig_uuid(gi, ci).eq_ignore_ascii_case(&wanted) {
                        // SAFETY: `device` was checked not NULL above and is a writable
                        // `nvmlDevice_t` by the nvml.h contract.
                        return unsafe { put(device, raw(Handle::MigDevice { gpu, gi, ci })) };
                    }
                }
            }
            Err(NvmlCode::NOT_FOUND)
        })
    })
}

/// Parse `domain:bus:device.function` in either the legacy (`0000:17:00.0`) or the current
/// (`00000000:17:00.0`) form, hex, case-insensitive.
fn parse_bus_id(s: &str) -> Option<(u32, u32, u32)> {
    let mut parts = s.trim().split(':');
    let (domain, bus, devfn) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let device = devfn.split('.').next()?;
    Some((
        u32::from_str_radix(domain, 16).ok()?,
        u32::from_str_radix(bus, 16).ok()?,
        u32::from_str_radix(device, 16).ok()?,
    ))
}

/// `nvmlDeviceGetHandleByPciBusId*`: the GPU at a PCI bus id in either text form.
///
/// # Safety
/// `pci_bus_id` is NULL or NUL-terminated; `device` is NULL or valid for a write of one
/// `nvmlDevice_t`.
unsafe fn handle_by_pci_bus_id(pci_bus_id: *const c_char, device: *mut RawHandle) -> NvmlReturn {
    guard(|| {
        // SAFETY: `pci_bus_id` is the caller's `const char *` from the exported lookups: NULL
        // (refused by `read_str`) or NUL-terminated, per nvml.h.
        let wanted = unsafe { read_str(pci_bus_id)? };
        super::non_null(device)?;
        let wanted = parse_bus_id(&wanted).ok_or(NvmlCode::INVALID_ARGUMENT)?;
        with_state(|s| {
            let gpu = s
                .gpus
                .iter()
                .position(|g| (0, g.pci_bus, 0) == wanted)
                .ok_or(NvmlCode::NOT_FOUND)?;
            // SAFETY: `device` was checked not NULL above and is a writable `nvmlDevice_t` by the
            // nvml.h contract.
            unsafe { put(device, raw(Handle::Device { gpu: gpu as u32 })) }
        })
    })
}

/// `nvmlDeviceGetHandleByPciBusId_v2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetHandleByPciBusId_v2(
    pci_bus_id: *const c_char,
    device: *mut RawHandle,
) -> NvmlReturn {
    // SAFETY: forwards this export's caller contract unchanged: a NULL or NUL-terminated bus id and
    // a NULL or writable `nvmlDevice_t`, all `handle_by_pci_bus_id` needs.
    unsafe { handle_by_pci_bus_id(pci_bus_id, device) }
}

/// Legacy `nvmlDeviceGetHandleByPciBusId`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetHandleByPciBusId(
    pci_bus_id: *const c_char,
    device: *mut RawHandle,
) -> NvmlReturn {
    // SAFETY: the legacy call has the v2 signature, so its caller contract is the one
    // `handle_by_pci_bus_id` needs.
    unsafe { handle_by_pci_bus_id(pci_bus_id, device) }
}

#[cfg(test)]
mod tests {
    use super::parse_bus_id;

    #[test]
    fn bus_ids_in_both_formats() {
        assert_eq!(parse_bus_id("00000000:17:00.0"), Some((0, 0x17, 0)));
        assert_eq!(parse_bus_id("0000:b1:00.0"), Some((0, 0xB1, 0)));
        assert_eq!(parse_bus_id("17:00.0"), None);
        assert_eq!(parse_bus_id("zz:17:00.0"), None);
    }
}
