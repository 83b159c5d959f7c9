//! Property tests of the layout planner against random states and layouts on every catalog
//! model, checked with the `MigState` operations and, for small cases, against an exhaustive
//! brute-force search written independently of the planner.
//!
//! Invariants: a plan never destroys an in-use GI or CI; replayed step by step it reaches the
//! desired layout; planning again from there is a no-op; a refusal (infeasible or blocked by
//! in-use GIs) is correct, and a plan is as short as any possible one. Seeds are fixed so runs
//! are reproducible; case counts are explicit (11,000 in total).
use mig::planner::{PlanOptions, apply_plan, best_fit_placement, plan_with_options};
use mig::{
    CiProfileId, DesiredGi, DesiredLayout, GiProfile, GpuInstance, GpuModel, MigState, Placement,
    Plan, PlanError, Step, catalog, plan,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn config(cases: u32, seed: u64) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_iters: 2_000,
        max_global_rejects: 100_000,
        ..Config::default()
    }
}

// ---- generators -----------------------------------------------------------------------------

/// One random operation on a state: (kind, a, b, c) drive the choice of profile, placement,
/// CI split and target.
type Op = (u8, u32, u32, u32);

fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec((0u8..10, any::<u32>(), any::<u32>(), any::<u32>()), 0..=max)
}

fn model(index: usize) -> &'static GpuModel {
    let models = catalog();
    &models[index % models.len()]
}

/// A state reached by legal operations only (errors are ignored, as a driver would refuse
/// them). With `in_use`, some GIs and CIs get marked in use.
fn build(model: &'static GpuModel, ops: &[Op], in_use: bool) -> MigState {
    let mut s = MigState::new(model);
    for &(kind, a, b, c) in ops {
        let ids: Vec<_> = s.gpu_instances.keys().copied().collect();
        match kind {
            0..=5 => {
                let prof = &model.gi_profiles[a as usize % model.gi_profiles.len()];
                let placement =
                    (b % 3 != 0).then(|| prof.placements[(b / 3) as usize % prof.placements.len()]);
                let Ok(id) = s.create_gi(prof.id, placement) else {
                    continue;
                };
                match c % 4 {
                    0 | 1 => {
                        let _ = s.create_ci(id, prof.default_ci_profile().id, None);
                    }
                    2 => {
                        for k in 0..1 + (c >> 2) % 3 {
                            let pick = (c >> (4 + 3 * k)) as usize % prof.ci_profiles.len();
                            let _ = s.create_ci(id, prof.ci_profiles[pick].id, None);
                        }
                    }
                    _ => {}
                }
            }
            6 | 7 if in_use && !ids.is_empty() => {
                let id = ids[a as usize % ids.len()];
                let cis: Vec<_> = s.gpu_instances[&id]
                    .compute_instances
                    .keys()
                    .copied()
                    .collect();
                if b % 2 == 0 || cis.is_empty() {
                    s.set_gi_in_use(id, true).expect("mark GI");
                } else {
                    s.set_ci_in_use(id, cis[c as usize % cis.len()], true)
                        .expect("mark CI");
                }
            }
            8 | 9 if !ids.is_empty() => {
                let id = ids[a as usize % ids.len()];
                if !s.gpu_instances[&id].is_in_use() {
                    let cis: Vec<_> = s.gpu_instances[&id]
                        .compute_instances
                        .keys()
                        .copied()
                        .collect();
                    for ci in cis {
                        s.destroy_ci(id, ci).expect("idle CI");
                    }
                    s.destroy_gi(id).expect("idle GI");
                }
            }
            _ => {}
        }
    }
    s
}

/// How a desired layout is drawn: the shape of another reachable state (so it usually fits),
/// raw random profiles (often it does not), or part of the current state (so in-use GIs are
/// often wanted), sometimes re-split into other CIs, plus random extras.
#[derive(Debug, Clone)]
enum Spec {
    Reachable {
        ops: Vec<Op>,
        pins: u32,
    },
    Raw(Vec<(u32, u32, u32)>),
    FromCurrent {
        keep: u32,
        pins: u32,
        resplit: u32,
        extra: Vec<(u32, u32, u32)>,
    },
}

fn raw(max: usize) -> impl Strategy<Value = Vec<(u32, u32, u32)>> {
    prop::collection::vec((any::<u32>(), any::<u32>(), any::<u32>()), 0..=max)
}

fn spec(max_raw: usize, max_ops: usize) -> impl Strategy<Value = Spec> {
    spec_weighted(max_raw, max_ops, 2)
}

