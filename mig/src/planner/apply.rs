//! Replaying a plan on a `MigState`: what nvml-sim and the tests do with a plan, and the
//! planner's own self-check. The agent executes the same steps through NVML instead.
use crate::ids::{GpuInstanceId, Placement};
use crate::state::{MigError, MigState};

use super::{Plan, Step};

/// A step of a plan that the state refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The state operation failed.
    #[error("step {} ({step}) failed: {source}", .index + 1)]
    Step {
        /// Zero-based index of the step in the plan.
        index: usize,
        step: Step,
        source: MigError,
    },
    /// A `CreateCi` names a placement where no GI exists (the plan was made for another state).
    #[error("step {} ({step}): no GPU instance at {}; re-plan from the current state", .index + 1, .placement)]
    NoGiAtPlacement {
        index: usize,
        step: Step,
        placement: Placement,
    },
}

/// Execute `plan` on `state` step by step with the `MigState` operations. Returns the ids of
/// the GIs it created, in creation order. Stops at the first refused step, leaving the steps
/// before it applied (clone the state first to get all-or-nothing).
pub fn apply_plan(state: &mut MigState, plan: &Plan) -> Result<Vec<GpuInstanceId>, ApplyError> {
    let mut created = Vec::new();
    for (index, step) in plan.steps.iter().enumerate() {
        let fail = |source| ApplyError::Step {
            index,
            step: step.clone(),
            source,
        };
        match step {
            Step::DestroyCi { gi, ci } => state.destroy_ci(*gi, *ci).map_err(fail)?,
            Step::DestroyGi { gi } => state.destroy_gi(*gi).map_err(fail)?,
            Step::CreateGi { profile, placement } => {
                created.push(state.create_gi(*profile, Some(*placement)).map_err(fail)?);
            }
            Step::CreateCi {
                gi_placement,
                profile,
            } => {
                let gi = state
                    .gpu_instances
                    .values()
                    .find(|g| g.placement == *gi_placement)
                    .map(|g| g.id)
                    .ok_or_else(|| ApplyError::NoGiAtPlacement {
                        index,
                        step: step.clone(),
                        placement: *gi_placement,
                    })?;
                state.create_ci(gi, *profile, None).map_err(fail)?;
            }
        }
    }
    Ok(created)
}
