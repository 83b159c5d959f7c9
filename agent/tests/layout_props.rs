//! Property tests of layout application against the in-memory backend (`SimBackend`, the same
//! `MigState` rules as nvml-sim): random current states on every catalog GPU, some instances
//! in use, times random desired layouts.
//!
//! - apply never destroys an in-use GI or CI; it ends in the desired layout (or, with
//!   `allow_partial`, in the planned part of it), or is refused before any change with a reason;
//! - a step failing anywhere rolls the GPU back to the same shape;
//! - applying twice is a no-op;
//! - export → parse → apply reproduces the layout on an empty GPU, and is a no-op on the
//!   GPU it was exported from.
//!
//! Inputs are drawn as byte strings and interpreted deterministically, so proptest shrinks
//! them to short, readable counterexamples.
use mig::planner::PlanOptions;
use mig::{DesiredGi, DesiredLayout, GpuModel, MigState, Placement};
use proptest::prelude::*;
use vmig_agent::layout::config::{LayoutFile, Target};
use vmig_agent::layout::exec::{SimBackend, execute, shape};
use vmig_agent::layout::host::GpuView;
use vmig_agent::nvml::MigMode;

/// Reads choices from the drawn bytes (0 once they run out).
struct Bytes<'a>(std::slice::Iter<'a, u8>);

impl Bytes<'_> {
    fn next(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        self.0.next().map_or(0, |b| *b as usize % n)
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.next(100) < percent
    }
}

fn model(i: usize) -> &'static GpuModel {
    let c = mig::catalog();
    &c[i % c.len()]
}

/// A state the driver could be in: GIs created at random legal placements, CIs created the
/// driver's way, some GIs and CIs marked in use.
fn random_state(
    m: &'static GpuModel,
    b: &mut Bytes<'_>,
    in_use: bool,
    ci_always: bool,
) -> MigState {
    let mut s = MigState::new(m);
    for _ in 0..b.next(8) {
        let p = &m.gi_profiles[b.next(m.gi_profiles.len())];
        let pl = p.placements[b.next(p.placements.len())];
        let Ok(gi) = s.create_gi(p.id, Some(pl)) else {
            continue;
        };
        let n = if ci_always { 1 + b.next(3) } else { b.next(4) };
        for _ in 0..n {
            let c = &p.ci_profiles[b.next(p.ci_profiles.len())];
            if let Ok(ci) = s.create_ci(gi, c.id, None)
                && in_use
                && b.chance(15)
            {
                s.set_ci_in_use(gi, ci, true).unwrap();
            }
        }
        if in_use && b.chance(10) {
            s.set_gi_in_use(gi, true).unwrap();
        }
    }
    s
}

fn random_layout(m: &'static GpuModel, b: &mut Bytes<'_>) -> DesiredLayout {
    let mut gis = Vec::new();
    for _ in 0..b.next(6) {
        let p = &m.gi_profiles[b.next(m.gi_profiles.len())];
        let mut d = DesiredGi::new(p.id);
        if b.chance(30) {
            d.placement = Some(p.placements[b.next(p.placements.len())]);
        }
        if b.chance(30) {
            d.compute = (0..1 + b.next(3))
                .map(|_| p.ci_profiles[b.next(p.ci_profiles.len())].id)
                .collect();
        }
        gis.push(d);
    }
    DesiredLayout { gpu_instances: gis }
}

/// Every in-use GI and CI of `before` still exists in `after`, with its id and profile.
fn in_use_kept(before: &MigState, after: &MigState) -> Result<(), String> {
    for g in before.gpu_instances.values() {
        let Some(a) = after.gpu_instance(g.id) else {
            if g.is_in_use() {
                return Err(format!("in-use GI {} was destroyed", g.id));
            }
            continue;
        };
        if g.is_in_use() && (a.profile != g.profile || a.placement != g.placement) {
            return Err(format!("in-use GI {} changed", g.id));
        }
        for c in g.compute_instances.values().filter(|c| c.in_use) {
            if a.compute_instances
                .get(&c.id)
                .is_none_or(|x| x.profile != c.profile)
            {
                return Err(format!("in-use CI {} of GI {} was destroyed", c.id, g.id));
            }
        }
    }
    Ok(())
}

