//! The report view: the serialisable shape of an [`Analysis`] that every renderer (table,
//! CSV, HTML, JSON) and `--json` readers use as is, and the builders that make it. The JSON
//! form is the `vmig.report/v1` schema (docs/admin-guide.md); [`crate::stream`] writes the
//! same document one compute resource at a time.

use std::collections::BTreeMap;

use serde::Serialize;

use mig::defrag::{Stranded, StrandedTotals, stranded};
use mig::report::MigModeReport;
use mig::{GpuModel, Placement, VgpuType};

use crate::analysis::{AgentStatus, Analysis, GpuAnalysis, HostAnalysis};
use crate::inventory::VmInfo;
use crate::reservation::{Reservation, ReservationStatus};
use crate::times::format_time;

/// Schema name of `vmig report --format json`.
pub const REPORT_SCHEMA: &str = "vmig.report/v1";

/// `vmig report` output.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always [`REPORT_SCHEMA`].
    pub schema: &'static str,
    /// RFC 3339 time of the analysis.
    pub generated_at: String,
    /// Filters applied.
    pub scope: ScopeView,
    /// Per vCenter.
    pub vcenters: Vec<VcenterView>,
    /// Capacity over everything in scope.
    pub capacity: Vec<TypeCapacity>,
    /// Stranded capacity over everything in scope.
    pub stranded: StrandedTotals,
    /// VMs with MIG-backed vGPUs (or a reservation).
    pub vgpu_vms: Vec<VgpuVmView>,
    /// Hosts with GPUs whose agent report is missing, stale or unreadable.
    pub flagged_hosts: Vec<FlaggedHost>,
    /// Other findings.
    pub warnings: Vec<String>,
}

/// The filters of a report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScopeView {
    /// `--datacenter`.
    pub datacenter: Option<String>,
    /// `--cluster`.
    pub cluster: Option<String>,
}

/// One vCenter.
#[derive(Debug, Clone, Serialize)]
pub struct VcenterView {
    /// Host part of its URL.
    pub name: String,
    /// SDK URL.
    pub url: String,
    /// Product string.
    pub product: String,
    /// Datacenters in scope.
    pub datacenters: Vec<DatacenterView>,
    /// Capacity over this vCenter.
    pub capacity: Vec<TypeCapacity>,
}

/// One datacenter.
#[derive(Debug, Clone, Serialize)]
pub struct DatacenterView {
    /// Name.
    pub name: String,
    /// Clusters and standalone hosts.
    pub clusters: Vec<ClusterView>,
}

/// A cluster or a standalone host's compute resource.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    /// Name.
    pub name: String,
    /// `cluster` or `standalone`.
    pub kind: &'static str,
    /// Hosts.
    pub hosts: Vec<HostView>,
    /// What can still be placed here.
    pub capacity: Vec<TypeCapacity>,
    /// Stranded capacity summed over the cluster's GPUs.
    pub stranded: StrandedTotals,
}

/// "can still place N× type".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TypeCapacity {
    /// vGPU type as the hosts spell it.
    pub vgpu_type: String,
    /// GI profile backing it.
    pub profile: String,
    /// How many more VMs of the type fit.
    pub count: u32,
}

/// One host.
#[derive(Debug, Clone, Serialize)]
pub struct HostView {
    /// Name.
    pub name: String,
    /// Managed object id.
    pub moref: String,
    /// `runtime.connectionState`.
    pub connection_state: Option<String>,
    /// Agent report state.
    pub agent: AgentView,
    /// vGPU types the host offers.
    pub vgpu_types_offered: Vec<String>,
    /// GPUs from the agent's report.
    pub gpus: Vec<GpuView>,
}

