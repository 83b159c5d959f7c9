//! Structural checks over every catalog model, and spot checks of the documented tables.
use std::collections::BTreeSet;

use super::*;

#[test]
fn keys_names_and_pci_ids_are_unique() {
    let keys: BTreeSet<_> = catalog().iter().map(|m| m.key).collect();
    let names: BTreeSet<_> = catalog().iter().map(|m| m.nvml_name).collect();
    let pci: BTreeSet<_> = catalog().iter().map(|m| m.pci_device_id).collect();
    assert_eq!(keys.len(), catalog().len());
    assert_eq!(names.len(), catalog().len());
    assert_eq!(pci.len(), catalog().len());
    for m in catalog() {
        assert_eq!(m.key, m.key.to_ascii_lowercase(), "{}", m.key);
    }
}

#[test]
fn gi_profiles_are_consistent() {
    for m in catalog() {
        let mut ids = BTreeSet::new();
        let mut last_index = None;
        for p in m.gi_profiles {
            assert!(ids.insert(p.id), "{}: duplicate profile id {}", m.key, p.id);
            assert!(
                last_index < Some(p.nvml_index),
                "{}: profiles not in NVML index order",
                m.key
            );
            last_index = Some(p.nvml_index);
            assert!(
                p.name.starts_with(&format!("{}g.", p.compute_slices)),
                "{} {}",
                m.key,
                p.name
            );
            assert!(p.compute_slices <= m.compute_slices && p.memory_slices <= m.memory_slices);
            assert!(p.memory_mib < m.memory_mib, "{} {}", m.key, p.name);
            assert!(!p.placements.is_empty() && p.instance_count as usize <= p.placements.len());
            assert!(
                p.engines.media_fits_within(m.engine_pool()),
                "{} {}",
                m.key,
                p.name
            );
            for (i, a) in p.placements.iter().enumerate() {
                assert_eq!(a.size, p.memory_slices, "{} {}", m.key, p.name);
                assert!(a.end() <= m.memory_slices);
                // Pairwise disjoint placements make greedy creation reach remaining capacity.
                for b in &p.placements[i + 1..] {
                    assert!(!a.overlaps(*b), "{} {}: {a} overlaps {b}", m.key, p.name);
                }
                assert!(
                    m.gi_id_for(*a).is_some(),
                    "{} {}: no GI id region for {a}",
                    m.key,
                    p.name
                );
            }
        }
        assert_eq!(m.full_profile().memory_slices, m.memory_slices);
        assert_eq!(m.full_profile().compute_slices, m.compute_slices);
    }
}

#[test]
fn gi_id_regions_are_unique_and_ordered() {
    for m in catalog() {
        let ids: BTreeSet<_> = m.gi_id_regions.iter().map(|(_, id)| *id).collect();
        let regions: BTreeSet<_> = m.gi_id_regions.iter().map(|(p, _)| *p).collect();
        assert_eq!(ids.len(), m.gi_id_regions.len(), "{}", m.key);
        assert_eq!(regions.len(), m.gi_id_regions.len(), "{}", m.key);
        assert!(
            m.gi_id_regions.windows(2).all(|w| w[0].1 < w[1].1),
            "{}",
            m.key
        );
        assert_eq!(m.gi_id_for(Placement::new(0, m.memory_slices)), Some(0));
    }
}

#[test]
fn ci_profiles_are_consistent() {
    for m in catalog() {
        for p in m.gi_profiles {
            let defaults: Vec<_> = p.ci_profiles.iter().filter(|c| c.is_default).collect();
            assert_eq!(defaults.len(), 1, "{} {}", m.key, p.name);
            let d = p.default_ci_profile();
            assert_eq!(d.compute_slices, p.compute_slices);
            assert_eq!(d.name, p.name, "the full-GI CI is named like the GI");
            // A double-memory 1g GI lists more SMs than its CI gets (docs/mig-model.md,
            // "Compute-instance profiles"); every other full-GI CI has the GI's SMs.
            if p.compute_slices == 1 && p.memory_slices == 2 && m.memory_slices == 8 {
                assert!(d.sm_count <= p.engines.sm, "{} {}", m.key, p.name);
            } else {
                assert_eq!(d.sm_count, p.engines.sm, "{} {}", m.key, p.name);
            }
            for c in p.ci_profiles {
                if c.compute_slices < p.compute_slices {
                    assert_eq!(c.name, format!("{}c.{}", c.compute_slices, p.name));
                }
                assert!(
                    c.instance_count as usize
                        <= c.placements.len().max(1) * p.compute_slices as usize
                );
                for pl in c.placements {
                    assert_eq!(pl.size, c.compute_slices);
                    assert!(
                        pl.end() <= p.compute_slices,
                        "{} {} {}",
                        m.key,
                        p.name,
                        c.name
                    );
                }
            }
        }
    }
}

