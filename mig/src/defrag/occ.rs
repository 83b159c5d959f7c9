//! A copyable occupancy of one GPU (memory-slice mask, instances per profile, media engines),
//! indexed by the profile's position in `GpuModel::gi_profiles`. The defrag searches try
//! millions of hypothetical layouts; `MigState` (a `BTreeMap` per GPU) would allocate on every
//! one. The rules are the driver's as `MigState::create_gi` applies them, and the property
//! tests check this copy against `MigState` (`largest` against `largest_placeable`).
use crate::catalog::{GiProfile, GpuModel};
use crate::engines::EngineCounts;
use crate::ids::Placement;

/// More than any catalog model has (seven).
pub(crate) const MAX_PROFILES: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct Occ {
    pub(crate) mask: u64,
    counts: [u8; MAX_PROFILES],
    engines: EngineCounts,
}

impl Occ {
    /// Whether a GI of profile `p` (index `pi`) can be created at `at` now.
    pub(crate) fn can_add(&self, model: &GpuModel, pi: usize, at: Placement) -> bool {
        let p = &model.gi_profiles[pi];
        at.mask() & self.mask == 0
            && u32::from(self.counts[pi]) < p.instance_count
            && self
                .engines
                .plus(p.engines)
                .media_fits_within(model.engine_pool())
    }

    pub(crate) fn add(&mut self, model: &GpuModel, pi: usize, at: Placement) {
        let p = &model.gi_profiles[pi];
        self.mask |= at.mask();
        self.counts[pi] = self.counts[pi].saturating_add(1);
        self.engines = self.engines.plus(p.engines);
    }

    pub(crate) fn remove(&mut self, model: &GpuModel, pi: usize, at: Placement) {
        let p = &model.gi_profiles[pi];
        self.mask &= !at.mask();
        self.counts[pi] = self.counts[pi].saturating_sub(1);
        self.engines = self.engines.saturating_sub(p.engines);
    }

    /// How many more GIs of profile `pi` fit at once. A profile's placements are pairwise
    /// disjoint (a catalog test checks it), so adding greedily in table order is optimal and
    /// applies the instance and engine limits on the way.
    pub(crate) fn capacity(&self, model: &GpuModel, pi: usize) -> u32 {
        let mut scratch = *self;
        let mut n = 0;
        for &at in model.gi_profiles[pi].placements {
            if scratch.can_add(model, pi, at) {
                scratch.add(model, pi, at);
                n += 1;
            }
        }
        n
    }

    /// Whether one more GI of profile `pi` fits anywhere.
    pub(crate) fn fits(&self, model: &GpuModel, pi: usize) -> bool {
        model.gi_profiles[pi]
            .placements
            .iter()
            .any(|&at| self.can_add(model, pi, at))
    }

    /// The largest profile with room (compute slices, then memory slices; first in table
    /// order on a tie), as `MigState::largest_placeable` ranks them.
    pub(crate) fn largest(&self, model: &GpuModel) -> Option<usize> {
        (0..model.gi_profiles.len())
            .rev()
            .filter(|&pi| self.fits(model, pi))
            .max_by_key(|&pi| rank(&model.gi_profiles[pi]))
    }

    /// Compute slices taken by the GIs (for "free slices").
    pub(crate) fn compute_used(&self, model: &GpuModel) -> u32 {
        model
            .gi_profiles
            .iter()
            .zip(self.counts)
            .map(|(p, n)| p.compute_slices * u32::from(n))
            .sum()
    }
}

/// The order in which "larger" profiles win.
pub(crate) fn rank(p: &GiProfile) -> (u32, u32) {
    (p.compute_slices, p.memory_slices)
}

/// Index of a profile in its model's table.
pub(crate) fn profile_index(model: &GpuModel, id: crate::ids::GiProfileId) -> Option<usize> {
    model.gi_profiles.iter().position(|p| p.id == id)
}
