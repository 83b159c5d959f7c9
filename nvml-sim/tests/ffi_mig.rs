//! GPU-instance management through nvml-wrapper: the safe wrappers where nvml-wrapper has
//! them, raw `nvml.lib()` calls with nvml-wrapper-sys structs for the rest (as the agent
//! does). Compute instances, MIG devices, processes and vGPUs: `ffi_compute.rs`.
#![allow(
    unsafe_code,
    reason = "nvml-wrapper has no safe wrapper for many MIG calls: the tests call the C ABI as the agent does"
)]
mod common;

use std::ptr::null_mut;

use common::mig::*;
use common::{Sim, c_str};
use nvml_wrapper::error::{NvmlError, nvml_try};
use nvml_wrapper_sys::bindings::*;

#[test]
fn mig_mode_is_pending_until_a_reset_by_another_process() {
    let sim = Sim::new(&["a100-pcie-40gb"], &[]);
    let nvml = sim.nvml();
    let (d, h) = dev(&nvml);
    let mode = d.mig_mode().unwrap();
    assert_eq!((mode.current, mode.pending), (0, 0));
    assert_eq!(d.mig_device_count().unwrap(), 0);
    assert!(matches!(
        d.profile_info(NVML_GPU_INSTANCE_PROFILE_3_SLICE),
        Err(NvmlError::NotSupported)
    ));
    assert_eq!(create_gi(&nvml, h, GI_3G_20GB, None), Err(NOT_SUPPORTED));
    // Possible placements answer regardless of MIG mode (nvml.h).
    let mut count = 0;
    assert_eq!(
        // SAFETY: NULL placements is the documented count query; `count` is a local `unsigned int`.
        unsafe {
            nvml.lib().nvmlDeviceGetGpuInstancePossiblePlacements_v2(
                h,
                GI_3G_20GB,
                null_mut(),
                &mut count,
            )
        },
        SUCCESS
    );
    assert_eq!(count, 2);

    assert_eq!(
        d.set_mig_mode(true).unwrap(),
        nvmlReturn_enum_NVML_ERROR_RESET_REQUIRED
    );
    let mode = d.mig_mode().unwrap();
    assert_eq!((mode.current, mode.pending), (0, 1));
    assert_eq!(create_gi(&nvml, h, GI_3G_20GB, None), Err(NOT_SUPPORTED));

    // The control binary is a second process sharing the state file.
    sim.ctl_ok(&["reset"]);
    let mode = d.mig_mode().unwrap();
    assert_eq!((mode.current, mode.pending), (1, 1));
    assert_eq!(d.mig_device_count().unwrap(), 7);
    assert_eq!(
        d.set_mig_mode(true).unwrap(),
        SUCCESS,
        "already enabled: nothing to activate"
    );

    // Instances do not survive a reset; disabling clears them for good.
    create_gi(&nvml, h, GI_3G_20GB, None).unwrap();
    assert_eq!(
        d.set_mig_mode(false).unwrap(),
        nvmlReturn_enum_NVML_ERROR_RESET_REQUIRED
    );
    sim.ctl_ok(&["reset", "-i", "0"]);
    let mode = d.mig_mode().unwrap();
    assert_eq!((mode.current, mode.pending), (0, 0));
    assert_eq!(
        sim.show()["gpus"][0]["mig"]["gpu_instances"]
            .as_object()
            .map(|m| m.len()),
        Some(0)
    );

    let mut status = 0;
    assert_eq!(
        // SAFETY: `h` is a live device handle and `status` a local `nvmlReturn_t`; mode 2 is
        // refused before anything is written.
        unsafe { nvml.lib().nvmlDeviceSetMigMode(h, 2, &mut status) },
        INVALID_ARGUMENT
    );
}

