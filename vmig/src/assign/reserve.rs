//! Recording the reservation: under the host's lock ([`crate::lock`]), re-read the host's
//! agent report and every reservation, re-check that a slice is still free, and write
//! `vmig.reservation` on the VM. From then on `capacity` and other `assign`s count the slice;
//! losing the race is a refusal.

use std::ops::ControlFlow;
use std::time::Duration;

use mig::report::HostReport;
use mig::{MigState, VgpuType};
use vcenter_client::{Client, HostProperty, RetrieveOptions, VmProperty, VmRef};

use super::{refuse, vc_err};
use crate::analysis::{Analysis, GpuAnalysis, HostAnalysis, gpu_model, reported_state};
use crate::capacity::{better, candidates};
use crate::inventory::{self, VmInfo};
use crate::lock;
use crate::reservation::{HeldReservation, RESERVATION_SCHEMA, Reservation};
use crate::times::format_time;
use crate::{AdminError, Connection, RefusalKind};

/// How long `assign` waits for another admin's lock on the same host.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);

/// Takes `target`'s lock, reserves a slice of `vtype` (spelled `spelled`) for `vm` on it,
/// and releases the lock.
pub(super) async fn reserve(
    conn: &Connection,
    analysis: &Analysis,
    target: &HostAnalysis,
    vm: &VmInfo,
    vtype: &VgpuType,
    spelled: &str,
) -> Result<Reservation, AdminError> {
    let who = format!("{}@{}", conn.target.credentials.user(), conn.target.host);
    let lock = lock::acquire(
        &conn.client,
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
    let reserved = reserve_locked(conn, analysis, target, vm, vtype, spelled, &who).await;
    let released = lock.release().await;
    let reservation = reserved?;
    released.map_err(vc_err(conn))?;
    Ok(reservation)
}

/// Every VM's reservation in the vCenter, fresh.
async fn read_reservations(client: &Client) -> vcenter_client::Result<Vec<HeldReservation>> {
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
    let report = fresh_report(conn, target, vm).await?;
    let all = read_reservations(client).await.map_err(&err)?;
    let newcomers = newcomers(analysis, &all, target, vm);
    let held: Vec<HeldReservation> = all
        .into_iter()
        .filter(|h| {
            h.reservation.host == target.host.moref.value() && h.vm_moref != vm.moref.value()
        })
        .collect();
    let fresh = reanalyse(target, &report, held);
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

/// Clears `vm`'s reservation (vCenter has no "unset": the value becomes empty); `false`
/// when no VM in this vCenter ever had one.
pub(super) async fn clear_reservation(client: &Client, vm: &VmRef) -> vcenter_client::Result<bool> {
    let keys = inventory::field_keys(client).await?;
    let Some(key) = keys.reservation else {
        return Ok(false);
    };
    client.set_custom_value(vm.as_moref(), key, "").await?;
    Ok(true)
}

/// The host's agent report as it is now; none, or an unreadable one, is a refusal.
async fn fresh_report(
    conn: &Connection,
    target: &HostAnalysis,
    vm: &VmInfo,
) -> Result<HostReport, AdminError> {
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
    HostReport::from_json(doc).map_err(|e| {
        refuse(
            RefusalKind::NoAgentReport,
            &vm.name,
            Some(&target.host.name),
            format!(
                "VM {}: host {} has no readable vmig agent report now ({e})",
                vm.name, target.host.name
            ),
        )
    })
}

/// The VMs (other than `vm`) that reserved on `target` since `analysis` was made: the ones a
/// lost race names.
fn newcomers(
    analysis: &Analysis,
    all: &[HeldReservation],
    target: &HostAnalysis,
    vm: &VmInfo,
) -> Vec<String> {
    let earlier: Vec<&str> = analysis
        .hosts
        .iter()
        .flat_map(|h| {
            h.gpus
                .iter()
                .flat_map(|g| g.reservations.iter().map(|r| r.held.vm_moref.as_str()))
        })
        .collect();
    all.iter()
        .filter(|h| {
            h.reservation.host == target.host.moref.value()
                && !earlier.contains(&h.vm_moref.as_str())
        })
        .filter(|h| h.vm_moref != vm.moref.value())
        .map(|h| h.vm.clone())
        .collect()
}

/// `target` analysed again on its fresh `report` with the reservations `held` on it.
fn reanalyse(
    target: &HostAnalysis,
    report: &HostReport,
    held: Vec<HeldReservation>,
) -> HostAnalysis {
    let reported: Vec<Option<MigState>> = report
        .gpus
        .iter()
        .map(|g| gpu_model(g).and_then(|m| reported_state(g, m).ok()))
        .collect();
    let mut states = reported.clone();
    let applied = crate::reservation::apply(report, &mut states, held);
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
    fresh
}