/// The agent report's metadata.
#[derive(Debug, Clone, Serialize)]
pub struct AgentView {
    /// ok, stale, missing, invalid, not_applicable.
    pub status: AgentStatus,
    /// Why it is flagged.
    pub detail: Option<String>,
    /// Agent version.
    pub agent_version: Option<String>,
    /// Report generation.
    pub generation: Option<u64>,
    /// Observation time.
    pub observed_at: Option<String>,
    /// Age in seconds.
    pub age_s: Option<i64>,
    /// Heartbeat.
    pub heartbeat_interval_s: Option<u64>,
}

/// One GPU.
#[derive(Debug, Clone, Serialize)]
pub struct GpuView {
    /// NVML index.
    pub index: u32,
    /// `GPU-…` UUID.
    pub uuid: String,
    /// NVML name.
    pub name: String,
    /// Catalog key.
    pub model: Option<String>,
    /// PCI bus id.
    pub pci_bus_id: String,
    /// MIG mode (current and pending).
    pub mig_mode: Option<MigModeReport>,
    /// Memory slices of the model (diagram columns).
    pub memory_slices: u32,
    /// Compute slices of the model.
    pub compute_slices: u32,
    /// The GI layout.
    pub instances: Vec<GiView>,
    /// Reservations counted on this GPU.
    pub reservations: Vec<ReservationView>,
    /// Remaining GI capacity per profile, reservations included.
    pub free_profiles: Vec<ProfileCount>,
    /// Remaining capacity per MIG-backed vGPU type.
    pub free_vgpu_types: Vec<VgpuTypeCount>,
    /// Largest GI profile still placeable, reservations included.
    pub largest_placeable: Option<String>,
    /// Fragmentation in [0, 1], reservations included.
    pub fragmentation: f64,
    /// Free slices that a re-layout of the GIs not in use (reservations of powered-off VMs,
    /// idle GIs) would make usable by a larger profile (`mig::defrag::stranded`; issue 20).
    pub stranded: Option<Stranded>,
    /// Volatile ECC error counts (`vmig.mig` `usage.gpus[].ecc`), when the agent reads them.
    pub ecc: Option<mig::report::EccCounts>,
    /// XID errors since the agent started (`usage.gpus[].xid`), when the driver delivers them.
    pub xid: Option<mig::report::XidCounts>,
    /// NVML error or analysis problem.
    pub error: Option<String>,
    /// Whole-GPU time-sliced vGPUs on a GPU not in MIG mode, as its agent publishes them
    /// (issue 18; docs/reported-data.md, "Time-sliced vGPUs").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timesliced: Option<mig::report::TimeslicedReport>,
}

/// A GPU instance.
#[derive(Debug, Clone, Serialize)]
pub struct GiView {
    /// GI id.
    pub gi_id: u32,
    /// Profile name.
    pub profile: String,
    /// Memory-slice placement.
    pub placement: Placement,
    /// Compute slices of its profile.
    pub compute_slices: u32,
    /// Its CIs.
    pub compute_instances: Vec<CiView>,
    /// In use.
    pub in_use: bool,
    /// Occupying VM.
    pub vm: Option<String>,
    /// vGPU type of that VM.
    pub vgpu_type: Option<String>,
    /// Measured utilization of the vGPU on it, 1 h and 24 h windows, when the agent samples
    /// (`vmig.mig` `usage`; docs/reported-data.md, "Utilization").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<mig::report::GiUsage>,
    /// Every vGPU the GI hosts when it runs time-sliced vGPUs (`vgpu_type` above is the first).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vgpus: Vec<mig::report::VgpuReport>,
    /// How many more vGPUs of the type it hosts fit in it, when that type is time-sliced
    /// inside GIs on this GPU (`sliced_types`; `mig::vgpu_slots`): the slots its vGPUs and the
    /// reservations counted on it leave, as `vmig capacity` counts them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub more_vgpus: Option<u32>,
}

