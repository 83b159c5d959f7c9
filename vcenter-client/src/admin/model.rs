//! The report model: the inventory joined with the agents' documents and the VMs'
//! reservations, analysed with the `mig` crate, in a shape every renderer (and `--json`
//! readers) can use as is.
//!
//! Two layers: [`Analysis`] keeps typed working state (per-GPU [`MigState`] *with*
//! reservations applied) that `capacity` and `assign` plan on; [`Report`] is the serialisable
//! view of it. Capacity is placement-aware: the number of further vGPUs of a type a GPU can
//! take is `MigState::remaining_gi_capacity` of the type's GI profile on the reported layout
//! plus the reservations, and it is counted only where it can be used: the host offers the
//! type (`config.sharedPassthruGpuTypes`), MIG mode is on, and the agent's report is fresh.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde::ser::{Error as _, SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use mig::report::{GpuReport, HostReport, MigModeReport};
use mig::{GpuModel, MigState, Placement, VgpuType};

use super::inventory::{HostInfo, VcenterInventory};
use super::reservation::{AppliedReservation, HeldReservation, Reservation, ReservationStatus};

/// Schema name of `vmig report --format json`.
pub const REPORT_SCHEMA: &str = "vmig.report/v1";

/// A report is stale when older than this many heartbeats (docs/reported-data.md).
pub const STALE_HEARTBEATS: u64 = 3;

/// State of a host's agent report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// A fresh, readable report.
    Ok,
    /// Older than 3 heartbeats.
    Stale,
    /// The host has GPUs but no report.
    Missing,
    /// The report cannot be read.
    Invalid,
    /// No GPUs and no report: nothing expected.
    NotApplicable,
}

impl AgentStatus {
    /// Whether the host should be flagged to the admin.
    pub fn is_flagged(self) -> bool {
        matches!(
            self,
            AgentStatus::Stale | AgentStatus::Missing | AgentStatus::Invalid
        )
    }
}

/// One GPU, analysed.
#[derive(Debug, Clone)]
pub struct GpuAnalysis {
    /// As the agent reported it.
    pub report: GpuReport,
    /// The catalog model, when known.
    pub model: Option<&'static GpuModel>,
    /// The reported layout as a state (`None`: unknown model or inconsistent layout).
    pub reported: Option<MigState>,
    /// `reported` plus the reservations counted on this GPU.
    pub state: Option<MigState>,
    /// Reservations attached to this GPU.
    pub reservations: Vec<AppliedReservation>,
    /// Why there is no state, when there is none.
    pub problem: Option<String>,
}

impl GpuAnalysis {
    /// Whether MIG mode is currently on.
    pub fn mig_enabled(&self) -> bool {
        self.report.mig_mode.is_some_and(|m| m.current)
    }

    /// How many more GIs of the profile backing `vtype` fit now, reservations included;
    /// 0 when MIG is off, the model is unknown or the type is not for this board.
    pub fn capacity_for(&self, vtype: &VgpuType) -> u32 {
        let (Some(model), Some(state)) = (self.model, &self.state) else {
            return 0;
        };
        if !self.mig_enabled() {
            return 0;
        }
        vtype
            .gi_profile(model)
            .and_then(|p| state.remaining_gi_capacity(p.id).ok())
            .unwrap_or(0)
    }
}

/// One host, analysed.
#[derive(Debug, Clone)]
pub struct HostAnalysis {
    /// Index into the inventories.
    pub vcenter: usize,
    /// Datacenter name.
    pub datacenter: String,
    /// Cluster (or standalone compute resource) name.
    pub cluster: String,
    /// Whether `cluster` is a real cluster.
    pub is_cluster: bool,
    /// The compute resource (cluster or standalone).
    pub compute: crate::MoRef,
    /// The host as read.
    pub host: HostInfo,
    /// Agent report state.
    pub status: AgentStatus,
    /// One sentence on a flagged status.
    pub status_detail: Option<String>,
    /// The parsed report (its `gpus` moved into [`HostAnalysis::gpus`]).
    pub report: Option<HostReport>,
    /// Report age in seconds at analysis time.
    pub age_s: Option<i64>,
    /// Its GPUs, in report order.
    pub gpus: Vec<GpuAnalysis>,
    /// `host.vgpu_types` without their vendor prefix ([`VgpuType::base_name`]), parsed
    /// once: the report looks types up per profile of every GPU of every host.
    offered_bases: Vec<Option<String>>,
}

