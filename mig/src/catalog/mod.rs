//! The catalog of MIG-capable GPUs and their exact geometry (profiles, placements, CI profiles).
//!
//! Everything here is static data: one `GpuModel` per SKU, written down from NVIDIA's MIG User
//! Guide, real `nvidia-smi mig -lgip/-lgipp/-lcip` output and the NVIDIA vGPU type tables.
//! Sources for every number, and which numbers are inferred rather than observed:
//! docs/mig-model.md. One module per GPU family keeps each table next to its sources.
use crate::engines::EngineCounts;
use crate::ids::{CiProfileId, GiProfileId, Placement};

#[macro_use]
mod seven_slice;
mod ampere;
mod blackwell;
mod hopper;
mod runtime;
mod variant;

pub use runtime::{model_from_geometry, register_geometry, runtime_models};
pub use variant::ProfileVariant;

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
    /// Number of compute slices (7 on A100/H100/H200, 4 on A30 and RTX PRO 6000 Blackwell).
    pub compute_slices: u32,
    /// Units of the placement grid GI placements are given in: the memory slices (8 on
    /// A100/H100/H200, 4 on A30), or 12 on the RTX PRO 6000 Blackwell, whose `-lgipp` places
    /// its four 1g GIs at `{0,3,6,9}:3`.
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
    /// Plain, `+me`, `+me.all`, `-me` or `+gfx` (always the variant the name spells).
    pub variant: ProfileVariant,
    /// Compute slices (the `g` in `3g.20gb`; NVML `sliceCount`).
    pub compute_slices: u32,
    /// Memory slices occupied (the placement size).
    pub memory_slices: u32,
    /// Max instances of this profile on an empty GPU (`instanceCount`).
    pub instance_count: u32,
    /// Memory in MiB exactly as NVML reports `memorySizeMB`.
    pub memory_mib: u64,
    /// SMs, copy and media engines (`multiprocessorCount`, `copyEngineCount`, …).
    pub engines: EngineCounts,
    /// Peer-to-peer support (`isP2pSupported`; "No" in every real output found).
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
    /// Compute slices of the GI this CI occupies (the `c` in `1c.3g.20gb`).
    pub compute_slices: u32,
    /// Max instances inside one GI of the parent profile.
    pub instance_count: u32,
    /// SMs exclusive to this CI.
    pub sm_count: u32,
    /// Legal placements in compute slices of the GI.
    pub placements: &'static [Placement],
    /// Whether this is the default CI that `nvidia-smi mig -cgi ... -C` creates.
    pub is_default: bool,
}

static CATALOG: [GpuModel; 17] = [
    ampere::A100_PCIE_40GB,
    ampere::A100_SXM4_40GB,
    ampere::A100_PCIE_80GB,
    ampere::A100_SXM4_80GB,
    ampere::A30_24GB,
    hopper::H100_SXM5_80GB,
    hopper::H100_PCIE_80GB,
    hopper::H100_NVL_94GB,
    hopper::H100_SXM5_94GB,
    hopper::H20_96GB,
    hopper::GH200_96GB,
    hopper::GH200_144GB,
    hopper::H200_SXM_141GB,
    hopper::H200_NVL_141GB,
    blackwell::B200_180GB,
    blackwell::GB200_186GB,
    blackwell::RTX_PRO_6000_BSE,
];

/// All GPU models in the catalog.
pub fn catalog() -> &'static [GpuModel] {
    &CATALOG
}

/// Strip an optional `MIG ` prefix (nvidia-smi) or `mig-` prefix (Kubernetes resource names),
/// any case, from a profile name.
fn strip_mig_prefix(name: &str) -> &str {
    let trimmed = name.trim();
    match trimmed.get(..4) {
        Some(prefix)
            if prefix.eq_ignore_ascii_case("mig ") || prefix.eq_ignore_ascii_case("mig-") =>
        {
            trimmed[4..].trim_start()
        }
        _ => trimmed,
    }
}

