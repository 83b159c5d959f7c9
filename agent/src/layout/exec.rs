//! Executing a planner [`Plan`] on one GPU, with rollback.
//!
//! The executor only talks to a [`MigBackend`]: [`NvmlBackend`] drives a real (or simulated)
//! GPU through the agent's checked operations, [`SimBackend`] applies the same steps to an
//! in-memory [`MigState`] so that property tests can run tens of thousands of applies in
//! seconds, with failures injected at any step.
//!
//! Rollback: every step that succeeded is journalled with what is needed to undo it (a
//! destroyed GI's profile and placement, a destroyed CI's profile and placement). When a step
//! fails, the journal is undone in reverse: created CIs and GIs are destroyed, destroyed GIs
//! are recreated at the same placement and destroyed CIs at the same compute placement. The
//! GPU is then read back and compared with the state before the apply by *shape* (profiles,
//! placements, CI profiles and placements): driver-assigned ids of recreated instances may
//! differ, and the report says so.
use std::collections::BTreeMap;

use mig::{
    CiProfileId, ComputeInstanceId, GiProfileId, GpuInstanceId, MigState, Placement, Plan, Step,
};
use serde::Serialize;

use crate::error::{AgentError, ExitCode};
use crate::nvml::Gpu;
use crate::operations as ops;

/// A refused or failed backend call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExecError {
    /// What failed, naming the GPU and the instance.
    pub message: String,
    /// The agent exit code this failure maps to (3 state, 4 NVML).
    pub exit_code: ExitCode,
}

impl From<AgentError> for ExecError {
    fn from(e: AgentError) -> Self {
        ExecError {
            exit_code: e.exit_code(),
            message: e.to_string(),
        }
    }
}

/// The MIG operations a plan needs on one GPU.
pub trait MigBackend {
    /// Destroy a compute instance (refused while in use).
    fn destroy_ci(&mut self, gi: GpuInstanceId, ci: ComputeInstanceId) -> Result<(), ExecError>;
    /// Destroy a GPU instance without CIs (refused while in use).
    fn destroy_gi(&mut self, gi: GpuInstanceId) -> Result<(), ExecError>;
    /// Create a GI at an explicit placement; returns the id the driver gave it.
    fn create_gi(
        &mut self,
        profile: GiProfileId,
        placement: Placement,
    ) -> Result<GpuInstanceId, ExecError>;
    /// Create a CI in `gi`, at `placement` if given (rollback), else where the driver puts it.
    fn create_ci(
        &mut self,
        gi: GpuInstanceId,
        profile: CiProfileId,
        placement: Option<Placement>,
    ) -> Result<ComputeInstanceId, ExecError>;
    /// Read the GPU's layout now (with in-use flags).
    fn snapshot(&mut self) -> Result<MigState, ExecError>;
}

/// A pure in-memory backend over [`MigState`], for tests and dry runs.
#[derive(Debug, Clone)]
pub struct SimBackend {
    pub state: MigState,
    /// Fail the n-th call (0-based, counting every mutating call) with an NVML-like error.
    pub fail_at: Option<usize>,
    calls: usize,
}

impl SimBackend {
    /// A backend holding `state`.
    pub fn new(state: MigState) -> Self {
        SimBackend {
            state,
            fail_at: None,
            calls: 0,
        }
    }

    fn tick(&mut self) -> Result<(), ExecError> {
        let n = self.calls;
        self.calls += 1;
        if self.fail_at == Some(n) {
            return Err(ExecError {
                message: format!("injected failure at call {n}"),
                exit_code: ExitCode::Nvml,
            });
        }
        Ok(())
    }
}

fn sim_err(e: mig::MigError) -> ExecError {
    let exit_code = match e {
        mig::MigError::GiInUse(_) | mig::MigError::CiInUse { .. } => ExitCode::State,
        _ => ExitCode::Nvml,
    };
    ExecError {
        message: e.to_string(),
        exit_code,
    }
}

