//! The checks `assign` makes before it plans, each refusal one sentence naming the VM, the
//! host and the reason.

use mig::VgpuType;
use vcenter_client::PowerState;

use super::{Found, HostChoice, refuse, vm_vgpus};
use crate::analysis::HostAnalysis;
use crate::inventory::VmInfo;
use crate::{AdminError, RefusalKind};

/// Whether the VM can be given a vGPU of `vtype`: it is powered off and has no vGPU yet (one
/// of another type is a refusal, one of this type is nothing to do). `current` names its host.
pub(super) async fn vm_can_take(
    f: &Found<'_>,
    vtype: &VgpuType,
    current: Option<&str>,
) -> Result<(), AdminError> {
    let vm = f.vm;
    let cur = current;
    powered_off(vm, cur, "adds a vGPU only to")?;
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
    Ok(())
}

/// Whether host `h` can take `vtype` at all: it offers the type and its capacity is known.
pub(super) fn host_can_take(
    h: &HostAnalysis,
    vm: &str,
    vtype: &VgpuType,
) -> Result<(), AdminError> {
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

/// The refusal when no candidate GPU fits, saying how many hosts were looked at and why
/// they did not count.
pub(super) fn no_capacity(
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

/// Refuses unless `vm` is powered off: vSphere changes a VM's vGPUs only then. `what` is the
/// change, as in "vSphere adds a vGPU only to a powered-off VM".
pub(super) fn powered_off(
    vm: &VmInfo,
    current: Option<&str>,
    what: &str,
) -> Result<(), AdminError> {
    if vm.power_state == Some(PowerState::PoweredOff) {
        return Ok(());
    }
    let state = vm.power_state.map_or_else(
        || "in an unknown power state".to_string(),
        |p| p.to_string(),
    );
    Err(refuse(
        RefusalKind::VmPoweredOn,
        &vm.name,
        current,
        format!(
            "VM {} on host {} is {state}; power it off first: vSphere {what} a powered-off VM",
            vm.name,
            current.unwrap_or("?")
        ),
    ))
}
