//! `vmig assign` and `vmig unassign`: give a powered-off VM a MIG-backed vGPU on the host and
//! GPU where it fits best, and take it away again.
//!
//! `assign`, in order:
//! 1. checks, each refusal one sentence naming VM, host and reason ([`Refusal`]): the VM
//!    exists (once) and is powered off; it has no vGPU of another type; the host offers the
//!    type in `config.sharedPassthruGpuTypes`; its agent report is fresh; a slice is free
//!    with reservations counted;
//! 2. chooses: the VM's current host if it fits, else the best fit (least fragmentation left)
//!    among the hosts of the VM's cluster (or the `--host` given);
//! 3. takes the VM's lock ([`crate::lock`]; held to the end, so one VM is changed by one
//!    vmig at a time), re-reads the VM and refuses when it already carries a reservation or
//!    a vGPU;
//! 4. under the host's lock, re-reads the host's report and every reservation, re-checks,
//!    and records `vmig.reservation` on the VM (fenced, with the host lock's token and an
//!    expiry in vCenter time): from here on `capacity` and other `assign`s count the slice;
//!    losing the race is a refusal;
//! 5. relocates the powered-off VM if it must move (before reconfiguring, so the vGPU is
//!    added on a host that offers its type), then one `ReconfigVM_Task` adds the
//!    `VirtualPCIPassthrough` vGPU and sets `memoryReservationLockedToMax`; each step is
//!    journaled in the reservation (submodule `changes`);
//! 6. on a failed task, rolls back (reservation cleared, a move undone); on a signal, a task
//!    still running or a lost connection, stops and names `vmig repair`.
//!
//! `unassign` (under the VM's lock) removes the VM's MIG-backed vGPUs, restores the memory
//! lock as it was, and clears the reservation; when the VM carries a vmig reservation, the
//! removal is journaled in it (`unassigning` before the `ReconfigVM_Task`, `unassigned`
//! after, then the reservation is cleared), so a killed or interrupted `unassign` is left
//! for `repair` like an `assign`. `repair` finishes or undoes half-done assignments and
//! unassignments from their journal.
//!
//! Step 1's checks are in the submodule `checks`, step 4 in `reserve`, step 5 in `changes`,
//! `repair` in `repair`; this file chooses and holds `assign` and `unassign`.

mod changes;
mod checks;
mod moves;
mod multi;
mod repair;
mod reserve;

use serde::Serialize;

use mig::{Placement, VgpuType};
use vcenter_client::{
    CustomFieldKey, HostRef, ResourcePoolRef, VgpuDevice, VmConfigSpec, VmProperty,
};

use crate::analysis::{self, Analysis, HostAnalysis};
use crate::capacity::{Candidate, better, candidates, parse_type_in};
use crate::inventory::{self, ComputeInventory, Scope, VmInfo};
use crate::reservation::Reservation;
use crate::{AdminError, Connection, Refusal, RefusalKind};
use multi::{Fit, Placed, Wanted, place_all};

pub use moves::{MoveEnd, MoveOrder, move_one};
pub use repair::{RepairOutcome, RepairedVm, repair};
pub use reserve::LOCK_WAIT;

use std::time::Duration;

use crate::lock::{self, Lock};
use crate::times::{format_time, vcenter_now};
use changes::{Changer, Ended};

/// How long a reservation counts by default (`assign --reserve-for`).
pub const DEFAULT_RESERVE_FOR: Duration = Duration::from_secs(7 * 86_400);

/// Where the vGPU goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostChoice {
    /// Current host if it fits, else best fit in the VM's cluster.
    Auto,
    /// This host (by name).
    Named(String),
}