/// A compute instance.
#[derive(Debug, Clone, Serialize)]
pub struct CiView {
    /// CI id.
    pub ci_id: u32,
    /// Profile name.
    pub profile: String,
    /// MIG device UUID.
    pub uuid: String,
    /// Compute slices within the GI (the driver's default placement; not in the document).
    pub placement: Option<Placement>,
}

/// A reservation on a GPU.
#[derive(Debug, Clone, Serialize)]
pub struct ReservationView {
    /// Holder.
    pub vm: String,
    /// vGPU type.
    pub vgpu_type: String,
    /// GI profile.
    pub profile: String,
    /// Where it is counted.
    pub placement: Option<Placement>,
    /// Where it was planned.
    pub planned_placement: Placement,
    /// When.
    pub reserved_at: String,
    /// held, moved, running, unplaceable, superseded, expired.
    pub status: ReservationStatus,
    /// The journal step of the `assign` that wrote it, while not `done`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<crate::reservation::Step>,
    /// When it stops counting (vCenter time), if it expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// Capacity of one GI profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileCount {
    /// Profile name.
    pub profile: String,
    /// How many more fit.
    pub count: u32,
}

/// Capacity of one vGPU type on one GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VgpuTypeCount {
    /// Type name.
    pub vgpu_type: String,
    /// Backing profile.
    pub profile: String,
    /// How many more fit.
    pub count: u32,
    /// Whether the host offers it.
    pub offered: bool,
}

/// A VM with a MIG-backed vGPU or a reservation.
#[derive(Debug, Clone, Serialize)]
pub struct VgpuVmView {
    /// Name.
    pub vm: String,
    /// Managed object id.
    pub moref: String,
    /// vGPU types of its devices (empty if only reserved).
    pub vgpu_types: Vec<String>,
    /// GI profiles backing them.
    pub profiles: Vec<String>,
    /// Power state.
    pub power_state: Option<String>,
    /// Host name.
    pub host: Option<String>,
    /// Cluster name.
    pub cluster: String,
    /// Datacenter name.
    pub datacenter: String,
    /// vCenter.
    pub vcenter: String,
    /// Its reservation's host and GPU, when it has one.
    pub reservation: Option<String>,
}

/// A host to look at.
#[derive(Debug, Clone, Serialize)]
pub struct FlaggedHost {
    /// vCenter.
    pub vcenter: String,
    /// Datacenter.
    pub datacenter: String,
    /// Cluster.
    pub cluster: String,
    /// Host.
    pub host: String,
    /// stale, missing, invalid.
    pub status: AgentStatus,
    /// Why.
    pub reason: String,
}

/// The host's spelling of each MIG-backed type of `model`, with the family's spelling
/// (`mig::vgpu::vendor_prefix`) as fallback.
fn type_name(
    host: &HostAnalysis,
    model: &GpuModel,
    profile: &mig::GiProfile,
) -> Option<(String, bool)> {
    let t = mig::vgpu::vgpu_type_for(model, profile)?;
    Some(match host.offered(&t) {
        Some(s) => (s.to_string(), true),
        None => (t.to_string(), false),
    })
}

