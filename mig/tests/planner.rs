//! Scenario tests of the layout planner on real catalog geometry: concrete fragmentation cases,
//! in-use protection, CI-only changes, exact error messages and the replay helper.
use mig::planner::{ApplyError, PlanOptions, apply_plan, best_fit_placement, plan_with_options};
use mig::{
    CiProfileId, DesiredGi, DesiredLayout, GiProfileId, GpuInstanceId, GpuModel, MigState,
    Placement, PlanError, Step, plan,
};

fn a100() -> &'static GpuModel {
    GpuModel::by_key("a100-pcie-40gb").expect("A100-40GB in the catalog")
}

fn gi(model: &GpuModel, name: &str) -> GiProfileId {
    model
        .gi_profile_by_name(name)
        .unwrap_or_else(|| panic!("{name} on {}", model.key))
        .id
}

fn ci(model: &GpuModel, gi_name: &str, ci_name: &str) -> CiProfileId {
    model
        .gi_profile_by_name(gi_name)
        .and_then(|g| g.ci_profile_by_name(ci_name))
        .unwrap_or_else(|| panic!("{ci_name} in {gi_name}"))
        .id
}

fn pl(start: u32, size: u32) -> Placement {
    Placement { start, size }
}

fn layout(model: &GpuModel, names: &[&str]) -> DesiredLayout {
    DesiredLayout {
        gpu_instances: names.iter().map(|n| DesiredGi::new(gi(model, n))).collect(),
    }
}

/// A GI with its default CI, optionally marked in use.
fn add(state: &mut MigState, name: &str, at: Placement, in_use: bool) -> GpuInstanceId {
    let model = state.gpu_model();
    let profile = model.gi_profile_by_name(name).expect("profile");
    let id = state.create_gi(profile.id, Some(at)).expect("create gi");
    state
        .create_ci(id, profile.default_ci_profile().id, None)
        .expect("create ci");
    if in_use {
        state.set_gi_in_use(id, true).expect("mark in use");
    }
    id
}

/// Plan, replay, check the result is the layout and that re-planning is a no-op.
fn plan_and_replay(state: &MigState, desired: &DesiredLayout) -> (mig::Plan, MigState) {
    let p = plan(state, desired).expect("a plan");
    let mut reached = state.clone();
    apply_plan(&mut reached, &p).expect("the plan replays");
    assert!(desired.is_satisfied_by(&reached), "reached {reached:#?}");
    assert!(plan(&reached, desired).expect("re-plan").is_noop());
    (p, reached)
}

#[test]
fn fixed_order_that_fails_with_auto_placement_is_planned() {
    // MIG User Guide: `-cgi 19,19,14,9` fails with Insufficient Resources because the driver puts
    // the small GIs where both 3g windows overlap; the planner chooses placements itself.
    let model = a100();
    let names = ["1g.5gb", "1g.5gb", "2g.10gb", "3g.20gb"];
    let mut fixed_order = MigState::new(model);
    let results: Vec<bool> = names
        .iter()
        .map(|n| fixed_order.create_gi(gi(model, n), None).is_ok())
        .collect();
    assert_eq!(
        results,
        [true, true, true, false],
        "the driver model reproduces the failure"
    );

    let (p, reached) = plan_and_replay(&MigState::new(model), &layout(model, &names));
    assert_eq!(p.steps.len(), 8, "4 GIs + 4 default CIs: {p:#?}");
    // Largest first, each at the driver's preferred free region.
    let creates: Vec<_> = p
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::CreateGi { profile, placement } => Some((*profile, *placement)),
            _ => None,
        })
        .collect();
    assert_eq!(
        creates,
        [
            (gi(model, "3g.20gb"), pl(4, 4)),
            (gi(model, "2g.10gb"), pl(0, 2)),
            (gi(model, "1g.5gb"), pl(2, 1)),
            (gi(model, "1g.5gb"), pl(3, 1)),
        ]
    );
    assert_eq!(reached.gpu_instances.len(), 4);
}

