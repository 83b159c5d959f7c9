//! Driver-rule tests on concrete layouts, mostly on the A100-PCIE-40GB whose GI id behaviour
//! was observed on real hardware (docs/mig-model.md).
use super::*;

fn a100() -> MigState {
    MigState::new(GpuModel::by_key("a100-pcie-40gb").unwrap())
}

const P1G: GiProfileId = GiProfileId(19);
const P1G_ME: GiProfileId = GiProfileId(20);
const P1G_2X: GiProfileId = GiProfileId(15);
const P2G: GiProfileId = GiProfileId(14);
const P3G: GiProfileId = GiProfileId(9);
const P4G: GiProfileId = GiProfileId(5);
const P7G: GiProfileId = GiProfileId(0);

fn at(start: u32, size: u32) -> Option<Placement> {
    Some(Placement::new(start, size))
}

fn placed(s: &MigState, id: u32) -> Placement {
    s.gpu_instance(GpuInstanceId(id)).unwrap().placement
}

#[test]
fn gi_ids_follow_the_observed_a100_table() {
    let mut s = a100();
    assert_eq!(s.create_gi(P7G, None), Ok(GpuInstanceId(0)));
    s.destroy_gi(GpuInstanceId(0)).unwrap();
    // 4-slice: 1 -> 4, 2 -> 0.
    assert_eq!(s.create_gi(P3G, None), Ok(GpuInstanceId(1)));
    assert_eq!(placed(&s, 1), Placement::new(4, 4));
    assert_eq!(s.create_gi(P3G, None), Ok(GpuInstanceId(2)));
    assert_eq!(placed(&s, 2), Placement::new(0, 4));
    let mut s = a100();
    // 2-slice: 3 -> 4, 4 -> 6, 5 -> 0, 6 -> 2.
    for (start, id) in [(4, 3), (6, 4), (0, 5), (2, 6)] {
        assert_eq!(s.create_gi(P1G_2X, at(start, 2)), Ok(GpuInstanceId(id)));
    }
    let mut s = a100();
    // 1-slice, auto-placed: lowest free id first; slice 7 (id 10) is no legal 1g start.
    let ids: Vec<u32> = (0..7).map(|_| s.create_gi(P1G, None).unwrap().0).collect();
    assert_eq!(ids, [7, 8, 9, 11, 12, 13, 14]);
    let starts: Vec<u32> = ids.iter().map(|&id| placed(&s, id).start).collect();
    assert_eq!(starts, [4, 5, 6, 0, 1, 2, 3]);
    assert_eq!(s.create_gi(P1G, None), Err(MigError::InsufficientResources));
}

#[test]
fn esxi_transcript_sequence_is_reproduced() {
    // Driver 510 on ESXi: `-cgi 9,19,14,19` gave GI 1 @4:4, GI 11 @0:1, GI 6 @2:2, then a 1g @1:1.
    let mut s = a100();
    let ids: Vec<u32> = [P3G, P1G, P2G, P1G]
        .iter()
        .map(|p| s.create_gi(*p, None).unwrap().0)
        .collect();
    assert_eq!(ids, [1, 11, 6, 12]);
    assert_eq!(placed(&s, 6), Placement::new(2, 2));
    assert_eq!(placed(&s, 12), Placement::new(1, 1));
}

#[test]
fn known_ordering_issue_is_reproduced() {
    // MIG guide: `-cgi 19,19,14,9` fails on the 3g; `-cgi 9,19,14,19` works (above).
    let mut s = a100();
    s.create_gi(P1G, None).unwrap();
    s.create_gi(P1G, None).unwrap();
    s.create_gi(P2G, None).unwrap();
    assert_eq!(s.create_gi(P3G, None), Err(MigError::InsufficientResources));
}

#[test]
fn explicit_placements_are_validated() {
    let mut s = a100();
    assert_eq!(
        s.create_gi(P1G, at(7, 1)),
        Err(MigError::InvalidPlacement(Placement::new(7, 1)))
    );
    assert_eq!(
        s.create_gi(P3G, at(2, 4)),
        Err(MigError::InvalidPlacement(Placement::new(2, 4)))
    );
    assert_eq!(
        s.create_gi(P3G, at(0, 2)),
        Err(MigError::InvalidPlacement(Placement::new(0, 2)))
    );
    assert_eq!(
        s.create_gi(GiProfileId(99), None),
        Err(MigError::UnknownGiProfile(GiProfileId(99)))
    );
    assert_eq!(s.create_gi(P3G, at(0, 4)), Ok(GpuInstanceId(2)));
    assert_eq!(
        s.create_gi(P4G, at(0, 4)),
        Err(MigError::InsufficientResources)
    );
    assert_eq!(
        s.create_gi(P1G, at(3, 1)),
        Err(MigError::InsufficientResources)
    );
    assert_eq!(s.create_gi(P3G, at(4, 4)), Ok(GpuInstanceId(1)));
    assert_eq!(s.remaining_gi_capacity(P1G), Ok(0));
}