fn gpu_view(host: &HostAnalysis, g: &GpuAnalysis) -> GpuView {
    let mut v = GpuView {
        index: g.report.index,
        uuid: g.report.uuid.clone(),
        name: g.report.name.clone(),
        model: g
            .model
            .map(|m| m.key.to_string())
            .or_else(|| g.report.model.clone()),
        pci_bus_id: g.report.pci_bus_id.clone(),
        mig_mode: g.report.mig_mode,
        memory_slices: g.model.map_or(8, |m| m.memory_slices),
        compute_slices: g.model.map_or(7, |m| m.compute_slices),
        instances: Vec::new(),
        reservations: Vec::new(),
        free_profiles: Vec::new(),
        free_vgpu_types: Vec::new(),
        largest_placeable: None,
        fragmentation: 0.0,
        stranded: None,
        ecc: None,
        xid: None,
        error: g.report.error.clone().or_else(|| g.problem.clone()),
        timesliced: g.report.timesliced.clone(),
    };
    if let Some(u) = host
        .report
        .as_ref()
        .and_then(|r| r.gpu_usage(&g.report.uuid))
    {
        v.ecc = u.ecc;
        v.xid = u.xid.clone();
    }
    // With the reservations counted, as `capacity` counts them (analysis::GpuAnalysis::slots).
    let slots = &g.slots;
    for gi in &g.report.gpu_instances {
        let profile = g.model.and_then(|m| m.gi_profile(gi.profile_id));
        let more_vgpus = slots
            .gis
            .iter()
            .find(|s| s.gi.0 == gi.gi_id.0)
            .and_then(|s| s.hosted.as_ref().map(|h| s.free_for(h)));
        let ci_places: Vec<Placement> = g
            .reported
            .as_ref()
            .and_then(|s| s.gpu_instance(gi.gi_id))
            .map(|s| s.compute_instances.values().map(|c| c.placement).collect())
            .unwrap_or_default();
        v.instances.push(GiView {
            gi_id: gi.gi_id.0,
            profile: gi.profile.clone(),
            placement: gi.placement,
            compute_slices: profile.map_or(0, |p| p.compute_slices),
            compute_instances: gi
                .compute_instances
                .iter()
                .enumerate()
                .map(|(i, c)| CiView {
                    ci_id: c.ci_id.0,
                    profile: c.profile.clone(),
                    uuid: c.uuid.clone(),
                    placement: ci_places.get(i).copied(),
                })
                .collect(),
            in_use: gi.in_use,
            vm: gi.vm.clone(),
            vgpu_type: gi.vgpu_type.clone(),
            usage: host
                .report
                .as_ref()
                .and_then(|r| r.gi_usage(&g.report.uuid, gi.gi_id))
                .cloned(),
            vgpus: gi.vgpus.clone(),
            more_vgpus,
        });
    }
    v.reservations = g
        .reservations
        .iter()
        .map(|r| ReservationView {
            vm: r.held.vm.clone(),
            vgpu_type: r.held.reservation.vgpu_type.clone(),
            profile: r.held.reservation.profile.clone(),
            placement: r.placement,
            planned_placement: r.held.reservation.placement,
            reserved_at: r.held.reservation.reserved_at.clone(),
            status: r.status,
            step: Some(r.held.reservation.step()).filter(|s| *s != crate::reservation::Step::Done),
            expires_at: r.held.reservation.expires_at.clone(),
        })
        .collect();
    if let (Some(model), Some(state)) = (g.model, &g.state)
        && g.mig_enabled()
    {
        for p in model.gi_profiles {
            let count = state.remaining_gi_capacity(p.id).unwrap_or(0);
            if count == 0 {
                continue;
            }
            v.free_profiles.push(ProfileCount {
                profile: p.name.to_string(),
                count,
            });
            if let Some((name, offered)) = type_name(host, model, p) {
                v.free_vgpu_types.push(VgpuTypeCount {
                    vgpu_type: name,
                    profile: p.name.to_string(),
                    count,
                    offered,
                });
            }
        }
        v.largest_placeable = state.largest_placeable().map(|p| p.name.to_string());
        v.fragmentation = state.fragmentation();
        v.stranded = Some(stranded(state, |gi| !gi.is_in_use()));
    }
    v
}

/// Adds a host's usable capacity to a per-type tally.
fn tally(host: &HostAnalysis, into: &mut BTreeMap<(String, String), u32>) {
    if !host.usable() {
        return;
    }
    for g in &host.gpus {
        tally_time_sliced(host, g, into);
        let (Some(model), Some(state)) = (g.model, &g.state) else {
            continue;
        };
        if !g.mig_enabled() {
            continue;
        }
        for p in model.gi_profiles {
            let Some((name, true)) = type_name(host, model, p) else {
                continue;
            };
            let count = state.remaining_gi_capacity(p.id).unwrap_or(0);
            if count > 0 {
                *into.entry((name, p.name.to_string())).or_default() += count;
            }
        }
    }
}

