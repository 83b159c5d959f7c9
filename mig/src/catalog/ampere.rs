//! Ampere: A100 40GB / 80GB (PCIe and SXM4) and A30.
//!
//! A100-40GB numbers are from NVIDIA's MIG User Guide `-lgip`/`-lgipp` output (driver R525+
//! memory column), A100-80GB from a real A100-SXM4-80GB on driver 550.54.14, A30 from real
//! `-lgip`/`-lgipp` output. Sources and inferred values: docs/mig-model.md.
use super::{
    CP_1_IN_1, CP_1_IN_2, CP_1_IN_3, CP_1_IN_4, CP_1_IN_7, CP_2_IN_2, CP_2_IN_3, CP_2_IN_4,
    CP_2_IN_7, CP_3_IN_3, CP_3_IN_7, CP_4_IN_4, CP_4_IN_7, CP_7_IN_7, CiProfile, GI_IDS_4_SLICES,
    GI_IDS_8_SLICES, GP_1, GP_2, GP_2_ALL, GP_4, GP_4_LEFT, GP_8, GiProfile, GpuModel, ci, gi,
    gi_index as idx, pl,
};
use crate::ids::Placement;

// ---- A100 40GB -------------------------------------------------------------------------

const A100_40_CI_1G: &[CiProfile] = &[ci(0, "1g.5gb", 1, 1, 14, CP_1_IN_1, true)];
const A100_40_CI_1G_ME: &[CiProfile] = &[ci(0, "1g.5gb+me", 1, 1, 14, CP_1_IN_1, true)];
const A100_40_CI_1G_2X: &[CiProfile] = &[ci(7, "1g.10gb", 1, 1, 14, CP_1_IN_1, true)];
const A100_40_CI_2G: &[CiProfile] = &[
    ci(0, "1c.2g.10gb", 1, 2, 14, CP_1_IN_2, false),
    ci(1, "2g.10gb", 2, 1, 28, CP_2_IN_2, true),
];
const A100_40_CI_3G: &[CiProfile] = &[
    ci(0, "1c.3g.20gb", 1, 3, 14, CP_1_IN_3, false),
    ci(1, "2c.3g.20gb", 2, 1, 28, CP_2_IN_3, false),
    ci(2, "3g.20gb", 3, 1, 42, CP_3_IN_3, true),
];
const A100_40_CI_4G: &[CiProfile] = &[
    ci(0, "1c.4g.20gb", 1, 4, 14, CP_1_IN_4, false),
    ci(1, "2c.4g.20gb", 2, 2, 28, CP_2_IN_4, false),
    ci(3, "4g.20gb", 4, 1, 56, CP_4_IN_4, true),
];
const A100_40_CI_7G: &[CiProfile] = &[
    ci(0, "1c.7g.40gb", 1, 7, 14, CP_1_IN_7, false),
    ci(1, "2c.7g.40gb", 2, 3, 28, CP_2_IN_7, false),
    ci(2, "3c.7g.40gb", 3, 2, 42, CP_3_IN_7, false),
    ci(3, "4c.7g.40gb", 4, 1, 56, CP_4_IN_7, false),
    ci(4, "7g.40gb", 7, 1, 98, CP_7_IN_7, true),
];

const A100_40GB_PROFILES: &[GiProfile] = &[
    gi(
        19,
        idx::SLICE_1,
        "1g.5gb",
        [1, 1],
        7,
        4864,
        14,
        [1, 0, 0, 0, 0],
        GP_1,
        A100_40_CI_1G,
    ),
    gi(
        14,
        idx::SLICE_2,
        "2g.10gb",
        [2, 2],
        3,
        9856,
        28,
        [2, 1, 0, 0, 0],
        GP_2,
        A100_40_CI_2G,
    ),
    gi(
        9,
        idx::SLICE_3,
        "3g.20gb",
        [3, 4],
        2,
        19968,
        42,
        [3, 2, 0, 0, 0],
        GP_4,
        A100_40_CI_3G,
    ),
    gi(
        5,
        idx::SLICE_4,
        "4g.20gb",
        [4, 4],
        1,
        19968,
        56,
        [4, 2, 0, 0, 0],
        GP_4_LEFT,
        A100_40_CI_4G,
    ),
    gi(
        0,
        idx::SLICE_7,
        "7g.40gb",
        [7, 8],
        1,
        40192,
        98,
        [7, 5, 0, 1, 1],
        GP_8,
        A100_40_CI_7G,
    ),
    gi(
        20,
        idx::SLICE_1_REV1,
        "1g.5gb+me",
        [1, 1],
        1,
        4864,
        14,
        [1, 1, 0, 1, 1],
        GP_1,
        A100_40_CI_1G_ME,
    ),
    gi(
        15,
        idx::SLICE_1_REV2,
        "1g.10gb",
        [1, 2],
        4,
        9856,
        14,
        [1, 1, 0, 0, 0],
        GP_2_ALL,
        A100_40_CI_1G_2X,
    ),
];