fn check_apply(
    m: &'static GpuModel,
    bytes: &[u8],
    allow_partial: bool,
) -> Result<(), TestCaseError> {
    let mut b = Bytes(bytes.iter());
    let before = random_state(m, &mut b, true, false);
    let desired = random_layout(m, &mut b);
    let opts = PlanOptions { allow_partial };
    let outcome = match mig::planner::plan_with_options(&before, &desired, opts) {
        Ok(o) => o,
        Err(e) => {
            // Refused before any change, with a reason; never a planner bug.
            prop_assert!(!matches!(e, mig::PlanError::Internal(_)), "{e}");
            prop_assert!(!e.to_string().is_empty());
            return Ok(());
        }
    };
    let mut backend = SimBackend::new(before.clone());
    let ex = execute(&mut backend, &before, &outcome.plan);
    prop_assert!(ex.failed.is_none(), "{:?}", ex.failed);
    let after = backend.state.clone();
    in_use_kept(&before, &after).map_err(TestCaseError::fail)?;
    if outcome.is_complete() {
        prop_assert!(desired.is_satisfied_by(&after), "not the layout: {after:?}");
    }
    // Twice is a no-op.
    let again = mig::planner::plan_with_options(&after, &desired, opts).unwrap();
    prop_assert!(again.plan.is_noop(), "second apply: {:?}", again.plan);

    // A failure at any step rolls back to the same shape and keeps in-use instances.
    if !outcome.plan.steps.is_empty() {
        let k = b.next(outcome.plan.steps.len());
        let mut faulty = SimBackend::new(before.clone());
        faulty.fail_at = Some(k);
        let ex = execute(&mut faulty, &before, &outcome.plan);
        let (i, _, _) = ex.failed.clone().expect("injected failure");
        prop_assert_eq!(i, k);
        let rb = ex.rollback.expect("rollback");
        prop_assert!(rb.failed.is_empty(), "{:?}", rb.failed);
        prop_assert!(rb.restored);
        prop_assert_eq!(shape(&faulty.state), shape(&before));
        in_use_kept(&before, &faulty.state).map_err(TestCaseError::fail)?;
    }
    Ok(())
}

/// (profile, placement, sorted CI profiles) per GI: what a layout file can express.
fn file_shape(s: &MigState) -> Vec<(mig::GiProfileId, Placement, Vec<mig::CiProfileId>)> {
    let mut v: Vec<_> = shape(s)
        .into_iter()
        .map(|(p, pl, cis)| {
            let mut c: Vec<_> = cis.into_iter().map(|(c, _)| c).collect();
            c.sort();
            (p, pl, c)
        })
        .collect();
    v.sort();
    v
}

fn check_export(m: &'static GpuModel, bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut b = Bytes(bytes.iter());
    let state = random_state(m, &mut b, false, true);
    let view = GpuView {
        index: 0,
        name: m.nvml_name.into(),
        uuid: "GPU-prop".into(),
        pci_bus_id: None,
        pci_device: Some(m.pci_device_id_word()),
        pci_subsystem: None,
        model: Some(m),
        mig_mode: Some(MigMode {
            current: true,
            pending: true,
        }),
        state: Some(state.clone()),
        users: Default::default(),
    };
    let (yaml, _) = vmig_agent::layout::export::export(&[&view], "current", false);
    let file = LayoutFile::parse("export", &yaml)
        .map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
    let c = file.config(None).unwrap();
    let Target::Enabled(desired) = file
        .target_for(&c.name, &c.entries[0], m)
        .map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?
    else {
        return Err(TestCaseError::fail("export disabled MIG"));
    };
    prop_assert!(desired.is_satisfied_by(&state), "{yaml}");
    prop_assert!(mig::plan(&state, &desired).unwrap().is_noop());
    let empty = MigState::new(m);
    let plan =
        mig::plan(&empty, &desired).map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
    let mut fresh = SimBackend::new(empty.clone());
    let ex = execute(&mut fresh, &empty, &plan);
    prop_assert!(ex.failed.is_none());
    prop_assert_eq!(file_shape(&fresh.state), file_shape(&state));
    Ok(())
}

fn cases() -> u32 {
    std::env::var("VMIG_LAYOUT_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn apply_is_safe_complete_idempotent_and_rolls_back(
        model_i in 0usize..64,
        allow_partial: bool,
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        check_apply(model(model_i), &bytes, allow_partial)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases() / 5, ..ProptestConfig::default() })]

    #[test]
    fn export_then_apply_round_trips(
        model_i in 0usize..64,
        bytes in proptest::collection::vec(any::<u8>(), 0..48),
    ) {
        check_export(model(model_i), &bytes)?;
    }
}

/// The shipped layouts and the example configs resolve on the GPUs they are written for.
#[test]
fn fixtures_resolve_on_their_models() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/layouts");
    for (file, key) in [
        ("a100-40gb.yaml", "a100-pcie-40gb"),
        ("a100-40gb.yaml", "a100-sxm4-40gb"),
        ("h100-80gb.yaml", "h100-sxm5-80gb"),
        ("h100-80gb.yaml", "h100-pcie-80gb"),
        ("vmig-extensions.yaml", "a100-pcie-40gb"),
    ] {
        let path = format!("{dir}/{file}");
        let f = LayoutFile::parse(&path, &std::fs::read_to_string(&path).unwrap()).unwrap();
        let m = GpuModel::by_key(key).unwrap();
        for c in &f.configs {
            for e in &c.entries {
                f.target_for(&c.name, e, m)
                    .unwrap_or_else(|err| panic!("{file} {} on {key}: {err}", c.name));
            }
        }
    }
}