impl MigBackend for SimBackend {
    fn destroy_ci(&mut self, gi: GpuInstanceId, ci: ComputeInstanceId) -> Result<(), ExecError> {
        self.tick()?;
        self.state.destroy_ci(gi, ci).map_err(sim_err)
    }
    fn destroy_gi(&mut self, gi: GpuInstanceId) -> Result<(), ExecError> {
        self.tick()?;
        self.state.destroy_gi(gi).map_err(sim_err)
    }
    fn create_gi(
        &mut self,
        profile: GiProfileId,
        placement: Placement,
    ) -> Result<GpuInstanceId, ExecError> {
        self.tick()?;
        self.state
            .create_gi(profile, Some(placement))
            .map_err(sim_err)
    }
    fn create_ci(
        &mut self,
        gi: GpuInstanceId,
        profile: CiProfileId,
        placement: Option<Placement>,
    ) -> Result<ComputeInstanceId, ExecError> {
        self.tick()?;
        self.state
            .create_ci(gi, profile, placement)
            .map_err(sim_err)
    }
    fn snapshot(&mut self) -> Result<MigState, ExecError> {
        Ok(self.state.clone())
    }
}

/// The agent's checked NVML operations on one GPU (the same refusals as `vmig-agent mig …`).
#[derive(Debug)]
pub struct NvmlBackend<'a, 'n> {
    gpu: &'a Gpu<'n>,
}

impl<'a, 'n> NvmlBackend<'a, 'n> {
    /// A backend for `gpu` (MIG must be enabled).
    pub fn new(gpu: &'a Gpu<'n>) -> Self {
        NvmlBackend { gpu }
    }
}

impl MigBackend for NvmlBackend<'_, '_> {
    fn destroy_ci(&mut self, gi: GpuInstanceId, ci: ComputeInstanceId) -> Result<(), ExecError> {
        ops::destroy_compute_instance(self.gpu, gi, ci)?;
        Ok(())
    }
    fn destroy_gi(&mut self, gi: GpuInstanceId) -> Result<(), ExecError> {
        ops::destroy_gpu_instance(self.gpu, gi)?;
        Ok(())
    }
    fn create_gi(
        &mut self,
        profile: GiProfileId,
        placement: Placement,
    ) -> Result<GpuInstanceId, ExecError> {
        let profiles = ops::gi_profiles(self.gpu)?;
        let p = profiles
            .iter()
            .find(|p| p.id == profile)
            .ok_or_else(|| ExecError {
                message: format!(
                    "GPU {} offers no GPU instance profile {}",
                    self.gpu.index(),
                    profile
                ),
                exit_code: ExitCode::State,
            })?;
        Ok(ops::create_gpu_instance(self.gpu, p, Some(placement.start))?.id())
    }
    fn create_ci(
        &mut self,
        gi: GpuInstanceId,
        profile: CiProfileId,
        placement: Option<Placement>,
    ) -> Result<ComputeInstanceId, ExecError> {
        let handle = ops::find_gpu_instance(self.gpu, gi)?;
        if let Some(p) = placement {
            return handle
                .create_ci(profile, Some(p))
                .map(|c| c.id())
                .map_err(|e| {
                    AgentError::nvml(
                        self.gpu.index(),
                        format!("recreate compute instance profile {profile} at {p} in GPU instance {gi}"),
                        e,
                    )
                    .into()
                });
        }
        let profiles = ops::ci_profiles(self.gpu, &handle)?;
        let p = profiles
            .iter()
            .find(|p| p.id == profile)
            .ok_or_else(|| ExecError {
                message: format!(
                    "GPU instance {gi} on GPU {} offers no compute instance profile {profile}",
                    self.gpu.index()
                ),
                exit_code: ExitCode::State,
            })?;
        Ok(ops::create_compute_instance(self.gpu, &handle, p)?.id())
    }
    fn snapshot(&mut self) -> Result<MigState, ExecError> {
        let g = crate::observe::observe_gpu(self.gpu)
            .map_err(|e| AgentError::nvml(self.gpu.index(), "read the MIG state", e))?;
        g.to_mig_state().ok_or_else(|| ExecError {
            message: format!(
                "GPU {} ({}) is not a GPU model vmig knows",
                self.gpu.index(),
                g.name
            ),
            exit_code: ExitCode::State,
        })
    }
}

