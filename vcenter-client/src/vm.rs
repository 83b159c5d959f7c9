//! Typed reads of `VirtualMachine` and the two changes vmig makes to VMs:
//! adding/removing vGPUs (with the memory lock they need) through
//! `ReconfigVM_Task`, and moving a VM to a host with `RelocateVM_Task`.
//! Powering a VM on and off (`PowerOnVM_Task`, `PowerOffVM_Task`) is here for
//! tests and benchmarks that prepare a simulator's VMs; vmig itself never
//! changes a VM's power state.
//!
//! A vGPU is a `VirtualPCIPassthrough` whose backing is
//! `VirtualPCIPassthroughVmiopBackingInfo`; DirectPath devices share the
//! device type, so vGPUs are always selected by backing type. Requests are
//! written in WSDL order (`deviceChange` before `memoryReservationLockedToMax`).
//! The server-side checks real vCenter makes (powered off, profile offered by
//! the host) are not made by vcsim 0.24, so callers check them first.

use std::ops::ControlFlow;
use std::str::FromStr;

use serde::Serialize;

use crate::client::Client;
use crate::custom_fields::CustomValues;
use crate::error::{Error, Result};
use crate::host::{paths_of, typed_visitor};
use crate::moref::{BiosUuid, DeviceKey, HostRef, ResourcePoolRef, TaskRef, VgpuProfile, VmRef};
use crate::property::{ObjectContent, RetrieveOptions, RetrieveStats};
use crate::soap::decode::Node;
use crate::soap::encode::Request;

/// `VirtualMachinePowerState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PowerState {
    /// Running.
    PoweredOn,
    /// Off.
    PoweredOff,
    /// Suspended.
    Suspended,
}

impl FromStr for PowerState {
    type Err = ();
    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        Ok(match s {
            "poweredOn" => PowerState::PoweredOn,
            "poweredOff" => PowerState::PoweredOff,
            "suspended" => PowerState::Suspended,
            _ => return Err(()),
        })
    }
}

impl std::fmt::Display for PowerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PowerState::PoweredOn => "poweredOn",
            PowerState::PoweredOff => "poweredOff",
            PowerState::Suspended => "suspended",
        })
    }
}

/// Groups of VirtualMachine properties to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VmProperty {
    /// `name`.
    Name,
    /// `config.uuid` (the VM's BIOS UUID).
    Uuid,
    /// `runtime.host`.
    Host,
    /// `runtime.powerState`.
    PowerState,
    /// `config.hardware.memoryMB`.
    MemoryMb,
    /// `config.memoryReservationLockedToMax`.
    MemoryReservationLockedToMax,
    /// `config.hardware.device`, vGPUs kept. Large: fetch for few VMs at a time.
    Vgpus,
    /// `customValue`.
    CustomValues,
}

impl VmProperty {
    /// Everything except the device list.
    pub const LIGHT: &'static [VmProperty] = &[
        VmProperty::Name,
        VmProperty::Uuid,
        VmProperty::Host,
        VmProperty::PowerState,
        VmProperty::MemoryMb,
        VmProperty::MemoryReservationLockedToMax,
        VmProperty::CustomValues,
    ];

    /// Everything.
    pub const ALL: &'static [VmProperty] = &[
        VmProperty::Name,
        VmProperty::Uuid,
        VmProperty::Host,
        VmProperty::PowerState,
        VmProperty::MemoryMb,
        VmProperty::MemoryReservationLockedToMax,
        VmProperty::Vgpus,
        VmProperty::CustomValues,
    ];

    /// The property paths this group reads.
    pub fn paths(self) -> &'static [&'static str] {
        match self {
            VmProperty::Name => &["name"],
            VmProperty::Uuid => &["config.uuid"],
            VmProperty::Host => &["runtime.host"],
            VmProperty::PowerState => &["runtime.powerState"],
            VmProperty::MemoryMb => &["config.hardware.memoryMB"],
            VmProperty::MemoryReservationLockedToMax => &["config.memoryReservationLockedToMax"],
            VmProperty::Vgpus => &["config.hardware.device"],
            VmProperty::CustomValues => &["customValue"],
        }
    }
}

