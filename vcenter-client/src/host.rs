//! Typed reads of `HostSystem`: identity, hardware, the GPU/vGPU properties
//! vSphere exposes, and custom values.
//!
//! Callers choose which [`HostProperty`] groups to fetch, because some are
//! large (`hardware.pciDevice` is ~15 KB per host). Properties that were not
//! asked for, or that the server left unset, are `None`/empty; an empty
//! `ArrayOf…` (vcsim's way of saying "unset") reads the same as an absent one.
//!
//! PCI ids are `xsd:short` on the wire, so NVIDIA's 0x10de arrives as 4318 and
//! Intel's 0x8086 as -32634: they are read as signed and kept as `u16`.

use std::ops::ControlFlow;

use serde::Serialize;

use crate::client::Client;
use crate::custom_fields::CustomValues;
use crate::error::{Error, Result};
use crate::moref::{BiosUuid, ClusterRef, HostRef, MoRef, VmRef};
use crate::property::{ObjectContent, RetrieveOptions, RetrieveStats};
use crate::soap::decode::Node;

/// PCI vendor id of NVIDIA.
pub const NVIDIA_VENDOR_ID: u16 = 0x10de;

/// Groups of HostSystem properties to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostProperty {
    /// `name`.
    Name,
    /// `parent` (the cluster or standalone compute resource).
    Parent,
    /// `hardware.systemInfo.uuid` (the BIOS UUID).
    BiosUuid,
    /// `summary.hardware`.
    HardwareSummary,
    /// `runtime.connectionState`.
    ConnectionState,
    /// `config.sharedPassthruGpuTypes`, `config.sharedGpuCapabilities`,
    /// `config.graphicsInfo`, `config.graphicsConfig`.
    Gpu,
    /// `hardware.pciDevice`, NVIDIA devices kept.
    NvidiaPciDevices,
    /// `customValue`.
    CustomValues,
}

impl HostProperty {
    /// Everything.
    pub const ALL: &'static [HostProperty] = &[
        HostProperty::Name,
        HostProperty::Parent,
        HostProperty::BiosUuid,
        HostProperty::HardwareSummary,
        HostProperty::ConnectionState,
        HostProperty::Gpu,
        HostProperty::NvidiaPciDevices,
        HostProperty::CustomValues,
    ];

    /// The property paths this group reads.
    pub fn paths(self) -> &'static [&'static str] {
        match self {
            HostProperty::Name => &["name"],
            HostProperty::Parent => &["parent"],
            HostProperty::BiosUuid => &["hardware.systemInfo.uuid"],
            HostProperty::HardwareSummary => &["summary.hardware"],
            HostProperty::ConnectionState => &["runtime.connectionState"],
            HostProperty::Gpu => &[
                "config.sharedPassthruGpuTypes",
                "config.sharedGpuCapabilities",
                "config.graphicsInfo",
                "config.graphicsConfig",
            ],
            HostProperty::NvidiaPciDevices => &["hardware.pciDevice"],
            HostProperty::CustomValues => &["customValue"],
        }
    }
}

pub(crate) fn paths_of<P: Copy>(
    props: &[P],
    paths: impl Fn(P) -> &'static [&'static str],
) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for p in props {
        for path in paths(*p) {
            if !out.contains(path) {
                out.push(path);
            }
        }
    }
    out
}

/// `HostHardwareSummary`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct HardwareSummary {
    /// Vendor, e.g. `Dell Inc.`.
    pub vendor: String,
    /// Model.
    pub model: String,
    /// BIOS UUID as reported in the summary.
    pub uuid: Option<String>,
    /// Memory in bytes.
    pub memory_size: Option<i64>,
    /// CPU model string.
    pub cpu_model: Option<String>,
    /// CPU speed in MHz.
    pub cpu_mhz: Option<i32>,
    /// CPU packages.
    pub num_cpu_pkgs: Option<i16>,
    /// CPU cores.
    pub num_cpu_cores: Option<i16>,
    /// CPU threads.
    pub num_cpu_threads: Option<i16>,
}