#[test]
fn activation_status_can_mimic_esxi() {
    let sim = Sim::new(&["a100-pcie-40gb"], &["--mig-activation", "not-supported"]);
    let nvml = sim.nvml();
    let (d, _) = dev(&nvml);
    assert_eq!(d.set_mig_mode(true).unwrap(), NOT_SUPPORTED);
    assert_eq!(d.mig_mode().unwrap().current, 0);
}

#[test]
fn gpu_instance_profile_info_v1_v2_v3() {
    let sim = Sim::new(&["a100-pcie-40gb"], &["--mig"]);
    let nvml = sim.nvml();
    let (d, h) = dev(&nvml);

    let p = d.profile_info(NVML_GPU_INSTANCE_PROFILE_3_SLICE).unwrap();
    assert_eq!(
        (
            p.id,
            p.slice_count,
            p.instance_count,
            p.memory_size_mb,
            p.multiprocessor_count
        ),
        (GI_3G_20GB, 3, 2, 19968, 42)
    );
    assert_eq!(
        (p.copy_engine_count, p.decoder_count, p.is_p2p_supported),
        (3, 2, false)
    );

    let mut v2: nvmlGpuInstanceProfileInfo_v2_t = zeroed_c();
    v2.version = version_of::<nvmlGpuInstanceProfileInfo_v2_t>(2);
    assert_eq!(v2.version, 0x0200_0098);
    // SAFETY: `v2` is a local v2 struct whose version word says v2, so the call writes a struct of
    // its size.
    let rc = unsafe {
        nvml.lib().nvmlDeviceGetGpuInstanceProfileInfoV(
            h,
            NVML_GPU_INSTANCE_PROFILE_3_SLICE,
            &mut v2,
        )
    };
    assert_eq!(rc, SUCCESS);
    assert_eq!(
        (v2.id, v2.isP2pSupported, v2.sliceCount, v2.instanceCount),
        (9, 0, 3, 2)
    );
    assert_eq!(
        (v2.multiprocessorCount, v2.copyEngineCount, v2.memorySizeMB),
        (42, 3, 19968)
    );
    assert_eq!(c_str(&v2.name), "MIG 3g.20gb");

    let mut v3: nvmlGpuInstanceProfileInfo_v3_t = zeroed_c();
    v3.version = version_of::<nvmlGpuInstanceProfileInfo_v3_t>(3);
    assert_eq!(v3.version, 0x0300_0098);
    // SAFETY: `v3` is a local v3 struct (152 bytes, as v2) whose version says v3; the cast only
    // retypes the pointer for the v2-typed binding.
    let rc = unsafe {
        nvml.lib().nvmlDeviceGetGpuInstanceProfileInfoV(
            h,
            NVML_GPU_INSTANCE_PROFILE_3_SLICE,
            (&raw mut v3).cast(),
        )
    };
    assert_eq!(rc, SUCCESS);
    // v3 has no isP2pSupported: every field after `id` sits 4 bytes earlier than in v2.
    assert_eq!(
        (
            v3.id,
            v3.sliceCount,
            v3.instanceCount,
            v3.multiprocessorCount
        ),
        (9, 3, 2, 42)
    );
    assert_eq!((v3.memorySizeMB, v3.capabilities), (19968, 0));
    assert_eq!(c_str(&v3.name), "MIG 3g.20gb");

    let mut by_id: nvmlGpuInstanceProfileInfo_v3_t = zeroed_c();
    by_id.version = v3.version;
    // SAFETY: `by_id` is a local v3 struct with the v3 version word; the cast only retypes the
    // pointer for the v2-typed binding.
    let rc = unsafe {
        nvml.lib()
            .nvmlDeviceGetGpuInstanceProfileInfoByIdV(h, GI_7G_40GB, (&raw mut by_id).cast())
    };
    assert_eq!(rc, SUCCESS);
    assert_eq!(
        (
            by_id.id,
            by_id.sliceCount,
            by_id.memorySizeMB,
            c_str(&by_id.name)
        ),
        (0, 7, 40192, "MIG 7g.40gb".into())
    );

    let mut bad: nvmlGpuInstanceProfileInfo_v2_t = zeroed_c();
    bad.version = 0x0100_0098;
    // SAFETY: `bad` is a local v2 struct; its unknown version is refused, and any write would still
    // fit.
    let rc = unsafe {
        nvml.lib()
            .nvmlDeviceGetGpuInstanceProfileInfoV(h, 0, &mut bad)
    };
    assert_eq!(rc, INVALID_ARGUMENT);

    // Enumeration idiom: NOT_SUPPORTED for holes, INVALID_ARGUMENT past the end.
    let mut ids = Vec::new();
    let mut index = 0;
    loop {
        match d.profile_info(index) {
            Ok(p) => ids.push(p.id),
            Err(NvmlError::NotSupported) => {}
            Err(NvmlError::InvalidArg) => break,
            Err(e) => panic!("profile index {index}: {e:?}"),
        }
        index += 1;
    }
    assert_eq!(index, 0x12);
    ids.sort();
    assert_eq!(ids, [0, 5, 9, 14, 15, 19, 20]);
    assert!(matches!(
        d.profile_info(5 /* 8_SLICE */),
        Err(NvmlError::NotSupported)
    ));
}

