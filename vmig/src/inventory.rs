//! Pulls what the admin commands need from one vCenter, as few bytes and round trips as
//! possible, because the target is vCenter's maximum inventory (2,500 hosts, 40,000 VMs).
//!
//! - one `RetrievePropertiesEx` per compute resource (cluster or standalone host), retrieved
//!   concurrently, for its hosts (`ComputeResource.host`) *and* the VMs registered on them
//!   (`HostSystem.vm`) with explicit, small property sets, parsed while it streams (no
//!   whole-response buffering). Container views are used only to list datacenters and
//!   compute resources;
//! - VM device lists (`config.hardware.device`, ~6 KB per VM) only for VMs that sit on a host
//!   with NVIDIA GPUs or carry a vmig reservation, in batches;
//! - the agents' documents come with the host properties (`customValue`), so there is no
//!   second pass per host.
//!
//! Only compact typed values are kept ([`HostInfo`], [`VmInfo`]); the XML of an object is
//! dropped as soon as it is converted.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::ops::ControlFlow;

use futures_util::future::join_all;
use time::OffsetDateTime;

use crate::AdminError;
use vcenter_client::{
    BiosUuid, Client, CustomFieldKey, FilterSpec, GraphicsInfo, HostProperty, HostRef, HostSystem,
    MoRef, ObjectSpec, PowerState, PropertySpec, RetrieveOptions, TraversalSpec, VgpuDevice,
    VirtualMachine, VmProperty, VmRef,
};

/// How many compute resources of one vCenter are retrieved at the same time.
const CONCURRENCY: usize = 8;
/// VMs per device-list request.
const DEVICE_BATCH: usize = 250;

/// Host properties read for every host.
pub const HOST_PROPS: &[HostProperty] = &[
    HostProperty::Name,
    HostProperty::ConnectionState,
    HostProperty::BiosUuid,
    HostProperty::Gpu,
    HostProperty::CustomValues,
];

/// VM properties read for every VM (no device list).
pub const VM_PROPS: &[VmProperty] = &[
    VmProperty::Name,
    VmProperty::Uuid,
    VmProperty::Host,
    VmProperty::PowerState,
    VmProperty::MemoryReservationLockedToMax,
    VmProperty::CustomValues,
];

/// Which VMs [`collect_with`] keeps once a compute resource is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VmSelection {
    /// Every VM (`assign` and `unassign` look VMs up by name).
    #[default]
    All,
    /// Only the VMs a report shows or counts: VMs holding a `vmig.reservation`, VMs whose
    /// device list was read and has a vGPU, and VMs whose host's agent report names them
    /// (by name or BIOS UUID) as the occupant of a GPU instance. At vCenter's maximum of
    /// 40,000 VMs this is what keeps `vmig report` within its memory budget.
    Report,
}

/// Which part of the inventory to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Only this datacenter (exact name).
    pub datacenter: Option<String>,
    /// Only this cluster (exact name); standalone hosts are then left out.
    pub cluster: Option<String>,
}

impl Scope {
    fn wants_datacenter(&self, name: &str) -> bool {
        self.datacenter.as_deref().is_none_or(|d| d == name)
    }

    fn wants_compute(&self, name: &str, is_cluster: bool) -> bool {
        match &self.cluster {
            None => true,
            Some(c) => is_cluster && c == name,
        }
    }
}

/// Keys of vmig's custom fields in one vCenter (absent until someone created them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldKeys {
    /// `vmig.mig` (agent document, on hosts).
    pub document: Option<CustomFieldKey>,
    /// `vmig.reservation` (on VMs).
    pub reservation: Option<CustomFieldKey>,
}

/// One ESXi host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostInfo {
    /// The host.
    pub moref: HostRef,
    /// Its inventory name.
    pub name: String,
    /// `runtime.connectionState` (`connected`, `disconnected`, `notResponding`).
    pub connection_state: Option<String>,
    /// `hardware.systemInfo.uuid`: checked against the document's `host_uuid`, so a document
    /// copied from (or written by) another host is flagged.
    pub bios_uuid: Option<BiosUuid>,
    /// vGPU types the host offers (`config.sharedPassthruGpuTypes`).
    pub vgpu_types: Vec<String>,
    /// Physical graphics devices (`config.graphicsInfo`).
    pub graphics: Vec<GraphicsInfo>,
    /// The agent's `vmig.mig` document, as published.
    pub document: Option<String>,
}