/// `from_current` weighs the layouts derived from the current state against the other two.
fn spec_weighted(max_raw: usize, max_ops: usize, from_current: u32) -> impl Strategy<Value = Spec> {
    prop_oneof![
        1 => (ops(max_ops), any::<u32>()).prop_map(|(ops, pins)| Spec::Reachable { ops, pins }),
        1 => raw(max_raw).prop_map(Spec::Raw),
        from_current => (any::<u32>(), any::<u32>(), any::<u32>(), raw(max_raw.min(2))).prop_map(
            |(keep, pins, resplit, extra)| Spec::FromCurrent { keep, pins, resplit, extra }
        ),
    ]
}

/// A random GI of `model` from three numbers: profile, sometimes a pin, sometimes a CI split.
fn raw_gi(model: &GpuModel, (p, x, y): (u32, u32, u32)) -> DesiredGi {
    let prof = &model.gi_profiles[p as usize % model.gi_profiles.len()];
    let placement = (x % 4 == 0).then(|| prof.placements[(x / 4) as usize % prof.placements.len()]);
    DesiredGi {
        profile: prof.id,
        placement,
        compute: random_split(prof, y),
    }
}

/// One or two random CI profiles of `prof` one time in three, else the default CI.
fn random_split(prof: &GiProfile, y: u32) -> Vec<CiProfileId> {
    if !y.is_multiple_of(3) {
        return Vec::new();
    }
    (0..1 + (y >> 2) % 2)
        .map(|k| prof.ci_profiles[(y >> (3 + 3 * k)) as usize % prof.ci_profiles.len()].id)
        .collect()
}

fn desired(model: &'static GpuModel, spec: &Spec, current: &MigState) -> DesiredLayout {
    let gpu_instances = match spec {
        Spec::Reachable { ops, pins } => build(model, ops, false)
            .gpu_instances
            .values()
            .enumerate()
            .map(|(k, g)| DesiredGi {
                profile: g.profile,
                placement: (pins >> (k % 32) & 1 == 1).then_some(g.placement),
                compute: g.compute_instances.values().map(|c| c.profile).collect(),
            })
            .collect(),
        Spec::Raw(items) => items.iter().map(|i| raw_gi(model, *i)).collect(),
        Spec::FromCurrent {
            keep,
            pins,
            resplit,
            extra,
        } => current
            .gpu_instances
            .values()
            .enumerate()
            // Each GI is kept half the time, in-use ones three times in four.
            .filter(|(k, g)| {
                keep >> (k % 16) & 1 == 1 || (g.is_in_use() && keep >> (16 + k % 16) & 1 == 1)
            })
            .map(|(k, g)| {
                let prof = model.gi_profile(g.profile).expect("catalog profile");
                // Re-split one time in four.
                let compute = if resplit >> (2 * (k % 16)) & 3 == 0 {
                    random_split(prof, resplit.rotate_left(k as u32 * 5) / 3 * 3)
                } else {
                    g.compute_instances.values().map(|c| c.profile).collect()
                };
                DesiredGi {
                    profile: g.profile,
                    placement: (pins >> (k % 32) & 1 == 1).then_some(g.placement),
                    compute,
                }
            })
            .chain(extra.iter().map(|i| raw_gi(model, *i)))
            .collect(),
    };
    DesiredLayout { gpu_instances }
}

// ---- independent checks ---------------------------------------------------------------------

/// Desired split with the default CI filled in, sorted.
fn split(model: &GpuModel, d: &DesiredGi) -> Vec<CiProfileId> {
    let prof = model.gi_profile(d.profile).expect("catalog profile");
    let mut s = if d.compute.is_empty() {
        vec![prof.default_ci_profile().id]
    } else {
        d.compute.clone()
    };
    s.sort();
    s
}

fn ci_profiles(gi: &GpuInstance) -> Vec<CiProfileId> {
    let mut v: Vec<_> = gi.compute_instances.values().map(|c| c.profile).collect();
    v.sort();
    v
}