/// One executed step, as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DoneStep {
    #[serde(flatten)]
    pub step: Step,
    /// Human-readable, with the ids the driver returned.
    pub text: String,
    /// The GI a `create_gi` got, or the GI a `create_ci` went into.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gi_id: Option<GpuInstanceId>,
    /// The CI a `create_ci` got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci_id: Option<ComputeInstanceId>,
}

/// How undoing went after a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rollback {
    /// Undo actions taken, in order.
    pub undone: Vec<String>,
    /// Undo actions that failed (the GPU is then in neither state).
    pub failed: Vec<String>,
    /// The GPU's layout read back after the rollback.
    pub state_now: Option<MigState>,
    /// Whether that layout has the same shape as before the apply (ids may differ).
    pub restored: bool,
}

/// What executing a plan did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Execution {
    pub done: Vec<DoneStep>,
    /// The step that failed (0-based), its text and the error; `None` when all succeeded.
    pub failed: Option<(usize, String, ExecError)>,
    pub rollback: Option<Rollback>,
}

impl Serialize for ExecError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.message)
    }
}

/// A journal entry: what to do to undo a done step.
#[derive(Debug, Clone)]
enum Undo {
    DestroyCi {
        gi_placement: Placement,
        ci: ComputeInstanceId,
    },
    DestroyGi {
        placement: Placement,
    },
    CreateGi {
        profile: GiProfileId,
        placement: Placement,
    },
    CreateCi {
        gi_placement: Placement,
        profile: CiProfileId,
        placement: Placement,
    },
}

/// One GI of a [`shape`]: profile, placement, and its CIs' profiles and placements (sorted).
pub type GiShape = (GiProfileId, Placement, Vec<(CiProfileId, Placement)>);

/// The shape of a layout: what a layout file can say plus CI placements; ids and in-use
/// flags left out. Sorted, so equal layouts have equal shapes.
pub fn shape(state: &MigState) -> Vec<GiShape> {
    let mut v: Vec<_> = state
        .gpu_instances
        .values()
        .map(|g| {
            let mut cis: Vec<_> = g
                .compute_instances
                .values()
                .map(|c| (c.profile, c.placement))
                .collect();
            cis.sort();
            (g.profile, g.placement, cis)
        })
        .collect();
    v.sort();
    v
}

/// Execute `plan` (made for `before`) through `backend`. On the first failing step, undo what
/// was done and read the GPU back. `describe` gives each step's text (from [`Plan::describe`]).
pub fn execute(backend: &mut dyn MigBackend, before: &MigState, plan: &Plan) -> Execution {
    let texts = plan.describe(before);
    // GI id by placement, as the plan goes (CreateCi names its GI by placement).
    let mut at: BTreeMap<Placement, GpuInstanceId> = before
        .gpu_instances
        .values()
        .map(|g| (g.placement, g.id))
        .collect();
    let mut journal: Vec<Undo> = Vec::new();
    let mut done = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        let text = texts.get(i).cloned().unwrap_or_else(|| step.to_string());
        let result = run_step(backend, before, step, &mut at, &mut journal);
        match result {
            Ok((gi_id, ci_id)) => {
                let mut t = text;
                match (step, gi_id, ci_id) {
                    (Step::CreateGi { .. }, Some(g), _) => t.push_str(&format!(" -> GI {g}")),
                    (Step::CreateCi { .. }, Some(g), Some(c)) => {
                        t.push_str(&format!(" -> CI {c} in GI {g}"))
                    }
                    _ => {}
                }
                done.push(DoneStep {
                    step: step.clone(),
                    text: t,
                    gi_id,
                    ci_id,
                });
            }
            Err(e) => {
                let rollback = roll_back(backend, before, journal);
                return Execution {
                    done,
                    failed: Some((i, text, e)),
                    rollback: Some(rollback),
                };
            }
        }
    }
    Execution {
        done,
        failed: None,
        rollback: None,
    }
}

