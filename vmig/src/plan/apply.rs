//! `vmig plan --apply`: the planned moves, executed one at a time by
//! [`crate::assign::move_one`] (locks, fenced reservation, journal, interrupts), cold moves
//! first when that order is legal too (they take no stun time and need no vMotion).
//!
//! Before each move, under the VM's and the destination host's locks, the plan is checked
//! again on a fresh read of the scope: the remaining moves are replayed on the fresh GPU
//! states (each GI still where the plan found it, each destination still free) and must still
//! make the wanted number fit. Anything else (another admin's assign, a VM powered on, an
//! agent that reported a change) stops the apply before that move with "re-plan" (exit
//! status 5); the moves before it stay done.

use serde::Serialize;

use mig::defrag::{DefragLimits, FleetGpu, Move, MoveKind, plan_defrag};
use mig::{GpuModel, VgpuType};

use super::{Fleet, FleetOptions, PlanAnswer, fleet_with};
use crate::analysis::Analysis;
use crate::assign::{MoveEnd, MoveOrder, move_one};
use crate::error::AdminError;
use crate::exit::ExitCode;
use crate::inventory::{Progress, Scope};
use crate::snapshot::analyse;
use crate::{Connection, Refusal, RefusalKind};

/// What `apply` needs besides the plan.
pub(super) struct Context<'a> {
    pub conns: &'a [Connection],
    pub scope: &'a Scope,
    pub vtype: &'a VgpuType,
    pub count: u32,
    pub limits: DefragLimits,
    pub opts: &'a FleetOptions,
    pub progress: &'a dyn Progress,
}

/// One move done.
#[derive(Debug, Clone, Serialize)]
pub struct AppliedMove {
    /// Its number in the plan.
    pub step: usize,
    pub kind: MoveKind,
    pub vm: String,
    pub from_host: String,
    pub to_host: String,
    pub to_gpu: String,
    pub to: mig::Placement,
}

/// Why the apply stopped before a move (the plan no longer holds).
#[derive(Debug, Clone, Serialize)]
pub struct Stopped {
    /// The move not made (its number in the plan).
    pub step: usize,
    /// What changed.
    pub reason: String,
}

/// What `--apply` did.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    /// The moves made, in the order made.
    pub applied: Vec<AppliedMove>,
    /// Set when it stopped because the inventory changed: plan again.
    pub stopped: Option<Stopped>,
}

/// The plan and what was applied, as `--json` prints them.
#[derive(Debug, Serialize)]
pub struct Applied<'a> {
    pub plan: &'a PlanAnswer,
    pub apply: &'a ApplyReport,
}

impl ApplyReport {
    pub fn exit_code(&self) -> ExitCode {
        if self.stopped.is_some() {
            ExitCode::Replan
        } else {
            ExitCode::Ok
        }
    }

    pub fn render_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        for m in &self.applied {
            let hosts = if m.from_host == m.to_host {
                format!("on host {}", m.from_host)
            } else {
                format!("from host {} to host {}", m.from_host, m.to_host)
            };
            writeln!(
                out,
                "applied move {}: VM {} {hosts} ({} at {})",
                m.step, m.vm, m.to_gpu, m.to
            )?;
        }
        match &self.stopped {
            Some(s) => writeln!(
                out,
                "stopped before move {}: {}; the moves before it are done: re-plan (run vmig plan again)",
                s.step, s.reason
            ),
            None if self.applied.len() == 1 => writeln!(out, "the move was applied"),
            None => writeln!(out, "all {} moves applied", self.applied.len()),
        }
    }
}

/// The order the moves run in: cold ones (and re-layouts of powered-off VMs' slices) before
/// live ones when every move is still legal in that order, else the plan's order.
fn run_order(fleet: &Fleet, moves: &[Move]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..moves.len()).collect();
    order.sort_by_key(|&i| moves[i].kind == MoveKind::Live);
    let mut gpus: Vec<FleetGpu> = fleet.gpus.clone();
    let legal = order
        .iter()
        .all(|&i| replay(&mut gpus, &moves[i], Some).is_ok());
    if legal {
        order
    } else {
        (0..moves.len()).collect()
    }
}