#[test]
fn in_use_gi_is_kept_and_idle_ones_are_moved_around_it() {
    // An idle 1g at 0 and an in-use 1g at 6. Wanted: the in-use one, a 4g.20gb (only at 0:4)
    // and a 2g.10gb. mig-parted would clear the GPU first, which the in-use GI refuses; the
    // planner keeps it, destroys the idle 1g that sits in the 4g's window and places the rest.
    let model = a100();
    let mut state = MigState::new(model);
    let idle = add(&mut state, "1g.5gb", pl(0, 1), false);
    let busy = add(&mut state, "1g.5gb", pl(6, 1), true);
    let desired = layout(model, &["1g.5gb", "4g.20gb", "2g.10gb"]);
    let (p, reached) = plan_and_replay(&state, &desired);
    assert_eq!(p.kept, vec![busy]);
    assert!(p.steps.contains(&Step::DestroyGi { gi: idle }));
    assert!(
        !p.steps
            .iter()
            .any(|s| matches!(s, Step::DestroyGi { gi } if *gi == busy))
    );
    assert_eq!(
        reached.gpu_instances[&busy], state.gpu_instances[&busy],
        "in-use GI untouched"
    );
    // destroy CI + destroy GI + (4g + CI) + (2g + CI)
    assert_eq!(p.steps.len(), 6, "{:#?}", p.describe(&state));
}

#[test]
fn matching_gis_are_kept_and_only_cis_change() {
    let model = a100();
    let mut state = MigState::new(model);
    let three = state
        .create_gi(gi(model, "3g.20gb"), Some(pl(4, 4)))
        .expect("3g");
    let one_c = ci(model, "3g.20gb", "1c.3g.20gb");
    for _ in 0..3 {
        state.create_ci(three, one_c, None).expect("1c");
    }
    let two_c = ci(model, "3g.20gb", "2c.3g.20gb");
    let desired = DesiredLayout {
        gpu_instances: vec![DesiredGi::new(gi(model, "3g.20gb")).with_compute([two_c, one_c])],
    };
    let (p, _) = plan_and_replay(&state, &desired);
    // Keep one 1c, destroy two, create the 2c: three steps, the GI itself survives.
    assert_eq!(p.kept, vec![three]);
    assert_eq!(p.steps.len(), 3, "{:#?}", p.describe(&state));
    assert!(
        p.steps
            .iter()
            .all(|s| matches!(s, Step::DestroyCi { .. } | Step::CreateCi { .. }))
    );
}

#[test]
fn gi_with_an_in_use_ci_is_frozen() {
    // 4g.20gb with an idle 1c at 0 and an in-use 1c at 2. Rebuilding the split around the busy
    // CI would destroy the idle one, but a GI that runs processes is never touched at all.
    let model = a100();
    let mut state = MigState::new(model);
    let four = state
        .create_gi(gi(model, "4g.20gb"), Some(pl(0, 4)))
        .expect("4g");
    let one_c = ci(model, "4g.20gb", "1c.4g.20gb");
    let two_c = ci(model, "4g.20gb", "2c.4g.20gb");
    state.create_ci(four, one_c, Some(pl(0, 1))).expect("1c");
    let busy = state.create_ci(four, one_c, Some(pl(2, 1))).expect("1c");
    state.set_ci_in_use(four, busy, true).expect("in use");
    let desired = DesiredLayout {
        gpu_instances: vec![
            DesiredGi::new(gi(model, "4g.20gb")).with_compute([one_c, two_c, one_c]),
        ],
    };
    match plan(&state, &desired) {
        Err(PlanError::BlockedByInUse { gis, .. }) => assert_eq!(gis, vec![four]),
        other => panic!("expected BlockedByInUse, got {other:?}"),
    }
    // The same GI with its current split is kept as it is.
    let same = DesiredLayout {
        gpu_instances: vec![DesiredGi::new(gi(model, "4g.20gb")).with_compute([one_c, one_c])],
    };
    let (p, reached) = plan_and_replay(&state, &same);
    assert!(p.is_noop());
    assert!(reached.gpu_instances[&four].compute_instances[&busy].in_use);
}

