//! The fleet as the defrag searches see it (only GPUs of the requested model), and the exact
//! iterative-deepening search.
use std::collections::HashMap;

use super::occ::{Occ, profile_index};
use super::{DefragLimits, FleetGpu, Mobility, Move, MoveKind};
use crate::catalog::GpuModel;
use crate::ids::{GpuInstanceId, Placement};

#[derive(Debug, Clone)]
pub(super) struct Gpu {
    /// Index in the fleet given to `plan_defrag`.
    pub(super) fleet: usize,
    pub(super) host: usize,
    pub(super) occ: Occ,
    /// GIs of the target profile that fit now.
    pub(super) cap: u32,
}

#[derive(Debug, Clone)]
pub(super) struct Inst {
    pub(super) gi: GpuInstanceId,
    /// World index of the GPU it started on.
    pub(super) origin: usize,
    pub(super) pi: usize,
    pub(super) mob: Mobility,
}

#[derive(Debug, Clone)]
pub(crate) struct World {
    pub(super) model: &'static GpuModel,
    pub(super) target: usize,
    pub(super) limits: DefragLimits,
    pub(super) gpus: Vec<Gpu>,
    pub(super) insts: Vec<Inst>,
    /// Where each instance is now: (world GPU index, placement).
    pub(super) pos: Vec<(usize, Placement)>,
    /// The sum of `gpus[..].cap`, kept up to date by `apply`.
    sum: u32,
}

impl World {
    pub(super) fn new(
        fleet: &[FleetGpu],
        model: &'static GpuModel,
        target: usize,
        limits: DefragLimits,
    ) -> World {
        let mut hosts: Vec<&str> = Vec::new();
        let mut w = World {
            model,
            target,
            limits,
            gpus: Vec::new(),
            insts: Vec::new(),
            pos: Vec::new(),
            sum: 0,
        };
        for (fi, g) in fleet.iter().enumerate() {
            if g.state.model != model.key {
                continue;
            }
            let host = hosts.iter().position(|h| *h == g.host).unwrap_or_else(|| {
                hosts.push(&g.host);
                hosts.len() - 1
            });
            let wi = w.gpus.len();
            let mut occ = Occ::default();
            for gi in g.state.gpu_instances.values() {
                let Some(pi) = profile_index(model, gi.profile) else {
                    continue;
                };
                occ.add(model, pi, gi.placement);
                let mob = g.mobility.get(&gi.id).copied().unwrap_or_default();
                if mob != Mobility::Pinned {
                    w.insts.push(Inst {
                        gi: gi.id,
                        origin: wi,
                        pi,
                        mob,
                    });
                    w.pos.push((wi, gi.placement));
                }
            }
            let cap = occ.capacity(model, target);
            w.sum += cap;
            w.gpus.push(Gpu {
                fleet: fi,
                host,
                occ,
                cap,
            });
        }
        w
    }

    /// A world built directly from occupancies (the simulator's fast path). `gpus` are
    /// (fleet index, host, occupancy with every GI); `insts` are the GIs that may move:
    /// (GI id, fleet-order GPU position in `gpus`, profile index, placement, mobility).
    pub(crate) fn from_parts(
        model: &'static GpuModel,
        target: usize,
        limits: DefragLimits,
        gpus: impl IntoIterator<Item = (usize, usize, Occ)>,
        insts: impl IntoIterator<Item = (GpuInstanceId, usize, usize, Placement, Mobility)>,
    ) -> World {
        let gpus: Vec<Gpu> = gpus
            .into_iter()
            .map(|(fleet, host, occ)| Gpu {
                fleet,
                host,
                occ,
                cap: occ.capacity(model, target),
            })
            .collect();
        let mut w = World {
            model,
            target,
            limits,
            gpus,
            insts: Vec::new(),
            pos: Vec::new(),
            sum: 0,
        };
        w.sum = w.gpus.iter().map(|g| g.cap).sum();
        for (gi, g, pi, at, mob) in insts {
            w.insts.push(Inst {
                gi,
                origin: g,
                pi,
                mob,
            });
            w.pos.push((g, at));
        }
        w
    }

    pub(super) fn gpu_count(&self) -> usize {
        self.gpus.len()
    }

    pub(super) fn total(&self) -> u32 {
        self.sum
    }

    /// Whether instance `k` may leave its GPU at all under the limits.
    pub(super) fn may_move(&self, k: usize) -> bool {
        match self.insts[k].mob {
            Mobility::Pinned => false,
            Mobility::OwnedIdle => true,
            Mobility::Cold => self.limits.allow_cold,
            Mobility::Live => self.limits.allow_live,
        }
    }

