//! Property tests of stranded capacity and the defrag planner.
//!
//! - `stranded`: checked against `MigState::fragmentation` and `largest_placeable` (both
//!   computed independently in `state.rs`), and monotone in what may move.
//! - `plan_defrag` on at most 4 GPUs: its move count equals an exhaustive breadth-first search
//!   written here on `MigState` operations only (the oracle), and its moves replay legally.
//! - The greedy plan (large fleets) replays legally and reaches the count it claims.
//!
//! Seeds are fixed; case counts are explicit.
use std::collections::{BTreeMap, HashSet, VecDeque};

use mig::defrag::{DefragError, DefragLimits, FleetGpu, Mobility, Move, plan_defrag, stranded};
use mig::simulate::{Event, Policy, SimConfig, compare, random_events, simulate};
use mig::{GiProfileId, GpuInstanceId, GpuModel, MigState, Placement};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn config(cases: u32, seed: u64) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}

fn model(key: &str) -> &'static GpuModel {
    GpuModel::by_key(key).expect("catalog model")
}

/// A state from (profile, placement) choices; refused creations are skipped.
fn build(model: &'static GpuModel, picks: &[(u32, u32)]) -> MigState {
    let mut s = MigState::new(model);
    for &(p, at) in picks {
        let prof = &model.gi_profiles[p as usize % model.gi_profiles.len()];
        let placement = prof.placements[at as usize % prof.placements.len()];
        let _ = s.create_gi(prof.id, Some(placement));
    }
    s
}

fn picks(max: usize) -> impl Strategy<Value = Vec<(u32, u32)>> {
    prop::collection::vec((any::<u32>(), any::<u32>()), 0..=max)
}

const MODELS: [&str; 4] = [
    "a100-pcie-40gb",
    "a30-24gb",
    "h100-sxm5-80gb",
    "a100-pcie-80gb",
];

proptest! {
    #![proptest_config(config(600, 20))]

    #[test]
    fn stranded_agrees_with_fragmentation(m in 0usize..4, p in picks(8), pin in any::<u8>()) {
        let model = model(MODELS[m]);
        let s = build(model, &p);
        let all = stranded(&s, |_| true);
        let none = stranded(&s, |_| false);
        let some = stranded(&s, |g| (pin >> (g.id.0 % 8)) & 1 == 1);
        let now = s.largest_placeable();
        prop_assert_eq!(all.largest_now.as_deref(), now.map(|p| p.name));
        let used: u32 = s.gpu_instances.values()
            .map(|g| model.gi_profile(g.profile).map_or(0, |p| p.compute_slices)).sum();
        prop_assert_eq!(all.free_slices, model.compute_slices - used);
        // Nothing moves: nothing is stranded.
        prop_assert_eq!(none.stranded_slices, 0);
        prop_assert_eq!(&none.largest_after_relayout, &none.largest_now);
        // More freedom never strands less.
        prop_assert!(none.stranded_slices <= some.stranded_slices);
        prop_assert!(some.stranded_slices <= all.stranded_slices);
        prop_assert!(all.stranded_slices <= all.free_slices);
        // With everything movable, `fragmentation = 1 - now / best`.
        let frag = s.fragmentation();
        prop_assert_eq!(all.stranded_slices == 0, frag == 0.0, "frag {}", frag);
        let slices = |n: &Option<String>| n.as_deref()
            .and_then(|n| model.gi_profile_by_name(n)).map_or(0, |p| p.compute_slices);
        let best = slices(&all.largest_after_relayout);
        if best > 0 {
            let expect = 1.0 - f64::from(slices(&all.largest_now)) / f64::from(best);
            prop_assert!((frag - expect).abs() < 1e-9, "frag {} expected {}", frag, expect);
        }
    }
}

// ---- the defrag oracle ------------------------------------------------------------------------

/// One GI as the oracle tracks it: profile, placement, mobility.
type Gi = (GiProfileId, Placement, Mobility);

#[derive(Clone)]
struct Case {
    model: &'static GpuModel,
    hosts: Vec<u32>,
    gpus: Vec<Vec<Gi>>,
    target: GiProfileId,
    count: u32,
    limits: DefragLimits,
}