/// What `assign` did (or would do with `--dry-run`).
#[derive(Debug, Clone, Serialize)]
pub struct AssignOutcome {
    /// VM name.
    pub vm: String,
    /// VM id.
    pub vm_moref: String,
    /// vCenter.
    pub vcenter: String,
    /// vGPU type as the host spells it.
    pub vgpu_type: String,
    /// GI profile.
    pub profile: String,
    /// Chosen host.
    pub host: String,
    /// Its id.
    pub host_moref: String,
    /// Host before (differs when relocated).
    pub from_host: Option<String>,
    /// Whether the VM was (or would be) relocated.
    pub relocated: bool,
    /// GPU index.
    pub gpu_index: u32,
    /// GPU UUID.
    pub gpu_uuid: String,
    /// Planned GI placement.
    pub placement: Placement,
    /// Fragmentation of that GPU after the placement.
    pub fragmentation_after: f64,
    /// Nothing was changed.
    pub dry_run: bool,
    /// The reservation written (none with `--dry-run`).
    pub reservation: Option<Reservation>,
    /// The vGPU runs time-sliced inside the GI at `placement`, sharing it with other vGPUs
    /// of its type (issue 18).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub time_sliced: bool,
    /// The VM's other vGPUs when several `--profile` were given (issue 18); the first is in
    /// the fields above.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub more: Vec<AssignedVgpu>,
}

/// One more vGPU of a multi-vGPU `assign`.
#[derive(Debug, Clone, Serialize)]
pub struct AssignedVgpu {
    /// vGPU type as the host spells it.
    pub vgpu_type: String,
    /// GI profile.
    pub profile: String,
    /// GPU index.
    pub gpu_index: u32,
    /// GPU UUID.
    pub gpu_uuid: String,
    /// Planned GI placement.
    pub placement: Placement,
    /// Fragmentation of that GPU after the placement.
    pub fragmentation_after: f64,
    /// Time-sliced inside the GI at `placement` ([`AssignOutcome::time_sliced`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub time_sliced: bool,
}

/// What `unassign` did.
#[derive(Debug, Clone, Serialize)]
pub struct UnassignOutcome {
    /// VM name.
    pub vm: String,
    /// VM id.
    pub vm_moref: String,
    /// Host.
    pub host: Option<String>,
    /// vGPU types removed.
    pub removed: Vec<String>,
    /// Whether a reservation was cleared.
    pub reservation_cleared: bool,
    /// `memoryReservationLockedToMax` set back to this, when changed.
    pub memory_locked_restored: Option<bool>,
}

/// A located VM.
struct Found<'a> {
    conn: &'a Connection,
    vi: usize,
    compute: &'a ComputeInventory,
    vm: &'a VmInfo,
}

fn host_name(analysis: &Analysis, vi: usize, r: Option<&HostRef>) -> Option<String> {
    let r = r?;
    Some(
        analysis.inventories[vi]
            .hosts()
            .find(|(_, _, h)| &h.moref == r)
            .map_or_else(|| r.value().to_string(), |(_, _, h)| h.name.clone()),
    )
}

fn find_vm<'a>(
    conns: &'a [Connection],
    analysis: &'a Analysis,
    name: &str,
) -> Result<Found<'a>, AdminError> {
    let mut found = Vec::new();
    for (vi, inv) in analysis.inventories.iter().enumerate() {
        for (_, cr, vm) in inv.vms() {
            if vm.name == name
                || vm.moref.value() == name
                || vm
                    .uuid
                    .as_deref()
                    .is_some_and(|u| crate::reservation::same_uuid(u, name))
            {
                found.push(Found {
                    conn: &conns[vi],
                    vi,
                    compute: cr,
                    vm,
                });
            }
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(AdminError::Refused(Refusal::new(
            RefusalKind::VmNotFound,
            name,
            None,
            format!(
                "VM {name} was not found in vCenter {}; check the name (vmig matches it exactly)",
                analysis
                    .inventories
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))),
        _ => {
            let list: Vec<String> = found
                .iter()
                .map(|f| {
                    format!(
                        "{} on {}",
                        f.vm.moref.value(),
                        host_name(analysis, f.vi, f.vm.host.as_ref())
                            .unwrap_or_else(|| "no host".into())
                    )
                })
                .collect();
            Err(AdminError::Refused(Refusal::new(
                RefusalKind::VmAmbiguous,
                name,
                None,
                format!(
                    "VM name {name} is ambiguous ({}); pass the VM id instead, e.g. --vm {}",
                    list.join(", "),
                    found[0].vm.moref.value()
                ),
            )))
        }
    }
}

fn refuse(kind: RefusalKind, vm: &str, host: Option<&str>, message: String) -> AdminError {
    AdminError::Refused(Refusal::new(kind, vm, host, message))
}

fn vc_err(conn: &Connection) -> impl Fn(vcenter_client::Error) -> AdminError + '_ {
    move |source| AdminError::Vcenter {
        vcenter: conn.target.host.clone(),
        source,
    }
}

