//! The vGPU types the simulated vGPU manager offers, per GPU model, and their limits
//! (issue 18): MIG-backed types that run time-sliced inside one GPU instance (several of one
//! type per GI, up to a per-GI maximum), and whole-GPU time-sliced types for a GPU that is not
//! in MIG mode (up to a per-GPU maximum, all vGPUs on a GPU of one type: NVIDIA's "equal-size
//! mode"; mixed-size mode is not modelled).
//!
//! Only models listed in [`types_of`] offer types; every other model answers the vGPU type
//! queries with an empty list, as a GPU without vGPU support (or a host without the vGPU
//! manager) does. Which value comes from which NVIDIA table, and which is inferred, is in
//! docs/mig-model.md §8; the per-type comments say the same in short.
//!
//! Type ids (`nvmlVgpuTypeId_t`) are a stable hash of model and name, so a type keeps its id
//! across processes and state files, and two models' types of one name (NVIDIA reuses
//! `DC-1-8C` on several boards, in different GI profiles) get different ids, as the driver's
//! per-board types do.
use mig::{GiProfileId, GpuModel};

/// Whether a value was read in one of NVIDIA's tables or inferred from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// Stated by an NVIDIA document (docs/mig-model.md §8 names it).
    Sourced,
    /// Not stated anywhere found; derived from the pattern of the RTX PRO 4500 table
    /// (framebuffer share of the GI or GPU) and marked so.
    Inferred,
}

/// Where a vGPU type runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// Inside a GPU instance of this GI profile (the name without `MIG `), at most `per_gi`
    /// vGPUs of the type in one GI (1: an ordinary MIG-backed type owning the whole GI).
    Mig {
        /// GI profile name, e.g. `1g.24gb`.
        gi_profile: &'static str,
        /// `maxInstancePerGI`.
        per_gi: u32,
    },
    /// On a whole GPU that is not in MIG mode, time-sliced, at most `per_gpu` on one GPU.
    WholeGpu {
        /// `nvmlVgpuTypeGetMaxInstances` in equal-size mode.
        per_gpu: u32,
    },
}

/// One vGPU type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeSpec {
    /// The name as `nvmlVgpuTypeGetName` spells it.
    pub name: &'static str,
    /// Framebuffer, MiB (`nvmlVgpuTypeGetFramebufferSize` / 2^20).
    pub framebuffer_mib: u64,
    /// Where it runs and how many fit.
    pub backing: Backing,
    /// Whether the limits come from a table or are inferred.
    pub provenance: Provenance,
}

const GIB: u64 = 1024;

const fn mig(
    name: &'static str,
    fb_gib: u64,
    gi_profile: &'static str,
    per_gi: u32,
    provenance: Provenance,
) -> TypeSpec {
    TypeSpec {
        name,
        framebuffer_mib: fb_gib * GIB,
        backing: Backing::Mig { gi_profile, per_gi },
        provenance,
    }
}

const fn whole(name: &'static str, fb_gib: u64, per_gpu: u32) -> TypeSpec {
    TypeSpec {
        name,
        framebuffer_mib: fb_gib * GIB,
        backing: Backing::WholeGpu { per_gpu },
        provenance: Provenance::Inferred,
    }
}

/// RTX PRO 6000 Blackwell Server Edition (96 GB, four 1g slices). NVIDIA AI Enterprise 8,
/// "MIG-Backed vGPU": up to four MIG slices, "one to three time-sliced vGPUs for Compute with
/// 8 GB frame buffer each" per slice — DC-1-8C, 3 per 1g.24gb GI, is sourced; the other types
/// follow the RTX PRO 4500 table's pattern (a type's maximum per GI or GPU is the framebuffer
/// it shares divided by the type's) and are inferred.
const RTX_PRO_6000_BSE: &[TypeSpec] = &[
    mig("NVIDIA DC-1-24C", 24, "1g.24gb", 1, Provenance::Inferred),
    mig("NVIDIA DC-1-12C", 12, "1g.24gb", 2, Provenance::Inferred),
    mig("NVIDIA DC-1-8C", 8, "1g.24gb", 3, Provenance::Sourced),
    mig("NVIDIA DC-2-48C", 48, "2g.48gb", 1, Provenance::Inferred),
    mig("NVIDIA DC-2-24C", 24, "2g.48gb", 2, Provenance::Inferred),
    mig("NVIDIA DC-4-96C", 96, "4g.96gb", 1, Provenance::Inferred),
    whole("NVIDIA DC-96C", 96, 1),
    whole("NVIDIA DC-48C", 48, 2),
    whole("NVIDIA DC-32C", 32, 3),
    whole("NVIDIA DC-24C", 24, 4),
    whole("NVIDIA DC-16C", 16, 6),
    whole("NVIDIA DC-8C", 8, 12),
];

/// The vGPU types the simulated driver offers on `model` (empty: no vGPU support simulated).
pub fn types_of(model: &GpuModel) -> &'static [TypeSpec] {
    match model.key {
        "rtx-pro-6000-bse-96gb" => RTX_PRO_6000_BSE,
        _ => &[],
    }
}