/// A vGPU attached to a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VgpuDevice {
    /// The device key within the VM (needed to remove it).
    pub key: DeviceKey,
    /// The vGPU profile, e.g. `grid_a100-3-20c`.
    pub profile: VgpuProfile,
    /// `deviceInfo.label`.
    pub label: Option<String>,
    /// `deviceInfo.summary`.
    pub summary: Option<String>,
    /// `controllerKey`.
    pub controller_key: Option<i32>,
    /// `unitNumber`.
    pub unit_number: Option<i32>,
}

impl VgpuDevice {
    /// Decodes a `VirtualDevice` if it is a vGPU (`None` for anything else).
    pub fn from_device(d: &Node) -> Result<Option<Self>> {
        let Some(backing) = d.child("backing") else {
            return Ok(None);
        };
        if backing.xsi_type() != Some("VirtualPCIPassthroughVmiopBackingInfo") {
            return Ok(None);
        }
        let Some(profile) = backing.child_text("vgpu").filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        let key = d
            .child_parse("key")?
            .ok_or_else(|| d.bad("a VirtualDevice with a key"))?;
        let info = d.child("deviceInfo");
        Ok(Some(VgpuDevice {
            key: DeviceKey(key),
            profile: VgpuProfile::new(profile)?,
            label: info.and_then(|i| i.child_string("label")),
            summary: info.and_then(|i| i.child_string("summary")),
            controller_key: d.child_parse("controllerKey")?,
            unit_number: d.child_parse("unitNumber")?,
        }))
    }
}

/// A VirtualMachine with the requested properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualMachine {
    /// The VM.
    pub moref: VmRef,
    /// `name`.
    pub name: Option<String>,
    /// `config.uuid`.
    pub uuid: Option<BiosUuid>,
    /// `runtime.host`.
    pub host: Option<HostRef>,
    /// `runtime.powerState`.
    pub power_state: Option<PowerState>,
    /// `config.hardware.memoryMB`.
    pub memory_mb: Option<i32>,
    /// `config.memoryReservationLockedToMax` (absent when never set).
    pub memory_reservation_locked_to_max: Option<bool>,
    /// vGPUs from `config.hardware.device` (empty unless [`VmProperty::Vgpus`]).
    pub vgpus: Vec<VgpuDevice>,
    /// `customValue`.
    pub custom_values: CustomValues,
}