#[test]
fn lookups_are_forgiving() {
    let m = GpuModel::by_key("A100-PCIE-40GB").unwrap();
    assert_eq!(m.nvml_name, "NVIDIA A100-PCIE-40GB");
    assert_eq!(
        GpuModel::by_nvml_name("NVIDIA H100 80GB HBM3").unwrap().key,
        "h100-sxm5-80gb"
    );
    assert_eq!(GpuModel::by_pci_device_id(0x20B7).unwrap().key, "a30-24gb");
    assert!(GpuModel::by_key("v100").is_none());
    for name in [
        "3g.20gb",
        "MIG 3g.20gb",
        "mig 3G.20GB",
        "  MIG   3g.20gb ",
        "mig-3g.20gb",
    ] {
        assert_eq!(
            m.gi_profile_by_name(name).map(|p| p.id),
            Some(GiProfileId(9)),
            "{name}"
        );
    }
    assert_eq!(m.gi_profile_by_id_or_name("14").unwrap().name, "2g.10gb");
    assert_eq!(
        m.gi_profile_by_id_or_name("1g.5gb+me").unwrap().id,
        GiProfileId(20)
    );
    assert_eq!(
        m.gi_profile_by_index(gi_index::SLICE_1_REV2).unwrap().name,
        "1g.10gb"
    );
    let g = m.gi_profile(GiProfileId(9)).unwrap();
    assert_eq!(
        g.ci_profile_by_name("MIG 1c.3g.20gb").unwrap().id,
        CiProfileId(0)
    );
    assert_eq!(g.default_ci_profile().id, CiProfileId(2));
    assert_eq!(m.pci_device_id_word(), 0x20F1_10DE);
}

/// (name, id, instances, memory MiB, SMs, [CE, DEC, ENC, JPEG, OFA], placements as `-lgipp`).
type Row = (&'static str, u32, u32, u64, u32, [u32; 5], &'static str);

fn check_table(key: &str, rows: &[Row]) {
    let m = GpuModel::by_key(key).unwrap();
    assert_eq!(m.gi_profiles.len(), rows.len(), "{key}");
    for &(name, id, count, mem, sm, [ce, dec, enc, jpeg, ofa], placements) in rows {
        let p = m
            .gi_profile_by_name(name)
            .unwrap_or_else(|| panic!("{key} lacks {name}"));
        let starts: Vec<String> = p.placements.iter().map(|pl| pl.start.to_string()).collect();
        let shown = format!("{{{}}}:{}", starts.join(","), p.memory_slices);
        assert_eq!(
            (
                p.id.0,
                p.instance_count,
                p.memory_mib,
                p.engines.sm,
                [
                    p.engines.ce,
                    p.engines.dec,
                    p.engines.enc,
                    p.engines.jpeg,
                    p.engines.ofa
                ],
                shown.as_str()
            ),
            (id, count, mem, sm, [ce, dec, enc, jpeg, ofa], placements),
            "{key} {name}"
        );
    }
}

#[test]
fn a100_40gb_matches_the_mig_user_guide() {
    let rows: &[Row] = &[
        (
            "1g.5gb",
            19,
            7,
            4864,
            14,
            [1, 0, 0, 0, 0],
            "{0,1,2,3,4,5,6}:1",
        ),
        (
            "1g.5gb+me",
            20,
            1,
            4864,
            14,
            [1, 1, 0, 1, 1],
            "{0,1,2,3,4,5,6}:1",
        ),
        ("1g.10gb", 15, 4, 9856, 14, [1, 1, 0, 0, 0], "{0,2,4,6}:2"),
        ("2g.10gb", 14, 3, 9856, 28, [2, 1, 0, 0, 0], "{0,2,4}:2"),
        ("3g.20gb", 9, 2, 19968, 42, [3, 2, 0, 0, 0], "{0,4}:4"),
        ("4g.20gb", 5, 1, 19968, 56, [4, 2, 0, 0, 0], "{0}:4"),
        ("7g.40gb", 0, 1, 40192, 98, [7, 5, 0, 1, 1], "{0}:8"),
    ];
    check_table("a100-pcie-40gb", rows);
    check_table("a100-sxm4-40gb", rows);
    let m = GpuModel::by_key("a100-pcie-40gb").unwrap();
    assert_eq!(
        m.gi_profile(GiProfileId(9)).unwrap().memory_gib_display(),
        "19.50"
    );
    assert_eq!(
        m.gi_profile(GiProfileId(14)).unwrap().memory_gib_display(),
        "9.62"
    );
}

