//! Time-sliced vGPUs (issue 18) through nvml-wrapper and the raw per-GI calls, as the agent
//! reads them: the types a GPU supports and their maxima, a GI filled slot by slot until the
//! driver refuses, and whole-GPU time-sliced vGPUs on a GPU with MIG disabled.
#![allow(
    unsafe_code,
    reason = "nvml-wrapper has no safe wrapper for the per-GI vGPU calls: the test calls the C ABI as the agent does"
)]
mod common;

use std::ffi::c_uint;
use std::ptr::null_mut;

use common::Sim;
use common::mig::*;
use nvml_wrapper::Nvml;
use nvml_wrapper_sys::bindings::*;

const RTX: &str = "rtx-pro-6000-bse-96gb";
const GI_1G_24GB: u32 = 14;
const VERSION_MISMATCH: u32 = nvmlReturn_enum_NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
const FUNCTION_NOT_FOUND: u32 = nvmlReturn_enum_NVML_ERROR_FUNCTION_NOT_FOUND;
/// A driver with the per-GI vGPU calls (R575 and later, as simulated).
const NEW_DRIVER: [&str; 2] = ["--driver-version", "575.57.08"];

/// `nvmlVgpuTypeGetMaxInstancesPerGpuInstance` with the given version word.
fn max_per_gi(nvml: &Nvml, type_id: u32, version: u32) -> Result<u32, u32> {
    let mut info = nvmlVgpuTypeMaxInstance_t {
        version,
        vgpuTypeId: type_id,
        maxInstancePerGI: 0,
    };
    // SAFETY: `info` is a local, initialised v1 struct the call reads and writes.
    let rc = unsafe {
        nvml.lib()
            .nvmlVgpuTypeGetMaxInstancesPerGpuInstance(&mut info)
    };
    if rc == SUCCESS {
        Ok(info.maxInstancePerGI)
    } else {
        Err(rc)
    }
}

/// `nvmlGpuInstanceGetCreatableVgpus`: size query, then fill.
fn creatable_in_gi(nvml: &Nvml, gi: nvmlGpuInstance_t) -> Result<Vec<u32>, u32> {
    let mut info = nvmlVgpuTypeIdInfo_t {
        version: version_of::<nvmlVgpuTypeIdInfo_t>(1),
        vgpuCount: 0,
        vgpuTypeIds: null_mut(),
    };
    // SAFETY: the documented size query: count 0, NULL buffer, in a local v1 struct.
    let rc = unsafe { nvml.lib().nvmlGpuInstanceGetCreatableVgpus(gi, &mut info) };
    if rc == SUCCESS {
        return Ok(Vec::new());
    }
    if rc != nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE {
        return Err(rc);
    }
    let mut ids: Vec<c_uint> = vec![0; info.vgpuCount as usize];
    info.vgpuTypeIds = ids.as_mut_ptr();
    // SAFETY: `ids` holds `info.vgpuCount` elements, the room the struct declares.
    let rc = unsafe { nvml.lib().nvmlGpuInstanceGetCreatableVgpus(gi, &mut info) };
    assert_eq!(rc, SUCCESS);
    ids.truncate(info.vgpuCount as usize);
    Ok(ids)
}

/// `nvmlGpuInstanceGetActiveVgpus`: size query, then fill.
fn active_in_gi(nvml: &Nvml, gi: nvmlGpuInstance_t) -> Result<Vec<u32>, u32> {
    let mut info = nvmlActiveVgpuInstanceInfo_t {
        version: version_of::<nvmlActiveVgpuInstanceInfo_t>(1),
        vgpuCount: 0,
        vgpuInstances: null_mut(),
    };
    // SAFETY: the documented size query: count 0, NULL buffer, in a local v1 struct.
    let rc = unsafe { nvml.lib().nvmlGpuInstanceGetActiveVgpus(gi, &mut info) };
    if rc == SUCCESS {
        return Ok(Vec::new());
    }
    if rc != nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE {
        return Err(rc);
    }
    let mut ids: Vec<c_uint> = vec![0; info.vgpuCount as usize];
    info.vgpuInstances = ids.as_mut_ptr();
    // SAFETY: `ids` holds `info.vgpuCount` elements, the room the struct declares.
    let rc = unsafe { nvml.lib().nvmlGpuInstanceGetActiveVgpus(gi, &mut info) };
    assert_eq!(rc, SUCCESS);
    Ok(ids)
}