/// NVIDIA A100 PCIe 40GB.
pub(super) const A100_PCIE_40GB: GpuModel = GpuModel {
    key: "a100-pcie-40gb",
    nvml_name: "NVIDIA A100-PCIE-40GB",
    short_name: "A100-40GB",
    pci_device_id: 0x20F1,
    memory_mib: 40960,
    compute_slices: 7,
    memory_slices: 8,
    sm_count: 108,
    vgpu_board: "a100",
    gi_profiles: A100_40GB_PROFILES,
    gi_id_regions: GI_IDS_8_SLICES,
};

/// NVIDIA A100 SXM4 40GB (HGX A100 40GB).
pub(super) const A100_SXM4_40GB: GpuModel = GpuModel {
    key: "a100-sxm4-40gb",
    nvml_name: "NVIDIA A100-SXM4-40GB",
    short_name: "A100-40GB",
    pci_device_id: 0x20B0,
    memory_mib: 40960,
    compute_slices: 7,
    memory_slices: 8,
    sm_count: 108,
    vgpu_board: "a100x",
    gi_profiles: A100_40GB_PROFILES,
    gi_id_regions: GI_IDS_8_SLICES,
};

// ---- A100 80GB -------------------------------------------------------------------------

const A100_80_CI_1G: &[CiProfile] = &[ci(0, "1g.10gb", 1, 1, 14, CP_1_IN_1, true)];
const A100_80_CI_1G_ME: &[CiProfile] = &[ci(0, "1g.10gb+me", 1, 1, 14, CP_1_IN_1, true)];
const A100_80_CI_1G_2X: &[CiProfile] = &[ci(7, "1g.20gb", 1, 1, 14, CP_1_IN_1, true)];
const A100_80_CI_2G: &[CiProfile] = &[
    ci(0, "1c.2g.20gb", 1, 2, 14, CP_1_IN_2, false),
    ci(1, "2g.20gb", 2, 1, 28, CP_2_IN_2, true),
];
const A100_80_CI_3G: &[CiProfile] = &[
    ci(0, "1c.3g.40gb", 1, 3, 14, CP_1_IN_3, false),
    ci(1, "2c.3g.40gb", 2, 1, 28, CP_2_IN_3, false),
    ci(2, "3g.40gb", 3, 1, 42, CP_3_IN_3, true),
];
const A100_80_CI_4G: &[CiProfile] = &[
    ci(0, "1c.4g.40gb", 1, 4, 14, CP_1_IN_4, false),
    ci(1, "2c.4g.40gb", 2, 2, 28, CP_2_IN_4, false),
    ci(3, "4g.40gb", 4, 1, 56, CP_4_IN_4, true),
];
const A100_80_CI_7G: &[CiProfile] = &[
    ci(0, "1c.7g.80gb", 1, 7, 14, CP_1_IN_7, false),
    ci(1, "2c.7g.80gb", 2, 3, 28, CP_2_IN_7, false),
    ci(2, "3c.7g.80gb", 3, 2, 42, CP_3_IN_7, false),
    ci(3, "4c.7g.80gb", 4, 1, 56, CP_4_IN_7, false),
    ci(4, "7g.80gb", 7, 1, 98, CP_7_IN_7, true),
];

const A100_80GB_PROFILES: &[GiProfile] = &[
    gi(
        19,
        idx::SLICE_1,
        "1g.10gb",
        [1, 1],
        7,
        9728,
        14,
        [1, 0, 0, 0, 0],
        GP_1,
        A100_80_CI_1G,
    ),
    gi(
        14,
        idx::SLICE_2,
        "2g.20gb",
        [2, 2],
        3,
        19968,
        28,
        [2, 1, 0, 0, 0],
        GP_2,
        A100_80_CI_2G,
    ),
    gi(
        9,
        idx::SLICE_3,
        "3g.40gb",
        [3, 4],
        2,
        40192,
        42,
        [3, 2, 0, 0, 0],
        GP_4,
        A100_80_CI_3G,
    ),
    gi(
        5,
        idx::SLICE_4,
        "4g.40gb",
        [4, 4],
        1,
        40192,
        56,
        [4, 2, 0, 0, 0],
        GP_4_LEFT,
        A100_80_CI_4G,
    ),
    gi(
        0,
        idx::SLICE_7,
        "7g.80gb",
        [7, 8],
        1,
        80640,
        98,
        [7, 5, 0, 1, 1],
        GP_8,
        A100_80_CI_7G,
    ),
    gi(
        20,
        idx::SLICE_1_REV1,
        "1g.10gb+me",
        [1, 1],
        1,
        9728,
        14,
        [1, 1, 0, 1, 1],
        GP_1,
        A100_80_CI_1G_ME,
    ),
    gi(
        15,
        idx::SLICE_1_REV2,
        "1g.20gb",
        [1, 2],
        4,
        19968,
        14,
        [1, 1, 0, 0, 0],
        GP_2_ALL,
        A100_80_CI_1G_2X,
    ),
];

