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

/// Whether the update carries any custom value at all.
fn has_custom_values(u: &ObjectUpdate) -> bool {
    u.value("customValue")
        .is_some_and(|n| !n.children().is_empty())
}

/// Puts the value of vmig's field `key` from a `customValue` change into `slot`. `false`
/// when the field was defined after the read (no key yet) and the object now has custom
/// values: the key must be read again, which only a full read does.
fn update_field(
    u: &ObjectUpdate,
    key: Option<vcenter_client::CustomFieldKey>,
    slot: &mut Option<String>,
    effect: &mut Effect,
) -> bool {
    match key {
        Some(k) => {
            set_if_changed(slot, custom_value(u, k), effect);
            true
        }
        None => !has_custom_values(u),
    }
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
    if u.changed("customValue") && !update_field(u, document_key, &mut h.document, &mut effect) {
        return Effect::Resync;
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
            None => has_custom_values(u),
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
    if u.changed("customValue")
        && !update_field(u, reservation_key, &mut v.reservation, &mut effect)
    {
        return Effect::Resync;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{ComputeInventory, DatacenterInventory, FieldKeys};
    use vcenter_client::{CustomFieldKey, HostRef, VmRef};

    fn inventory() -> VcenterInventory {
        let host = HostInfo {
            moref: HostRef::new("host-1"),
            name: "h1".into(),
            connection_state: Some("connected".into()),
            bios_uuid: None,
            vgpu_types: Vec::new(),
            graphics: Vec::new(),
            document: Some("old".into()),
        };
        let vm = VmInfo {
            moref: VmRef::new("vm-1"),
            name: "v1".into(),
            uuid: None,
            host: Some(HostRef::new("host-1")),
            power_state: None,
            memory_locked: None,
            reservation: None,
            vgpus: Vec::new(),
            devices_read: true,
        };
        VcenterInventory {
            name: "vc".into(),
            url: "https://vc/sdk".into(),
            product: "test".into(),
            server_time: None,
            fields: FieldKeys {
                document: Some(CustomFieldKey(101)),
                reservation: Some(CustomFieldKey(102)),
            },
            datacenters: vec![DatacenterInventory {
                moref: MoRef::new("Datacenter", "dc-1"),
                name: "dc".into(),
                compute: vec![ComputeInventory {
                    moref: MoRef::new("ClusterComputeResource", "c-1"),
                    name: "c".into(),
                    is_cluster: true,
                    hosts: vec![host],
                    vms: vec![vm],
                }],
            }],
            requests: 0,
            objects: 0,
        }
    }

    fn set(objects: &str) -> UpdateSet {
        let xml = format!(
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><WaitForUpdatesExResponse xmlns="urn:vim25"><returnval><version>2</version><filterSet><filter type="PropertyFilter">f</filter>{objects}</filterSet></returnval></WaitForUpdatesExResponse></soapenv:Body></soapenv:Envelope>"#
        );
        let resp = vcenter_client::soap::decode::parse_whole(xml.as_bytes(), "WaitForUpdatesEx")
            .expect("XML");
        UpdateSet::from_node(resp.child("returnval").expect("returnval")).expect("update set")
    }

    fn custom(obj: &str, key: i32, value: &str) -> String {
        format!(
            r#"<objectSet><kind>modify</kind><obj type="{}">{obj}</obj><changeSet><name>customValue</name><op>assign</op><val xsi:type="ArrayOfCustomFieldValue"><CustomFieldValue xsi:type="CustomFieldStringValue"><key>{key}</key><value>{value}</value></CustomFieldValue></val></changeSet></objectSet>"#,
            if obj.starts_with("host") {
                "HostSystem"
            } else {
                "VirtualMachine"
            }
        )
    }

    #[test]
    fn documents_and_states_are_patched_in_place() {
        let mut inv = inventory();
        assert_eq!(
            apply(&mut inv, &set(&custom("host-1", 101, "new"))),
            Effect::Changed
        );
        let h = &inv.datacenters[0].compute[0].hosts[0];
        assert_eq!(h.document.as_deref(), Some("new"));
        // The same value again changes nothing.
        assert_eq!(
            apply(&mut inv, &set(&custom("host-1", 101, "new"))),
            Effect::None
        );
        let power = r#"<objectSet><kind>modify</kind><obj type="VirtualMachine">vm-1</obj><changeSet><name>runtime.powerState</name><op>assign</op><val xsi:type="VirtualMachinePowerState">poweredOn</val></changeSet></objectSet>"#;
        assert_eq!(apply(&mut inv, &set(power)), Effect::Changed);
        assert_eq!(
            inv.datacenters[0].compute[0].vms[0].power_state,
            Some(vcenter_client::PowerState::PoweredOn)
        );
        assert_eq!(
            apply(&mut inv, &set(&custom("vm-1", 102, "r"))),
            Effect::Changed
        );
        assert_eq!(
            inv.datacenters[0].compute[0].vms[0].reservation.as_deref(),
            Some("r")
        );
        let gone =
            r#"<objectSet><kind>leave</kind><obj type="VirtualMachine">vm-1</obj></objectSet>"#;
        assert_eq!(apply(&mut inv, &set(gone)), Effect::Changed);
        assert!(inv.datacenters[0].compute[0].vms.is_empty());
    }

    #[test]
    fn what_cannot_be_patched_asks_for_a_full_read() {
        let mut inv = inventory();
        let new_host =
            r#"<objectSet><kind>enter</kind><obj type="HostSystem">host-2</obj></objectSet>"#;
        assert_eq!(apply(&mut inv, &set(new_host)), Effect::Resync);
        // A VM the report did not keep gains a reservation.
        assert_eq!(
            apply(&mut inv, &set(&custom("vm-9", 102, "r"))),
            Effect::Resync
        );
        // A VM the report did not keep changes otherwise: nothing to do.
        assert_eq!(
            apply(&mut inv, &set(&custom("vm-9", 555, "x"))),
            Effect::None
        );
        let moved = r#"<objectSet><kind>modify</kind><obj type="VirtualMachine">vm-1</obj><changeSet><name>runtime.host</name><op>assign</op><val type="HostSystem" xsi:type="ManagedObjectReference">host-7</val></changeSet></objectSet>"#;
        assert_eq!(apply(&mut inv, &set(moved)), Effect::Resync);
    }
}
