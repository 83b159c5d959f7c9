//! Properties of `MigState` under random operation sequences on every catalog GPU:
//! instances never overlap, remaining capacity equals what exhaustive creation achieves,
//! GI ids follow the model's region table, and the state survives a JSON round trip.
use mig::{ComputeInstanceId, GpuInstanceId, MigState, Placement, catalog};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Create a GI of the profile at index `profile`; `placement` picks one of its legal
    /// placements (or, past the end, a possibly illegal `start:size`), `None` auto-places.
    CreateGi {
        profile: usize,
        placement: Option<usize>,
    },
    DestroyGi {
        pick: usize,
    },
    CreateCi {
        gi: usize,
        profile: usize,
        placement: Option<usize>,
    },
    DestroyCi {
        gi: usize,
        ci: usize,
    },
    SetGiInUse {
        gi: usize,
        in_use: bool,
    },
    SetCiInUse {
        gi: usize,
        ci: usize,
        in_use: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let idx = 0usize..16;
    prop_oneof![
        4 => (idx.clone(), proptest::option::of(0usize..10)).prop_map(|(profile, placement)| Op::CreateGi { profile, placement }),
        2 => idx.clone().prop_map(|pick| Op::DestroyGi { pick }),
        3 => (idx.clone(), idx.clone(), proptest::option::of(0usize..10))
            .prop_map(|(gi, profile, placement)| Op::CreateCi { gi, profile, placement }),
        2 => (idx.clone(), idx.clone()).prop_map(|(gi, ci)| Op::DestroyCi { gi, ci }),
        1 => (idx.clone(), any::<bool>()).prop_map(|(gi, in_use)| Op::SetGiInUse { gi, in_use }),
        1 => (idx.clone(), idx, any::<bool>()).prop_map(|(gi, ci, in_use)| Op::SetCiInUse { gi, ci, in_use }),
    ]
}

fn nth_gi(s: &MigState, pick: usize) -> Option<GpuInstanceId> {
    let ids: Vec<_> = s.gpu_instances.keys().copied().collect();
    (!ids.is_empty()).then(|| ids[pick % ids.len()])
}

fn nth_ci(s: &MigState, gi: GpuInstanceId, pick: usize) -> Option<ComputeInstanceId> {
    let ids: Vec<_> = s.gpu_instances[&gi]
        .compute_instances
        .keys()
        .copied()
        .collect();
    (!ids.is_empty()).then(|| ids[pick % ids.len()])
}

fn apply(s: &mut MigState, op: &Op) {
    let model = s.gpu_model();
    // Errors are expected (that is the point of random sequences); the state must stay valid.
    match *op {
        Op::CreateGi { profile, placement } => {
            let p = &model.gi_profiles[profile % model.gi_profiles.len()];
            let placement = placement.map(|i| {
                p.placements
                    .get(i)
                    .copied()
                    .unwrap_or(Placement::new(i as u32, p.memory_slices))
            });
            let _ = s.create_gi(p.id, placement);
        }
        Op::DestroyGi { pick } => {
            if let Some(gi) = nth_gi(s, pick) {
                let _ = s.destroy_gi(gi);
            }
        }
        Op::CreateCi {
            gi,
            profile,
            placement,
        } => {
            if let Some(gi) = nth_gi(s, gi) {
                let gp = s.gi_profile_of(gi).unwrap();
                let cp = &gp.ci_profiles[profile % gp.ci_profiles.len()];
                let placement = placement.map(|i| {
                    cp.placements
                        .get(i)
                        .copied()
                        .unwrap_or(Placement::new(i as u32, cp.compute_slices))
                });
                let _ = s.create_ci(gi, cp.id, placement);
            }
        }
        Op::DestroyCi { gi, ci } => {
            if let Some(gi) = nth_gi(s, gi)
                && let Some(ci) = nth_ci(s, gi, ci)
            {
                let _ = s.destroy_ci(gi, ci);
            }
        }
        Op::SetGiInUse { gi, in_use } => {
            if let Some(gi) = nth_gi(s, gi) {
                s.set_gi_in_use(gi, in_use).unwrap();
            }
        }
        Op::SetCiInUse { gi, ci, in_use } => {
            if let Some(gi) = nth_gi(s, gi)
                && let Some(ci) = nth_ci(s, gi, ci)
            {
                s.set_ci_in_use(gi, ci, in_use).unwrap();
            }
        }
    }
}