#[test]
fn a100_80gb_matches_driver_550() {
    let rows: &[Row] = &[
        (
            "1g.10gb",
            19,
            7,
            9728,
            14,
            [1, 0, 0, 0, 0],
            "{0,1,2,3,4,5,6}:1",
        ),
        (
            "1g.10gb+me",
            20,
            1,
            9728,
            14,
            [1, 1, 0, 1, 1],
            "{0,1,2,3,4,5,6}:1",
        ),
        ("1g.20gb", 15, 4, 19968, 14, [1, 1, 0, 0, 0], "{0,2,4,6}:2"),
        ("2g.20gb", 14, 3, 19968, 28, [2, 1, 0, 0, 0], "{0,2,4}:2"),
        ("3g.40gb", 9, 2, 40192, 42, [3, 2, 0, 0, 0], "{0,4}:4"),
        ("4g.40gb", 5, 1, 40192, 56, [4, 2, 0, 0, 0], "{0}:4"),
        ("7g.80gb", 0, 1, 80640, 98, [7, 5, 0, 1, 1], "{0}:8"),
    ];
    check_table("a100-pcie-80gb", rows);
    check_table("a100-sxm4-80gb", rows);
    assert_eq!(
        GpuModel::by_key("a100-sxm4-80gb")
            .unwrap()
            .gi_profile(GiProfileId(0))
            .unwrap()
            .memory_gib_display(),
        "78.75"
    );
}

#[test]
fn a30_matches_real_output() {
    check_table(
        "a30-24gb",
        &[
            ("1g.6gb", 14, 4, 5952, 14, [1, 1, 0, 0, 0], "{0,1,2,3}:1"),
            ("1g.6gb+me", 21, 1, 5952, 14, [1, 1, 0, 1, 1], "{0,1,2,3}:1"),
            ("2g.12gb", 5, 2, 11968, 28, [2, 2, 0, 0, 0], "{0,2}:2"),
            ("2g.12gb+me", 6, 1, 11968, 28, [2, 2, 0, 1, 1], "{0,2}:2"),
            ("4g.24gb", 0, 1, 24000, 56, [4, 4, 0, 1, 1], "{0}:4"),
        ],
    );
    let m = GpuModel::by_key("a30-24gb").unwrap();
    let gib: Vec<String> = m
        .gi_profiles
        .iter()
        .map(|p| p.memory_gib_display())
        .collect();
    assert_eq!(gib, ["5.81", "11.69", "23.44", "5.81", "11.69"]);
}

#[test]
fn h100_sxm5_matches_real_output() {
    check_table(
        "h100-sxm5-80gb",
        &[
            (
                "1g.10gb",
                19,
                7,
                9984,
                16,
                [1, 1, 0, 1, 0],
                "{0,1,2,3,4,5,6}:1",
            ),
            (
                "1g.10gb+me",
                20,
                1,
                9984,
                16,
                [1, 1, 0, 1, 1],
                "{0,1,2,3,4,5,6}:1",
            ),
            ("1g.20gb", 15, 4, 20096, 26, [1, 1, 0, 1, 0], "{0,2,4,6}:2"),
            ("2g.20gb", 14, 3, 20096, 32, [2, 2, 0, 2, 0], "{0,2,4}:2"),
            ("3g.40gb", 9, 2, 40448, 60, [3, 3, 0, 3, 0], "{0,4}:4"),
            ("4g.40gb", 5, 1, 40448, 64, [4, 4, 0, 4, 0], "{0}:4"),
            ("7g.80gb", 0, 1, 81152, 132, [8, 7, 0, 7, 1], "{0}:8"),
        ],
    );
    let m = GpuModel::by_key("h100-sxm5-80gb").unwrap();
    let gib: Vec<String> = m
        .gi_profiles
        .iter()
        .map(|p| p.memory_gib_display())
        .collect();
    assert_eq!(
        gib,
        ["9.75", "19.62", "39.50", "39.50", "79.25", "9.75", "19.62"]
    );
    // The double-memory 1g GI's only CI is profile 7 (COMPUTE_INSTANCE_PROFILE_1_SLICE_REV1).
    assert_eq!(
        m.gi_profile(GiProfileId(15))
            .unwrap()
            .default_ci_profile()
            .id,
        CiProfileId(7)
    );
}

