//! One move of `vmig plan --apply`, with `assign`'s safety: the VM's lock for the whole move,
//! the destination host's lock around "re-check the plan, write the reservation" (fenced
//! with that lock's token), a journal in the reservation (`moving`, with the relocation's
//! task, then `done`) and the interrupt handling of `changes`. `vmig repair` finishes a move
//! that stopped (`repair`: moves the VM again when it is powered off, marks it done when it
//! arrived).
//!
//! A move re-books the VM's slice: its reservation is rewritten to name the destination
//! host, GPU and placement. A powered-off VM is then relocated (cold, when the host changes);
//! a running one is moved with vMotion (`RelocateVM_Task` on a powered-on VM; the planner
//! offers it only where vSphere allows it, see `plan`).

use mig::Placement;
use mig::defrag::MoveKind;
use vcenter_client::{HostRef, PowerState, VmRef};

use super::changes::{Changer, Ended, pool_toward};
use super::{lock_vm, release, reserve, vc_err};
use crate::inventory::VmInfo;
use crate::lock;
use crate::reservation::{RESERVATION_SCHEMA, Reservation, Step};
use crate::times::{format_time, vcenter_now};
use crate::{AdminError, Connection};

/// One planned move, resolved to vCenter objects.
#[derive(Debug, Clone)]
pub struct MoveOrder {
    /// Its number in the plan (1-based), for messages.
    pub step: usize,
    /// Cold (or a re-layout of a powered-off VM's slice) or live.
    pub kind: MoveKind,
    /// The VM.
    pub vm: VmRef,
    /// Its name.
    pub vm_name: String,
    /// Where it is.
    pub from_host: HostRef,
    /// That host's name.
    pub from_host_name: String,
    /// Where it goes.
    pub to_host: HostRef,
    /// That host's name.
    pub to_host_name: String,
    /// `GPU-…` UUID of the destination GPU.
    pub to_gpu: String,
    /// Destination placement.
    pub to: Placement,
    /// GI profile name.
    pub profile: String,
    /// GI profile id on that model.
    pub profile_id: mig::GiProfileId,
    /// The VM's vGPU type, as its host spells it.
    pub vgpu_type: String,
}

impl MoveOrder {
    /// `move 2 (VM db-1 from host H1 to host H3)`.
    pub fn describe(&self) -> String {
        format!(
            "move {} (VM {} from host {} to host {})",
            self.step, self.vm_name, self.from_host_name, self.to_host_name
        )
    }
}

/// How a move ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveEnd {
    /// The VM and its reservation are at the destination.
    Done,
    /// The plan no longer holds (the sentence says what changed): nothing of this move was
    /// changed.
    Replan(String),
}

/// Executes `order`. `recheck` runs under the VM's and the destination host's locks, just
/// before the reservation is rewritten, and answers `Some(why)` when the plan no longer
/// holds. A move whose relocation vCenter reports failed is undone (the old reservation
/// back) and returned as an error naming the move; a stop (signal, lost vCenter, a task still
/// running) leaves the journal for `vmig repair`.
pub async fn move_one<F>(
    conn: &Connection,
    order: &MoveOrder,
    recheck: F,
) -> Result<MoveEnd, AdminError>
where
    F: AsyncFnOnce() -> Result<Option<String>, AdminError>,
{
    if crate::interrupt::interrupted() {
        return Err(AdminError::Incomplete(format!(
            "interrupted before {}; nothing of it was started",
            order.describe()
        )));
    }
    let vm = VmInfo::reread(&conn.client, &order.vm)
        .await
        .map_err(vc_err(conn))?;
    let mut vm_lock = lock_vm(conn, &vm, &format!("plan --apply: {}", order.describe())).await?;
    let done = move_locked(conn, order, recheck, &mut vm_lock).await;
    release(vm_lock).await;
    done
}

/// What the VM must look like for `order` to run: on its source host, powered off for a
/// cold move and on for a live one.
fn still_as_planned(order: &MoveOrder, vm: &VmInfo) -> Option<String> {
    if vm.host.as_ref() != Some(&order.from_host) {
        return Some(format!(
            "VM {} is no longer on host {}",
            order.vm_name, order.from_host_name
        ));
    }
    let off = vm.power_state == Some(PowerState::PoweredOff);
    match order.kind {
        MoveKind::Live if off => Some(format!("VM {} was powered off", order.vm_name)),
        MoveKind::Cold | MoveKind::Relayout if !off => {
            Some(format!("VM {} was powered on", order.vm_name))
        }
        _ => None,
    }
}

