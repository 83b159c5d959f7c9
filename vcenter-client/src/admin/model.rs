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

use std::collections::BTreeMap;

use serde::Serialize;
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
        self.host
            .vgpu_types
            .iter()
            .find(|t| VgpuType::parse(t).is_some_and(|o| o.base_name() == base))
            .map(String::as_str)
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
    g.model
        .as_deref()
        .and_then(GpuModel::by_key)
        .or_else(|| GpuModel::by_nvml_name(&g.name))
}

/// The reported layout as a `MigState`, keeping the reported GI ids. CIs are recreated with
/// the modelled driver's default placement (the document has no CI placements).
pub fn reported_state(g: &GpuReport, model: &'static GpuModel) -> Result<MigState, String> {
    let mut state = MigState::new(model);
    for gi in &g.gpu_instances {
        let profile = model
            .gi_profile(gi.profile_id)
            .or_else(|| model.gi_profile_by_name(&gi.profile))
            .ok_or_else(|| {
                format!(
                    "GI {} has profile {} ({}) unknown on {}",
                    gi.gi_id, gi.profile_id, gi.profile, model.key
                )
            })?;
        state.gpu_instances.insert(
            gi.gi_id,
            mig::GpuInstance {
                id: gi.gi_id,
                profile: profile.id,
                placement: gi.placement,
                compute_instances: BTreeMap::new(),
                in_use: gi.in_use,
            },
        );
        for ci in &gi.compute_instances {
            let ci_profile = ci
                .profile_id
                .and_then(|id| profile.ci_profile(id))
                .or_else(|| profile.ci_profile_by_name(&ci.profile));
            if let Some(cp) = ci_profile {
                // Best effort: the CI layout only feeds the diagram.
                let _ = state.create_ci(gi.gi_id, cp.id, None);
            }
        }
    }
    state.validate().map_err(|e| e.to_string())?;
    Ok(state)
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

/// Analyses inventories at time `now`. The hosts' raw documents are dropped from the
/// inventories once parsed (they are in [`HostAnalysis`]).
pub fn analyse(inventories: Vec<VcenterInventory>, now: OffsetDateTime) -> Analysis {
    let mut warnings = Vec::new();
    let mut hosts = Vec::new();
    for (vi, inv) in inventories.iter().enumerate() {
        // Reservations by host id, from every VM of this vCenter in scope.
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
        for (dc, cr, host) in inv.hosts() {
            let held = by_host.remove(host.moref.value()).unwrap_or_default();
            let h = analyse_host(vi, &dc.name, cr, host, held, now, &mut warnings);
            hosts.push(h);
        }
        for (host, held) in by_host {
            for h in held {
                warnings.push(format!(
                    "VM {} holds a reservation on host {} ({}), which is not in this report's scope",
                    h.vm, h.reservation.host_name, host
                ));
            }
        }
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

impl Analysis {
    /// The MIG-backed vGPUs the agent of `vm`'s host reports running for it (matched by VM
    /// name or BIOS UUID, whichever NVML gave).
    fn running_vgpus(&self, vm: &super::inventory::VmInfo) -> Vec<(String, Option<String>)> {
        let Some(host) = self
            .hosts
            .iter()
            .find(|h| Some(&h.host.moref) == vm.host.as_ref())
        else {
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

    /// The serialisable report.
    pub fn report(&self, scope: ScopeView) -> Report {
        let mut total = BTreeMap::new();
        let mut vcenters = Vec::new();
        let mut flagged = Vec::new();
        for (vi, inv) in self.inventories.iter().enumerate() {
            let mut vc_total = BTreeMap::new();
            let mut datacenters = Vec::new();
            for dc in &inv.datacenters {
                let mut clusters = Vec::new();
                for cr in &dc.compute {
                    let mut cl_total = BTreeMap::new();
                    let mut hosts = Vec::new();
                    for h in self.hosts.iter().filter(|h| {
                        h.vcenter == vi && h.datacenter == dc.name && h.compute == cr.moref
                    }) {
                        tally(h, &mut cl_total);
                        if h.status.is_flagged() {
                            flagged.push(FlaggedHost {
                                vcenter: inv.name.clone(),
                                datacenter: dc.name.clone(),
                                cluster: cr.name.clone(),
                                host: h.host.name.clone(),
                                status: h.status,
                                reason: h.status_detail.clone().unwrap_or_default(),
                            });
                        }
                        hosts.push(HostView {
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
                                heartbeat_interval_s: h
                                    .report
                                    .as_ref()
                                    .map(|r| r.heartbeat_interval_s),
                            },
                            vgpu_types_offered: h.host.vgpu_types.clone(),
                            gpus: h.gpus.iter().map(|g| gpu_view(h, g)).collect(),
                        });
                    }
                    for (k, n) in &cl_total {
                        *vc_total.entry(k.clone()).or_default() += n;
                    }
                    clusters.push(ClusterView {
                        name: cr.name.clone(),
                        kind: if cr.is_cluster {
                            "cluster"
                        } else {
                            "standalone"
                        },
                        hosts,
                        capacity: capacity_list(cl_total),
                    });
                }
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
        for inv in &self.inventories {
            let host_name = |r: &crate::HostRef| {
                inv.hosts()
                    .find(|(_, _, h)| &h.moref == r)
                    .map(|(_, _, h)| h.name.clone())
                    .unwrap_or_else(|| r.value().to_string())
            };
            for (dc, cr, vm) in inv.vms() {
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
                    mig = self.running_vgpus(vm);
                }
                let reservation = vm
                    .reservation
                    .as_deref()
                    .and_then(|r| Reservation::from_json(r).ok());
                if mig.is_empty() && reservation.is_none() {
                    continue;
                }
                out.push(VgpuVmView {
                    vm: vm.name.clone(),
                    moref: vm.moref.value().to_string(),
                    vgpu_types: mig.iter().map(|(t, _)| t.clone()).collect(),
                    profiles: mig.iter().filter_map(|(_, p)| p.clone()).collect(),
                    power_state: vm.power_state.map(|p| p.to_string()),
                    host: vm.host.as_ref().map(host_name),
                    cluster: cr.name.clone(),
                    datacenter: dc.name.clone(),
                    vcenter: inv.name.clone(),
                    reservation: reservation.map(|r| {
                        format!(
                            "{} {} @{} on {}",
                            r.vgpu_type, r.profile, r.placement, r.host_name
                        )
                    }),
                });
            }
        }
        out
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

    #[test]
    fn times_round_trip() {
        let t = parse_time("2026-11-26T14:02:11Z").unwrap();
        assert_eq!(format_time(t), "2026-11-26T14:02:11Z");
        assert!(parse_time("yesterday").is_none());
    }
}
