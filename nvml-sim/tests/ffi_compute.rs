//! Compute instances, MIG device handles, processes and vGPUs through nvml-wrapper and raw
//! `nvml.lib()` calls (GPU instances: `ffi_mig.rs`).
#![allow(
    unsafe_code,
    reason = "nvml-wrapper has no safe wrapper for many MIG calls: the tests call the C ABI as the agent does"
)]
mod common;

use std::ffi::c_uint;
use std::ptr::null_mut;

use common::mig::*;
use common::{Sim, c_str};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::struct_wrappers::device::ProcessInfo;
use nvml_wrapper::{Device, Nvml};
use nvml_wrapper_sys::bindings::*;

#[test]
fn compute_instances_mig_devices_and_processes() {
    let sim = Sim::new(&["a100-pcie-40gb"], &["--mig"]);
    let nvml = sim.nvml();
    let (d, h) = dev(&nvml);
    let lib = nvml.lib();
    let gi = create_gi(&nvml, h, GI_3G_20GB, None).unwrap();
    let gi_id = gi_info(&nvml, gi).unwrap().id;

    check_ci_profiles(lib, gi);
    check_ci_placements(lib, gi);
    let mut n = 0;

    let c0 = create_ci(&nvml, gi, 0, None).unwrap();
    let c1 = create_ci(&nvml, gi, 0, Some(2)).unwrap();
    assert_eq!(
        create_ci(&nvml, gi, 0, Some(2)),
        Err(INSUFFICIENT_RESOURCES)
    );
    assert_eq!(
        create_ci(&nvml, gi, 2, None),
        Err(INSUFFICIENT_RESOURCES),
        "full-GI CI overlaps"
    );
    let i0 = ci_info(&nvml, c0);
    let i1 = ci_info(&nvml, c1);
    assert_eq!(
        (i0.device, i0.gpuInstance, i0.profileId, i0.placement.start),
        (h, gi, 0, 0)
    );
    assert_eq!(i1.placement.start, 2);
    assert_ne!(i0.id, i1.id);
    let mut legacy: nvmlComputeInstanceInfo_t = zeroed_c();
    let legacy_fn: unsafe extern "C" fn(
        nvmlComputeInstance_t,
        *mut nvmlComputeInstanceInfo_t,
        // SAFETY: RTLD_NOLOAD only finds the library nvml-wrapper already loaded (and keeps alive
        // through `nvml`); the symbol's C signature is `nvmlReturn_t (nvmlComputeInstance_t,
        // nvmlComputeInstanceInfo_t *)`, the type transmuted to.
    ) -> u32 = unsafe {
        let lib_h = libc::dlopen(
            std::ffi::CString::new(common::lib_path().to_str().unwrap())
                .unwrap()
                .as_ptr(),
            libc::RTLD_NOW | libc::RTLD_NOLOAD,
        );
        assert!(!lib_h.is_null(), "library is loaded by nvml-wrapper");
        std::mem::transmute(libc::dlsym(lib_h, c"nvmlComputeInstanceGetInfo".as_ptr()))
    };
    // SAFETY: `legacy_fn` has the symbol's real signature (above); `c1` is a live CI handle and
    // `legacy` a local `nvmlComputeInstanceInfo_t`.
    assert_eq!(unsafe { legacy_fn(c1, &mut legacy) }, SUCCESS);
    assert_eq!(legacy.id, i1.id);

    let mut list = vec![null_mut(); 3];
    assert_eq!(
        // SAFETY: `list` holds 3 handles, the 1c profile's `instanceCount` in a 3g GI, as nvml.h
        // requires; `n` is a local.
        unsafe { lib.nvmlGpuInstanceGetComputeInstances(gi, 0, list.as_mut_ptr(), &mut n) },
        SUCCESS
    );
    assert_eq!(n, 2);
    let mut found = null_mut();
    assert_eq!(
        // SAFETY: `found` is a local handle slot the call writes.
        unsafe { lib.nvmlGpuInstanceGetComputeInstanceById(gi, i1.id, &mut found) },
        SUCCESS
    );
    assert_eq!(found, c1);
    assert_eq!(
        // SAFETY: `found` is a local handle slot; an unknown id is refused without writing.
        unsafe { lib.nvmlGpuInstanceGetComputeInstanceById(gi, 99, &mut found) },
        NOT_FOUND
    );

    // A GI with compute instances cannot be destroyed (no cascade).
    // SAFETY: `gi` is a GI handle of this library (decoded and checked, never dereferenced).
    assert_eq!(unsafe { lib.nvmlGpuInstanceDestroy(gi) }, IN_USE);

    let (m0, m1) = check_mig_devices(&nvml, &d, h, gi_id, i1.id);

    // A process on MIG device (gi, c1), started by another process.
    let (g, c) = (gi_id.to_string(), i1.id.to_string());
    sim.ctl_ok(&[
        "occupy",
        "-i",
        "0",
        "--gi",
        &g,
        "--ci",
        &c,
        "--pid",
        "4242",
        "--name",
        "train",
        "--memory-mib",
        "1000",
    ]);
    let on_parent = d.running_compute_processes().unwrap();
    assert_eq!(on_parent.len(), 1);
    let ProcessInfo {
        pid,
        gpu_instance_id,
        compute_instance_id,
        used_gpu_memory,
    } = on_parent[0].clone();
    assert_eq!(
        (pid, gpu_instance_id, compute_instance_id),
        (4242, Some(gi_id), Some(i1.id))
    );
    assert_eq!(
        used_gpu_memory,
        nvml_wrapper::enums::device::UsedGpuMemory::Used(1000 * 1024 * 1024)
    );
    assert_eq!(m1.running_compute_processes().unwrap().len(), 1);
    assert!(m0.running_compute_processes().unwrap().is_empty());
    assert_eq!(m1.memory_info().unwrap().used, 1000 * 1024 * 1024);
    assert_eq!(d.memory_info().unwrap().used, 1000 * 1024 * 1024);

    // In use: the CI cannot be destroyed, the GPU cannot be reset.
    // SAFETY: `c1` is a CI handle of this library (decoded and checked, never dereferenced).
    assert_eq!(unsafe { lib.nvmlComputeInstanceDestroy(c1) }, IN_USE);
    let err = sim.ctl_err(&["reset"]);
    assert!(err.contains("4242") && err.contains("release"), "{err}");
    // SAFETY: `c0` is a CI handle of this library (decoded and checked, never dereferenced).
    assert_eq!(unsafe { lib.nvmlComputeInstanceDestroy(c0) }, SUCCESS);
    assert!(
        matches!(m0.name(), Err(NvmlError::InvalidArg)),
        "stale MIG device handle"
    );
    assert_eq!(
        d.mig_device_by_index(0).unwrap().uuid().unwrap(),
        m1.uuid().unwrap()
    );

    sim.ctl_ok(&["release", "--pid", "4242"]);
    assert!(d.running_compute_processes().unwrap().is_empty());
    // SAFETY: `c1` is a CI handle of this library (decoded and checked, never dereferenced).
    assert_eq!(unsafe { lib.nvmlComputeInstanceDestroy(c1) }, SUCCESS);
    // SAFETY: `gi` is a GI handle of this library (decoded and checked, never dereferenced).
    assert_eq!(unsafe { lib.nvmlGpuInstanceDestroy(gi) }, SUCCESS);
    assert!(matches!(d.mig_device_by_index(0), Err(NvmlError::NotFound)));
}

