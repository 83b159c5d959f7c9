//! What the safe layer reports: plain values copied out of NVML (profiles, instance
//! identities, MIG devices, processes, vGPUs), serialisable and free of handles.
use mig::{CiProfileId, ComputeInstanceId, EngineCounts, GiProfileId, GpuInstanceId, Placement};
use serde::{Deserialize, Serialize};

use super::NvmlCode;

/// Current and pending MIG mode of a GPU (`true` = enabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigMode {
    pub current: bool,
    pub pending: bool,
}

/// A GPU-instance profile as NVML describes it on this GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiProfileInfo {
    /// NVML profile index (`NVML_GPU_INSTANCE_PROFILE_*`), the argument of the info call.
    pub index: u32,
    /// Profile id (`info.id`), what every other call and nvidia-smi use.
    pub id: GiProfileId,
    /// Name without the `MIG ` prefix, e.g. `3g.20gb`.
    pub name: String,
    /// Compute slices (`sliceCount`).
    pub slice_count: u32,
    /// Instances of this profile an empty GPU holds (`instanceCount`).
    pub instance_count: u32,
    pub memory_mib: u64,
    /// SMs, copy and media engines (serialised flat: `sm`, `ce`, `dec` … keys).
    #[serde(flatten)]
    pub engines: EngineCounts,
    pub p2p: bool,
}

/// A compute-instance profile as NVML describes it inside one GPU instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiProfileInfo {
    /// NVML CI profile index (`NVML_COMPUTE_INSTANCE_PROFILE_*`).
    pub index: u32,
    pub id: CiProfileId,
    /// Name without the `MIG ` prefix, e.g. `1c.3g.20gb` or `3g.20gb`.
    pub name: String,
    pub slice_count: u32,
    pub instance_count: u32,
    /// Exclusive SMs of one such CI; the other engines are shared with the rest of the GI
    /// (serialised flat: `sm`, `ce`, `dec` … keys).
    #[serde(flatten)]
    pub engines: EngineCounts,
}

/// Identity and placement of a GPU instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiInfo {
    pub id: GpuInstanceId,
    pub profile_id: GiProfileId,
    /// In memory slices of the GPU.
    pub placement: Placement,
}

/// Identity and placement of a compute instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiInfo {
    pub gi_id: GpuInstanceId,
    pub id: ComputeInstanceId,
    pub profile_id: CiProfileId,
    /// In compute slices of the parent GI.
    pub placement: Placement,
}

/// A MIG device (one per compute instance) as the parent GPU enumerates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigDeviceInfo {
    /// Index under the parent GPU (`nvmlDeviceGetMigDeviceHandleByIndex`).
    pub index: u32,
    pub gi_id: GpuInstanceId,
    pub ci_id: ComputeInstanceId,
    /// `nvmlDeviceGetName` of the MIG handle, from `MIG ` on (e.g. `MIG 1g.5gb`).
    pub name: String,
    /// `MIG-…` UUID.
    pub uuid: String,
    /// Framebuffer of the MIG device, if NVML reports it.
    pub memory_mib: Option<u64>,
}

/// A compute process on a GPU, with the instance it runs in when MIG is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuProcess {
    pub pid: u32,
    /// Process name, if NVML can tell (`nvmlSystemGetProcessName`).
    pub name: Option<String>,
    pub gi_id: Option<GpuInstanceId>,
    pub ci_id: Option<ComputeInstanceId>,
    pub used_memory_mib: Option<u64>,
}

/// An active vGPU on a GPU (a running VM).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveVgpu {
    /// The VM's id as NVML reports it (a UUID or domain id on ESXi).
    pub vm_id: String,
    /// vGPU type name, e.g. `grid_a100-3-20c`.
    pub vgpu_type: Option<String>,
    /// The GPU instance backing it, for MIG-backed vGPUs.
    pub gi_id: Option<GpuInstanceId>,
}

/// What `nvmlDeviceSetMigMode` reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigModeChange {
    /// `None` when the change took effect; otherwise why not yet (`IN_USE`, `RESET_REQUIRED`).
    pub activation: Option<NvmlCode>,
    /// The mode read back after the call.
    pub mode: MigMode,
}

pub(super) fn short_name(raw: Option<String>) -> Option<String> {
    raw.map(|n| {
        n.trim()
            .strip_prefix("MIG ")
            .unwrap_or(n.trim())
            .to_string()
    })
    .filter(|n| !n.is_empty())
}

/// The CI profile that `cgi -C` / `cci` without a profile create: the one spanning the whole
/// GI. Where several do (Hopper's double-memory 1g GIs offer profile 0 and the REV1 profile
/// 7, and the driver shows 7 as default), the highest id wins.
pub fn default_ci_profile(gi_slices: u32, profiles: &[CiProfileInfo]) -> Option<&CiProfileInfo> {
    profiles
        .iter()
        .filter(|p| p.slice_count == gi_slices)
        .max_by_key(|p| p.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_drop_the_mig_prefix() {
        assert_eq!(
            short_name(Some("MIG 3g.20gb".into())).as_deref(),
            Some("3g.20gb")
        );
        assert_eq!(
            short_name(Some("1c.3g.20gb".into())).as_deref(),
            Some("1c.3g.20gb")
        );
        assert_eq!(short_name(Some(String::new())), None);
    }

    fn ci(id: u32, slices: u32) -> CiProfileInfo {
        CiProfileInfo {
            index: id,
            id: CiProfileId(id),
            name: format!("{slices}c"),
            slice_count: slices,
            instance_count: 1,
            engines: EngineCounts::default(),
        }
    }

    #[test]
    fn default_ci_profile_spans_the_gi_and_prefers_rev1() {
        let three_g = [ci(0, 1), ci(1, 2), ci(2, 3)];
        assert_eq!(
            default_ci_profile(3, &three_g).map(|p| p.id),
            Some(CiProfileId(2))
        );
        let double_mem_1g = [ci(0, 1), ci(7, 1)];
        assert_eq!(
            default_ci_profile(1, &double_mem_1g).map(|p| p.id),
            Some(CiProfileId(7))
        );
        assert_eq!(default_ci_profile(4, &three_g), None);
    }
}