/// The VM's vGPUs, reading the device list when the inventory did not.
async fn vm_vgpus(conn: &Connection, vm: &VmInfo) -> Result<Vec<VgpuDevice>, AdminError> {
    if vm.devices_read {
        return Ok(vm.vgpus.clone());
    }
    let v = conn
        .client
        .vm(&vm.moref, &[VmProperty::Vgpus])
        .await
        .map_err(vc_err(conn))?;
    Ok(v.vgpus)
}

/// Reads every vCenter (whole inventory: reservations may sit on VMs anywhere), analysed at
/// the first vCenter's time.
async fn analyse_all(
    conns: &[Connection],
    progress: &dyn inventory::Progress,
) -> Result<Analysis, AdminError> {
    let scope = Scope::default();
    let invs = futures_util::future::join_all(
        conns
            .iter()
            .map(|c| inventory::collect(&c.client, &c.target.host, &scope, progress)),
    )
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    let now = crate::connection::vcenter_time(conns).await?;
    Ok(analysis::analyse(invs, now))
}

/// Takes `vm`'s lock for `doing` (waiting up to [`LOCK_WAIT`] for another vmig's).
async fn lock_vm(conn: &Connection, vm: &VmInfo, doing: &str) -> Result<Lock, AdminError> {
    lock::acquire(
        &conn.client,
        lock::Target::Vm(&vm.moref),
        &format!("VM {}", vm.name),
        &reserve::who(conn),
        doing,
        LOCK_WAIT,
    )
    .await
    .map_err(|e| reserve::lock_err(conn, &vm.name, None, e))
}

/// Releases a lock after the work is done; a failure only warns (the lock goes stale on its
/// own) so that it never hides what the work did.
async fn release(lock: Lock) {
    let what = lock.what().to_string();
    if let Err(e) = lock.release().await {
        tracing::warn!(lock = %what, error = %e, "could not release the vmig lock; it goes stale on its own");
    }
}

/// `vmig assign`: `reserve_for` is how long the reservation counts (from vCenter's now).
/// Several `type_names` give the VM one vGPU of each, all on one host, or nothing (issue 18).
#[allow(
    clippy::too_many_arguments,
    reason = "the command's options, passed through"
)]
pub async fn assign(
    conns: &[Connection],
    vm_name: &str,
    type_names: &[String],
    choice: HostChoice,
    dry_run: bool,
    reserve_for: Duration,
    progress: &dyn inventory::Progress,
) -> Result<AssignOutcome, AdminError> {
    let analysis = analyse_all(conns, progress).await?;
    // After the analysis: it may have learned a GPU model from an agent's geometry.
    let mut wanted = type_names
        .iter()
        .map(|t| {
            Ok(Wanted {
                vtype: parse_type_in(t, &analysis)?,
                spelled: t.clone(),
            })
        })
        .collect::<Result<Vec<_>, AdminError>>()?;
    if wanted.is_empty() {
        return Err(AdminError::Internal("assign without --profile".into()));
    }
    if let Some(w) = wanted.iter().find(|w| !w.vtype.is_mig_backed()) {
        // No GI, no slot to reserve: vSphere picks the GPU of a whole-GPU time-sliced vGPU
        // when the VM powers on, so vmig cannot book one against another admin.
        return Err(AdminError::Usage(format!(
            "{} is a whole-GPU time-sliced vGPU type: vmig assigns MIG-backed types (a whole GI, or a slot in a GI); `vmig capacity --profile {}` counts where it fits, and the vSphere Client adds it",
            w.spelled, w.spelled
        )));
    }
    let f = find_vm(conns, &analysis, vm_name)?;
    let vm = f.vm;
    multi::same_board_and_series(&vm.name, &wanted)?;
    let current = host_name(&analysis, f.vi, vm.host.as_ref());
    checks::vm_can_take(&f, &wanted[0].vtype, current.as_deref()).await?;
    let (target, placed) = if let [one] = wanted.as_slice() {
        let (host, placed) = plan(&analysis, &f, &one.vtype, &choice, current.as_deref())?;
        (host, vec![placed])
    } else {
        plan_many(&analysis, &f, &wanted, &choice, current.as_deref())?
    };
    for w in &mut wanted {
        if let Some(s) = target.offered(&w.vtype) {
            w.spelled = s.to_string();
        }
    }
    let spelled = reserve::spelled_list(&wanted);
    let relocated = Some(&target.host.moref) != vm.host.as_ref();
    let mut outcome = outcome_of(&f, target, &wanted, &placed, current, dry_run);
    outcome.relocated = relocated;
    if dry_run {
        return Ok(outcome);
    }
    if crate::interrupt::interrupted() {
        return Err(AdminError::Incomplete(format!(
            "VM {}: assign interrupted before any change; nothing was written",
            vm.name
        )));
    }
    let mut vm_lock = lock_vm(f.conn, vm, &format!("assign {spelled} to VM {}", vm.name)).await?;
    let done = assign_locked(
        &f,
        &analysis,
        target,
        &wanted,
        reserve_for,
        &mut vm_lock,
        &mut outcome,
    )
    .await;
    release(vm_lock).await;
    done.map(|()| outcome)
}