#[test]
fn already_reached_is_a_noop_and_deterministic() {
    let model = a100();
    let mut state = MigState::new(model);
    add(&mut state, "3g.20gb", pl(4, 4), true);
    add(&mut state, "2g.10gb", pl(0, 2), false);
    let desired = layout(model, &["2g.10gb", "3g.20gb"]);
    let p = plan(&state, &desired).expect("plan");
    assert!(p.is_noop());
    assert_eq!(p.kept.len(), 2);
    let again = layout(model, &["1g.5gb", "3g.20gb", "2g.10gb", "1g.5gb"]);
    assert_eq!(plan(&state, &again), plan(&state, &again));
}

#[test]
fn infeasible_layouts_are_explained_precisely() {
    let model = a100();
    let empty = MigState::new(model);
    let err = |names: &[&str]| plan(&empty, &layout(model, names)).expect_err("infeasible");
    assert_eq!(
        err(&["3g.20gb", "3g.20gb", "4g.20gb"]),
        PlanError::Infeasible(
            "3g.20gb ×2 + 4g.20gb needs 12 memory slices; the A100-40GB has 8".into()
        )
    );
    assert_eq!(
        err(&["3g.20gb", "3g.20gb", "3g.20gb"]),
        PlanError::Infeasible("3 × 3g.20gb requested; the A100-40GB allows at most 2".into())
    );
    assert_eq!(
        err(&["4g.20gb", "2g.10gb", "2g.10gb"]),
        PlanError::Infeasible(
            "4g.20gb + 2g.10gb ×2 needs 8 compute slices; the A100-40GB has 7".into()
        )
    );
    let both_pinned = DesiredLayout {
        gpu_instances: vec![
            DesiredGi::new(gi(model, "3g.20gb")).at(pl(0, 4)),
            DesiredGi::new(gi(model, "4g.20gb")).at(pl(0, 4)),
        ],
    };
    assert_eq!(
        plan(&empty, &both_pinned),
        Err(PlanError::Infeasible(
            "3g.20gb pinned at 0:4 overlaps 4g.20gb pinned at 0:4".into()
        ))
    );
    let pinned = DesiredLayout {
        gpu_instances: vec![
            DesiredGi::new(gi(model, "3g.20gb")).at(pl(0, 4)),
            DesiredGi::new(gi(model, "4g.20gb")),
        ],
    };
    assert_eq!(
        plan(&empty, &pinned).expect_err("4g only fits at 0:4"),
        PlanError::Infeasible(
            "no arrangement of 3g.20gb + 4g.20gb fits the A100-40GB (8 memory slices): \
             3g.20gb pinned at 0:4, 4g.20gb at {0}:4"
                .into()
        )
    );
}

#[test]
fn invalid_input_is_rejected_with_typed_errors() {
    let model = a100();
    let empty = MigState::new(model);
    let unknown = DesiredLayout {
        gpu_instances: vec![DesiredGi::new(GiProfileId(4242))],
    };
    assert_eq!(
        plan(&empty, &unknown),
        Err(PlanError::UnknownProfile(GiProfileId(4242)))
    );
    let three = gi(model, "3g.20gb");
    let bad_pin = DesiredLayout {
        gpu_instances: vec![DesiredGi::new(three).at(pl(2, 4))],
    };
    assert_eq!(
        plan(&empty, &bad_pin),
        Err(PlanError::InvalidPlacement {
            profile: three,
            placement: pl(2, 4)
        })
    );
    let bad_ci = DesiredLayout {
        gpu_instances: vec![DesiredGi::new(three).with_compute([CiProfileId(99)])],
    };
    assert_eq!(
        plan(&empty, &bad_ci),
        Err(PlanError::UnknownCiProfile {
            gi: three,
            ci: CiProfileId(99)
        })
    );
    let two_c = ci(model, "3g.20gb", "2c.3g.20gb");
    let too_many = DesiredLayout {
        gpu_instances: vec![DesiredGi::new(three).with_compute([two_c, two_c])],
    };
    assert_eq!(
        plan(&empty, &too_many),
        Err(PlanError::Infeasible(
            "CI split 2c.3g.20gb ×2 needs 4 compute slices; a 3g.20gb GI has 3".into()
        ))
    );
}