/// Whether `state` is exactly `desired` (one-to-one, profile, pin, CI multiset).
fn reached(model: &GpuModel, desired: &DesiredLayout, state: &MigState) -> bool {
    fn go(model: &GpuModel, want: &[DesiredGi], have: &mut Vec<&GpuInstance>) -> bool {
        let Some((d, rest)) = want.split_first() else {
            return have.is_empty();
        };
        for i in 0..have.len() {
            let g = have[i];
            if g.profile == d.profile
                && d.placement.is_none_or(|p| p == g.placement)
                && ci_profiles(g) == split(model, d)
            {
                have.remove(i);
                if go(model, rest, have) {
                    return true;
                }
                have.insert(i, g);
            }
        }
        false
    }
    let mut have: Vec<_> = state.gpu_instances.values().collect();
    go(model, &desired.gpu_instances, &mut have)
}

/// No step destroys an in-use GI or CI of the state the plan was made for.
fn assert_safe(current: &MigState, plan: &Plan) -> Result<(), TestCaseError> {
    for step in &plan.steps {
        match step {
            Step::DestroyGi { gi } => {
                let g = &current.gpu_instances[gi];
                prop_assert!(!g.is_in_use(), "destroys in-use GI {gi:?}");
            }
            Step::DestroyCi { gi, ci } => {
                let g = &current.gpu_instances[gi];
                prop_assert!(!g.is_in_use(), "touches CI {ci:?} of in-use GI {gi:?}");
                prop_assert!(
                    !g.compute_instances[ci].in_use,
                    "destroys in-use CI {ci:?} of GI {gi:?}"
                );
            }
            Step::CreateCi { gi_placement, .. } => {
                if let Some(g) = current
                    .gpu_instances
                    .values()
                    .find(|g| g.placement == *gi_placement)
                {
                    prop_assert!(!g.is_in_use(), "adds a CI to in-use GI {:?}", g.id);
                }
            }
            Step::CreateGi { .. } => {}
        }
    }
    Ok(())
}

/// Every in-use GI is still there with its in-use CIs.
fn assert_in_use_survive(before: &MigState, after: &MigState) -> Result<(), TestCaseError> {
    for g in before.gpu_instances.values().filter(|g| g.is_in_use()) {
        let now = after.gpu_instances.get(&g.id);
        prop_assert!(now.is_some_and(|n| n.placement == g.placement && n.profile == g.profile));
        for c in g.compute_instances.values().filter(|c| c.in_use) {
            prop_assert!(now.is_some_and(|n| n.compute_instances.get(&c.id) == Some(c)));
        }
    }
    Ok(())
}

/// All orders of `items` (small).
fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut p in permutations(&rest) {
            p.insert(0, first.clone());
            out.push(p);
        }
    }
    out
}

/// Whether some creation order of `cis` succeeds in GI `gi` of `state`.
fn cis_fit(state: &MigState, gi: mig::GpuInstanceId, cis: &[CiProfileId]) -> bool {
    permutations(cis).iter().any(|order| {
        let mut s = state.clone();
        order.iter().all(|c| s.create_ci(gi, *c, None).is_ok())
    })
}

/// Cheapest CI change turning existing `gi` into `want` (destroy any subset of idle CIs, create
/// the rest in any order), by brute force.
fn keep_cost(current: &MigState, gi: &GpuInstance, want: &[CiProfileId]) -> Option<usize> {
    let cis: Vec<_> = gi.compute_instances.values().collect();
    if gi.is_in_use() {
        // In-use GIs are frozen: kept only when they already have exactly the wanted split.
        let mut have: Vec<CiProfileId> = cis.iter().map(|c| c.profile).collect();
        let mut want = want.to_vec();
        have.sort_unstable();
        want.sort_unstable();
        return (have == want).then_some(0);
    }
    let mut best: Option<usize> = None;
    for mask in 0u32..(1 << cis.len()) {
        let destroy: Vec<_> = (0..cis.len()).filter(|i| mask & (1 << i) != 0).collect();
        if destroy.iter().any(|i| cis[*i].in_use) {
            continue;
        }
        let mut rest: Vec<CiProfileId> = want.to_vec();
        let mut ok = true;
        for (i, c) in cis.iter().enumerate() {
            if mask & (1 << i) == 0 {
                match rest.iter().position(|r| *r == c.profile) {
                    Some(p) => {
                        rest.remove(p);
                    }
                    None => ok = false,
                }
            }
        }
        if !ok {
            continue;
        }
        let mut s = current.clone();
        for i in &destroy {
            s.destroy_ci(gi.id, cis[*i].id).expect("idle CI");
        }
        if cis_fit(&s, gi.id, &rest) {
            let cost = destroy.len() + rest.len();
            best = Some(best.map_or(cost, |b| b.min(cost)));
        }
    }
    best
}