#[test]
fn four_g_and_three_g_share_the_gpu() {
    let mut s = a100();
    assert_eq!(s.create_gi(P4G, None), Ok(GpuInstanceId(2)));
    assert_eq!(s.create_gi(P3G, None), Ok(GpuInstanceId(1)));
    assert_eq!(s.largest_placeable(), None);
    assert_eq!(s.fragmentation(), 0.0);
}

#[test]
fn media_extension_profiles_are_singletons() {
    let mut s = a100();
    assert_eq!(s.remaining_gi_capacity(P1G_ME), Ok(1));
    s.create_gi(P1G_ME, None).unwrap();
    assert_eq!(s.remaining_gi_capacity(P1G_ME), Ok(0));
    assert_eq!(s.free_placements(P1G_ME), Ok(vec![]));
    assert_eq!(
        s.create_gi(P1G_ME, at(0, 1)),
        Err(MigError::InsufficientResources)
    );
    // The full GPU needs the one OFA/JPEG too, and all slices.
    assert_eq!(s.remaining_gi_capacity(P7G), Ok(0));
    assert_eq!(s.remaining_gi_capacity(P1G), Ok(6));

    // A30: `1g.6gb+me` and `2g.12gb+me` both need the single OFA/JPEG.
    let mut s = MigState::new(GpuModel::by_key("a30-24gb").unwrap());
    s.create_gi(GiProfileId(21), None).unwrap();
    assert_eq!(s.remaining_gi_capacity(GiProfileId(6)), Ok(0));
    assert_eq!(placed(&s, 3), Placement::new(2, 1));
    assert_eq!(
        s.create_gi(GiProfileId(6), at(0, 2)),
        Err(MigError::InsufficientResources)
    );
    assert_eq!(s.create_gi(GiProfileId(5), None).map(|id| id.0), Ok(2));
}

#[test]
fn a30_gi_ids_follow_the_same_rule() {
    let mut s = MigState::new(GpuModel::by_key("a30-24gb").unwrap());
    let ids: Vec<u32> = (0..4)
        .map(|_| s.create_gi(GiProfileId(14), None).unwrap().0)
        .collect();
    assert_eq!(ids, [3, 4, 5, 6]);
    let mut s = MigState::new(GpuModel::by_key("a30-24gb").unwrap());
    assert_eq!(s.create_gi(GiProfileId(5), None), Ok(GpuInstanceId(1)));
    assert_eq!(
        s.gpu_instance(GpuInstanceId(1)).unwrap().placement,
        Placement::new(2, 2)
    );
}

#[test]
fn remaining_capacity_on_empty_and_half_full_gpu() {
    let mut s = a100();
    let caps = |s: &MigState| -> Vec<u32> {
        [P1G, P1G_ME, P1G_2X, P2G, P3G, P4G, P7G]
            .iter()
            .map(|p| s.remaining_gi_capacity(*p).unwrap())
            .collect()
    };
    assert_eq!(caps(&s), [7, 1, 4, 3, 2, 1, 1]);
    s.create_gi(P3G, None).unwrap();
    assert_eq!(caps(&s), [4, 1, 2, 2, 1, 1, 0]);
    assert_eq!(
        s.free_placements(P2G),
        Ok(vec![Placement::new(0, 2), Placement::new(2, 2)])
    );
    assert_eq!(s.largest_placeable().map(|p| p.name), Some("4g.20gb"));
}

#[test]
fn destroy_does_not_cascade() {
    let mut s = a100();
    let gi = s.create_gi(P3G, None).unwrap();
    let ci = s.create_ci(gi, CiProfileId(2), None).unwrap();
    assert_eq!(s.destroy_gi(gi), Err(MigError::GiHasComputeInstances(gi)));
    s.set_ci_in_use(gi, ci, true).unwrap();
    assert_eq!(s.destroy_ci(gi, ci), Err(MigError::CiInUse { gi, ci }));
    assert_eq!(s.destroy_gi(gi), Err(MigError::GiInUse(gi)));
    s.set_ci_in_use(gi, ci, false).unwrap();
    s.destroy_ci(gi, ci).unwrap();
    assert_eq!(s.destroy_ci(gi, ci), Err(MigError::CiNotFound { gi, ci }));
    s.set_gi_in_use(gi, true).unwrap();
    assert_eq!(s.destroy_gi(gi), Err(MigError::GiInUse(gi)));
    s.set_gi_in_use(gi, false).unwrap();
    s.destroy_gi(gi).unwrap();
    assert_eq!(s.destroy_gi(gi), Err(MigError::GiNotFound(gi)));
    assert!(s.is_empty());
}