/// CI profile info in its three struct versions, inside a 3g GI.
fn check_ci_profiles(lib: &NvmlLib, gi: nvmlGpuInstance_t) {
    // CI profiles inside a 3g GI: 0 = 1c.3g.20gb, 2 = 3g.20gb (the full GI).
    let mut v1: nvmlComputeInstanceProfileInfo_t = zeroed_c();
    assert_eq!(
        // SAFETY: `gi` is a GI handle of this library and `v1` a local v1 struct, the one this call
        // writes.
        unsafe { lib.nvmlGpuInstanceGetComputeInstanceProfileInfo(gi, 2, 0, &mut v1) },
        SUCCESS
    );
    assert_eq!(
        (
            v1.id,
            v1.sliceCount,
            v1.instanceCount,
            v1.multiprocessorCount
        ),
        (2, 3, 1, 42)
    );
    assert_eq!(
        // SAFETY: as above: `v1` is a local v1 struct; engine profile 1 is refused before any
        // write.
        unsafe { lib.nvmlGpuInstanceGetComputeInstanceProfileInfo(gi, 2, 1, &mut v1) },
        INVALID_ARGUMENT
    );
    assert_eq!(
        // SAFETY: as above: `v1` is a local v1 struct; an absent profile is refused before any
        // write.
        unsafe { lib.nvmlGpuInstanceGetComputeInstanceProfileInfo(gi, 4, 0, &mut v1) },
        NOT_SUPPORTED
    );
    assert_eq!(
        // SAFETY: as above: `v1` is a local v1 struct; a profile past the count is refused before
        // any write.
        unsafe { lib.nvmlGpuInstanceGetComputeInstanceProfileInfo(gi, 9, 0, &mut v1) },
        INVALID_ARGUMENT
    );
    let mut v2: nvmlComputeInstanceProfileInfo_v2_t = zeroed_c();
    v2.version = version_of::<nvmlComputeInstanceProfileInfo_v2_t>(2);
    assert_eq!(v2.version, 0x0200_0088);
    assert_eq!(
        // SAFETY: `v2` is a local v2 struct with the v2 version word, so the call writes a struct
        // of its size.
        unsafe { lib.nvmlGpuInstanceGetComputeInstanceProfileInfoV(gi, 0, 0, &mut v2) },
        SUCCESS
    );
    assert_eq!(
        (v2.id, v2.sliceCount, v2.instanceCount, c_str(&v2.name)),
        (0, 1, 3, "MIG 1c.3g.20gb".into())
    );
    let mut v3: nvmlComputeInstanceProfileInfo_v3_t = zeroed_c();
    v3.version = version_of::<nvmlComputeInstanceProfileInfo_v3_t>(3);
    assert_eq!(v3.version, 0x0300_008C);
    assert_eq!(
        // SAFETY: `v3` is a local v3 struct (140 bytes) with the v3 version word, which tells the
        // library its size; the cast only retypes the pointer for the v2-typed binding.
        unsafe {
            lib.nvmlGpuInstanceGetComputeInstanceProfileInfoV(gi, 2, 0, (&raw mut v3).cast())
        },
        SUCCESS
    );
    assert_eq!(
        (
            v3.id,
            v3.sharedCopyEngineCount,
            v3.capabilities,
            c_str(&v3.name)
        ),
        (2, 3, 0, "MIG 3g.20gb".into())
    );
}