impl HostAnalysis {
    /// Whether capacity on this host can be used: fresh report and connected host.
    pub fn usable(&self) -> bool {
        self.status == AgentStatus::Ok
            && self
                .host
                .connection_state
                .as_deref()
                .is_none_or(|s| s == "connected")
    }

    /// The host's own spelling of `vtype`, if it offers it (`grid_` and `nvidia_` compare equal).
    pub fn offered(&self, vtype: &VgpuType) -> Option<&str> {
        let base = vtype.base_name();
        let i = self
            .offered_bases
            .iter()
            .position(|b| b.as_deref() == Some(base.as_str()))?;
        self.host.vgpu_types.get(i).map(String::as_str)
    }

    /// Usable capacity for `vtype` on this host (0 unless usable and offered).
    pub fn capacity_for(&self, vtype: &VgpuType) -> u32 {
        if !self.usable() || self.offered(vtype).is_none() {
            return 0;
        }
        self.gpus.iter().map(|g| g.capacity_for(vtype)).sum()
    }
}

/// Everything analysed, across vCenters.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The inventories it was built from.
    pub inventories: Vec<VcenterInventory>,
    /// Every host in scope.
    pub hosts: Vec<HostAnalysis>,
    /// Analysis time.
    pub now: OffsetDateTime,
    /// Things the admin should know (unreadable reservations, overbooking).
    pub warnings: Vec<String>,
}

/// The catalog model of a reported GPU.
pub fn gpu_model(g: &GpuReport) -> Option<&'static GpuModel> {
    g.catalog_model()
}

/// The reported layout as a `MigState` (see [`GpuReport::to_state`]).
pub fn reported_state(g: &GpuReport, model: &'static GpuModel) -> Result<MigState, String> {
    g.to_state(model)
}

/// Parses an RFC 3339 time.
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Formats a time as RFC 3339 UTC with whole seconds.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