fn state_of(model: &'static GpuModel, gis: &[Gi]) -> Option<MigState> {
    let mut s = MigState::new(model);
    for &(p, at, _) in gis {
        s.create_gi(p, Some(at)).ok()?;
    }
    Some(s)
}

fn fits(model: &'static GpuModel, gpus: &[Vec<Gi>], target: GiProfileId) -> u32 {
    gpus.iter()
        .map(|g| {
            state_of(model, g)
                .and_then(|s| s.remaining_gi_capacity(target).ok())
                .unwrap_or(0)
        })
        .sum()
}

fn allowed(c: &Case, mob: Mobility, a: usize, b: usize) -> bool {
    match mob {
        Mobility::Pinned => false,
        Mobility::OwnedIdle => a == b,
        Mobility::Cold => c.limits.allow_cold,
        Mobility::Live => c.limits.allow_live && c.hosts[a] != c.hosts[b],
    }
}

/// Breadth-first search over single legal moves: the fewest moves reaching `count`.
fn oracle(c: &Case) -> Option<usize> {
    let canon = |g: &Vec<Vec<Gi>>| {
        g.iter()
            .map(|v| {
                let mut v = v.clone();
                v.sort();
                v
            })
            .collect::<Vec<_>>()
    };
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([(c.gpus.clone(), 0usize)]);
    seen.insert(canon(&c.gpus));
    while let Some((gpus, depth)) = queue.pop_front() {
        if fits(c.model, &gpus, c.target) >= c.count {
            return Some(depth);
        }
        if depth as u32 >= c.limits.max_moves {
            continue;
        }
        for a in 0..gpus.len() {
            for i in 0..gpus[a].len() {
                let (p, from, mob) = gpus[a][i];
                for b in 0..gpus.len() {
                    if !allowed(c, mob, a, b) {
                        continue;
                    }
                    let mut next = gpus.clone();
                    next[a].remove(i);
                    let Some(mut dest) = state_of(c.model, &next[b]) else {
                        continue;
                    };
                    let prof = c.model.gi_profile(p).expect("profile");
                    for &to in prof.placements {
                        if a == b && to == from {
                            continue;
                        }
                        if dest.create_gi(p, Some(to)).is_err() {
                            continue;
                        }
                        dest = state_of(c.model, &next[b]).expect("rebuilt");
                        let mut moved = next.clone();
                        moved[b].push((p, to, mob));
                        if seen.insert(canon(&moved)) {
                            queue.push_back((moved, depth + 1));
                        }
                    }
                }
            }
        }
    }
    None
}

fn fleet(c: &Case) -> Vec<FleetGpu> {
    c.gpus
        .iter()
        .zip(&c.hosts)
        .enumerate()
        .map(|(i, (gis, h))| {
            let state = state_of(c.model, gis).expect("legal");
            let mobility: BTreeMap<GpuInstanceId, Mobility> = state
                .gpu_instances
                .values()
                .map(|g| {
                    let mob = gis
                        .iter()
                        .find(|x| x.1 == g.placement)
                        .map_or(Mobility::Pinned, |x| x.2);
                    (g.id, mob)
                })
                .collect();
            FleetGpu {
                name: format!("gpu{i}"),
                host: format!("host{h}"),
                state,
                mobility,
            }
        })
        .collect()
}

/// Replay moves on `MigState`s: each one must be legal when made.
fn replay(fleet: &[FleetGpu], moves: &[Move]) -> Result<Vec<MigState>, String> {
    let mut states: Vec<MigState> = fleet.iter().map(|g| g.state.clone()).collect();
    for m in moves {
        let gi = states[m.from_gpu]
            .gi_at(m.from)
            .ok_or(format!("no GI at {} for {m:?}", m.from))?;
        let (id, profile) = (gi.id, gi.profile);
        states[m.from_gpu]
            .destroy_gi(id)
            .map_err(|e| format!("{m:?}: {e}"))?;
        states[m.to_gpu]
            .create_gi(profile, Some(m.to))
            .map_err(|e| format!("{m:?}: {e}"))?;
    }
    Ok(states)
}