async fn move_locked<F>(
    conn: &Connection,
    order: &MoveOrder,
    recheck: F,
    vm_lock: &mut lock::Lock,
) -> Result<MoveEnd, AdminError>
where
    F: AsyncFnOnce() -> Result<Option<String>, AdminError>,
{
    let err = vc_err(conn);
    let vm = VmInfo::reread(&conn.client, &order.vm)
        .await
        .map_err(&err)?;
    if let Some(why) = still_as_planned(order, &vm) {
        return Ok(MoveEnd::Replan(why));
    }
    let old = vm.reservation.clone();
    let previous = old.as_deref().and_then(|t| Reservation::from_json(t).ok());
    if let Some(r) = &previous
        && r.step() != Step::Done
    {
        return Ok(MoveEnd::Replan(format!(
            "VM {} has a half-done {} (step {}): run `vmig repair --vm {}` first",
            order.vm_name,
            r.step().command(),
            r.step().as_str(),
            order.vm_name
        )));
    }
    let who = reserve::who(conn);
    let host_lock = lock::acquire(
        &conn.client,
        lock::Target::Host(&order.to_host),
        &format!("host {}", order.to_host_name),
        &who,
        &format!("plan --apply: {}", order.describe()),
        reserve::LOCK_WAIT,
    )
    .await
    .map_err(|e| reserve::lock_err(conn, &order.vm_name, Some(&order.to_host_name), e))?;
    let booked = book(conn, order, recheck, previous, &who, vm_lock, &host_lock).await;
    if let Err(e) = host_lock.release().await {
        tracing::warn!(host = %order.to_host_name, error = %e, "could not release the host lock; it goes stale on its own");
    }
    let reservation = match booked? {
        Ok(r) => r,
        Err(why) => return Ok(MoveEnd::Replan(why)),
    };
    let mut changer = Changer {
        conn,
        vm: &order.vm,
        vm_name: &order.vm_name,
        key: super::reservation_key(conn).await?,
        reservation,
        vm_lock,
        command: "plan --apply",
    };
    if order.to_host == order.from_host {
        changer.record(Step::Done, None).await?;
        return Ok(MoveEnd::Done);
    }
    let pool = pool_toward(&conn.client, &order.vm, &order.to_host)
        .await
        .map_err(&err)?;
    match changer.move_to(&order.to_host, pool).await? {
        Ended::Done => Ok(MoveEnd::Done),
        Ended::Failed(e) => {
            // Nothing moved: the VM keeps its slice where it was.
            let back = old.unwrap_or_default();
            if let Err(undo) = conn
                .client
                .set_custom_value(order.vm.as_moref(), changer.key, &back)
                .await
            {
                tracing::warn!(vm = %order.vm_name, error = %undo, "could not put the reservation back after a failed move; run vmig repair");
            }
            Err(AdminError::Incomplete(format!(
                "{} failed: {}; the VM stays on host {} with its reservation as before; the moves before it are done: run `vmig plan` again",
                order.describe(),
                err(e),
                order.from_host_name
            )))
        }
    }
}

/// Under both locks: re-check the plan, then rewrite the reservation for the destination
/// (fenced). `Ok(Err(why))`: the plan no longer holds, nothing was written.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site; the locks and the order are all distinct"
)]
async fn book<F>(
    conn: &Connection,
    order: &MoveOrder,
    recheck: F,
    previous: Option<Reservation>,
    who: &str,
    vm_lock: &lock::Lock,
    host_lock: &lock::Lock,
) -> Result<Result<Reservation, String>, AdminError>
where
    F: AsyncFnOnce() -> Result<Option<String>, AdminError>,
{
    if let Some(why) = recheck().await? {
        return Ok(Err(why));
    }
    // A move re-books one vGPU; a VM with several (issue 18) would lose the others' booking.
    if previous.as_ref().is_some_and(|r| !r.more.is_empty()) {
        return Ok(Err(format!(
            "VM {} has several vGPUs, which plan --apply does not move yet",
            order.vm_name
        )));
    }
    let err = vc_err(conn);
    let client = &conn.client;
    let now = vcenter_now(client).await.map_err(&err)?;
    let expires = previous
        .as_ref()
        .and_then(|r| r.expires_at.clone())
        .unwrap_or_else(|| {
            format_time(
                now + time::Duration::try_from(super::DEFAULT_RESERVE_FOR)
                    .unwrap_or(time::Duration::MAX),
            )
        });
    let vm = VmInfo::reread(client, &order.vm).await.map_err(&err)?;
    let reservation = Reservation {
        schema: RESERVATION_SCHEMA.to_string(),
        host: order.to_host.value().to_string(),
        host_name: order.to_host_name.clone(),
        gpu_uuid: order.to_gpu.clone(),
        vgpu_type: order.vgpu_type.clone(),
        profile: order.profile.clone(),
        profile_id: order.profile_id,
        placement: order.to,
        reserved_at: format_time(now),
        by: who.to_string(),
        memory_locked_before: previous.as_ref().and_then(|r| r.memory_locked_before),
        token: Some(host_lock.token()),
        step: Some(Step::Moving),
        task: None,
        from_host: Some(order.from_host.value().to_string()),
        expires_at: Some(expires),
        vm_uuid: vm.uuid.clone(),
        more: Vec::new(),
        time_sliced: false,
    };
    let def = client
        .ensure_custom_field(mig::report::FIELD_RESERVATION, Some(VmRef::KIND))
        .await
        .map_err(&err)?;
    let fenced = |e| reserve::lock_err(conn, &order.vm_name, Some(&order.to_host_name), e);
    vm_lock.check().await.map_err(fenced)?;
    host_lock.check().await.map_err(fenced)?;
    client
        .set_custom_value(order.vm.as_moref(), def.key, &reservation.to_json())
        .await
        .map_err(&err)?;
    if let Err(lost) = host_lock.check().await {
        // A late write after the lock was broken: put the old reservation back.
        let back = previous.map(|r| r.to_json()).unwrap_or_default();
        let _ = client
            .set_custom_value(order.vm.as_moref(), def.key, &back)
            .await;
        return Err(fenced(lost));
    }
    Ok(Ok(reservation))
}
