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
//! 3. under the host's lock ([`crate::lock`]), re-reads the host's report and every
//!    reservation, re-checks, and records `vmig.reservation` on the VM: from here on
//!    `capacity` and other `assign`s count the slice; losing the race is a refusal;
//! 4. relocates the powered-off VM if it must move (before reconfiguring, so the vGPU is
//!    added on a host that offers its type), then one `ReconfigVM_Task` adds the
//!    `VirtualPCIPassthrough` vGPU and sets `memoryReservationLockedToMax`;
//! 5. on a failed task, clears the reservation again.
//!
//! `unassign` removes the VM's MIG-backed vGPUs, restores the memory lock as it was, and
//! clears the reservation.
//!
//! Step 1's checks are in the submodule `checks`, step 3 in `reserve`; this file chooses,
//! changes the VM and holds `unassign`.

mod checks;
mod reserve;

use serde::Serialize;

use mig::{Placement, VgpuType};
use vcenter_client::{
    HostRef, PowerState, RelocateSpec, ResourcePoolRef, TaskWait, VgpuDevice, VgpuProfile,
    VmConfigSpec, VmProperty,
};

use crate::analysis::{self, Analysis, HostAnalysis};
use crate::capacity::{Choice, better, candidates, parse_type};
use crate::inventory::{self, ComputeInventory, Scope, VmInfo};
use crate::reservation::Reservation;
use crate::{AdminError, Connection, Refusal, RefusalKind};

pub use reserve::LOCK_WAIT;

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
            if vm.name == name || vm.moref.value() == name {
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

/// Reads every vCenter (whole inventory: reservations may sit on VMs anywhere).
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
    Ok(analysis::analyse(invs, time::OffsetDateTime::now_utc()))
}

/// `vmig assign`.
pub async fn assign(
    conns: &[Connection],
    vm_name: &str,
    type_name: &str,
    choice: HostChoice,
    dry_run: bool,
    progress: &dyn inventory::Progress,
) -> Result<AssignOutcome, AdminError> {
    let analysis = analyse_all(conns, progress).await?;
    // After the analysis: it may have learned a GPU model from an agent's geometry.
    let vtype = parse_type(type_name)?;
    let f = find_vm(conns, &analysis, vm_name)?;
    let vm = f.vm;
    let current = host_name(&analysis, f.vi, vm.host.as_ref());
    checks::vm_can_take(&f, &vtype, current.as_deref()).await?;
    let planned = plan(&analysis, &f, &vtype, &choice, current.as_deref())?;
    let target = planned.host;
    let spelled = target.offered(&vtype).unwrap_or(type_name).to_string();
    let gpu = &target.gpus[planned.gpu];
    let relocated = Some(&target.host.moref) != vm.host.as_ref();
    let mut outcome = AssignOutcome {
        vm: vm.name.clone(),
        vm_moref: vm.moref.value().to_string(),
        vcenter: f.conn.target.host.clone(),
        vgpu_type: spelled.clone(),
        profile: gpu
            .model
            .and_then(|m| vtype.gi_profile(m))
            .map(|p| p.name.to_string())
            .unwrap_or_default(),
        host: target.host.name.clone(),
        host_moref: target.host.moref.value().to_string(),
        from_host: current,
        relocated,
        gpu_index: gpu.report.index,
        gpu_uuid: gpu.report.uuid.clone(),
        placement: planned.choice.placement,
        fragmentation_after: planned.choice.fragmentation,
        dry_run,
        reservation: None,
    };
    if dry_run {
        return Ok(outcome);
    }

    let reservation = reserve::reserve(f.conn, &analysis, target, vm, &vtype, &spelled).await?;
    // The fresh check under the lock may have picked another GPU or placement of the host.
    outcome.gpu_uuid = reservation.gpu_uuid.clone();
    outcome.gpu_index = target
        .gpus
        .iter()
        .find(|g| g.report.uuid == reservation.gpu_uuid)
        .map_or(outcome.gpu_index, |g| g.report.index);
    outcome.placement = reservation.placement;
    outcome.reservation = Some(reservation);

    if let Err(e) = apply_changes(f.conn, vm, f.compute, target, &spelled, relocated).await {
        // Give the slice back; the error says what failed.
        if let Err(undo) = reserve::clear_reservation(&f.conn.client, &vm.moref).await {
            tracing::warn!(vm = %vm.name, error = %undo, "could not clear the reservation after a failed assign");
        }
        return Err(e);
    }
    Ok(outcome)
}

/// Where `assign` would put the vGPU: a host, one of its GPUs, and the placement there.
struct Planned<'a> {
    host: &'a HostAnalysis,
    gpu: usize,
    choice: Choice,
}