#[test]
fn compute_instances_take_lowest_free_ids_and_slices() {
    let mut s = a100();
    let gi = s.create_gi(P3G, None).unwrap();
    let one = CiProfileId(0);
    let two = CiProfileId(1);
    assert_eq!(s.remaining_ci_capacity(gi, one), Ok(3));
    assert_eq!(s.create_ci(gi, one, None), Ok(ComputeInstanceId(0)));
    assert_eq!(s.create_ci(gi, two, None), Ok(ComputeInstanceId(1)));
    let c1 = &s.gpu_instance(gi).unwrap().compute_instances[&ComputeInstanceId(1)];
    assert_eq!(c1.placement, Placement::new(1, 2));
    assert_eq!(
        s.create_ci(gi, one, None),
        Err(MigError::InsufficientResources)
    );
    s.destroy_ci(gi, ComputeInstanceId(0)).unwrap();
    assert_eq!(s.create_ci(gi, one, None), Ok(ComputeInstanceId(0)));
    assert_eq!(
        s.create_ci(gi, CiProfileId(3), None),
        Err(MigError::UnknownCiProfile {
            gi: P3G,
            ci: CiProfileId(3)
        })
    );
    assert_eq!(
        s.create_ci(gi, one, at(3, 1)),
        Err(MigError::InvalidPlacement(Placement::new(3, 1)))
    );
    assert_eq!(
        s.create_ci(GpuInstanceId(9), one, None),
        Err(MigError::GiNotFound(GpuInstanceId(9)))
    );

    // 4g: two 2c, no 3c; the full CI needs every slice.
    let mut s = a100();
    let gi = s.create_gi(P4G, None).unwrap();
    assert_eq!(s.remaining_ci_capacity(gi, two), Ok(2));
    s.create_ci(gi, two, None).unwrap();
    assert_eq!(
        s.free_ci_placements(gi, two),
        Ok(vec![Placement::new(2, 2)])
    );
    assert_eq!(s.remaining_ci_capacity(gi, CiProfileId(3)), Ok(0));
    assert_eq!(
        s.create_ci(gi, CiProfileId(3), None),
        Err(MigError::InsufficientResources)
    );
}

#[test]
fn fragmentation_compares_with_the_best_relayout() {
    let mut s = a100();
    assert_eq!(s.fragmentation(), 0.0);
    s.create_gi(P1G, at(0, 1)).unwrap();
    s.create_gi(P1G, at(4, 1)).unwrap();
    // Now a 2g is the largest; packed left, the same two 1g would leave room for a 4g.
    assert_eq!(s.largest_placeable().map(|p| p.name), Some("2g.10gb"));
    assert!(
        (s.fragmentation() - 0.5).abs() < 1e-9,
        "{}",
        s.fragmentation()
    );
    // Seven 1g fill the GPU however they are placed: no fragmentation.
    let mut s = a100();
    for _ in 0..7 {
        s.create_gi(P1G, None).unwrap();
    }
    assert_eq!(s.fragmentation(), 0.0);
}

#[test]
fn json_round_trip_and_validation() {
    let mut s = a100();
    let gi = s.create_gi(P3G, None).unwrap();
    s.create_ci(gi, CiProfileId(0), None).unwrap();
    s.set_gi_in_use(gi, true).unwrap();
    s.create_gi(P1G_ME, None).unwrap();
    let json = serde_json::to_string(&s).unwrap();
    let back: MigState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    assert_eq!(back.validate(), Ok(()));

    let mut bad = s.clone();
    bad.model = "v100".into();
    assert!(bad.validate().is_err());
    let mut bad = s.clone();
    bad.gpu_instances.get_mut(&gi).unwrap().placement = Placement::new(2, 4);
    assert!(bad.validate().is_err());
}

#[test]
fn mig_mode_is_nvml_and_serde_friendly() {
    assert_eq!(MigMode::from_nvml(1), Some(MigMode::Enabled));
    assert_eq!(MigMode::Disabled.as_nvml(), 0);
    assert_eq!(MigMode::from_nvml(2), None);
    assert_eq!(
        serde_json::to_string(&MigMode::Enabled).unwrap(),
        "\"enabled\""
    );
}