fn check_invariants(s: &MigState) {
    let model = s.gpu_model();
    s.validate().unwrap();
    let gis: Vec<_> = s.gpu_instances.values().collect();
    for (i, a) in gis.iter().enumerate() {
        assert_eq!(
            Some(a.id.0),
            model.gi_id_for(a.placement),
            "GI id follows the region table"
        );
        for b in &gis[i + 1..] {
            assert!(
                !a.placement.overlaps(b.placement),
                "GIs {} and {} overlap",
                a.id,
                b.id
            );
        }
        let gp = s.gi_profile_of(a.id).unwrap();
        let cis: Vec<_> = a.compute_instances.values().collect();
        for (j, c) in cis.iter().enumerate() {
            assert!(c.placement.end() <= gp.compute_slices);
            for d in &cis[j + 1..] {
                assert!(
                    !c.placement.overlaps(d.placement),
                    "CIs overlap in GI {}",
                    a.id
                );
            }
        }
    }

    // Remaining capacity equals exhaustive (auto-placed, greedy) creation.
    for p in model.gi_profiles {
        let cap = s.remaining_gi_capacity(p.id).unwrap();
        let mut trial = s.clone();
        let mut made = 0;
        while trial.create_gi(p.id, None).is_ok() {
            made += 1;
        }
        assert_eq!(cap, made, "{} {}", model.key, p.name);
        assert_eq!(
            s.free_placements(p.id).unwrap().is_empty(),
            cap == 0,
            "{}",
            p.name
        );
    }
    for g in s.gpu_instances.values() {
        let gp = s.gi_profile_of(g.id).unwrap();
        for c in gp.ci_profiles {
            let cap = s.remaining_ci_capacity(g.id, c.id).unwrap();
            let mut trial = s.clone();
            let mut made = 0;
            while trial.create_ci(g.id, c.id, None).is_ok() {
                made += 1;
            }
            assert_eq!(cap, made, "{} {} in {}", model.key, c.name, gp.name);
        }
    }

    // The largest placeable profile really is placeable, and nothing bigger is.
    match s.largest_placeable() {
        Some(p) => {
            assert!(s.remaining_gi_capacity(p.id).unwrap() > 0);
            for q in model.gi_profiles {
                if (q.compute_slices, q.memory_slices) > (p.compute_slices, p.memory_slices) {
                    assert_eq!(s.remaining_gi_capacity(q.id).unwrap(), 0);
                }
            }
        }
        None => assert!(
            model
                .gi_profiles
                .iter()
                .all(|q| s.remaining_gi_capacity(q.id).unwrap() == 0)
        ),
    }
    let f = s.fragmentation();
    assert!((0.0..=1.0).contains(&f), "fragmentation {f}");

    let json = serde_json::to_string(s).unwrap();
    let back: MigState = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, s);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn random_operation_sequences_keep_the_state_sound(
        model in 0..catalog().len(),
        ops in proptest::collection::vec(op(), 0..24),
    ) {
        let mut s = MigState::new(&catalog()[model]);
        check_invariants(&s);
        for op in &ops {
            apply(&mut s, op);
            check_invariants(&s);
        }
    }

    #[test]
    fn destroying_everything_restores_full_capacity(
        model in 0..catalog().len(),
        ops in proptest::collection::vec(op(), 0..24),
    ) {
        let mut s = MigState::new(&catalog()[model]);
        for op in &ops {
            apply(&mut s, op);
        }
        let gis: Vec<_> = s.gpu_instances.keys().copied().collect();
        for gi in gis {
            s.set_gi_in_use(gi, false).unwrap();
            let cis: Vec<_> = s.gpu_instances[&gi].compute_instances.keys().copied().collect();
            for ci in cis {
                s.set_ci_in_use(gi, ci, false).unwrap();
                s.destroy_ci(gi, ci).unwrap();
            }
            s.destroy_gi(gi).unwrap();
        }
        let model = s.gpu_model();
        for p in model.gi_profiles {
            prop_assert_eq!(s.remaining_gi_capacity(p.id).unwrap(), p.instance_count);
        }
        prop_assert_eq!(s.largest_placeable().map(|p| p.id), Some(model.full_profile().id));
        prop_assert_eq!(s.fragmentation(), 0.0);
    }
}

#[test]
fn every_model_can_be_filled_with_each_profile() {
    for model in catalog() {
        for p in model.gi_profiles {
            let mut s = MigState::new(model);
            let mut n = 0;
            while let Ok(gi) = s.create_gi(p.id, None) {
                let ci = s.create_ci(gi, p.default_ci_profile().id, None).unwrap();
                assert_eq!(ci, ComputeInstanceId(0));
                n += 1;
            }
            assert_eq!(n, p.instance_count, "{} {}", model.key, p.name);
        }
    }
}