/// CI placements (count query, then the list) and remaining capacity of an empty 3g GI.
fn check_ci_placements(lib: &NvmlLib, gi: nvmlGpuInstance_t) {
    let mut count = 0;
    assert_eq!(
        // SAFETY: NULL placements is the documented count query; `count` is a local `unsigned int`.
        unsafe {
            lib.nvmlGpuInstanceGetComputeInstancePossiblePlacements(gi, 0, null_mut(), &mut count)
        },
        SUCCESS
    );
    let mut pls = vec![nvmlComputeInstancePlacement_t { start: 0, size: 0 }; count as usize];
    assert_eq!(
        // SAFETY: `pls` holds `count` placements, the number the count query above returned.
        unsafe {
            lib.nvmlGpuInstanceGetComputeInstancePossiblePlacements(
                gi,
                0,
                pls.as_mut_ptr(),
                &mut count,
            )
        },
        SUCCESS
    );
    assert_eq!(
        pls.iter().map(|p| (p.start, p.size)).collect::<Vec<_>>(),
        [(0, 1), (1, 1), (2, 1)]
    );
    let mut n = 0;
    assert_eq!(
        // SAFETY: `gi` is a GI handle of this library and `n` a local `unsigned int`.
        unsafe { lib.nvmlGpuInstanceGetComputeInstanceRemainingCapacity(gi, 0, &mut n) },
        SUCCESS
    );
    assert_eq!(n, 3);
}

