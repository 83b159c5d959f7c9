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
//! 3. under the host's lock ([`super::lock`]), re-reads the host's report and every
//!    reservation, re-checks, and records `vmig.reservation` on the VM: from here on
//!    `capacity` and other `assign`s count the slice; losing the race is a refusal;
//! 4. relocates the powered-off VM if it must move (before reconfiguring, so the vGPU is
//!    added on a host that offers its type), then one `ReconfigVM_Task` adds the
//!    `VirtualPCIPassthrough` vGPU and sets `memoryReservationLockedToMax`;
//! 5. on a failed task, clears the reservation again.
//!
//! `unassign` removes the VM's MIG-backed vGPUs, restores the memory lock as it was, and
//! clears the reservation.

use std::ops::ControlFlow;
use std::time::Duration;

use serde::Serialize;

use mig::report::HostReport;
use mig::{MigState, Placement, VgpuType};

use super::capacity::{Candidate, better, candidates, parse_type};
use super::inventory::{self, ComputeInventory, Scope, VmInfo};
use super::lock;
use super::model::{
    self, Analysis, GpuAnalysis, HostAnalysis, format_time, gpu_model, reported_state,
};
use super::reservation::{HeldReservation, RESERVATION_SCHEMA, Reservation};
use super::{AdminError, Connection, Refusal, RefusalKind};
use crate::{
    Client, HostProperty, HostRef, PowerState, RelocateSpec, ResourcePoolRef, RetrieveOptions,
    TaskWait, VgpuDevice, VgpuProfile, VmConfigSpec, VmProperty, VmRef,
};

/// How long `assign` waits for another admin's lock on the same host.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);

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

fn vc_err(conn: &Connection) -> impl Fn(crate::Error) -> AdminError + '_ {
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
    Ok(model::analyse(invs, time::OffsetDateTime::now_utc()))
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
    let vtype = parse_type(type_name)?;
    let analysis = analyse_all(conns, progress).await?;
    let f = find_vm(conns, &analysis, vm_name)?;
    let vm = f.vm;
    let current = host_name(&analysis, f.vi, vm.host.as_ref());
    let cur = current.as_deref();
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
                "VM {} on host {} is {state}; power it off first: vSphere adds a vGPU only to a powered-off VM",
                vm.name,
                cur.unwrap_or("?")
            ),
        ));
    }
    let vgpus = vm_vgpus(f.conn, vm).await?;
    if let Some(other) = vgpus.iter().find(|d| {
        VgpuType::parse(d.profile.as_str()).is_none_or(|t| t.base_name() != vtype.base_name())
    }) {
        return Err(refuse(
            RefusalKind::OtherVgpu,
            &vm.name,
            cur,
            format!(
                "VM {} on host {} already has vGPU {}, and a VM takes one vGPU type; run `vmig unassign --vm {}` first",
                vm.name,
                cur.unwrap_or("?"),
                other.profile.as_str(),
                vm.name
            ),
        ));
    }
    if !vgpus.is_empty() {
        let how = if vm.reservation.is_some() {
            "reserved by vmig"
        } else {
            "added outside vmig"
        };
        return Err(refuse(
            RefusalKind::NothingToDo,
            &vm.name,
            cur,
            format!(
                "VM {} on host {} already has vGPU {} ({how}); nothing to do",
                vm.name,
                cur.unwrap_or("?"),
                vgpus[0].profile.as_str()
            ),
        ));
    }

    // Candidate hosts.
    let same_vc = |h: &&HostAnalysis| h.vcenter == f.vi;
    let pool: Vec<&HostAnalysis> = match &choice {
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
            check_host(h, &vm.name, &vtype)?;
            vec![h]
        }
        HostChoice::Auto => analysis
            .hosts
            .iter()
            .filter(same_vc)
            .filter(|h| h.compute == f.compute.moref)
            .collect(),
    };
    let mut cands = candidates(pool.iter().copied(), &vtype);
    // Prefer the current host when it fits; otherwise best fit over all candidates.
    let on_current: Vec<&Candidate<'_>> = cands
        .iter()
        .filter(|c| Some(&c.host.host.moref) == vm.host.as_ref() && c.choice().is_some())
        .collect();
    let best = on_current
        .into_iter()
        .min_by(|a, b| better(a, b))
        .or_else(|| {
            cands
                .iter()
                .filter(|c| c.choice().is_some())
                .min_by(|a, b| better(a, b))
        })
        .map(|c| (c.host, c.gpu))
        .ok_or_else(|| no_capacity(&vm.name, cur, &pool, &vtype, &f.compute.name, &choice))?;
    let (target, gpu_i) = best;
    let cand = cands
        .iter_mut()
        .find(|c| std::ptr::eq(c.host, target) && c.gpu == gpu_i)
        .ok_or_else(|| AdminError::Internal("chosen candidate vanished".into()))?;
    let plan = cand
        .choice()
        .ok_or_else(|| AdminError::Internal("chosen candidate has no placement".into()))?;
    let spelled = target.offered(&vtype).unwrap_or(type_name).to_string();
    let gpu = &target.gpus[gpu_i];
    let profile_name = gpu
        .model
        .and_then(|m| vtype.gi_profile(m))
        .map(|p| p.name.to_string())
        .unwrap_or_default();
    let relocated = Some(&target.host.moref) != vm.host.as_ref();
    let mut outcome = AssignOutcome {
        vm: vm.name.clone(),
        vm_moref: vm.moref.value().to_string(),
        vcenter: f.conn.target.host.clone(),
        vgpu_type: spelled.clone(),
        profile: profile_name.clone(),
        host: target.host.name.clone(),
        host_moref: target.host.moref.value().to_string(),
        from_host: current.clone(),
        relocated,
        gpu_index: gpu.report.index,
        gpu_uuid: gpu.report.uuid.clone(),
        placement: plan.placement,
        fragmentation_after: plan.fragmentation,
        dry_run,
        reservation: None,
    };
    if dry_run {
        return Ok(outcome);
    }

    // Reserve under the host's lock, re-checking on fresh data.
    let conn = f.conn;
    let client = &conn.client;
    let who = format!("{}@{}", conn.target.credentials.user(), conn.target.host);
    let lock = lock::acquire(
        client,
        &target.host.moref,
        &target.host.name,
        lock::holder(&who, &format!("assign {} to VM {}", spelled, vm.name)),
        LOCK_WAIT,
    )
    .await
    .map_err(|e| match e {
        lock::LockError::Busy { .. } => refuse(
            RefusalKind::LostRace,
            &vm.name,
            Some(&target.host.name),
            format!("VM {}: {e}", vm.name),
        ),
        lock::LockError::Vcenter(source) => AdminError::Vcenter {
            vcenter: conn.target.host.clone(),
            source,
        },
    })?;
    let reserved = reserve_locked(conn, &analysis, target, vm, &vtype, &spelled, &who).await;
    let released = lock.release().await;
    let reservation = reserved?;
    released.map_err(vc_err(conn))?;
    outcome.gpu_uuid = reservation.gpu_uuid.clone();
    outcome.gpu_index = target
        .gpus
        .iter()
        .find(|g| g.report.uuid == reservation.gpu_uuid)
        .map_or(outcome.gpu_index, |g| g.report.index);
    outcome.placement = reservation.placement;
    outcome.reservation = Some(reservation);

    if let Err(e) = apply_changes(conn, vm, f.compute, target, &spelled, relocated).await {
        // Give the slice back; the error says what failed.
        if let Err(undo) = clear_reservation(client, &vm.moref).await {
            tracing::warn!(vm = %vm.name, error = %undo, "could not clear the reservation after a failed assign");
        }
        return Err(e);
    }
    Ok(outcome)
}