/// What `assign` tells for the plan: the first vGPU in the main fields, the others in `more`.
fn outcome_of(
    f: &Found<'_>,
    target: &HostAnalysis,
    wanted: &[Wanted],
    placed: &[Placed],
    from_host: Option<String>,
    dry_run: bool,
) -> AssignOutcome {
    let gpu = |p: &Placed| &target.gpus[p.gpu].report;
    let more = wanted
        .iter()
        .zip(placed)
        .skip(1)
        .map(|(w, p)| AssignedVgpu {
            vgpu_type: w.spelled.clone(),
            profile: p.profile_name.clone(),
            gpu_index: gpu(p).index,
            gpu_uuid: gpu(p).uuid.clone(),
            placement: p.placement(),
            fragmentation_after: p.choice.fragmentation,
            time_sliced: p.sliced.is_some(),
        })
        .collect();
    let first = &placed[0];
    AssignOutcome {
        vm: f.vm.name.clone(),
        vm_moref: f.vm.moref.value().to_string(),
        vcenter: f.conn.target.host.clone(),
        vgpu_type: wanted[0].spelled.clone(),
        profile: first.profile_name.clone(),
        host: target.host.name.clone(),
        host_moref: target.host.moref.value().to_string(),
        from_host,
        relocated: false,
        gpu_index: gpu(first).index,
        gpu_uuid: gpu(first).uuid.clone(),
        placement: first.placement(),
        fragmentation_after: first.choice.fragmentation,
        dry_run,
        reservation: None,
        time_sliced: first.sliced.is_some(),
        more,
    }
}