/// Reservations held by the VMs of `inv`, by host id; unreadable ones become warnings.
fn reservations_by_host(
    inv: &VcenterInventory,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, Vec<HeldReservation>> {
    let mut by_host: BTreeMap<String, Vec<HeldReservation>> = BTreeMap::new();
    for (_, _, vm) in inv.vms() {
        let Some(text) = &vm.reservation else {
            continue;
        };
        match Reservation::from_json(text) {
            Ok(r) => by_host
                .entry(r.host.clone())
                .or_default()
                .push(HeldReservation {
                    vm: vm.name.clone(),
                    vm_moref: vm.moref.value().to_string(),
                    reservation: r,
                }),
            Err(e) => warnings.push(format!(
                "VM {} in {}: its vmig.reservation cannot be read ({e}); it is ignored",
                vm.name, inv.name
            )),
        }
    }
    by_host
}

/// Warnings for reservations on hosts that were not analysed.
fn out_of_scope_warnings(
    by_host: BTreeMap<String, Vec<HeldReservation>>,
    warnings: &mut Vec<String>,
) {
    for (host, held) in by_host {
        for h in held {
            warnings.push(format!(
                "VM {} holds a reservation on host {} ({}), which is not in this report's scope",
                h.vm, h.reservation.host_name, host
            ));
        }
    }
}

/// Analyses inventories at time `now`. The hosts' raw documents are dropped from the
/// inventories once parsed (they are in [`HostAnalysis`]).
pub fn analyse(inventories: Vec<VcenterInventory>, now: OffsetDateTime) -> Analysis {
    let mut warnings = Vec::new();
    let mut hosts = Vec::new();
    for (vi, inv) in inventories.iter().enumerate() {
        let mut by_host = reservations_by_host(inv, &mut warnings);
        for (dc, cr, host) in inv.hosts() {
            let held = by_host.remove(host.moref.value()).unwrap_or_default();
            let h = analyse_host(vi, &dc.name, cr, host, held, now, &mut warnings);
            hosts.push(h);
        }
        out_of_scope_warnings(by_host, &mut warnings);
    }
    // The documents are parsed into `hosts`; drop the raw text.
    let mut inventories = inventories;
    for inv in &mut inventories {
        for dc in &mut inv.datacenters {
            for cr in &mut dc.compute {
                for h in &mut cr.hosts {
                    h.document = None;
                }
            }
        }
    }
    Analysis {
        inventories,
        hosts,
        now,
        warnings,
    }
}

fn analyse_host(
    vcenter: usize,
    datacenter: &str,
    cr: &super::inventory::ComputeInventory,
    host: &HostInfo,
    held: Vec<HeldReservation>,
    now: OffsetDateTime,
    warnings: &mut Vec<String>,
) -> HostAnalysis {
    let mut h = HostAnalysis {
        vcenter,
        datacenter: datacenter.to_string(),
        cluster: cr.name.clone(),
        is_cluster: cr.is_cluster,
        compute: cr.moref.clone(),
        // Without the document: it is parsed below, and 2,500 copies of it add up.
        host: HostInfo {
            moref: host.moref.clone(),
            name: host.name.clone(),
            connection_state: host.connection_state.clone(),
            vgpu_types: host.vgpu_types.clone(),
            graphics: host.graphics.clone(),
            document: None,
        },
        status: AgentStatus::NotApplicable,
        status_detail: None,
        report: None,
        age_s: None,
        gpus: Vec::new(),
        offered_bases: host
            .vgpu_types
            .iter()
            .map(|t| VgpuType::parse(t).map(|v| v.base_name()))
            .collect(),
    };
    let Some(doc) = &host.document else {
        if host.has_gpus() {
            h.status = AgentStatus::Missing;
            h.status_detail =
                Some("has NVIDIA GPUs but no vmig agent report (vmig.mig is not set)".into());
        }
        if !held.is_empty() {
            warnings.push(format!(
                "host {} has {} reservation(s) but no agent report; they cannot be checked",
                host.name,
                held.len()
            ));
        }
        return h;
    };
    let report = match HostReport::from_json(doc) {
        Ok(r) => r,
        Err(e) => {
            h.status = AgentStatus::Invalid;
            h.status_detail = Some(format!("its vmig.mig report cannot be read: {e}"));
            return h;
        }
    };
    let age = parse_time(&report.observed_at).map(|t| (now - t).whole_seconds());
    h.age_s = age;
    let limit = STALE_HEARTBEATS.saturating_mul(report.heartbeat_interval_s.max(1));
    h.status = match age {
        None => {
            h.status_detail = Some(format!(
                "its report has an unreadable time {:?}",
                report.observed_at
            ));
            AgentStatus::Invalid
        }
        Some(a) if a > i64::try_from(limit).unwrap_or(i64::MAX) => {
            h.status_detail = Some(format!(
                "its last agent report is {} old, older than {STALE_HEARTBEATS} heartbeats of {} s (observed {})",
                human_age(a),
                report.heartbeat_interval_s,
                report.observed_at
            ));
            AgentStatus::Stale
        }
        Some(_) => AgentStatus::Ok,
    };
    let mut states: Vec<Option<MigState>> = Vec::new();
    for g in &report.gpus {
        let model = gpu_model(g);
        let (reported, problem) = match model {
            None => (
                None,
                Some(format!(
                    "GPU {} ({}) is not in vmig's catalog",
                    g.index, g.name
                )),
            ),
            Some(m) => match reported_state(g, m) {
                Ok(s) => (Some(s), None),
                Err(e) => (
                    None,
                    Some(format!(
                        "the reported layout of GPU {} is inconsistent: {e}",
                        g.index
                    )),
                ),
            },
        };
        states.push(reported.clone());
        h.gpus.push(GpuAnalysis {
            report: g.clone(),
            model,
            reported,
            state: None,
            reservations: Vec::new(),
            problem,
        });
    }
    let applied = super::reservation::apply(&report, &mut states, held);
    for ((g, state), res) in h.gpus.iter_mut().zip(states).zip(applied) {
        for r in &res {
            if r.status == ReservationStatus::Unplaceable {
                warnings.push(format!(
                    "host {}: reservation of VM {} ({} {}) no longer fits; the host is overbooked",
                    host.name, r.held.vm, r.held.reservation.vgpu_type, r.held.reservation.profile
                ));
            }
        }
        g.state = state;
        g.reservations = res;
    }
    // Each GPU's part lives on in `h.gpus`; keep only the document's metadata here.
    let mut report = report;
    report.gpus.clear();
    h.report = Some(report);
    h
}

/// `90s`, `12m`, `3h`, `2d`.
pub fn human_age(s: i64) -> String {
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

// ---------------------------------------------------------------------------------------
// The serialisable view.

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
    /// NVML error or analysis problem.
    pub error: Option<String>,
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
    /// held, moved, running, unplaceable.
    pub status: ReservationStatus,
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

/// The host's spelling of each MIG-backed type of `model`, with the `grid_` form as fallback.
fn type_name(
    host: &HostAnalysis,
    model: &GpuModel,
    profile: &mig::GiProfile,
) -> Option<(String, bool)> {
    let t = VgpuType::for_profile(model, profile, "grid")?;
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
        error: g.report.error.clone().or_else(|| g.problem.clone()),
    };
    for gi in &g.report.gpu_instances {
        let profile = g.model.and_then(|m| m.gi_profile(gi.profile_id));
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
    }
    v
}

/// Adds a host's usable capacity to a per-type tally.
fn tally(host: &HostAnalysis, into: &mut BTreeMap<(String, String), u32>) {
    if !host.usable() {
        return;
    }
    for g in &host.gpus {
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

fn capacity_list(t: BTreeMap<(String, String), u32>) -> Vec<TypeCapacity> {
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
fn host_view(h: &HostAnalysis) -> HostView {
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
struct ClusterSink<'a> {
    vcenter: &'a str,
    datacenter: &'a str,
    vc_total: &'a mut BTreeMap<(String, String), u32>,
    flagged: &'a mut Vec<FlaggedHost>,
}

/// The view of one compute resource from its analysed hosts (in report order).
fn cluster_view<'h>(
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
    ClusterView {
        name: name.to_string(),
        kind: if is_cluster { "cluster" } else { "standalone" },
        hosts: views,
        capacity: capacity_list(cl_total),
    }
}

/// The MIG-backed vGPUs the agent of `vm`'s host reports running for it (matched by VM
/// name or BIOS UUID, whichever NVML gave).
fn running_vgpus(
    host: Option<&HostAnalysis>,
    vm: &super::inventory::VmInfo,
) -> Vec<(String, Option<String>)> {
    let Some(host) = host else {
        return Vec::new();
    };
    let matches = |who: &str| {
        who == vm.name
            || vm
                .uuid
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case(who))
    };
    host.gpus
        .iter()
        .flat_map(|g| g.report.gpu_instances.iter().map(move |gi| (g, gi)))
        .filter(|(_, gi)| gi.in_use && gi.vm.as_deref().is_some_and(matches))
        .map(|(g, gi)| {
            let name = gi.vgpu_type.clone().or_else(|| {
                let model = g.model?;
                let p = model.gi_profile(gi.profile_id)?;
                VgpuType::for_profile(model, p, "grid").map(|t| t.to_string())
            });
            (
                name.unwrap_or_else(|| gi.profile.clone()),
                Some(gi.profile.clone()),
            )
        })
        .collect()
}

/// Where a VM sits, for [`vgpu_vm_view`].
struct VmPlace<'a> {
    vcenter: &'a str,
    datacenter: &'a str,
    cluster: &'a str,
    /// The analysed host the VM runs on, if it is in scope.
    host: Option<&'a HostAnalysis>,
    /// That host's name (its id when it is not in scope).
    host_name: Option<String>,
}

/// The report line of `vm`, if it has a MIG-backed vGPU or a reservation.
fn vgpu_vm_view(vm: &super::inventory::VmInfo, place: VmPlace<'_>) -> Option<VgpuVmView> {
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
        reservation: reservation.map(|r| {
            format!(
                "{} {} @{} on {}",
                r.vgpu_type, r.profile, r.placement, r.host_name
            )
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
        Report {
            schema: REPORT_SCHEMA,
            generated_at: format_time(self.now),
            scope,
            vcenters,
            capacity: capacity_list(total),
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

// ---------------------------------------------------------------------------------------
// The same report, streamed.

/// What a [`StreamedReport`] accumulates while its clusters are written.
#[derive(Default)]
struct StreamState {
    total: BTreeMap<(String, String), u32>,
    vgpu_vms: Vec<VgpuVmView>,
    flagged: Vec<FlaggedHost>,
    warnings: Vec<String>,
    written: bool,
}

/// The [`Report`] of some inventories, analysed and serialised one compute resource at a
/// time: each cluster's hosts are analysed, turned into their view, written and dropped
/// before the next cluster is touched, so neither the whole [`Analysis`] nor the whole
/// [`Report`] is ever in memory (at vCenter's maximum inventory the report model alone is
/// tens of MB). It serialises to exactly what `analyse(inventories, now).report(scope)`
/// does, field for field and in the same order; the fields that summarise everything
/// (`capacity`, `vgpu_vms`, `flagged_hosts`, `warnings`) come after `vcenters` in the
/// schema, so they are complete when they are written.
///
/// It can be serialised once: serialising consumes the inventories (a second attempt is an
/// error).
pub struct StreamedReport {
    inventories: RefCell<Vec<VcenterInventory>>,
    now: OffsetDateTime,
    scope: ScopeView,
    state: RefCell<StreamState>,
}

impl std::fmt::Debug for StreamedReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamedReport")
            .field("vcenters", &self.inventories.borrow().len())
            .field("now", &self.now)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl StreamedReport {
    /// The report of `inventories` analysed at `now`, with `scope` as its filters.
    pub fn new(inventories: Vec<VcenterInventory>, now: OffsetDateTime, scope: ScopeView) -> Self {
        StreamedReport {
            inventories: RefCell::new(inventories),
            now,
            scope,
            state: RefCell::new(StreamState::default()),
        }
    }
}

impl Serialize for StreamedReport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if std::mem::replace(&mut self.state.borrow_mut().written, true) {
            return Err(S::Error::custom(
                "a streamed report can be written only once (its inventories are consumed)",
            ));
        }
        let mut st = s.serialize_struct("Report", 8)?;
        st.serialize_field("schema", REPORT_SCHEMA)?;
        st.serialize_field("generated_at", &format_time(self.now))?;
        st.serialize_field("scope", &self.scope)?;
        st.serialize_field("vcenters", &StreamVcenters(self))?;
        let state = self.state.replace(StreamState {
            written: true,
            ..StreamState::default()
        });
        st.serialize_field("capacity", &capacity_list(state.total))?;
        st.serialize_field("vgpu_vms", &state.vgpu_vms)?;
        st.serialize_field("flagged_hosts", &state.flagged)?;
        st.serialize_field("warnings", &state.warnings)?;
        st.end()
    }
}

struct StreamVcenters<'a>(&'a StreamedReport);

impl Serialize for StreamVcenters<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self.0.inventories.borrow().len();
        let mut seq = s.serialize_seq(Some(n))?;
        for vi in 0..n {
            seq.serialize_element(&StreamVcenter { r: self.0, vi })?;
        }
        seq.end()
    }
}