/// MIG device handles of GPU `h`, which holds GI `gi_id` with CIs at slices 0 and 2 (the
/// second, `ci_id`): max count vs. real devices, parent and ids. Returns the two devices.
fn check_mig_devices<'n>(
    nvml: &'n Nvml,
    d: &Device<'n>,
    h: nvmlDevice_t,
    gi_id: u32,
    ci_id: u32,
) -> (Device<'n>, Device<'n>) {
    let lib = nvml.lib();
    // MIG devices: max count vs. real ones, sparse indices answer NOT_FOUND.
    assert_eq!(d.mig_device_count().unwrap(), 7);
    let m0 = d.mig_device_by_index(0).unwrap();
    let m1 = d.mig_device_by_index(1).unwrap();
    assert!(matches!(d.mig_device_by_index(2), Err(NvmlError::NotFound)));
    assert!(matches!(
        d.mig_device_by_index(7),
        Err(NvmlError::InvalidArg)
    ));
    assert!(m0.mig_is_mig_device_handle().unwrap());
    assert_eq!(m0.mig_parent_device().unwrap().index().unwrap(), 0);
    assert!(matches!(d.mig_parent_device(), Err(NvmlError::InvalidArg)));
    assert_eq!(m0.name().unwrap(), "NVIDIA A100-PCIE-40GB MIG 1c.3g.20gb");
    let uuid = m0.uuid().unwrap();
    assert!(is_mig_uuid(&uuid), "{uuid}");
    assert_ne!(uuid, m1.uuid().unwrap());
    let again = nvml.device_by_uuid(uuid.as_str()).unwrap();
    assert!(again.mig_is_mig_device_handle().unwrap());
    assert_eq!(m0.memory_info().unwrap().total, 19968 * 1024 * 1024);
    assert_eq!(m0.attributes().unwrap().multiprocessor_count, 14);
    assert_eq!(m0.attributes().unwrap().gpu_instance_slice_count, 3);
    let (mut gid, mut cid) = (0, 0);
    // SAFETY: the raw handle is only passed back to this library below, while `nvml` is alive;
    // nothing frees or dereferences it on our side.
    let mh = unsafe { m1.handle() };
    assert_eq!(
        // SAFETY: `mh` is a live MIG device handle and `gid` a local `unsigned int`.
        unsafe { lib.nvmlDeviceGetGpuInstanceId(mh, &mut gid) },
        SUCCESS
    );
    assert_eq!(
        // SAFETY: `mh` is a live MIG device handle and `cid` a local `unsigned int`.
        unsafe { lib.nvmlDeviceGetComputeInstanceId(mh, &mut cid) },
        SUCCESS
    );
    assert_eq!((gid, cid), (gi_id, ci_id));
    assert_eq!(
        // SAFETY: `h` is a live GPU handle (refused: not a MIG device) and `gid` a local `unsigned
        // int`.
        unsafe { lib.nvmlDeviceGetGpuInstanceId(h, &mut gid) },
        NOT_SUPPORTED
    );
    assert!(
        matches!(m0.mig_mode(), Err(NvmlError::NotSupported)),
        "parent-only query on a MIG handle"
    );
    (m0, m1)
}

