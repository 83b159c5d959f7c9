//! Applies property-collector updates to a vCenter's inventory in place.
//!
//! The inventory reader ([`crate::inventory`]) decides which VMs a report keeps and reads
//! device lists only where they matter; an update that could change those decisions (a host
//! or compute resource added or removed, a VM moved to another host, a VM that was not kept
//! gaining a reservation, vmig's custom fields defined after the read) is not patched but
//! answered with a full re-read ([`Effect::Resync`]). Everything else that the report shows
//! and that changes often (agent documents, connection and power states, reservations, names)
//! is patched in place, so the usual change costs one re-analysis and no vCenter call.

use vcenter_client::{
    CustomFieldKey, CustomValues, MoRef, ObjectUpdate, PowerState, UpdateKind, UpdateSet,
};

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

/// What one object update says about the watched properties, without its XML: the
/// collector's first answer holds every host and VM, and kept as parsed XML it cost about
/// 200 MB at 40,000 VMs; in this form it is a few MB ([`reconcile`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    /// Enter, modify or leave.
    pub kind: UpdateKind,
    /// The object.
    pub obj: MoRef,
    /// `name`, when the update carries it.
    pub name: Option<String>,
    /// `customValue`, when it changed (empty when unset).
    pub custom: Option<CustomValues>,
    /// `runtime.connectionState` (hosts), when it changed.
    pub connection: Option<Option<String>>,
    /// `runtime.powerState` (VMs), when it changed.
    pub power: Option<Option<PowerState>>,
    /// `runtime.host` (VMs), when it changed.
    pub host: Option<Option<MoRef>>,
}

impl Watched {
    /// The watched properties of `u`.
    pub fn of(u: &ObjectUpdate) -> Watched {
        let text = |path: &str| u.value(path).map(|n| n.text().to_string());
        let changed = |path: &str| u.changed(path);
        Watched {
            kind: u.kind,
            obj: u.obj.clone(),
            name: text("name"),
            custom: changed("customValue").then(|| {
                u.value("customValue")
                    .and_then(|n| CustomValues::from_node(n).ok())
                    .unwrap_or_default()
            }),
            connection: changed("runtime.connectionState").then(|| text("runtime.connectionState")),
            power: changed("runtime.powerState").then(|| {
                u.value("runtime.powerState")
                    .and_then(|n| n.text().parse().ok())
            }),
            host: changed("runtime.host")
                .then(|| u.value("runtime.host").and_then(|n| n.to_moref().ok())),
        }
    }

    /// The non-empty value of one custom field, when `customValue` changed.
    fn field(&self, key: CustomFieldKey) -> Option<String> {
        self.custom
            .as_ref()?
            .get(key)
            .filter(|v| !v.trim().is_empty())
            .map(str::to_string)
    }

    /// Whether the update carries any custom value at all.
    fn has_custom_values(&self) -> bool {
        self.custom.as_ref().is_some_and(|c| !c.is_empty())
    }
}

/// Applies `set` to `inv`.
pub fn apply(inv: &mut VcenterInventory, set: &UpdateSet) -> Effect {
    let mut effect = Effect::None;
    for u in &set.objects {
        let w = Watched::of(u);
        let e = match (w.obj.kind(), w.kind) {
            ("HostSystem", UpdateKind::Modify) => {
                let key = inv.fields.document;
                // Out of scope (another datacenter or cluster than asked for): nothing.
                host_mut(inv, &w.obj).map_or(Effect::None, |h| patch_host(h, &w, key))
            }
            // A host added or removed changes its compute resource's membership.
            ("HostSystem", _) => Effect::Resync,
            ("VirtualMachine", UpdateKind::Leave) => remove_vm(inv, &w.obj),
            ("VirtualMachine", _) => {
                let key = inv.fields.reservation;
                match vm_mut(inv, &w.obj) {
                    Some(v) => patch_vm(v, &w, key),
                    None => not_kept(&w, key),
                }
            }
            _ => Effect::None,
        };
        effect = effect.max(e);
        if effect == Effect::Resync {
            break;
        }
    }
    effect
}

/// Applies `sets` in order to a full read that may predate them all (the check read, see
/// `watch`); the strongest effect of any. A set the read already saw changes nothing.
pub fn apply_all(inv: &mut VcenterInventory, sets: &[UpdateSet]) -> Effect {
    sets.iter()
        .map(|set| apply(inv, set))
        .max()
        .unwrap_or(Effect::None)
}