/// `HostSharedGpuCapabilities`: what a vGPU profile supports on this host.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SharedGpuCapabilities {
    /// The vGPU profile name.
    pub vgpu: String,
    /// Disk snapshots allowed.
    pub disk_snapshot_supported: bool,
    /// Memory snapshots allowed.
    pub memory_snapshot_supported: bool,
    /// Suspend allowed.
    pub suspend_supported: bool,
    /// vMotion allowed.
    pub migrate_supported: bool,
}

/// `HostGraphicsInfo`: one physical GPU as vSphere sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct GraphicsInfo {
    /// Device name, e.g. `NVIDIA A100-PCIE-40GB`.
    pub device_name: String,
    /// Vendor name.
    pub vendor_name: String,
    /// PCI address `bus:slot.function`, e.g. `0000:3b:00.0`.
    pub pci_id: String,
    /// `basic`, `shared`, `direct` or `sharedDirect` (vGPU).
    pub graphics_type: String,
    /// `none`, `sameSize`, `mixedSize` or `multiInstanceGpu` (API 8.0.3+).
    pub vgpu_mode: Option<String>,
    /// Frame buffer in KB.
    pub memory_size_in_kb: Option<i64>,
    /// VMs using this GPU (real vCenter only; vcsim never fills it).
    pub vms: Vec<VmRef>,
}

/// `HostGraphicsConfigDeviceType`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct GraphicsDeviceType {
    /// PCI address of the GPU.
    pub device_id: String,
    /// Its configured graphics type.
    pub graphics_type: String,
    /// Its vGPU mode (API 8.0.3+).
    pub vgpu_mode: Option<String>,
}

/// `HostGraphicsConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct GraphicsConfig {
    /// `shared` or `sharedDirect`.
    pub host_default_graphics_type: String,
    /// `performance` or `consolidation`.
    pub shared_passthru_assignment_policy: String,
    /// Per-device settings.
    pub device_types: Vec<GraphicsDeviceType>,
}

/// `HostPciDevice` with the ids as unsigned 16-bit values.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct PciDevice {
    /// PCI address, e.g. `0000:3b:00.0`.
    pub id: String,
    /// Class id (0x0302 = 3D controller).
    pub class_id: u16,
    /// Bus number.
    pub bus: u8,
    /// Slot number.
    pub slot: u8,
    /// Function number.
    pub function: u8,
    /// Vendor id (0x10de = NVIDIA).
    pub vendor_id: u16,
    /// Subsystem vendor id.
    pub sub_vendor_id: u16,
    /// Device id.
    pub device_id: u16,
    /// Subsystem device id (0 on vGPU pseudo-devices).
    pub sub_device_id: u16,
    /// Vendor name.
    pub vendor_name: String,
    /// Device name.
    pub device_name: String,
}

impl PciDevice {
    /// govc's test for a physical NVIDIA GPU: vendor 0x10de and a non-zero
    /// subsystem device id (vGPU pseudo-devices have 0).
    pub fn is_nvidia_gpu(&self) -> bool {
        self.vendor_id == NVIDIA_VENDOR_ID && self.sub_device_id != 0
    }

    /// Decodes a `HostPciDevice`.
    pub fn from_node(n: &Node) -> Result<Self> {
        let s = |name: &str| n.child_string(name).unwrap_or_default();
        let id16 = |name: &str| {
            n.child(name)
                .map(wire_u16)
                .transpose()
                .map(Option::unwrap_or_default)
        };
        let id8 = |name: &str| {
            n.child(name)
                .map(wire_u8)
                .transpose()
                .map(Option::unwrap_or_default)
        };
        Ok(PciDevice {
            id: s("id"),
            class_id: id16("classId")?,
            bus: id8("bus")?,
            slot: id8("slot")?,
            function: id8("function")?,
            vendor_id: id16("vendorId")?,
            sub_vendor_id: id16("subVendorId")?,
            device_id: id16("deviceId")?,
            sub_device_id: id16("subDeviceId")?,
            vendor_name: s("vendorName"),
            device_name: s("deviceName"),
        })
    }
}

/// Reads an `xsd:short` id, accepting the signed wire form and, leniently,
/// an unsigned one, as the same 16 bits.
pub fn wire_u16(n: &Node) -> Result<u16> {
    let v: i32 = n.parse()?;
    if (i32::from(i16::MIN)..=i32::from(u16::MAX)).contains(&v) {
        Ok(v as u16)
    } else {
        Err(n.bad("a 16-bit PCI id"))
    }
}