#[test]
fn in_use_gi_outside_the_layout_blocks_it_and_partial_keeps_it() {
    let model = a100();
    let mut state = MigState::new(model);
    let busy = add(&mut state, "1g.5gb", pl(4, 1), true);
    add(&mut state, "2g.10gb", pl(0, 2), false);
    let desired = layout(model, &["7g.40gb"]);
    let before = state.clone();
    match plan(&state, &desired) {
        Err(PlanError::BlockedByInUse { gis, reason }) => {
            assert_eq!(gis, vec![busy]);
            assert_eq!(
                reason,
                "GI 7 (1g.5gb at 4:1) is in use (the layout has no 1g.5gb) and occupies memory \
                 slices the layout needs; stop what uses them, add them to the layout, or apply \
                 with allow-partial"
            );
        }
        other => panic!("expected BlockedByInUse, got {other:?}"),
    }
    assert_eq!(state, before, "planning never mutates");

    let outcome = plan_with_options(
        &state,
        &desired,
        PlanOptions {
            allow_partial: true,
        },
    )
    .expect("partial plan");
    assert_eq!(outcome.dropped, desired.gpu_instances);
    assert_eq!(outcome.in_use_outside, vec![busy]);
    assert!(!outcome.is_complete());
    let mut reached = state.clone();
    apply_plan(&mut reached, &outcome.plan).expect("replay");
    assert_eq!(
        reached.gpu_instances.keys().copied().collect::<Vec<_>>(),
        vec![busy]
    );
}

#[test]
fn in_use_gi_in_the_way_is_named() {
    // The in-use 1g.5gb at 0 is part of the layout, but the 4g.20gb can only start at 0.
    let model = a100();
    let mut state = MigState::new(model);
    let busy = add(&mut state, "1g.5gb", pl(0, 1), true);
    let desired = layout(model, &["1g.5gb", "4g.20gb"]);
    match plan(&state, &desired) {
        Err(PlanError::BlockedByInUse { gis, reason }) => {
            assert_eq!(gis, vec![busy]);
            assert!(
                reason.starts_with(
                    "GI 11 (1g.5gb at 0:1) is in use and occupies memory slices the layout needs"
                ),
                "{reason}"
            );
        }
        other => panic!("expected BlockedByInUse, got {other:?}"),
    }
    // Partial: the 4g.20gb is dropped, the in-use GI serves the 1g.5gb.
    let outcome = plan_with_options(
        &state,
        &desired,
        PlanOptions {
            allow_partial: true,
        },
    )
    .expect("partial");
    assert_eq!(outcome.dropped, vec![DesiredGi::new(gi(model, "4g.20gb"))]);
    assert!(outcome.in_use_outside.is_empty());
    assert!(outcome.plan.is_noop());
}

#[test]
fn pinned_gis_are_honoured() {
    let model = a100();
    let mut state = MigState::new(model);
    add(&mut state, "3g.20gb", pl(4, 4), false);
    let desired = DesiredLayout {
        gpu_instances: vec![
            DesiredGi::new(gi(model, "3g.20gb")).at(pl(0, 4)),
            DesiredGi::new(gi(model, "1g.10gb")).at(pl(6, 2)),
        ],
    };
    let (_, reached) = plan_and_replay(&state, &desired);
    let placements: Vec<_> = reached
        .gpu_instances
        .values()
        .map(|g| g.placement)
        .collect();
    assert!(placements.contains(&pl(0, 4)) && placements.contains(&pl(6, 2)));
}