impl VirtualMachine {
    /// Converts a property-collector result for a `VirtualMachine`.
    pub fn from_content(oc: ObjectContent) -> Result<Self> {
        let decode_err = |context: &str, e: crate::WrongKind| Error::Decode {
            context: context.into(),
            detail: e.to_string(),
        };
        let mut vm = VirtualMachine {
            moref: VmRef::try_from(oc.obj.clone()).map_err(|e| decode_err("VirtualMachine", e))?,
            name: None,
            uuid: None,
            host: None,
            power_state: None,
            memory_mb: None,
            memory_reservation_locked_to_max: None,
            vgpus: Vec::new(),
            custom_values: CustomValues::default(),
        };
        for p in oc.props {
            let v = &p.val;
            match p.name.as_str() {
                "name" => vm.name = Some(v.text().to_string()),
                "config.uuid" => vm.uuid = Some(v.text().parse()?),
                "runtime.host" => {
                    vm.host = Some(
                        HostRef::try_from(v.to_moref()?)
                            .map_err(|e| decode_err("runtime.host", e))?,
                    )
                }
                "runtime.powerState" => vm.power_state = Some(v.parse()?),
                "config.hardware.memoryMB" => vm.memory_mb = Some(v.parse()?),
                "config.memoryReservationLockedToMax" => {
                    vm.memory_reservation_locked_to_max = Some(v.parse_bool()?)
                }
                "config.hardware.device" => {
                    for d in v.children() {
                        if let Some(g) = VgpuDevice::from_device(d)? {
                            vm.vgpus.push(g);
                        }
                    }
                }
                "customValue" => vm.custom_values = CustomValues::from_node(v)?,
                _ => {}
            }
        }
        Ok(vm)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DeviceChange {
    Add(VgpuProfile),
    Remove(VgpuDevice),
    Change(VgpuDevice, VgpuProfile),
}

/// The subset of `VirtualMachineConfigSpec` vmig changes.
///
/// ```
/// use vcenter_client::{VgpuProfile, VmConfigSpec};
/// let spec = VmConfigSpec::new()
///     .add_vgpu(VgpuProfile::new("grid_a100-3-20c").unwrap())
///     .memory_reservation_locked_to_max(true);
/// assert!(!spec.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VmConfigSpec {
    device_changes: Vec<DeviceChange>,
    memory_reservation_locked_to_max: Option<bool>,
}

impl VmConfigSpec {
    /// An empty change.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a vGPU with this profile (a `VirtualPCIPassthrough` with a
    /// `VirtualPCIPassthroughVmiopBackingInfo`). Real vCenter needs the VM
    /// powered off and its memory fully reserved: combine with
    /// [`VmConfigSpec::memory_reservation_locked_to_max`]`(true)`.
    pub fn add_vgpu(mut self, profile: VgpuProfile) -> Self {
        self.device_changes.push(DeviceChange::Add(profile));
        self
    }

    /// Removes an existing vGPU (as read with [`VmProperty::Vgpus`]).
    pub fn remove_vgpu(mut self, device: &VgpuDevice) -> Self {
        self.device_changes
            .push(DeviceChange::Remove(device.clone()));
        self
    }

    /// Switches an existing vGPU to another profile in place (`edit` with the
    /// device's key and a new backing).
    pub fn change_vgpu(mut self, device: &VgpuDevice, profile: VgpuProfile) -> Self {
        self.device_changes
            .push(DeviceChange::Change(device.clone(), profile));
        self
    }

    /// Sets `memoryReservationLockedToMax`.
    pub fn memory_reservation_locked_to_max(mut self, lock: bool) -> Self {
        self.memory_reservation_locked_to_max = Some(lock);
        self
    }

    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        self.device_changes.is_empty() && self.memory_reservation_locked_to_max.is_none()
    }

    /// Writes `<spec>` in WSDL order.
    pub(crate) fn encode(&self, r: &mut Request) -> Result<()> {
        r.open("spec");
        // Temporary keys must be negative and unique within the spec.
        let mut next_key = -100;
        for change in &self.device_changes {
            r.open("deviceChange");
            match change {
                DeviceChange::Add(profile) => {
                    r.text("operation", "add")?;
                    r.open_typed("device", "VirtualPCIPassthrough");
                    r.int("key", next_key);
                    next_key -= 1;
                    vmiop_backing(r, profile)?;
                    r.close("device");
                }
                DeviceChange::Remove(dev) | DeviceChange::Change(dev, _) => {
                    let (operation, profile) = match change {
                        DeviceChange::Change(_, p) => ("edit", p),
                        _ => ("remove", &dev.profile),
                    };
                    r.text("operation", operation)?;
                    r.open_typed("device", "VirtualPCIPassthrough");
                    r.int("key", i64::from(dev.key.0));
                    vmiop_backing(r, profile)?;
                    if let Some(c) = dev.controller_key {
                        r.int("controllerKey", i64::from(c));
                    }
                    if let Some(u) = dev.unit_number {
                        r.int("unitNumber", i64::from(u));
                    }
                    r.close("device");
                }
            }
            r.close("deviceChange");
        }
        if let Some(lock) = self.memory_reservation_locked_to_max {
            r.bool("memoryReservationLockedToMax", lock);
        }
        r.close("spec");
        Ok(())
    }
}