fn type_id(nvml: &Nvml, index: u32, name: &str) -> u32 {
    let d = nvml.device_by_index(index).expect("device");
    d.vgpu_supported_types()
        .expect("supported types")
        .iter()
        .find(|t| t.name().expect("name") == name)
        .unwrap_or_else(|| panic!("{name} supported"))
        .id()
}

#[test]
fn a_gi_takes_three_dc_1_8c_then_the_driver_refuses() {
    let sim = Sim::new(&[RTX], &["--mig", NEW_DRIVER[0], NEW_DRIVER[1]]);
    let nvml = sim.nvml();
    let (d, h) = dev(&nvml);
    let types = d.vgpu_supported_types().expect("supported");
    let names: Vec<String> = types.iter().map(|t| t.name().expect("name")).collect();
    assert!(names.contains(&"NVIDIA DC-1-8C".to_string()), "{names:?}");
    assert!(
        !names.contains(&"NVIDIA DC-8C".to_string()),
        "MIG mode: MIG-backed only"
    );
    let dc18 = type_id(&nvml, 0, "NVIDIA DC-1-8C");
    let t = types.iter().find(|t| t.id() == dc18).expect("listed");
    assert_eq!(t.instance_profile_id().expect("GI profile"), GI_1G_24GB);
    assert_eq!(t.max_instances().expect("per GPU"), 12);
    assert_eq!(
        max_per_gi(&nvml, dc18, version_of::<nvmlVgpuTypeMaxInstance_t>(1)),
        Ok(3)
    );
    assert_eq!(max_per_gi(&nvml, dc18, 1), Err(VERSION_MISMATCH));
    assert_eq!(
        max_per_gi(&nvml, 7, version_of::<nvmlVgpuTypeMaxInstance_t>(1)),
        Err(INVALID_ARGUMENT)
    );

    let gi = create_gi(&nvml, h, GI_1G_24GB, None).expect("1g.24gb");
    let gi_id = gi_info(&nvml, gi).expect("info").id.to_string();
    assert!(
        creatable_in_gi(&nvml, gi)
            .expect("creatable")
            .contains(&dc18)
    );
    for n in 1..=3 {
        let vm = format!("vm-{n}");
        sim.ctl_ok(&[
            "occupy",
            "-i",
            "0",
            "--gi",
            &gi_id,
            "--vgpu",
            "nvidia_dc-1-8c",
            "--vm",
            &vm,
        ]);
        let active = active_in_gi(&nvml, gi).expect("active");
        assert_eq!(active.len(), n);
        let inst = nvml_wrapper::vgpu::VgpuInstance::new(active[n - 1], &d);
        assert_eq!(inst.instance_type().expect("type").id(), dc18);
        assert_eq!(
            inst.gpu_instance_id().expect("GI"),
            gi_info(&nvml, gi).unwrap().id
        );
    }
    assert_eq!(creatable_in_gi(&nvml, gi), Ok(Vec::new()));
    let err = sim.ctl_err(&[
        "occupy",
        "-i",
        "0",
        "--gi",
        &gi_id,
        "--vgpu",
        "NVIDIA DC-1-8C",
        "--vm",
        "vm-4",
    ]);
    assert!(
        err.contains("INSUFFICIENT_RESOURCES") && err.contains("3 vGPU"),
        "{err}"
    );
    // The GI backs vGPUs: destroying it is refused, as with one whole-GI vGPU.
    // SAFETY: `gi` is a GI handle of this library (decoded and checked, never dereferenced).
    assert_eq!(unsafe { nvml.lib().nvmlGpuInstanceDestroy(gi) }, IN_USE);
}

