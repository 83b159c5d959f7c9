//! Models beyond the A100 through nvml-wrapper's real FFI path: the RTX PRO 6000 Blackwell
//! (12-unit placement grid, `+gfx` / `+me.all` / `-me` profiles) and driver rules that depend on
//! `--driver-version` (pre-R510 `4g` + `3g`). Sources: docs/mig-model.md.
#![allow(
    unsafe_code,
    reason = "nvml-wrapper has no safe wrapper for many MIG calls: the tests call the C ABI as the agent does"
)]
mod common;

use std::ptr::null_mut;

use common::mig::*;
use common::{Sim, c_str};
use nvml_wrapper::Nvml;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper_sys::bindings::*;

/// RTX PRO 6000 Blackwell profile ids (real `-lgip`).
const RTX_1G: u32 = 14;
const RTX_1G_GFX: u32 = 47;
const RTX_1G_NO_ME: u32 = 67;
const RTX_1G_ALL_ME: u32 = 65;
const RTX_2G: u32 = 5;
const RTX_2G_NO_ME: u32 = 66;
const RTX_4G: u32 = 0;
/// A100 `4g.20gb`.
const GI_4G_20GB: u32 = 5;
/// `NVML_GPU_INSTANCE_PROFILE_CAPS_GFX`.
const CAPS_GFX: u32 = 0x2;

/// Create a GI of `profile` at `start:size`, or auto-placed when `at` is `None`.
fn create_at(
    nvml: &Nvml,
    h: nvmlDevice_t,
    profile: u32,
    at: Option<(u32, u32)>,
) -> Result<u32, u32> {
    let mut gi: nvmlGpuInstance_t = null_mut();
    // SAFETY: `h` is a live device handle, `pl` a local placement the call reads and `gi` a
    // local handle slot it writes.
    let rc = unsafe {
        match at {
            None => nvml.lib().nvmlDeviceCreateGpuInstance(h, profile, &mut gi),
            Some((start, size)) => {
                let pl = nvmlGpuInstancePlacement_t { start, size };
                nvml.lib()
                    .nvmlDeviceCreateGpuInstanceWithPlacement(h, profile, &pl, &mut gi)
            }
        }
    };
    if rc != SUCCESS {
        return Err(rc);
    }
    gi_info(nvml, gi).map(|info| info.id)
}

fn remaining(nvml: &Nvml, h: nvmlDevice_t, profile: u32) -> u32 {
    let mut n = 0;
    // SAFETY: `h` is a live device handle and `n` a local `unsigned int` the call writes.
    let rc = unsafe {
        nvml.lib()
            .nvmlDeviceGetGpuInstanceRemainingCapacity(h, profile, &mut n)
    };
    assert_eq!(rc, SUCCESS, "remaining capacity of profile {profile}");
    n
}

fn possible(nvml: &Nvml, h: nvmlDevice_t, profile: u32) -> Vec<(u32, u32)> {
    let mut count = 0;
    // SAFETY: NULL placements is the documented count query; `count` is a local `unsigned int`.
    let rc = unsafe {
        nvml.lib()
            .nvmlDeviceGetGpuInstancePossiblePlacements_v2(h, profile, null_mut(), &mut count)
    };
    assert_eq!(rc, SUCCESS);
    let mut pls = vec![
        nvmlGpuInstancePlacement_t {
            start: 99,
            size: 99
        };
        count as usize
    ];
    // SAFETY: `pls` holds `count` placements, the number the count query returned.
    let rc = unsafe {
        nvml.lib().nvmlDeviceGetGpuInstancePossiblePlacements_v2(
            h,
            profile,
            pls.as_mut_ptr(),
            &mut count,
        )
    };
    assert_eq!(rc, SUCCESS);
    pls.iter().map(|p| (p.start, p.size)).collect()
}

#[test]
fn rtx_pro_6000_lists_its_variants_on_a_12_unit_grid() {
    let sim = Sim::new(&["rtx-pro-6000-bse-96gb"], &["--mig"]);
    let nvml = sim.nvml();
    let (d, h) = dev(&nvml);
    assert_eq!(
        d.name().unwrap(),
        "NVIDIA RTX PRO 6000 Blackwell Server Edition"
    );
    assert_eq!(d.pci_info().unwrap().pci_device_id, 0x2BB5_10DE);

    // Enumerate every profile index as the agent does.
    let mut ids = Vec::new();
    for index in 0.. {
        match d.profile_info(index) {
            Ok(p) => ids.push(p.id),
            Err(NvmlError::NotSupported) => {}
            Err(NvmlError::InvalidArg) => break,
            Err(e) => panic!("profile index {index}: {e:?}"),
        }
    }
    ids.sort();
    assert_eq!(ids, [0, 5, 14, 21, 32, 35, 47, 64, 65, 66, 67]);

    // `1g.24gb+gfx` is graphics-capable (v3 capabilities), `1g.24gb` is not.
    let v3_of = |profile_id: u32| {
        let mut v3: nvmlGpuInstanceProfileInfo_v3_t = zeroed_c();
        v3.version = version_of::<nvmlGpuInstanceProfileInfo_v3_t>(3);
        // SAFETY: `v3` is a local v3 struct whose version word says v3; the cast only retypes the
        // pointer for the v2-typed binding.
        let rc = unsafe {
            nvml.lib()
                .nvmlDeviceGetGpuInstanceProfileInfoByIdV(h, profile_id, (&raw mut v3).cast())
        };
        assert_eq!(rc, SUCCESS);
        v3
    };
    let gfx = v3_of(RTX_1G_GFX);
    assert_eq!(c_str(&gfx.name), "MIG 1g.24gb+gfx");
    assert_eq!(gfx.capabilities & CAPS_GFX, CAPS_GFX);
    let plain = v3_of(RTX_1G);
    assert_eq!(
        (
            plain.sliceCount,
            plain.instanceCount,
            plain.multiprocessorCount,
            plain.capabilities
        ),
        (1, 4, 46, 0)
    );
    let all_me = v3_of(RTX_1G_ALL_ME);
    assert_eq!(
        (
            all_me.decoderCount,
            all_me.encoderCount,
            all_me.jpegCount,
            all_me.ofaCount
        ),
        (4, 4, 4, 1)
    );

    assert_eq!(possible(&nvml, h, RTX_1G), [(0, 3), (3, 3), (6, 3), (9, 3)]);
    assert_eq!(possible(&nvml, h, RTX_2G), [(0, 6), (6, 6)]);
    assert_eq!(possible(&nvml, h, RTX_4G), [(0, 12)]);
}