impl HostInfo {
    /// Whether vSphere or an agent says the host has NVIDIA GPUs.
    pub fn has_gpus(&self) -> bool {
        self.document.is_some()
            || !self.vgpu_types.is_empty()
            || self.graphics.iter().any(|g| {
                g.vendor_name.to_ascii_lowercase().contains("nvidia")
                    || g.device_name.contains("NVIDIA")
            })
    }

    fn from_system(h: HostSystem, keys: FieldKeys) -> Self {
        HostInfo {
            name: h
                .name
                .clone()
                .unwrap_or_else(|| h.moref.value().to_string()),
            document: keys
                .document
                .and_then(|k| h.custom_values.get(k))
                .filter(|v| !v.trim().is_empty())
                .map(str::to_string),
            moref: h.moref,
            connection_state: h.connection_state,
            bios_uuid: h.bios_uuid,
            vgpu_types: h.shared_passthru_gpu_types,
            graphics: h.graphics_info,
        }
    }
}

/// One VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmInfo {
    /// The VM.
    pub moref: VmRef,
    /// Its name.
    pub name: String,
    /// Its BIOS UUID (`config.uuid`), which NVML may report instead of the name.
    pub uuid: Option<String>,
    /// The host it is registered on.
    pub host: Option<HostRef>,
    /// Power state.
    pub power_state: Option<PowerState>,
    /// `config.memoryReservationLockedToMax`.
    pub memory_locked: Option<bool>,
    /// The raw `vmig.reservation` value, when set and not empty.
    pub reservation: Option<String>,
    /// Its vGPUs (read only for VMs where [`VmInfo::devices_read`]).
    pub vgpus: Vec<VgpuDevice>,
    /// Whether the device list was read.
    pub devices_read: bool,
}

impl VmInfo {
    /// The VM as it is now, device list included: what `assign`, `unassign` and `repair`
    /// decide on once they hold the VM's lock (the inventory read before may be stale).
    pub async fn reread(client: &Client, vm: &VmRef) -> vcenter_client::Result<VmInfo> {
        let keys = field_keys(client).await?;
        let v = client.vm(vm, VmProperty::ALL).await?;
        let mut info = VmInfo::from_vm(v, keys);
        info.devices_read = true;
        Ok(info)
    }

    fn from_vm(v: VirtualMachine, keys: FieldKeys) -> Self {
        VmInfo {
            name: v
                .name
                .clone()
                .unwrap_or_else(|| v.moref.value().to_string()),
            reservation: keys
                .reservation
                .and_then(|k| v.custom_values.get(k))
                .filter(|s| !s.trim().is_empty())
                .map(str::to_string),
            uuid: v.uuid.map(|u| u.as_str().to_string()),
            moref: v.moref,
            host: v.host,
            power_state: v.power_state,
            memory_locked: v.memory_reservation_locked_to_max,
            vgpus: v.vgpus,
            devices_read: false,
        }
    }
}

/// A cluster, or a standalone host's compute resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ComputeInventory {
    /// `ClusterComputeResource` or `ComputeResource`.
    pub moref: MoRef,
    /// Its name (a standalone host's compute resource is named after the host).
    pub name: String,
    /// Whether it is a cluster.
    pub is_cluster: bool,
    /// Its hosts, by name.
    pub hosts: Vec<HostInfo>,
    /// Its VMs, by name.
    pub vms: Vec<VmInfo>,
}

/// A datacenter.
#[derive(Debug, Clone, PartialEq)]
pub struct DatacenterInventory {
    /// The datacenter.
    pub moref: MoRef,
    /// Its name.
    pub name: String,
    /// Clusters and standalone compute resources, by name.
    pub compute: Vec<ComputeInventory>,
}

/// Everything read from one vCenter.
#[derive(Debug, Clone, PartialEq)]
pub struct VcenterInventory {
    /// Host part of the URL, as the admin wrote it.
    pub name: String,
    /// The SDK URL.
    pub url: String,
    /// `about.fullName`.
    pub product: String,
    /// vmig's custom field keys.
    pub fields: FieldKeys,
    /// Datacenters in scope, by name.
    pub datacenters: Vec<DatacenterInventory>,
    /// Property-collector requests sent.
    pub requests: usize,
    /// Objects received.
    pub objects: usize,
    /// vCenter's own clock (`ServiceInstance.CurrentTime`) when the read ended: reports are
    /// judged stale or from the future against it, not against this machine's clock.
    pub server_time: Option<OffsetDateTime>,
}

