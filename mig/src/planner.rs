//! The layout planner: from a current `MigState` to a desired multiset of GIs (each optionally
//! pinned to a placement and split into CIs), the shortest safe sequence of steps.
use serde::{Deserialize, Serialize};

use crate::ids::{CiProfileId, ComputeInstanceId, GiProfileId, GpuInstanceId, Placement};
use crate::state::MigState;

/// One GI wanted in the target layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredGi {
    pub profile: GiProfileId,
    /// Pin to this placement; `None` lets the planner choose.
    pub placement: Option<Placement>,
    /// CI profiles to create inside; empty means one default (full-GI) CI.
    pub compute: Vec<CiProfileId>,
}

/// The target layout of one GPU.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DesiredLayout {
    pub gpu_instances: Vec<DesiredGi>,
}

/// One step of a plan, to be executed in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Step {
    DestroyCi { gi: GpuInstanceId, ci: ComputeInstanceId },
    DestroyGi { gi: GpuInstanceId },
    /// Always with an explicit placement so execution is deterministic across drivers.
    CreateGi { profile: GiProfileId, placement: Placement },
    /// `gi_placement` identifies the GI (created earlier in the plan or existing): ids of new GIs
    /// are only known once the driver returns them.
    CreateCi { gi_placement: Placement, profile: CiProfileId },
}

/// An executable plan.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Existing instances kept as they are.
    pub kept: Vec<GpuInstanceId>,
}

/// Why a layout cannot be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("unknown GI profile {0:?} for this GPU")]
    UnknownProfile(GiProfileId),
    #[error("{0}")]
    Infeasible(String),
    #[error("GPU instances in use block the layout: {gis:?}")]
    BlockedByInUse { gis: Vec<GpuInstanceId>, reason: String },
}

/// Plan the shortest safe sequence of steps from `current` to `desired`. Never destroys an
/// in-use instance. Exact and deterministic.
pub fn plan(current: &MigState, desired: &DesiredLayout) -> Result<Plan, PlanError> {
    let _ = (current, desired);
    todo!()
}