#[test]
fn json_shape_matches_the_documented_example() {
    // docs/mig-model.md "Serialisation" shows this document.
    let mut s = a100();
    let gi = s.create_gi(P3G, None).unwrap();
    s.create_ci(gi, CiProfileId(2), None).unwrap();
    let want = r#"{"model":"a100-pcie-40gb","gpu_instances":{"1":{"id":1,"profile":9,"placement":{"start":4,"size":4},"compute_instances":{"0":{"id":0,"profile":2,"placement":{"start":0,"size":3},"in_use":false}},"in_use":false}}}"#;
    assert_eq!(serde_json::to_string(&s).unwrap(), want);
}

fn rtx() -> MigState {
    MigState::new(GpuModel::by_key("rtx-pro-6000-bse-96gb").unwrap())
}

#[test]
fn rtx_pro_6000_reproduces_the_observed_session() {
    // Driver 610.43.02: `-cgi 1g.24gb ×4 -C` made GIs 3, 4, 5, 6 at 0:3, 3:3, 6:3, 9:3.
    let mut s = rtx();
    for (id, start) in [(3, 0), (4, 3), (5, 6), (6, 9)] {
        assert_eq!(s.create_gi(GiProfileId(14), None), Ok(GpuInstanceId(id)));
        assert_eq!(placed(&s, id), Placement::new(start, 3));
    }
    // The full split leaves nothing: no fifth 1g, no 2g, no 4g.
    for p in [14, 47, 67, 5, 0] {
        assert_eq!(
            s.remaining_gi_capacity(GiProfileId(p)),
            Ok(0),
            "profile {p}"
        );
    }
    assert_eq!(
        s.create_gi(GiProfileId(14), None),
        Err(MigError::InsufficientResources)
    );
    // `-cgi 2g.48gb,1g.24gb,1g.24gb`: GI 1 at 0:6, then GIs 5 and 6 at 6:3 and 9:3.
    let mut s = rtx();
    assert_eq!(s.create_gi(GiProfileId(5), None), Ok(GpuInstanceId(1)));
    assert_eq!(placed(&s, 1), Placement::new(0, 6));
    assert_eq!(s.create_gi(GiProfileId(14), None), Ok(GpuInstanceId(5)));
    assert_eq!(s.create_gi(GiProfileId(14), None), Ok(GpuInstanceId(6)));
    assert_eq!(placed(&s, 6), Placement::new(9, 3));
}

#[test]
fn rtx_pro_6000_refuses_overlaps_and_off_grid_placements() {
    let mut s = rtx();
    assert_eq!(s.create_gi(GiProfileId(5), at(6, 6)), Ok(GpuInstanceId(2)));
    // A 1g at 9:3 lies inside the 2g at 6:6.
    assert_eq!(
        s.create_gi(GiProfileId(14), at(9, 3)),
        Err(MigError::InsufficientResources)
    );
    // 1:3 is not on the grid `-lgipp` lists.
    assert_eq!(
        s.create_gi(GiProfileId(14), at(1, 3)),
        Err(MigError::InvalidPlacement(Placement::new(1, 3)))
    );
    assert_eq!(
        s.free_placements(GiProfileId(14)),
        Ok(vec![Placement::new(0, 3), Placement::new(3, 3)])
    );
}

#[test]
fn rtx_pro_6000_me_all_leaves_room_only_for_no_me_profiles() {
    // nvml.h: a `+me.all` GI "prevents allocation of all but _NO_ME profiles"; the engine pool
    // (4 DEC/ENC/JPEG, 1 OFA) yields exactly that.
    let mut s = rtx();
    s.create_gi(GiProfileId(65), at(0, 3)).unwrap();
    for p in [14, 21, 47, 5, 35, 64, 65] {
        assert_eq!(
            s.remaining_gi_capacity(GiProfileId(p)),
            Ok(0),
            "profile {p}"
        );
        assert_eq!(
            s.create_gi(GiProfileId(p), None),
            Err(MigError::InsufficientResources),
            "profile {p}"
        );
    }
    assert_eq!(s.remaining_gi_capacity(GiProfileId(67)), Ok(3));
    assert_eq!(s.remaining_gi_capacity(GiProfileId(66)), Ok(1));
    s.create_gi(GiProfileId(66), at(6, 6)).unwrap();
    s.create_gi(GiProfileId(67), at(3, 3)).unwrap();
    assert_eq!(s.remaining_gi_capacity(GiProfileId(67)), Ok(0));
    // Four plain 1g GIs use the four decoders between them, so a `+me.all` cannot join them.
    let mut s = rtx();
    for _ in 0..3 {
        s.create_gi(GiProfileId(14), None).unwrap();
    }
    assert_eq!(s.remaining_gi_capacity(GiProfileId(65)), Ok(0));
    assert_eq!(s.remaining_gi_capacity(GiProfileId(21)), Ok(1));
}
