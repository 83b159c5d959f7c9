//! `#[repr(C)]` mirrors of the nvml.h structs the simulator fills, with their sizes pinned.
//!
//! The cdylib must not depend on nvml-wrapper-sys (it *is* the library those bindings load),
//! so the layouts are written out here and checked at compile time against the sizes and
//! version words in research/nvml-mig.md §1 (equal to nvml-wrapper-sys 0.10.0's bindgen output;
//! the integration tests compare field by field through the real bindings).
#![allow(non_snake_case)]

use std::ffi::{c_char, c_uint, c_ulonglong, c_void};
use std::mem::{offset_of, size_of};

/// Opaque handle type (`nvmlDevice_t`, `nvmlGpuInstance_t`, `nvmlComputeInstance_t`).
pub type RawHandle = *mut c_void;

/// `nvmlReturn_t`.
pub type NvmlReturn = c_uint;

/// `NVML_STRUCT_VERSION(data, ver)`.
pub const fn struct_version(size: usize, ver: u32) -> u32 {
    size as u32 | (ver << 24)
}

/// `NVML_DEVICE_NAME_V2_BUFFER_SIZE`: profile names.
pub const NAME_V2_LEN: usize = 96;

/// `nvmlPciInfo_t` (`nvmlDeviceGetPciInfo_v3`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PciInfo {
    pub busIdLegacy: [c_char; 16],
    pub domain: c_uint,
    pub bus: c_uint,
    pub device: c_uint,
    pub pciDeviceId: c_uint,
    pub pciSubSystemId: c_uint,
    pub busId: [c_char; 32],
}

/// `nvmlMemory_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub total: c_ulonglong,
    pub free: c_ulonglong,
    pub used: c_ulonglong,
}

/// `nvmlMemory_v2_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MemoryV2 {
    pub version: c_uint,
    pub total: c_ulonglong,
    pub reserved: c_ulonglong,
    pub free: c_ulonglong,
    pub used: c_ulonglong,
}
/// `nvmlMemory_v2`.
pub const MEMORY_V2: u32 = struct_version(size_of::<MemoryV2>(), 2);

/// `nvmlProcessInfo_v1_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ProcessInfoV1 {
    pub pid: c_uint,
    pub usedGpuMemory: c_ulonglong,
}

/// `nvmlProcessInfo_v2_t` = `nvmlProcessInfo_t` (what `_v2` and `_v3` fill).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ProcessInfo {
    pub pid: c_uint,
    pub usedGpuMemory: c_ulonglong,
    pub gpuInstanceId: c_uint,
    pub computeInstanceId: c_uint,
}

/// `nvmlDeviceAttributes_t` (`nvmlDeviceGetAttributes_v2`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct DeviceAttributes {
    pub multiprocessorCount: c_uint,
    pub sharedCopyEngineCount: c_uint,
    pub sharedDecoderCount: c_uint,
    pub sharedEncoderCount: c_uint,
    pub sharedJpegCount: c_uint,
    pub sharedOfaCount: c_uint,
    pub gpuInstanceSliceCount: c_uint,
    pub computeInstanceSliceCount: c_uint,
    pub memorySizeMB: c_ulonglong,
}

/// `nvmlGpuInstancePlacement_t` / `nvmlComputeInstancePlacement_t` (same layout).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstancePlacement {
    pub start: c_uint,
    pub size: c_uint,
}

/// `nvmlGpuInstanceProfileInfo_t` (v1, unversioned).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct GpuInstanceProfileInfo {
    pub id: c_uint,
    pub isP2pSupported: c_uint,
    pub sliceCount: c_uint,
    pub instanceCount: c_uint,
    pub multiprocessorCount: c_uint,
    pub copyEngineCount: c_uint,
    pub decoderCount: c_uint,
    pub encoderCount: c_uint,
    pub jpegCount: c_uint,
    pub ofaCount: c_uint,
    pub memorySizeMB: c_ulonglong,
}

/// `nvmlGpuInstanceProfileInfo_v2_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct GpuInstanceProfileInfoV2 {
    pub version: c_uint,
    pub id: c_uint,
    pub isP2pSupported: c_uint,
    pub sliceCount: c_uint,
    pub instanceCount: c_uint,
    pub multiprocessorCount: c_uint,
    pub copyEngineCount: c_uint,
    pub decoderCount: c_uint,
    pub encoderCount: c_uint,
    pub jpegCount: c_uint,
    pub ofaCount: c_uint,
    pub memorySizeMB: c_ulonglong,
    pub name: [c_char; NAME_V2_LEN],
}
/// `nvmlGpuInstanceProfileInfo_v2`.
pub const GI_PROFILE_INFO_V2: u32 = struct_version(size_of::<GpuInstanceProfileInfoV2>(), 2);

