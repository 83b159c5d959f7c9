//! Recording the reservation: under the host's lock ([`crate::lock`]), re-read the host's
//! agent report and every reservation, re-check that a slice is still free, and write
//! `vmig.reservation` on the VM. From then on `capacity` and other `assign`s count the slice;
//! losing the race is a refusal.
//!
//! Fencing: just before the write both locks (the VM's, held by the caller, and the host's)
//! are checked to still exist with their keys; the reservation carries the host lock's key
//! as its token; just after the write the host lock is checked again and, if it was broken
//! meanwhile, the reservation is taken back (when it still carries this token).

use std::ops::ControlFlow;
use std::time::Duration;

use mig::MigState;
use mig::report::{GpuReport, HostReport};
use mig::vgpu_slots::GpuSlots;
use vcenter_client::{Client, HostProperty, RetrieveOptions, VmProperty, VmRef};

use super::multi::{Placed, Wanted, place_all};
use super::{refuse, vc_err};
use crate::analysis::{Analysis, GpuAnalysis, HostAnalysis, gpu_model, reported_state};
use crate::inventory::{self, VmInfo};
use crate::lock;
use crate::reservation::{
    AppliedReservation, HeldReservation, MoreVgpu, RESERVATION_SCHEMA, Reservation,
    ReservationStatus, Step,
};
use crate::times::format_time;
use crate::{AdminError, Connection, RefusalKind};

/// How long `assign` waits for another admin's lock on the same host or VM.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);

/// What the reservation records besides the slice.
pub(super) struct Journal<'a> {
    /// The VM's host before `assign` (moref value).
    pub from_host: Option<String>,
    /// Expiry (vCenter time, RFC 3339).
    pub expires_at: String,
    /// vCenter's time when the reservation is made.
    pub now: time::OffsetDateTime,
    /// The VM's lock, held by the caller.
    pub vm_lock: &'a lock::Lock,
}

/// `user@vcenter`, as locks and reservations name their writer.
pub(super) fn who(conn: &Connection) -> String {
    format!("{}@{}", conn.target.credentials.user(), conn.target.host)
}

/// A lock failure as `assign` reports it: a busy lock or a broken one is a refusal naming
/// the VM; a vCenter error stays one.
pub(super) fn lock_err(
    conn: &Connection,
    vm: &str,
    host: Option<&str>,
    e: lock::LockError,
) -> AdminError {
    match e {
        lock::LockError::Busy { .. } => {
            let kind = if host.is_some() {
                RefusalKind::LostRace
            } else {
                RefusalKind::VmBusy
            };
            refuse(kind, vm, host, format!("VM {vm}: {e}"))
        }
        lock::LockError::Lost { .. } => refuse(
            RefusalKind::LockLost,
            vm,
            host,
            format!("VM {vm}: {e}; run vmig assign again"),
        ),
        lock::LockError::Vcenter(source) => AdminError::Vcenter {
            vcenter: conn.target.host.clone(),
            source,
        },
    }
}

/// Takes `target`'s lock, reserves a slice of `vtype` (spelled `spelled`) for `vm` on it,
/// and releases the lock. A failure to release only warns: the reservation is written and
/// the caller's remaining steps must run (the lock goes stale on its own).
pub(super) async fn reserve(
    conn: &Connection,
    analysis: &Analysis,
    target: &HostAnalysis,
    vm: &VmInfo,
    wanted: &[Wanted],
    journal: &Journal<'_>,
) -> Result<Reservation, AdminError> {
    let spelled = spelled_list(wanted);
    let who = who(conn);
    let host = Some(target.host.name.as_str());
    let lock = lock::acquire(
        &conn.client,
        lock::Target::Host(&target.host.moref),
        &format!("host {}", target.host.name),
        &who,
        &format!("assign {} to VM {}", spelled, vm.name),
        LOCK_WAIT,
    )
    .await
    .map_err(|e| lock_err(conn, &vm.name, host, e))?;
    let reserved = reserve_locked(conn, analysis, target, vm, wanted, &who, journal, &lock).await;
    if let Err(e) = lock.release().await {
        tracing::warn!(host = %target.host.name, error = %e, "could not release the host lock; it goes stale on its own");
    }
    reserved
}