#[test]
fn h100_pcie_has_its_own_sm_counts() {
    let m = GpuModel::by_key("h100-pcie-80gb").unwrap();
    let sms: Vec<(&str, u32)> = m
        .gi_profiles
        .iter()
        .map(|p| (p.name, p.engines.sm))
        .collect();
    assert_eq!(
        sms,
        [
            ("1g.10gb", 14),
            ("2g.20gb", 30),
            ("3g.40gb", 46),
            ("4g.40gb", 62),
            ("7g.80gb", 114),
            ("1g.10gb+me", 14),
            ("1g.20gb", 14),
        ]
    );
    assert_eq!(m.nvml_name, "NVIDIA H100 PCIe");
}

#[test]
fn h100_nvl_matches_driver_560() {
    let m = GpuModel::by_key("h100-nvl-94gb").unwrap();
    let gib: Vec<(&str, String)> = m
        .gi_profiles
        .iter()
        .map(|p| (p.name, p.memory_gib_display()))
        .collect();
    let want = [
        ("1g.12gb", "10.75"),
        ("2g.24gb", "21.62"),
        ("3g.47gb", "46.38"),
        ("4g.47gb", "46.38"),
        ("7g.94gb", "93.12"),
        ("1g.12gb+me", "10.75"),
        ("1g.24gb", "21.62"),
    ];
    assert_eq!(gib, want.map(|(n, g)| (n, g.to_string())));
}

#[test]
fn h200_names_follow_the_mig_user_guide() {
    for key in ["h200-sxm-141gb", "h200-nvl-141gb"] {
        let m = GpuModel::by_key(key).unwrap();
        let names: Vec<&str> = m.gi_profiles.iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "1g.18gb",
                "2g.35gb",
                "3g.71gb",
                "4g.71gb",
                "7g.141gb",
                "1g.18gb+me",
                "1g.35gb"
            ]
        );
        // The memory column of a real `-lgip` (NVIDIA/mig-parted#120).
        let gib: Vec<String> = m
            .gi_profiles
            .iter()
            .map(|p| p.memory_gib_display())
            .collect();
        assert_eq!(
            gib,
            [
                "16.00", "32.25", "69.50", "69.50", "139.75", "16.00", "32.25"
            ]
        );
        let sms: Vec<u32> = m.gi_profiles.iter().map(|p| p.engines.sm).collect();
        assert_eq!(sms, [16, 32, 60, 64, 132, 16, 26]);
    }
}