/// Issue 18: the slots of types a GPU runs time-sliced inside GIs (`capacity_on`, under the
/// GI profile's name) and, on a GPU without MIG, its whole-GPU time-sliced types (under
/// `time-sliced`), each where the host offers it.
fn tally_time_sliced(
    host: &HostAnalysis,
    g: &GpuAnalysis,
    into: &mut BTreeMap<(String, String), u32>,
) {
    let offered =
        |name: &str| VgpuType::parse(name).and_then(|t| host.offered(&t).map(str::to_string));
    if let Some(ts) = g.report.timesliced.as_ref().filter(|_| !g.mig_enabled()) {
        for t in ts.types.iter().filter(|t| t.more > 0) {
            if let Some(name) = offered(&t.vgpu_type) {
                *into.entry((name, "time-sliced".into())).or_default() += t.more;
            }
        }
    }
    let (Some(model), Some(state)) = (g.model, &g.state) else {
        return;
    };
    if !g.mig_enabled() {
        return;
    }
    for r in &g.report.sliced_types {
        let (Some(t), Some(name)) = (r.to_sliced(), offered(&r.vgpu_type)) else {
            continue;
        };
        let Some(p) = model.gi_profile(t.gi_profile) else {
            continue;
        };
        let count = mig::vgpu_slots::capacity_on(state, &g.slots, &t).unwrap_or(0);
        if count > 0 {
            *into.entry((name, p.name.to_string())).or_default() += count;
        }
    }
}

pub(crate) fn capacity_list(t: BTreeMap<(String, String), u32>) -> Vec<TypeCapacity> {
    let mut out: Vec<TypeCapacity> = t
        .into_iter()
        .map(|((vgpu_type, profile), count)| TypeCapacity {
            vgpu_type,
            profile,
            count,
        })
        .collect();
    // Biggest slices first: they are the scarce ones.
    out.sort_by(|a, b| {
        let size = |t: &TypeCapacity| {
            VgpuType::parse(&t.vgpu_type)
                .and_then(|v| v.mig_slices)
                .unwrap_or(0)
        };
        size(b)
            .cmp(&size(a))
            .then_with(|| a.vgpu_type.cmp(&b.vgpu_type))
    });
    out
}

/// The view of one analysed host.
pub(crate) fn host_view(h: &HostAnalysis) -> HostView {
    HostView {
        name: h.host.name.clone(),
        moref: h.host.moref.value().to_string(),
        connection_state: h.host.connection_state.clone(),
        agent: AgentView {
            status: h.status,
            detail: h.status_detail.clone(),
            agent_version: h.report.as_ref().map(|r| r.agent_version.clone()),
            generation: h.report.as_ref().map(|r| r.generation),
            observed_at: h.report.as_ref().map(|r| r.observed_at.clone()),
            age_s: h.age_s,
            heartbeat_interval_s: h.report.as_ref().map(|r| r.heartbeat_interval_s),
        },
        vgpu_types_offered: h.host.vgpu_types.clone(),
        gpus: h.gpus.iter().map(|g| gpu_view(h, g)).collect(),
    }
}

/// Where a cluster's views are counted: the vCenter's tally and the flagged hosts.
pub(crate) struct ClusterSink<'a> {
    pub(crate) vcenter: &'a str,
    pub(crate) datacenter: &'a str,
    pub(crate) vc_total: &'a mut BTreeMap<(String, String), u32>,
    pub(crate) flagged: &'a mut Vec<FlaggedHost>,
}

/// Stranded capacity summed over clusters.
fn sum_stranded<'c>(clusters: impl IntoIterator<Item = &'c ClusterView>) -> StrandedTotals {
    let mut t = StrandedTotals::default();
    for c in clusters {
        t.merge(c.stranded);
    }
    t
}

