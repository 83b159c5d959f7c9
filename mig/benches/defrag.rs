//! Defrag and simulation benchmarks (figures only; tests never assert time).
//!
//! - `defrag/5000_gpus`: `plan_defrag` for ten more `4g.20gb` than fit, over 2,500 hosts with
//!   two A100-40GB each, random GIs of which some back powered-off or running VMs. Target
//!   (issue 20): under 1 s.
//! - `simulate/10000_arrivals`: best fit with defrag over 10,000 random arrivals and departures
//!   on 200 GPUs. Target: under 1 s.
//!
//! Run: `cargo bench -p mig --bench defrag`.
use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mig::defrag::{DefragLimits, FleetGpu, Mobility, plan_defrag};
use mig::simulate::{Policy, SimConfig, random_events, simulate};
use mig::{GiProfileId, GpuModel, MigState};

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

fn fleet(hosts: usize) -> Vec<FleetGpu> {
    let model = GpuModel::by_key("a100-pcie-40gb").expect("model");
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let small = [19u32, 14, 19, 15];
    let mut out = Vec::new();
    for h in 0..hosts {
        for g in 0..2 {
            let mut state = MigState::new(model);
            let mut mobility = BTreeMap::new();
            for _ in 0..rng.below(4) {
                let prof = model
                    .gi_profile(GiProfileId(small[rng.below(small.len())]))
                    .expect("profile");
                let at = prof.placements[rng.below(prof.placements.len())];
                if let Ok(id) = state.create_gi(prof.id, Some(at)) {
                    let mob = [Mobility::Pinned, Mobility::Cold, Mobility::Live][rng.below(3)];
                    mobility.insert(id, mob);
                }
            }
            out.push(FleetGpu {
                name: format!("esx-{h:04}/gpu{g}"),
                host: format!("esx-{h:04}"),
                state,
                mobility,
            });
        }
    }
    out
}

#[allow(
    clippy::print_stdout,
    reason = "the figures behind the timing, printed once"
)]
fn bench(c: &mut Criterion) {
    let fleet5000 = fleet(2_500);
    let model = GpuModel::by_key("a100-pcie-40gb").expect("model");
    let limits = DefragLimits {
        allow_cold: true,
        allow_live: true,
        max_moves: 20,
        ..DefragLimits::default()
    };
    let now = plan_defrag(&fleet5000, model, GiProfileId(5), 0, limits)
        .expect("zero")
        .fits_before;
    let plan = plan_defrag(&fleet5000, model, GiProfileId(5), now + 10, limits).expect("a plan");
    println!(
        "defrag: {} fit now, {} moves for 10 more",
        now,
        plan.moves.len()
    );
    c.bench_function("defrag/5000_gpus", |b| {
        b.iter(|| {
            plan_defrag(
                black_box(&fleet5000),
                model,
                GiProfileId(5),
                now + 10,
                limits,
            )
        });
    });
    let fleet200 = fleet(100);
    let events = random_events(1, 10_000, &["1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb"], 90);
    let config = SimConfig::new(Policy::BestFit, true);
    println!("simulate: {:?}", simulate(&fleet200, &events, config));
    c.bench_function("simulate/10000_arrivals", |b| {
        b.iter(|| simulate(black_box(&fleet200), black_box(&events), config));
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