fn vmiop_backing(r: &mut Request, profile: &VgpuProfile) -> Result<()> {
    r.open_typed("backing", "VirtualPCIPassthroughVmiopBackingInfo");
    r.text("vgpu", profile.as_str())?;
    r.close("backing");
    Ok(())
}

/// Where to move a VM (`VirtualMachineRelocateSpec`, the fields vmig uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelocateSpec {
    /// Target host.
    pub host: HostRef,
    /// Target resource pool; required by vCenter when the host is in another
    /// cluster, optional within one.
    pub pool: Option<ResourcePoolRef>,
}

impl Client {
    /// Streams every VM with the requested properties.
    pub async fn for_each_vm(
        &self,
        props: &[VmProperty],
        options: RetrieveOptions,
        visit: impl FnMut(VirtualMachine) -> ControlFlow<()> + Send,
    ) -> Result<RetrieveStats> {
        let paths = paths_of(props, VmProperty::paths);
        let mut failure = None;
        let stats = self
            .for_each_object(
                VmRef::KIND,
                &paths,
                options,
                typed_visitor(VirtualMachine::from_content, visit, &mut failure),
            )
            .await?;
        failure.map_or(Ok(stats), Err)
    }

    /// All VMs, collected. Avoid [`VmProperty::Vgpus`] here on big inventories.
    pub async fn vms(&self, props: &[VmProperty]) -> Result<Vec<VirtualMachine>> {
        let mut out = Vec::new();
        self.for_each_vm(props, RetrieveOptions::default(), |v| {
            out.push(v);
            ControlFlow::Continue(())
        })
        .await?;
        Ok(out)
    }

    /// One VM's properties. An unknown VM is
    /// [`crate::FaultKind::ManagedObjectNotFound`].
    pub async fn vm(&self, vm: &VmRef, props: &[VmProperty]) -> Result<VirtualMachine> {
        let paths = paths_of(props, VmProperty::paths);
        let oc = self.retrieve_object(vm.as_moref(), &paths).await?;
        VirtualMachine::from_content(oc)
    }

    /// `VirtualMachine.ReconfigVM_Task`; returns the task (see
    /// [`Client::wait_for_task`]). Privileges `VirtualMachine.Config.AddRemoveDevice`
    /// (vGPU add/remove) and `VirtualMachine.Config.Resource` (memory lock).
    pub async fn reconfigure_vm(&self, vm: &VmRef, spec: &VmConfigSpec) -> Result<TaskRef> {
        let mut r = Request::new("ReconfigVM_Task", vm.as_moref());
        spec.encode(&mut r)?;
        let resp = self.invoke("ReconfigVM_Task", r.finish()).await?;
        task_ref(&resp, "ReconfigVM_Task")
    }

    /// `VirtualMachine.RelocateVM_Task` to another host (compute only, storage
    /// stays). Privilege `Resource.HotMigrate` (powered on) or
    /// `Resource.ColdMigrate` (off), plus `Resource.AssignVMToPool` on the pool.
    pub async fn relocate_vm(&self, vm: &VmRef, spec: &RelocateSpec) -> Result<TaskRef> {
        let mut r = Request::new("RelocateVM_Task", vm.as_moref());
        // VirtualMachineRelocateSpec order: service, folder, datastore,
        // diskMoveType, pool, host, …
        r.open("spec");
        if let Some(pool) = &spec.pool {
            r.moref("pool", pool.as_moref());
        }
        r.moref("host", spec.host.as_moref());
        r.close("spec");
        r.text("priority", "defaultPriority")?;
        let resp = self.invoke("RelocateVM_Task", r.finish()).await?;
        task_ref(&resp, "RelocateVM_Task")
    }