/// The view of one compute resource from its analysed hosts (in report order).
pub(crate) fn cluster_view<'h>(
    name: &str,
    is_cluster: bool,
    hosts: impl IntoIterator<Item = &'h HostAnalysis>,
    sink: &mut ClusterSink<'_>,
) -> ClusterView {
    let mut cl_total = BTreeMap::new();
    let mut views = Vec::new();
    for h in hosts {
        tally(h, &mut cl_total);
        if h.status.is_flagged() {
            sink.flagged.push(FlaggedHost {
                vcenter: sink.vcenter.to_string(),
                datacenter: sink.datacenter.to_string(),
                cluster: name.to_string(),
                host: h.host.name.clone(),
                status: h.status,
                reason: h.status_detail.clone().unwrap_or_default(),
            });
        }
        views.push(host_view(h));
    }
    for (k, n) in &cl_total {
        *sink.vc_total.entry(k.clone()).or_default() += n;
    }
    let mut stranded = StrandedTotals::default();
    for g in views.iter().flat_map(|h| &h.gpus) {
        if let Some(s) = &g.stranded {
            stranded.add(s);
        }
    }
    ClusterView {
        name: name.to_string(),
        kind: if is_cluster { "cluster" } else { "standalone" },
        hosts: views,
        capacity: capacity_list(cl_total),
        stranded,
    }
}

/// The MIG-backed vGPUs the agent of `vm`'s host reports running for it (matched by VM
/// name or BIOS UUID, whichever NVML gave).
fn running_vgpus(host: Option<&HostAnalysis>, vm: &VmInfo) -> Vec<(String, Option<String>)> {
    let Some(host) = host else {
        return Vec::new();
    };
    let matches = |who: &str| {
        who == vm.name
            || vm
                .uuid
                .as_deref()
                .is_some_and(|u| crate::reservation::same_uuid(u, who))
    };
    host.gpus
        .iter()
        .flat_map(|g| g.report.gpu_instances.iter().map(move |gi| (g, gi)))
        .filter(|(_, gi)| gi.in_use && gi.vm.as_deref().is_some_and(matches))
        .map(|(g, gi)| {
            let name = gi.vgpu_type.clone().or_else(|| {
                let model = g.model?;
                let p = model.gi_profile(gi.profile_id)?;
                mig::vgpu::vgpu_type_for(model, p).map(|t| t.to_string())
            });
            (
                name.unwrap_or_else(|| gi.profile.clone()),
                Some(gi.profile.clone()),
            )
        })
        .collect()
}

/// Where a VM sits, for [`vgpu_vm_view`].
pub(crate) struct VmPlace<'a> {
    pub(crate) vcenter: &'a str,
    pub(crate) datacenter: &'a str,
    pub(crate) cluster: &'a str,
    /// The analysed host the VM runs on, if it is in scope.
    pub(crate) host: Option<&'a HostAnalysis>,
    /// That host's name (its id when it is not in scope).
    pub(crate) host_name: Option<String>,
}