fn case(
    model_i: usize,
    raw: Vec<Vec<(u32, u32, u8)>>,
    t: u32,
    extra: u32,
    cold: bool,
    live: bool,
    host_mask: u8,
) -> Option<Case> {
    let model = model(["a30-24gb", "a100-pcie-40gb"][model_i]);
    let mut gpus = Vec::new();
    for g in raw {
        let mut s = MigState::new(model);
        let mut gis = Vec::new();
        for (p, at, mob) in g {
            let prof = &model.gi_profiles[p as usize % model.gi_profiles.len()];
            let placement = prof.placements[at as usize % prof.placements.len()];
            if s.create_gi(prof.id, Some(placement)).is_ok() {
                // Biased towards movable GIs so that most cases have a plan to find.
                let mob = [
                    Mobility::Pinned,
                    Mobility::Cold,
                    Mobility::Cold,
                    Mobility::Live,
                    Mobility::OwnedIdle,
                    Mobility::Cold,
                ][mob as usize % 6];
                gis.push((prof.id, placement, mob));
            }
        }
        gpus.push(gis);
    }
    let hosts = (0..gpus.len())
        .map(|i| u32::from((host_mask >> (i % 8)) & 1))
        .collect();
    // Mostly large targets: moving GIs rarely helps small ones.
    let large: Vec<_> = model
        .gi_profiles
        .iter()
        .filter(|p| 2 * p.memory_slices >= model.memory_slices)
        .collect();
    let target = if t.is_multiple_of(4) {
        model.gi_profiles[(t / 4) as usize % model.gi_profiles.len()].id
    } else {
        large[(t / 4) as usize % large.len()].id
    };
    let mut c = Case {
        model,
        hosts,
        gpus,
        target,
        count: 0,
        limits: DefragLimits {
            allow_cold: cold,
            allow_live: live,
            max_moves: 3,
            exact_gpu_limit: 6,
        },
    };
    c.count = fits(model, &c.gpus, target) + 1 + extra;
    Some(c)
}

fn raw_gpus(max_gpus: usize, max_gis: usize) -> impl Strategy<Value = Vec<Vec<(u32, u32, u8)>>> {
    prop::collection::vec(
        prop::collection::vec((any::<u32>(), any::<u32>(), any::<u8>()), 0..=max_gis),
        2..=max_gpus,
    )
}