    /// How instance `k` would move from GPU `a` to GPU `b`, if it may.
    pub(super) fn kind(&self, k: usize, a: usize, b: usize) -> Option<MoveKind> {
        let same_host = self.gpus[a].host == self.gpus[b].host;
        match (self.insts[k].mob, a == b) {
            (Mobility::OwnedIdle, true) | (Mobility::Cold, true) if self.may_move(k) => {
                Some(MoveKind::Relayout)
            }
            (Mobility::Cold, false) if self.limits.allow_cold => Some(MoveKind::Cold),
            (Mobility::Live, false) if self.limits.allow_live && !same_host => Some(MoveKind::Live),
            _ => None,
        }
    }

    /// Fits with every instance that may move removed: no plan can do better.
    pub(super) fn upper_bound(&self) -> u32 {
        let mut occs: Vec<Occ> = self.gpus.iter().map(|g| g.occ).collect();
        for (k, &(g, at)) in self.pos.iter().enumerate() {
            if self.may_move(k) {
                occs[g].remove(self.model, self.insts[k].pi, at);
            }
        }
        occs.iter()
            .map(|o| o.capacity(self.model, self.target))
            .sum()
    }

    /// Legal destinations of instance `k` now, in a fixed order.
    pub(super) fn destinations(&self, k: usize) -> Vec<(usize, Placement, MoveKind)> {
        let (a, from) = self.pos[k];
        let pi = self.insts[k].pi;
        let mut out = Vec::new();
        if !self.may_move(k) {
            return out;
        }
        for b in 0..self.gpus.len() {
            let Some(kind) = self.kind(k, a, b) else {
                continue;
            };
            let mut occ = self.gpus[b].occ;
            if a == b {
                occ.remove(self.model, pi, from);
            }
            for &to in self.model.gi_profiles[pi].placements {
                if (a != b || to != from) && occ.can_add(self.model, pi, to) {
                    out.push((b, to, kind));
                }
            }
        }
        out
    }

    /// Move instance `k` to `to` on GPU `b` (the caller checked it is legal).
    pub(super) fn apply(&mut self, k: usize, b: usize, to: Placement) {
        let (a, from) = self.pos[k];
        let pi = self.insts[k].pi;
        self.gpus[a].occ.remove(self.model, pi, from);
        self.gpus[b].occ.add(self.model, pi, to);
        self.pos[k] = (b, to);
        let gpus: &[usize] = if a == b { &[a] } else { &[a, b] };
        for &g in gpus {
            let cap = self.gpus[g].occ.capacity(self.model, self.target);
            self.sum = self.sum - self.gpus[g].cap + cap;
            self.gpus[g].cap = cap;
        }
    }

    pub(super) fn record(&self, k: usize, from: (usize, Placement), kind: MoveKind) -> Move {
        let inst = &self.insts[k];
        let (b, to) = self.pos[k];
        Move {
            gi: inst.gi,
            origin_gpu: self.gpus[inst.origin].fleet,
            profile: self.model.gi_profiles[inst.pi].name.to_string(),
            from_gpu: self.gpus[from.0].fleet,
            from: from.1,
            to_gpu: self.gpus[b].fleet,
            to,
            kind,
            fits_after: self.total(),
        }
    }
}

/// Iterative deepening over sequences of single legal moves: the first plan found has the
/// fewest moves. `Err` carries the most GIs any explored state fits.
pub(super) fn exact(mut w: World, count: u32, max_moves: u32) -> Result<Vec<Move>, u32> {
    let mut best = w.total();
    for depth in 1..=max_moves {
        let mut seen: HashMap<Vec<(usize, Placement)>, u32> = HashMap::new();
        let mut path = Vec::new();
        if dfs(&mut w, count, depth, &mut path, &mut seen, &mut best) {
            return Ok(path);
        }
    }
    Err(best)
}

fn dfs(
    w: &mut World,
    count: u32,
    left: u32,
    path: &mut Vec<Move>,
    seen: &mut HashMap<Vec<(usize, Placement)>, u32>,
    best: &mut u32,
) -> bool {
    let total = w.total();
    *best = (*best).max(total);
    if total >= count {
        return true;
    }
    if left == 0 {
        return false;
    }
    // A state already searched with at least this many moves left cannot succeed now.
    match seen.get(&w.pos) {
        Some(&l) if l >= left => return false,
        _ => {
            seen.insert(w.pos.clone(), left);
        }
    }
    for k in 0..w.insts.len() {
        for (b, to, kind) in w.destinations(k) {
            let from = w.pos[k];
            w.apply(k, b, to);
            path.push(w.record(k, from, kind));
            if dfs(w, count, left - 1, path, seen, best) {
                return true;
            }
            path.pop();
            w.apply(k, from.0, from.1);
        }
    }
    false
}