fn check_host(h: &HostAnalysis, vm: &str, vtype: &VgpuType) -> Result<(), AdminError> {
    let name = h.host.name.as_str();
    if h.offered(vtype).is_none() {
        let offers = if h.host.vgpu_types.is_empty() {
            "no vGPU types".to_string()
        } else {
            h.host.vgpu_types.join(", ")
        };
        return Err(refuse(
            RefusalKind::TypeNotOffered,
            vm,
            Some(name),
            format!("VM {vm}: host {name} does not offer vGPU type {vtype} (it offers {offers})"),
        ));
    }
    if !h.usable() {
        let why = h.status_detail.clone().unwrap_or_else(|| {
            format!(
                "it is {}",
                h.host
                    .connection_state
                    .as_deref()
                    .unwrap_or("not connected")
            )
        });
        return Err(refuse(
            RefusalKind::NoAgentReport,
            vm,
            Some(name),
            format!(
                "VM {vm}: host {name} has no current vmig agent report ({why}), so its free MIG slices are unknown"
            ),
        ));
    }
    Ok(())
}

fn no_capacity(
    vm: &str,
    current: Option<&str>,
    pool: &[&HostAnalysis],
    vtype: &VgpuType,
    cluster: &str,
    choice: &HostChoice,
) -> AdminError {
    if let HostChoice::Named(name) = choice {
        return refuse(
            RefusalKind::NoCapacity,
            vm,
            Some(name),
            format!(
                "VM {vm}: host {name} has no free MIG slice for {vtype} (reservations by other VMs included)"
            ),
        );
    }
    let offering = pool.iter().filter(|h| h.offered(vtype).is_some()).count();
    let usable = pool
        .iter()
        .filter(|h| h.offered(vtype).is_some() && h.usable())
        .count();
    refuse(
        RefusalKind::NoCapacity,
        vm,
        current,
        format!(
            "VM {vm} on host {}: no host of {cluster} has a free MIG slice for {vtype} ({} host(s), {offering} offer the type, {usable} with a current agent report, reservations included)",
            current.unwrap_or("?"),
            pool.len()
        ),
    )
}