proptest! {
    #![proptest_config(config(500, 21))]

    #[test]
    fn exact_plan_matches_brute_force(
        m in 0usize..2, raw in raw_gpus(4, 3), t in any::<u32>(), extra in prop::sample::select(vec![0u32, 0, 0, 1]),
        cold in any::<bool>(), live in any::<bool>(), host_mask in any::<u8>(),
    ) {
        let Some(c) = case(m, raw, t, extra, cold, live, host_mask) else { return Ok(()) };
        let fleet = fleet(&c);
        let want = oracle(&c);
        match plan_defrag(&fleet, c.model, c.target, c.count, c.limits) {
            Ok(plan) => {
                prop_assert!(plan.exact);
                prop_assert_eq!(Some(plan.moves.len()), want);
                let after = replay(&fleet, &plan.moves).map_err(TestCaseError::fail)?;
                let got: u32 = after.iter().map(|s| s.remaining_gi_capacity(c.target).unwrap_or(0)).sum();
                prop_assert!(got >= c.count);
                prop_assert_eq!(plan.fits_after, got);
            }
            Err(DefragError::Impossible { upper_bound, .. }) => {
                prop_assert_eq!(want, None);
                prop_assert!(upper_bound < c.count);
            }
            Err(DefragError::OverLimit { exact, .. }) => {
                prop_assert!(exact);
                prop_assert_eq!(want, None);
            }
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }

    #[test]
    fn greedy_plan_replays(
        m in 0usize..2, raw in raw_gpus(10, 5), t in any::<u32>(), extra in 0u32..3,
        cold in any::<bool>(), live in any::<bool>(), host_mask in any::<u8>(),
    ) {
        let Some(mut c) = case(m, raw, t, extra, cold, live, host_mask) else { return Ok(()) };
        c.limits.exact_gpu_limit = 0;
        c.limits.max_moves = 6;
        let fleet = fleet(&c);
        if let Ok(plan) = plan_defrag(&fleet, c.model, c.target, c.count, c.limits) {
            let after = replay(&fleet, &plan.moves).map_err(TestCaseError::fail)?;
            let got: u32 = after.iter().map(|s| s.remaining_gi_capacity(c.target).unwrap_or(0)).sum();
            prop_assert!(got >= c.count);
            prop_assert!(plan.moves.len() <= 6);
            for mv in &plan.moves {
                prop_assert!(allowed(&c, mob_of(&fleet, mv), mv.from_gpu, mv.to_gpu) || mv.from_gpu == mv.to_gpu);
            }
        }
    }
}

fn mob_of(fleet: &[FleetGpu], m: &Move) -> Mobility {
    fleet[m.origin_gpu]
        .mobility
        .get(&m.gi)
        .copied()
        .unwrap_or_default()
}

#[test]
fn worked_example_two_moves() {
    // A100-40GB: 1g at 0:1 (powered-off VM) and 1g at 4:1 (pinned) on GPU 0; GPU 1 empty on
    // another host. A 4g.20gb fits on GPU 1 now; a second one needs GPU 0's 0:4 range free.
    let model = model("a100-pcie-40gb");
    let mut s0 = MigState::new(model);
    let cold = s0
        .create_gi(GiProfileId(19), Some(Placement { start: 0, size: 1 }))
        .expect("1g");
    s0.create_gi(GiProfileId(19), Some(Placement { start: 4, size: 1 }))
        .expect("1g");
    let fleet = vec![
        FleetGpu {
            name: "a".into(),
            host: "h1".into(),
            state: s0,
            mobility: BTreeMap::from([(cold, Mobility::Cold)]),
        },
        FleetGpu {
            name: "b".into(),
            host: "h2".into(),
            state: MigState::new(model),
            mobility: BTreeMap::new(),
        },
    ];
    let plan =
        plan_defrag(&fleet, model, GiProfileId(5), 2, DefragLimits::default()).expect("plan");
    assert_eq!(plan.fits_before, 1);
    assert_eq!(plan.moves.len(), 1);
    assert_eq!(plan.moves[0].from, Placement { start: 0, size: 1 });
    assert_eq!(plan.fits_after, 2);
    // Three 4g would need GPU 0 empty: the pinned 1g at 4:1 does not block 0:4, but only one
    // 4g fits per GPU, so three is impossible, with a proof.
    let err = plan_defrag(&fleet, model, GiProfileId(5), 3, DefragLimits::default())
        .expect_err("no plan");
    assert!(
        matches!(err, DefragError::Impossible { upper_bound: 2, .. }),
        "{err}"
    );
}

#[test]
fn simulate_is_deterministic_and_counts_add_up() {
    let model = model("a100-pcie-40gb");
    let fleet: Vec<FleetGpu> = (0..8)
        .map(|i| FleetGpu {
            name: format!("g{i}"),
            host: format!("h{}", i / 2),
            state: MigState::new(model),
            mobility: BTreeMap::new(),
        })
        .collect();
    let events = random_events(7, 400, &["1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb"], 60);
    assert_eq!(
        events,
        random_events(7, 400, &["1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb"], 60)
    );
    let runs = compare(&fleet, &events);
    assert_eq!(runs, compare(&fleet, &events));
    for (cfg, r) in &runs {
        assert_eq!(r.placed + r.rejected, r.arrivals, "{cfg:?}");
        assert_eq!(r.arrivals, 400);
        assert!(r.placed_after_defrag <= r.placed);
        if !cfg.defrag {
            assert_eq!(r.moves, 0);
        }
    }
    // An empty fleet places nothing.
    let none = simulate(&[], &events, SimConfig::new(Policy::BestFit, true));
    assert_eq!(none.placed, 0);
    // A departure of an unknown VM is ignored.
    let r = simulate(
        &fleet,
        &[Event::Depart { vm: 9 }],
        SimConfig::new(Policy::FirstFit, false),
    );
    assert_eq!(r.departures, 0);
}
