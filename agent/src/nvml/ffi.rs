//! The raw NVML calls that `nvml-wrapper` 0.13 has no safe method for (GPU/compute-instance
//! management, instance listing, placements, MIG-device ids), wrapped once.
//!
//! With `daemon::sys` (a few glibc calls), this is the only module of the agent allowed to
//! contain `unsafe` (the workspace denies `unsafe_code` everywhere else). Two rules hold for
//! every function here:
//! - the symbol is looked up through the `Result` field of `NvmlLib` **before** calling it:
//!   `NvmlLib`'s generated methods `.expect()` the symbol and would panic on a driver that
//!   lacks it (nvml-mig.md §5); a missing symbol becomes [`RawError::MissingSymbol`];
//! - handles only travel between the `Nvml` that produced them and the same loaded library,
//!   and the safe layer above (`nvml::mod`) ties every handle to the lifetime of that `Nvml`.
//!
//! Nothing here interprets return codes beyond success/failure: that is the safe layer's job.
#![allow(
    unsafe_code,
    reason = "the NVML calls nvml-wrapper 0.13 does not wrap safely; each block states its SAFETY"
)]
use std::ffi::{CStr, c_char, c_uint};
use std::ptr;

use mig::EngineCounts;
use nvml_wrapper::{Device, Nvml};
use nvml_wrapper_sys::bindings::{
    NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED, nvmlComputeInstance_t, nvmlComputeInstanceInfo_t,
    nvmlComputeInstancePlacement_t, nvmlComputeInstanceProfileInfo_t,
    nvmlComputeInstanceProfileInfo_v2_t, nvmlDevice_t, nvmlGpuInstance_t, nvmlGpuInstanceInfo_t,
    nvmlGpuInstancePlacement_t, nvmlGpuInstanceProfileInfo_t, nvmlGpuInstanceProfileInfo_v2_t,
    nvmlReturn_t,
};

/// `NVML_SUCCESS`.
const SUCCESS: nvmlReturn_t = 0;
/// `NVML_ERROR_INSUFFICIENT_SIZE`: the answer of a count query that found something.
const INSUFFICIENT_SIZE: nvmlReturn_t = 7;

/// `NVML_STRUCT_VERSION(GpuInstanceProfileInfo, 2)`: size 152 | 2 << 24 (nvml-mig.md §1).
const GI_PROFILE_INFO_V2: c_uint = 0x0200_0098;
/// `NVML_STRUCT_VERSION(ComputeInstanceProfileInfo, 2)`: size 136 | 2 << 24.
const CI_PROFILE_INFO_V2: c_uint = 0x0200_0088;

/// Upper bound on instances of one profile we ever ask NVML to return in one buffer. NVML
/// wants room for `instanceCount` (at most 8 on every MIG GPU so far); 64 leaves headroom.
const INSTANCE_BUFFER: usize = 64;

/// Why a raw call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawError {
    /// The loaded library does not export this function (older driver, or not NVML).
    MissingSymbol(&'static str),
    /// The function ran and returned this non-success `nvmlReturn_t`.
    Code { function: &'static str, code: u32 },
}

/// Look the symbol up first; return [`RawError::MissingSymbol`] instead of panicking.
macro_rules! sym {
    ($nvml:expr, $name:ident) => {
        match $nvml.lib().$name.as_ref() {
            Ok(f) => *f,
            Err(_) => return Err(RawError::MissingSymbol(stringify!($name))),
        }
    };
}

pub(super) fn check(function: &'static str, code: nvmlReturn_t) -> Result<(), RawError> {
    if code == SUCCESS {
        Ok(())
    } else {
        Err(RawError::Code { function, code })
    }
}

/// Whether the loaded library exports `nvmlShutdown`. `Drop for Nvml` calls it through the
/// panicking generated method, so a library without it must never be dropped normally.
pub(crate) fn has_shutdown(nvml: &Nvml) -> bool {
    nvml.lib().nvmlShutdown.is_ok()
}

/// A GPU-instance handle as NVML hands it out. Opaque; never dereferenced here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawGi(nvmlGpuInstance_t);

/// A compute-instance handle as NVML hands it out. Opaque; never dereferenced here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawCi(nvmlComputeInstance_t);

/// What `nvmlDeviceGetGpuInstanceProfileInfo(V)` says about one GI profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawGiProfile {
    pub id: u32,
    pub p2p: bool,
    pub slice_count: u32,
    pub instance_count: u32,
    pub engines: EngineCounts,
    pub memory_mib: u64,
    /// The driver's name (`MIG 3g.20gb`); `None` when only the v1 call (no name) exists.
    pub name: Option<String>,
}

