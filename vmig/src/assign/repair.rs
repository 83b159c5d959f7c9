//! `vmig repair [--vm NAME] [--dry-run]`: finds reservations whose journal step is not
//! `done` (an `assign` or `unassign` that crashed, was interrupted, lost vCenter or saw a
//! task outlive its wait) and leaves each VM either fully assigned with its reservation or
//! unchanged with none (for an `unassign`: without vGPU and reservation). Under the VM's
//! lock (so never beside a live `assign`: its lock is renewed; a dead one's goes stale), it
//! first follows the recorded vCenter task to its end, then looks at the VM as it is:
//! - assign steps:
//!   - the vGPU is there → the journal is marked `done`;
//!   - the VM is on the planned host, powered off, without the vGPU, reservation not
//!     expired → roll forward: add the vGPU (journaled as `assign` does);
//!   - otherwise → roll back: clear the reservation, and move the VM back (powered off,
//!     into the resource pool it came from) to the host the journal names if it was moved;
//! - fencing, before any roll-forward: the reservation is judged as readers judge it on the
//!   host's fresh report; one superseded by a higher token (written by the vmig that broke
//!   this assign's lock) or left without a free slice is never completed: without its vGPU
//!   it is rolled back, with it it is left as it is with a sentence saying so; when it cannot
//!   be judged (no readable agent report) nothing is rolled forward;
//! - unassign steps (`unassigning`, `unassigned`): the vGPU gone → clear the reservation;
//!   still there and powered off → remove it (journaled), then clear; powered on since → the
//!   journal goes back to `done` (the VM keeps its vGPU) with advice.

use serde::Serialize;
use vcenter_client::{PowerState, TaskRef};

use mig::VgpuType;

use super::changes::{Changer, Ended};
use super::reserve::Standing;
use super::{analyse_all, find_vm, lock_vm, release, vc_err};
use crate::analysis::Analysis;
use crate::inventory::{self, VmInfo};
use crate::reservation::{Reservation, ReservationStatus, Step};
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
    /// `finished`, `rolled_back`, `left` (nothing safe to do: `detail` says what the admin
    /// must decide), `nothing_to_do`, or with `--dry-run` `would_finish`, `would_roll_back`,
    /// `would_leave`.
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

/// What to do with a half-done assignment or unassignment, judged on the VM as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// The vGPU is there: mark done.
    MarkDone,
    /// Add the vGPU.
    AddVgpu,
    /// Clear the reservation (and move the VM back when the assign moved it).
    RollBack,
    /// Unassign: the vGPU is gone; clear the reservation.
    Release,
    /// Unassign: remove the vGPU (journaled), then clear the reservation.
    RemoveVgpu,
    /// Unassign that cannot finish (the VM runs): the journal goes back to `done`.
    KeepAssigned,
    /// `plan --apply`: relocate the powered-off VM to the host its reservation names.
    MoveAgain,
    /// Nothing is safe to do: the entry says what the admin must decide.
    Leave,
}

impl Plan {
    /// The `action` word for a dry run.
    fn would(self) -> &'static str {
        match self {
            Plan::MarkDone | Plan::AddVgpu | Plan::Release | Plan::RemoveVgpu | Plan::MoveAgain => {
                "would_finish"
            }
            Plan::RollBack | Plan::KeepAssigned => "would_roll_back",
            Plan::Leave => "would_leave",
        }
    }
}