/// NVIDIA A100 PCIe 80GB.
pub(super) const A100_PCIE_80GB: GpuModel = GpuModel {
    key: "a100-pcie-80gb",
    nvml_name: "NVIDIA A100 80GB PCIe",
    short_name: "A100-80GB",
    pci_device_id: 0x20B5,
    memory_mib: 81920,
    compute_slices: 7,
    memory_slices: 8,
    sm_count: 108,
    vgpu_board: "a100d",
    gi_profiles: A100_80GB_PROFILES,
    gi_id_regions: GI_IDS_8_SLICES,
};

/// NVIDIA A100 SXM4 80GB (HGX A100 80GB).
pub(super) const A100_SXM4_80GB: GpuModel = GpuModel {
    key: "a100-sxm4-80gb",
    nvml_name: "NVIDIA A100-SXM4-80GB",
    short_name: "A100-80GB",
    pci_device_id: 0x20B2,
    memory_mib: 81920,
    compute_slices: 7,
    memory_slices: 8,
    sm_count: 108,
    vgpu_board: "a100dx",
    gi_profiles: A100_80GB_PROFILES,
    gi_id_regions: GI_IDS_8_SLICES,
};

// ---- A30 24GB --------------------------------------------------------------------------

const A30_GP_1: &[Placement] = &[pl(0, 1), pl(1, 1), pl(2, 1), pl(3, 1)];
const A30_GP_2: &[Placement] = &[pl(0, 2), pl(2, 2)];
const A30_GP_4: &[Placement] = &[pl(0, 4)];

const A30_CI_1G: &[CiProfile] = &[ci(0, "1g.6gb", 1, 1, 14, CP_1_IN_1, true)];
const A30_CI_1G_ME: &[CiProfile] = &[ci(0, "1g.6gb+me", 1, 1, 14, CP_1_IN_1, true)];
const A30_CI_2G: &[CiProfile] = &[
    ci(0, "1c.2g.12gb", 1, 2, 14, CP_1_IN_2, false),
    ci(1, "2g.12gb", 2, 1, 28, CP_2_IN_2, true),
];
const A30_CI_2G_ME: &[CiProfile] = &[
    ci(0, "1c.2g.12gb+me", 1, 2, 14, CP_1_IN_2, false),
    ci(1, "2g.12gb+me", 2, 1, 28, CP_2_IN_2, true),
];
const A30_CI_4G: &[CiProfile] = &[
    ci(0, "1c.4g.24gb", 1, 4, 14, CP_1_IN_4, false),
    ci(1, "2c.4g.24gb", 2, 2, 28, CP_2_IN_4, false),
    ci(3, "4g.24gb", 4, 1, 56, CP_4_IN_4, true),
];

const A30_PROFILES: &[GiProfile] = &[
    gi(
        14,
        idx::SLICE_1,
        "1g.6gb",
        [1, 1],
        4,
        5952,
        14,
        [1, 1, 0, 0, 0],
        A30_GP_1,
        A30_CI_1G,
    ),
    gi(
        5,
        idx::SLICE_2,
        "2g.12gb",
        [2, 2],
        2,
        11968,
        28,
        [2, 2, 0, 0, 0],
        A30_GP_2,
        A30_CI_2G,
    ),
    gi(
        0,
        idx::SLICE_4,
        "4g.24gb",
        [4, 4],
        1,
        24000,
        56,
        [4, 4, 0, 1, 1],
        A30_GP_4,
        A30_CI_4G,
    ),
    gi(
        21,
        idx::SLICE_1_REV1,
        "1g.6gb+me",
        [1, 1],
        1,
        5952,
        14,
        [1, 1, 0, 1, 1],
        A30_GP_1,
        A30_CI_1G_ME,
    ),
    gi(
        6,
        idx::SLICE_2_REV1,
        "2g.12gb+me",
        [2, 2],
        1,
        11968,
        28,
        [2, 2, 0, 1, 1],
        A30_GP_2,
        A30_CI_2G_ME,
    ),
];

/// NVIDIA A30 24GB.
pub(super) const A30_24GB: GpuModel = GpuModel {
    key: "a30-24gb",
    nvml_name: "NVIDIA A30",
    short_name: "A30-24GB",
    pci_device_id: 0x20B7,
    memory_mib: 24576,
    compute_slices: 4,
    memory_slices: 4,
    sm_count: 56,
    vgpu_board: "a30",
    gi_profiles: A30_PROFILES,
    gi_id_regions: GI_IDS_4_SLICES,
};
