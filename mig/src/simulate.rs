//! What-if: replay a stream of VM arrivals and departures against a starting fleet and count
//! how many arrivals fit under best fit versus first fit, with and without planned
//! defragmentation when an arrival does not fit.
//!
//! Why: the order in which VMs start decides what fits on MIG GPUs; admins want to know what a
//! placement policy or a defrag step buys on *their* inventory before changing anything.
//!
//! - **First fit**: the first GPU (fleet order) where the GI fits, at the driver's
//!   auto-placement (the free region with the lowest GI id), what a plain vSphere/driver
//!   placement does.
//! - **Best fit**: the fullest GPU (fewest free compute slices) where it fits, at the placement
//!   that keeps the largest profile placeable (`best_fit_placement`'s rule), vmig's policy.
//! - **Defrag**: when an arrival fits nowhere, plan at most `max_moves` moves of the simulated
//!   VMs (mobility `vm_mobility`) and of the starting GIs marked movable, apply them, then
//!   place it.
//!
//! Starting GIs never depart. Everything is deterministic; [`random_events`] uses its own
//! seeded generator (splitmix64) so a seed names the same stream on every platform.
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::catalog::GpuModel;
use crate::defrag::{
    DefragLimits, FleetGpu, Mobility, MoveKind, Occ, World, plan_world, profile_index, rank,
};
use crate::ids::{GpuInstanceId, Placement};

/// One request of the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// VM `vm` starts and needs a GI of this profile name (e.g. `3g.20gb`).
    Arrive { vm: u32, profile: String },
    /// VM `vm` stops and frees its GI (ignored if it never got one).
    Depart { vm: u32 },
}

/// Placement policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    FirstFit,
    BestFit,
}

/// One simulation run's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimConfig {
    pub policy: Policy,
    /// Plan moves when an arrival fits nowhere.
    pub defrag: bool,
    pub limits: DefragLimits,
    /// How the simulated VMs may move (their GIs back running VMs: `Live` by default).
    pub vm_mobility: Mobility,
}

