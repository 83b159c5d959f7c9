//! Planner benchmarks (figures only; tests never assert time).
//!
//! - `best_fit/20000_gpus`: `best_fit_placement` for a 1-slice profile on each of 20,000
//!   random fleet GPUs, the admin CLI's "where does one more small GI go" question. Target:
//!   under 100 ms for the whole fleet.
//! - `plan/*`: single plans on A100-40GB, from the trivial to the fully fragmented.
//!
//! Run: `cargo bench -p mig --bench planner`.
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mig::planner::best_fit_placement;
use mig::{DesiredGi, DesiredLayout, GpuModel, MigState, Placement, catalog, plan};

/// A small deterministic generator (xorshift), so every run measures the same fleet.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A fleet of GPUs of every catalog model, each with a few GIs at random legal placements.
fn fleet(n: usize) -> Vec<MigState> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let models = catalog();
    (0..n)
        .map(|_| {
            let model = &models[rng.below(models.len())];
            let mut state = MigState::new(model);
            for _ in 0..rng.below(6) {
                let prof = &model.gi_profiles[rng.below(model.gi_profiles.len())];
                let at = prof.placements[rng.below(prof.placements.len())];
                let _ = state.create_gi(prof.id, Some(at));
            }
            state
        })
        .collect()
}

fn small_profile(model: &GpuModel) -> mig::GiProfileId {
    model
        .gi_profiles
        .iter()
        .filter(|p| p.memory_slices == 1)
        .max_by_key(|p| p.instance_count)
        .map_or(model.gi_profiles[0].id, |p| p.id)
}

fn best_fit(c: &mut Criterion) {
    let gpus = fleet(20_000);
    let profiles: Vec<_> = gpus.iter().map(|s| small_profile(s.gpu_model())).collect();
    let mut group = c.benchmark_group("best_fit");
    group.sample_size(10);
    group.bench_function("20000_gpus", |b| {
        b.iter(|| {
            let placed = gpus
                .iter()
                .zip(&profiles)
                .filter(|(s, p)| best_fit_placement(s, **p).is_some())
                .count();
            black_box(placed)
        })
    });
    group.finish();
}

fn plans(c: &mut Criterion) {
    let model = GpuModel::by_key("a100-pcie-40gb").expect("A100-40GB");
    let id = |name: &str| model.gi_profile_by_name(name).expect("profile").id;
    let layout = |names: &[&str]| DesiredLayout {
        gpu_instances: names.iter().map(|n| DesiredGi::new(id(n))).collect(),
    };
    let empty = MigState::new(model);
    let mut fragmented = MigState::new(model);
    for start in [0, 2, 4, 6] {
        let gi = fragmented
            .create_gi(id("1g.5gb"), Some(Placement { start, size: 1 }))
            .expect("1g");
        if start == 6 {
            fragmented.set_gi_in_use(gi, true).expect("in use");
        }
    }
    let mut group = c.benchmark_group("plan");
    let cases = [
        ("empty_to_7x1g", &empty, layout(&["1g.5gb"; 7])),
        (
            "empty_to_mixed",
            &empty,
            layout(&["1g.5gb", "1g.5gb", "2g.10gb", "3g.20gb"]),
        ),
        (
            "fragmented_to_mixed",
            &fragmented,
            layout(&["1g.5gb", "2g.10gb", "2g.10gb", "1g.10gb"]),
        ),
        (
            "fragmented_blocked",
            &fragmented,
            layout(&["4g.20gb", "3g.20gb"]),
        ),
    ];
    for (name, state, desired) in &cases {
        group.bench_function(*name, |b| b.iter(|| black_box(plan(state, desired))));
    }
    group.finish();
}

criterion_group!(benches, best_fit, plans);
criterion_main!(benches);
