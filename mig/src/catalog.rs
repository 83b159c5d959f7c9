//! The catalog of MIG-capable GPUs and their exact geometry (profiles, placements, CI profiles).
//! Sources for every number: docs/mig-model.md.
use crate::ids::{CiProfileId, GiProfileId, Placement};

/// One MIG-capable GPU model (SKU) with its full MIG geometry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuModel {
    /// Stable lowercase catalog key, e.g. `a100-pcie-40gb`, `h100-sxm5-80gb`.
    pub key: &'static str,
    /// Name exactly as `nvmlDeviceGetName` reports it, e.g. `NVIDIA A100-PCIE-40GB`.
    pub nvml_name: &'static str,
    /// Short marketing/board family used in summaries and vGPU names, e.g. `A100-40GB`.
    pub short_name: &'static str,
    /// PCI device id (the upper 16 bits of `pciDeviceId` are this, lower are vendor 0x10DE).
    pub pci_device_id: u16,
    /// Total framebuffer in MiB as `nvmlDeviceGetMemoryInfo` reports `total`.
    pub memory_mib: u64,
    /// Number of compute slices (7 on A100/H100/H200, 4 on A30).
    pub compute_slices: u32,
    /// Number of memory slices (8 on A100/H100/H200, 4 on A30).
    pub memory_slices: u32,
    /// SMs of the full chip visible without MIG.
    pub sm_count: u32,
    /// vGPU board prefix used in MIG-backed vGPU type names, e.g. `a100` (`grid_a100-3-20c`),
    /// `a100d` for 80GB A100, `h100`, `h100xm` ... (see vgpu.rs / docs/mig-model.md).
    pub vgpu_board: &'static str,
    /// Every GPU-instance profile, ordered by NVML profile index.
    pub gi_profiles: &'static [GiProfile],
    /// Driver policy for GI id assignment: the GI id for each (size, start) region, in order of
    /// preference for auto-placement (lowest id first). See `GpuModel::gi_id_for`.
    pub gi_id_regions: &'static [(Placement, u32)],
}

/// A GPU-instance profile of one GPU model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiProfile {
    /// nvidia-smi / NVML profile id (`info.id`).
    pub id: GiProfileId,
    /// NVML profile *index* constant (`NVML_GPU_INSTANCE_PROFILE_*`) passed to
    /// `nvmlDeviceGetGpuInstanceProfileInfo`.
    pub nvml_index: u32,
    /// nvidia-smi name without the `MIG ` prefix, e.g. `3g.20gb`, `1g.5gb+me`.
    pub name: &'static str,
    /// Compute slices (the `g` in `3g.20gb`; NVML `sliceCount`).
    pub compute_slices: u32,
    /// Memory slices occupied (the placement size).
    pub memory_slices: u32,
    /// Max instances of this profile on an empty GPU (`instanceCount`).
    pub instance_count: u32,
    /// Memory in MiB exactly as NVML reports `memorySizeMB`.
    pub memory_mib: u64,
    pub sm_count: u32,
    pub copy_engines: u32,
    pub decoders: u32,
    pub encoders: u32,
    pub jpegs: u32,
    pub ofas: u32,
    pub p2p: bool,
    /// Legal placements (start:size in memory slices), as `-lgipp` lists them.
    pub placements: &'static [Placement],
    /// Compute-instance profiles available inside a GI of this profile.
    pub ci_profiles: &'static [CiProfile],
}

/// A compute-instance profile inside a GI profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiProfile {
    /// NVML CI profile id (= `NVML_COMPUTE_INSTANCE_PROFILE_*` constant).
    pub id: CiProfileId,
    /// nvidia-smi name, e.g. `1c.3g.20gb`, or `3g.20gb` for the full-GI CI.
    pub name: &'static str,
    pub compute_slices: u32,
    /// Max instances inside one GI of the parent profile.
    pub instance_count: u32,
    pub sm_count: u32,
    /// Legal placements in compute slices of the GI.
    pub placements: &'static [Placement],
    /// Whether this is the default CI that `nvidia-smi mig -cgi ... -C` creates.
    pub is_default: bool,
}

/// All GPU models in the catalog.
pub fn catalog() -> &'static [GpuModel] {
    todo!()
}

impl GpuModel {
    /// Look a model up by its catalog key (case-insensitive).
    pub fn by_key(key: &str) -> Option<&'static GpuModel> {
        let _ = key;
        todo!()
    }
    /// Look a model up by the name NVML reports.
    pub fn by_nvml_name(name: &str) -> Option<&'static GpuModel> {
        let _ = name;
        todo!()
    }
    /// Look a model up by PCI device id.
    pub fn by_pci_device_id(id: u16) -> Option<&'static GpuModel> {
        let _ = id;
        todo!()
    }
    /// The GI profile with this NVML profile id.
    pub fn gi_profile(&self, id: GiProfileId) -> Option<&'static GiProfile> {
        let _ = id;
        todo!()
    }
    /// The GI profile with this nvidia-smi name (with or without the `MIG ` prefix, case-insensitive).
    pub fn gi_profile_by_name(&self, name: &str) -> Option<&'static GiProfile> {
        let _ = name;
        todo!()
    }
    /// The GI profile with this NVML profile index constant.
    pub fn gi_profile_by_index(&self, nvml_index: u32) -> Option<&'static GiProfile> {
        let _ = nvml_index;
        todo!()
    }
    /// The GI id the modelled driver gives a GI at `placement`.
    pub fn gi_id_for(&self, placement: Placement) -> Option<u32> {
        let _ = placement;
        todo!()
    }
}

impl GiProfile {
    /// The CI profile with this id inside this GI profile.
    pub fn ci_profile(&self, id: CiProfileId) -> Option<&'static CiProfile> {
        let _ = id;
        todo!()
    }
    /// The CI profile with this name (case-insensitive).
    pub fn ci_profile_by_name(&self, name: &str) -> Option<&'static CiProfile> {
        let _ = name;
        todo!()
    }
    /// The CI profile that `-C` creates (the full-GI CI).
    pub fn default_ci_profile(&self) -> &'static CiProfile {
        todo!()
    }
}
