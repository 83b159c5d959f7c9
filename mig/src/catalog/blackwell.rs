//! Blackwell: the B200 and GB200 (the Hopper geometry, `seven_slice_profiles!`) and the RTX
//! PRO 6000 Blackwell Server Edition (GB202).
//!
//! B200: names, counts and copy engines of every profile from NVIDIA's MIG guide; ids, memory,
//! SMs and engines of the 1g, `1g.45gb` and 2g rows from real `-lgip` outputs (the later
//! driver's 20.50 GiB for `1g.23gb`); the 3g, 4g and 7g memory and SMs, the placements and GI
//! ids inferred from the Hopper parts, whose counts and ids it shares (docs/mig-model.md).
//! GB200: the same, with its 1g, `1g.47gb` and 2g rows from a real `-lgip` of a production
//! board (NVIDIA/mig-parted#227, names `1g.23gb`; an earlier HGX GB200 named it `1g.24gb`) and
//! the other names and counts from mig-parted's config.
//!
//! Unlike the data-centre parts it has 4 compute slices, at most 4 GIs, a 12-unit placement
//! grid (a 1g GI covers 3 units, `{0,3,6,9}:3`) and five variants of each size: plain, `+me`,
//! `+me.all`, `-me` and `+gfx`. Profile ids, names, counts, memory, SMs, engines and
//! placements are a real `nvidia-smi mig -lgip`/`-lgipp` (driver 610.43.02); NVML profile
//! indices, the CI profiles of partial CIs and two of the GI ids are inferred. Sources and
//! which value is which: docs/mig-model.md ("RTX PRO 6000 Blackwell").
use super::{
    CP_1_IN_1, CP_1_IN_2, CP_1_IN_3, CP_1_IN_4, CP_1_IN_7, CP_2_IN_2, CP_2_IN_3, CP_2_IN_4,
    CP_2_IN_7, CP_3_IN_3, CP_3_IN_7, CP_4_IN_4, CP_4_IN_7, CP_7_IN_7, CiProfile, GI_IDS_8_SLICES,
    GP_1, GP_2, GP_2_ALL, GP_4, GP_4_LEFT, GP_8, GiProfile, GpuModel, ci, gi, gi_index as idx, pl,
};
use crate::ids::Placement;

/// GI placements on the 12-unit grid, as `-lgipp` lists them.
const GP_1G: &[Placement] = &[pl(0, 3), pl(3, 3), pl(6, 3), pl(9, 3)];
const GP_2G: &[Placement] = &[pl(0, 6), pl(6, 6)];
const GP_4G: &[Placement] = &[pl(0, 12)];

/// GI ids per region. Observed on driver 610.43.02: four auto-placed 1g GIs got ids 3, 4, 5, 6
/// at 0:3, 3:3, 6:3, 9:3, and a 2g at 0:6 got id 1. The full GPU as 0 and the right 2g as 2
/// are inferred from the same larger-first, left-to-right numbering.
const GI_IDS_12_UNITS: &[(Placement, u32)] = &[
    (pl(0, 12), 0),
    (pl(0, 6), 1),
    (pl(6, 6), 2),
    (pl(0, 3), 3),
    (pl(3, 3), 4),
    (pl(6, 3), 5),
    (pl(9, 3), 6),
];

/// The CI profiles of one GI profile named `$name`: the whole-GI CI (the only one observed:
/// CI profile 0 in a 1g GI, 1 in a 2g GI, placement 0:1) and, by analogy with A100, CIs of
/// fewer slices named `<c>c.<GI name>` with 46 SMs per slice.
macro_rules! rtx_ci {
    (1, $name:literal) => {
        &[ci(0, $name, 1, 1, 46, CP_1_IN_1, true)]
    };
    (2, $name:literal) => {
        &[
            ci(0, concat!("1c.", $name), 1, 2, 46, CP_1_IN_2, false),
            ci(1, $name, 2, 1, 94, CP_2_IN_2, true),
        ]
    };
    (4, $name:literal) => {
        &[
            ci(0, concat!("1c.", $name), 1, 4, 46, CP_1_IN_4, false),
            ci(1, concat!("2c.", $name), 2, 2, 94, CP_2_IN_4, false),
            ci(3, $name, 4, 1, 188, CP_4_IN_4, true),
        ]
    };
}

/// `memorySizeMB` of the three sizes: 23.62 / 47.38 / 95.12 GiB in `-lgip`; 24192 MiB is what
/// CUDA reports for a `1g.24gb` device, the other two are the GiB column × 1024 (inferred).
const MEM_1G: u64 = 24192;
const MEM_2G: u64 = 48512;
const MEM_4G: u64 = 97408;

const CI_1G: &[CiProfile] = rtx_ci!(1, "1g.24gb");
const CI_1G_ME: &[CiProfile] = rtx_ci!(1, "1g.24gb+me");
const CI_1G_GFX: &[CiProfile] = rtx_ci!(1, "1g.24gb+gfx");
const CI_1G_NO_ME: &[CiProfile] = rtx_ci!(1, "1g.24gb-me");
const CI_1G_ALL_ME: &[CiProfile] = rtx_ci!(1, "1g.24gb+me.all");
const CI_2G: &[CiProfile] = rtx_ci!(2, "2g.48gb");
const CI_2G_GFX: &[CiProfile] = rtx_ci!(2, "2g.48gb+gfx");
const CI_2G_NO_ME: &[CiProfile] = rtx_ci!(2, "2g.48gb-me");
const CI_2G_ALL_ME: &[CiProfile] = rtx_ci!(2, "2g.48gb+me.all");
const CI_4G: &[CiProfile] = rtx_ci!(4, "4g.96gb");
const CI_4G_GFX: &[CiProfile] = rtx_ci!(4, "4g.96gb+gfx");

