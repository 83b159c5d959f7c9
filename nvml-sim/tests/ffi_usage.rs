//! Simulated load (`nvml-sim load`) read back through nvml-wrapper and the raw
//! `nvmlDeviceGetVgpuUtilization` call, as the agent's sampler reads it.
#![allow(
    unsafe_code,
    reason = "nvml-wrapper has no safe wrapper for nvmlDeviceGetVgpuUtilization: the test calls the C ABI as the agent does"
)]
mod common;

use std::ffi::c_uint;
use std::ptr::null_mut;

use common::Sim;
use common::mig::*;
use nvml_wrapper::enum_wrappers::device::{EccCounter, MemoryError};
use nvml_wrapper::vgpu::VgpuInstance;
use nvml_wrapper_sys::bindings::*;

/// One `nvmlDeviceGetVgpuUtilization` round (count query, then fill): (instance, sm, mem, enc, dec).
fn vgpu_utilization(
    nvml: &nvml_wrapper::Nvml,
    h: nvmlDevice_t,
    last_seen: u64,
) -> Vec<(u32, u32, u32, u32, u32, u64)> {
    let lib = nvml.lib();
    let mut value_type: nvmlValueType_t = 99;
    let mut n: c_uint = 0;
    // SAFETY: the documented count query: NULL buffer, `*n == 0`; locals written.
    let rc = unsafe {
        lib.nvmlDeviceGetVgpuUtilization(h, last_seen, &mut value_type, &mut n, null_mut())
    };
    if rc == SUCCESS {
        return Vec::new();
    }
    assert_eq!(rc, nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE);
    // SAFETY: plain C struct of integers and unions of integers; all-zero is a valid value.
    let mut buf: Vec<nvmlVgpuInstanceUtilizationSample_t> =
        vec![unsafe { std::mem::zeroed() }; n as usize];
    // SAFETY: `buf` holds `n` samples, the capacity passed in `n`.
    let rc = unsafe {
        lib.nvmlDeviceGetVgpuUtilization(h, last_seen, &mut value_type, &mut n, buf.as_mut_ptr())
    };
    assert_eq!(rc, SUCCESS);
    assert_eq!(value_type, nvmlValueType_enum_NVML_VALUE_TYPE_UNSIGNED_INT);
    buf.truncate(n as usize);
    buf.iter()
        .map(|s| {
            // SAFETY: the value type is UNSIGNED_INT (checked above): `uiVal` is the field set.
            unsafe {
                (
                    s.vgpuInstance,
                    s.smUtil.uiVal,
                    s.memUtil.uiVal,
                    s.encUtil.uiVal,
                    s.decUtil.uiVal,
                    s.timeStamp,
                )
            }
        })
        .collect()
}

#[test]
fn load_phases_come_back_through_the_vgpu_calls() {
    let sim = Sim::new(&["a100-pcie-40gb"], &["--mig"]);
    let nvml = sim.nvml();
    let (d, h) = dev(&nvml);
    let gi = create_gi(&nvml, h, GI_3G_20GB, None).unwrap();
    let gi_id = gi_info(&nvml, gi).unwrap().id.to_string();
    assert!(
        vgpu_utilization(&nvml, h, 0).is_empty(),
        "no vGPU, no sample"
    );
    sim.ctl_ok(&[
        "occupy",
        "-i",
        "0",
        "--gi",
        &gi_id,
        "--vgpu",
        "grid_a100-3-20c",
        "--vm",
        "vm-7",
    ]);
    let idle = vgpu_utilization(&nvml, h, 0);
    assert_eq!(idle.len(), 1);
    let (_, sm, mem, enc, dec, _) = idle[0];
    assert_eq!((sm, mem, enc, dec), (0, 0, 0, 0), "idle until loaded");

    sim.ctl_ok(&[
        "load",
        "--vm",
        "vm-7",
        "--phase",
        "sm=45,mem=30,enc=5,dec=7,fb=6000,s=3600",
    ]);
    let busy = vgpu_utilization(&nvml, h, 0);
    let (instance, sm, mem, enc, dec, ts) = busy[0];
    assert_eq!((sm, mem, enc, dec), (45, 30, 5, 7));
    assert!(
        vgpu_utilization(&nvml, h, ts + 10_000_000).is_empty(),
        "nothing newer than last seen"
    );
    let vgpu = VgpuInstance::new(instance, &d);
    assert_eq!(vgpu.fb_usage().unwrap(), 6000 << 20);
    assert_eq!(vgpu.gpu_instance_id().unwrap().to_string(), gi_id);

    // By GPU instance, and the ECC counts of the GPU.
    sim.ctl_ok(&[
        "load",
        "-i",
        "0",
        "--gi",
        &gi_id,
        "--phase",
        "sm=90,fb=100",
        "--ecc-corrected",
        "3",
        "--ecc-uncorrected",
        "1",
    ]);
    assert_eq!(vgpu_utilization(&nvml, h, 0)[0].1, 90);
    assert_eq!(
        d.total_ecc_errors(MemoryError::Corrected, EccCounter::Volatile)
            .unwrap(),
        3
    );
    assert_eq!(
        d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile)
            .unwrap(),
        1
    );

    // Refusals name what to do.
    assert!(
        sim.ctl_err(&["load", "--vm", "nobody", "--phase", "sm=1"])
            .contains("no active vGPU")
    );
    assert!(
        sim.ctl_err(&["load", "--vm", "vm-7", "--phase", "sm=300"])
            .contains("percentage")
    );
    assert!(sim.ctl_err(&["load", "--vm", "vm-7"]).contains("--phase"));
}