/// Chooses the host and GPU: among the named host, or the hosts of the VM's compute
/// resource, the VM's current host when it fits, else the best fit over all of them.
fn plan<'a>(
    analysis: &'a Analysis,
    f: &Found<'_>,
    vtype: &VgpuType,
    choice: &HostChoice,
    current: Option<&str>,
) -> Result<Planned<'a>, AdminError> {
    let vm = f.vm;
    let same_vc = |h: &&HostAnalysis| h.vcenter == f.vi;
    let pool: Vec<&HostAnalysis> = match choice {
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
            checks::host_can_take(h, &vm.name, vtype)?;
            vec![h]
        }
        HostChoice::Auto => analysis
            .hosts
            .iter()
            .filter(same_vc)
            .filter(|h| h.compute == f.compute.moref)
            .collect(),
    };
    let cands = candidates(pool.iter().copied(), vtype);
    let fitting = || cands.iter().filter(|c| c.choice().is_some());
    let best = fitting()
        .filter(|c| Some(&c.host.host.moref) == vm.host.as_ref())
        .min_by(|a, b| better(a, b))
        .or_else(|| fitting().min_by(|a, b| better(a, b)))
        .ok_or_else(|| {
            checks::no_capacity(&vm.name, current, &pool, vtype, &f.compute.name, choice)
        })?;
    Ok(Planned {
        host: best.host,
        gpu: best.gpu,
        choice: best
            .choice()
            .ok_or_else(|| AdminError::Internal("chosen candidate has no placement".into()))?,
    })
}

async fn apply_changes(
    conn: &Connection,
    vm: &VmInfo,
    from: &ComputeInventory,
    target: &HostAnalysis,
    spelled: &str,
    relocate: bool,
) -> Result<(), AdminError> {
    let client = &conn.client;
    let err = vc_err(conn);
    if relocate {
        // vCenter wants the target cluster's root pool when the VM changes cluster.
        let pool = if target.compute == from.moref {
            None
        } else {
            let oc = client
                .retrieve_object(&target.compute, &["resourcePool"])
                .await
                .map_err(&err)?;
            oc.get("resourcePool")
                .and_then(|n| n.to_moref().ok())
                .and_then(|r| ResourcePoolRef::try_from(r).ok())
        };
        let task = client
            .relocate_vm(
                &vm.moref,
                &RelocateSpec {
                    host: target.host.moref.clone(),
                    pool,
                },
            )
            .await
            .map_err(&err)?;
        client
            .wait_for_task(&task, TaskWait::default())
            .await
            .map_err(&err)?;
    }
    let profile = VgpuProfile::new(spelled).map_err(&err)?;
    let spec = VmConfigSpec::new()
        .add_vgpu(profile)
        .memory_reservation_locked_to_max(true);
    let task = client
        .reconfigure_vm(&vm.moref, &spec)
        .await
        .map_err(&err)?;
    client
        .wait_for_task(&task, TaskWait::default())
        .await
        .map_err(&err)?;
    Ok(())
}

/// `vmig unassign`.
pub async fn unassign(
    conns: &[Connection],
    vm_name: &str,
    progress: &dyn inventory::Progress,
) -> Result<UnassignOutcome, AdminError> {
    let analysis = analyse_all(conns, progress).await?;
    let f = find_vm(conns, &analysis, vm_name)?;
    let vm = f.vm;
    let current = host_name(&analysis, f.vi, vm.host.as_ref());
    let cur = current.as_deref();
    let client = &f.conn.client;
    let err = vc_err(f.conn);
    let vgpus: Vec<VgpuDevice> = vm_vgpus(f.conn, vm)
        .await?
        .into_iter()
        .filter(|d| VgpuType::parse(d.profile.as_str()).is_some_and(|t| t.is_mig_backed()))
        .collect();
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
        if vm.power_state != Some(PowerState::PoweredOff) {
            let state = vm.power_state.map_or_else(
                || "in an unknown power state".to_string(),
                |p| p.to_string(),
            );
            return Err(refuse(
                RefusalKind::VmPoweredOn,
                &vm.name,
                cur,
                format!(
                    "VM {} on host {} is {state}; power it off first: vSphere removes a vGPU only from a powered-off VM",
                    vm.name,
                    cur.unwrap_or("?")
                ),
            ));
        }
        let mut spec = VmConfigSpec::new();
        for d in &vgpus {
            spec = spec.remove_vgpu(d);
        }
        if let Some(r) = &reservation {
            let before = r.memory_locked_before.unwrap_or(false);
            if vm.memory_locked != Some(before) {
                spec = spec.memory_reservation_locked_to_max(before);
                restored = Some(before);
            }
        }
        let task = client
            .reconfigure_vm(&vm.moref, &spec)
            .await
            .map_err(&err)?;
        client
            .wait_for_task(&task, TaskWait::default())
            .await
            .map_err(&err)?;
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