/// What `nvmlGpuInstanceGetComputeInstanceProfileInfo(V)` says about one CI profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawCiProfile {
    pub id: u32,
    pub slice_count: u32,
    pub instance_count: u32,
    /// Exclusive SMs; the other engines are shared with the rest of the GI.
    pub engines: EngineCounts,
    pub name: Option<String>,
}

/// `nvmlGpuInstanceInfo_t` / `nvmlComputeInstanceInfo_t` without the handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawInstanceInfo {
    pub id: u32,
    pub profile_id: u32,
    pub start: u32,
    pub size: u32,
}

/// The raw handle of a device, to pass back to the library that produced it.
pub(super) fn dev(device: &Device<'_>) -> nvmlDevice_t {
    // SAFETY: `Device::handle` is unsafe only because the caller could misuse the handle
    // (use it after the `Nvml` is gone, or with another library). We pass it straight to a
    // function of the same `Nvml`, which outlives `device` by its lifetime parameter.
    unsafe { device.handle() }
}

/// Decode a NUL-terminated name buffer filled by NVML; lossy so a bad byte never fails a listing.
fn name_from(buf: &[c_char]) -> Option<String> {
    let bytes: Vec<u8> = buf
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    if bytes.is_empty() {
        None
    } else {
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// GI profile by NVML profile *index*: the v2 struct (with the driver's name) when the
/// library has `nvmlDeviceGetGpuInstanceProfileInfoV`, else the v1 call.
pub(crate) fn gi_profile_info(
    nvml: &Nvml,
    device: &Device<'_>,
    index: u32,
) -> Result<RawGiProfile, RawError> {
    if let Ok(f) = nvml.lib().nvmlDeviceGetGpuInstanceProfileInfoV.as_ref() {
        // SAFETY: an all-zero struct of plain integers and a char array is a valid value.
        let mut info: nvmlGpuInstanceProfileInfo_v2_t = unsafe { std::mem::zeroed() };
        info.version = GI_PROFILE_INFO_V2;
        // SAFETY: `info` is a live, correctly sized v2 struct whose version word says so;
        // the device handle comes from this library (see `dev`).
        let code = unsafe { f(dev(device), index, &mut info) };
        check("nvmlDeviceGetGpuInstanceProfileInfoV", code)?;
        return Ok(RawGiProfile {
            id: info.id,
            p2p: info.isP2pSupported != 0,
            slice_count: info.sliceCount,
            instance_count: info.instanceCount,
            engines: EngineCounts {
                sm: info.multiprocessorCount,
                ce: info.copyEngineCount,
                dec: info.decoderCount,
                enc: info.encoderCount,
                jpeg: info.jpegCount,
                ofa: info.ofaCount,
            },
            memory_mib: info.memorySizeMB,
            name: name_from(&info.name),
        });
    }
    let f = sym!(nvml, nvmlDeviceGetGpuInstanceProfileInfo);
    // SAFETY: as above, all-zero is valid for this plain C struct.
    let mut info: nvmlGpuInstanceProfileInfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a live v1 struct; handle from this library.
    let code = unsafe { f(dev(device), index, &mut info) };
    check("nvmlDeviceGetGpuInstanceProfileInfo", code)?;
    Ok(RawGiProfile {
        id: info.id,
        p2p: info.isP2pSupported != 0,
        slice_count: info.sliceCount,
        instance_count: info.instanceCount,
        engines: EngineCounts {
            sm: info.multiprocessorCount,
            ce: info.copyEngineCount,
            dec: info.decoderCount,
            enc: info.encoderCount,
            jpeg: info.jpegCount,
            ofa: info.ofaCount,
        },
        memory_mib: info.memorySizeMB,
        name: None,
    })
}

/// Every legal placement of a GI profile, through the raw `_v2` call: nvml-wrapper 0.13's
/// `Device::possible_placements` never sets the Vec's length and always returns `[]`.
pub(crate) fn gi_possible_placements(
    nvml: &Nvml,
    device: &Device<'_>,
    profile_id: u32,
) -> Result<Vec<(u32, u32)>, RawError> {
    let f = sym!(nvml, nvmlDeviceGetGpuInstancePossiblePlacements_v2);
    const NAME: &str = "nvmlDeviceGetGpuInstancePossiblePlacements_v2";
    let mut count: c_uint = 0;
    // SAFETY: a NULL buffer asks only for the count, which NVML writes to `count`.
    let code = unsafe { f(dev(device), profile_id, ptr::null_mut(), &mut count) };
    if code != INSUFFICIENT_SIZE {
        check(NAME, code)?;
    }
    if count == 0 {
        return Ok(Vec::new());
    }
    let mut buf = vec![nvmlGpuInstancePlacement_t { start: 0, size: 0 }; count as usize];
    // SAFETY: `buf` holds `count` initialised elements and NVML writes at most `count`.
    let code = unsafe { f(dev(device), profile_id, buf.as_mut_ptr(), &mut count) };
    check(NAME, code)?;
    buf.truncate(count as usize);
    Ok(buf.into_iter().map(|p| (p.start, p.size)).collect())
}

/// `nvmlDeviceGetGpuInstanceRemainingCapacity`.
pub(crate) fn gi_remaining_capacity(
    nvml: &Nvml,
    device: &Device<'_>,
    profile_id: u32,
) -> Result<u32, RawError> {
    let f = sym!(nvml, nvmlDeviceGetGpuInstanceRemainingCapacity);
    let mut count: c_uint = 0;
    // SAFETY: `count` is a live out-parameter; handle from this library.
    let code = unsafe { f(dev(device), profile_id, &mut count) };
    check("nvmlDeviceGetGpuInstanceRemainingCapacity", code)?;
    Ok(count)
}

/// `nvmlDeviceCreateGpuInstance` (driver picks the placement) or
/// `nvmlDeviceCreateGpuInstanceWithPlacement`.
pub(crate) fn create_gi(
    nvml: &Nvml,
    device: &Device<'_>,
    profile_id: u32,
    placement: Option<(u32, u32)>,
) -> Result<RawGi, RawError> {
    let mut gi: nvmlGpuInstance_t = ptr::null_mut();
    match placement {
        None => {
            let f = sym!(nvml, nvmlDeviceCreateGpuInstance);
            // SAFETY: `gi` is a live out-parameter; handle from this library.
            let code = unsafe { f(dev(device), profile_id, &mut gi) };
            check("nvmlDeviceCreateGpuInstance", code)?;
        }
        Some((start, size)) => {
            let f = sym!(nvml, nvmlDeviceCreateGpuInstanceWithPlacement);
            let p = nvmlGpuInstancePlacement_t { start, size };
            // SAFETY: `p` lives across the call and NVML only reads it; `gi` is an out-param.
            let code = unsafe { f(dev(device), profile_id, &p, &mut gi) };
            check("nvmlDeviceCreateGpuInstanceWithPlacement", code)?;
        }
    }
    Ok(RawGi(gi))
}

/// `nvmlGpuInstanceDestroy`.
pub(crate) fn destroy_gi(nvml: &Nvml, gi: RawGi) -> Result<(), RawError> {
    let f = sym!(nvml, nvmlGpuInstanceDestroy);
    // SAFETY: `gi` came from this library; NVML validates stale handles itself.
    let code = unsafe { f(gi.0) };
    check("nvmlGpuInstanceDestroy", code)
}

/// `nvmlDeviceGetGpuInstances` for one profile id.
pub(crate) fn gpu_instances(
    nvml: &Nvml,
    device: &Device<'_>,
    profile_id: u32,
) -> Result<Vec<RawGi>, RawError> {
    let f = sym!(nvml, nvmlDeviceGetGpuInstances);
    let mut buf: Vec<nvmlGpuInstance_t> = vec![ptr::null_mut(); INSTANCE_BUFFER];
    let mut count: c_uint = INSTANCE_BUFFER as c_uint;
    // SAFETY: `buf` has room for INSTANCE_BUFFER handles, more than any profile's
    // `instanceCount`, which is all NVML writes.
    let code = unsafe { f(dev(device), profile_id, buf.as_mut_ptr(), &mut count) };
    check("nvmlDeviceGetGpuInstances", code)?;
    buf.truncate((count as usize).min(INSTANCE_BUFFER));
    Ok(buf.into_iter().map(RawGi).collect())
}

/// `nvmlDeviceGetGpuInstanceById`.
pub(crate) fn gi_by_id(nvml: &Nvml, device: &Device<'_>, id: u32) -> Result<RawGi, RawError> {
    let f = sym!(nvml, nvmlDeviceGetGpuInstanceById);
    let mut gi: nvmlGpuInstance_t = ptr::null_mut();
    // SAFETY: `gi` is a live out-parameter; handle from this library.
    let code = unsafe { f(dev(device), id, &mut gi) };
    check("nvmlDeviceGetGpuInstanceById", code)?;
    Ok(RawGi(gi))
}

/// `nvmlGpuInstanceGetInfo`.
pub(crate) fn gi_info(nvml: &Nvml, gi: RawGi) -> Result<RawInstanceInfo, RawError> {
    let f = sym!(nvml, nvmlGpuInstanceGetInfo);
    // SAFETY: all-zero (NULL handle, zero ints) is a valid value of this C struct.
    let mut info: nvmlGpuInstanceInfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a live out-struct; `gi` came from this library.
    let code = unsafe { f(gi.0, &mut info) };
    check("nvmlGpuInstanceGetInfo", code)?;
    Ok(RawInstanceInfo {
        id: info.id,
        profile_id: info.profileId,
        start: info.placement.start,
        size: info.placement.size,
    })
}

/// CI profile by NVML CI profile index inside a GI (shared engine profile), v2 struct when
/// available.
pub(crate) fn ci_profile_info(
    nvml: &Nvml,
    gi: RawGi,
    index: u32,
) -> Result<RawCiProfile, RawError> {
    let eng = NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED;
    if let Ok(f) = nvml
        .lib()
        .nvmlGpuInstanceGetComputeInstanceProfileInfoV
        .as_ref()
    {
        // SAFETY: all-zero is a valid value of this plain C struct.
        let mut info: nvmlComputeInstanceProfileInfo_v2_t = unsafe { std::mem::zeroed() };
        info.version = CI_PROFILE_INFO_V2;
        // SAFETY: `info` is a live v2 struct with its version word set; `gi` from this library.
        let code = unsafe { f(gi.0, index, eng, &mut info) };
        check("nvmlGpuInstanceGetComputeInstanceProfileInfoV", code)?;
        return Ok(RawCiProfile {
            id: info.id,
            slice_count: info.sliceCount,
            instance_count: info.instanceCount,
            engines: EngineCounts {
                sm: info.multiprocessorCount,
                ce: info.sharedCopyEngineCount,
                dec: info.sharedDecoderCount,
                enc: info.sharedEncoderCount,
                jpeg: info.sharedJpegCount,
                ofa: info.sharedOfaCount,
            },
            name: name_from(&info.name),
        });
    }
    let f = sym!(nvml, nvmlGpuInstanceGetComputeInstanceProfileInfo);
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut info: nvmlComputeInstanceProfileInfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a live v1 struct; `gi` from this library.
    let code = unsafe { f(gi.0, index, eng, &mut info) };
    check("nvmlGpuInstanceGetComputeInstanceProfileInfo", code)?;
    Ok(RawCiProfile {
        id: info.id,
        slice_count: info.sliceCount,
        instance_count: info.instanceCount,
        engines: EngineCounts {
            sm: info.multiprocessorCount,
            ce: info.sharedCopyEngineCount,
            dec: info.sharedDecoderCount,
            enc: info.sharedEncoderCount,
            jpeg: info.sharedJpegCount,
            ofa: info.sharedOfaCount,
        },
        name: None,
    })
}

/// `nvmlGpuInstanceGetComputeInstancePossiblePlacements` (NVML 12.0+).
pub(crate) fn ci_possible_placements(
    nvml: &Nvml,
    gi: RawGi,
    profile_id: u32,
) -> Result<Vec<(u32, u32)>, RawError> {
    let f = sym!(nvml, nvmlGpuInstanceGetComputeInstancePossiblePlacements);
    const NAME: &str = "nvmlGpuInstanceGetComputeInstancePossiblePlacements";
    let mut count: c_uint = 0;
    // SAFETY: a NULL buffer asks only for the count.
    let code = unsafe { f(gi.0, profile_id, ptr::null_mut(), &mut count) };
    if code != INSUFFICIENT_SIZE {
        check(NAME, code)?;
    }
    if count == 0 {
        return Ok(Vec::new());
    }
    let mut buf = vec![nvmlComputeInstancePlacement_t { start: 0, size: 0 }; count as usize];
    // SAFETY: `buf` holds `count` initialised elements; NVML writes at most `count`.
    let code = unsafe { f(gi.0, profile_id, buf.as_mut_ptr(), &mut count) };
    check(NAME, code)?;
    buf.truncate(count as usize);
    Ok(buf.into_iter().map(|p| (p.start, p.size)).collect())
}

/// `nvmlGpuInstanceGetComputeInstanceRemainingCapacity`.
pub(crate) fn ci_remaining_capacity(
    nvml: &Nvml,
    gi: RawGi,
    profile_id: u32,
) -> Result<u32, RawError> {
    let f = sym!(nvml, nvmlGpuInstanceGetComputeInstanceRemainingCapacity);
    let mut count: c_uint = 0;
    // SAFETY: `count` is a live out-parameter; `gi` from this library.
    let code = unsafe { f(gi.0, profile_id, &mut count) };
    check("nvmlGpuInstanceGetComputeInstanceRemainingCapacity", code)?;
    Ok(count)
}

/// `nvmlGpuInstanceCreateComputeInstance(WithPlacement)`.
pub(crate) fn create_ci(
    nvml: &Nvml,
    gi: RawGi,
    profile_id: u32,
    placement: Option<(u32, u32)>,
) -> Result<RawCi, RawError> {
    let mut ci: nvmlComputeInstance_t = ptr::null_mut();
    match placement {
        None => {
            let f = sym!(nvml, nvmlGpuInstanceCreateComputeInstance);
            // SAFETY: `ci` is a live out-parameter; `gi` from this library.
            let code = unsafe { f(gi.0, profile_id, &mut ci) };
            check("nvmlGpuInstanceCreateComputeInstance", code)?;
        }
        Some((start, size)) => {
            let f = sym!(nvml, nvmlGpuInstanceCreateComputeInstanceWithPlacement);
            let p = nvmlComputeInstancePlacement_t { start, size };
            // SAFETY: `p` lives across the call and is only read; `ci` is an out-param.
            let code = unsafe { f(gi.0, profile_id, &p, &mut ci) };
            check("nvmlGpuInstanceCreateComputeInstanceWithPlacement", code)?;
        }
    }
    Ok(RawCi(ci))
}

/// `nvmlComputeInstanceDestroy`.
pub(crate) fn destroy_ci(nvml: &Nvml, ci: RawCi) -> Result<(), RawError> {
    let f = sym!(nvml, nvmlComputeInstanceDestroy);
    // SAFETY: `ci` came from this library; NVML validates stale handles itself.
    let code = unsafe { f(ci.0) };
    check("nvmlComputeInstanceDestroy", code)
}

/// `nvmlGpuInstanceGetComputeInstances` for one CI profile id.
pub(crate) fn compute_instances(
    nvml: &Nvml,
    gi: RawGi,
    profile_id: u32,
) -> Result<Vec<RawCi>, RawError> {
    let f = sym!(nvml, nvmlGpuInstanceGetComputeInstances);
    let mut buf: Vec<nvmlComputeInstance_t> = vec![ptr::null_mut(); INSTANCE_BUFFER];
    let mut count: c_uint = INSTANCE_BUFFER as c_uint;
    // SAFETY: `buf` has room for INSTANCE_BUFFER handles, more than any CI profile's
    // `instanceCount`.
    let code = unsafe { f(gi.0, profile_id, buf.as_mut_ptr(), &mut count) };
    check("nvmlGpuInstanceGetComputeInstances", code)?;
    buf.truncate((count as usize).min(INSTANCE_BUFFER));
    Ok(buf.into_iter().map(RawCi).collect())
}

/// `nvmlGpuInstanceGetComputeInstanceById`.
pub(crate) fn ci_by_id(nvml: &Nvml, gi: RawGi, id: u32) -> Result<RawCi, RawError> {
    let f = sym!(nvml, nvmlGpuInstanceGetComputeInstanceById);
    let mut ci: nvmlComputeInstance_t = ptr::null_mut();
    // SAFETY: `ci` is a live out-parameter; `gi` from this library.
    let code = unsafe { f(gi.0, id, &mut ci) };
    check("nvmlGpuInstanceGetComputeInstanceById", code)?;
    Ok(RawCi(ci))
}

/// `nvmlComputeInstanceGetInfo_v2`.
pub(crate) fn ci_info(nvml: &Nvml, ci: RawCi) -> Result<RawInstanceInfo, RawError> {
    let f = sym!(nvml, nvmlComputeInstanceGetInfo_v2);
    // SAFETY: all-zero (NULL handles, zero ints) is a valid value of this C struct.
    let mut info: nvmlComputeInstanceInfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a live out-struct; `ci` from this library.
    let code = unsafe { f(ci.0, &mut info) };
    check("nvmlComputeInstanceGetInfo_v2", code)?;
    Ok(RawInstanceInfo {
        id: info.id,
        profile_id: info.profileId,
        start: info.placement.start,
        size: info.placement.size,
    })
}

/// `nvmlDeviceGetGpuInstanceId` of a MIG device handle.
pub(crate) fn mig_device_gi_id(nvml: &Nvml, mig: &Device<'_>) -> Result<u32, RawError> {
    let f = sym!(nvml, nvmlDeviceGetGpuInstanceId);
    let mut id: c_uint = 0;
    // SAFETY: `id` is a live out-parameter; handle from this library.
    let code = unsafe { f(dev(mig), &mut id) };
    check("nvmlDeviceGetGpuInstanceId", code)?;
    Ok(id)
}

/// `nvmlDeviceGetComputeInstanceId` of a MIG device handle.
pub(crate) fn mig_device_ci_id(nvml: &Nvml, mig: &Device<'_>) -> Result<u32, RawError> {
    let f = sym!(nvml, nvmlDeviceGetComputeInstanceId);
    let mut id: c_uint = 0;
    // SAFETY: `id` is a live out-parameter; handle from this library.
    let code = unsafe { f(dev(mig), &mut id) };
    check("nvmlDeviceGetComputeInstanceId", code)?;
    Ok(id)
}

/// `nvmlErrorString`, the driver's own text for a return code; `None` if the library lacks it.
pub(crate) fn error_string(nvml: &Nvml, code: u32) -> Option<String> {
    let f = nvml.lib().nvmlErrorString.as_ref().ok()?;
    // SAFETY: nvmlErrorString accepts any code and returns a pointer to a static string.
    let p = unsafe { f(code) };
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL, NUL-terminated and static per the NVML contract.
    let s = unsafe { CStr::from_ptr(p) };
    Some(s.to_string_lossy().into_owned())
}

/// nvml-sim's own count of the NVML calls this process made (`nvmlSimGetCallCount`), from the
/// nvml-sim library at `lib` that `Driver::load` already loaded: the daemon's tests prove with
/// it how many calls a poll makes. Panics when that library is not loaded or is not nvml-sim.
#[cfg(test)]
pub(crate) fn sim_call_count(lib: &std::path::Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(lib.as_os_str().as_bytes()).expect("path");
    // SAFETY: RTLD_NOLOAD only returns the handle of the already loaded library (loaded by
    // Driver::load), and `path` is a NUL-terminated string that outlives the call.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
    assert!(!handle.is_null(), "nvml-sim is not loaded");
    // SAFETY: `handle` is a live handle from dlopen above; the name is a C string literal.
    let sym = unsafe { libc::dlsym(handle, c"nvmlSimGetCallCount".as_ptr()) };
    assert!(!sym.is_null(), "nvml-sim without nvmlSimGetCallCount");
    // SAFETY: nvml-sim exports this symbol as
    // `nvmlReturn_t nvmlSimGetCallCount(unsigned long long *)`, the type transmuted to.
    let f = unsafe {
        std::mem::transmute::<*mut libc::c_void, unsafe extern "C" fn(*mut u64) -> u32>(sym)
    };
    let mut n = 0u64;
    // SAFETY: `n` is a live out-parameter of the signature above.
    assert_eq!(unsafe { f(&mut n) }, 0);
    // SAFETY: balances the dlopen above; the library stays loaded (Driver::load holds it).
    unsafe { libc::dlclose(handle) };
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_versions_match_the_sizes_of_the_bound_structs() {
        // The version word encodes the struct size; a mismatch would make NVML reject the call.
        let gi = std::mem::size_of::<nvmlGpuInstanceProfileInfo_v2_t>() as u32;
        assert_eq!(GI_PROFILE_INFO_V2, gi | (2 << 24));
        let ci = std::mem::size_of::<nvmlComputeInstanceProfileInfo_v2_t>() as u32;
        assert_eq!(CI_PROFILE_INFO_V2, ci | (2 << 24));
    }

    #[test]
    fn names_stop_at_nul_and_empty_is_none() {
        let mut buf = [0 as c_char; 8];
        assert_eq!(name_from(&buf), None);
        for (i, b) in b"MIG 1g".iter().enumerate() {
            buf[i] = *b as c_char;
        }
        assert_eq!(name_from(&buf).as_deref(), Some("MIG 1g"));
    }
}