impl VcenterInventory {
    /// The time to judge this vCenter's reports at: its own clock when it was read, else
    /// `local_now`.
    pub fn judged_at(&self, local_now: OffsetDateTime) -> OffsetDateTime {
        self.server_time.unwrap_or(local_now)
    }

    /// Every host with its datacenter and compute resource.
    pub fn hosts(
        &self,
    ) -> impl Iterator<Item = (&DatacenterInventory, &ComputeInventory, &HostInfo)> {
        self.datacenters.iter().flat_map(|d| {
            d.compute
                .iter()
                .flat_map(move |c| c.hosts.iter().map(move |h| (d, c, h)))
        })
    }

    /// Every VM with its datacenter and compute resource.
    pub fn vms(&self) -> impl Iterator<Item = (&DatacenterInventory, &ComputeInventory, &VmInfo)> {
        self.datacenters.iter().flat_map(|d| {
            d.compute
                .iter()
                .flat_map(move |c| c.vms.iter().map(move |v| (d, c, v)))
        })
    }
}

/// Progress callbacks (a terminal progress bar in the CLI, nothing in tests).
pub trait Progress {
    /// `n` more compute resources will be read.
    fn add_work(&self, n: u64);
    /// One compute resource was read.
    fn done(&self, what: &str);
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn add_work(&self, _n: u64) {}
    fn done(&self, _what: &str) {}
}

fn vc_err(vcenter: &str) -> impl Fn(vcenter_client::Error) -> AdminError + '_ {
    move |source| AdminError::Vcenter {
        vcenter: vcenter.to_string(),
        source,
    }
}

/// Reads vmig's custom field keys.
pub async fn field_keys(client: &Client) -> vcenter_client::Result<FieldKeys> {
    let defs = client.custom_field_defs().await?;
    let key = |name: &str, ty: &str| {
        defs.iter()
            .filter(|d| d.name == name && d.managed_object_type.as_deref().is_none_or(|t| t == ty))
            .map(|d| d.key)
            .next()
    };
    Ok(FieldKeys {
        document: key(mig::report::FIELD_DOCUMENT, "HostSystem"),
        reservation: key(mig::report::FIELD_RESERVATION, "VirtualMachine"),
    })
}

fn paths<P: Copy>(props: &[P], f: impl Fn(P) -> &'static [&'static str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in props {
        for path in f(*p) {
            if !out.iter().any(|o| o == path) {
                out.push((*path).to_string());
            }
        }
    }
    out
}

/// The name of every `type_name` object below `container`, through a temporary view;
/// returns the number of property-collector requests made.
async fn names_in(
    client: &Client,
    container: &MoRef,
    type_name: &str,
    out: &mut Vec<(MoRef, String)>,
) -> vcenter_client::Result<usize> {
    let stats = client
        .for_each_object_in(
            container,
            type_name,
            &["name"],
            RetrieveOptions::default(),
            |oc| {
                let name = oc
                    .get("name")
                    .map(|n| n.text().to_string())
                    .unwrap_or_default();
                out.push((oc.obj, name));
                ControlFlow::Continue(())
            },
        )
        .await?;
    Ok(stats.pages)
}

/// Reads the scoped inventory of one vCenter, every VM included.
pub async fn collect(
    client: &Client,
    name: &str,
    scope: &Scope,
    progress: &dyn Progress,
) -> Result<VcenterInventory, AdminError> {
    collect_with(client, name, scope, VmSelection::All, progress).await
}