fn decide(r: &Reservation, vm: &VmInfo, now: time::OffsetDateTime) -> (Plan, String) {
    match r.step() {
        Step::Unassigning | Step::Unassigned => return decide_unassign(vm),
        Step::Moving => return decide_move(r, vm),
        _ => {}
    }
    // How many of the reserved types the VM carries (each device matches one type once).
    let mut carried: Vec<String> = vm
        .vgpus
        .iter()
        .filter_map(|d| VgpuType::parse(d.profile.as_str()).map(|t| t.base_name()))
        .collect();
    let types = r.vgpu_types();
    let present = types
        .iter()
        .filter_map(|t| VgpuType::parse(t).map(|t| t.base_name()))
        .filter(|b| {
            carried
                .iter()
                .position(|c| c == b)
                .map(|i| carried.remove(i))
                .is_some()
        })
        .count();
    let on_planned = vm.host.as_ref().is_some_and(|h| h.value() == r.host);
    if present == types.len() {
        return (Plan::MarkDone, "the VM has its vGPU".into());
    }
    if present > 0 {
        // vmig adds all of a VM's vGPUs in one reconfiguration; some but not all means a
        // change made outside vmig, which repair does not guess about.
        return (
            Plan::Leave,
            format!(
                "the VM carries only {present} of its {} reserved vGPUs ({}), which vmig never leaves: check the VM, then run `vmig unassign --vm {}`",
                types.len(),
                types.join(", "),
                vm.name
            ),
        );
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

/// A killed `unassign`: finished when the vGPU is gone or can still be removed.
fn decide_unassign(vm: &VmInfo) -> (Plan, String) {
    if super::mig_vgpus(vm).is_empty() {
        return (
            Plan::Release,
            "the unassign removed the vGPU; only the reservation was left".into(),
        );
    }
    if vm.power_state == Some(PowerState::PoweredOff) {
        return (
            Plan::RemoveVgpu,
            "the unassign stopped before the vGPU was removed".into(),
        );
    }
    (
        Plan::KeepAssigned,
        format!(
            "the unassign stopped before the vGPU was removed and the VM was powered on since: it keeps its vGPU and reservation; power it off and run `vmig unassign --vm {}` again",
            vm.name
        ),
    )
}

/// A stopped move of `plan --apply`: its reservation already names the destination.
fn decide_move(r: &Reservation, vm: &VmInfo) -> (Plan, String) {
    if vm.host.as_ref().is_some_and(|h| h.value() == r.host) {
        return (
            Plan::MarkDone,
            format!("the VM reached host {}", r.host_name),
        );
    }
    if vm.power_state == Some(PowerState::PoweredOff) {
        return (
            Plan::MoveAgain,
            format!(
                "the VM is powered off and not yet on host {}, where its reservation is",
                r.host_name
            ),
        );
    }
    (
        Plan::Leave,
        format!(
            "the VM runs away from host {h}, where its reservation is (the vMotion did not happen): migrate it to {h} and run `vmig repair --vm {v}` again, or power it off and run `vmig repair --vm {v}` to move it cold",
            h = r.host_name,
            v = vm.name
        ),
    )
}

/// Fencing before rolling forward: a reservation another holds (a higher token on its
/// placement) or that no longer has a free slice is never completed. `standing` is `None`
/// when it cannot be judged now.
fn fence(plan: Plan, why: String, r: &Reservation, standing: Option<&Standing>) -> (Plan, String) {
    if !matches!(plan, Plan::MarkDone | Plan::AddVgpu | Plan::MoveAgain) {
        return (plan, why);
    }
    let token = r
        .token
        .map_or_else(|| "no token".to_string(), |t| format!("token {t}"));
    match (plan, standing) {
        (Plan::AddVgpu | Plan::MoveAgain, None) => (
            Plan::Leave,
            format!(
                "{why}, but vmig cannot check now that the slice on host {} is still its own (no readable agent report): not rolled forward; run `vmig repair` again once the host's agent reports",
                r.host_name
            ),
        ),
        (_, Some(s)) if s.status == ReservationStatus::Superseded => {
            let by = s.by.as_ref().map_or_else(
                || "a reservation with a higher token".to_string(),
                |(vm, t)| format!("VM {vm}'s reservation (token {t})"),
            );
            if matches!(plan, Plan::MarkDone | Plan::MoveAgain) {
                (
                    Plan::Leave,
                    format!(
                        "{why}, but its reservation ({token}) was superseded by {by}, written after this assign's lock was broken: the slice is promised twice; left as it is: unassign one of the two VMs"
                    ),
                )
            } else {
                (
                    Plan::RollBack,
                    format!(
                        "{why}, but its reservation ({token}) was superseded by {by}, written after this assign's lock was broken: not rolled forward"
                    ),
                )
            }
        }
        (Plan::MoveAgain, Some(s)) if s.status == ReservationStatus::Unplaceable => (
            Plan::Leave,
            format!(
                "{why}, but no free slice is left for it on host {} now: left as it is; run `vmig plan` again",
                r.host_name
            ),
        ),
        (Plan::AddVgpu, Some(s)) if s.status == ReservationStatus::Unplaceable => (
            Plan::RollBack,
            format!(
                "{why}, but no free slice is left for it on host {}: not rolled forward",
                r.host_name
            ),
        ),
        _ => (plan, why),
    }
}

/// Whether a roll-back must move the VM back: the assign moved it (it is on the planned
/// host, which is not the one it came from) and it is powered off.
fn move_back(r: &Reservation, vm: &VmInfo) -> bool {
    vm.host.as_ref().is_some_and(|h| h.value() == r.host)
        && r.from_host.as_deref().is_some_and(|f| f != r.host)
        && vm.power_state == Some(PowerState::PoweredOff)
}

fn pending(vm: &VmInfo) -> Option<Reservation> {
    vm.reservation
        .as_deref()
        .and_then(|t| Reservation::from_json(t).ok())
        .filter(|r| r.step() != Step::Done)
}

/// `vmig repair`: every half-done assignment or unassignment, or only `vm_name`'s.
pub async fn repair(
    conns: &[Connection],
    vm_name: Option<&str>,
    dry_run: bool,
    progress: &dyn inventory::Progress,
) -> Result<RepairOutcome, AdminError> {
    let analysis = analyse_all(conns, progress).await?;
    let mut todo: Vec<(usize, &VmInfo)> = Vec::new();
    if let Some(name) = vm_name {
        let f = find_vm(conns, &analysis, name)?;
        todo.push((f.vi, f.vm));
    } else {
        for (vi, inv) in analysis.inventories.iter().enumerate() {
            for (_, _, vm) in inv.vms() {
                if pending(vm).is_some() {
                    todo.push((vi, vm));
                }
            }
        }
    }
    let mut vms = Vec::new();
    for (vi, vm) in todo {
        let at = At {
            conn: &conns[vi],
            analysis: &analysis,
            vi,
        };
        let done = if dry_run {
            plan_only(&at, vm).await?
        } else {
            let lock = lock_vm(at.conn, vm, &format!("repair VM {}", vm.name)).await?;
            repair_locked(&at, vm, lock).await?
        };
        vms.push(done);
    }
    Ok(RepairOutcome { dry_run, vms })
}

/// Where a VM is: its vCenter's connection, the analysis and the vCenter's index in it.
struct At<'a> {
    conn: &'a Connection,
    analysis: &'a Analysis,
    vi: usize,
}

impl At<'_> {
    /// The plan for `r` on `vm` as it is now, fenced.
    async fn judge(
        &self,
        r: &Reservation,
        vm: &VmInfo,
        now: time::OffsetDateTime,
    ) -> Result<(Plan, String), AdminError> {
        let (plan, why) = decide(r, vm, now);
        if !matches!(plan, Plan::MarkDone | Plan::AddVgpu | Plan::MoveAgain) {
            return Ok((plan, why));
        }
        let standing =
            super::reserve::standing(self.conn, self.analysis, self.vi, vm, r, now).await?;
        Ok(fence(plan, why, r, standing.as_ref()))
    }
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

async fn plan_only(at: &At<'_>, vm: &VmInfo) -> Result<RepairedVm, AdminError> {
    let fresh = VmInfo::reread(&at.conn.client, &vm.moref)
        .await
        .map_err(vc_err(at.conn))?;
    let Some(r) = pending(&fresh) else {
        return Ok(entry(
            &fresh,
            "done",
            "nothing_to_do",
            "no half-done assignment".into(),
        ));
    };
    let (plan, why) = at.judge(&r, &fresh, at.analysis.now).await?;
    let task = r
        .task
        .as_deref()
        .map(|t| format!(" (judged before task {t} ends; repair follows it first)"))
        .unwrap_or_default();
    Ok(entry(
        &fresh,
        r.step().as_str(),
        plan.would(),
        format!("{why}{task}"),
    ))
}

/// One VM, under its lock (released here, a failure to release only warns).
async fn repair_locked(
    at: &At<'_>,
    vm: &VmInfo,
    mut lock: crate::lock::Lock,
) -> Result<RepairedVm, AdminError> {
    let done = repair_with(at, vm, &mut lock).await;
    release(lock).await;
    done
}

async fn repair_with(
    at: &At<'_>,
    vm: &VmInfo,
    lock: &mut crate::lock::Lock,
) -> Result<RepairedVm, AdminError> {
    let conn = at.conn;
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
    let (plan, why) = at.judge(&r, &vm_now, now).await?;
    let (action, detail) = match plan {
        Plan::MarkDone => {
            changer.record(Step::Done, None).await?;
            ("finished", why)
        }
        Plan::AddVgpu => match changer.add_vgpus(&r.vgpu_types()).await? {
            Ended::Done => ("finished", format!("{why}: added it")),
            Ended::Failed(e) => {
                let moved = r.from_host.as_deref().is_some_and(|f| f != r.host);
                changer.roll_back(moved).await;
                ("rolled_back", format!("{why}, and adding it failed ({e})"))
            }
        },
        Plan::RollBack => {
            let moved = move_back(&r, &vm_now);
            changer.roll_back(moved).await;
            let back = if moved {
                let from = r.from_host.as_deref().unwrap_or("?");
                let name = at
                    .analysis
                    .hosts
                    .iter()
                    .find(|h| h.vcenter == at.vi && h.host.moref.value() == from)
                    .map_or(from, |h| h.host.name.as_str());
                format!("; moved the VM back to host {name}")
            } else {
                String::new()
            };
            ("rolled_back", format!("{why}{back}"))
        }
        Plan::Release => {
            super::reserve::clear_reservation(&conn.client, &vm_now.moref)
                .await
                .map_err(&err)?;
            ("finished", format!("{why}: cleared it"))
        }
        Plan::RemoveVgpu => {
            let vgpus = super::mig_vgpus(&vm_now);
            let (spec, _) = super::removal_spec(&vm_now, &vgpus, Some(&r));
            match changer.remove_vgpus(&spec).await? {
                Ended::Done => {
                    super::reserve::clear_reservation(&conn.client, &vm_now.moref)
                        .await
                        .map_err(&err)?;
                    (
                        "finished",
                        format!("{why}: removed it and cleared the reservation"),
                    )
                }
                Ended::Failed(e) => {
                    changer.record(Step::Done, None).await?;
                    (
                        "rolled_back",
                        format!(
                            "{why}, and removing it failed ({e}): the VM keeps its vGPU and reservation"
                        ),
                    )
                }
            }
        }
        Plan::KeepAssigned => {
            changer.record(Step::Done, None).await?;
            ("rolled_back", why)
        }
        Plan::MoveAgain => {
            let to = vcenter_client::HostRef::new(r.host.clone());
            let pool = super::changes::pool_toward(&conn.client, &vm_now.moref, &to)
                .await
                .map_err(&err)?;
            match changer.move_to(&to, pool).await? {
                Ended::Done => ("finished", format!("{why}: moved it there")),
                Ended::Failed(e) => (
                    "left",
                    format!(
                        "{why}, and moving it failed ({e}): run `vmig repair --vm {}` again or `vmig plan` again",
                        vm_now.name
                    ),
                ),
            }
        }
        Plan::Leave => ("left", why),
    };
    Ok(entry(&vm_now, step, action, detail))
}

#[cfg(test)]
mod tests {
    use mig::{GiProfileId, Placement};
    use vcenter_client::{HostRef, VmRef};

    use super::*;
    use crate::reservation::RESERVATION_SCHEMA;

    fn journal(step: Step, token: i64) -> Reservation {
        Reservation {
            schema: RESERVATION_SCHEMA.into(),
            host: "host-2".into(),
            host_name: "H2".into(),
            gpu_uuid: "GPU-0".into(),
            vgpu_type: "grid_a100-7-40c".into(),
            profile: "7g.40gb".into(),
            profile_id: GiProfileId(0),
            placement: Placement::new(0, 8),
            reserved_at: "2026-01-01T00:00:00Z".into(),
            by: "t".into(),
            memory_locked_before: None,
            token: Some(token),
            step: Some(step),
            task: None,
            from_host: Some("host-1".into()),
            expires_at: None,
            vm_uuid: None,
            more: Vec::new(),
            time_sliced: false,
        }
    }

    fn vm(host: &str, power: PowerState) -> VmInfo {
        VmInfo {
            moref: VmRef::new("vm-7"),
            name: "web".into(),
            uuid: None,
            host: Some(HostRef::new(host)),
            power_state: Some(power),
            memory_locked: None,
            reservation: None,
            vgpus: Vec::new(),
            devices_read: true,
        }
    }

    fn now() -> time::OffsetDateTime {
        crate::times::parse_time("2026-06-01T00:00:00Z").unwrap()
    }

    #[test]
    fn superseded_journal_is_rolled_back_not_forward() {
        let r = journal(Step::Relocated, 3);
        let v = vm("host-2", PowerState::PoweredOff);
        let (plan, why) = decide(&r, &v, now());
        assert_eq!(plan, Plan::AddVgpu);
        let s = Standing {
            status: ReservationStatus::Superseded,
            by: Some(("db".into(), 9)),
        };
        let (plan, why) = fence(plan, why, &r, Some(&s));
        assert_eq!(plan, Plan::RollBack);
        assert!(why.contains("token 3") && why.contains("VM db's reservation (token 9)"));
        assert!(
            move_back(&r, &v),
            "moved by the assign, powered off: moved back"
        );
    }

    #[test]
    fn unjudgeable_journal_is_left_and_held_one_goes_on() {
        let r = journal(Step::Relocated, 3);
        let (plan, why) = fence(Plan::AddVgpu, "x".into(), &r, None);
        assert_eq!(plan, Plan::Leave);
        assert!(why.contains("not rolled forward"), "{why}");
        let held = Standing {
            status: ReservationStatus::Held,
            by: None,
        };
        assert_eq!(
            fence(Plan::AddVgpu, "x".into(), &r, Some(&held)).0,
            Plan::AddVgpu
        );
        // A roll-back is never fenced.
        assert_eq!(
            fence(Plan::RollBack, "x".into(), &r, None).0,
            Plan::RollBack
        );
        assert!(!move_back(&r, &vm("host-2", PowerState::PoweredOn)));
        assert!(!move_back(&r, &vm("host-1", PowerState::PoweredOff)));
    }

    #[test]
    fn stopped_unassign_and_move_are_finished_when_safe() {
        let r = journal(Step::Unassigning, 3);
        let (plan, _) = decide(&r, &vm("host-2", PowerState::PoweredOff), now());
        assert_eq!(plan, Plan::Release, "no vGPU left: release");
        let r = journal(Step::Moving, 3);
        let (plan, _) = decide(&r, &vm("host-2", PowerState::PoweredOff), now());
        assert_eq!(plan, Plan::MarkDone, "arrived");
        let (plan, _) = decide(&r, &vm("host-1", PowerState::PoweredOff), now());
        assert_eq!(plan, Plan::MoveAgain);
        let (plan, why) = decide(&r, &vm("host-1", PowerState::PoweredOn), now());
        assert_eq!(plan, Plan::Leave);
        assert!(why.contains("vMotion did not happen"), "{why}");
    }
}