type StepIds = (Option<GpuInstanceId>, Option<ComputeInstanceId>);

fn run_step(
    backend: &mut dyn MigBackend,
    before: &MigState,
    step: &Step,
    at: &mut BTreeMap<Placement, GpuInstanceId>,
    journal: &mut Vec<Undo>,
) -> Result<StepIds, ExecError> {
    let missing = |what: String| ExecError {
        message: format!("{what}; the GPU changed since the plan was made, run plan again"),
        exit_code: ExitCode::State,
    };
    match step {
        Step::DestroyCi { gi, ci } => {
            let g = before
                .gpu_instance(*gi)
                .ok_or_else(|| missing(format!("GPU instance {gi} is gone")))?;
            let c = g.compute_instances.get(ci).ok_or_else(|| {
                missing(format!(
                    "compute instance {ci} in GPU instance {gi} is gone"
                ))
            })?;
            backend.destroy_ci(*gi, *ci)?;
            journal.push(Undo::CreateCi {
                gi_placement: g.placement,
                profile: c.profile,
                placement: c.placement,
            });
            Ok((Some(*gi), Some(*ci)))
        }
        Step::DestroyGi { gi } => {
            let g = before
                .gpu_instance(*gi)
                .ok_or_else(|| missing(format!("GPU instance {gi} is gone")))?;
            backend.destroy_gi(*gi)?;
            at.remove(&g.placement);
            journal.push(Undo::CreateGi {
                profile: g.profile,
                placement: g.placement,
            });
            Ok((Some(*gi), None))
        }
        Step::CreateGi { profile, placement } => {
            let id = backend.create_gi(*profile, *placement)?;
            at.insert(*placement, id);
            journal.push(Undo::DestroyGi {
                placement: *placement,
            });
            Ok((Some(id), None))
        }
        Step::CreateCi {
            gi_placement,
            profile,
        } => {
            let gi = *at
                .get(gi_placement)
                .ok_or_else(|| missing(format!("no GPU instance at {gi_placement}")))?;
            let ci = backend.create_ci(gi, *profile, None)?;
            journal.push(Undo::DestroyCi {
                gi_placement: *gi_placement,
                ci,
            });
            Ok((Some(gi), Some(ci)))
        }
    }
}