/// Reads an `xsd:byte` (bus/slot/function), signed or unsigned, as 8 bits.
pub fn wire_u8(n: &Node) -> Result<u8> {
    let v: i32 = n.parse()?;
    if (i32::from(i8::MIN)..=i32::from(u8::MAX)).contains(&v) {
        Ok(v as u8)
    } else {
        Err(n.bad("an 8-bit PCI bus/slot/function"))
    }
}

/// A HostSystem with the requested properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostSystem {
    /// The host.
    pub moref: HostRef,
    /// `name`.
    pub name: Option<String>,
    /// `parent`: a `ClusterComputeResource` or a standalone `ComputeResource`.
    pub parent: Option<MoRef>,
    /// `hardware.systemInfo.uuid`.
    pub bios_uuid: Option<BiosUuid>,
    /// `summary.hardware`.
    pub hardware: Option<HardwareSummary>,
    /// `runtime.connectionState` (`connected`, `disconnected`, `notResponding`).
    pub connection_state: Option<String>,
    /// `config.sharedPassthruGpuTypes`: vGPU profiles the host offers.
    pub shared_passthru_gpu_types: Vec<String>,
    /// `config.sharedGpuCapabilities`.
    pub shared_gpu_capabilities: Vec<SharedGpuCapabilities>,
    /// `config.graphicsInfo`.
    pub graphics_info: Vec<GraphicsInfo>,
    /// `config.graphicsConfig`.
    pub graphics_config: Option<GraphicsConfig>,
    /// NVIDIA entries of `hardware.pciDevice`.
    pub nvidia_pci_devices: Vec<PciDevice>,
    /// `customValue`.
    pub custom_values: CustomValues,
}

impl HostSystem {
    /// The cluster the host belongs to, if its parent is a cluster.
    pub fn cluster(&self) -> Option<ClusterRef> {
        self.parent
            .clone()
            .and_then(|p| ClusterRef::try_from(p).ok())
    }

    /// Converts a property-collector result for a `HostSystem`.
    pub fn from_content(oc: ObjectContent) -> Result<Self> {
        let moref = HostRef::try_from(oc.obj.clone()).map_err(|e| Error::Decode {
            context: "HostSystem".into(),
            detail: e.to_string(),
        })?;
        let mut h = HostSystem {
            moref,
            name: None,
            parent: None,
            bios_uuid: None,
            hardware: None,
            connection_state: None,
            shared_passthru_gpu_types: Vec::new(),
            shared_gpu_capabilities: Vec::new(),
            graphics_info: Vec::new(),
            graphics_config: None,
            nvidia_pci_devices: Vec::new(),
            custom_values: CustomValues::default(),
        };
        for p in oc.props {
            let v = &p.val;
            match p.name.as_str() {
                "name" => h.name = Some(v.text().to_string()),
                "parent" => h.parent = Some(v.to_moref()?),
                "hardware.systemInfo.uuid" => h.bios_uuid = Some(v.text().parse()?),
                "summary.hardware" => h.hardware = Some(hardware_summary(v)?),
                "runtime.connectionState" => h.connection_state = Some(v.text().to_string()),
                "config.sharedPassthruGpuTypes" => {
                    h.shared_passthru_gpu_types =
                        v.children().iter().map(|c| c.text().to_string()).collect()
                }
                "config.sharedGpuCapabilities" => {
                    h.shared_gpu_capabilities = v
                        .children()
                        .iter()
                        .map(shared_gpu_capabilities)
                        .collect::<Result<_>>()?
                }
                "config.graphicsInfo" => {
                    h.graphics_info = v
                        .children()
                        .iter()
                        .map(graphics_info)
                        .collect::<Result<_>>()?
                }
                "config.graphicsConfig" => h.graphics_config = Some(graphics_config(v)),
                "hardware.pciDevice" => {
                    for c in v.children() {
                        let d = PciDevice::from_node(c)?;
                        if d.vendor_id == NVIDIA_VENDOR_ID {
                            h.nvidia_pci_devices.push(d);
                        }
                    }
                }
                "customValue" => h.custom_values = CustomValues::from_node(v)?,
                _ => {}
            }
        }
        Ok(h)
    }
}