/// Every VM's reservation in the vCenter, fresh.
async fn read_reservations(client: &Client) -> crate::Result<Vec<HeldReservation>> {
    let keys = inventory::field_keys(client).await?;
    let Some(key) = keys.reservation else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    client
        .for_each_vm(
            &[VmProperty::Name, VmProperty::CustomValues],
            RetrieveOptions::default(),
            |v| {
                if let Some(text) = v.custom_values.get(key).filter(|t| !t.trim().is_empty())
                    && let Ok(r) = Reservation::from_json(text)
                {
                    out.push(HeldReservation {
                        vm: v.name.clone().unwrap_or_default(),
                        vm_moref: v.moref.value().to_string(),
                        reservation: r,
                    });
                }
                ControlFlow::Continue(())
            },
        )
        .await?;
    Ok(out)
}

/// Under the lock: fresh report + reservations, re-check, write the reservation.
async fn reserve_locked(
    conn: &Connection,
    analysis: &Analysis,
    target: &HostAnalysis,
    vm: &VmInfo,
    vtype: &VgpuType,
    spelled: &str,
    who: &str,
) -> Result<Reservation, AdminError> {
    let client = &conn.client;
    let err = vc_err(conn);
    let keys = inventory::field_keys(client).await.map_err(&err)?;
    let host = client
        .host(
            &target.host.moref,
            &[HostProperty::Name, HostProperty::CustomValues],
        )
        .await
        .map_err(&err)?;
    let doc = keys
        .document
        .and_then(|k| host.custom_values.get(k))
        .unwrap_or_default();
    let report = HostReport::from_json(doc).map_err(|e| {
        refuse(
            RefusalKind::NoAgentReport,
            &vm.name,
            Some(&target.host.name),
            format!(
                "VM {}: host {} has no readable vmig agent report now ({e})",
                vm.name, target.host.name
            ),
        )
    })?;
    let all = read_reservations(client).await.map_err(&err)?;
    let earlier: Vec<&str> = analysis
        .hosts
        .iter()
        .flat_map(|h| {
            h.gpus
                .iter()
                .flat_map(|g| g.reservations.iter().map(|r| r.held.vm_moref.as_str()))
        })
        .collect();
    let newcomers: Vec<String> = all
        .iter()
        .filter(|h| {
            h.reservation.host == target.host.moref.value()
                && !earlier.contains(&h.vm_moref.as_str())
        })
        .filter(|h| h.vm_moref != vm.moref.value())
        .map(|h| h.vm.clone())
        .collect();
    let held: Vec<HeldReservation> = all
        .into_iter()
        .filter(|h| {
            h.reservation.host == target.host.moref.value() && h.vm_moref != vm.moref.value()
        })
        .collect();
    let reported: Vec<Option<MigState>> = report
        .gpus
        .iter()
        .map(|g| gpu_model(g).and_then(|m| reported_state(g, m).ok()))
        .collect();
    let mut states = reported.clone();
    let applied = super::reservation::apply(&report, &mut states, held);
    // The same host, analysed again on the fresh report.
    let mut fresh = target.clone();
    fresh.gpus = report
        .gpus
        .iter()
        .zip(reported)
        .zip(states)
        .zip(applied)
        .map(|(((g, reported), state), reservations)| GpuAnalysis {
            report: g.clone(),
            model: gpu_model(g),
            reported,
            state,
            reservations,
            problem: None,
        })
        .collect();
    let cands = candidates([&fresh], vtype);
    let Some(best) = cands
        .iter()
        .filter(|c| c.choice().is_some())
        .min_by(|a, b| better(a, b))
    else {
        let by = if newcomers.is_empty() {
            "another change".to_string()
        } else {
            format!("VM {}", newcomers.join(", VM "))
        };
        return Err(refuse(
            RefusalKind::LostRace,
            &vm.name,
            Some(&target.host.name),
            format!(
                "VM {}: the last free MIG slice for {vtype} on host {} was just reserved by {by}; run vmig assign again to use another host",
                vm.name, target.host.name
            ),
        ));
    };
    let choice = best
        .choice()
        .ok_or_else(|| AdminError::Internal("candidate without choice".into()))?;
    let profile = best
        .state
        .gpu_model()
        .gi_profile(best.profile)
        .map(|p| p.name.to_string())
        .unwrap_or_default();
    let reservation = Reservation {
        schema: RESERVATION_SCHEMA.to_string(),
        host: target.host.moref.value().to_string(),
        host_name: target.host.name.clone(),
        gpu_uuid: best.gpu_uuid().to_string(),
        vgpu_type: spelled.to_string(),
        profile,
        profile_id: best.profile,
        placement: choice.placement,
        reserved_at: format_time(time::OffsetDateTime::now_utc()),
        by: who.to_string(),
        memory_locked_before: vm.memory_locked,
    };
    let def = client
        .ensure_custom_field(mig::report::FIELD_RESERVATION, Some(VmRef::KIND))
        .await
        .map_err(&err)?;
    client
        .set_custom_value(vm.moref.as_moref(), def.key, &reservation.to_json())
        .await
        .map_err(&err)?;
    Ok(reservation)
}

async fn clear_reservation(client: &Client, vm: &VmRef) -> crate::Result<bool> {
    let keys = inventory::field_keys(client).await?;
    let Some(key) = keys.reservation else {
        return Ok(false);
    };
    client.set_custom_value(vm.as_moref(), key, "").await?;
    Ok(true)
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
        clear_reservation(client, &vm.moref).await.map_err(&err)?
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
