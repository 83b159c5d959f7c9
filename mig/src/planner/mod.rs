//! The layout planner: from a current `MigState` to a desired multiset of GIs (each optionally
//! pinned to a placement and split into CIs), the shortest safe sequence of steps.
//!
//! Why it exists: NVIDIA's own tooling creates instances in a fixed or permuted order and lets
//! the driver pick placements, so fragmented GPUs fail with "Insufficient Resources" although the
//! layout fits, and in-use instances make it fail half-way. This planner instead
//! - keeps every existing GI that already matches a desired one (changing only its CIs if needed),
//! - never destroys an in-use GI or an in-use CI,
//! - searches the whole (small) placement space exactly, so a layout that fits is always found,
//!   and one that does not is refused with a precise reason *before* any change,
//! - emits explicit placements, so execution is deterministic whatever the driver's
//!   auto-placement policy.
//!
//! Every rule (overlaps, instance caps, media-engine singletons, CI placement) is checked by
//! running the very `MigState` operations the simulator uses on scratch copies, never by a
//! second implementation of the rules. The algorithm is described in docs/mig-model.md
//! ("Planner"). The planner never performs I/O and never mutates the state it is given.
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::catalog::GpuModel;
use crate::ids::{CiProfileId, ComputeInstanceId, GiProfileId, GpuInstanceId, Placement};
use crate::state::MigState;

mod apply;
mod best_fit;
mod ci;
mod diagnose;
mod layout;
mod search;

pub use apply::{ApplyError, apply_plan};
pub use best_fit::best_fit_placement;

/// One GI wanted in the target layout.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DesiredGi {
    pub profile: GiProfileId,
    /// Pin to this placement; `None` lets the planner choose.
    pub placement: Option<Placement>,
    /// CI profiles to create inside; empty means one default (full-GI) CI. The order is not
    /// significant: `[a, b]` and `[b, a]` describe the same split.
    pub compute: Vec<CiProfileId>,
}

impl DesiredGi {
    /// A GI of `profile`, placed by the planner, with one default CI.
    pub fn new(profile: GiProfileId) -> Self {
        DesiredGi {
            profile,
            placement: None,
            compute: Vec::new(),
        }
    }

    /// The same GI pinned to `placement`.
    pub fn at(mut self, placement: Placement) -> Self {
        self.placement = Some(placement);
        self
    }

    /// The same GI split into these CI profiles instead of one default CI.
    pub fn with_compute(mut self, compute: impl IntoIterator<Item = CiProfileId>) -> Self {
        self.compute = compute.into_iter().collect();
        self
    }
}

/// The target layout of one GPU.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DesiredLayout {
    pub gpu_instances: Vec<DesiredGi>,
}

impl DesiredLayout {
    /// Whether `state` is exactly this layout: its GIs can be paired one to one with the desired
    /// GIs (same profile, the pinned placement where one is pinned, the same multiset of CI
    /// profiles, an empty `compute` meaning one default CI), with no GI left over. Unknown
    /// profiles make it `false`.
    pub fn is_satisfied_by(&self, state: &MigState) -> bool {
        layout::is_satisfied_by(self, state)
    }
}

/// One step of a plan, to be executed in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Step {
    /// Destroy an existing CI (never an in-use one).
    DestroyCi {
        gi: GpuInstanceId,
        ci: ComputeInstanceId,
    },
    /// Destroy an existing GI (never an in-use one); its CIs are destroyed by earlier steps.
    DestroyGi { gi: GpuInstanceId },
    /// Always with an explicit placement so execution is deterministic across drivers.
    CreateGi {
        profile: GiProfileId,
        placement: Placement,
    },
    /// `gi_placement` identifies the GI (created earlier in the plan or existing): ids of new GIs
    /// are only known once the driver returns them. CIs are created without a placement (the
    /// driver takes the first free legal one); the planner orders them so that this succeeds.
    CreateCi {
        gi_placement: Placement,
        profile: CiProfileId,
    },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::DestroyCi { gi, ci } => write!(f, "destroy CI {} in GI {}", ci.0, gi.0),
            Step::DestroyGi { gi } => write!(f, "destroy GI {}", gi.0),
            Step::CreateGi { profile, placement } => {
                write!(f, "create GI profile {} at {}", profile.0, placement)
            }
            Step::CreateCi {
                gi_placement,
                profile,
            } => write!(
                f,
                "create CI profile {} in the GI at {}",
                profile.0, gi_placement
            ),
        }
    }
}