/// `assign` under the VM's lock: re-read the VM, reserve under the host's lock, change the
/// VM step by step.
async fn assign_locked(
    f: &Found<'_>,
    analysis: &Analysis,
    target: &HostAnalysis,
    wanted: &[Wanted],
    reserve_for: Duration,
    vm_lock: &mut Lock,
    outcome: &mut AssignOutcome,
) -> Result<(), AdminError> {
    let conn = f.conn;
    let err = vc_err(conn);
    let fresh = VmInfo::reread(&conn.client, &f.vm.moref)
        .await
        .map_err(&err)?;
    let cur = host_name(analysis, f.vi, fresh.host.as_ref());
    if let Some(text) = &fresh.reservation {
        let what = Reservation::from_json(text).map_or_else(
            |_| "an unreadable vmig reservation".to_string(),
            |r| {
                format!(
                    "a vmig reservation on host {} (step {})",
                    r.host_name,
                    r.step().as_str()
                )
            },
        );
        return Err(refuse(
            RefusalKind::VmBusy,
            &fresh.name,
            cur.as_deref(),
            format!(
                "VM {} already carries {what}, made by another vmig; run `vmig repair --vm {}` or `vmig unassign --vm {}` first",
                fresh.name, fresh.name, fresh.name
            ),
        ));
    }
    let again = Found { vm: &fresh, ..*f };
    checks::vm_can_take(&again, &wanted[0].vtype, cur.as_deref()).await?;
    let relocated = Some(&target.host.moref) != fresh.host.as_ref();
    outcome.relocated = relocated;
    outcome.from_host = cur;
    let now = vcenter_now(&conn.client).await.map_err(&err)?;
    let expires = now + time::Duration::try_from(reserve_for).unwrap_or(time::Duration::MAX);
    let journal = reserve::Journal {
        from_host: fresh.host.as_ref().map(|h| h.value().to_string()),
        expires_at: format_time(expires),
        now,
        vm_lock,
    };
    let reservation = reserve::reserve(conn, analysis, target, &fresh, wanted, &journal).await?;
    // The fresh check under the lock may have picked other GPUs or placements of the host.
    let index_of = |uuid: &str, or: u32| {
        target
            .gpus
            .iter()
            .find(|g| g.report.uuid == uuid)
            .map_or(or, |g| g.report.index)
    };
    outcome.gpu_uuid = reservation.gpu_uuid.clone();
    outcome.gpu_index = index_of(&reservation.gpu_uuid, outcome.gpu_index);
    outcome.placement = reservation.placement;
    outcome.time_sliced = reservation.time_sliced;
    for (o, m) in outcome.more.iter_mut().zip(&reservation.more) {
        o.gpu_index = index_of(&m.gpu_uuid, o.gpu_index);
        o.gpu_uuid = m.gpu_uuid.clone();
        o.placement = m.placement;
        o.time_sliced = m.time_sliced;
    }
    let key = reservation_key(conn).await?;
    let mut changer = Changer {
        conn,
        vm: &fresh.moref,
        vm_name: &fresh.name,
        key,
        reservation,
        vm_lock,
        command: "assign",
    };
    if relocated {
        let pool = target_pool(conn, f.compute, target).await?;
        if let Ended::Failed(e) = changer.relocate(&target.host.moref, pool).await? {
            changer.roll_back(false).await;
            return Err(err(e));
        }
    }
    let types: Vec<&str> = wanted.iter().map(|w| w.spelled.as_str()).collect();
    if let Ended::Failed(e) = changer.add_vgpus(&types).await? {
        changer.roll_back(relocated).await;
        return Err(err(e));
    }
    outcome.reservation = Some(changer.reservation);
    Ok(())
}

/// The resource pool a relocation names: vCenter wants the target cluster's root pool when
/// the VM changes cluster, none within one.
async fn target_pool(
    conn: &Connection,
    from: &ComputeInventory,
    target: &HostAnalysis,
) -> Result<Option<ResourcePoolRef>, AdminError> {
    if target.compute == from.moref {
        return Ok(None);
    }
    let oc = conn
        .client
        .retrieve_object(&target.compute, &["resourcePool"])
        .await
        .map_err(vc_err(conn))?;
    Ok(oc
        .get("resourcePool")
        .and_then(|n| n.to_moref().ok())
        .and_then(|r| ResourcePoolRef::try_from(r).ok()))
}

/// Where `assign` would put the vGPU: a host, one of its GPUs, and the placement there.
/// Chooses the host and GPU: among the named host, or the hosts of the VM's compute
/// resource, the VM's current host when it fits (for a time-sliced type: unless another host
/// packs the vGPU better, see [`Choice::rank`]), else the best fit over all of them.
fn plan<'a>(
    analysis: &'a Analysis,
    f: &Found<'_>,
    vtype: &VgpuType,
    choice: &HostChoice,
    current: Option<&str>,
) -> Result<(&'a HostAnalysis, Placed), AdminError> {
    let vm = f.vm;
    let pool = host_pool(analysis, f, std::slice::from_ref(vtype), choice)?;
    let cands = candidates(pool.iter().copied(), vtype);
    let fitting = || cands.iter().filter(|c| c.choice().is_some());
    let overall = fitting().min_by(|a, b| better(a, b));
    let here = fitting()
        .filter(|c| Some(&c.host.host.moref) == vm.host.as_ref())
        .min_by(|a, b| better(a, b));
    let rank = |c: &Candidate<'_>| c.choice().map(|x| x.rank);
    let best = match (here, overall) {
        (Some(h), Some(o)) if rank(h) <= rank(o) => h,
        (_, Some(o)) => o,
        _ => {
            return Err(checks::no_capacity(
                &vm.name,
                current,
                &pool,
                vtype,
                &f.compute.name,
                choice,
            ));
        }
    };
    let placed = Placed::from_candidate(best)
        .ok_or_else(|| AdminError::Internal("chosen candidate has no placement".into()))?;
    Ok((best.host, placed))
}