/// The types as one list for messages and lock notes (`a, b`).
pub(super) fn spelled_list(wanted: &[Wanted]) -> String {
    wanted
        .iter()
        .map(|w| w.spelled.as_str())
        .collect::<Vec<_>>()
        .join(", ")
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
            &[VmProperty::Name, VmProperty::Uuid, VmProperty::CustomValues],
            RetrieveOptions::default(),
            |v| {
                if let Some(text) = v.custom_values.get(key).filter(|t| !t.trim().is_empty())
                    && let Ok(mut r) = Reservation::from_json(text)
                {
                    if r.vm_uuid.is_none() {
                        r.vm_uuid = v.uuid.as_ref().map(|u| u.as_str().to_string());
                    }
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

/// Under the lock: fresh report + reservations, re-check, write the reservation (fenced).
#[allow(
    clippy::too_many_arguments,
    reason = "one call site; the pieces are all distinct"
)]
async fn reserve_locked(
    conn: &Connection,
    analysis: &Analysis,
    target: &HostAnalysis,
    vm: &VmInfo,
    wanted: &[Wanted],
    who: &str,
    journal: &Journal<'_>,
    host_lock: &lock::Lock,
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
    let fresh = reanalyse(target, &report, held, journal.now);
    let Some(placed) = place_all(&fresh, wanted).map(|f| f.placed) else {
        let by = if newcomers.is_empty() {
            "another change".to_string()
        } else {
            format!("VM {}", newcomers.join(", VM "))
        };
        let message = if let [w] = wanted {
            format!(
                "VM {}: the last free MIG slice for {} on host {} was just reserved by {by}; run vmig assign again to use another host",
                vm.name, w.vtype, target.host.name
            )
        } else {
            format!(
                "VM {}: the free MIG slices for all of {} together on host {} were just reserved by {by}; run vmig assign again to use another host",
                vm.name,
                spelled_list(wanted),
                target.host.name
            )
        };
        return Err(refuse(
            RefusalKind::LostRace,
            &vm.name,
            Some(&target.host.name),
            message,
        ));
    };
    let one = |w: &Wanted, p: &Placed| MoreVgpu {
        gpu_uuid: fresh.gpus[p.gpu].report.uuid.clone(),
        vgpu_type: w.spelled.clone(),
        profile: p.profile_name.clone(),
        profile_id: p.profile,
        placement: p.placement(),
        time_sliced: p.sliced.is_some(),
    };
    let first = one(&wanted[0], &placed[0]);
    let reservation = Reservation {
        schema: RESERVATION_SCHEMA.to_string(),
        host: target.host.moref.value().to_string(),
        host_name: target.host.name.clone(),
        gpu_uuid: first.gpu_uuid,
        vgpu_type: first.vgpu_type,
        profile: first.profile,
        profile_id: first.profile_id,
        placement: first.placement,
        reserved_at: format_time(journal.now),
        by: who.to_string(),
        memory_locked_before: vm.memory_locked,
        token: Some(host_lock.token()),
        step: Some(Step::Reserved),
        task: None,
        from_host: journal.from_host.clone(),
        expires_at: Some(journal.expires_at.clone()),
        vm_uuid: vm.uuid.clone(),
        more: wanted[1..]
            .iter()
            .zip(&placed[1..])
            .map(|(w, p)| one(w, p))
            .collect(),
        time_sliced: first.time_sliced,
    };
    let def = client
        .ensure_custom_field(mig::report::FIELD_RESERVATION, Some(VmRef::KIND))
        .await
        .map_err(&err)?;
    let fenced = |e| super::reserve::lock_err(conn, &vm.name, Some(&target.host.name), e);
    journal.vm_lock.check().await.map_err(fenced)?;
    host_lock.check().await.map_err(fenced)?;
    client
        .set_custom_value(vm.moref.as_moref(), def.key, &reservation.to_json())
        .await
        .map_err(&err)?;
    // A write that slipped in after the lock was broken: take it back if it is still ours
    // (readers would count it as superseded anyway).
    if let Err(lost) = host_lock.check().await {
        let still_ours = VmInfo::reread(client, &vm.moref)
            .await
            .ok()
            .and_then(|v| v.reservation)
            .and_then(|t| Reservation::from_json(&t).ok())
            .is_some_and(|r| r.token == reservation.token);
        if still_ours {
            let _ = clear_reservation(client, &vm.moref).await;
        }
        return Err(fenced(lost));
    }
    Ok(reservation)
}

/// Where a journaled reservation stands now among every reservation on its host, judged as
/// readers judge it ([`crate::reservation::apply`] on the host's fresh report).
pub(super) struct Standing {
    /// Its status.
    pub status: ReservationStatus,
    /// When superseded: the VM and token of the reservation that holds its placement.
    pub by: Option<(String, i64)>,
}

/// How `vm`'s reservation `r` stands at vCenter time `now` (host `r.host` of vCenter `vi`):
/// `None` when that cannot be judged (the host is not in the inventory or its agent report
/// cannot be read now).
pub(super) async fn standing(
    conn: &Connection,
    analysis: &Analysis,
    vi: usize,
    vm: &VmInfo,
    r: &Reservation,
    now: time::OffsetDateTime,
) -> Result<Option<Standing>, AdminError> {
    let Some(target) = analysis
        .hosts
        .iter()
        .find(|h| h.vcenter == vi && h.host.moref.value() == r.host)
    else {
        return Ok(None);
    };
    let report = match fresh_report(conn, target, vm).await {
        Ok(report) => report,
        Err(AdminError::Refused(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let held: Vec<HeldReservation> = read_reservations(&conn.client)
        .await
        .map_err(vc_err(conn))?
        .into_iter()
        .filter(|h| h.reservation.host == r.host)
        .collect();
    let fresh = reanalyse(target, &report, held, now);
    let mine = |a: &&AppliedReservation| a.held.vm_moref == vm.moref.value();
    // A multi-vGPU reservation stands as its worst vGPU: one superseded or unplaceable
    // placement stops the whole of it.
    let worst = |s: ReservationStatus| match s {
        ReservationStatus::Superseded => 2,
        ReservationStatus::Unplaceable => 1,
        _ => 0,
    };
    let Some((gpu, status)) = fresh
        .gpus
        .iter()
        .flat_map(|g| {
            g.reservations
                .iter()
                .filter(mine)
                .map(move |a| (&g.reservations, a.status))
        })
        .rev()
        .max_by_key(|(_, s)| worst(*s))
    else {
        return Ok(None);
    };
    let by = (status == ReservationStatus::Superseded)
        .then(|| {
            gpu.iter().find_map(|a| {
                let t = a.held.reservation.token?;
                (t > r.token.unwrap_or(i64::MIN)
                    && a.placement.is_some_and(|p| p.overlaps(r.placement)))
                .then(|| (a.held.vm.clone(), t))
            })
        })
        .flatten();
    Ok(Some(Standing { status, by }))
}

/// Clears `vm`'s reservation (vCenter has no "unset": the value becomes empty); `false`
/// when no VM in this vCenter ever had one.
pub(crate) async fn clear_reservation(client: &Client, vm: &VmRef) -> vcenter_client::Result<bool> {
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
    now: time::OffsetDateTime,
) -> HostAnalysis {
    let reported: Vec<Option<MigState>> = report
        .gpus
        .iter()
        .map(|g| gpu_model(g).and_then(|m| reported_state(g, m).ok()))
        .collect();
    let mut states = reported.clone();
    let mut slots: Vec<GpuSlots> = report.gpus.iter().map(GpuReport::gpu_slots).collect();
    let applied = crate::reservation::apply(report, &mut states, &mut slots, held, now);
    let mut fresh = target.clone();
    fresh.gpus = report
        .gpus
        .iter()
        .zip(reported)
        .zip(states.into_iter().zip(slots))
        .zip(applied)
        .map(
            |(((g, reported), (state, slots)), reservations)| GpuAnalysis {
                report: g.clone(),
                model: gpu_model(g),
                reported,
                state,
                slots,
                reservations,
                problem: None,
            },
        )
        .collect();
    fresh
}