fn roll_back(backend: &mut dyn MigBackend, before: &MigState, journal: Vec<Undo>) -> Rollback {
    let mut undone = Vec::new();
    let mut failed = Vec::new();
    for undo in journal.into_iter().rev() {
        // Ids are looked up afresh: recreated GIs may have new ids.
        let now = match backend.snapshot() {
            Ok(s) => s,
            Err(e) => {
                failed.push(format!("read the GPU state: {e}"));
                break;
            }
        };
        let gi_at = |p: Placement| now.gi_at(p).map(|g| g.id);
        let (what, r) = match undo {
            Undo::DestroyCi { gi_placement, ci } => {
                let what = format!("destroy CI {ci} in the GI at {gi_placement}");
                match gi_at(gi_placement) {
                    Some(gi) => (what, backend.destroy_ci(gi, ci).map(|()| String::new())),
                    None => (what, Err(no_gi(gi_placement))),
                }
            }
            Undo::DestroyGi { placement } => {
                let what = format!("destroy the GI at {placement}");
                match gi_at(placement) {
                    Some(gi) => (what, backend.destroy_gi(gi).map(|()| String::new())),
                    None => (what, Err(no_gi(placement))),
                }
            }
            Undo::CreateGi { profile, placement } => {
                let name = gi_name(before, profile);
                (
                    format!("recreate GI {name} at {placement}"),
                    backend
                        .create_gi(profile, placement)
                        .map(|id| format!(" -> GI {id}")),
                )
            }
            Undo::CreateCi {
                gi_placement,
                profile,
                placement,
            } => {
                let what = format!(
                    "recreate CI profile {profile} at {placement} in the GI at {gi_placement}"
                );
                match gi_at(gi_placement) {
                    Some(gi) => (
                        what,
                        backend
                            .create_ci(gi, profile, Some(placement))
                            .map(|id| format!(" -> CI {id} in GI {gi}")),
                    ),
                    None => (what, Err(no_gi(gi_placement))),
                }
            }
        };
        match r {
            Ok(suffix) => undone.push(format!("{what}{suffix}")),
            Err(e) => failed.push(format!("{what}: {e}")),
        }
    }
    let state_now = backend.snapshot().ok();
    let restored = state_now
        .as_ref()
        .is_some_and(|s| shape(s) == shape(before));
    Rollback {
        undone,
        failed,
        state_now,
        restored,
    }
}

fn no_gi(p: Placement) -> ExecError {
    ExecError {
        message: format!("no GPU instance at {p} any more"),
        exit_code: ExitCode::State,
    }
}

fn gi_name(state: &MigState, profile: GiProfileId) -> String {
    state
        .try_gpu_model()
        .and_then(|m| m.gi_profile(profile))
        .map_or_else(|| format!("profile {profile}"), |p| p.name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mig::{DesiredGi, DesiredLayout, GpuModel};

    fn a100() -> &'static GpuModel {
        GpuModel::by_key("a100-pcie-40gb").unwrap()
    }

    fn gi(model: &GpuModel, name: &str) -> GiProfileId {
        model.gi_profile_by_name(name).unwrap().id
    }

    #[test]
    fn executes_and_reports_ids() {
        let m = a100();
        let before = MigState::new(m);
        let want = DesiredLayout {
            gpu_instances: vec![
                DesiredGi::new(gi(m, "3g.20gb")),
                DesiredGi::new(gi(m, "1g.5gb")),
            ],
        };
        let plan = mig::plan(&before, &want).unwrap();
        let mut b = SimBackend::new(before.clone());
        let ex = execute(&mut b, &before, &plan);
        assert!(ex.failed.is_none());
        assert!(want.is_satisfied_by(&b.state));
        assert!(ex.done.iter().any(|d| d.text.contains("-> GI")));
    }

    #[test]
    fn failure_midway_rolls_back_to_the_same_shape() {
        let m = a100();
        let mut before = MigState::new(m);
        let g = before.create_gi(gi(m, "2g.10gb"), None).unwrap();
        let one_c = m
            .gi_profile_by_name("2g.10gb")
            .unwrap()
            .ci_profile_by_name("1c.2g.10gb")
            .unwrap()
            .id;
        before.create_ci(g, one_c, None).unwrap();
        before.create_ci(g, one_c, None).unwrap();
        let want = DesiredLayout {
            gpu_instances: vec![DesiredGi::new(gi(m, "7g.40gb"))],
        };
        let plan = mig::plan(&before, &want).unwrap();
        for k in 0..plan.steps.len() {
            let mut b = SimBackend::new(before.clone());
            b.fail_at = Some(k);
            let ex = execute(&mut b, &before, &plan);
            let (i, _, _) = ex.failed.clone().unwrap();
            assert_eq!(i, k);
            let rb = ex.rollback.unwrap();
            assert!(rb.failed.is_empty(), "{rb:?}");
            assert!(rb.restored);
            assert_eq!(shape(&b.state), shape(&before));
        }
    }
}