fn is_mig_uuid(s: &str) -> bool {
    let Some(body) = s.strip_prefix("MIG-") else {
        return false;
    };
    let lens: Vec<usize> = body.split('-').map(str::len).collect();
    lens == [8, 4, 4, 4, 12] && body.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

#[test]
fn processes_without_mig_have_no_instance_ids() {
    let sim = Sim::new(&["h100-sxm5-80gb"], &[]);
    let nvml = sim.nvml();
    let (d, h) = dev(&nvml);
    assert!(d.running_compute_processes().unwrap().is_empty());
    sim.ctl_ok(&["occupy", "-i", "0", "--pid", "77"]);
    sim.ctl_ok(&["occupy", "-i", "0", "--pid", "78", "--memory-mib", "2048"]);
    let procs = d.running_compute_processes().unwrap();
    assert_eq!(procs.iter().map(|p| p.pid).collect::<Vec<_>>(), [77, 78]);
    assert!(
        procs
            .iter()
            .all(|p| p.gpu_instance_id.is_none() && p.compute_instance_id.is_none())
    );
    // Raw protocol: *infoCount == 0 asks for the count; a short buffer is INSUFFICIENT_SIZE.
    let mut n: c_uint = 0;
    assert_eq!(
        // SAFETY: `*n == 0` with a NULL buffer is the documented count query; `n` is a local.
        unsafe {
            nvml.lib()
                .nvmlDeviceGetComputeRunningProcesses_v3(h, &mut n, null_mut())
        },
        nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE
    );
    assert_eq!(n, 2);
    let mut buf: Vec<nvmlProcessInfo_t> = vec![zeroed_c(); 2];
    assert_eq!(
        // SAFETY: `buf` holds `n` (2) `nvmlProcessInfo_t`, the count the query above returned.
        unsafe {
            nvml.lib()
                .nvmlDeviceGetComputeRunningProcesses_v3(h, &mut n, buf.as_mut_ptr())
        },
        SUCCESS
    );
    assert_eq!(
        (buf[1].pid, buf[1].usedGpuMemory, buf[1].gpuInstanceId),
        (78, 2048 << 20, 0xFFFF_FFFF)
    );
    // A MIG device cannot be named while MIG is off; MIG mode cannot be applied while busy.
    let err = sim.ctl_err(&["occupy", "-i", "0", "--gi", "1", "--ci", "0", "--pid", "79"]);
    assert!(err.contains("MIG disabled"), "{err}");
    d.set_mig_mode(true).unwrap();
    assert!(sim.ctl_err(&["reset"]).contains("release"));
}

#[test]
fn vgpu_on_a_gpu_instance_keeps_it_in_use() {
    let sim = Sim::new(&["a100-pcie-40gb"], &["--mig"]);
    let nvml = sim.nvml();
    let (_d, h) = dev(&nvml);
    let lib = nvml.lib();
    let gi = create_gi(&nvml, h, GI_3G_20GB, None).unwrap();
    let gi_id = gi_info(&nvml, gi).unwrap().id.to_string();
    sim.ctl_ok(&[
        "occupy",
        "-i",
        "0",
        "--gi",
        &gi_id,
        "--vgpu",
        "grid_a100-3-20c",
        "--vm",
        "vm-42",
    ]);
    // SAFETY: `gi` is a GI handle of this library (decoded and checked, never dereferenced).
    assert_eq!(unsafe { lib.nvmlGpuInstanceDestroy(gi) }, IN_USE);

    let mut n: c_uint = 0;
    assert_eq!(
        // SAFETY: `*n == 0` with a NULL buffer is the documented count query; `n` is a local.
        unsafe { lib.nvmlDeviceGetActiveVgpus(h, &mut n, null_mut()) },
        nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE
    );
    let mut ids = vec![0; n as usize];
    assert_eq!(
        // SAFETY: `ids` holds `n` ids, the count the query above returned.
        unsafe { lib.nvmlDeviceGetActiveVgpus(h, &mut n, ids.as_mut_ptr()) },
        SUCCESS
    );
    let mut type_id = 0;
    assert_eq!(
        // SAFETY: `type_id` is a local `nvmlVgpuTypeId_t` the call writes.
        unsafe { lib.nvmlVgpuInstanceGetType(ids[0], &mut type_id) },
        SUCCESS
    );
    let mut name = [0; 64];
    let mut size = name.len() as c_uint;
    assert_eq!(
        // SAFETY: `name` is a local array of `size` (64) bytes, the capacity passed in `size`.
        unsafe { lib.nvmlVgpuTypeGetName(type_id, name.as_mut_ptr(), &mut size) },
        SUCCESS
    );
    assert_eq!(c_str(&name), "grid_a100-3-20c");
    let mut vm = [0; 80];
    let mut vm_type = 9;
    assert_eq!(
        // SAFETY: `vm` is a local array of the 80 bytes passed; `vm_type` is a local `unsigned
        // int`.
        unsafe { lib.nvmlVgpuInstanceGetVmID(ids[0], vm.as_mut_ptr(), 80, &mut vm_type) },
        SUCCESS
    );
    assert_eq!((c_str(&vm), vm_type), ("vm-42".to_string(), 0));
    let mut on_gi = 0;
    assert_eq!(
        // SAFETY: `on_gi` is a local `unsigned int` the call writes.
        unsafe { lib.nvmlVgpuInstanceGetGpuInstanceId(ids[0], &mut on_gi) },
        SUCCESS
    );
    assert_eq!(on_gi.to_string(), gi_id);

    sim.ctl_ok(&["release", "--vm", "vm-42"]);
    assert_eq!(
        // SAFETY: `*n` is the capacity of a NULL buffer: with no vGPU left the call only writes
        // `n`, a local.
        unsafe { lib.nvmlDeviceGetActiveVgpus(h, &mut n, null_mut()) },
        SUCCESS
    );
    assert_eq!(n, 0);
    // SAFETY: `gi` is a GI handle of this library (decoded and checked, never dereferenced).
    assert_eq!(unsafe { lib.nvmlGpuInstanceDestroy(gi) }, SUCCESS);
}