/// Whether the GIs `items` (profile, pin) can all be created on `state`, any placements.
fn gis_fit(state: &MigState, items: &[(&'static GiProfile, Option<Placement>)]) -> bool {
    let Some(((prof, pin), rest)) = items.split_first() else {
        return true;
    };
    let candidates: Vec<Placement> = match pin {
        Some(p) => vec![*p],
        None => prof.placements.to_vec(),
    };
    candidates.iter().any(|p| {
        let mut s = state.clone();
        s.create_gi(prof.id, Some(*p)).is_ok() && gis_fit(&s, rest)
    })
}

/// The fewest steps of any plan from `current` to `desired` (each existing GI kept for a
/// distinct matching desired GI with CI changes, or destroyed when idle; the other desired GIs
/// created anywhere), by exhaustive search; `None` when no plan exists.
fn oracle(current: &MigState, desired: &DesiredLayout) -> Option<usize> {
    let model = current.gpu_model();
    let want: Vec<_> = desired
        .gpu_instances
        .iter()
        .map(|d| {
            (
                model.gi_profile(d.profile).expect("profile"),
                d.placement,
                split(model, d),
            )
        })
        .collect();
    let fresh_ok: Vec<bool> = want
        .iter()
        .map(|(prof, _, s)| {
            let mut st = MigState::new(model);
            let id = st
                .create_gi(prof.id, Some(prof.placements[0]))
                .expect("fresh GI");
            cis_fit(&st, id, s)
        })
        .collect();
    let existing: Vec<&GpuInstance> = current.gpu_instances.values().collect();
    let mut best: Option<usize> = None;
    // assignment[e]: None = destroy, Some(d) = keep as desired GI d.
    let mut options: Vec<Vec<(Option<usize>, usize)>> = Vec::new();
    for g in &existing {
        let mut o = Vec::new();
        if !g.is_in_use() {
            o.push((None, g.compute_instances.len() + 1));
        }
        for (d, (prof, pin, s)) in want.iter().enumerate() {
            if prof.id == g.profile
                && pin.is_none_or(|p| p == g.placement)
                && let Some(c) = keep_cost(current, g, s)
            {
                o.push((Some(d), c));
            }
        }
        options.push(o);
    }
    let mut choice = vec![0usize; existing.len()];
    'outer: loop {
        // Evaluate this combination.
        let picked: Vec<(Option<usize>, usize)> = choice
            .iter()
            .zip(&options)
            .filter_map(|(c, o)| o.get(*c).copied())
            .collect();
        if picked.len() == existing.len() {
            let kept: Vec<usize> = picked.iter().filter_map(|(d, _)| *d).collect();
            let distinct = kept.iter().enumerate().all(|(i, d)| !kept[..i].contains(d));
            if distinct {
                let remaining: Vec<usize> = (0..want.len()).filter(|d| !kept.contains(d)).collect();
                if remaining.iter().all(|d| fresh_ok[*d]) {
                    let mut s = current.clone();
                    for (g, (d, _)) in existing.iter().zip(&picked) {
                        if d.is_none() {
                            for ci in g.compute_instances.keys() {
                                s.destroy_ci(g.id, *ci).expect("idle CI");
                            }
                            s.destroy_gi(g.id).expect("idle GI");
                        }
                    }
                    let items: Vec<_> =
                        remaining.iter().map(|d| (want[*d].0, want[*d].1)).collect();
                    if gis_fit(&s, &items) {
                        let cost = picked.iter().map(|(_, c)| c).sum::<usize>()
                            + remaining
                                .iter()
                                .map(|d| 1 + want[*d].2.len())
                                .sum::<usize>();
                        best = Some(best.map_or(cost, |b| b.min(cost)));
                    }
                }
            }
        }
        // Next combination (odometer); an existing GI with no option makes the problem
        // unreachable, which the `picked.len()` check above already handles.
        for i in 0..choice.len() {
            choice[i] += 1;
            if choice[i] < options[i].len() {
                continue 'outer;
            }
            choice[i] = 0;
        }
        break;
    }
    best
}

// ---- properties -----------------------------------------------------------------------------

fn check_plan(
    current: &MigState,
    desired: &DesiredLayout,
    plan: &Plan,
) -> Result<(), TestCaseError> {
    let model = current.gpu_model();
    assert_safe(current, plan)?;
    let mut state = current.clone();
    apply_plan(&mut state, plan).map_err(|e| TestCaseError::fail(format!("replay: {e}")))?;
    prop_assert!(reached(model, desired, &state), "not reached: {state:#?}");
    prop_assert!(desired.is_satisfied_by(&state));
    assert_in_use_survive(current, &state)?;
    let again =
        mig::plan(&state, desired).map_err(|e| TestCaseError::fail(format!("re-plan: {e}")))?;
    prop_assert!(again.is_noop(), "re-plan not empty: {again:#?}");
    Ok(())
}

proptest! {
    #![proptest_config(config(3_000, 0x5eed_0001))]
    /// Random states with in-use instances × random layouts: plans are safe and reach the
    /// layout; refusals name in-use GIs; without in-use GIs a plan is never longer than
    /// clearing the GPU and rebuilding it.
    #[test]
    fn plans_are_safe_and_reach_the_layout(m in 0usize..64, cur in ops(10), want in spec(5, 10)) {
        let model = model(m);
        let current = build(model, &cur, true);
        let desired = desired(model, &want, &current);
        match plan(&current, &desired) {
            Ok(p) => {
                check_plan(&current, &desired, &p)?;
                if current.gpu_instances.values().all(|g| !g.is_in_use()) {
                    let rebuild: usize = current.gpu_instances.values().map(|g| g.compute_instances.len() + 1).sum::<usize>()
                        + desired.gpu_instances.iter().map(|d| 1 + split(model, d).len()).sum::<usize>();
                    prop_assert!(p.steps.len() <= rebuild);
                }
            }
            Err(PlanError::BlockedByInUse { gis, reason }) => {
                prop_assert!(!gis.is_empty(), "{reason}");
                for gi in &gis {
                    prop_assert!(current.gpu_instances[gi].is_in_use(), "{gi:?} named but idle");
                }
                // It fits an empty GPU (otherwise the error would be Infeasible).
                prop_assert!(plan(&MigState::new(model), &desired).is_ok());
            }
            Err(PlanError::Infeasible(reason)) => {
                prop_assert!(!reason.is_empty());
                prop_assert!(plan(&MigState::new(model), &desired).is_err(), "{reason}");
            }
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}

proptest! {
    #![proptest_config(config(2_000, 0x5eed_0002))]
    /// Small cases against exhaustive search: the planner finds a plan exactly when one
    /// exists, and no plan is shorter.
    #[test]
    fn plans_are_exact_and_shortest(m in 0usize..64, cur in ops(4), want in spec_weighted(1, 4, 8)) {
        let model = model(m);
        let current = build(model, &cur, true);
        let desired = desired(model, &want, &current);
        prop_assume!(desired.gpu_instances.len() <= 3 && current.gpu_instances.len() <= 3);
        let best = oracle(&current, &desired);
        match plan(&current, &desired) {
            Ok(p) => {
                prop_assert_eq!(Some(p.steps.len()), best, "plan {:#?}", p);
                check_plan(&current, &desired, &p)?;
            }
            Err(e) => prop_assert_eq!(best, None, "planner refused: {}", e),
        }
    }
}

proptest! {
    #![proptest_config(config(1_500, 0x5eed_0003))]
    /// On an empty GPU, "infeasible" agrees with exhaustive search over all placements and CI
    /// orders, for layouts of up to 4 GIs.
    #[test]
    fn infeasible_agrees_with_exhaustive_search(m in 0usize..64, cur in ops(6), want in spec(4, 8)) {
        let model = model(m);
        let empty = MigState::new(model);
        let desired = desired(model, &want, &build(model, &cur, false));
        prop_assume!(desired.gpu_instances.len() <= 4);
        let exists = oracle(&empty, &desired).is_some();
        match plan(&empty, &desired) {
            Ok(p) => {
                prop_assert!(exists);
                check_plan(&empty, &desired, &p)?;
            }
            Err(PlanError::Infeasible(reason)) => prop_assert!(!exists, "wrongly infeasible: {reason}"),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}

proptest! {
    #![proptest_config(config(2_000, 0x5eed_0004))]
    /// allow_partial never destroys in-use instances, reaches the layout minus what it
    /// drops plus the in-use GIs it keeps outside, and drops nothing when a full plan exists.
    #[test]
    fn partial_plans_keep_in_use_and_reach_the_rest(m in 0usize..64, cur in ops(10), want in spec(5, 10)) {
        let model = model(m);
        let current = build(model, &cur, true);
        let desired = desired(model, &want, &current);
        let strict = plan(&current, &desired);
        let outcome = match plan_with_options(&current, &desired, PlanOptions { allow_partial: true }) {
            Ok(o) => o,
            Err(PlanError::Infeasible(reason)) => {
                // Only a CI split that cannot exist is refused outright.
                prop_assert!(reason.starts_with("CI split"), "{reason}");
                prop_assert_eq!(strict, Err(PlanError::Infeasible(reason)));
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(format!("unexpected error {e}"))),
        };
        assert_safe(&current, &outcome.plan)?;
        if let Ok(p) = &strict {
            prop_assert!(outcome.is_complete());
            prop_assert_eq!(&outcome.plan, p);
        } else {
            prop_assert!(!outcome.is_complete());
        }
        // The reachable target: desired minus dropped, plus in-use GIs kept as they are.
        let mut target = desired.clone();
        for d in &outcome.dropped {
            let i = target.gpu_instances.iter().position(|x| x == d).expect("dropped GI is desired");
            target.gpu_instances.remove(i);
        }
        for gi in &outcome.in_use_outside {
            let g = &current.gpu_instances[gi];
            prop_assert!(g.is_in_use());
            target.gpu_instances.push(DesiredGi {
                profile: g.profile,
                placement: Some(g.placement),
                compute: ci_profiles(g),
            });
        }
        let mut state = current.clone();
        apply_plan(&mut state, &outcome.plan).map_err(|e| TestCaseError::fail(format!("replay: {e}")))?;
        assert_in_use_survive(&current, &state)?;
        // An in-use GI without CIs cannot be described by a layout (empty means default CI).
        let describable = outcome.in_use_outside.iter().all(|gi| !current.gpu_instances[gi].compute_instances.is_empty());
        if describable {
            prop_assert!(reached(model, &target, &state), "target {target:#?} state {state:#?}");
        }
        // Idempotent: partial planning from the result keeps everything.
        let again = plan_with_options(&state, &desired, PlanOptions { allow_partial: true })
            .map_err(|e| TestCaseError::fail(format!("re-plan: {e}")))?;
        prop_assert!(again.plan.is_noop(), "second partial plan: {again:#?}");
    }
}

proptest! {
    #![proptest_config(config(1_500, 0x5eed_0005))]
    /// A layout read back from the state (some GIs pinned) plans to nothing and keeps every GI.
    #[test]
    fn the_current_layout_plans_to_nothing(m in 0usize..64, cur in ops(10), pins in any::<u32>()) {
        let model = model(m);
        let current = build(model, &cur, true);
        // GIs without CIs cannot be described (empty compute means one default CI).
        prop_assume!(current.gpu_instances.values().all(|g| !g.compute_instances.is_empty()));
        let desired = DesiredLayout {
            gpu_instances: current
                .gpu_instances
                .values()
                .enumerate()
                .map(|(k, g)| DesiredGi {
                    profile: g.profile,
                    placement: (pins >> (k % 32) & 1 == 1).then_some(g.placement),
                    compute: ci_profiles(g),
                })
                .collect(),
        };
        let p = plan(&current, &desired).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(p.is_noop(), "{p:#?}");
        prop_assert_eq!(p.kept, current.gpu_instances.keys().copied().collect::<Vec<_>>());
    }
}

proptest! {
    #![proptest_config(config(1_000, 0x5eed_0006))]
    /// best_fit_placement returns a creatable free placement with the least fragmentation,
    /// and `None` exactly when nothing of that profile can be created.
    #[test]
    fn best_fit_is_free_and_least_fragmented(m in 0usize..64, cur in ops(10), p in any::<u32>()) {
        let model = model(m);
        let state = build(model, &cur, true);
        let prof = &model.gi_profiles[p as usize % model.gi_profiles.len()];
        let outcomes: Vec<(Placement, f64)> = prof
            .placements
            .iter()
            .filter_map(|pl| {
                let mut s = state.clone();
                s.create_gi(prof.id, Some(*pl)).ok().map(|_| (*pl, s.fragmentation()))
            })
            .collect();
        match best_fit_placement(&state, prof.id) {
            None => prop_assert!(outcomes.is_empty()),
            Some(best) => {
                let f = outcomes.iter().find(|(pl, _)| *pl == best).map(|(_, f)| *f);
                prop_assert!(f.is_some(), "{best} cannot be created");
                let f = f.unwrap_or(f64::NAN);
                prop_assert!(outcomes.iter().all(|(_, g)| f <= *g), "{best} frag {f} vs {outcomes:?}");
            }
        }
    }
}