/// `nvmlGpuInstanceProfileInfo_v3_t` (no isP2pSupported; capabilities at the end).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct GpuInstanceProfileInfoV3 {
    pub version: c_uint,
    pub id: c_uint,
    pub sliceCount: c_uint,
    pub instanceCount: c_uint,
    pub multiprocessorCount: c_uint,
    pub copyEngineCount: c_uint,
    pub decoderCount: c_uint,
    pub encoderCount: c_uint,
    pub jpegCount: c_uint,
    pub ofaCount: c_uint,
    pub memorySizeMB: c_ulonglong,
    pub name: [c_char; NAME_V2_LEN],
    pub capabilities: c_uint,
}
/// `nvmlGpuInstanceProfileInfo_v3`.
pub const GI_PROFILE_INFO_V3: u32 = struct_version(size_of::<GpuInstanceProfileInfoV3>(), 3);
/// `NVML_GPU_INSTANCE_PROFILE_CAPS_P2P`.
pub const GI_CAPS_P2P: u32 = 0x1;
/// `NVML_GPU_INSTANCE_PROFILE_CAPS_GFX`: the profile runs graphics (`+gfx`).
pub const GI_CAPS_GFX: u32 = 0x2;

/// `nvmlGpuInstanceInfo_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct GpuInstanceInfo {
    pub device: RawHandle,
    pub id: c_uint,
    pub profileId: c_uint,
    pub placement: InstancePlacement,
}

/// `nvmlComputeInstanceProfileInfo_t` (v1).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ComputeInstanceProfileInfo {
    pub id: c_uint,
    pub sliceCount: c_uint,
    pub instanceCount: c_uint,
    pub multiprocessorCount: c_uint,
    pub sharedCopyEngineCount: c_uint,
    pub sharedDecoderCount: c_uint,
    pub sharedEncoderCount: c_uint,
    pub sharedJpegCount: c_uint,
    pub sharedOfaCount: c_uint,
}

/// `nvmlComputeInstanceProfileInfo_v2_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ComputeInstanceProfileInfoV2 {
    pub version: c_uint,
    pub id: c_uint,
    pub sliceCount: c_uint,
    pub instanceCount: c_uint,
    pub multiprocessorCount: c_uint,
    pub sharedCopyEngineCount: c_uint,
    pub sharedDecoderCount: c_uint,
    pub sharedEncoderCount: c_uint,
    pub sharedJpegCount: c_uint,
    pub sharedOfaCount: c_uint,
    pub name: [c_char; NAME_V2_LEN],
}
/// `nvmlComputeInstanceProfileInfo_v2`.
pub const CI_PROFILE_INFO_V2: u32 = struct_version(size_of::<ComputeInstanceProfileInfoV2>(), 2);

/// `nvmlComputeInstanceProfileInfo_v3_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ComputeInstanceProfileInfoV3 {
    pub version: c_uint,
    pub id: c_uint,
    pub sliceCount: c_uint,
    pub instanceCount: c_uint,
    pub multiprocessorCount: c_uint,
    pub sharedCopyEngineCount: c_uint,
    pub sharedDecoderCount: c_uint,
    pub sharedEncoderCount: c_uint,
    pub sharedJpegCount: c_uint,
    pub sharedOfaCount: c_uint,
    pub name: [c_char; NAME_V2_LEN],
    pub capabilities: c_uint,
}
/// `nvmlComputeInstanceProfileInfo_v3`.
pub const CI_PROFILE_INFO_V3: u32 = struct_version(size_of::<ComputeInstanceProfileInfoV3>(), 3);

/// `nvmlComputeInstanceInfo_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ComputeInstanceInfo {
    pub device: RawHandle,
    pub gpuInstance: RawHandle,
    pub id: c_uint,
    pub profileId: c_uint,
    pub placement: InstancePlacement,
}