#[test]
fn plan_serialises_and_describes() {
    let model = a100();
    let mut state = MigState::new(model);
    add(&mut state, "1g.5gb", pl(4, 1), false);
    let p = plan(&state, &layout(model, &["3g.20gb"])).expect("plan");
    assert_eq!(
        p.describe(&state),
        [
            "destroy CI 0 (1g.5gb) in GI 7 (1g.5gb at 4:1)",
            "destroy GI 7 (1g.5gb at 4:1)",
            "create GI 3g.20gb at 4:4",
            "create CI 3g.20gb in the GI at 4:4",
        ]
    );
    let json = serde_json::to_string(&p).expect("json");
    assert!(json.contains(r#""op":"create_gi""#), "{json}");
    let back: mig::Plan = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, p);
    assert_eq!(p.steps[2].to_string(), "create GI profile 9 at 4:4");
}

#[test]
fn apply_reports_the_failing_step() {
    let model = a100();
    let state = MigState::new(model);
    let p = mig::Plan {
        steps: vec![Step::CreateCi {
            gi_placement: pl(0, 4),
            profile: CiProfileId(2),
        }],
        kept: vec![],
    };
    let mut s = state.clone();
    let e = apply_plan(&mut s, &p).expect_err("no GI there");
    assert!(matches!(e, ApplyError::NoGiAtPlacement { index: 0, .. }));
    assert_eq!(
        e.to_string(),
        "step 1 (create CI profile 2 in the GI at 0:4): no GPU instance at 0:4; re-plan from the current state"
    );
}

#[test]
fn best_fit_keeps_the_big_windows_open() {
    let model = a100();
    let mut state = MigState::new(model);
    // Empty: 4:1, 5:1 and 6:1 all keep a 4g.20gb possible (0:4); 6:1 also keeps a 2g.10gb at
    // 4:2, so it leaves the most placements open.
    assert_eq!(
        best_fit_placement(&state, gi(model, "1g.5gb")),
        Some(pl(6, 1))
    );
    add(&mut state, "4g.20gb", pl(0, 4), false);
    add(&mut state, "1g.5gb", pl(4, 1), false);
    let p = best_fit_placement(&state, gi(model, "1g.10gb")).expect("room left");
    // 1g.10gb fits at 6:2 only (4:2 overlaps the 1g at 4).
    assert_eq!(p, pl(6, 2));
    assert_eq!(best_fit_placement(&state, gi(model, "7g.40gb")), None);
    assert_eq!(best_fit_placement(&state, GiProfileId(4242)), None);
}

#[test]
fn every_catalog_model_plans_its_full_and_all_small_layouts() {
    for model in mig::catalog() {
        let empty = MigState::new(model);
        let full = DesiredLayout {
            gpu_instances: vec![DesiredGi::new(model.full_profile().id)],
        };
        plan_and_replay(&empty, &full);
        // The smallest placement: one memory slice, or 3 units of the RTX PRO 6000's grid.
        let unit = model
            .gi_profiles
            .iter()
            .map(|p| p.memory_slices)
            .min()
            .expect("profiles");
        let smallest = model
            .gi_profiles
            .iter()
            .filter(|p| p.memory_slices == unit)
            .max_by_key(|p| p.instance_count)
            .expect("a smallest profile");
        let all_small = DesiredLayout {
            gpu_instances: vec![DesiredGi::new(smallest.id); smallest.instance_count as usize],
        };
        let (_, reached) = plan_and_replay(&empty, &all_small);
        // From all-small back to full: everything idle is destroyed.
        plan_and_replay(&reached, &full);
    }
}