fn hardware_summary(v: &Node) -> Result<HardwareSummary> {
    Ok(HardwareSummary {
        vendor: v.child_string("vendor").unwrap_or_default(),
        model: v.child_string("model").unwrap_or_default(),
        uuid: v.child_string("uuid"),
        memory_size: v.child_parse("memorySize")?,
        cpu_model: v.child_string("cpuModel"),
        cpu_mhz: v.child_parse("cpuMhz")?,
        num_cpu_pkgs: v.child_parse("numCpuPkgs")?,
        num_cpu_cores: v.child_parse("numCpuCores")?,
        num_cpu_threads: v.child_parse("numCpuThreads")?,
    })
}

fn shared_gpu_capabilities(c: &Node) -> Result<SharedGpuCapabilities> {
    let b = |name: &str| c.child_bool(name).map(Option::unwrap_or_default);
    Ok(SharedGpuCapabilities {
        vgpu: c.child_string("vgpu").unwrap_or_default(),
        disk_snapshot_supported: b("diskSnapshotSupported")?,
        memory_snapshot_supported: b("memorySnapshotSupported")?,
        suspend_supported: b("suspendSupported")?,
        migrate_supported: b("migrateSupported")?,
    })
}

fn graphics_info(c: &Node) -> Result<GraphicsInfo> {
    Ok(GraphicsInfo {
        device_name: c.child_string("deviceName").unwrap_or_default(),
        vendor_name: c.child_string("vendorName").unwrap_or_default(),
        pci_id: c.child_string("pciId").unwrap_or_default(),
        graphics_type: c.child_string("graphicsType").unwrap_or_default(),
        vgpu_mode: c.child_string("vgpuMode"),
        memory_size_in_kb: c.child_parse("memorySizeInKB")?,
        vms: c
            .children_named("vm")
            .map(|n| {
                n.to_moref().and_then(|r| {
                    VmRef::try_from(r).map_err(|e| Error::Decode {
                        context: "HostGraphicsInfo.vm".into(),
                        detail: e.to_string(),
                    })
                })
            })
            .collect::<Result<_>>()?,
    })
}

fn graphics_config(v: &Node) -> GraphicsConfig {
    GraphicsConfig {
        host_default_graphics_type: v
            .child_string("hostDefaultGraphicsType")
            .unwrap_or_default(),
        shared_passthru_assignment_policy: v
            .child_string("sharedPassthruAssignmentPolicy")
            .unwrap_or_default(),
        device_types: v
            .children_named("deviceType")
            .map(|d| GraphicsDeviceType {
                device_id: d.child_string("deviceId").unwrap_or_default(),
                graphics_type: d.child_string("graphicsType").unwrap_or_default(),
                vgpu_mode: d.child_string("vgpuMode"),
            })
            .collect(),
    }
}

/// Calls `visit` on typed objects converted from a stream; a conversion
/// error stops the retrieval and is returned.
pub(crate) fn typed_visitor<T>(
    convert: impl Fn(ObjectContent) -> Result<T> + Send,
    mut visit: impl FnMut(T) -> ControlFlow<()> + Send,
    failure: &mut Option<Error>,
) -> impl FnMut(ObjectContent) -> ControlFlow<()> + Send {
    move |oc| match convert(oc) {
        Ok(t) => visit(t),
        Err(e) => {
            *failure = Some(e);
            ControlFlow::Break(())
        }
    }
}

/// A `ClusterComputeResource` with its name and member hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cluster {
    /// The cluster.
    pub moref: ClusterRef,
    /// `name`.
    pub name: String,
    /// `host`: its member hosts.
    pub hosts: Vec<HostRef>,
}

