//! Host analysis: the inventory joined with the agents' `vmig.mig` documents and the VMs'
//! `vmig.reservation`s, each GPU turned into a `mig::MigState` with reservations applied.
//! This is the typed working state `capacity` and `assign` plan on, and what
//! [`crate::report`] turns into the serialisable report.
//!
//! Capacity is placement-aware: the number of further vGPUs of a type a GPU can take is
//! `MigState::remaining_gi_capacity` of the type's GI profile on the reported layout plus the
//! reservations, and it is counted only where it can be used: the host offers the type
//! (`config.sharedPassthruGpuTypes`), MIG mode is on, and the agent's report is fresh.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

use mig::report::{GpuReport, HostReport, ReportError};
use mig::vgpu_slots::{GpuSlots, SlicedType};
use mig::{GiProfileId, GpuModel, MigState, VgpuType};

use crate::inventory::{ComputeInventory, HostInfo, VcenterInventory};
use crate::reservation::{AppliedReservation, HeldReservation, Reservation, ReservationStatus};
use crate::times::{human_age, parse_time};

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
    /// The name every format uses: JSON (serde's `snake_case`), the CSV `agent` column and
    /// the `status` label of `vmig_agent_status`.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Ok => "ok",
            AgentStatus::Stale => "stale",
            AgentStatus::Missing => "missing",
            AgentStatus::Invalid => "invalid",
            AgentStatus::NotApplicable => "not_applicable",
        }
    }

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
    /// The GIs of `state` that host (or may host) time-sliced vGPUs, with the reserved slots
    /// counted (issue 18; empty unless the GPU publishes `sliced_types`).
    pub slots: GpuSlots,
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

    /// The time-sliced type this GPU publishes under `vtype`'s name (issue 18): then `vtype`
    /// runs several to a GI of the published profile, not one GI per vGPU.
    pub fn sliced_type(&self, vtype: &VgpuType) -> Option<SlicedType> {
        let name = vtype.base_name();
        self.report
            .sliced_types()
            .into_iter()
            .find(|t| t.name == name)
    }

    /// The GI profile that backs `vtype` here, given what [`GpuAnalysis::sliced_type`] said
    /// of it: the published one for a time-sliced type, else the catalog's (or learned
    /// model's) profile of the type's board.
    pub fn profile_for(
        &self,
        vtype: &VgpuType,
        sliced: Option<&SlicedType>,
    ) -> Option<GiProfileId> {
        match sliced {
            Some(t) => Some(t.gi_profile),
            None => vtype.gi_profile(self.model?).map(|p| p.id),
        }
    }

    /// The whole-GPU time-sliced types this GPU's agent publishes under `vtype`'s name.
    pub fn timesliced_types<'a>(
        &'a self,
        vtype: &VgpuType,
    ) -> impl Iterator<Item = &'a mig::report::TimeslicedTypeReport> + 'a {
        let name = vtype.base_name();
        self.report
            .timesliced
            .iter()
            .flat_map(|ts| &ts.types)
            .filter(move |t| mig::vgpu::base_name_of(&t.vgpu_type) == name)
    }

    /// How many more vGPUs of `vtype` fit now, reservations included: GIs of its profile
    /// that can still be created, or for a type time-sliced inside GIs the free slots plus
    /// the slots of GIs that can still be created (`mig::vgpu_slots::capacity_on`), or for a
    /// whole-GPU time-sliced type on a GPU without MIG what the driver says can still start.
    /// 0 when MIG mode does not suit the type, the model is unknown or the type is not for
    /// this GPU.
    pub fn capacity_for(&self, vtype: &VgpuType) -> u32 {
        if !vtype.is_mig_backed() {
            return self.timesliced_more(vtype);
        }
        let Some(state) = &self.state else { return 0 };
        if !self.mig_enabled() {
            return 0;
        }
        if let Some(t) = self.sliced_type(vtype) {
            return mig::vgpu_slots::capacity_on(state, &self.slots, &t).unwrap_or(0);
        }
        self.profile_for(vtype, None)
            .and_then(|p| state.remaining_gi_capacity(p).ok())
            .unwrap_or(0)
    }

    /// How many more whole-GPU time-sliced vGPUs of `vtype` this GPU starts now, as its agent
    /// publishes it (`timesliced.types[].more`); 0 on a GPU in MIG mode.
    pub fn timesliced_more(&self, vtype: &VgpuType) -> u32 {
        if self.mig_enabled() {
            return 0;
        }
        self.timesliced_types(vtype).map(|t| t.more).sum()
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
    pub compute: vcenter_client::MoRef,
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

impl Analysis {
    /// The earliest vCenter time after the analysis at which time alone changes what it says:
    /// a fresh agent report turning stale, a report ahead of vCenter's clock coming into range,
    /// a counted reservation expiring. `vmig serve` analyses again then (and not before,
    /// unless something changes).
    pub fn next_change(&self) -> Option<OffsetDateTime> {
        let mut times = Vec::new();
        for h in &self.hosts {
            let Some(r) = &h.report else { continue };
            let Some(observed) = parse_time(&r.observed_at) else {
                continue;
            };
            let limit = STALE_HEARTBEATS.saturating_mul(r.heartbeat_interval_s.max(1));
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            match h.status {
                AgentStatus::Ok => {
                    times.push(observed + time::Duration::seconds(limit) + time::Duration::SECOND)
                }
                AgentStatus::Invalid if h.age_s.is_some_and(|a| a < -MAX_CLOCK_AHEAD_S) => {
                    times.push(observed - time::Duration::seconds(MAX_CLOCK_AHEAD_S));
                }
                _ => {}
            }
            for g in &h.gpus {
                for a in &g.reservations {
                    if matches!(a.status, ReservationStatus::Held | ReservationStatus::Moved)
                        && let Some(t) = a
                            .held
                            .reservation
                            .expires_at
                            .as_deref()
                            .and_then(parse_time)
                    {
                        times.push(t);
                    }
                }
            }
        }
        times.into_iter().filter(|t| *t > self.now).min()
    }
}

/// The catalog model of a reported GPU.
pub fn gpu_model(g: &GpuReport) -> Option<&'static GpuModel> {
    g.catalog_model()
}

