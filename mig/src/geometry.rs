//! Capacity from geometry: how many more GPU instances of a profile fit, computed from the
//! profile's legal placements and the GPU instances that exist, without the catalog.
//!
//! The agent publishes this instead of NVML's `nvmlDeviceGetGpuInstanceRemainingCapacity`,
//! which a real ESXi host answered with 0 for every profile of an empty, MIG-enabled GPU (the
//! seed's session, docs/mig-model.md). The rules are those `MigState` applies to catalog
//! models: a GI occupies its placement's memory slices and creation fails on overlap (nvml.h),
//! a profile has at most `instanceCount` instances, and media engines (DEC, ENC, JPEG, OFA)
//! are shared out of the full-GPU profile's pool.
use crate::engines::EngineCounts;
use crate::ids::{GiProfileId, Placement};

/// What the capacity rule needs of one GI profile (as NVML reports it).
#[derive(Debug, Clone, Copy)]
pub struct ProfileGeometry<'a> {
    pub id: GiProfileId,
    /// `instanceCount`: instances on an empty GPU.
    pub instance_count: u32,
    pub engines: EngineCounts,
    /// Every legal placement (`nvmlDeviceGetGpuInstancePossiblePlacements`).
    pub placements: &'a [Placement],
}

/// An existing GPU instance: its profile, that profile's engines, and where it sits.
#[derive(Debug, Clone, Copy)]
pub struct ExistingGi {
    pub profile: GiProfileId,
    pub engines: EngineCounts,
    pub placement: Placement,
}

/// The most pairwise disjoint ranges among `slots` (interval scheduling: earliest end first).
pub fn max_disjoint(slots: impl Iterator<Item = Placement>) -> u32 {
    let mut slots: Vec<Placement> = slots.collect();
    slots.sort_by_key(|p| (p.end(), p.start));
    let mut taken = 0u64;
    let mut count = 0;
    for p in slots {
        if p.mask() & taken == 0 {
            taken |= p.mask();
            count += 1;
        }
    }
    count
}

/// The engine pool of a GPU: the engines of its largest profile (the full-GPU one).
pub fn engine_pool<'a>(
    profiles: impl IntoIterator<Item = &'a ProfileGeometry<'a>>,
) -> EngineCounts {
    profiles
        .into_iter()
        .max_by_key(|p| {
            (
                p.placements.iter().map(|pl| pl.size).max().unwrap_or(0),
                p.engines.sm,
            )
        })
        .map(|p| p.engines)
        .unwrap_or_default()
}

/// How many more GIs of `profile` can exist at once: disjoint free placements, capped by the
/// instance limit and by the media engines left in `pool`.
pub fn remaining_capacity(
    profile: &ProfileGeometry<'_>,
    pool: EngineCounts,
    existing: &[ExistingGi],
) -> u32 {
    let occupied = existing.iter().fold(0u64, |m, gi| m | gi.placement.mask());
    let same = existing
        .iter()
        .filter(|gi| gi.profile == profile.id)
        .count() as u32;
    let mut quota = profile.instance_count.saturating_sub(same);
    let used = existing
        .iter()
        .fold(EngineCounts::default(), |acc, gi| acc.plus(gi.engines));
    let media = pool
        .media()
        .into_iter()
        .zip(used.media())
        .zip(profile.engines.media());
    for ((have, used), per) in media {
        // An engine the profile does not use imposes no limit.
        if let Some(n) = have.saturating_sub(used).checked_div(per) {
            quota = quota.min(n);
        }
    }
    let free = max_disjoint(
        profile
            .placements
            .iter()
            .copied()
            .filter(|p| p.mask() & occupied == 0),
    );
    quota.min(free)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::GpuModel;

    fn geometry(model: &'static GpuModel) -> Vec<ProfileGeometry<'static>> {
        model
            .gi_profiles
            .iter()
            .map(|p| ProfileGeometry {
                id: p.id,
                instance_count: p.instance_count,
                engines: p.engines,
                placements: p.placements,
            })
            .collect()
    }

    /// The geometry rule agrees with `MigState` (the catalog's driver model) on every
    /// catalog GPU, empty and after the seed's `-cgi 9,19,14,19`-like sets.
    #[test]
    fn agrees_with_the_catalog_model() {
        for model in crate::catalog() {
            let geo = geometry(model);
            let pool = engine_pool(&geo);
            let mut state = crate::MigState::new(model);
            for step in 0..4 {
                let existing: Vec<ExistingGi> = state
                    .gpu_instances
                    .values()
                    .map(|gi| ExistingGi {
                        profile: gi.profile,
                        engines: model.gi_profile(gi.profile).expect("profile").engines,
                        placement: gi.placement,
                    })
                    .collect();
                for p in &geo {
                    assert_eq!(
                        remaining_capacity(p, pool, &existing),
                        state.remaining_gi_capacity(p.id).expect("profile"),
                        "{} profile {} after {step} GIs",
                        model.key,
                        p.id.0
                    );
                }
                // Add the largest profile that still fits, then a smallest one.
                let next = if step % 2 == 0 {
                    state.largest_placeable()
                } else {
                    model.gi_profiles.first()
                };
                match next {
                    Some(p) if state.remaining_gi_capacity(p.id).unwrap_or(0) > 0 => {
                        state.create_gi(p.id, None).expect("create");
                    }
                    _ => break,
                }
            }
        }
    }
}