impl SimConfig {
    pub fn new(policy: Policy, defrag: bool) -> Self {
        SimConfig {
            policy,
            defrag,
            limits: DefragLimits {
                allow_cold: true,
                allow_live: true,
                max_moves: 2,
                exact_gpu_limit: 0,
            },
            vm_mobility: Mobility::Live,
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SimResult {
    pub arrivals: u32,
    pub placed: u32,
    pub rejected: u32,
    /// Arrivals placed only thanks to a defrag plan.
    pub placed_after_defrag: u32,
    pub moves: u32,
    pub live_moves: u32,
    pub departures: u32,
}

#[derive(Debug, Clone)]
struct Gpu {
    model: &'static GpuModel,
    host: usize,
    occ: Occ,
}

#[derive(Debug, Clone, Copy)]
struct Inst {
    gpu: usize,
    pi: usize,
    at: Placement,
    mob: Mobility,
    alive: bool,
}

/// Run `events` against `start` under `config`.
pub fn simulate(start: &[FleetGpu], events: &[Event], config: SimConfig) -> SimResult {
    let mut sim = Sim::new(start);
    let mut result = SimResult::default();
    for e in events {
        match e {
            Event::Arrive { vm, profile } => {
                result.arrivals += 1;
                if sim.arrive(*vm, profile, config, &mut result) {
                    result.placed += 1;
                } else {
                    result.rejected += 1;
                }
            }
            Event::Depart { vm } => {
                if sim.depart(*vm) {
                    result.departures += 1;
                }
            }
        }
    }
    result
}

/// The four standard runs (first/best fit, without/with defrag), in that order.
pub fn compare(start: &[FleetGpu], events: &[Event]) -> Vec<(SimConfig, SimResult)> {
    [
        (Policy::FirstFit, false),
        (Policy::BestFit, false),
        (Policy::FirstFit, true),
        (Policy::BestFit, true),
    ]
    .into_iter()
    .map(|(p, d)| {
        let c = SimConfig::new(p, d);
        (c, simulate(start, events, c))
    })
    .collect()
}

/// Where a GI goes: GPU, profile index, placement.
type Slot = (usize, usize, Placement);

struct Sim {
    gpus: Vec<Gpu>,
    insts: Vec<Inst>,
    vms: HashMap<u32, usize>,
    /// Profiles whose defrag failed since the last departure. Arrivals only add GIs, and a
    /// plan for the fuller fleet would be one for the emptier fleet too, so retrying before
    /// a departure cannot succeed (for the exact search; the greedy one is assumed to agree).
    failed: Vec<String>,
}

impl Sim {
    fn new(start: &[FleetGpu]) -> Sim {
        let mut hosts: Vec<&str> = Vec::new();
        let mut sim = Sim {
            gpus: Vec::new(),
            insts: Vec::new(),
            vms: HashMap::new(),
            failed: Vec::new(),
        };
        for g in start {
            let Some(model) = g.state.try_gpu_model() else {
                continue;
            };
            let host = hosts.iter().position(|h| *h == g.host).unwrap_or_else(|| {
                hosts.push(&g.host);
                hosts.len() - 1
            });
            let gpu = sim.gpus.len();
            let mut occ = Occ::default();
            for gi in g.state.gpu_instances.values() {
                let Some(pi) = profile_index(model, gi.profile) else {
                    continue;
                };
                occ.add(model, pi, gi.placement);
                sim.insts.push(Inst {
                    gpu,
                    pi,
                    at: gi.placement,
                    mob: g.mobility.get(&gi.id).copied().unwrap_or_default(),
                    alive: true,
                });
            }
            sim.gpus.push(Gpu { model, host, occ });
        }
        sim
    }

    fn depart(&mut self, vm: u32) -> bool {
        let Some(k) = self.vms.remove(&vm) else {
            return false;
        };
        let i = self.insts[k];
        let model = self.gpus[i.gpu].model;
        self.gpus[i.gpu].occ.remove(model, i.pi, i.at);
        self.insts[k].alive = false;
        self.failed.clear();
        true
    }

    fn arrive(&mut self, vm: u32, profile: &str, config: SimConfig, r: &mut SimResult) -> bool {
        if let Some((g, pi, at)) = self.choose(profile, config.policy) {
            self.place(vm, g, pi, at, config.vm_mobility);
            return true;
        }
        if !config.defrag || !self.defrag(profile, config, r) {
            return false;
        }
        match self.choose(profile, config.policy) {
            Some((g, pi, at)) => {
                self.place(vm, g, pi, at, config.vm_mobility);
                r.placed_after_defrag += 1;
                true
            }
            None => false,
        }
    }

    fn place(&mut self, vm: u32, g: usize, pi: usize, at: Placement, mob: Mobility) {
        let model = self.gpus[g].model;
        self.gpus[g].occ.add(model, pi, at);
        self.insts.push(Inst {
            gpu: g,
            pi,
            at,
            mob,
            alive: true,
        });
        self.vms.insert(vm, self.insts.len() - 1);
    }

    /// GPU, profile index and placement for one GI of `profile`, or `None`.
    fn choose(&self, profile: &str, policy: Policy) -> Option<Slot> {
        let candidates = self.gpus.iter().enumerate().filter_map(|(g, gpu)| {
            let pi = gpu
                .model
                .gi_profiles
                .iter()
                .position(|p| p.name == profile)?;
            gpu.occ.fits(gpu.model, pi).then_some((g, gpu, pi))
        });
        match policy {
            Policy::FirstFit => candidates
                .map(|(g, gpu, pi)| {
                    let model = gpu.model;
                    // The driver's auto-placement: the free region with the lowest GI id.
                    let at = model.gi_id_regions.iter().map(|(p, _)| *p).find(|&p| {
                        model.gi_profiles[pi].placements.contains(&p)
                            && gpu.occ.can_add(model, pi, p)
                    });
                    at.map(|at| (g, pi, at))
                })
                .find_map(|x| x),
            Policy::BestFit => {
                // The fullest GPU that fits (first on a tie), then on it the placement that
                // keeps the largest profile placeable (first in table order on a tie).
                let (g, gpu, pi) = candidates.min_by_key(|(_, gpu, _)| {
                    gpu.model
                        .compute_slices
                        .saturating_sub(gpu.occ.compute_used(gpu.model))
                })?;
                let model = gpu.model;
                let mut best: Option<(u32, Placement)> = None;
                for &at in model.gi_profiles[pi].placements {
                    if !gpu.occ.can_add(model, pi, at) {
                        continue;
                    }
                    let mut after = gpu.occ;
                    after.add(model, pi, at);
                    let largest = after
                        .largest(model)
                        .map_or(0, |l| rank(&model.gi_profiles[l]).0 + 1);
                    if best.is_none_or(|(b, _)| largest > b) {
                        best = Some((largest, at));
                    }
                }
                best.map(|(_, at)| (g, pi, at))
            }
        }
    }

    /// Plan and apply moves so that one GI of `profile` fits; `false` if no plan.
    fn defrag(&mut self, profile: &str, config: SimConfig, r: &mut SimResult) -> bool {
        if self.failed.iter().any(|p| p == profile) {
            return false;
        }
        let done = self.try_defrag(profile, config, r);
        if !done {
            self.failed.push(profile.to_string());
        }
        done
    }

    fn try_defrag(&mut self, profile: &str, config: SimConfig, r: &mut SimResult) -> bool {
        let mut models: Vec<&'static GpuModel> = Vec::new();
        for g in &self.gpus {
            if !models.iter().any(|m| m.key == g.model.key) {
                models.push(g.model);
            }
        }
        for model in models {
            let Some(target) = model.gi_profiles.iter().position(|p| p.name == profile) else {
                continue;
            };
            let gpus: Vec<(usize, usize, Occ)> = self
                .gpus
                .iter()
                .enumerate()
                .filter(|(_, g)| g.model.key == model.key)
                .map(|(i, g)| (i, g.host, g.occ))
                .collect();
            let slot: HashMap<usize, usize> = gpus
                .iter()
                .enumerate()
                .map(|(w, (f, _, _))| (*f, w))
                .collect();
            let insts: Vec<_> = self
                .insts
                .iter()
                .enumerate()
                .filter(|(_, i)| i.alive && i.mob != Mobility::Pinned)
                .filter_map(|(k, i)| {
                    let w = *slot.get(&i.gpu)?;
                    let id = GpuInstanceId(u32::try_from(k).ok()?);
                    Some((id, w, i.pi, i.at, i.mob))
                })
                .collect();
            let world = World::from_parts(model, target, config.limits, gpus, insts);
            let Ok(plan) = plan_world(world, 1, config.limits) else {
                continue;
            };
            // Moves change the layout: a profile refused before may fit now.
            self.failed.clear();
            for m in &plan.moves {
                let k = m.gi.0 as usize;
                let i = self.insts[k];
                self.gpus[i.gpu].occ.remove(model, i.pi, i.at);
                self.gpus[m.to_gpu].occ.add(model, i.pi, m.to);
                self.insts[k].gpu = m.to_gpu;
                self.insts[k].at = m.to;
                r.moves += 1;
                if m.kind == MoveKind::Live {
                    r.live_moves += 1;
                }
            }
            return true;
        }
        false
    }
}

/// A seeded stream of `arrivals` arrivals of the given profile names (uniformly), each
/// followed with probability `depart_percent`% by the departure of a random running VM.
pub fn random_events(
    seed: u64,
    arrivals: u32,
    profiles: &[&str],
    depart_percent: u32,
) -> Vec<Event> {
    let mut rng = SplitMix(seed);
    let mut running: Vec<u32> = Vec::new();
    let mut events = Vec::new();
    if profiles.is_empty() {
        return events;
    }
    for vm in 0..arrivals {
        let p = profiles[rng.below(profiles.len() as u64) as usize];
        events.push(Event::Arrive {
            vm,
            profile: p.to_string(),
        });
        running.push(vm);
        if rng.below(100) < u64::from(depart_percent) && !running.is_empty() {
            let i = rng.below(running.len() as u64) as usize;
            events.push(Event::Depart {
                vm: running.swap_remove(i),
            });
        }
    }
    events
}

/// splitmix64: tiny, seedable, the same on every platform.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