/// Reads the scoped inventory of one vCenter, keeping the VMs `vms` selects.
pub async fn collect_with(
    client: &Client,
    name: &str,
    scope: &Scope,
    vms: VmSelection,
    progress: &dyn Progress,
) -> Result<VcenterInventory, AdminError> {
    let err = vc_err(name);
    let fields = field_keys(client).await.map_err(&err)?;
    let root = client.service_content().root_folder.as_moref().clone();
    let mut requests = 1;
    let mut objects = 0;

    // Datacenters and every compute resource (with its parent chain resolved by scoping
    // one view per datacenter).
    let mut dcs: Vec<(MoRef, String)> = Vec::new();
    requests += names_in(client, &root, "Datacenter", &mut dcs)
        .await
        .map_err(&err)?;
    dcs.retain(|(_, n)| scope.wants_datacenter(n));
    dcs.sort_by(|a, b| a.1.cmp(&b.1));

    let mut datacenters = Vec::new();
    let mut queue = VecDeque::new();
    for (dc_index, (dc, dc_name)) in dcs.iter().enumerate() {
        let mut computes: Vec<(MoRef, String)> = Vec::new();
        requests += names_in(client, dc, "ComputeResource", &mut computes)
            .await
            .map_err(&err)?;
        computes.retain(|(r, n)| scope.wants_compute(n, r.kind() == "ClusterComputeResource"));
        progress.add_work(computes.len() as u64);
        queue.extend(computes.into_iter().map(|(cr, n)| (dc_index, cr, n)));
        datacenters.push(DatacenterInventory {
            moref: dc.clone(),
            name: dc_name.clone(),
            compute: Vec::new(),
        });
    }
    // A few workers share one queue on this task: the I/O overlaps, and the parsing (which
    // borrows non-Send callbacks) stays on one thread.
    let queue = RefCell::new(queue);
    let results = RefCell::new(Vec::new());
    let worker = || async {
        loop {
            let Some((dc_index, cr, name)) = queue.borrow_mut().pop_front() else {
                break;
            };
            let out = collect_compute(client, cr, name, fields, vms).await;
            let failed = out.is_err();
            if let Ok((c, _, _)) = &out {
                progress.done(&c.name);
            }
            results.borrow_mut().push((dc_index, out));
            if failed {
                // Stop the other workers early: the whole retrieval fails anyway.
                queue.borrow_mut().clear();
                break;
            }
        }
    };
    join_all((0..CONCURRENCY).map(|_| worker())).await;
    for (dc_index, out) in results.into_inner() {
        let (compute, reqs, objs) = out.map_err(&err)?;
        requests += reqs;
        objects += objs;
        datacenters[dc_index].compute.push(compute);
    }
    for d in &mut datacenters {
        d.compute.sort_by(|a, b| a.name.cmp(&b.name));
    }
    // Read last, so that it is at least as late as every document read before it.
    let server_time = client
        .current_time()
        .await
        .ok()
        .and_then(|t| crate::times::parse_time(&t));
    Ok(VcenterInventory {
        server_time,
        name: name.to_string(),
        url: client.url(),
        product: client.service_content().about.full_name.clone(),
        fields,
        datacenters,
        requests,
        objects,
    })
}

/// What is read of one compute resource: its hosts and the VMs registered on them, with
/// [`HOST_PROPS`] and [`VM_PROPS`], in one call. Not a container view: that costs two more
/// round trips per compute resource, and vCenter walks the whole subtree to build it.
/// `HostSystem.vm` lists every VM registered on the host (powered off and templates too),
/// which is what a GPU report must see.
pub fn compute_resource_spec(cr: &MoRef) -> FilterSpec {
    FilterSpec {
        props: vec![
            PropertySpec {
                type_name: HostRef::KIND.into(),
                paths: paths(HOST_PROPS, HostProperty::paths),
            },
            PropertySpec {
                type_name: VmRef::KIND.into(),
                paths: paths(VM_PROPS, VmProperty::paths),
            },
        ],
        objects: vec![ObjectSpec {
            obj: cr.clone(),
            skip: true,
            select: vec![
                TraversalSpec::to("ComputeResource", "host")
                    .then(TraversalSpec::to(HostRef::KIND, "vm")),
            ],
        }],
    }
}