/// Whether GPU instances of `model` may host several time-sliced vGPUs (the per-GI calls
/// answer NOT_SUPPORTED otherwise, as on GPUs without the feature).
pub fn mig_timeslicing(model: &GpuModel) -> bool {
    types_of(model)
        .iter()
        .any(|t| matches!(t.backing, Backing::Mig { per_gi, .. } if per_gi > 1))
}

/// The type of `model` a name stands for, in any spelling (`NVIDIA DC-1-8C`,
/// `nvidia_dc-1-8c`, `dc-1-8c`).
pub fn find(model: &GpuModel, name: &str) -> Option<&'static TypeSpec> {
    let wanted = mig::vgpu::base_name_of(name);
    types_of(model)
        .iter()
        .find(|t| mig::vgpu::base_name_of(t.name) == wanted)
}

/// The model and type behind a type id, among every catalog model.
pub fn by_id(id: u32) -> Option<(&'static GpuModel, &'static TypeSpec)> {
    mig::catalog()
        .iter()
        .find_map(|m| types_of(m).iter().find(|t| t.id(m) == id).map(|t| (m, t)))
}

/// FNV-1a, 32 bit, never 0 (0 is no type).
pub fn hash_id(parts: &[&str]) -> u32 {
    let mut h: u32 = 0x811C_9DC5;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h = (h ^ u32::from(b'/')).wrapping_mul(0x0100_0193);
        }
        for b in p.bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
    }
    h.max(1)
}

impl TypeSpec {
    /// `nvmlVgpuTypeId_t` of this type on `model`.
    pub fn id(&self, model: &GpuModel) -> u32 {
        hash_id(&[model.key, self.name])
    }

    /// The GI profile it runs in, on `model` (`None`: whole-GPU type).
    pub fn gi_profile_id(&self, model: &GpuModel) -> Option<GiProfileId> {
        match self.backing {
            Backing::Mig { gi_profile, .. } => model
                .gi_profiles
                .iter()
                .find(|p| p.name == gi_profile)
                .map(|p| p.id),
            Backing::WholeGpu { .. } => None,
        }
    }

    /// `maxInstancePerGI` (`None`: whole-GPU type).
    pub fn max_per_gi(&self) -> Option<u32> {
        match self.backing {
            Backing::Mig { per_gi, .. } => Some(per_gi),
            Backing::WholeGpu { .. } => None,
        }
    }

    /// `nvmlVgpuTypeGetMaxInstances`: how many one GPU of `model` runs — for a MIG-backed
    /// type the per-GI maximum times the GIs of its profile that fit on the GPU.
    pub fn max_per_gpu(&self, model: &GpuModel) -> u32 {
        match self.backing {
            Backing::Mig { gi_profile, per_gi } => model
                .gi_profiles
                .iter()
                .find(|p| p.name == gi_profile)
                .map_or(0, |p| p.instance_count * per_gi),
            Backing::WholeGpu { per_gpu } => per_gpu,
        }
    }

    /// Whether it runs on a GPU in MIG mode (`true`) or on a whole GPU (`false`).
    pub fn is_mig_backed(&self) -> bool {
        matches!(self.backing, Backing::Mig { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtx() -> &'static GpuModel {
        GpuModel::by_key("rtx-pro-6000-bse-96gb").expect("catalog has the RTX PRO 6000")
    }

    #[test]
    fn every_mig_backed_type_names_a_profile_of_its_model() {
        for m in mig::catalog() {
            for t in types_of(m) {
                assert_eq!(
                    t.is_mig_backed(),
                    t.gi_profile_id(m).is_some(),
                    "{} on {}",
                    t.name,
                    m.key
                );
                assert!(t.max_per_gpu(m) >= 1, "{} on {}", t.name, m.key);
            }
        }
    }

    #[test]
    fn the_sourced_type_has_three_per_gi_and_twelve_per_gpu() {
        let t = find(rtx(), "nvidia_dc-1-8c").expect("DC-1-8C");
        assert_eq!(t.provenance, Provenance::Sourced);
        assert_eq!(t.max_per_gi(), Some(3));
        assert_eq!(t.max_per_gpu(rtx()), 12);
        assert_eq!(t.gi_profile_id(rtx()), Some(GiProfileId(14)));
        assert!(mig_timeslicing(rtx()));
        let a100 = GpuModel::by_key("a100-pcie-40gb").expect("catalog has the A100");
        assert!(types_of(a100).is_empty() && !mig_timeslicing(a100));
    }

    #[test]
    fn ids_are_distinct_and_lead_back_to_their_type() {
        let ids: std::collections::BTreeSet<u32> =
            types_of(rtx()).iter().map(|t| t.id(rtx())).collect();
        assert_eq!(ids.len(), types_of(rtx()).len());
        for t in types_of(rtx()) {
            let (m, back) = by_id(t.id(rtx())).expect("known id");
            assert_eq!((m.key, back.name), (rtx().key, t.name));
        }
        assert!(by_id(hash_id(&["grid_a100-3-20c"])).is_none());
    }

    #[test]
    fn whole_gpu_names_do_not_match_mig_backed_ones() {
        assert!(!find(rtx(), "DC-8C").expect("DC-8C").is_mig_backed());
        assert!(find(rtx(), "DC-1-8C").expect("DC-1-8C").is_mig_backed());
        assert!(find(rtx(), "grid_a100-3-20c").is_none());
    }
}