struct StreamVcenter<'a> {
    r: &'a StreamedReport,
    vi: usize,
}

impl Serialize for StreamVcenter<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (name, url, product, n_dcs, by_host) = {
            let invs = self.r.inventories.borrow();
            let inv = &invs[self.vi];
            let by_host = reservations_by_host(inv, &mut self.r.state.borrow_mut().warnings);
            (
                inv.name.clone(),
                inv.url.clone(),
                inv.product.clone(),
                inv.datacenters.len(),
                by_host,
            )
        };
        let vc = StreamCtx {
            r: self.r,
            vi: self.vi,
            name: &name,
            by_host: RefCell::new(by_host),
            total: RefCell::new(BTreeMap::new()),
        };
        let mut st = s.serialize_struct("VcenterView", 5)?;
        st.serialize_field("name", &name)?;
        st.serialize_field("url", &url)?;
        st.serialize_field("product", &product)?;
        st.serialize_field("datacenters", &StreamDatacenters { vc: &vc, n: n_dcs })?;
        let vc_total = vc.total.take();
        {
            let mut state = self.r.state.borrow_mut();
            out_of_scope_warnings(vc.by_host.take(), &mut state.warnings);
            for (k, n) in &vc_total {
                *state.total.entry(k.clone()).or_default() += n;
            }
        }
        st.serialize_field("capacity", &capacity_list(vc_total))?;
        st.end()
    }
}