#[test]
fn gpu_instances_placements_capacity_and_errors() {
    let sim = Sim::new(&["a100-pcie-40gb"], &["--mig"]);
    let nvml = sim.nvml();
    let (_d, h) = dev(&nvml);
    let lib = nvml.lib();

    let mut count = 0;
    assert_eq!(
        // SAFETY: NULL placements is the documented count query; `count` is a local `unsigned int`.
        unsafe {
            lib.nvmlDeviceGetGpuInstancePossiblePlacements_v2(h, GI_3G_20GB, null_mut(), &mut count)
        },
        SUCCESS
    );
    let mut pls = vec![
        nvmlGpuInstancePlacement_t {
            start: 99,
            size: 99
        };
        count as usize
    ];
    assert_eq!(
        // SAFETY: `pls` holds `count` placements, the number the count query above returned.
        unsafe {
            lib.nvmlDeviceGetGpuInstancePossiblePlacements_v2(
                h,
                GI_3G_20GB,
                pls.as_mut_ptr(),
                &mut count,
            )
        },
        SUCCESS
    );
    let starts: Vec<(u32, u32)> = pls.iter().map(|p| (p.start, p.size)).collect();
    assert_eq!(starts, [(0, 4), (4, 4)]);
    assert_eq!(
        // SAFETY: NULL placements asks for the count only; `count` is a local `unsigned int`.
        unsafe { lib.nvmlDeviceGetGpuInstancePossiblePlacements_v2(h, 77, null_mut(), &mut count) },
        NOT_SUPPORTED
    );

    let remaining = |profile| {
        let mut n = 0;
        // SAFETY: `h` is a live device handle and `n` a local `unsigned int` the call writes.
        let rc = unsafe { lib.nvmlDeviceGetGpuInstanceRemainingCapacity(h, profile, &mut n) };
        assert_eq!(rc, SUCCESS);
        n
    };
    assert_eq!(remaining(GI_3G_20GB), 2);
    assert_eq!(remaining(GI_1G_5GB), 7);

    // Auto placement.
    let a = create_gi(&nvml, h, GI_3G_20GB, None).unwrap();
    let a_info = gi_info(&nvml, a).unwrap();
    assert_eq!(a_info.profileId, GI_3G_20GB);
    assert_eq!(a_info.device, h, "GetInfo reports the parent device handle");
    assert!([0, 4].contains(&a_info.placement.start) && a_info.placement.size == 4);
    assert_eq!(remaining(GI_3G_20GB), 1);

    // Illegal start, wrong size, overlap.
    assert_eq!(
        create_gi(&nvml, h, GI_3G_20GB, Some(1)),
        Err(INVALID_ARGUMENT)
    );
    let bad_size = nvmlGpuInstancePlacement_t { start: 0, size: 2 };
    let mut gi = null_mut();
    assert_eq!(
        // SAFETY: `bad_size` is a local placement the call only reads; `gi` is a local handle slot.
        unsafe { lib.nvmlDeviceCreateGpuInstanceWithPlacement(h, GI_3G_20GB, &bad_size, &mut gi) },
        INVALID_ARGUMENT
    );
    assert_eq!(
        create_gi(&nvml, h, GI_1G_5GB, Some(a_info.placement.start + 1)),
        Err(INSUFFICIENT_RESOURCES)
    );
    assert_eq!(
        create_gi(&nvml, h, GI_3G_20GB, Some(a_info.placement.start)),
        Err(INSUFFICIENT_RESOURCES)
    );

    // The other half, explicitly; then the GPU is full for 3g.
    let other = if a_info.placement.start == 0 { 4 } else { 0 };
    let b = create_gi(&nvml, h, GI_3G_20GB, Some(other)).unwrap();
    assert_eq!(gi_info(&nvml, b).unwrap().placement.start, other);
    assert_eq!(remaining(GI_3G_20GB), 0);
    let rc = create_gi(&nvml, h, GI_3G_20GB, None).unwrap_err();
    assert_eq!(rc, INSUFFICIENT_RESOURCES);
    assert!(
        matches!(nvml_try(rc), Err(NvmlError::UnexpectedVariant(23))),
        "how the agent sees it"
    );
    assert_eq!(create_gi(&nvml, h, 77, None), Err(INVALID_ARGUMENT));
    assert_eq!(
        // SAFETY: a NULL out-pointer must be refused before anything is created or written.
        unsafe { lib.nvmlDeviceCreateGpuInstance(h, GI_1G_5GB, null_mut()) },
        INVALID_ARGUMENT
    );

    // Listing and lookup.
    let mut list = vec![null_mut(); 2];
    let mut n = 0;
    assert_eq!(
        // SAFETY: `list` holds 2 handles, the 3g profile's `instanceCount`, which nvml.h requires;
        // `n` is a local.
        unsafe { lib.nvmlDeviceGetGpuInstances(h, GI_3G_20GB, list.as_mut_ptr(), &mut n) },
        SUCCESS
    );
    assert_eq!(n, 2);
    let mut by_id = null_mut();
    assert_eq!(
        // SAFETY: `by_id` is a local handle slot the call writes.
        unsafe { lib.nvmlDeviceGetGpuInstanceById(h, a_info.id, &mut by_id) },
        SUCCESS
    );
    assert_eq!(by_id, a);
    assert_eq!(
        // SAFETY: `by_id` is a local handle slot; an unknown id is refused without writing.
        unsafe { lib.nvmlDeviceGetGpuInstanceById(h, 99, &mut by_id) },
        NOT_FOUND
    );

    // Destroy; the handle goes stale.
    // SAFETY: `b` is a GI handle of this library; handles are decoded and checked, never
    // dereferenced.
    assert_eq!(unsafe { lib.nvmlGpuInstanceDestroy(b) }, SUCCESS);
    assert_eq!(gi_info(&nvml, b).unwrap_err(), INVALID_ARGUMENT);
    // SAFETY: a stale handle is an integer the library checks against its state and refuses;
    // nothing is dereferenced.
    assert_eq!(unsafe { lib.nvmlGpuInstanceDestroy(b) }, INVALID_ARGUMENT);
    assert_eq!(
        // SAFETY: `list` still holds 2 handles, the profile's `instanceCount`; `n` is a local.
        unsafe { lib.nvmlDeviceGetGpuInstances(h, GI_3G_20GB, list.as_mut_ptr(), &mut n) },
        SUCCESS
    );
    assert_eq!(n, 1);
    assert_eq!(remaining(GI_3G_20GB), 1);
}