#[test]
fn rtx_pro_6000_matches_real_output() {
    // `nvidia-smi mig -lgip` / `-lgipp`, RTX PRO 6000 Blackwell Server Edition, driver
    // 610.43.02 (docs/mig-model.md): a 12-unit grid, four variants beside the plain profile.
    let g1 = "{0,3,6,9}:3";
    let g2 = "{0,6}:6";
    let g4 = "{0}:12";
    let rows: &[Row] = &[
        ("1g.24gb", 14, 4, 24192, 46, [1, 1, 1, 1, 0], g1),
        ("1g.24gb+me", 21, 1, 24192, 46, [1, 1, 1, 1, 1], g1),
        ("1g.24gb+gfx", 47, 4, 24192, 46, [1, 1, 1, 1, 0], g1),
        ("1g.24gb+me.all", 65, 1, 24192, 46, [1, 4, 4, 4, 1], g1),
        ("1g.24gb-me", 67, 4, 24192, 46, [1, 0, 0, 0, 0], g1),
        ("2g.48gb", 5, 2, 48512, 94, [2, 2, 2, 2, 0], g2),
        ("2g.48gb+gfx", 35, 2, 48512, 94, [2, 2, 2, 2, 0], g2),
        ("2g.48gb+me.all", 64, 1, 48512, 94, [2, 4, 4, 4, 1], g2),
        ("2g.48gb-me", 66, 2, 48512, 94, [2, 0, 0, 0, 0], g2),
        ("4g.96gb", 0, 1, 97408, 188, [4, 4, 4, 4, 1], g4),
        ("4g.96gb+gfx", 32, 1, 97408, 188, [4, 4, 4, 4, 1], g4),
    ];
    check_table("rtx-pro-6000-bse-96gb", rows);
    let m = GpuModel::by_pci_device_id(0x2BB5).unwrap();
    assert_eq!(
        GpuModel::by_nvml_name("NVIDIA RTX PRO 6000 Blackwell Server Edition").map(|m| m.key),
        Some(m.key)
    );
    assert_eq!(
        (m.compute_slices, m.memory_slices, m.sm_count),
        (4, 12, 188)
    );
    // The GiB column as nvidia-smi printed it.
    let gib: Vec<String> = [14, 5, 0]
        .iter()
        .map(|id| m.gi_profile(GiProfileId(*id)).unwrap().memory_gib_display())
        .collect();
    assert_eq!(gib, ["23.62", "47.38", "95.12"]);
    // Variants are typed, and agree with the NVML index constants.
    for p in m.gi_profiles {
        let expected = match p.nvml_index {
            gi_index::SLICE_1_REV1 => ProfileVariant::MediaExtensions,
            gi_index::SLICE_1_ALL_ME | gi_index::SLICE_2_ALL_ME => {
                ProfileVariant::AllMediaExtensions
            }
            gi_index::SLICE_1_NO_ME | gi_index::SLICE_2_NO_ME => ProfileVariant::NoMediaExtensions,
            gi_index::SLICE_1_GFX | gi_index::SLICE_2_GFX | gi_index::SLICE_4_GFX => {
                ProfileVariant::Graphics
            }
            _ => ProfileVariant::Standard,
        };
        assert_eq!(p.variant, expected, "{}", p.name);
    }
    // The CIs seen in the same session: CI profile 0 in a 1g GI, 1 in a 2g GI.
    let ci_of = |gi: u32| m.gi_profile(GiProfileId(gi)).unwrap().default_ci_profile();
    assert_eq!((ci_of(14).id, ci_of(14).name), (CiProfileId(0), "1g.24gb"));
    assert_eq!((ci_of(5).id, ci_of(5).name), (CiProfileId(1), "2g.48gb"));
    // GI ids seen: 1g at 0:3/3:3/6:3/9:3 → 3/4/5/6, 2g at 0:6 → 1.
    for (start, size, id) in [(0, 3, 3), (3, 3, 4), (6, 3, 5), (9, 3, 6), (0, 6, 1)] {
        assert_eq!(m.gi_id_for(Placement::new(start, size)), Some(id));
    }
}

#[test]
fn every_profile_variant_is_the_one_its_name_spells() {
    for m in catalog() {
        for p in m.gi_profiles {
            assert_eq!(
                p.variant,
                ProfileVariant::of_name(p.name),
                "{} {}",
                m.key,
                p.name
            );
        }
    }
}