/// One vCenter being streamed.
struct StreamCtx<'a> {
    r: &'a StreamedReport,
    vi: usize,
    name: &'a str,
    by_host: RefCell<BTreeMap<String, Vec<HeldReservation>>>,
    total: RefCell<BTreeMap<(String, String), u32>>,
}

struct StreamDatacenters<'a> {
    vc: &'a StreamCtx<'a>,
    n: usize,
}

impl Serialize for StreamDatacenters<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.n))?;
        for di in 0..self.n {
            let (name, n) = {
                let invs = self.vc.r.inventories.borrow();
                let dc = &invs[self.vc.vi].datacenters[di];
                (dc.name.clone(), dc.compute.len())
            };
            seq.serialize_element(&StreamDatacenter {
                vc: self.vc,
                di,
                name: &name,
                n,
            })?;
        }
        seq.end()
    }
}

struct StreamDatacenter<'a> {
    vc: &'a StreamCtx<'a>,
    di: usize,
    name: &'a str,
    n: usize,
}

impl Serialize for StreamDatacenter<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("DatacenterView", 2)?;
        st.serialize_field("name", self.name)?;
        st.serialize_field("clusters", &StreamClusters(self))?;
        st.end()
    }
}

struct StreamClusters<'a>(&'a StreamDatacenter<'a>);