/// Ordered by NVML profile index. Engines are `[CE, DEC, ENC, JPEG, OFA]`.
const RTX_PRO_6000_PROFILES: &[GiProfile] = &[
    gi(
        14,
        idx::SLICE_1,
        "1g.24gb",
        [1, 3],
        4,
        MEM_1G,
        46,
        [1, 1, 1, 1, 0],
        GP_1G,
        CI_1G,
    ),
    gi(
        5,
        idx::SLICE_2,
        "2g.48gb",
        [2, 6],
        2,
        MEM_2G,
        94,
        [2, 2, 2, 2, 0],
        GP_2G,
        CI_2G,
    ),
    gi(
        0,
        idx::SLICE_4,
        "4g.96gb",
        [4, 12],
        1,
        MEM_4G,
        188,
        [4, 4, 4, 4, 1],
        GP_4G,
        CI_4G,
    ),
    gi(
        21,
        idx::SLICE_1_REV1,
        "1g.24gb+me",
        [1, 3],
        1,
        MEM_1G,
        46,
        [1, 1, 1, 1, 1],
        GP_1G,
        CI_1G_ME,
    ),
    gi(
        47,
        idx::SLICE_1_GFX,
        "1g.24gb+gfx",
        [1, 3],
        4,
        MEM_1G,
        46,
        [1, 1, 1, 1, 0],
        GP_1G,
        CI_1G_GFX,
    ),
    gi(
        35,
        idx::SLICE_2_GFX,
        "2g.48gb+gfx",
        [2, 6],
        2,
        MEM_2G,
        94,
        [2, 2, 2, 2, 0],
        GP_2G,
        CI_2G_GFX,
    ),
    gi(
        32,
        idx::SLICE_4_GFX,
        "4g.96gb+gfx",
        [4, 12],
        1,
        MEM_4G,
        188,
        [4, 4, 4, 4, 1],
        GP_4G,
        CI_4G_GFX,
    ),
    gi(
        67,
        idx::SLICE_1_NO_ME,
        "1g.24gb-me",
        [1, 3],
        4,
        MEM_1G,
        46,
        [1, 0, 0, 0, 0],
        GP_1G,
        CI_1G_NO_ME,
    ),
    gi(
        66,
        idx::SLICE_2_NO_ME,
        "2g.48gb-me",
        [2, 6],
        2,
        MEM_2G,
        94,
        [2, 0, 0, 0, 0],
        GP_2G,
        CI_2G_NO_ME,
    ),
    gi(
        65,
        idx::SLICE_1_ALL_ME,
        "1g.24gb+me.all",
        [1, 3],
        1,
        MEM_1G,
        46,
        [1, 4, 4, 4, 1],
        GP_1G,
        CI_1G_ALL_ME,
    ),
    gi(
        64,
        idx::SLICE_2_ALL_ME,
        "2g.48gb+me.all",
        [2, 6],
        1,
        MEM_2G,
        94,
        [2, 4, 4, 4, 1],
        GP_2G,
        CI_2G_ALL_ME,
    ),
];

/// NVIDIA RTX PRO 6000 Blackwell Server Edition (96GB GDDR7).
pub(super) const RTX_PRO_6000_BSE: GpuModel = GpuModel {
    key: "rtx-pro-6000-bse-96gb",
    nvml_name: "NVIDIA RTX PRO 6000 Blackwell Server Edition",
    short_name: "RTX-PRO-6000-96GB",
    pci_device_id: 0x2BB5,
    memory_mib: 97887,
    compute_slices: 4,
    memory_slices: 12,
    sm_count: 188,
    // No source names its MIG-backed vGPU types, so none are derived (docs/mig-model.md).
    vgpu_board: "",
    gi_profiles: RTX_PRO_6000_PROFILES,
    gi_id_regions: GI_IDS_12_UNITS,
};

seven_slice_profiles!(B200_PROFILES, gb: ["23", "45", "90", "180"],
    mem: [20992, 45312, 90624, 182528], sm: [18, 30, 36, 68, 72, 148],
    ce: [2, 2, 4, 6, 8, 16]);

/// NVIDIA B200 (HGX B200), 180GB.
pub(super) const B200_180GB: GpuModel = GpuModel {
    key: "b200-180gb",
    nvml_name: "NVIDIA B200",
    short_name: "B200-180GB",
    pci_device_id: 0x2901,
    memory_mib: 183359,
    compute_slices: 7,
    memory_slices: 8,
    sm_count: 148,
    vgpu_board: "",
    gi_profiles: B200_PROFILES,
    gi_id_regions: GI_IDS_8_SLICES,
};

seven_slice_profiles!(GB200_PROFILES, gb: ["23", "47", "93", "186"],
    mem: [22528, 46592, 93696, 188416], sm: [18, 32, 38, 72, 76, 152],
    ce: [2, 2, 4, 6, 8, 16]);

/// NVIDIA GB200 (the Blackwell GPU of a Grace Blackwell superchip), 186GB.
pub(super) const GB200_186GB: GpuModel = GpuModel {
    key: "gb200-186gb",
    nvml_name: "NVIDIA GB200",
    short_name: "GB200-186GB",
    pci_device_id: 0x2941,
    memory_mib: 189471,
    compute_slices: 7,
    memory_slices: 8,
    sm_count: 152,
    vgpu_board: "",
    gi_profiles: GB200_PROFILES,
    gi_id_regions: GI_IDS_8_SLICES,
};