/// An executable plan.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Plan {
    /// Steps in execution order: CI destroys, GI destroys, GI creates, CI creates.
    pub steps: Vec<Step>,
    /// Existing GIs that survive the plan (possibly with CI changes), in id order.
    pub kept: Vec<GpuInstanceId>,
}

impl Plan {
    /// True when the current state already is the desired layout.
    pub fn is_noop(&self) -> bool {
        self.steps.is_empty()
    }

    /// One human-readable line per step, with profile names and placements taken from
    /// `current` (the state the plan was made for), e.g.
    /// `destroy GI 7 (1g.5gb at 4:1)` or `create GI 3g.20gb at 4:4`.
    pub fn describe(&self, current: &MigState) -> Vec<String> {
        let model = current.gpu_model();
        // Which GI profile sits at each placement as the plan goes: CreateCi names its GI by
        // placement only, and a destroyed GI's placement may be reused by another profile.
        let mut at: Vec<(Placement, GiProfileId)> = current
            .gpu_instances
            .values()
            .map(|g| (g.placement, g.profile))
            .collect();
        let mut lines = Vec::with_capacity(self.steps.len());
        for step in &self.steps {
            lines.push(describe_step(step, current, model, &at));
            match step {
                Step::DestroyGi { gi } => {
                    if let Some(g) = current.gpu_instances.get(gi) {
                        at.retain(|(p, _)| *p != g.placement);
                    }
                }
                Step::CreateGi { profile, placement } => at.push((*placement, *profile)),
                Step::DestroyCi { .. } | Step::CreateCi { .. } => {}
            }
        }
        lines
    }
}

/// Why a layout cannot be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A desired GI names a profile this GPU model does not have.
    #[error("unknown GI profile {} for this GPU; list the model's profiles and use one of their ids", .0.0)]
    UnknownProfile(GiProfileId),
    /// A desired GI asks for a CI profile its GI profile does not offer.
    #[error("CI profile {} is not offered inside GI profile {}; pick one of that profile's CI profiles", .ci.0, .gi.0)]
    UnknownCiProfile { gi: GiProfileId, ci: CiProfileId },
    /// A desired GI is pinned to a placement that is not legal for its profile.
    #[error("placement {} is not a legal placement for GI profile {}; remove the pin or use a legal start", .placement, .profile.0)]
    InvalidPlacement {
        profile: GiProfileId,
        placement: Placement,
    },
    /// The layout cannot exist on this GPU model at all (even empty), or a CI split cannot exist
    /// inside its GI; the message says which numbers do not add up.
    #[error("{0}")]
    Infeasible(String),
    /// The layout fits an empty GPU but in-use GIs (named in `gis`) are not part of it or
    /// occupy slices it needs; `reason` says which and why.
    #[error("GPU instances in use block the layout: {reason}")]
    BlockedByInUse {
        gis: Vec<GpuInstanceId>,
        reason: String,
    },
    /// A plan failed the planner's own replay check: a bug in vmig, never a property of the
    /// layout. Please report it with the state and the layout.
    #[error("internal planner error (please report): {0}")]
    Internal(String),
}

/// Options of [`plan_with_options`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlanOptions {
    /// Instead of refusing, keep in-use GIs that are not part of the layout and drop the
    /// desired GIs that then do not fit (the fewest possible); [`PlanOutcome`] says which.
    pub allow_partial: bool,
}

