//! Applies property-collector updates to a vCenter's inventory in place.
//!
//! The inventory reader ([`crate::inventory`]) decides which VMs a report keeps and reads
//! device lists only where they matter; an update that could change those decisions (a host
//! or compute resource added or removed, a VM moved to another host, a VM that was not kept
//! gaining a reservation, vmig's custom fields defined after the read) is not patched but
//! answered with a full re-read ([`Effect::Resync`]). Everything else that the report shows
//! and that changes often (agent documents, connection and power states, reservations, names)
//! is patched in place, so the usual change costs one re-analysis and no vCenter call.

use vcenter_client::{CustomValues, MoRef, ObjectUpdate, UpdateKind, UpdateSet};

use crate::inventory::{HostInfo, VcenterInventory, VmInfo};

/// Host properties the update collector watches.
pub const HOST_PATHS: &[&str] = &["name", "customValue", "runtime.connectionState"];
/// VM properties the update collector watches (no device list: ~6 KB per VM).
pub const VM_PATHS: &[&str] = &["name", "customValue", "runtime.host", "runtime.powerState"];

/// What an update set did to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effect {
    /// Nothing the report shows.
    None,
    /// Patched: analyse again.
    Changed,
    /// Cannot be patched: read the inventory again.
    Resync,
}

/// Applies `set` to `inv`.
pub fn apply(inv: &mut VcenterInventory, set: &UpdateSet) -> Effect {
    let mut effect = Effect::None;
    for u in &set.objects {
        let e = match (u.obj.kind(), u.kind) {
            ("HostSystem", UpdateKind::Modify) => apply_host(inv, u),
            // A host added or removed changes its compute resource's membership.
            ("HostSystem", _) => Effect::Resync,
            ("VirtualMachine", UpdateKind::Leave) => remove_vm(inv, &u.obj),
            ("VirtualMachine", _) => apply_vm(inv, u),
            _ => Effect::None,
        };
        effect = effect.max(e);
        if effect == Effect::Resync {
            break;
        }
    }
    effect
}

fn host_mut<'a>(inv: &'a mut VcenterInventory, obj: &MoRef) -> Option<&'a mut HostInfo> {
    inv.datacenters
        .iter_mut()
        .flat_map(|d| d.compute.iter_mut())
        .flat_map(|c| c.hosts.iter_mut())
        .find(|h| h.moref.as_moref() == obj)
}

fn vm_mut<'a>(inv: &'a mut VcenterInventory, obj: &MoRef) -> Option<&'a mut VmInfo> {
    inv.datacenters
        .iter_mut()
        .flat_map(|d| d.compute.iter_mut())
        .flat_map(|c| c.vms.iter_mut())
        .find(|v| v.moref.as_moref() == obj)
}

/// The non-empty value of one custom field in an update's `customValue`.
fn custom_value(u: &ObjectUpdate, key: vcenter_client::CustomFieldKey) -> Option<String> {
    let node = u.value("customValue")?;
    let values = CustomValues::from_node(node).ok()?;
    values
        .get(key)
        .filter(|v| !v.trim().is_empty())
        .map(str::to_string)
}

fn set_if_changed<T: PartialEq>(slot: &mut T, value: T, effect: &mut Effect) {
    if *slot != value {
        *slot = value;
        *effect = (*effect).max(Effect::Changed);
    }
}

fn apply_host(inv: &mut VcenterInventory, u: &ObjectUpdate) -> Effect {
    let document_key = inv.fields.document;
    let Some(h) = host_mut(inv, &u.obj) else {
        // Out of scope (another datacenter or cluster than asked for).
        return Effect::None;
    };
    let mut effect = Effect::None;
    if u.changed("customValue") {
        match document_key {
            Some(k) => set_if_changed(&mut h.document, custom_value(u, k), &mut effect),
            // vmig.mig was defined after the read: its key must be read again.
            None if u
                .value("customValue")
                .is_some_and(|n| !n.children().is_empty()) =>
            {
                return Effect::Resync;
            }
            None => {}
        }
    }
    if let Some(n) = u.value("name") {
        set_if_changed(&mut h.name, n.text().to_string(), &mut effect);
    }
    if u.changed("runtime.connectionState") {
        let state = u
            .value("runtime.connectionState")
            .map(|n| n.text().to_string());
        set_if_changed(&mut h.connection_state, state, &mut effect);
    }
    effect
}

fn apply_vm(inv: &mut VcenterInventory, u: &ObjectUpdate) -> Effect {
    let reservation_key = inv.fields.reservation;
    let Some(v) = vm_mut(inv, &u.obj) else {
        // A VM the report did not keep matters once it holds a reservation.
        let reserved = match reservation_key {
            Some(k) => custom_value(u, k).is_some(),
            None => u
                .value("customValue")
                .is_some_and(|n| !n.children().is_empty()),
        };
        return if reserved {
            Effect::Resync
        } else {
            Effect::None
        };
    };
    let mut effect = Effect::None;
    if u.changed("runtime.host") {
        let host = u.value("runtime.host").and_then(|n| n.to_moref().ok());
        if host.as_ref() != v.host.as_ref().map(|h| h.as_moref()) {
            // Moved: possibly to another compute resource, whose VM list it must join.
            return Effect::Resync;
        }
    }
    if u.changed("customValue") {
        match reservation_key {
            Some(k) => set_if_changed(&mut v.reservation, custom_value(u, k), &mut effect),
            None if u
                .value("customValue")
                .is_some_and(|n| !n.children().is_empty()) =>
            {
                return Effect::Resync;
            }
            None => {}
        }
    }
    if let Some(n) = u.value("name") {
        set_if_changed(&mut v.name, n.text().to_string(), &mut effect);
    }
    if u.changed("runtime.powerState") {
        let state = u
            .value("runtime.powerState")
            .and_then(|n| n.text().parse().ok());
        set_if_changed(&mut v.power_state, state, &mut effect);
    }
    effect
}

fn remove_vm(inv: &mut VcenterInventory, obj: &MoRef) -> Effect {
    let mut effect = Effect::None;
    for c in inv
        .datacenters
        .iter_mut()
        .flat_map(|d| d.compute.iter_mut())
    {
        let before = c.vms.len();
        c.vms.retain(|v| v.moref.as_moref() != obj);
        if c.vms.len() != before {
            effect = Effect::Changed;
        }
    }
    effect
}