// Sizes and offsets from research/nvml-mig.md §1 (x86_64 / aarch64 Linux, LP64).
const _: () = assert!(size_of::<PciInfo>() == 68);
const _: () = assert!(offset_of!(PciInfo, busId) == 36);
const _: () = assert!(size_of::<Memory>() == 24);
const _: () = assert!(size_of::<MemoryV2>() == 40);
const _: () = assert!(MEMORY_V2 == 0x0200_0028);
const _: () = assert!(size_of::<ProcessInfoV1>() == 16);
const _: () = assert!(size_of::<ProcessInfo>() == 24);
const _: () = assert!(offset_of!(ProcessInfo, gpuInstanceId) == 16);
const _: () = assert!(size_of::<DeviceAttributes>() == 40);
const _: () = assert!(size_of::<InstancePlacement>() == 8);
const _: () = assert!(size_of::<GpuInstanceProfileInfo>() == 48);
const _: () = assert!(offset_of!(GpuInstanceProfileInfo, memorySizeMB) == 40);
const _: () = assert!(size_of::<GpuInstanceProfileInfoV2>() == 152);
const _: () = assert!(offset_of!(GpuInstanceProfileInfoV2, memorySizeMB) == 48);
const _: () = assert!(offset_of!(GpuInstanceProfileInfoV2, name) == 56);
const _: () = assert!(GI_PROFILE_INFO_V2 == 0x0200_0098);
const _: () = assert!(size_of::<GpuInstanceProfileInfoV3>() == 152);
const _: () = assert!(offset_of!(GpuInstanceProfileInfoV3, memorySizeMB) == 40);
const _: () = assert!(offset_of!(GpuInstanceProfileInfoV3, name) == 48);
const _: () = assert!(offset_of!(GpuInstanceProfileInfoV3, capabilities) == 144);
const _: () = assert!(GI_PROFILE_INFO_V3 == 0x0300_0098);
const _: () = assert!(size_of::<GpuInstanceInfo>() == 24);
const _: () = assert!(offset_of!(GpuInstanceInfo, placement) == 16);
const _: () = assert!(size_of::<ComputeInstanceProfileInfo>() == 36);
const _: () = assert!(size_of::<ComputeInstanceProfileInfoV2>() == 136);
const _: () = assert!(CI_PROFILE_INFO_V2 == 0x0200_0088);
const _: () = assert!(size_of::<ComputeInstanceProfileInfoV3>() == 140);
const _: () = assert!(CI_PROFILE_INFO_V3 == 0x0300_008C);
const _: () = assert!(size_of::<ComputeInstanceInfo>() == 32);
const _: () = assert!(offset_of!(ComputeInstanceInfo, placement) == 24);

/// `nvmlVgpuTypeIdInfo_v1_t` (`nvmlGpuInstanceGetCreatableVgpus`): `vgpuCount` in = room in
/// `vgpuTypeIds`, out = types listed (or needed).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct VgpuTypeIdInfoV1 {
    pub version: c_uint,
    pub vgpuCount: c_uint,
    pub vgpuTypeIds: *mut c_uint,
}
/// `nvmlVgpuTypeIdInfo_v1`.
pub const VGPU_TYPE_ID_INFO_V1: u32 = struct_version(size_of::<VgpuTypeIdInfoV1>(), 1);

/// `nvmlVgpuTypeMaxInstance_v1_t` (`nvmlVgpuTypeGetMaxInstancesPerGpuInstance`):
/// `vgpuTypeId` in, `maxInstancePerGI` out.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct VgpuTypeMaxInstanceV1 {
    pub version: c_uint,
    pub vgpuTypeId: c_uint,
    pub maxInstancePerGI: c_uint,
}
/// `nvmlVgpuTypeMaxInstance_v1`.
pub const VGPU_TYPE_MAX_INSTANCE_V1: u32 = struct_version(size_of::<VgpuTypeMaxInstanceV1>(), 1);

/// `nvmlActiveVgpuInstanceInfo_v1_t` (`nvmlGpuInstanceGetActiveVgpus`): `vgpuCount` in = room
/// in `vgpuInstances`, out = instances listed (or needed).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ActiveVgpuInstanceInfoV1 {
    pub version: c_uint,
    pub vgpuCount: c_uint,
    pub vgpuInstances: *mut c_uint,
}
/// `nvmlActiveVgpuInstanceInfo_v1`.
pub const ACTIVE_VGPU_INSTANCE_INFO_V1: u32 =
    struct_version(size_of::<ActiveVgpuInstanceInfoV1>(), 1);

// Sizes as nvml-wrapper-sys 0.10.0's bindgen output (LP64): version and count, then a pointer.
const _: () = assert!(size_of::<VgpuTypeIdInfoV1>() == 16);
const _: () = assert!(offset_of!(VgpuTypeIdInfoV1, vgpuTypeIds) == 8);
const _: () = assert!(VGPU_TYPE_ID_INFO_V1 == 0x0100_0010);
const _: () = assert!(size_of::<VgpuTypeMaxInstanceV1>() == 12);
const _: () = assert!(VGPU_TYPE_MAX_INSTANCE_V1 == 0x0100_000C);
const _: () = assert!(size_of::<ActiveVgpuInstanceInfoV1>() == 16);
const _: () = assert!(ACTIVE_VGPU_INSTANCE_INFO_V1 == 0x0100_0010);

/// Copy `s` into a fixed C char array, NUL-terminated and truncated to fit.
pub fn fill_name<const N: usize>(s: &str) -> [c_char; N] {
    let mut out = [0 as c_char; N];
    for (dst, b) in out.iter_mut().zip(s.bytes().take(N.saturating_sub(1))) {
        *dst = b as c_char;
    }
    out
}