/// Hosts and VMs of one compute resource, then device lists where needed.
async fn collect_compute(
    client: &Client,
    cr: MoRef,
    name: String,
    fields: FieldKeys,
    selection: VmSelection,
) -> vcenter_client::Result<(ComputeInventory, usize, usize)> {
    let mut hosts = Vec::new();
    let mut vms = Vec::new();
    let mut failure = None;
    let mut objects = 0;
    let spec = compute_resource_spec(&cr);
    let stats = client
        .retrieve_properties(&spec, RetrieveOptions::default(), |oc| {
            objects += 1;
            let converted = if oc.obj.kind() == HostRef::KIND {
                HostSystem::from_content(oc).map(|h| hosts.push(HostInfo::from_system(h, fields)))
            } else if oc.obj.kind() == VmRef::KIND {
                VirtualMachine::from_content(oc).map(|v| vms.push(VmInfo::from_vm(v, fields)))
            } else {
                Ok(())
            };
            match converted {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    failure = Some(e);
                    ControlFlow::Break(())
                }
            }
        })
        .await?;
    let mut requests = stats.pages;
    if let Some(e) = failure {
        return Err(e);
    }
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    vms.sort_by(|a, b| a.name.cmp(&b.name));

    // Device lists are the expensive part (~6 KB per VM). A running VM's vGPU is in its
    // host's agent report (and, on real vCenter, in graphicsInfo[].vm), so only VMs that
    // are not running on a GPU host, VMs vCenter lists as GPU users, and VMs holding a
    // reservation need theirs.
    let gpu_hosts: Vec<&HostRef> = hosts
        .iter()
        .filter(|h| h.has_gpus())
        .map(|h| &h.moref)
        .collect();
    let gpu_users: Vec<&VmRef> = hosts
        .iter()
        .flat_map(|h| h.graphics.iter().flat_map(|g| &g.vms))
        .collect();
    let wanted: Vec<usize> = vms
        .iter()
        .enumerate()
        .filter(|(_, v)| {
            v.reservation.is_some()
                || gpu_users.contains(&&v.moref)
                || (v.power_state != Some(PowerState::PoweredOn)
                    && v.host.as_ref().is_some_and(|h| gpu_hosts.contains(&h)))
        })
        .map(|(i, _)| i)
        .collect();
    for batch in wanted.chunks(DEVICE_BATCH) {
        let refs: Vec<&MoRef> = batch.iter().map(|&i| vms[i].moref.as_moref()).collect();
        let spec = FilterSpec::objects(VmRef::KIND, refs, VmProperty::Vgpus.paths());
        let mut found: Vec<(VmRef, Vec<VgpuDevice>)> = Vec::new();
        let mut failure = None;
        let stats = client
            .retrieve_properties(&spec, RetrieveOptions::default(), |oc| {
                match VirtualMachine::from_content(oc) {
                    Ok(v) => {
                        found.push((v.moref, v.vgpus));
                        ControlFlow::Continue(())
                    }
                    Err(e) => {
                        failure = Some(e);
                        ControlFlow::Break(())
                    }
                }
            })
            .await?;
        if let Some(e) = failure {
            return Err(e);
        }
        requests += stats.pages;
        objects += stats.objects;
        for (r, vgpus) in found {
            if let Some(&i) = batch.iter().find(|&&i| vms[i].moref == r) {
                vms[i].vgpus = vgpus;
                vms[i].devices_read = true;
            }
        }
    }
    if selection == VmSelection::Report {
        let occupants = occupants(&hosts);
        vms.retain(|v| report_needs(v, &occupants));
        vms.shrink_to_fit();
    }
    Ok((
        ComputeInventory {
            is_cluster: cr.kind() == "ClusterComputeResource",
            moref: cr,
            name,
            hosts,
            vms,
        },
        requests,
        objects,
    ))
}

/// In-use GI occupants by host (looked up once per VM: tens of thousands per cluster).
type Occupants<'a> = HashMap<&'a HostRef, Vec<String>>;

/// Per host, who its agent report says occupies a GPU instance (`vm` of in-use GIs: a VM
/// name or a BIOS UUID, whichever NVML gave).
fn occupants(hosts: &[HostInfo]) -> Occupants<'_> {
    hosts
        .iter()
        .filter_map(|h| {
            let report = mig::report::HostReport::from_json(h.document.as_deref()?).ok()?;
            let who: Vec<String> = report
                .gpus
                .into_iter()
                .flat_map(|g| g.gpu_instances)
                .filter(|gi| gi.in_use)
                .filter_map(|gi| gi.vm)
                .collect();
            (!who.is_empty()).then_some((&h.moref, who))
        })
        .collect()
}