/// Replays `m` on `gpus` (its GPUs found through `gpu`, which maps the plan's GPU index to
/// one of `gpus`): the GI at `m.from` is destroyed and re-created at `m.to`.
fn replay(
    gpus: &mut [FleetGpu],
    m: &Move,
    gpu: impl Fn(usize) -> Option<usize>,
) -> Result<(), String> {
    let (Some(from), Some(to)) = (gpu(m.from_gpu), gpu(m.to_gpu)) else {
        return Err("a GPU of the plan is no longer usable (agent report or MIG mode)".into());
    };
    let state = &mut gpus[from].state;
    let model = state.gpu_model();
    let profile = model
        .gi_profile_by_name(&m.profile)
        .ok_or_else(|| format!("GPU model {} has no profile {}", model.key, m.profile))?;
    let gi = state
        .gi_at(m.from)
        .filter(|g| g.profile == profile.id)
        .map(|g| g.id)
        .ok_or_else(|| {
            format!(
                "the {} at {} on {} is no longer there",
                m.profile, m.from, gpus[from].name
            )
        })?;
    // The GI leaves its GPU with its VM (a running one's CIs and use go with it): not a
    // driver operation, so it is taken out of the state rather than destroyed.
    gpus[from].state.gpu_instances.remove(&gi);
    gpus[to]
        .state
        .create_gi(profile.id, Some(m.to))
        .map(drop)
        .map_err(|_| format!("placement {} on {} is no longer free", m.to, gpus[to].name))
}

/// Whether the moves `rest` still make `ctx.count` fit on a fresh read: `Some(why)` if not.
async fn recheck(
    ctx: &Context<'_>,
    model: &'static GpuModel,
    planned: &Fleet,
    rest: &[Move],
) -> Result<Option<String>, AdminError> {
    let fresh = analyse(ctx.conns, ctx.scope, ctx.progress).await?;
    let now = fleet_with(&fresh, ctx.opts);
    let mut gpus = now.gpus.clone();
    let index = |planned_gpu: usize| {
        let was = planned.places.get(planned_gpu)?;
        now.places.iter().position(|p| {
            p.gpu_uuid == was.gpu_uuid && p.host == was.host && p.vcenter == was.vcenter
        })
    };
    for m in rest {
        if let Err(why) = replay(&mut gpus, m, index) {
            return Ok(Some(why));
        }
    }
    let profile = ctx
        .vtype
        .gi_profile(model)
        .ok_or_else(|| AdminError::Internal("the type lost its GI profile".into()))?;
    let fits = plan_defrag(&gpus, model, profile.id, 0, ctx.limits)
        .map(|p| p.fits_before)
        .unwrap_or(0);
    Ok((fits < ctx.count).then(|| {
        format!(
            "after the remaining moves only {fits} of the {} wanted {} would fit (capacity was taken meanwhile)",
            ctx.count, ctx.vtype
        )
    }))
}