/// The reported layout as a `MigState` (see [`GpuReport::to_state`]).
pub fn reported_state(g: &GpuReport, model: &'static GpuModel) -> Result<MigState, String> {
    g.to_state(model)
}

/// Reservations held by the VMs of `inv`, by host id; unreadable ones become warnings.
pub(crate) fn reservations_by_host(
    inv: &VcenterInventory,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, Vec<HeldReservation>> {
    let mut by_host: BTreeMap<String, Vec<HeldReservation>> = BTreeMap::new();
    for (_, _, vm) in inv.vms() {
        let Some(text) = &vm.reservation else {
            continue;
        };
        match Reservation::from_json(text) {
            Ok(mut r) => {
                // Agents may name a running VM by BIOS UUID: match on either.
                if r.vm_uuid.is_none() {
                    r.vm_uuid.clone_from(&vm.uuid);
                }
                reservation_warnings(inv, vm, &r, warnings);
                by_host
                    .entry(r.host.clone())
                    .or_default()
                    .push(HeldReservation {
                        vm: vm.name.clone(),
                        vm_moref: vm.moref.value().to_string(),
                        reservation: r,
                    });
            }
            Err(e) => warnings.push(format!(
                "VM {} in {}: its vmig.reservation cannot be read ({e}); it is ignored",
                vm.name, inv.name
            )),
        }
    }
    by_host
}

/// What an admin should hear about one reservation by itself: a half-done `assign`, or a
/// finished one whose VM no longer has a MIG-backed vGPU (orphaned).
fn reservation_warnings(
    inv: &VcenterInventory,
    vm: &crate::inventory::VmInfo,
    r: &Reservation,
    warnings: &mut Vec<String>,
) {
    let step = r.step();
    if step != crate::reservation::Step::Done {
        warnings.push(format!(
            "VM {} in {}: its {} is at step {} (still running, or stopped: if no vmig is changing it, run `vmig repair --vm {}`)",
            vm.name,
            inv.name,
            step.command(),
            step.as_str(),
            vm.name
        ));
    } else if vm.devices_read
        && !vm
            .vgpus
            .iter()
            .any(|d| VgpuType::parse(d.profile.as_str()).is_some_and(|t| t.is_mig_backed()))
    {
        warnings.push(format!(
            "VM {} in {}: its reservation on host {} is orphaned (the VM has no MIG-backed vGPU); run `vmig unassign --vm {}` to clear it",
            vm.name, inv.name, r.host_name, vm.name
        ));
    }
}

/// Warnings for reservations on hosts that were not analysed.
pub(crate) fn out_of_scope_warnings(
    by_host: BTreeMap<String, Vec<HeldReservation>>,
    warnings: &mut Vec<String>,
) {
    for (host, held) in by_host {
        for h in held {
            warnings.push(format!(
                "VM {} holds a reservation on host {} ({}), which is not in this report's scope or no longer exists",
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
        let vc_now = inv.judged_at(now);
        for (dc, cr, host) in inv.hosts() {
            let held = by_host.remove(host.moref.value()).unwrap_or_default();
            let h = analyse_host(vi, &dc.name, cr, host, held, vc_now, &mut warnings);
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

/// How far ahead of vCenter's clock a report's `observed_at` may be: hosts and vCenter keep
/// NTP time, so more than this is a wrong clock or a forged document, and either must not
/// keep the host "agent ok".
pub const MAX_CLOCK_AHEAD_S: i64 = 300;

/// The one sentence shown for an unreadable document: always "invalid report: …".
fn invalid_detail(e: &ReportError) -> String {
    match e {
        ReportError::Invalid(_) | ReportError::TooLarge { .. } => e.to_string(),
        other => format!("invalid report: {other}"),
    }
}

/// Status, age and detail of a validated `report` judged at `now` (vCenter's clock when it
/// could be read). Validation bounds `heartbeat_interval_s`, so the stale limit is bounded too.
fn freshness(
    report: &HostReport,
    now: OffsetDateTime,
) -> (AgentStatus, Option<i64>, Option<String>) {
    let Some(observed) = parse_time(&report.observed_at) else {
        let d = format!(
            "invalid report: observed_at {:?} is not a time",
            report.observed_at
        );
        return (AgentStatus::Invalid, None, Some(d));
    };
    let age = (now - observed).whole_seconds();
    if age < -MAX_CLOCK_AHEAD_S {
        let d = format!(
            "invalid report: observed_at {} is {} ahead of vCenter's clock (more than {MAX_CLOCK_AHEAD_S} s); check the host's time",
            report.observed_at,
            human_age(age.saturating_neg())
        );
        return (AgentStatus::Invalid, Some(age), Some(d));
    }
    let limit = STALE_HEARTBEATS.saturating_mul(report.heartbeat_interval_s.max(1));
    if age > i64::try_from(limit).unwrap_or(i64::MAX) {
        let d = format!(
            "its last agent report is {} old, older than {STALE_HEARTBEATS} heartbeats of {} s (observed {})",
            human_age(age),
            report.heartbeat_interval_s,
            report.observed_at
        );
        return (AgentStatus::Stale, Some(age), Some(d));
    }
    (AgentStatus::Ok, Some(age), None)
}

/// "invalid report: …" when the document's `host_uuid` is a UUID other than the host's BIOS
/// UUID: a document copied from another host, or written there by another host's agent.
/// (A `host_uuid` that is not a UUID at all is left alone: older test documents use names.)
fn uuid_mismatch(report: &HostReport, host: &HostInfo) -> Option<String> {
    let bios = host.bios_uuid.as_ref()?;
    let claimed: vcenter_client::BiosUuid = report.host_uuid.parse().ok()?;
    (!bios.matches(&claimed)).then(|| {
        format!(
            "invalid report: its host_uuid {claimed} is not this host's BIOS UUID {bios} (a document from another host?)"
        )
    })
}

/// Teach vmig the GPU models its catalog lacks from the geometry the agent published. The
/// vGPU board is taken from the host's MIG-backed type names whose profile the geometry has
/// (and whose board no catalog model uses).
fn learn_models(report: &HostReport, host: &HostInfo, warnings: &mut Vec<String>) {
    for g in &report.gpus {
        let Some(geo) = &g.geometry else { continue };
        if g.catalog_model().is_some_and(|m| !m.vgpu_board.is_empty()) {
            continue;
        }
        let board = host
            .vgpu_types
            .iter()
            .filter_map(|t| VgpuType::parse(t))
            .filter(|t| {
                !mig::catalog()
                    .iter()
                    .any(|m| m.vgpu_board.eq_ignore_ascii_case(&t.board))
            })
            .find(|t| {
                let name = t.mig_profile_name();
                geo.gi_profiles.iter().any(|p| {
                    name.as_deref() == Some(p.name.as_str()) && t.mig_slices == Some(p.slices)
                })
            })
            .map(|t| t.board);
        if let Err(e) = mig::catalog::register_geometry(&g.name, board.as_deref(), geo) {
            warnings.push(format!("host {} GPU {}: {e}", host.name, g.index));
        }
    }
}

/// `3g.20gb×2 1g.5gb×7`, or `none`.
fn capacity_text(free: &std::collections::BTreeMap<String, u32>) -> String {
    let parts: Vec<String> = free
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(p, n)| format!("{p}×{n}"))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(" ")
    }
}

/// Analyses one host of compute resource `cr` with the reservations `held` on it.
pub(crate) fn analyse_host(
    vcenter: usize,
    datacenter: &str,
    cr: &ComputeInventory,
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
            bios_uuid: host.bios_uuid.clone(),
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
            h.status_detail = Some(invalid_detail(&e));
            return h;
        }
    };
    let (status, age, detail) = freshness(&report, now);
    h.status = status;
    h.age_s = age;
    h.status_detail = detail;
    if let Some(d) = uuid_mismatch(&report, host) {
        h.status = AgentStatus::Invalid;
        h.status_detail = Some(d);
    }
    learn_models(&report, host, warnings);
    let mut states: Vec<Option<MigState>> = Vec::new();
    let mut slots: Vec<GpuSlots> = Vec::new();
    for g in &report.gpus {
        if let Some(nvml) = &g.nvml_free {
            warnings.push(format!(
                "host {} GPU {}: NVML's remaining capacity {} disagrees with the placements; vmig uses the placements ({})",
                host.name,
                g.index,
                capacity_text(nvml),
                capacity_text(&g.free)
            ));
        }
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
        slots.push(g.gpu_slots());
        h.gpus.push(GpuAnalysis {
            report: g.clone(),
            model,
            reported,
            state: None,
            slots: GpuSlots::default(),
            reservations: Vec::new(),
            problem,
        });
    }
    let applied = crate::reservation::apply(&report, &mut states, &mut slots, held, now);
    for (((g, state), gpu_slots), res) in h.gpus.iter_mut().zip(states).zip(slots).zip(applied) {
        for r in &res {
            let (vm, vt, p) = (
                &r.held.vm,
                &r.held.reservation.vgpu_type,
                &r.held.reservation.profile,
            );
            match r.status {
                ReservationStatus::Unplaceable => warnings.push(format!(
                    "host {}: reservation of VM {vm} ({vt} {p}) no longer fits; the host is overbooked",
                    host.name
                )),
                ReservationStatus::Superseded => warnings.push(format!(
                    "host {}: reservation of VM {vm} ({vt} {p}) is superseded by a later one on the same slices (written by a vmig whose lock was broken) and is not counted; run `vmig unassign --vm {vm}`",
                    host.name
                )),
                ReservationStatus::Expired => warnings.push(format!(
                    "host {}: reservation of VM {vm} ({vt} {p}) expired at {} and is not counted",
                    host.name,
                    r.held.reservation.expires_at.as_deref().unwrap_or("?")
                )),
                _ => {}
            }
        }
        g.state = state;
        g.slots = gpu_slots;
        g.reservations = res;
    }
    // Each GPU's part lives on in `h.gpus`; keep only the document's metadata here.
    let mut report = report;
    report.gpus.clear();
    h.report = Some(report);
    h
}