/// Whether a report shows or counts `vm` (see [`VmSelection::Report`]); the same tests as
/// the report's list of vGPU VMs, so nothing it would list is dropped.
fn report_needs(vm: &VmInfo, occupants: &Occupants<'_>) -> bool {
    if vm.reservation.is_some() || !vm.vgpus.is_empty() {
        return true;
    }
    if vm.devices_read {
        return false;
    }
    let Some(host) = &vm.host else {
        return false;
    };
    occupants.get(host).into_iter().flatten().any(|who| {
        *who == vm.name
            || vm
                .uuid
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case(who))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_filters() {
        let s = Scope {
            datacenter: Some("DC0".into()),
            cluster: Some("C1".into()),
        };
        assert!(s.wants_datacenter("DC0") && !s.wants_datacenter("DC1"));
        assert!(s.wants_compute("C1", true));
        assert!(
            !s.wants_compute("C1", false),
            "a standalone host is not a cluster"
        );
        assert!(Scope::default().wants_compute("DC0_H0", false));
    }

    #[test]
    fn report_selection_keeps_what_the_report_lists() {
        use mig::report::{GiReport, GpuReport, HostReport, SCHEMA_V1};
        let gi = |vm: &str, in_use: bool| GiReport {
            vgpus: Vec::new(),
            gi_id: mig::GpuInstanceId(1),
            profile_id: mig::GiProfileId(9),
            profile: "3g.20gb".into(),
            placement: mig::Placement::new(4, 4),
            compute_instances: vec![],
            in_use,
            vm: Some(vm.into()),
            vgpu_type: None,
            processes: vec![],
        };
        let doc = HostReport {
            schema: SCHEMA_V1.into(),
            agent_version: "0.1.0".into(),
            host_uuid: "u".into(),
            generation: 1,
            observed_at: "2026-11-26T14:02:11Z".into(),
            heartbeat_interval_s: 300,
            usage: None,
            gpus: vec![GpuReport {
                sliced_types: Vec::new(),
                timesliced: None,
                index: 0,
                uuid: "GPU-1".into(),
                name: "NVIDIA A100-PCIE-40GB".into(),
                pci_bus_id: "00000000:3B:00.0".into(),
                model: None,
                mig_mode: None,
                gpu_instances: vec![
                    gi("render-01", true),
                    gi("4211-ABCD", true),
                    gi("idle", false),
                ],
                free: Default::default(),
                largest_placeable: None,
                fragmentation: 0.0,
                placeable_vgpu_types: vec![],
                error: None,
                nvml_free: None,
                layout_state: None,
                geometry: None,
            }],
        }
        .to_json();
        let hosts = vec![HostInfo {
            moref: HostRef::new("host-1"),
            name: "esx01".into(),
            connection_state: None,
            bios_uuid: None,
            vgpu_types: vec![],
            graphics: vec![],
            document: Some(doc),
        }];
        let occupants = occupants(&hosts);
        let vm = |name: &str, uuid: &str, host: &str| VmInfo {
            moref: VmRef::new(format!("vm-{name}")),
            name: name.into(),
            uuid: Some(uuid.into()),
            host: Some(HostRef::new(host)),
            power_state: Some(PowerState::PoweredOn),
            memory_locked: None,
            reservation: None,
            vgpus: vec![],
            devices_read: false,
        };
        assert!(report_needs(&vm("render-01", "x", "host-1"), &occupants));
        assert!(
            report_needs(&vm("db", "4211-abcd", "host-1"), &occupants),
            "NVML may give the BIOS UUID, in any case"
        );
        assert!(!report_needs(&vm("render-01", "x", "host-2"), &occupants));
        assert!(
            !report_needs(&vm("idle", "x", "host-1"), &occupants),
            "GI not in use"
        );
        let mut reserved = vm("web", "y", "host-9");
        reserved.reservation = Some("{}".into());
        assert!(report_needs(&reserved, &occupants));
        let mut read = vm("render-01", "x", "host-1");
        read.devices_read = true;
        assert!(
            !report_needs(&read, &occupants),
            "its device list was read and has no vGPU"
        );
    }

    #[test]
    fn gpu_hosts_are_recognised() {
        let mut h = HostInfo {
            moref: HostRef::new("host-1"),
            name: "h".into(),
            connection_state: None,
            bios_uuid: None,
            vgpu_types: vec![],
            graphics: vec![],
            document: None,
        };
        assert!(!h.has_gpus());
        h.graphics.push(GraphicsInfo {
            vendor_name: "NVIDIA Corporation".into(),
            ..GraphicsInfo::default()
        });
        assert!(h.has_gpus());
    }
}