#[test]
fn rtx_pro_6000_splits_into_four_and_refuses_overlaps() {
    let sim = Sim::new(&["rtx-pro-6000-bse-96gb"], &["--mig"]);
    let nvml = sim.nvml();
    let (_d, h) = dev(&nvml);
    assert_eq!(remaining(&nvml, h, RTX_1G), 4);
    // The real session: four auto-placed 1g GIs are GIs 3, 4, 5, 6.
    let ids: Vec<u32> = (0..4)
        .map(|_| create_at(&nvml, h, RTX_1G, None).unwrap())
        .collect();
    assert_eq!(ids, [3, 4, 5, 6]);
    for p in [RTX_1G, RTX_1G_GFX, RTX_1G_NO_ME, RTX_2G, RTX_4G] {
        assert_eq!(remaining(&nvml, h, p), 0, "profile {p}");
    }
    assert_eq!(
        create_at(&nvml, h, RTX_1G, None),
        Err(INSUFFICIENT_RESOURCES)
    );
    // One simulated machine at a time: `Sim` holds the environment lock while alive.
    drop(nvml);
    drop(sim);

    let sim = Sim::new(&["rtx-pro-6000-bse-96gb"], &["--mig"]);
    let nvml = sim.nvml();
    let (_d, h) = dev(&nvml);
    assert_eq!(create_at(&nvml, h, RTX_2G, Some((6, 6))), Ok(2));
    // 9:3 lies inside the 2g at 6:6; 1:3 is off the grid.
    assert_eq!(
        create_at(&nvml, h, RTX_1G, Some((9, 3))),
        Err(INSUFFICIENT_RESOURCES)
    );
    assert_eq!(
        create_at(&nvml, h, RTX_1G, Some((1, 3))),
        Err(INVALID_ARGUMENT)
    );
    // `+me.all` wants every media engine, and the 2g holds two decoders already.
    assert_eq!(remaining(&nvml, h, RTX_1G_ALL_ME), 0);
    assert_eq!(
        create_at(&nvml, h, RTX_1G_ALL_ME, Some((0, 3))),
        Err(INSUFFICIENT_RESOURCES)
    );
    drop(nvml);
    drop(sim);

    // Beside a `-me` 2g it fits, and afterwards only `-me` GIs do.
    let sim = Sim::new(&["rtx-pro-6000-bse-96gb"], &["--mig"]);
    let nvml = sim.nvml();
    let (_d, h) = dev(&nvml);
    assert_eq!(create_at(&nvml, h, RTX_2G_NO_ME, Some((6, 6))), Ok(2));
    assert_eq!(create_at(&nvml, h, RTX_1G_ALL_ME, Some((0, 3))), Ok(3));
    assert_eq!(remaining(&nvml, h, RTX_1G), 0);
    assert_eq!(
        create_at(&nvml, h, RTX_1G, Some((3, 3))),
        Err(INSUFFICIENT_RESOURCES)
    );
    assert_eq!(remaining(&nvml, h, RTX_1G_NO_ME), 1);
    assert_eq!(create_at(&nvml, h, RTX_1G_NO_ME, Some((3, 3))), Ok(4));
}

#[test]
fn drivers_before_r510_refuse_a_4g_beside_a_3g() {
    let sim = Sim::new(
        &["a100-pcie-40gb"],
        &["--mig", "--driver-version", "470.82.01"],
    );
    let nvml = sim.nvml();
    let (_d, h) = dev(&nvml);
    assert_eq!(remaining(&nvml, h, GI_4G_20GB), 1);
    assert_eq!(create_at(&nvml, h, GI_3G_20GB, Some((4, 4))), Ok(1));
    // 0:4 is free, but the driver does not combine the two shapes.
    assert_eq!(remaining(&nvml, h, GI_4G_20GB), 0);
    assert_eq!(
        create_at(&nvml, h, GI_4G_20GB, Some((0, 4))),
        Err(INSUFFICIENT_RESOURCES)
    );
    assert_eq!(remaining(&nvml, h, GI_3G_20GB), 1);
    // One simulated machine at a time: `Sim` holds the environment lock while alive.
    drop(nvml);
    drop(sim);

    let sim = Sim::new(
        &["a100-pcie-40gb"],
        &["--mig", "--driver-version", "510.47.03"],
    );
    let nvml = sim.nvml();
    let (_d, h) = dev(&nvml);
    assert_eq!(create_at(&nvml, h, GI_3G_20GB, Some((4, 4))), Ok(1));
    assert_eq!(remaining(&nvml, h, GI_4G_20GB), 1);
    assert_eq!(create_at(&nvml, h, GI_4G_20GB, Some((0, 4))), Ok(2));
}