impl GpuModel {
    /// Look a model up by its catalog key (case-insensitive).
    pub fn by_key(key: &str) -> Option<&'static GpuModel> {
        let key = key.trim();
        catalog()
            .iter()
            .find(|m| m.key.eq_ignore_ascii_case(key))
            .or_else(|| {
                runtime_models()
                    .into_iter()
                    .find(|m| m.key.eq_ignore_ascii_case(key))
            })
    }

    /// Look a model up by the name NVML reports (exact name; case and surrounding whitespace
    /// are ignored because tools print it differently).
    pub fn by_nvml_name(name: &str) -> Option<&'static GpuModel> {
        let name = name.trim();
        catalog()
            .iter()
            .find(|m| m.nvml_name.eq_ignore_ascii_case(name))
            .or_else(|| {
                runtime_models()
                    .into_iter()
                    .find(|m| m.nvml_name.eq_ignore_ascii_case(name))
            })
    }

    /// Look a model up by PCI device id.
    pub fn by_pci_device_id(id: u16) -> Option<&'static GpuModel> {
        catalog().iter().find(|m| m.pci_device_id == id)
    }

    /// The GI profile with this NVML profile id.
    pub fn gi_profile(&self, id: GiProfileId) -> Option<&'static GiProfile> {
        self.gi_profiles.iter().find(|p| p.id == id)
    }

    /// The GI profile with this nvidia-smi name (with or without the `MIG ` prefix, case-insensitive;
    /// the Kubernetes spelling `mig-3g.20gb` is accepted too).
    pub fn gi_profile_by_name(&self, name: &str) -> Option<&'static GiProfile> {
        let name = strip_mig_prefix(name);
        self.gi_profiles
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// The GI profile with this NVML profile index constant.
    pub fn gi_profile_by_index(&self, nvml_index: u32) -> Option<&'static GiProfile> {
        self.gi_profiles.iter().find(|p| p.nvml_index == nvml_index)
    }

    /// Resolve what a user typed: an nvidia-smi profile id (`9`) or a name (`3g.20gb`,
    /// `MIG 3g.20gb`), the way `nvidia-smi mig -cgi` accepts both.
    pub fn gi_profile_by_id_or_name(&self, text: &str) -> Option<&'static GiProfile> {
        match text.trim().parse::<u32>() {
            Ok(id) => self.gi_profile(GiProfileId(id)),
            Err(_) => self.gi_profile_by_name(text),
        }
    }

    /// The GI id the modelled driver gives a GI at `placement`.
    pub fn gi_id_for(&self, placement: Placement) -> Option<u32> {
        self.gi_id_regions
            .iter()
            .find(|(region, _)| *region == placement)
            .map(|(_, id)| *id)
    }

    /// The profile that spans the whole GPU (`7g.40gb`, `4g.24gb` on A30).
    pub fn full_profile(&self) -> &'static GiProfile {
        self.gi_profiles
            .iter()
            .find(|p| p.memory_slices == self.memory_slices)
            .unwrap_or_else(|| panic!("catalog model {} has no full-GPU profile", self.key))
    }

    /// The GPU's engine pool: the engines of the full-GPU profile (see
    /// [`EngineCounts::media`] for which of them GIs compete for).
    pub fn engine_pool(&self) -> EngineCounts {
        self.full_profile().engines
    }

    /// The NVML `pciDeviceId` word: device id in the upper 16 bits, NVIDIA's vendor id 0x10DE below.
    pub fn pci_device_id_word(&self) -> u32 {
        (u32::from(self.pci_device_id) << 16) | 0x10DE
    }
}

impl GiProfile {
    /// The CI profile with this id inside this GI profile.
    pub fn ci_profile(&self, id: CiProfileId) -> Option<&'static CiProfile> {
        self.ci_profiles.iter().find(|c| c.id == id)
    }

    /// The CI profile with this name (case-insensitive, `MIG ` prefix allowed).
    pub fn ci_profile_by_name(&self, name: &str) -> Option<&'static CiProfile> {
        let name = strip_mig_prefix(name);
        self.ci_profiles
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The CI profile that `-C` creates (the full-GI CI).
    pub fn default_ci_profile(&self) -> &'static CiProfile {
        self.ci_profiles
            .iter()
            .find(|c| c.is_default)
            .unwrap_or_else(|| panic!("catalog GI profile {} has no default CI profile", self.name))
    }

    /// `memory_mib` as nvidia-smi prints it in the `Memory GiB` column (`19.50`).
    pub fn memory_gib_display(&self) -> String {
        format!("{:.2}", self.memory_mib as f64 / 1024.0)
    }
}

/// Shorthand for the tables: a placement `start:size`.
const fn pl(start: u32, size: u32) -> Placement {
    Placement { start, size }
}

/// Shorthand for the tables: a CI profile.
const fn ci(
    id: u32,
    name: &'static str,
    compute_slices: u32,
    instance_count: u32,
    sm_count: u32,
    placements: &'static [Placement],
    is_default: bool,
) -> CiProfile {
    CiProfile {
        id: CiProfileId(id),
        name,
        compute_slices,
        instance_count,
        sm_count,
        placements,
        is_default,
    }
}