/// Resolves move `m` (number `step`) to vCenter objects.
fn order_of(
    analysis: &Analysis,
    fleet: &Fleet,
    model: &'static GpuModel,
    m: &Move,
    step: usize,
) -> Result<(usize, MoveOrder), AdminError> {
    let owner = fleet.owners[m.origin_gpu].get(&m.gi);
    let vm_name = owner.map_or_else(|| "?".to_string(), |o| o.vm.clone());
    let refuse = |why: String| {
        AdminError::Refused(Refusal::new(
            RefusalKind::VmNotFound,
            &vm_name,
            None,
            format!("move {step} cannot be applied: {why}; nothing of it was changed"),
        ))
    };
    let owner = owner.ok_or_else(|| refuse("the GI backs no VM vmig knows".into()))?;
    let vm_moref = owner
        .vm_moref
        .clone()
        .ok_or_else(|| refuse(format!("VM {} is not in the inventory", owner.vm)))?;
    let from = &analysis.hosts[fleet.places[m.from_gpu].host_index];
    let to = &analysis.hosts[fleet.places[m.to_gpu].host_index];
    if from.vcenter != to.vcenter {
        return Err(refuse("the move would change vCenter".into()));
    }
    let profile = model
        .gi_profile_by_name(&m.profile)
        .ok_or_else(|| refuse(format!("profile {} is unknown", m.profile)))?;
    let vgpu_type = owner
        .vgpu_type
        .clone()
        .ok_or_else(|| refuse(format!("the vGPU type of VM {} is unknown", owner.vm)))?;
    Ok((
        to.vcenter,
        MoveOrder {
            step,
            kind: m.kind,
            vm: vcenter_client::VmRef::new(vm_moref),
            vm_name: owner.vm.clone(),
            from_host: from.host.moref.clone(),
            from_host_name: from.host.name.clone(),
            to_host: to.host.moref.clone(),
            to_host_name: to.host.name.clone(),
            to_gpu: fleet.places[m.to_gpu].gpu_uuid.clone(),
            to: m.to,
            profile: profile.name.to_string(),
            profile_id: profile.id,
            vgpu_type,
        },
    ))
}

/// Executes `answer`'s moves in [`run_order`], stopping at the first that fails (an error
/// naming it and `vmig repair`) or finds the plan changed (the report's `stopped`).
pub(super) async fn apply(
    ctx: &Context<'_>,
    analysis: &Analysis,
    fleet: &Fleet,
    answer: &PlanAnswer,
) -> Result<ApplyReport, AdminError> {
    let model = GpuModel::by_key(&answer.model)
        .ok_or_else(|| AdminError::Internal(format!("model {} vanished", answer.model)))?;
    let order = run_order(fleet, &answer.raw);
    let mut report = ApplyReport {
        applied: Vec::new(),
        stopped: None,
    };
    for (k, &i) in order.iter().enumerate() {
        let m = &answer.raw[i];
        let (vi, mv) = order_of(analysis, fleet, model, m, i + 1)?;
        let rest: Vec<Move> = order[k..].iter().map(|&j| answer.raw[j].clone()).collect();
        let check = async || recheck(ctx, model, fleet, &rest).await;
        let ended = move_one(&ctx.conns[vi], &mv, check).await.map_err(|e| {
            let done = if report.applied.is_empty() {
                "no move was made before it".to_string()
            } else {
                format!(
                    "move{} {} done",
                    if report.applied.len() == 1 { "" } else { "s" },
                    report
                        .applied
                        .iter()
                        .map(|a| a.step.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let message = format!(
                "plan --apply stopped at {}: {e} ({done}; `vmig repair --vm {}` finishes or undoes anything this move left half-done, then run vmig plan again)",
                mv.describe(),
                mv.vm_name
            );
            match e {
                AdminError::Refused(r) => AdminError::Refused(Refusal::new(
                    r.kind,
                    &r.vm,
                    r.host.as_deref(),
                    message,
                )),
                _ => AdminError::Incomplete(message),
            }
        })?;
        match ended {
            MoveEnd::Done => report.applied.push(AppliedMove {
                step: i + 1,
                kind: m.kind,
                vm: mv.vm_name.clone(),
                from_host: mv.from_host_name.clone(),
                to_host: mv.to_host_name.clone(),
                to_gpu: fleet.gpus[m.to_gpu].name.clone(),
                to: m.to,
            }),
            MoveEnd::Replan(reason) => {
                report.stopped = Some(Stopped {
                    step: i + 1,
                    reason,
                });
                break;
            }
        }
    }
    Ok(report)
}
