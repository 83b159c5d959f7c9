//! Best-fit placement of one new GI: the free placement that leaves the GPU least fragmented,
//! so later, larger GIs still fit. For the admin CLI's "where should this go" across a fleet
//! (20,000 GPUs in well under a second), hence no scratch states at all.
//!
//! `MigState::fragmentation` is `1 - now / best`, where `best` (the largest profile placeable
//! under the best re-layout of the same GIs) depends only on the multiset of GI profiles, and
//! `now` is the compute slices of `largest_placeable()`. Every candidate placement of the new
//! GI gives the same multiset, so minimising fragmentation is exactly maximising `now`. And
//! whether a profile still has room under its instance and engine limits does not depend on
//! where the new GI goes either, so `now` per candidate is a mask test over those profiles.
//! The property tests check the result against `MigState::fragmentation` itself.
use crate::catalog::{GiProfile, GpuModel};
use crate::ids::{GiProfileId, Placement};
use crate::state::MigState;

use super::search::preference_order;

/// The free placement of `profile` on `state` that minimises `MigState::fragmentation` after
/// creating it. Ties go to the placement that leaves the most legal placements free over all
/// profiles (the most options for later GIs), then to the modelled driver's auto-placement
/// order (lowest GI id, then lowest start). `None` when the profile is unknown or no placement
/// can be created now (overlap, instance cap, media-engine limit).
pub fn best_fit_placement(state: &MigState, profile: GiProfileId) -> Option<Placement> {
    let model = state.gpu_model();
    let gi = model.gi_profile(profile)?;
    // The creation rules themselves (slots, instance and engine limits) come from the state.
    let free = state.free_placements(profile).ok()?;
    if free.is_empty() {
        return None;
    }
    let room = profiles_with_room_after(state, model, gi);
    let occupied = state.occupied_memory_mask();
    let mut best: Option<((u32, usize), Placement)> = None;
    // Candidates in preference order, so a strict `>` keeps the preferred one on ties.
    for placement in preference_order(model, gi)
        .into_iter()
        .filter(|p| free.contains(p))
    {
        let occupied = occupied | placement.mask();
        let largest = room
            .iter()
            .find(|p| p.placements.iter().any(|q| q.mask() & occupied == 0))
            .map_or(0, |p| p.compute_slices);
        let score = (largest, open_placements(model, occupied));
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, placement));
        }
    }
    best.map(|(_, p)| p)
}

/// Profiles that the instance and engine limits would still allow once a GI of `new` exists,
/// largest first (compute, then memory slices) as `MigState::largest_placeable` ranks them.
fn profiles_with_room_after(
    state: &MigState,
    model: &'static GpuModel,
    new: &'static GiProfile,
) -> Vec<&'static GiProfile> {
    let mut profiles: Vec<&'static GiProfile> = state
        .gpu_instances
        .values()
        .filter_map(|g| model.gi_profile(g.profile))
        .collect();
    profiles.push(new);
    let used = profiles
        .iter()
        .fold(crate::EngineCounts::default(), |e, p| e.plus(p.engines));
    let pool = model.engine_pool();
    let mut room: Vec<&'static GiProfile> = model
        .gi_profiles
        .iter()
        .filter(|p| {
            let count = profiles.iter().filter(|q| q.id == p.id).count();
            count < p.instance_count as usize && used.plus(p.engines).media_fits_within(pool)
        })
        .collect();
    room.sort_by_key(|p| std::cmp::Reverse((p.compute_slices, p.memory_slices)));
    room
}

/// How many legal placements of all profiles avoid the `occupied` slices (a tie-breaker only:
/// instance and engine limits are deliberately ignored).
fn open_placements(model: &GpuModel, occupied: u64) -> usize {
    model
        .gi_profiles
        .iter()
        .flat_map(|p| p.placements)
        .filter(|p| p.mask() & occupied == 0)
        .count()
}