/// The hosts `assign` may choose from: the named one (which must offer every type), or the
/// hosts of the VM's compute resource.
fn host_pool<'a>(
    analysis: &'a Analysis,
    f: &Found<'_>,
    vtypes: &[VgpuType],
    choice: &HostChoice,
) -> Result<Vec<&'a HostAnalysis>, AdminError> {
    let vm = f.vm;
    let same_vc = |h: &&HostAnalysis| h.vcenter == f.vi;
    Ok(match choice {
        HostChoice::Named(name) => {
            let h = analysis
                .hosts
                .iter()
                .filter(same_vc)
                .find(|h| &h.host.name == name)
                .ok_or_else(|| {
                    refuse(
                        RefusalKind::HostNotFound,
                        &vm.name,
                        Some(name),
                        format!(
                            "VM {}: host {name} was not found in vCenter {}",
                            vm.name, f.conn.target.host
                        ),
                    )
                })?;
            for vtype in vtypes {
                checks::host_can_take(h, &vm.name, vtype)?;
            }
            vec![h]
        }
        HostChoice::Auto => analysis
            .hosts
            .iter()
            .filter(same_vc)
            .filter(|h| h.compute == f.compute.moref)
            .collect(),
    })
}

/// Several types for one VM: the VM's current host when all of them fit there, else the
/// host where all fit leaving the least fragmentation; none fitting is a refusal (nothing
/// was changed).
fn plan_many<'a>(
    analysis: &'a Analysis,
    f: &Found<'_>,
    wanted: &[Wanted],
    choice: &HostChoice,
    current: Option<&str>,
) -> Result<(&'a HostAnalysis, Vec<Placed>), AdminError> {
    let vm = f.vm;
    let vtypes: Vec<VgpuType> = wanted.iter().map(|w| w.vtype.clone()).collect();
    let pool = host_pool(analysis, f, &vtypes, choice)?;
    let fits: Vec<(&HostAnalysis, Fit)> = pool
        .iter()
        .filter_map(|h| place_all(h, wanted).map(|p| (*h, p)))
        .collect();
    fits.iter()
        .find(|(h, _)| Some(&h.host.moref) == vm.host.as_ref())
        .or_else(|| {
            fits.iter().min_by(|a, b| {
                a.1.fragmentation
                    .total_cmp(&b.1.fragmentation)
                    .then_with(|| a.0.host.name.cmp(&b.0.host.name))
            })
        })
        .map(|(h, fit)| (*h, fit.placed.clone()))
        .ok_or_else(|| {
            let types = reserve::spelled_list(wanted);
            let (host, where_) = match choice {
                HostChoice::Named(name) => (Some(name.as_str()), format!("host {name} has")),
                HostChoice::Auto => (
                    current,
                    format!("no host of {} ({} host(s)) has", f.compute.name, pool.len()),
                ),
            };
            refuse(
                RefusalKind::NoCapacity,
                &vm.name,
                host,
                format!(
                    "VM {}: {where_} free MIG slices for all of {types} together (reservations by other VMs included); nothing was changed",
                    vm.name
                ),
            )
        })
}

/// `vmig unassign`: under the VM's lock, on the VM as it is then.
pub async fn unassign(
    conns: &[Connection],
    vm_name: &str,
    progress: &dyn inventory::Progress,
) -> Result<UnassignOutcome, AdminError> {
    let analysis = analyse_all(conns, progress).await?;
    let f = find_vm(conns, &analysis, vm_name)?;
    let mut vm_lock = lock_vm(f.conn, f.vm, &format!("unassign VM {}", f.vm.name)).await?;
    let done = unassign_locked(&f, &analysis, &mut vm_lock).await;
    release(vm_lock).await;
    done
}