    /// `VirtualMachine.PowerOnVM_Task` on the VM's current host; returns the
    /// task (see [`Client::wait_for_task`]). Privilege `VirtualMachine.Interact.PowerOn`.
    pub async fn power_on_vm(&self, vm: &VmRef) -> Result<TaskRef> {
        self.power_task(vm, "PowerOnVM_Task").await
    }

    /// `VirtualMachine.PowerOffVM_Task` (a hard power-off, not a guest
    /// shutdown); returns the task (see [`Client::wait_for_task`]). Privilege
    /// `VirtualMachine.Interact.PowerOff`.
    pub async fn power_off_vm(&self, vm: &VmRef) -> Result<TaskRef> {
        self.power_task(vm, "PowerOffVM_Task").await
    }

    async fn power_task(&self, vm: &VmRef, method: &'static str) -> Result<TaskRef> {
        let resp = self.invoke(method, power_request(vm, method)).await?;
        task_ref(&resp, method)
    }
}

/// A power method's request: the VM alone (the optional `host` of
/// `PowerOnVM_Task` is left out, so the VM starts where it is registered).
fn power_request(vm: &VmRef, method: &'static str) -> String {
    Request::new(method, vm.as_moref()).finish()
}

/// The task a `…_Task` method answered with (`returnval`), typed.
pub(crate) fn task_ref(resp: &Node, method: &str) -> Result<TaskRef> {
    let r = resp
        .child("returnval")
        .ok_or_else(|| resp.bad(&format!("{method} returnval")))?
        .to_moref()?;
    TaskRef::try_from(r).map_err(|e| Error::Decode {
        context: method.into(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::moref::MoRef;
    use crate::soap::decode::{Mode, parse_sync};

    #[test]
    fn reconfig_xml_is_in_wsdl_order() {
        let existing = VgpuDevice {
            key: DeviceKey(13000),
            profile: VgpuProfile::new("grid_a100-7-40c").unwrap(),
            label: None,
            summary: None,
            controller_key: Some(100),
            unit_number: Some(18),
        };
        let spec = VmConfigSpec::new()
            .memory_reservation_locked_to_max(true)
            .add_vgpu(VgpuProfile::new("grid_a100-3-20c").unwrap())
            .remove_vgpu(&existing)
            .change_vgpu(&existing, VgpuProfile::new("grid_a100-4-20c").unwrap());
        let mut r = Request::new("ReconfigVM_Task", &MoRef::new("VirtualMachine", "vm-66"));
        spec.encode(&mut r).unwrap();
        let xml = r.finish();
        assert!(xml.contains(concat!(
            r#"<ReconfigVM_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-66</_this><spec>"#,
            r#"<deviceChange><operation>add</operation><device xsi:type="VirtualPCIPassthrough"><key>-100</key>"#,
            r#"<backing xsi:type="VirtualPCIPassthroughVmiopBackingInfo"><vgpu>grid_a100-3-20c</vgpu></backing></device></deviceChange>"#,
            r#"<deviceChange><operation>remove</operation><device xsi:type="VirtualPCIPassthrough"><key>13000</key>"#,
            r#"<backing xsi:type="VirtualPCIPassthroughVmiopBackingInfo"><vgpu>grid_a100-7-40c</vgpu></backing><controllerKey>100</controllerKey><unitNumber>18</unitNumber></device></deviceChange>"#,
            r#"<deviceChange><operation>edit</operation><device xsi:type="VirtualPCIPassthrough"><key>13000</key>"#,
            r#"<backing xsi:type="VirtualPCIPassthroughVmiopBackingInfo"><vgpu>grid_a100-4-20c</vgpu></backing><controllerKey>100</controllerKey><unitNumber>18</unitNumber></device></deviceChange>"#,
            r#"<memoryReservationLockedToMax>true</memoryReservationLockedToMax></spec></ReconfigVM_Task>"#
        )), "{xml}");
    }

    #[test]
    fn power_requests_name_only_the_vm() {
        let vm = VmRef::new("vm-66");
        for method in ["PowerOnVM_Task", "PowerOffVM_Task"] {
            let xml = power_request(&vm, method);
            assert!(
                xml.contains(&format!(
                    r#"<{method} xmlns="urn:vim25"><_this type="VirtualMachine">vm-66</_this></{method}>"#
                )),
                "{xml}"
            );
        }
    }

    #[test]
    fn task_ref_reads_the_returned_task() {
        let doc = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><PowerOffVM_TaskResponse xmlns="urn:vim25"><returnval type="Task">task-7</returnval></PowerOffVM_TaskResponse></soapenv:Body></soapenv:Envelope>"#;
        let resp = crate::soap::decode::parse_whole(doc.as_bytes(), "PowerOffVM_Task").unwrap();
        assert_eq!(
            task_ref(&resp, "PowerOffVM_Task").unwrap(),
            TaskRef::new("task-7")
        );
        // A returned object of another kind is a decode error, not a task.
        let doc = doc.replace(r#"type="Task""#, r#"type="VirtualMachine""#);
        let resp = crate::soap::decode::parse_whole(doc.as_bytes(), "PowerOffVM_Task").unwrap();
        assert!(matches!(
            task_ref(&resp, "PowerOffVM_Task"),
            Err(Error::Decode { .. })
        ));
    }

    #[test]
    fn vgpus_are_selected_by_backing_type() {
        let doc = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="VirtualMachine">vm-66</obj>
<propSet><name>config.hardware.device</name><val xsi:type="ArrayOfVirtualDevice">
<VirtualDevice xsi:type="VirtualPCIPassthrough"><key>13000</key><deviceInfo xsi:type="Description"><label>PCI device 0</label><summary>NVIDIA GRID vGPU grid_a100-3-20c</summary></deviceInfo><backing xsi:type="VirtualPCIPassthroughVmiopBackingInfo"><vgpu>grid_a100-3-20c</vgpu><migrateSupported>true</migrateSupported></backing><controllerKey>100</controllerKey><unitNumber>18</unitNumber></VirtualDevice>
<VirtualDevice xsi:type="VirtualPCIPassthrough"><key>13001</key><backing xsi:type="VirtualPCIPassthroughDeviceBackingInfo"><deviceName></deviceName><id>0000:3b:00.0</id><deviceId>20f1</deviceId><systemId>x</systemId><vendorId>4318</vendorId></backing></VirtualDevice>
<VirtualDevice xsi:type="VirtualE1000"><key>4000</key></VirtualDevice>
</val></propSet>
<propSet><name>config.memoryReservationLockedToMax</name><val xsi:type="xsd:boolean">true</val></propSet>
<propSet><name>runtime.powerState</name><val xsi:type="VirtualMachinePowerState">poweredOff</val></propSet>
<propSet><name>runtime.host</name><val xsi:type="ManagedObjectReference" type="HostSystem">host-21</val></propSet>
</objects></returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#;
        let mut vms = Vec::new();
        parse_sync(doc.as_bytes(), Mode::Stream, &mut |n: Node| {
            vms.push(VirtualMachine::from_content(ObjectContent::from_node(n)?)?);
            Ok(ControlFlow::Continue(()))
        })
        .unwrap();
        let vm = &vms[0];
        assert_eq!(vm.vgpus.len(), 1);
        assert_eq!(vm.vgpus[0].key, DeviceKey(13000));
        assert_eq!(vm.vgpus[0].profile.as_str(), "grid_a100-3-20c");
        assert_eq!(vm.vgpus[0].unit_number, Some(18));
        assert_eq!(vm.memory_reservation_locked_to_max, Some(true));
        assert_eq!(vm.power_state, Some(PowerState::PoweredOff));
        assert_eq!(vm.host, Some(HostRef::new("host-21")));
    }
}