/// The rows real `-lgip` outputs give for the B200 (NVIDIA/mig-parted#187, the later driver's
/// 20.50 GiB), the GH200 144GB (NVIDIA/mig-parted#139) and the GB200 (NVIDIA/mig-parted#227):
/// name, id, count, memory column, SMs, copy engines. Their 3g, 4g and 7g rows are inferred (docs/mig-model.md).
#[test]
fn b200_gb200_and_gh200_144gb_match_the_real_rows_found() {
    let rows = |key: &str| -> Vec<(String, u32, u32, String, u32, u32)> {
        GpuModel::by_key(key)
            .unwrap()
            .gi_profiles
            .iter()
            .filter(|p| matches!(p.id.0, 19 | 20 | 15 | 14))
            .map(|p| {
                (
                    p.name.to_string(),
                    p.id.0,
                    p.instance_count,
                    p.memory_gib_display(),
                    p.engines.sm,
                    p.engines.ce,
                )
            })
            .collect()
    };
    let row =
        |n: &str, id, count, gib: &str, sm, ce| (n.to_string(), id, count, gib.to_string(), sm, ce);
    assert_eq!(
        rows("b200-180gb"),
        [
            row("1g.23gb", 19, 7, "20.50", 18, 2),
            row("2g.45gb", 14, 3, "44.25", 36, 4),
            row("1g.23gb+me", 20, 1, "20.50", 18, 2),
            row("1g.45gb", 15, 4, "44.25", 30, 2),
        ]
    );
    assert_eq!(
        rows("gh200-144gb"),
        [
            row("1g.18gb", 19, 7, "17.50", 16, 1),
            row("2g.36gb", 14, 3, "35.25", 32, 2),
            row("1g.18gb+me", 20, 1, "17.50", 16, 1),
            row("1g.36gb", 15, 4, "35.25", 26, 1),
        ]
    );
    // GB200 (NVIDIA/mig-parted#227, a production board).
    assert_eq!(
        rows("gb200-186gb"),
        [
            row("1g.23gb", 19, 7, "22.00", 18, 2),
            row("2g.47gb", 14, 3, "45.50", 38, 4),
            row("1g.23gb+me", 20, 1, "22.00", 18, 2),
            row("1g.47gb", 15, 4, "45.50", 32, 2),
        ]
    );
    // Counts of the inferred rows come from NVIDIA's MIG guide (B200) and mig-parted's
    // config (GH200 144GB, GB200): 3g ×2, 4g ×1, 7g ×1.
    for key in ["b200-180gb", "gh200-144gb", "gb200-186gb"] {
        let counts: Vec<u32> = GpuModel::by_key(key)
            .unwrap()
            .gi_profiles
            .iter()
            .filter(|p| matches!(p.id.0, 9 | 5 | 0))
            .map(|p| p.instance_count)
            .collect();
        assert_eq!(counts, [2, 1, 1], "{key}");
    }
}

/// The H20's real `nvidia-smi mig -lgip` (docs/mig-model.md, "H20"): every row, in
/// nvidia-smi's order, with its memory column, SMs and engines; the H100 SXM5 94GB is named
/// and numbered as NVIDIA's driver table gives it and shares the H100 NVL's table.
#[test]
fn h20_and_h100_sxm5_94gb_match_their_sources() {
    let h20 = GpuModel::by_pci_device_id(0x2329).expect("H20 by PCI id");
    assert_eq!(
        (h20.key, h20.nvml_name, h20.memory_mib),
        ("h20-96gb", "NVIDIA H20", 97871)
    );
    let mut rows: Vec<_> = h20.gi_profiles.iter().collect();
    rows.sort_by_key(|p| (p.memory_mib, p.compute_slices, p.nvml_index));
    let got: Vec<(String, u32, u32, String, [u32; 6])> = rows
        .iter()
        .map(|p| {
            let e = p.engines;
            (
                p.name.to_string(),
                p.id.0,
                p.instance_count,
                p.memory_gib_display(),
                [e.sm, e.dec, e.enc, e.ce, e.jpeg, e.ofa],
            )
        })
        .collect();
    let row = |n: &str, id, count, gib: &str, e| (n.to_string(), id, count, gib.to_string(), e);
    assert_eq!(
        got,
        [
            row("1g.12gb", 19, 7, "11.75", [8, 1, 0, 1, 1, 0]),
            row("1g.12gb+me", 20, 1, "11.75", [8, 1, 0, 1, 1, 1]),
            row("1g.24gb", 15, 4, "23.62", [12, 1, 0, 1, 1, 0]),
            row("2g.24gb", 14, 3, "23.62", [16, 2, 0, 2, 2, 0]),
            row("3g.48gb", 9, 2, "47.38", [32, 3, 0, 3, 3, 0]),
            row("4g.48gb", 5, 1, "47.38", [34, 4, 0, 4, 4, 0]),
            row("7g.96gb", 0, 1, "95.12", [78, 7, 0, 8, 7, 1]),
        ]
    );
    let sxm = GpuModel::by_nvml_name("NVIDIA H100").expect("H100 SXM5 94GB by name");
    assert_eq!(
        (sxm.key, sxm.pci_device_id, sxm.memory_mib),
        ("h100-sxm5-94gb", 0x2339, 95830)
    );
    let nvl = GpuModel::by_key("h100-nvl-94gb").unwrap();
    assert_eq!(sxm.gi_profiles, nvl.gi_profiles);
    assert_eq!(
        GpuModel::by_nvml_name("NVIDIA H100 NVL").map(|m| m.key),
        Some("h100-nvl-94gb")
    );
}