/// NVML `GPU_INSTANCE_PROFILE_*` index constants used by the catalog (nvml.h).
pub mod gi_index {
    /// `NVML_GPU_INSTANCE_PROFILE_1_SLICE`
    pub const SLICE_1: u32 = 0x0;
    /// `NVML_GPU_INSTANCE_PROFILE_2_SLICE`
    pub const SLICE_2: u32 = 0x1;
    /// `NVML_GPU_INSTANCE_PROFILE_3_SLICE`
    pub const SLICE_3: u32 = 0x2;
    /// `NVML_GPU_INSTANCE_PROFILE_4_SLICE`
    pub const SLICE_4: u32 = 0x3;
    /// `NVML_GPU_INSTANCE_PROFILE_7_SLICE`
    pub const SLICE_7: u32 = 0x4;
    /// `NVML_GPU_INSTANCE_PROFILE_8_SLICE`
    pub const SLICE_8: u32 = 0x5;
    /// `NVML_GPU_INSTANCE_PROFILE_6_SLICE`
    pub const SLICE_6: u32 = 0x6;
    /// `NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1` (`+me`)
    pub const SLICE_1_REV1: u32 = 0x7;
    /// `NVML_GPU_INSTANCE_PROFILE_2_SLICE_REV1` (`+me`)
    pub const SLICE_2_REV1: u32 = 0x8;
    /// `NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV2` (double memory, e.g. `1g.10gb` on A100-40GB)
    pub const SLICE_1_REV2: u32 = 0x9;
    /// `NVML_GPU_INSTANCE_PROFILE_1_SLICE_GFX` (`+gfx`)
    pub const SLICE_1_GFX: u32 = 0xA;
    /// `NVML_GPU_INSTANCE_PROFILE_2_SLICE_GFX` (`+gfx`)
    pub const SLICE_2_GFX: u32 = 0xB;
    /// `NVML_GPU_INSTANCE_PROFILE_4_SLICE_GFX` (`+gfx`)
    pub const SLICE_4_GFX: u32 = 0xC;
    /// `NVML_GPU_INSTANCE_PROFILE_1_SLICE_NO_ME` (`-me`)
    pub const SLICE_1_NO_ME: u32 = 0xD;
    /// `NVML_GPU_INSTANCE_PROFILE_2_SLICE_NO_ME` (`-me`)
    pub const SLICE_2_NO_ME: u32 = 0xE;
    /// `NVML_GPU_INSTANCE_PROFILE_1_SLICE_ALL_ME` (`+me.all`)
    pub const SLICE_1_ALL_ME: u32 = 0xF;
    /// `NVML_GPU_INSTANCE_PROFILE_2_SLICE_ALL_ME` (`+me.all`)
    pub const SLICE_2_ALL_ME: u32 = 0x10;
    /// `NVML_GPU_INSTANCE_PROFILE_COUNT`: enumeration ends here.
    pub const COUNT: u32 = 0x12;
}

/// NVML `COMPUTE_INSTANCE_PROFILE_*` constants (= nvidia-smi CI profile ids).
pub mod ci_index {
    /// `NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE`
    pub const SLICE_1: u32 = 0;
    /// `NVML_COMPUTE_INSTANCE_PROFILE_2_SLICE`
    pub const SLICE_2: u32 = 1;
    /// `NVML_COMPUTE_INSTANCE_PROFILE_3_SLICE`
    pub const SLICE_3: u32 = 2;
    /// `NVML_COMPUTE_INSTANCE_PROFILE_4_SLICE`
    pub const SLICE_4: u32 = 3;
    /// `NVML_COMPUTE_INSTANCE_PROFILE_7_SLICE`
    pub const SLICE_7: u32 = 4;
    /// `NVML_COMPUTE_INSTANCE_PROFILE_8_SLICE`
    pub const SLICE_8: u32 = 5;
    /// `NVML_COMPUTE_INSTANCE_PROFILE_6_SLICE`
    pub const SLICE_6: u32 = 6;
    /// `NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE_REV1`
    pub const SLICE_1_REV1: u32 = 7;
    /// `NVML_COMPUTE_INSTANCE_PROFILE_COUNT`
    pub const COUNT: u32 = 9;
}