impl Cluster {
    /// Converts a property-collector result for a cluster (`name`, `host`).
    pub fn from_content(oc: ObjectContent) -> Result<Self> {
        let bad = |e: crate::WrongKind| Error::Decode {
            context: "ClusterComputeResource".into(),
            detail: e.to_string(),
        };
        let mut c = Cluster {
            moref: ClusterRef::try_from(oc.obj.clone()).map_err(bad)?,
            name: String::new(),
            hosts: Vec::new(),
        };
        for p in oc.props {
            match p.name.as_str() {
                "name" => c.name = p.val.text().to_string(),
                "host" => {
                    c.hosts = p
                        .val
                        .children()
                        .iter()
                        .map(|n| n.to_moref().and_then(|r| HostRef::try_from(r).map_err(bad)))
                        .collect::<Result<_>>()?
                }
                _ => {}
            }
        }
        Ok(c)
    }
}

impl Client {
    /// All clusters with their names and member hosts.
    pub async fn clusters(&self) -> Result<Vec<Cluster>> {
        let mut out = Vec::new();
        let mut failure = None;
        self.for_each_object(
            ClusterRef::KIND,
            &["name", "host"],
            RetrieveOptions::default(),
            typed_visitor(
                Cluster::from_content,
                |c| {
                    out.push(c);
                    ControlFlow::Continue(())
                },
                &mut failure,
            ),
        )
        .await?;
        failure.map_or(Ok(out), Err)
    }

    /// Streams every HostSystem in the inventory with the requested
    /// properties (one container view, paged, parsed incrementally).
    pub async fn for_each_host(
        &self,
        props: &[HostProperty],
        options: RetrieveOptions,
        visit: impl FnMut(HostSystem) -> ControlFlow<()> + Send,
    ) -> Result<RetrieveStats> {
        let paths = paths_of(props, HostProperty::paths);
        let mut failure = None;
        let stats = self
            .for_each_object(
                HostRef::KIND,
                &paths,
                options,
                typed_visitor(HostSystem::from_content, visit, &mut failure),
            )
            .await?;
        failure.map_or(Ok(stats), Err)
    }

    /// All hosts, collected (a few KB each without PCI devices).
    pub async fn hosts(&self, props: &[HostProperty]) -> Result<Vec<HostSystem>> {
        let mut out = Vec::new();
        self.for_each_host(props, RetrieveOptions::default(), |h| {
            out.push(h);
            ControlFlow::Continue(())
        })
        .await?;
        Ok(out)
    }

    /// One host's properties. An unknown host is
    /// [`crate::FaultKind::ManagedObjectNotFound`].
    pub async fn host(&self, host: &HostRef, props: &[HostProperty]) -> Result<HostSystem> {
        let paths = paths_of(props, HostProperty::paths);
        let oc = self.retrieve_object(host.as_moref(), &paths).await?;
        HostSystem::from_content(oc)
    }
}

#[cfg(test)]
mod tests {
    use std::ops::ControlFlow;

    use super::*;
    use crate::soap::decode::{Mode, parse_sync};

