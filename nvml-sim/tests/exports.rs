//! The built library's dynamic symbol table lists every NVML function the checklist in
//! research/nvml-mig.md §7 requires (what `nm -D --defined-only` would print), read from the
//! ELF file itself so no binutils are needed.
mod common;

use std::collections::BTreeSet;

use object::{Object, ObjectSymbol};

/// Symbols nvml-wrapper needs to init/drop plus every call the agent and the issue name.
const REQUIRED: &[&str] = &[
    // lifetime and system
    "nvmlInit_v2",
    "nvmlInitWithFlags",
    "nvmlShutdown",
    "nvmlErrorString",
    "nvmlSystemGetDriverVersion",
    "nvmlSystemGetNVMLVersion",
    "nvmlSystemGetCudaDriverVersion",
    "nvmlSystemGetCudaDriverVersion_v2",
    "nvmlSystemGetProcessName",
    // devices
    "nvmlDeviceGetCount_v2",
    "nvmlDeviceGetHandleByIndex_v2",
    "nvmlDeviceGetHandleByUUID",
    "nvmlDeviceGetHandleByPciBusId_v2",
    "nvmlDeviceGetIndex",
    "nvmlDeviceGetName",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetPciInfo_v3",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetMemoryInfo_v2",
    "nvmlDeviceGetAttributes_v2",
    "nvmlDeviceGetComputeRunningProcesses_v3",
    // XID events
    "nvmlEventSetCreate",
    "nvmlDeviceRegisterEvents",
    "nvmlEventSetWait_v2",
    "nvmlEventSetFree",
    // MIG mode and MIG devices
    "nvmlDeviceGetMigMode",
    "nvmlDeviceSetMigMode",
    "nvmlDeviceGetMaxMigDeviceCount",
    "nvmlDeviceGetMigDeviceHandleByIndex",
    "nvmlDeviceGetDeviceHandleFromMigDeviceHandle",
    "nvmlDeviceIsMigDeviceHandle",
    "nvmlDeviceGetGpuInstanceId",
    "nvmlDeviceGetComputeInstanceId",
    // GPU instances
    "nvmlDeviceGetGpuInstanceProfileInfo",
    "nvmlDeviceGetGpuInstanceProfileInfoV",
    "nvmlDeviceGetGpuInstanceProfileInfoByIdV",
    "nvmlDeviceGetGpuInstancePossiblePlacements_v2",
    "nvmlDeviceGetGpuInstanceRemainingCapacity",
    "nvmlDeviceCreateGpuInstance",
    "nvmlDeviceCreateGpuInstanceWithPlacement",
    "nvmlGpuInstanceDestroy",
    "nvmlDeviceGetGpuInstances",
    "nvmlDeviceGetGpuInstanceById",
    "nvmlGpuInstanceGetInfo",
    // compute instances
    "nvmlGpuInstanceGetComputeInstanceProfileInfo",
    "nvmlGpuInstanceGetComputeInstanceProfileInfoV",
    "nvmlGpuInstanceGetComputeInstancePossiblePlacements",
    "nvmlGpuInstanceGetComputeInstanceRemainingCapacity",
    "nvmlGpuInstanceCreateComputeInstance",
    "nvmlGpuInstanceCreateComputeInstanceWithPlacement",
    "nvmlComputeInstanceDestroy",
    "nvmlGpuInstanceGetComputeInstances",
    "nvmlGpuInstanceGetComputeInstanceById",
    "nvmlComputeInstanceGetInfo_v2",
    // legacy names for other clients
    "nvmlInit",
    "nvmlDeviceGetCount",
    "nvmlDeviceGetHandleByIndex",
    "nvmlDeviceGetHandleByPciBusId",
    "nvmlComputeInstanceGetInfo",
    "nvmlDeviceGetComputeRunningProcesses",
    "nvmlDeviceGetComputeRunningProcesses_v2",
    "nvmlDeviceGetGpuInstancePossiblePlacements",
    // vGPU (MIG-backed, host side)
    "nvmlDeviceGetActiveVgpus",
    "nvmlVgpuInstanceGetType",
    "nvmlVgpuInstanceGetVmID",
    "nvmlVgpuInstanceGetGpuInstanceId",
    "nvmlVgpuTypeGetName",
    // vGPU types and time-sliced vGPUs (issue 18)
    "nvmlDeviceGetSupportedVgpus",
    "nvmlDeviceGetCreatableVgpus",
    "nvmlVgpuTypeGetMaxInstances",
    "nvmlVgpuTypeGetGpuInstanceProfileId",
    "nvmlVgpuTypeGetMaxInstancesPerGpuInstance",
    "nvmlGpuInstanceGetCreatableVgpus",
    "nvmlGpuInstanceGetActiveVgpus",
    // utilization (host side) and ECC counts
    "nvmlDeviceGetVgpuUtilization",
    "nvmlVgpuInstanceGetFbUsage",
    "nvmlDeviceGetTotalEccErrors",
    // GPM per GPU instance (Hopper and newer)
    "nvmlGpmQueryDeviceSupport",
    "nvmlGpmSampleAlloc",
    "nvmlGpmSampleFree",
    "nvmlGpmMigSampleGet",
    "nvmlGpmMetricsGet",
];

fn exported_nvml_symbols() -> BTreeSet<String> {
    let bytes = std::fs::read(common::lib_path()).expect("read libnvml_sim.so");
    let file = object::File::parse(&*bytes).expect("parse ELF");
    file.dynamic_symbols()
        .filter(|s| s.is_definition() && s.is_global())
        .filter_map(|s| s.name().ok().map(str::to_string))
        .filter(|n| n.starts_with("nvml"))
        .collect()
}

#[test]
fn every_checklist_symbol_is_exported() {
    let exported = exported_nvml_symbols();
    let missing: Vec<_> = REQUIRED
        .iter()
        .filter(|s| !exported.contains(**s))
        .collect();
    assert!(missing.is_empty(), "not exported: {missing:?}");
}

#[test]
fn nothing_but_nvml_functions_leaks_under_the_nvml_prefix() {
    // Every exported nvml* name is one we mean to export (no accidental helpers).
    let exported = exported_nvml_symbols();
    let extra: Vec<_> = exported
        .iter()
        .filter(|s| !REQUIRED.contains(&s.as_str()))
        .collect();
    // nvmlSimGetCallCount is the simulator's own (not NVML's): calls made by this process.
    let allowed_extras = [
        "nvmlDeviceGetSerial",
        "nvmlDeviceGetMinorNumber",
        "nvmlSimGetCallCount",
    ];
    let unexpected: Vec<_> = extra
        .iter()
        .filter(|s| !allowed_extras.contains(&s.as_str()))
        .collect();
    assert!(unexpected.is_empty(), "unexpected exports: {unexpected:?}");
}