/// GI id regions of the 8-memory-slice GPUs, as observed on an A100-PCIE-40GB (driver 510):
/// ids fixed per (size, start), larger regions first, and within one size the right half of
/// the GPU (slices 4..8) before the left half. Auto-placement takes the lowest free id.
const GI_IDS_8_SLICES: &[(Placement, u32)] = &[
    (pl(0, 8), 0),
    (pl(4, 4), 1),
    (pl(0, 4), 2),
    (pl(4, 2), 3),
    (pl(6, 2), 4),
    (pl(0, 2), 5),
    (pl(2, 2), 6),
    (pl(4, 1), 7),
    (pl(5, 1), 8),
    (pl(6, 1), 9),
    (pl(7, 1), 10),
    (pl(0, 1), 11),
    (pl(1, 1), 12),
    (pl(2, 1), 13),
    (pl(3, 1), 14),
];

/// GI id regions of the A30 (4 memory slices), by the same rule as `GI_IDS_8_SLICES`
/// (inferred, see docs/mig-model.md).
const GI_IDS_4_SLICES: &[(Placement, u32)] = &[
    (pl(0, 4), 0),
    (pl(2, 2), 1),
    (pl(0, 2), 2),
    (pl(2, 1), 3),
    (pl(3, 1), 4),
    (pl(0, 1), 5),
    (pl(1, 1), 6),
];

#[cfg(test)]
mod tests;

/// Shorthand for the tables: a GI profile. `engines` is `[CE, DEC, ENC, JPEG, OFA]` in the
/// column order of `nvidia-smi mig -lgip`; P2P is "No" on every catalog GPU.
#[allow(clippy::too_many_arguments)]
const fn gi(
    id: u32,
    nvml_index: u32,
    name: &'static str,
    slices: [u32; 2],
    instance_count: u32,
    memory_mib: u64,
    sm_count: u32,
    engines: [u32; 5],
    placements: &'static [Placement],
    ci_profiles: &'static [CiProfile],
) -> GiProfile {
    GiProfile {
        id: GiProfileId(id),
        nvml_index,
        name,
        variant: ProfileVariant::of_name(name),
        compute_slices: slices[0],
        memory_slices: slices[1],
        instance_count,
        memory_mib,
        engines: EngineCounts {
            sm: sm_count,
            ce: engines[0],
            dec: engines[1],
            enc: engines[2],
            jpeg: engines[3],
            ofa: engines[4],
        },
        p2p: false,
        placements,
        ci_profiles,
    }
}

// Placement lists shared by the tables. GI placements are in memory slices of the GPU.
const GP_1: &[Placement] = &[
    pl(0, 1),
    pl(1, 1),
    pl(2, 1),
    pl(3, 1),
    pl(4, 1),
    pl(5, 1),
    pl(6, 1),
];
const GP_2: &[Placement] = &[pl(0, 2), pl(2, 2), pl(4, 2)];
const GP_2_ALL: &[Placement] = &[pl(0, 2), pl(2, 2), pl(4, 2), pl(6, 2)];
const GP_4: &[Placement] = &[pl(0, 4), pl(4, 4)];
const GP_4_LEFT: &[Placement] = &[pl(0, 4)];
const GP_8: &[Placement] = &[pl(0, 8)];

// CI placements are in compute slices of the GI (see docs/mig-model.md for which are inferred).
const CP_1_IN_1: &[Placement] = &[pl(0, 1)];
const CP_1_IN_2: &[Placement] = &[pl(0, 1), pl(1, 1)];
const CP_2_IN_2: &[Placement] = &[pl(0, 2)];
const CP_1_IN_3: &[Placement] = &[pl(0, 1), pl(1, 1), pl(2, 1)];
const CP_2_IN_3: &[Placement] = &[pl(0, 2), pl(1, 2)];
const CP_3_IN_3: &[Placement] = &[pl(0, 3)];
const CP_1_IN_4: &[Placement] = &[pl(0, 1), pl(1, 1), pl(2, 1), pl(3, 1)];
const CP_2_IN_4: &[Placement] = &[pl(0, 2), pl(2, 2)];
const CP_4_IN_4: &[Placement] = &[pl(0, 4)];
const CP_1_IN_7: &[Placement] = &[
    pl(0, 1),
    pl(1, 1),
    pl(2, 1),
    pl(3, 1),
    pl(4, 1),
    pl(5, 1),
    pl(6, 1),
];
const CP_2_IN_7: &[Placement] = &[pl(0, 2), pl(2, 2), pl(4, 2)];
const CP_3_IN_7: &[Placement] = &[pl(0, 3), pl(4, 3)];
const CP_4_IN_7: &[Placement] = &[pl(0, 4)];
const CP_7_IN_7: &[Placement] = &[pl(0, 7)];