/// The report line of `vm`, if it has a MIG-backed vGPU or a reservation.
pub(crate) fn vgpu_vm_view(vm: &VmInfo, place: VmPlace<'_>) -> Option<VgpuVmView> {
    let mut mig: Vec<(String, Option<String>)> = vm
        .vgpus
        .iter()
        .filter_map(|d| {
            let t = VgpuType::parse(d.profile.as_str())?;
            t.is_mig_backed()
                .then(|| (d.profile.as_str().to_string(), t.mig_profile_name()))
        })
        .collect();
    if mig.is_empty() && !vm.devices_read {
        // A running VM: its vGPU is what its host's agent reports for it.
        mig = running_vgpus(place.host, vm);
    }
    let reservation = vm
        .reservation
        .as_deref()
        .and_then(|r| Reservation::from_json(r).ok());
    if mig.is_empty() && reservation.is_none() {
        return None;
    }
    Some(VgpuVmView {
        vm: vm.name.clone(),
        moref: vm.moref.value().to_string(),
        vgpu_types: mig.iter().map(|(t, _)| t.clone()).collect(),
        profiles: mig.iter().filter_map(|(_, p)| p.clone()).collect(),
        power_state: vm.power_state.map(|p| p.to_string()),
        host: place.host_name,
        cluster: place.cluster.to_string(),
        datacenter: place.datacenter.to_string(),
        vcenter: place.vcenter.to_string(),
        // Every vGPU of a multi-vGPU reservation, not only the first.
        reservation: reservation.map(|r| {
            let vgpus: Vec<String> =
                std::iter::once(format!("{} {} @{}", r.vgpu_type, r.profile, r.placement))
                    .chain(
                        r.more
                            .iter()
                            .map(|m| format!("{} {} @{}", m.vgpu_type, m.profile, m.placement)),
                    )
                    .collect();
            format!("{} on {}", vgpus.join(", "), r.host_name)
        }),
    })
}

impl Analysis {
    /// The serialisable report.
    pub fn report(&self, scope: ScopeView) -> Report {
        let mut total = BTreeMap::new();
        let mut vcenters = Vec::new();
        let mut flagged = Vec::new();
        for (vi, inv) in self.inventories.iter().enumerate() {
            let mut vc_total = BTreeMap::new();
            let mut datacenters = Vec::new();
            for dc in &inv.datacenters {
                let mut sink = ClusterSink {
                    vcenter: &inv.name,
                    datacenter: &dc.name,
                    vc_total: &mut vc_total,
                    flagged: &mut flagged,
                };
                let clusters = dc
                    .compute
                    .iter()
                    .map(|cr| {
                        let hosts = self.hosts.iter().filter(|h| {
                            h.vcenter == vi && h.datacenter == dc.name && h.compute == cr.moref
                        });
                        cluster_view(&cr.name, cr.is_cluster, hosts, &mut sink)
                    })
                    .collect();
                datacenters.push(DatacenterView {
                    name: dc.name.clone(),
                    clusters,
                });
            }
            for (k, n) in &vc_total {
                *total.entry(k.clone()).or_default() += n;
            }
            vcenters.push(VcenterView {
                name: inv.name.clone(),
                url: inv.url.clone(),
                product: inv.product.clone(),
                datacenters,
                capacity: capacity_list(vc_total),
            });
        }
        let stranded = sum_stranded(
            vcenters
                .iter()
                .flat_map(|v| &v.datacenters)
                .flat_map(|d| &d.clusters),
        );
        Report {
            schema: REPORT_SCHEMA,
            generated_at: format_time(self.now),
            scope,
            vcenters,
            capacity: capacity_list(total),
            stranded,
            vgpu_vms: self.vgpu_vms(),
            flagged_hosts: flagged,
            warnings: self.warnings.clone(),
        }
    }

    fn vgpu_vms(&self) -> Vec<VgpuVmView> {
        let mut out = Vec::new();
        for (vi, inv) in self.inventories.iter().enumerate() {
            for (dc, cr, vm) in inv.vms() {
                let host = vm.host.as_ref().and_then(|r| {
                    self.hosts
                        .iter()
                        .find(|h| h.vcenter == vi && &h.host.moref == r)
                });
                let host_name = vm.host.as_ref().map(|r| {
                    inv.hosts()
                        .find(|(_, _, h)| &h.moref == r)
                        .map(|(_, _, h)| h.name.clone())
                        .unwrap_or_else(|| r.value().to_string())
                });
                let place = VmPlace {
                    vcenter: &inv.name,
                    datacenter: &dc.name,
                    cluster: &cr.name,
                    host,
                    host_name,
                };
                out.extend(vgpu_vm_view(vm, place));
            }
        }
        out
    }
}
