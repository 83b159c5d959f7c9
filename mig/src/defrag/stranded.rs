//! Stranded capacity of one GPU: free slices that the largest GI cannot use now because of
//! where the existing GIs sit, although a re-layout of the movable GIs would let it.
//!
//! Figures are in compute slices (the `g` of `3g.20gb`), the unit admins size VMs in.
//! `stranded_slices = largest_after_relayout − largest_now` (compute slices): the amount by
//! which the biggest VM that can start now falls short of the biggest one that could start
//! after moving instances. It is 0 on a GPU whose free space is as usable as any arrangement
//! of its GIs allows, and waste that no arrangement avoids (seven `1g` GIs leave one memory
//! slice that no profile can use) is not counted: with every GI movable, `stranded_slices`
//! is 0 exactly when `MigState::fragmentation` is 0.
use serde::{Deserialize, Serialize};

use super::occ::{Occ, profile_index, rank};
use crate::catalog::GpuModel;
use crate::state::{GpuInstance, MigState};

/// Stranded capacity of one GPU (see the module documentation for the definitions).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Stranded {
    /// Compute slices no GI holds.
    pub free_slices: u32,
    /// The largest GI profile that can be created now (`MigState::largest_placeable`).
    pub largest_now: Option<String>,
    /// The largest GI profile that could be created after re-laying out the movable GIs
    /// (pinned GIs stay where they are).
    pub largest_after_relayout: Option<String>,
    /// Compute slices of `largest_after_relayout` minus those of `largest_now`.
    pub stranded_slices: u32,
}

/// Sums of [`Stranded`] over GPUs (a cluster, the whole inventory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StrandedTotals {
    pub gpus: u32,
    pub free_slices: u32,
    pub stranded_slices: u32,
    /// GPUs with `stranded_slices > 0`.
    pub gpus_with_stranded: u32,
}

impl StrandedTotals {
    /// Adds another sum (a cluster's to its vCenter's, ...).
    pub fn merge(&mut self, other: StrandedTotals) {
        self.gpus += other.gpus;
        self.free_slices += other.free_slices;
        self.stranded_slices += other.stranded_slices;
        self.gpus_with_stranded += other.gpus_with_stranded;
    }

    pub fn add(&mut self, s: &Stranded) {
        self.gpus += 1;
        self.free_slices += s.free_slices;
        self.stranded_slices += s.stranded_slices;
        if s.stranded_slices > 0 {
            self.gpus_with_stranded += 1;
        }
    }
}

/// Stranded capacity of `state`, where `movable` says which GIs a re-layout may move
/// (e.g. not the in-use ones: `|gi| !gi.is_in_use()`). GIs with a profile unknown to the
/// model are treated as pinned and take no slices (a validated state has none).
pub fn stranded(state: &MigState, movable: impl Fn(&GpuInstance) -> bool) -> Stranded {
    let Some(model) = state.try_gpu_model() else {
        return Stranded::default();
    };
    let mut base = Occ::default();
    let mut moving: Vec<usize> = Vec::new();
    for gi in state.gpu_instances.values() {
        let Some(pi) = profile_index(model, gi.profile) else {
            continue;
        };
        if movable(gi) {
            moving.push(pi);
        } else {
            base.add(model, pi, gi.placement);
        }
    }
    let mut now = base;
    for gi in state.gpu_instances.values() {
        if let Some(pi) = profile_index(model, gi.profile)
            && movable(gi)
        {
            now.add(model, pi, gi.placement);
        }
    }
    let largest_now = now.largest(model);
    // Big profiles first: fewest placements, earliest pruning. Equal profiles adjacent.
    moving.sort_by_key(|&pi| (std::cmp::Reverse(model.gi_profiles[pi].memory_slices), pi));
    let mut best = largest_now;
    let upper = model.gi_profiles.iter().map(rank).max().unwrap_or_default();
    relayout(model, &moving, 0, 0, &mut base, upper, &mut best);
    let slices = |p: Option<usize>| p.map_or(0, |pi| model.gi_profiles[pi].compute_slices);
    let name = |p: Option<usize>| p.map(|pi| model.gi_profiles[pi].name.to_string());
    Stranded {
        free_slices: model.compute_slices.saturating_sub(now.compute_used(model)),
        largest_now: name(largest_now),
        largest_after_relayout: name(best),
        stranded_slices: slices(best).saturating_sub(slices(largest_now)),
    }
}

fn better(model: &GpuModel, a: Option<usize>, b: Option<usize>) -> bool {
    let key = |p: Option<usize>| p.map(|pi| rank(&model.gi_profiles[pi]));
    key(a) > key(b)
}

/// Depth-first search over placements of `moving` on top of `occ`: raise `best` to the
/// largest profile placeable in any complete layout. Equal profiles take placements in
/// increasing index order so each set of placements is tried once.
fn relayout(
    model: &GpuModel,
    moving: &[usize],
    i: usize,
    min_slot: usize,
    occ: &mut Occ,
    upper: (u32, u32),
    best: &mut Option<usize>,
) {
    let done = |b: &Option<usize>| b.is_some_and(|pi| rank(&model.gi_profiles[pi]) >= upper);
    if done(best) {
        return;
    }
    let Some(&pi) = moving.get(i) else {
        let largest = occ.largest(model);
        if better(model, largest, *best) {
            *best = largest;
        }
        return;
    };
    for (slot, &at) in model.gi_profiles[pi]
        .placements
        .iter()
        .enumerate()
        .skip(min_slot)
    {
        if !occ.can_add(model, pi, at) {
            continue;
        }
        occ.add(model, pi, at);
        let next_min = if moving.get(i + 1) == Some(&pi) {
            slot + 1
        } else {
            0
        };
        relayout(model, moving, i + 1, next_min, occ, upper, best);
        occ.remove(model, pi, at);
        if done(best) {
            return;
        }
    }
}