async fn unassign_locked(
    f: &Found<'_>,
    analysis: &Analysis,
    vm_lock: &mut Lock,
) -> Result<UnassignOutcome, AdminError> {
    let client = &f.conn.client;
    let err = vc_err(f.conn);
    let vm = &VmInfo::reread(client, &f.vm.moref).await.map_err(&err)?;
    let current = host_name(analysis, f.vi, vm.host.as_ref());
    let cur = current.as_deref();
    let vgpus = mig_vgpus(vm);
    let reservation = vm
        .reservation
        .as_deref()
        .and_then(|r| Reservation::from_json(r).ok());
    if vgpus.is_empty() && vm.reservation.is_none() {
        return Err(refuse(
            RefusalKind::NothingToDo,
            &vm.name,
            cur,
            format!(
                "VM {} on host {} has no MIG-backed vGPU and no vmig reservation; nothing to unassign",
                vm.name,
                cur.unwrap_or("?")
            ),
        ));
    }
    let mut restored = None;
    if !vgpus.is_empty() {
        checks::powered_off(vm, cur, "removes a vGPU only from")?;
        let (spec, restore) = removal_spec(vm, &vgpus, reservation.as_ref());
        restored = restore;
        match reservation {
            // vmig's own assignment: journaled, so `repair` can finish a killed unassign.
            Some(r) => {
                let before = r.step();
                let mut changer = Changer {
                    conn: f.conn,
                    vm: &vm.moref,
                    vm_name: &vm.name,
                    key: reservation_key(f.conn).await?,
                    reservation: r,
                    vm_lock,
                    command: "unassign",
                };
                if let Ended::Failed(e) = changer.remove_vgpus(&spec).await? {
                    // The vGPU is still there: the journal goes back to where it was.
                    if let Err(undo) = changer.record(before, None).await {
                        tracing::warn!(vm = %vm.name, error = %undo, "could not put the journal back after a failed unassign; `vmig repair` will");
                    }
                    return Err(err(e));
                }
                // Like `assign`, a signal stops before the next change: the release is one.
                if crate::interrupt::interrupted() {
                    return Err(changer.stop("interrupted after the vGPU was removed"));
                }
            }
            // A vGPU vmig never booked: one reconfiguration, nothing of vmig's to journal
            // (running `unassign` again finishes it).
            None => {
                let task = client
                    .reconfigure_vm(&vm.moref, &spec)
                    .await
                    .map_err(&err)?;
                changes::follow_task(f.conn, &task, vm_lock, &vm.name).await?;
            }
        }
    }
    let cleared = if vm.reservation.is_some() {
        reserve::clear_reservation(client, &vm.moref)
            .await
            .map_err(&err)?
    } else {
        false
    };
    Ok(UnassignOutcome {
        vm: vm.name.clone(),
        vm_moref: vm.moref.value().to_string(),
        host: current,
        removed: vgpus
            .iter()
            .map(|d| d.profile.as_str().to_string())
            .collect(),
        reservation_cleared: cleared,
        memory_locked_restored: restored,
    })
}

/// The VM's MIG-backed vGPUs (the ones `unassign` removes).
pub(super) fn mig_vgpus(vm: &VmInfo) -> Vec<VgpuDevice> {
    vm.vgpus
        .iter()
        .filter(|d| VgpuType::parse(d.profile.as_str()).is_some_and(|t| t.is_mig_backed()))
        .cloned()
        .collect()
}

/// The reconfiguration that removes `vgpus` and puts `memoryReservationLockedToMax` back as
/// the reservation recorded it; with the value restored, when it changes.
pub(super) fn removal_spec(
    vm: &VmInfo,
    vgpus: &[VgpuDevice],
    reservation: Option<&Reservation>,
) -> (VmConfigSpec, Option<bool>) {
    let mut spec = VmConfigSpec::new();
    for d in vgpus {
        spec = spec.remove_vgpu(d);
    }
    let mut restored = None;
    if let Some(r) = reservation {
        let before = r.memory_locked_before.unwrap_or(false);
        if vm.memory_locked != Some(before) {
            spec = spec.memory_reservation_locked_to_max(before);
            restored = Some(before);
        }
    }
    (spec, restored)
}

/// The key of the `vmig.reservation` field, which the reservation just written created.
pub(super) async fn reservation_key(conn: &Connection) -> Result<CustomFieldKey, AdminError> {
    inventory::field_keys(&conn.client)
        .await
        .map_err(vc_err(conn))?
        .reservation
        .ok_or_else(|| AdminError::Internal("vmig.reservation vanished".into()))
}