/// Applies the collector's first answer (every host and VM as `enter`, at the answer's
/// version) to a model read before it (`watch` asks for the answer once the read is done, so
/// the answer is the newer): whatever the read saw older is set to the answer's state, and
/// anything newer than the answer comes with the next update. A VM
/// of the model the answer lacks was removed meanwhile; a host the answer lacks, or a host
/// or VM that moved, asks for a full read. Objects are looked up through an index: the answer
/// names every object of the vCenter.
pub fn reconcile(inv: &mut VcenterInventory, answer: &[Watched]) -> Effect {
    let (document, reservation) = (inv.fields.document, inv.fields.reservation);
    let mut hosts = std::collections::HashMap::new();
    let mut vms = std::collections::HashMap::new();
    for (d, dc) in inv.datacenters.iter().enumerate() {
        for (c, cr) in dc.compute.iter().enumerate() {
            for (i, h) in cr.hosts.iter().enumerate() {
                hosts.insert(h.moref.value().to_string(), (d, c, i));
            }
            for (i, v) in cr.vms.iter().enumerate() {
                vms.insert(v.moref.value().to_string(), (d, c, i));
            }
        }
    }
    let mut hosts_seen = std::collections::HashSet::new();
    let mut vms_seen = std::collections::HashSet::new();
    let mut effect = Effect::None;
    for w in answer {
        let e = match w.obj.kind() {
            "HostSystem" => hosts.get(w.obj.value()).map_or(Effect::None, |&(d, c, i)| {
                hosts_seen.insert((d, c, i));
                patch_host(&mut inv.datacenters[d].compute[c].hosts[i], w, document)
            }),
            "VirtualMachine" => match vms.get(w.obj.value()) {
                Some(&(d, c, i)) => {
                    vms_seen.insert((d, c, i));
                    patch_vm(&mut inv.datacenters[d].compute[c].vms[i], w, reservation)
                }
                None => not_kept(w, reservation),
            },
            _ => Effect::None,
        };
        effect = effect.max(e);
        if effect == Effect::Resync {
            return effect;
        }
    }
    if hosts_seen.len() < hosts.len() {
        // A host of the model is gone from vCenter.
        return Effect::Resync;
    }
    if vms_seen.len() < vms.len() {
        // Removed while the read ran.
        for (d, dc) in inv.datacenters.iter_mut().enumerate() {
            for (c, cr) in dc.compute.iter_mut().enumerate() {
                let mut i = 0;
                cr.vms.retain(|_| {
                    let keep = vms_seen.contains(&(d, c, i));
                    i += 1;
                    keep
                });
            }
        }
        effect = effect.max(Effect::Changed);
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

/// Puts the value of vmig's field `key` from a `customValue` change into `slot`. `false`
/// when the field was defined after the read (no key yet) and the object now has custom
/// values: the key must be read again, which only a full read does.
fn update_field(
    w: &Watched,
    key: Option<CustomFieldKey>,
    slot: &mut Option<String>,
    effect: &mut Effect,
) -> bool {
    match key {
        Some(k) => {
            set_if_changed(slot, w.field(k), effect);
            true
        }
        None => !w.has_custom_values(),
    }
}

fn set_if_changed<T: PartialEq>(slot: &mut T, value: T, effect: &mut Effect) {
    if *slot != value {
        *slot = value;
        *effect = (*effect).max(Effect::Changed);
    }
}

fn patch_host(h: &mut HostInfo, w: &Watched, document_key: Option<CustomFieldKey>) -> Effect {
    let mut effect = Effect::None;
    if w.custom.is_some() && !update_field(w, document_key, &mut h.document, &mut effect) {
        return Effect::Resync;
    }
    if let Some(n) = &w.name {
        set_if_changed(&mut h.name, n.clone(), &mut effect);
    }
    if let Some(state) = &w.connection {
        set_if_changed(&mut h.connection_state, state.clone(), &mut effect);
    }
    effect
}

/// A VM the report did not keep matters once it holds a reservation.
fn not_kept(w: &Watched, reservation_key: Option<CustomFieldKey>) -> Effect {
    let reserved = match reservation_key {
        Some(k) => w.field(k).is_some(),
        None => w.has_custom_values(),
    };
    if reserved {
        Effect::Resync
    } else {
        Effect::None
    }
}

fn patch_vm(v: &mut VmInfo, w: &Watched, reservation_key: Option<CustomFieldKey>) -> Effect {
    let mut effect = Effect::None;
    if let Some(host) = &w.host
        && host.as_ref() != v.host.as_ref().map(|h| h.as_moref())
    {
        // Moved: possibly to another compute resource, whose VM list it must join.
        return Effect::Resync;
    }
    if w.custom.is_some() && !update_field(w, reservation_key, &mut v.reservation, &mut effect) {
        return Effect::Resync;
    }
    if let Some(n) = &w.name {
        set_if_changed(&mut v.name, n.clone(), &mut effect);
    }
    if let Some(state) = w.power {
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

    /// The check read may predate updates applied meanwhile: they are applied again to it,
    /// and one that the read already saw changes nothing.
    #[test]
    fn updates_received_during_a_read_are_applied_to_it_again() {
        let since = [
            set(&custom("host-1", 101, "newer")),
            set(&custom("vm-1", 102, "r")),
        ];
        let mut read = inventory();
        assert_eq!(apply_all(&mut read, &since), Effect::Changed);
        assert_eq!(
            read.datacenters[0].compute[0].hosts[0].document.as_deref(),
            Some("newer")
        );
        assert_eq!(
            read.datacenters[0].compute[0].vms[0].reservation.as_deref(),
            Some("r")
        );
        // A read made after both saw them already.
        assert_eq!(apply_all(&mut read, &since), Effect::None);
        assert_eq!(apply_all(&mut read, &[]), Effect::None);
        // One of them cannot be patched: the read is followed by another.
        let new_host =
            r#"<objectSet><kind>enter</kind><obj type="HostSystem">host-2</obj></objectSet>"#;
        assert_eq!(
            apply_all(&mut inventory(), &[since[0].clone(), set(new_host)]),
            Effect::Resync
        );
    }

    fn entered(obj: MoRef) -> Watched {
        Watched {
            kind: UpdateKind::Enter,
            obj,
            name: None,
            custom: Some(CustomValues::default()),
            connection: None,
            power: None,
            host: None,
        }
    }

    fn with_field(mut w: Watched, key: i32, value: &str) -> Watched {
        let u = set(&custom(w.obj.value(), key, value));
        w.custom = Watched::of(&u.objects[0]).custom;
        w
    }

    /// The first answer, made after the read, wins over what the read saw; a VM it
    /// lacks was removed meanwhile; a host it lacks, or a VM not kept that now holds a
    /// reservation, asks for a full read.
    #[test]
    fn the_first_answer_is_applied_to_the_read() {
        let host = || Watched {
            name: Some("h1".into()),
            connection: Some(Some("connected".into())),
            ..with_field(
                entered(HostRef::new("host-1").as_moref().clone()),
                101,
                "newer",
            )
        };
        let vm = || Watched {
            name: Some("v1".into()),
            host: Some(Some(HostRef::new("host-1").as_moref().clone())),
            ..entered(VmRef::new("vm-1").as_moref().clone())
        };
        let mut inv = inventory();
        assert_eq!(reconcile(&mut inv, &[host(), vm()]), Effect::Changed);
        assert_eq!(
            inv.datacenters[0].compute[0].hosts[0].document.as_deref(),
            Some("newer")
        );
        // The same answer again: nothing to do.
        assert_eq!(reconcile(&mut inv, &[host(), vm()]), Effect::None);
        // vm-1 is gone from vCenter.
        assert_eq!(reconcile(&mut inv, &[host()]), Effect::Changed);
        assert!(inv.datacenters[0].compute[0].vms.is_empty());
        // host-1 is gone.
        assert_eq!(reconcile(&mut inventory(), &[vm()]), Effect::Resync);
        // A VM the read did not keep holds a reservation now.
        let reserved = with_field(entered(VmRef::new("vm-9").as_moref().clone()), 102, "r");
        assert_eq!(
            reconcile(&mut inventory(), &[host(), vm(), reserved]),
            Effect::Resync
        );
        // vm-1 moved to another host.
        let moved = Watched {
            host: Some(Some(HostRef::new("host-7").as_moref().clone())),
            ..vm()
        };
        assert_eq!(
            reconcile(&mut inventory(), &[host(), moved]),
            Effect::Resync
        );
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