#[test]
fn gpus_without_the_feature_answer_not_supported_and_list_no_types() {
    let sim = Sim::new(
        &["a100-pcie-40gb"],
        &["--mig", NEW_DRIVER[0], NEW_DRIVER[1]],
    );
    let nvml = sim.nvml();
    let (d, h) = dev(&nvml);
    assert!(d.vgpu_supported_types().expect("empty list").is_empty());
    let gi = create_gi(&nvml, h, GI_3G_20GB, None).expect("3g.20gb");
    assert_eq!(creatable_in_gi(&nvml, gi), Err(NOT_SUPPORTED));
    assert_eq!(active_in_gi(&nvml, gi), Err(NOT_SUPPORTED));
}

#[test]
fn a_gpu_with_mig_disabled_runs_one_size_of_whole_gpu_vgpus() {
    let sim = Sim::new(&[RTX, RTX], &[]);
    let nvml = sim.nvml();
    let d = nvml.device_by_index(1).expect("GPU 1");
    let names: Vec<String> = d
        .vgpu_supported_types()
        .expect("supported")
        .iter()
        .map(|t| t.name().expect("name"))
        .collect();
    assert_eq!(names.len(), 6, "{names:?}");
    let dc24 = type_id(&nvml, 1, "NVIDIA DC-24C");
    for n in 0..4 {
        sim.ctl_ok(&[
            "occupy",
            "-i",
            "1",
            "--vgpu",
            "NVIDIA DC-24C",
            "--vm",
            &format!("vm-{n}"),
        ]);
    }
    let err = sim.ctl_err(&[
        "occupy",
        "-i",
        "1",
        "--vgpu",
        "NVIDIA DC-24C",
        "--vm",
        "vm-9",
    ]);
    assert!(err.contains("INSUFFICIENT_RESOURCES"), "{err}");
    assert!(d.vgpu_creatable_types().expect("creatable").is_empty());
    sim.ctl_ok(&["release", "--vm", "vm-0"]);
    let creatable: Vec<u32> = d
        .vgpu_creatable_types()
        .expect("creatable")
        .iter()
        .map(|t| t.id())
        .collect();
    assert_eq!(creatable, [dc24], "equal-size mode: only the running type");
    let err = sim.ctl_err(&[
        "occupy",
        "-i",
        "1",
        "--vgpu",
        "NVIDIA DC-8C",
        "--vm",
        "vm-9",
    ]);
    assert!(err.contains("equal-size"), "{err}");
    let active = d.active_vgpus().expect("active");
    assert_eq!(active.len(), 3);
    assert_eq!(active[0].gpu_instance_id().expect("no GI"), u32::MAX);
    // A MIG-backed type does not run on a whole GPU.
    let err = sim.ctl_err(&[
        "occupy",
        "-i",
        "0",
        "--vgpu",
        "NVIDIA DC-1-8C",
        "--vm",
        "vm-9",
    ]);
    assert!(err.contains("MIG disabled"), "{err}");
}

#[test]
fn drivers_before_r575_lack_the_per_gi_calls() {
    let sim = Sim::new(&[RTX], &["--mig", "--driver-version", "550.54.15"]);
    let nvml = sim.nvml();
    let (_, h) = dev(&nvml);
    let gi = create_gi(&nvml, h, GI_1G_24GB, None).expect("1g.24gb");
    assert_eq!(creatable_in_gi(&nvml, gi), Err(FUNCTION_NOT_FOUND));
    assert_eq!(active_in_gi(&nvml, gi), Err(FUNCTION_NOT_FOUND));
    let dc18 = type_id(&nvml, 0, "NVIDIA DC-1-8C");
    assert_eq!(
        max_per_gi(&nvml, dc18, version_of::<nvmlVgpuTypeMaxInstance_t>(1)),
        Err(FUNCTION_NOT_FOUND)
    );
}