/// A plan plus what it leaves out (only non-empty with [`PlanOptions::allow_partial`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlanOutcome {
    pub plan: Plan,
    /// Desired GIs the plan does not create (they do not fit next to in-use GIs), as given in
    /// the layout.
    pub dropped: Vec<DesiredGi>,
    /// In-use GIs that are kept although they are not part of the desired layout.
    pub in_use_outside: Vec<GpuInstanceId>,
}

impl PlanOutcome {
    /// True when the plan reaches the whole desired layout.
    pub fn is_complete(&self) -> bool {
        self.dropped.is_empty() && self.in_use_outside.is_empty()
    }
}

/// Plan the shortest safe sequence of steps from `current` to `desired`. Never destroys an
/// in-use instance. Exact and deterministic.
///
/// "Shortest" counts steps: each existing GI is either kept (changing only the CIs that
/// differ) or destroyed with its CIs, and each desired GI not served by a kept one is created
/// with its CIs; among all such choices whose new GIs can be placed, the fewest steps win.
pub fn plan(current: &MigState, desired: &DesiredLayout) -> Result<Plan, PlanError> {
    plan_with_options(current, desired, PlanOptions::default()).map(|o| o.plan)
}

/// [`plan`] with options. Without `allow_partial` the outcome is always complete; with it,
/// in-use GIs outside the layout are kept and the largest number of desired GIs that can then
/// be placed is planned (ties: drop the fewest memory slices, then the GIs listed last).
pub fn plan_with_options(
    current: &MigState,
    desired: &DesiredLayout,
    options: PlanOptions,
) -> Result<PlanOutcome, PlanError> {
    let problem = search::Problem::new(current, desired)?;
    let outcome = if options.allow_partial {
        problem.solve_partial()?
    } else {
        problem.solve_strict()?
    };
    // Self-check: the plan must replay on the real state operations. A failure is a planner bug.
    let mut replay = current.clone();
    if let Err(e) = apply_plan(&mut replay, &outcome.plan) {
        return Err(PlanError::Internal(format!(
            "the computed plan does not replay: {e}"
        )));
    }
    Ok(outcome)
}

fn gi_name(model: &GpuModel, profile: GiProfileId) -> String {
    model
        .gi_profile(profile)
        .map_or_else(|| format!("profile {}", profile.0), |p| p.name.to_string())
}

fn describe_step(
    step: &Step,
    current: &MigState,
    model: &GpuModel,
    at: &[(Placement, GiProfileId)],
) -> String {
    let gi_label = |gi: GpuInstanceId| match current.gpu_instances.get(&gi) {
        Some(g) => format!(
            "GI {} ({} at {})",
            gi.0,
            gi_name(model, g.profile),
            g.placement
        ),
        None => format!("GI {}", gi.0),
    };
    match step {
        Step::DestroyCi { gi, ci } => {
            let ci_name = current
                .gpu_instances
                .get(gi)
                .and_then(|g| {
                    let c = g.compute_instances.get(ci)?;
                    model.gi_profile(g.profile)?.ci_profile(c.profile)
                })
                .map_or_else(String::new, |p| format!(" ({})", p.name));
            format!("destroy CI {}{} in {}", ci.0, ci_name, gi_label(*gi))
        }
        Step::DestroyGi { gi } => format!("destroy {}", gi_label(*gi)),
        Step::CreateGi { profile, placement } => {
            format!("create GI {} at {}", gi_name(model, *profile), placement)
        }
        Step::CreateCi {
            gi_placement,
            profile,
        } => {
            let ci_name = at
                .iter()
                .find(|(p, _)| p == gi_placement)
                .and_then(|(_, gi)| model.gi_profile(*gi)?.ci_profile(*profile))
                .map_or_else(|| format!("profile {}", profile.0), |c| c.name.to_string());
            format!("create CI {} in the GI at {}", ci_name, gi_placement)
        }
    }
}
