//! `vmig repair [--vm NAME] [--dry-run]`: finds reservations whose journal step is not
//! `done` (an `assign` that crashed, was interrupted, lost vCenter or saw a task outlive
//! its wait) and leaves each VM either fully assigned with its reservation or unchanged
//! with none. Under the VM's lock (so never beside a live `assign`: its lock is renewed;
//! a dead one's goes stale), it first follows the recorded vCenter task to its end, then
//! looks at the VM as it is:
//! - the vGPU is there → the journal is marked `done`;
//! - the VM is on the planned host, powered off, without the vGPU, reservation not expired
//!   → roll forward: add the vGPU (journaled as `assign` does);
//! - otherwise → roll back: clear the reservation, and move the VM back to the host the
//!   journal names if a failed roll-forward had moved it.

use serde::Serialize;
use vcenter_client::{PowerState, TaskRef};

use mig::VgpuType;

use super::changes::{Changer, Ended};
use super::{analyse_all, find_vm, lock_vm, release, vc_err};
use crate::inventory::{self, VmInfo};
use crate::reservation::{Reservation, Step};
use crate::times::vcenter_now;
use crate::{AdminError, Connection};

/// What `repair` did (or would do) for one VM.
#[derive(Debug, Clone, Serialize)]
pub struct RepairedVm {
    /// VM name.
    pub vm: String,
    /// VM id.
    pub vm_moref: String,
    /// The journal step found.
    pub step: String,
    /// `finished`, `rolled_back`, `nothing_to_do`, or with `--dry-run` `would_finish`,
    /// `would_roll_back`.
    pub action: String,
    /// One sentence saying why.
    pub detail: String,
}

/// What `repair` did.
#[derive(Debug, Clone, Serialize)]
pub struct RepairOutcome {
    /// Nothing was changed.
    pub dry_run: bool,
    /// One entry per half-done assignment found.
    pub vms: Vec<RepairedVm>,
}

/// What to do with a half-done assignment, judged on the VM as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// The vGPU is there: mark done.
    MarkDone,
    /// Add the vGPU.
    AddVgpu,
    /// Clear the reservation.
    RollBack,
}

fn decide(r: &Reservation, vm: &VmInfo, now: time::OffsetDateTime) -> (Plan, String) {
    let base = VgpuType::parse(&r.vgpu_type).map(|t| t.base_name());
    let has = vm
        .vgpus
        .iter()
        .any(|d| VgpuType::parse(d.profile.as_str()).is_some_and(|t| Some(t.base_name()) == base));
    let on_planned = vm.host.as_ref().is_some_and(|h| h.value() == r.host);
    if has {
        return (Plan::MarkDone, "the VM has its vGPU".into());
    }
    if !on_planned {
        return (
            Plan::RollBack,
            format!("the VM never reached host {}", r.host_name),
        );
    }
    if r.expired(now) {
        return (Plan::RollBack, "the reservation has expired".into());
    }
    if vm.power_state != Some(PowerState::PoweredOff) {
        return (
            Plan::RollBack,
            "the VM was powered on without its vGPU".into(),
        );
    }
    (
        Plan::AddVgpu,
        format!("the VM is on host {} without its vGPU", r.host_name),
    )
}

fn pending(vm: &VmInfo) -> Option<Reservation> {
    vm.reservation
        .as_deref()
        .and_then(|t| Reservation::from_json(t).ok())
        .filter(|r| r.step() != Step::Done)
}