impl Serialize for StreamClusters<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let dc = self.0;
        let mut seq = s.serialize_seq(Some(dc.n))?;
        for ci in 0..dc.n {
            let view = dc.cluster(ci);
            seq.serialize_element(&view)?;
        }
        seq.end()
    }
}

impl StreamDatacenter<'_> {
    /// Analyses compute resource `ci` and returns its view; its hosts and VMs leave the
    /// inventory here.
    fn cluster(&self, ci: usize) -> ClusterView {
        let vc = self.vc;
        let r = vc.r;
        let (hosts, vms) = {
            let mut invs = r.inventories.borrow_mut();
            let cr = &mut invs[vc.vi].datacenters[self.di].compute[ci];
            (std::mem::take(&mut cr.hosts), std::mem::take(&mut cr.vms))
        };
        let invs = r.inventories.borrow();
        let cr = &invs[vc.vi].datacenters[self.di].compute[ci];
        let mut state = r.state.borrow_mut();
        let state = &mut *state;
        let mut analysed = Vec::with_capacity(hosts.len());
        {
            let mut by_host = vc.by_host.borrow_mut();
            for host in &hosts {
                let held = by_host.remove(host.moref.value()).unwrap_or_default();
                analysed.push(analyse_host(
                    vc.vi,
                    self.name,
                    cr,
                    host,
                    held,
                    r.now,
                    &mut state.warnings,
                ));
            }
        }
        drop(hosts);
        let mut vc_total = vc.total.borrow_mut();
        let mut sink = ClusterSink {
            vcenter: vc.name,
            datacenter: self.name,
            vc_total: &mut vc_total,
            flagged: &mut state.flagged,
        };
        let view = cluster_view(&cr.name, cr.is_cluster, &analysed, &mut sink);
        for vm in &vms {
            // A VM runs on a host of its own compute resource.
            let host = vm
                .host
                .as_ref()
                .and_then(|r| analysed.iter().find(|h| &h.host.moref == r));
            let place = VmPlace {
                vcenter: vc.name,
                datacenter: self.name,
                cluster: &cr.name,
                host,
                host_name: vm
                    .host
                    .as_ref()
                    .map(|r| host.map_or_else(|| r.value().to_string(), |h| h.host.name.clone())),
            };
            state.vgpu_vms.extend(vgpu_vm_view(vm, place));
        }
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_well() {
        assert_eq!(human_age(59), "59s");
        assert_eq!(human_age(600), "10m");
        assert_eq!(human_age(3 * 3600), "3h");
        assert_eq!(human_age(5 * 86_400), "5d");
    }

    use super::super::inventory::{
        ComputeInventory, DatacenterInventory, FieldKeys, HostInfo, VcenterInventory, VmInfo,
    };
    use crate::{DeviceKey, HostRef, MoRef, PowerState, VgpuDevice, VgpuProfile, VmRef};
    use mig::report::{CiReport, GiReport, SCHEMA_V1};
    use mig::{ComputeInstanceId, GpuModel, Placement};

    const A100: &str = "a100-pcie-40gb";

    /// A document for host `n`: one A100 with a 3g.20gb GI occupied by `occupant`.
    fn document(n: u32, observed_at: &str, occupant: &str) -> String {
        let model = GpuModel::by_key(A100).unwrap();
        let p = model.gi_profile_by_name("3g.20gb").unwrap();
        let mut state = MigState::new(model);
        let gi = state.create_gi(p.id, Some(Placement::new(4, 4))).unwrap();
        HostReport {
            schema: SCHEMA_V1.to_string(),
            agent_version: "0.1.0".into(),
            host_uuid: format!("uuid-{n}"),
            generation: 1,
            observed_at: observed_at.into(),
            heartbeat_interval_s: 300,
            gpus: vec![GpuReport {
                index: 0,
                uuid: format!("GPU-{n}"),
                name: model.nvml_name.into(),
                pci_bus_id: "00000000:3B:00.0".into(),
                model: Some(A100.into()),
                mig_mode: Some(MigModeReport {
                    current: true,
                    pending: true,
                }),
                gpu_instances: vec![GiReport {
                    gi_id: gi,
                    profile_id: p.id,
                    profile: p.name.into(),
                    placement: Placement::new(4, 4),
                    compute_instances: vec![CiReport {
                        ci_id: ComputeInstanceId(0),
                        profile_id: None,
                        profile: "3c.3g.20gb".into(),
                        uuid: format!("MIG-{n}"),
                    }],
                    in_use: true,
                    vm: Some(occupant.into()),
                    vgpu_type: Some("grid_a100-3-20c".into()),
                    processes: vec![],
                }],
                free: Default::default(),
                largest_placeable: None,
                fragmentation: 0.0,
                placeable_vgpu_types: vec![],
                error: None,
            }],
        }
        .to_json()
    }

    fn host(n: u32, document: Option<String>) -> HostInfo {
        HostInfo {
            moref: HostRef::new(format!("host-{n}")),
            name: format!("esx{n:02}"),
            connection_state: Some("connected".into()),
            vgpu_types: vec!["grid_a100-3-20c".into(), "grid_a100-1-5c".into()],
            graphics: vec![],
            document,
        }
    }

    fn vm(n: u32, host: u32) -> VmInfo {
        VmInfo {
            moref: VmRef::new(format!("vm-{n}")),
            name: format!("vm{n:03}"),
            uuid: Some(format!("4211-{n}")),
            host: Some(HostRef::new(format!("host-{host}"))),
            power_state: Some(PowerState::PoweredOn),
            memory_locked: None,
            reservation: None,
            vgpus: vec![],
            devices_read: false,
        }
    }

    /// Two clusters and a standalone host: fresh, stale, missing and unreadable reports, a
    /// VM running a vGPU by name and one by UUID, a powered-off VM with a vGPU device, a
    /// reservation across clusters, one out of scope and one unreadable.
    fn inventory(now: OffsetDateTime) -> VcenterInventory {
        let fresh = format_time(now - time::Duration::minutes(2));
        let stale = format_time(now - time::Duration::hours(3));
        let reservation = |host: &str| {
            Reservation {
                schema: super::super::reservation::RESERVATION_SCHEMA.into(),
                host: host.into(),
                host_name: "esx?".into(),
                gpu_uuid: "GPU-3".into(),
                vgpu_type: "grid_a100-1-5c".into(),
                profile: "1g.5gb".into(),
                profile_id: GpuModel::by_key(A100)
                    .unwrap()
                    .gi_profile_by_name("1g.5gb")
                    .unwrap()
                    .id,
                placement: Placement::new(0, 1),
                reserved_at: fresh.clone(),
                by: "admin@vc".into(),
                memory_locked_before: None,
            }
            .to_json()
        };
        let mut vms_a = vec![vm(1, 1), vm(2, 1), vm(3, 2)];
        vms_a[1].reservation = Some(reservation("host-3"));
        vms_a[2].power_state = Some(PowerState::PoweredOff);
        vms_a[2].devices_read = true;
        vms_a[2].vgpus = vec![VgpuDevice {
            key: DeviceKey(13000),
            profile: VgpuProfile::new("grid_a100-3-20c").unwrap(),
            label: None,
            summary: None,
            controller_key: None,
            unit_number: None,
        }];
        let mut vms_b = vec![vm(4, 3), vm(5, 3), vm(6, 4)];
        vms_b[1].reservation = Some("{not json".into());
        vms_b[2].reservation = Some(reservation("host-99"));
        VcenterInventory {
            name: "vc1".into(),
            url: "https://vc1/sdk".into(),
            product: "VMware vCenter Server 8.0.3".into(),
            fields: FieldKeys::default(),
            datacenters: vec![DatacenterInventory {
                moref: MoRef::new("Datacenter", "dc-1"),
                name: "DC".into(),
                compute: vec![
                    ComputeInventory {
                        moref: MoRef::new("ClusterComputeResource", "c-1"),
                        name: "A".into(),
                        is_cluster: true,
                        hosts: vec![
                            host(1, Some(document(1, &fresh, "vm001"))),
                            host(2, Some(document(2, &stale, "nobody"))),
                        ],
                        vms: vms_a,
                    },
                    ComputeInventory {
                        moref: MoRef::new("ClusterComputeResource", "c-2"),
                        name: "B".into(),
                        is_cluster: true,
                        hosts: vec![
                            host(3, Some(document(3, &fresh, "4211-4"))),
                            host(4, Some("{broken".into())),
                        ],
                        vms: vms_b,
                    },
                    ComputeInventory {
                        moref: MoRef::new("ComputeResource", "s-1"),
                        name: "esx05".into(),
                        is_cluster: false,
                        hosts: vec![host(5, None)],
                        vms: vec![],
                    },
                ],
            }],
            requests: 0,
            objects: 0,
        }
    }

    #[test]
    fn streamed_report_is_the_report() {
        let now = parse_time("2026-11-26T14:02:11Z").unwrap();
        let scope = ScopeView {
            datacenter: None,
            cluster: Some("A".into()),
        };
        let mut second = inventory(now);
        second.name = "vc2".into();
        let invs = vec![inventory(now), second];
        let whole = analyse(invs.clone(), now).report(scope.clone());
        let expected = serde_json::to_string_pretty(&whole).unwrap();
        let streamed = StreamedReport::new(invs, now, scope);
        let got = serde_json::to_string_pretty(&streamed).unwrap();
        assert_eq!(got, expected);
        // The fixture exercises what the streaming must carry across clusters.
        assert_eq!(whole.vgpu_vms.len(), 2 * 5, "{:#?}", whole.vgpu_vms);
        assert_eq!(whole.flagged_hosts.len(), 2 * 3);
        assert!(
            whole
                .warnings
                .iter()
                .any(|w| w.contains("not in this report's scope"))
        );
        assert!(whole.warnings.iter().any(|w| w.contains("cannot be read")));
        assert!(
            serde_json::to_string(&streamed).is_err(),
            "a streamed report is written once"
        );
    }

    #[test]
    fn times_round_trip() {
        let t = parse_time("2026-11-26T14:02:11Z").unwrap();
        assert_eq!(format_time(t), "2026-11-26T14:02:11Z");
        assert!(parse_time("yesterday").is_none());
    }
}