    /// Host properties as vcsim 0.24 writes them after the harness injects
    /// GPU data (research notes §2.6), including the signed Intel vendor id.
    const HOST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="HostSystem">host-21</obj>
<propSet><name>name</name><val xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="xsd:string">DC0_C0_H0</val></propSet>
<propSet><name>parent</name><val xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="ManagedObjectReference" type="ClusterComputeResource">domain-c16</val></propSet>
<propSet><name>hardware.systemInfo.uuid</name><val xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="xsd:string">564d2f12-8041-639b-5018-05a835b72eaf</val></propSet>
<propSet><name>config.sharedPassthruGpuTypes</name><val xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="ArrayOfString"><string>grid_a100-3-20c</string><string>grid_a100-7-40c</string></val></propSet>
<propSet><name>config.sharedGpuCapabilities</name><val xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="ArrayOfHostSharedGpuCapabilities"><HostSharedGpuCapabilities><vgpu>grid_a100-3-20c</vgpu><diskSnapshotSupported>false</diskSnapshotSupported><memorySnapshotSupported>false</memorySnapshotSupported><suspendSupported>false</suspendSupported><migrateSupported>true</migrateSupported></HostSharedGpuCapabilities></val></propSet>
<propSet><name>config.graphicsInfo</name><val xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="ArrayOfHostGraphicsInfo"><HostGraphicsInfo><deviceName>NVIDIA A100-PCIE-40GB</deviceName><vendorName>NVIDIA Corporation</vendorName><pciId>0000:3b:00.0</pciId><graphicsType>sharedDirect</graphicsType><memorySizeInKB>41943040</memorySizeInKB></HostGraphicsInfo></val></propSet>
<propSet><name>config.graphicsConfig</name><val xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="HostGraphicsConfig"><hostDefaultGraphicsType>sharedDirect</hostDefaultGraphicsType><sharedPassthruAssignmentPolicy>performance</sharedPassthruAssignmentPolicy><deviceType><deviceId>0000:3b:00.0</deviceId><graphicsType>sharedDirect</graphicsType></deviceType></val></propSet>
<propSet><name>hardware.pciDevice</name><val xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="ArrayOfHostPciDevice"><HostPciDevice><id>0000:00:00.0</id><classId>1536</classId><bus>0</bus><slot>0</slot><function>0</function><vendorId>-32634</vendorId><subVendorId>5549</subVendorId><vendorName>Intel Corporation</vendorName><deviceId>29072</deviceId><subDeviceId>6518</subDeviceId><parentBridge></parentBridge><deviceName>Virtual Machine Chipset</deviceName></HostPciDevice><HostPciDevice><id>0000:3b:00.0</id><classId>770</classId><bus>59</bus><slot>0</slot><function>0</function><vendorId>4318</vendorId><subVendorId>4318</subVendorId><vendorName>NVIDIA Corporation</vendorName><deviceId>8433</deviceId><subDeviceId>5215</subDeviceId><parentBridge></parentBridge><deviceName>NVIDIA A100-PCIE-40GB</deviceName></HostPciDevice></val></propSet>
<propSet><name>customValue</name><val xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="ArrayOfCustomFieldValue"><CustomFieldValue XMLSchema-instance:type="CustomFieldStringValue"><key>0</key><value>a</value></CustomFieldValue><CustomFieldValue XMLSchema-instance:type="CustomFieldStringValue"><key>0</key><value>b</value></CustomFieldValue></val></propSet>
</objects></returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#;

    #[test]
    fn host_gpu_properties_decode() {
        let mut hosts = Vec::new();
        parse_sync(HOST.as_bytes(), Mode::Stream, &mut |n: Node| {
            hosts.push(HostSystem::from_content(ObjectContent::from_node(n)?)?);
            Ok(ControlFlow::Continue(()))
        })
        .unwrap();
        let h = &hosts[0];
        assert_eq!(h.name.as_deref(), Some("DC0_C0_H0"));
        assert_eq!(h.cluster(), Some(ClusterRef::new("domain-c16")));
        assert_eq!(
            h.bios_uuid.as_ref().unwrap().as_str(),
            "564d2f12-8041-639b-5018-05a835b72eaf"
        );
        assert_eq!(
            h.shared_passthru_gpu_types,
            ["grid_a100-3-20c", "grid_a100-7-40c"]
        );
        assert!(h.shared_gpu_capabilities[0].migrate_supported);
        assert_eq!(h.graphics_info[0].memory_size_in_kb, Some(41943040));
        assert_eq!(
            h.graphics_config.as_ref().unwrap().device_types[0].device_id,
            "0000:3b:00.0"
        );
        // The Intel device (signed vendor id) was read and dropped; NVIDIA kept.
        assert_eq!(h.nvidia_pci_devices.len(), 1);
        let gpu = &h.nvidia_pci_devices[0];
        assert_eq!(
            (gpu.vendor_id, gpu.device_id, gpu.class_id, gpu.bus),
            (0x10de, 0x20f1, 0x0302, 0x3b)
        );
        assert!(gpu.is_nvidia_gpu());
        assert_eq!(h.custom_values.get(crate::CustomFieldKey(0)), Some("b"));
    }

    #[test]
    fn signed_and_unsigned_ids_agree() {
        let n = |t: &str| Node {
            name: "vendorId".into(),
            text: t.into(),
            ..Node::default()
        };
        assert_eq!(wire_u16(&n("-32634")).unwrap(), 0x8086);
        assert_eq!(wire_u16(&n("32902")).unwrap(), 0x8086);
        assert!(wire_u16(&n("70000")).is_err());
        assert_eq!(wire_u8(&n("-59")).unwrap(), 197);
        assert_eq!(wire_u8(&n("197")).unwrap(), 197);
    }
}