/// `vmig repair`: every half-done assignment, or only `vm_name`'s.
pub async fn repair(
    conns: &[Connection],
    vm_name: Option<&str>,
    dry_run: bool,
    progress: &dyn inventory::Progress,
) -> Result<RepairOutcome, AdminError> {
    let analysis = analyse_all(conns, progress).await?;
    let mut todo: Vec<(&Connection, &VmInfo)> = Vec::new();
    if let Some(name) = vm_name {
        let f = find_vm(conns, &analysis, name)?;
        todo.push((f.conn, f.vm));
    } else {
        for (vi, inv) in analysis.inventories.iter().enumerate() {
            for (_, _, vm) in inv.vms() {
                if pending(vm).is_some() {
                    todo.push((&conns[vi], vm));
                }
            }
        }
    }
    let mut vms = Vec::new();
    for (conn, vm) in todo {
        let done = if dry_run {
            let fresh = VmInfo::reread(&conn.client, &vm.moref)
                .await
                .map_err(vc_err(conn))?;
            plan_only(&fresh, analysis.now)
        } else {
            let lock = lock_vm(conn, vm, &format!("repair VM {}", vm.name)).await?;
            let done = repair_locked(conn, vm, lock).await;
            done?
        };
        vms.push(done);
    }
    Ok(RepairOutcome { dry_run, vms })
}

fn entry(vm: &VmInfo, step: &str, action: &str, detail: String) -> RepairedVm {
    RepairedVm {
        vm: vm.name.clone(),
        vm_moref: vm.moref.value().to_string(),
        step: step.to_string(),
        action: action.to_string(),
        detail,
    }
}

fn plan_only(vm: &VmInfo, now: time::OffsetDateTime) -> RepairedVm {
    let Some(r) = pending(vm) else {
        return entry(
            vm,
            "done",
            "nothing_to_do",
            "no half-done assignment".into(),
        );
    };
    let (plan, why) = decide(&r, vm, now);
    let action = match plan {
        Plan::MarkDone | Plan::AddVgpu => "would_finish",
        Plan::RollBack => "would_roll_back",
    };
    let task = r
        .task
        .as_deref()
        .map(|t| format!(" once task {t} ends"))
        .unwrap_or_default();
    entry(vm, r.step().as_str(), action, format!("{why}{task}"))
}

/// One VM, under its lock (released here, a failure to release only warns).
async fn repair_locked(
    conn: &Connection,
    vm: &VmInfo,
    mut lock: crate::lock::Lock,
) -> Result<RepairedVm, AdminError> {
    let done = repair_with(conn, vm, &mut lock).await;
    release(lock).await;
    done
}

async fn repair_with(
    conn: &Connection,
    vm: &VmInfo,
    lock: &mut crate::lock::Lock,
) -> Result<RepairedVm, AdminError> {
    let err = vc_err(conn);
    let fresh = VmInfo::reread(&conn.client, &vm.moref)
        .await
        .map_err(&err)?;
    let Some(r) = pending(&fresh) else {
        return Ok(entry(
            &fresh,
            "done",
            "nothing_to_do",
            "no half-done assignment".into(),
        ));
    };
    let step = r.step().as_str();
    let key = super::reservation_key(conn).await?;
    let mut changer = Changer {
        conn,
        vm: &fresh.moref,
        vm_name: &fresh.name,
        key,
        reservation: r.clone(),
        vm_lock: lock,
        command: "repair",
    };
    // A recorded task is followed to its end before anything is judged.
    if let Some(task) = r.task.as_deref() {
        let _ended = changer.follow(&TaskRef::new(task)).await?;
    }
    let now = vcenter_now(&conn.client).await.map_err(&err)?;
    let vm_now = VmInfo::reread(&conn.client, &fresh.moref)
        .await
        .map_err(&err)?;
    let (plan, why) = decide(&r, &vm_now, now);
    match plan {
        Plan::MarkDone => {
            changer.record(Step::Done, None).await?;
            Ok(entry(&vm_now, step, "finished", why))
        }
        Plan::AddVgpu => match changer.add_vgpu(&r.vgpu_type).await? {
            Ended::Done => Ok(entry(&vm_now, step, "finished", format!("{why}: added it"))),
            Ended::Failed(e) => {
                let moved = r.from_host.as_deref().is_some_and(|f| f != r.host);
                changer.roll_back(moved).await;
                Ok(entry(
                    &vm_now,
                    step,
                    "rolled_back",
                    format!("{why}, and adding it failed ({e})"),
                ))
            }
        },
        Plan::RollBack => {
            changer.roll_back(false).await;
            Ok(entry(&vm_now, step, "rolled_back", why))
        }
    }
}
