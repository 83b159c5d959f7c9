//! Defragmentation across GPUs: stranded capacity, and the fewest moves of existing GIs that
//! make N more GIs of one profile fit.
//!
//! Why: MIG placements strand capacity (four free slices that no `4g` can use because of where
//! a `1g` sits), and which VMs start first decides what fits. Moving a few instances frees the
//! large slot; this module says which ones, in which order.
//!
//! Model of a move (docs/admin-guide.md states the vSphere rules behind it):
//! - [`Mobility::Cold`]: the GI backs a powered-off VM's reservation; it may be re-created at
//!   another placement of the same GPU or on any GPU of the same model (a vGPU type names one
//!   board, so a VM never changes GPU model);
//! - [`Mobility::Live`]: a running vGPU VM that vSphere may vMotion: only to a GPU of the same
//!   model on *another host* (vMotion always changes host);
//! - [`Mobility::OwnedIdle`]: an idle GI vmig owns: re-laid out on its own GPU only;
//! - [`Mobility::Pinned`]: everything else (the default) never moves.
//!
//! Each move is legal when it is made (the destination is free and the instance and engine
//! limits hold), so the plan can be executed in order. Small problems (at most
//! [`DefragLimits::exact_gpu_limit`] GPUs of the model) are solved exactly by iterative
//! deepening, so the move count is the minimum (the property tests compare it with a
//! brute-force breadth-first search on `MigState`). Larger fleets get a greedy plan built from
//! exact per-GPU options (evict or re-lay out instances of one GPU, evicted instances go where
//! they cost no capacity); [`DefragPlan::exact`] is then `false`.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::GpuModel;
use crate::ids::{GiProfileId, GpuInstanceId, Placement};
use crate::state::MigState;

mod greedy;
mod occ;
mod search;
mod stranded;

pub use stranded::{Stranded, StrandedTotals, stranded};

pub(crate) use occ::{Occ, profile_index, rank};
pub(crate) use search::World;

/// What may happen to a GI during defragmentation.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Mobility {
    #[default]
    Pinned,
    /// Backs a powered-off VM: re-created anywhere on a GPU of the same model.
    Cold,
    /// Backs a running VM that vMotion may move to a GPU of the same model on another host.
    Live,
    /// Idle GI vmig owns: may be re-laid out on its own GPU.
    OwnedIdle,
}

/// One GPU of the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetGpu {
    /// A label for the output, e.g. `esx-01 0000:3b:00.0`.
    pub name: String,
    /// The host it is in (live moves must change host).
    pub host: String,
    pub state: MigState,
    /// Mobility per GI; a GI not listed is pinned.
    #[serde(default)]
    pub mobility: BTreeMap<GpuInstanceId, Mobility>,
}

/// Which moves a plan may use, and how far it may search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefragLimits {
    /// Move GIs of powered-off VMs (and re-lay out idle owned GIs).
    pub allow_cold: bool,
    /// vMotion running vGPU VMs marked [`Mobility::Live`].
    pub allow_live: bool,
    /// The longest plan considered.
    pub max_moves: u32,
    /// Up to this many GPUs of the model the search is exact.
    pub exact_gpu_limit: usize,
}

impl Default for DefragLimits {
    fn default() -> Self {
        DefragLimits {
            allow_cold: true,
            allow_live: false,
            max_moves: 4,
            exact_gpu_limit: 6,
        }
    }
}

/// How a GI moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MoveKind {
    /// Destroyed and re-created at another placement of the same GPU (idle or powered-off).
    Relayout,
    /// A powered-off VM's GI re-created on another GPU.
    Cold,
    /// A running VM moved by vMotion to another host's GPU.
    Live,
}

/// One move of a plan, in execution order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// The GI's id on its original GPU when the plan was made.
    pub gi: GpuInstanceId,
    /// Index (into the fleet given) of the GPU the GI was on when the plan was made.
    pub origin_gpu: usize,
    pub profile: String,
    pub from_gpu: usize,
    pub from: Placement,
    pub to_gpu: usize,
    pub to: Placement,
    pub kind: MoveKind,
    /// How many GIs of the requested profile fit in the fleet after this move.
    pub fits_after: u32,
}

/// A defragmentation plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefragPlan {
    pub moves: Vec<Move>,
    /// GIs of the requested profile that fit before any move.
    pub fits_before: u32,
    /// ... and after the last one (at least the count asked for).
    pub fits_after: u32,
    /// The plan has the fewest moves possible (exact search); `false` for the greedy plan.
    pub exact: bool,
}

/// Why no plan was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefragError {
    #[error("GPU model {model} has no GI profile {profile}")]
    UnknownProfile { model: String, profile: u32 },
    /// A proof: even with every GI that may move removed from the fleet, only `upper_bound`
    /// fit.
    #[error(
        "no plan exists: {wanted} wanted, {fits_before} fit now, and even with every movable GI removed at most {upper_bound} would fit (allow more kinds of moves or free GPUs)"
    )]
    Impossible {
        wanted: u32,
        fits_before: u32,
        upper_bound: u32,
    },
    /// No plan within `max_moves`. With `exact`, this is a proof; otherwise the greedy search
    /// gave up.
    #[error(
        "no plan within {max_moves} moves ({} search): {wanted} wanted, {fits_before} fit now, the best found reaches {best}",
        if *.exact { "exact" } else { "greedy" }
    )]
    OverLimit {
        wanted: u32,
        fits_before: u32,
        best: u32,
        max_moves: u32,
        exact: bool,
    },
}

/// The fewest moves that make `count` GIs of `profile` fit on the fleet's GPUs of `model`
/// (all of them at once). GPUs of other models are ignored.
pub fn plan_defrag(
    fleet: &[FleetGpu],
    model: &'static GpuModel,
    profile: GiProfileId,
    count: u32,
    limits: DefragLimits,
) -> Result<DefragPlan, DefragError> {
    let target = profile_index(model, profile).ok_or_else(|| DefragError::UnknownProfile {
        model: model.key.to_string(),
        profile: profile.0,
    })?;
    let world = search::World::new(fleet, model, target, limits);
    plan_world(world, count, limits)
}

/// [`plan_defrag`] on a prepared world (the simulator builds its own).
pub(crate) fn plan_world(
    world: World,
    count: u32,
    limits: DefragLimits,
) -> Result<DefragPlan, DefragError> {
    let fits_before = world.total();
    if fits_before >= count {
        return Ok(DefragPlan {
            moves: Vec::new(),
            fits_before,
            fits_after: fits_before,
            exact: true,
        });
    }
    let upper_bound = world.upper_bound();
    if upper_bound < count {
        return Err(DefragError::Impossible {
            wanted: count,
            fits_before,
            upper_bound,
        });
    }
    let exact = world.gpu_count() <= limits.exact_gpu_limit;
    let found = if exact {
        search::exact(world, count, limits.max_moves)
    } else {
        greedy::plan(world, count, limits.max_moves)
    };
    match found {
        Ok(moves) => {
            let fits_after = moves.last().map_or(fits_before, |m| m.fits_after);
            Ok(DefragPlan {
                moves,
                fits_before,
                fits_after,
                exact,
            })
        }
        Err(best) => Err(DefragError::OverLimit {
            wanted: count,
            fits_before,
            best,
            max_moves: limits.max_moves,
            exact,
        }),
    }
}
