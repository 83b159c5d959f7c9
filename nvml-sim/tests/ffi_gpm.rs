//! GPM for MIG GPU instances read through nvml-wrapper's own GPM calls (`gpm_support`,
//! `gpm_mig_sample`, `gpm_metrics_get`): the real FFI path the agent uses.
#![allow(
    unsafe_code,
    reason = "nvml-wrapper has no safe wrapper for nvmlDeviceGetVgpuUtilization: the test calls the C ABI as the agent does"
)]
mod common;

use std::time::Duration;

use common::Sim;
use common::mig::*;
use nvml_wrapper::Nvml;
use nvml_wrapper::enums::gpm::GpmMetricId;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::gpm::gpm_metrics_get;

/// One GI with an active vGPU of `vgpu_type` for VM `vm-g` on GPU 0; its GI id.
fn gi_with_vgpu(sim: &Sim, nvml: &Nvml, vgpu_type: &str) -> u32 {
    let (_, h) = dev(nvml);
    let gi = create_gi(nvml, h, GI_3G_20GB, None).expect("3g GI");
    let id = gi_info(nvml, gi).expect("GI info").id;
    sim.ctl_ok(&[
        "occupy",
        "-i",
        "0",
        "--gi",
        &id.to_string(),
        "--vgpu",
        vgpu_type,
        "--vm",
        "vm-g",
    ]);
    id
}

/// SM util, SM occupancy and DRAM bandwidth between two samples `wait` apart.
fn metrics(nvml: &Nvml, gi: u32, wait: Duration) -> Vec<f64> {
    let d = nvml.device_by_index(0).expect("GPU 0");
    let first = d.gpm_mig_sample(gi).expect("first sample");
    std::thread::sleep(wait);
    let second = d.gpm_mig_sample(gi).expect("second sample");
    gpm_metrics_get(
        nvml,
        &first,
        &second,
        &[
            GpmMetricId::SmUtil,
            GpmMetricId::SmOccupancy,
            GpmMetricId::DramBwUtil,
        ],
    )
    .expect("metrics")
    .into_iter()
    .map(|m| m.expect("each metric").value)
    .collect()
}

#[test]
fn hopper_gi_activity_comes_back_as_gpm_metrics() {
    let sim = Sim::new(&["h100-sxm5-80gb"], &["--mig"]);
    let nvml = sim.nvml();
    let d = nvml.device_by_index(0).expect("GPU 0");
    assert!(d.gpm_support().expect("support query"), "Hopper has GPM");
    let gi = gi_with_vgpu(&sim, &nvml, "nvidia_h100xm-3-40c");

    let idle = metrics(&nvml, gi, Duration::from_millis(300));
    assert_eq!(idle, vec![0.0, 0.0, 0.0], "idle until loaded");

    // One phase for an hour: every pair of samples inside it sees exactly that level.
    sim.ctl_ok(&["load", "--vm", "vm-g", "--phase", "sm=60,mem=25,s=3600"]);
    let busy = metrics(&nvml, gi, Duration::from_millis(300));
    assert!((busy[0] - 60.0).abs() < 1e-6, "SM util {busy:?}");
    assert!((busy[1] - 30.0).abs() < 1e-6, "occupancy {busy:?}");
    assert!((busy[2] - 25.0).abs() < 1e-6, "DRAM bandwidth {busy:?}");

    // Per-vGPU utilization can be switched off; GPM still answers.
    sim.ctl_ok(&["load", "-i", "0", "--vgpu-utilization", "unsupported"]);
    let (_, h) = dev(&nvml);
    let (mut value_type, mut n) = (0, 0);
    // SAFETY: the documented count query: NULL buffer, `n == 0`; locals written.
    let rc = unsafe {
        nvml.lib()
            .nvmlDeviceGetVgpuUtilization(h, 0, &mut value_type, &mut n, std::ptr::null_mut())
    };
    assert_eq!(rc, NOT_SUPPORTED, "per-vGPU utilization switched off");
    assert!(
        metrics(&nvml, gi, Duration::from_millis(200))[0] > 59.0,
        "GPM is unaffected"
    );
}

#[test]
fn gpm_refusals() {
    let sim = Sim::new(&["h100-sxm5-80gb"], &["--mig"]);
    let nvml = sim.nvml();
    let d = nvml.device_by_index(0).expect("GPU 0");
    let gi = gi_with_vgpu(&sim, &nvml, "nvidia_h100xm-3-40c");
    assert!(
        matches!(d.gpm_mig_sample(gi + 5), Err(NvmlError::InvalidArg)),
        "no such GI"
    );
    // Two samples of different GIs cannot be compared, nor a sample with itself.
    let (_, h) = dev(&nvml);
    let other = gi_info(&nvml, create_gi(&nvml, h, GI_3G_20GB, None).expect("GI")).expect("info");
    let a = d.gpm_mig_sample(gi).expect("sample");
    std::thread::sleep(Duration::from_millis(20));
    let b = d.gpm_mig_sample(other.id).expect("sample");
    assert!(matches!(
        gpm_metrics_get(&nvml, &a, &b, &[GpmMetricId::SmUtil]),
        Err(NvmlError::InvalidArg)
    ));
    assert!(matches!(
        gpm_metrics_get(&nvml, &a, &a, &[GpmMetricId::SmUtil]),
        Err(NvmlError::InvalidArg)
    ));
    // A metric the simulation does not compute fails on its own, the others still answer.
    std::thread::sleep(Duration::from_millis(20));
    let c = d.gpm_mig_sample(gi).expect("sample");
    let got = gpm_metrics_get(
        &nvml,
        &a,
        &c,
        &[GpmMetricId::SmUtil, GpmMetricId::NvlinkTotalRxPerSec],
    )
    .expect("request");
    assert!(got[0].is_ok());
    assert!(matches!(got[1], Err(NvmlError::NotSupported)));
    // Freeing reports errors; a freed handle is never used again by the wrapper.
    a.free().expect("free");
}

#[test]
fn ampere_has_no_gpm() {
    let sim = Sim::new(&["a100-pcie-40gb"], &["--mig"]);
    let nvml = sim.nvml();
    let d = nvml.device_by_index(0).expect("GPU 0");
    assert!(!d.gpm_support().expect("support query"), "A100 has no GPM");
    let gi = gi_with_vgpu(&sim, &nvml, "grid_a100-3-20c");
    assert!(matches!(d.gpm_mig_sample(gi), Err(NvmlError::NotSupported)));
}

#[test]
fn hopper_without_mig_mode_has_no_mig_samples() {
    let sim = Sim::new(&["h100-sxm5-80gb"], &[]);
    let nvml = sim.nvml();
    let d = nvml.device_by_index(0).expect("GPU 0");
    assert!(d.gpm_support().expect("support query"));
    assert!(matches!(d.gpm_mig_sample(1), Err(NvmlError::NotSupported)));
}
