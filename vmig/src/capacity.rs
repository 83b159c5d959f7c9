//! `vmig capacity`: where N more VMs of a MIG-backed vGPU type fit, host by host.
//!
//! Placement-aware: each GPU's reported layout plus reservations is a `mig::MigState`, and
//! N VMs are placed one at a time with `mig::planner::best_fit_placement`, choosing each time
//! the GPU that is left least fragmented (then the fullest GPU, so empty GPUs stay empty for
//! big profiles). Only usable capacity counts: the host offers the type, MIG mode is on and
//! the agent's report is fresh. The same [`Candidate`] ranking picks the GPU for `assign`.

use std::cmp::Ordering;

use serde::Serialize;

use mig::vgpu_slots::{GpuSlots, SlicedType};
use mig::{GiProfileId, GpuInstanceId, MigState, Placement, VgpuType};

use crate::analysis::{Analysis, HostAnalysis};
use crate::{AdminError, ExitCode};

/// Parses a vGPU type name, without asking the catalog.
fn parse_name(name: &str) -> Result<VgpuType, AdminError> {
    VgpuType::parse(name).ok_or_else(|| {
        AdminError::Usage(format!(
            "{name:?} is not a vGPU type name; MIG-backed types look like grid_a100-3-20c"
        ))
    })
}

/// Parses a vGPU type name that must be MIG-backed, without asking the catalog.
fn parse_syntax(name: &str) -> Result<VgpuType, AdminError> {
    let t = parse_name(name)?;
    if !t.is_mig_backed() {
        return Err(AdminError::Usage(format!(
            "{name} is a time-sliced vGPU type; vmig plans MIG-backed types only (like grid_a100-3-20c)"
        )));
    }
    Ok(t)
}

fn check_profile(t: VgpuType, name: &str) -> Result<VgpuType, AdminError> {
    if !t.gpu_models().any(|m| t.gi_profile(m).is_some()) {
        return Err(AdminError::Usage(format!(
            "{name} names no GI profile of a GPU in vmig's catalog or in the agents' reports (board {}, profile {})",
            t.board,
            t.mig_profile_name().unwrap_or_default()
        )));
    }
    Ok(t)
}

/// Parses a vGPU type name that must be MIG-backed and known to vmig's catalog or to a model
/// learned from an agent's published geometry (call it after the reports were analysed).
/// For `plan`, `simulate` and `rightsize`, which plan whole GIs.
pub fn parse_type(name: &str) -> Result<VgpuType, AdminError> {
    check_profile(parse_syntax(name)?, name)
}

/// Whether some GPU in `analysis` publishes `t` as one it runs time-sliced: inside GIs
/// (`sliced_types`) or on the whole GPU without MIG (`timesliced.types`) (issue 18).
fn published_time_sliced(t: &VgpuType, analysis: &Analysis) -> bool {
    analysis
        .hosts
        .iter()
        .flat_map(|h| &h.gpus)
        .any(|g| g.sliced_type(t).is_some() || g.timesliced_types(t).next().is_some())
}

/// Parses a vGPU type for `capacity` and `assign` after `analysis`: a MIG-backed type whose
/// board and profile vmig knows (catalog or learned geometry), or a type an agent in scope
/// publishes as time-sliced (issue 18: its GI profile and per-GI maximum come from the
/// driver, since names like `DC-1-8C` carry no board).
pub fn parse_type_in(name: &str, analysis: &Analysis) -> Result<VgpuType, AdminError> {
    let t = parse_name(name)?;
    if published_time_sliced(&t, analysis) {
        return Ok(t);
    }
    if !t.is_mig_backed() {
        return Err(AdminError::Usage(format!(
            "{name} is a time-sliced vGPU type that no agent in scope reports on a GPU without MIG; vmig counts whole-GPU time-sliced types where agents publish them, and MIG-backed types (like grid_a100-3-20c)"
        )));
    }
    check_profile(t, name)
}

/// What can be checked before any report is read: a vGPU type name and, for a MIG-backed
/// type of a board vmig's catalog knows, a profile of that board. A board only an agent's
/// report can teach vmig (a GPU newer than this build, or a time-sliced type) passes;
/// [`parse_type_in`] checks it after the analysis.
pub fn precheck_type(name: &str) -> Result<VgpuType, AdminError> {
    let t = parse_name(name)?;
    let known = mig::catalog()
        .iter()
        .any(|m| m.vgpu_board.eq_ignore_ascii_case(&t.board));
    if known && t.is_mig_backed() {
        check_profile(t, name)
    } else {
        Ok(t)
    }
}

/// One GPU that could take the type, with its working state.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// Its host.
    pub host: &'a HostAnalysis,
    /// Index into `host.gpus`.
    pub gpu: usize,
    /// GI profile backing the type on this GPU's model.
    pub profile: GiProfileId,
    /// Reported layout + reservations + what was planned so far.
    pub state: MigState,
    /// Its time-sliced GIs, with the slots reserved or planned so far (issue 18).
    pub slots: GpuSlots,
    /// The type as this GPU runs it time-sliced inside GIs, if it does.
    pub sliced: Option<SlicedType>,
    best: Option<Choice>,
}

/// Where a GI would go on a candidate, and what it leaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    /// Placement (memory slices).
    pub placement: Placement,
    /// Fragmentation after placing it.
    pub fragmentation: f64,
    /// Free memory slices after placing it.
    pub free_slices: u32,
    /// A time-sliced vGPU joining a GI that exists (reported, reserved or planned): that GI;
    /// `None` when a new GI is created at `placement`.
    pub joins: Option<GpuInstanceId>,
    /// A time-sliced vGPU: the slots of its GI still free after it (0 for whole-GI types).
    pub slots_left: u32,
    /// The packing rule's rank (issue 18; `mig::vgpu_slots`): 0 joins a GI already hosting
    /// the type, 1 takes an empty GI that exists, 2 creates a GI. Whole-GI types are all 2.
    pub rank: u8,
}

fn free_slices(state: &MigState) -> u32 {
    let slices = state.gpu_model().memory_slices;
    slices.saturating_sub(state.occupied_memory_mask().count_ones())
}

/// Where the next vGPU goes on a GPU: for a time-sliced type a free slot in a GI that
/// exists when there is one (the packing rule), else a new GI at the best fit.
fn evaluate(
    state: &MigState,
    slots: &GpuSlots,
    profile: GiProfileId,
    sliced: Option<&SlicedType>,
) -> Option<Choice> {
    if let Some(t) = sliced
        && let Some(gi) = slots.choose(t)
    {
        let g = slots.gis.iter().find(|g| g.gi == gi)?;
        return Some(Choice {
            placement: state.gpu_instance(gi)?.placement,
            fragmentation: state.fragmentation(),
            free_slices: free_slices(state),
            joins: Some(gi),
            slots_left: g.free_for(t).saturating_sub(1),
            rank: if g.hosted.is_some() { 0 } else { 1 },
        });
    }
    let placement = mig::planner::best_fit_placement(state, profile)?;
    let mut after = state.clone();
    after.create_gi(profile, Some(placement)).ok()?;
    Some(Choice {
        placement,
        fragmentation: after.fragmentation(),
        free_slices: free_slices(&after),
        joins: None,
        slots_left: sliced.map_or(0, |t| t.max_per_gi.get().saturating_sub(1)),
        rank: 2,
    })
}

/// Records `choice` in a GPU's working state: a new GI for a whole-GI type; for a
/// time-sliced type a slot in the GI at the choice's placement, created there if needed.
/// `None` (nothing changed) when the state refuses it.
pub fn book(
    state: &mut MigState,
    slots: &mut GpuSlots,
    profile: GiProfileId,
    sliced: Option<&SlicedType>,
    choice: &Choice,
) -> Option<()> {
    match sliced {
        Some(t) => mig::vgpu_slots::book_at(state, slots, t, choice.placement)
            .ok()
            .map(drop),
        None => state
            .create_gi(profile, Some(choice.placement))
            .ok()
            .map(drop),
    }
}

impl Candidate<'_> {
    /// The best placement here now, if any.
    pub fn choice(&self) -> Option<Choice> {
        self.best
    }

    /// Records a vGPU placed at the current best choice; returns it.
    pub fn take(&mut self) -> Option<Choice> {
        let c = self.best?;
        book(
            &mut self.state,
            &mut self.slots,
            self.profile,
            self.sliced.as_ref(),
            &c,
        )?;
        self.best = evaluate(&self.state, &self.slots, self.profile, self.sliced.as_ref());
        Some(c)
    }

    /// `GPU-…` UUID.
    pub fn gpu_uuid(&self) -> &str {
        &self.host.gpus[self.gpu].report.uuid
    }

    /// NVML index.
    pub fn gpu_index(&self) -> u32 {
        self.host.gpus[self.gpu].report.index
    }
}

/// Best-fit order: for time-sliced types the packing rule first (a GI hosting the type, the
/// fullest first, then an empty GI, then a new one); then least fragmentation left, fewest
/// free slices left (pack), host name and GPU index (stable output).
pub fn better(a: &Candidate<'_>, b: &Candidate<'_>) -> Ordering {
    match (a.best, b.best) {
        (Some(x), Some(y)) => x
            .rank
            .cmp(&y.rank)
            .then(x.slots_left.cmp(&y.slots_left))
            .then(x.fragmentation.total_cmp(&y.fragmentation))
            .then(x.free_slices.cmp(&y.free_slices))
            .then_with(|| a.host.host.name.cmp(&b.host.host.name))
            .then(a.gpu_index().cmp(&b.gpu_index())),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Every GPU of `hosts` that can take `vtype` now (usable host, offered type, MIG on).
pub fn candidates<'a>(
    hosts: impl IntoIterator<Item = &'a HostAnalysis>,
    vtype: &VgpuType,
) -> Vec<Candidate<'a>> {
    let mut out = Vec::new();
    for host in hosts {
        if !host.usable() || host.offered(vtype).is_none() {
            continue;
        }
        for (i, g) in host.gpus.iter().enumerate() {
            let Some(state) = &g.state else {
                continue;
            };
            if !g.mig_enabled() {
                continue;
            }
            let sliced = g.sliced_type(vtype);
            let Some(profile) = g.profile_for(vtype, sliced.as_ref()) else {
                continue;
            };
            let best = evaluate(state, &g.slots, profile, sliced.as_ref());
            out.push(Candidate {
                host,
                gpu: i,
                profile,
                state: state.clone(),
                slots: g.slots.clone(),
                sliced,
                best,
            });
        }
    }
    out
}

/// `vmig capacity` answer.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityAnswer {
    /// The type asked for.
    pub vgpu_type: String,
    /// Its GI profile(s) (per GPU model).
    pub profiles: Vec<String>,
    /// How many were asked for.
    pub requested: u32,
    /// How many fit in scope in all.
    pub available: u32,
    /// Whether `requested` fit.
    pub fits: bool,
    /// Hosts that can take at least one, best first.
    pub hosts: Vec<HostCapacity>,
    /// Where the requested VMs would go, in order.
    pub plan: Vec<PlannedVm>,
    /// Hosts offering the type whose capacity is not counted, and why.
    pub not_counted: Vec<NotCounted>,
}

/// Capacity of one host.
#[derive(Debug, Clone, Serialize)]
pub struct HostCapacity {
    /// vCenter.
    pub vcenter: String,
    /// Datacenter.
    pub datacenter: String,
    /// Cluster.
    pub cluster: String,
    /// Host.
    pub host: String,
    /// How many fit on the host.
    pub count: u32,
    /// How many of the requested the plan puts here.
    pub planned: u32,
    /// Per GPU.
    pub gpus: Vec<GpuCapacity>,
}

/// Capacity of one GPU.
#[derive(Debug, Clone, Serialize)]
pub struct GpuCapacity {
    /// NVML index.
    pub index: u32,
    /// UUID.
    pub uuid: String,
    /// How many fit.
    pub count: u32,
}

/// One VM of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedVm {
    /// 1-based.
    pub n: u32,
    /// Host.
    pub host: String,
    /// Cluster.
    pub cluster: String,
    /// GPU index.
    pub gpu_index: u32,
    /// GPU UUID.
    pub gpu_uuid: String,
    /// GI placement: of the new GI, or of the GI a time-sliced vGPU joins; none for a
    /// whole-GPU time-sliced vGPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// A time-sliced vGPU joining a GI that exists: its id (issue 18).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joins_gi: Option<u32>,
    /// A time-sliced vGPU: the slots of its GI still free after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slots_left: Option<u32>,
    /// Fragmentation of that GPU's MIG layout afterwards; none for a whole-GPU time-sliced
    /// vGPU (no MIG layout to fragment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fragmentation_after: Option<f64>,
}

/// A host whose capacity is not counted.
#[derive(Debug, Clone, Serialize)]
pub struct NotCounted {
    /// Host.
    pub host: String,
    /// Cluster.
    pub cluster: String,
    /// Why.
    pub reason: String,
}

/// Answers `capacity` on an analysis.
pub fn answer(analysis: &Analysis, vtype: &VgpuType, requested: u32) -> CapacityAnswer {
    let mut cands = candidates(&analysis.hosts, vtype);
    let mut hosts: Vec<HostCapacity> = Vec::new();
    for h in &analysis.hosts {
        let gpus: Vec<GpuCapacity> = h
            .gpus
            .iter()
            .map(|g| GpuCapacity {
                index: g.report.index,
                uuid: g.report.uuid.clone(),
                count: if h.usable() && h.offered(vtype).is_some() {
                    g.capacity_for(vtype)
                } else {
                    0
                },
            })
            .filter(|g| g.count > 0)
            .collect();
        let count: u32 = gpus.iter().map(|g| g.count).sum();
        if count > 0 {
            hosts.push(HostCapacity {
                vcenter: analysis.inventories[h.vcenter].name.clone(),
                datacenter: h.datacenter.clone(),
                cluster: h.cluster.clone(),
                host: h.host.name.clone(),
                count,
                planned: 0,
                gpus,
            });
        }
    }
    let not_counted = analysis
        .hosts
        .iter()
        .filter(|h| h.offered(vtype).is_some() && !h.usable())
        .map(|h| NotCounted {
            host: h.host.name.clone(),
            cluster: h.cluster.clone(),
            reason: h.status_detail.clone().unwrap_or_else(|| {
                format!(
                    "host is {}",
                    h.host.connection_state.as_deref().unwrap_or("unusable")
                )
            }),
        })
        .collect();
    let plan = if vtype.is_mig_backed() {
        plan_gis(&mut cands, requested)
    } else {
        plan_whole_gpus(analysis, vtype, requested)
    };
    for p in &plan {
        if let Some(h) = hosts
            .iter_mut()
            .find(|h| h.host == p.host && h.cluster == p.cluster)
        {
            h.planned += 1;
        }
    }
    hosts.sort_by(|a, b| {
        b.planned
            .cmp(&a.planned)
            .then(b.count.cmp(&a.count))
            .then_with(|| a.host.cmp(&b.host))
    });
    let available = hosts.iter().map(|h| h.count).sum();
    let mut profiles: Vec<String> = vtype
        .gpu_models()
        .filter_map(|m| vtype.gi_profile(m))
        .map(|p| p.name.to_string())
        .collect();
    // A time-sliced type's profile is the one its GPUs publish (issue 18).
    for g in analysis.hosts.iter().flat_map(|h| &h.gpus) {
        if let (Some(t), Some(m)) = (g.sliced_type(vtype), g.model)
            && let Some(p) = m.gi_profile(t.gi_profile)
            && !profiles.contains(&p.name.to_string())
        {
            profiles.push(p.name.to_string());
        }
    }
    profiles.dedup();
    CapacityAnswer {
        vgpu_type: vtype.to_string(),
        profiles,
        requested,
        available,
        fits: plan.len() as u32 >= requested,
        hosts,
        plan,
        not_counted,
    }
}

/// `requested` vGPUs placed one at a time, each at the best candidate left ([`better`]).
fn plan_gis(cands: &mut [Candidate<'_>], requested: u32) -> Vec<PlannedVm> {
    let mut plan = Vec::new();
    for n in 1..=requested {
        let Some(best) = cands.iter_mut().min_by(|a, b| better(a, b)) else {
            break;
        };
        let sliced = best.sliced.is_some();
        let Some(choice) = best.take() else { break };
        plan.push(PlannedVm {
            n,
            host: best.host.host.name.clone(),
            cluster: best.host.cluster.clone(),
            gpu_index: best.gpu_index(),
            gpu_uuid: best.gpu_uuid().to_string(),
            placement: Some(choice.placement),
            joins_gi: choice.joins.map(|g| g.0),
            slots_left: sliced.then_some(choice.slots_left),
            fragmentation_after: Some(choice.fragmentation),
        });
    }
    plan
}

/// Whole-GPU time-sliced vGPUs (issue 18): each on the usable GPU with the most still
/// startable (vSphere's default "best performance" policy spreads them), as the agents
/// publish it; the driver, not vmig, places them at power-on.
fn plan_whole_gpus(analysis: &Analysis, vtype: &VgpuType, requested: u32) -> Vec<PlannedVm> {
    let mut left: Vec<(&HostAnalysis, &crate::analysis::GpuAnalysis, u32)> = analysis
        .hosts
        .iter()
        .filter(|h| h.usable() && h.offered(vtype).is_some())
        .flat_map(|h| h.gpus.iter().map(move |g| (h, g, g.timesliced_more(vtype))))
        .filter(|(_, _, n)| *n > 0)
        .collect();
    let mut plan = Vec::new();
    for n in 1..=requested {
        let Some(best) = left
            .iter_mut()
            .filter(|(_, _, more)| *more > 0)
            .min_by(|a, b| {
                b.2.cmp(&a.2)
                    .then_with(|| a.0.host.name.cmp(&b.0.host.name))
                    .then(a.1.report.index.cmp(&b.1.report.index))
            })
        else {
            break;
        };
        best.2 -= 1;
        plan.push(PlannedVm {
            n,
            host: best.0.host.name.clone(),
            cluster: best.0.cluster.clone(),
            gpu_index: best.1.report.index,
            gpu_uuid: best.1.report.uuid.clone(),
            placement: None,
            joins_gi: None,
            slots_left: None,
            fragmentation_after: None,
        });
    }
    plan
}

impl CapacityAnswer {
    /// [`ExitCode::Ok`] when the request fits, else [`ExitCode::NoCapacity`].
    pub fn exit_code(&self) -> ExitCode {
        if self.fits {
            ExitCode::Ok
        } else {
            ExitCode::NoCapacity
        }
    }

    /// The text form.
    pub fn render_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let profile = if self.profiles.is_empty() {
            "time-sliced on whole GPUs without MIG".to_string()
        } else {
            format!("GI profile {}", self.profiles.join("/"))
        };
        writeln!(
            out,
            "{} ({profile}): {} more fit in scope; {} requested: {}.",
            self.vgpu_type,
            self.available,
            self.requested,
            if self.fits { "fits" } else { "does NOT fit" }
        )?;
        if !self.hosts.is_empty() {
            writeln!(out)?;
            let rows: Vec<[String; 5]> = self
                .hosts
                .iter()
                .map(|h| {
                    [
                        h.host.clone(),
                        h.cluster.clone(),
                        h.gpus
                            .iter()
                            .map(|g| format!("GPU{}:{}", g.index, g.count))
                            .collect::<Vec<_>>()
                            .join(" "),
                        h.count.to_string(),
                        h.planned.to_string(),
                    ]
                })
                .collect();
            crate::render::table::table(
                out,
                ["host", "cluster", "free per GPU", "fits", "planned"],
                &rows,
            )?;
        }
        if !self.plan.is_empty() {
            writeln!(out)?;
            writeln!(
                out,
                "Placement of {} (best fit: least fragmentation left):",
                self.plan.len()
            )?;
            for p in &self.plan {
                let line = match (p.placement, p.joins_gi, p.slots_left) {
                    (None, _, _) => format!(
                        "  {:>3}. {} GPU {} (whole-GPU time-sliced)",
                        p.n, p.host, p.gpu_index
                    ),
                    (Some(at), Some(gi), left) => format!(
                        "  {:>3}. {} GPU {} GI {gi} @{at} (joins it; {} slot(s) left)",
                        p.n,
                        p.host,
                        p.gpu_index,
                        left.unwrap_or(0)
                    ),
                    (Some(at), None, Some(left)) => format!(
                        "  {:>3}. {} GPU {} new GI @{at} ({left} slot(s) left; fragmentation after {:.2})",
                        p.n,
                        p.host,
                        p.gpu_index,
                        p.fragmentation_after.unwrap_or(0.0)
                    ),
                    (Some(at), None, None) => format!(
                        "  {:>3}. {} GPU {} @{at} (fragmentation after {:.2})",
                        p.n,
                        p.host,
                        p.gpu_index,
                        p.fragmentation_after.unwrap_or(0.0)
                    ),
                };
                writeln!(out, "{}", crate::render::escape_controls(&line))?;
            }
        }
        if !self.not_counted.is_empty() {
            writeln!(out)?;
            writeln!(out, "Not counted:")?;
            for n in &self.not_counted {
                // Reasons quote documents, which any host can write (render::escape_controls).
                let line = format!("  {} ({}): {}", n.host, n.cluster, n.reason);
                writeln!(out, "{}", crate::render::escape_controls(&line))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vCenter with one cluster holding `host`.
    fn one_host(host: crate::inventory::HostInfo) -> crate::inventory::VcenterInventory {
        use crate::inventory::{ComputeInventory, DatacenterInventory, FieldKeys};
        use vcenter_client::MoRef;
        crate::inventory::VcenterInventory {
            name: "vc".into(),
            url: "https://vc".into(),
            product: "test".into(),
            server_time: None,
            fields: FieldKeys::default(),
            datacenters: vec![DatacenterInventory {
                moref: MoRef::new("Datacenter", "dc-1"),
                name: "DC".into(),
                compute: vec![ComputeInventory {
                    moref: MoRef::new("ClusterComputeResource", "c-1"),
                    name: "C".into(),
                    is_cluster: true,
                    hosts: vec![host],
                    vms: vec![],
                }],
            }],
            requests: 0,
            objects: 0,
        }
    }

    /// Issue 18: a host mixing an RTX PRO 6000 in MIG mode whose GI 3 runs one time-sliced
    /// DC-1-8C (3 to a GI) with an RTX PRO 6000 without MIG running whole-GPU DC-24C vGPUs.
    #[test]
    fn time_sliced_types_count_slots_and_pack_whole_gpu_types_count_what_the_driver_says() {
        use mig::report::{
            GiReport, GpuReport, HostReport, MigModeReport, SCHEMA_V1, SlicedTypeReport,
            TimeslicedReport, TimeslicedTypeReport, VgpuReport,
        };
        use mig::{GiProfileId, GpuInstanceId};
        use vcenter_client::HostRef;

        let gpu = |index: u32, mig_on: bool| GpuReport {
            sliced_types: Vec::new(),
            timesliced: None,
            index,
            uuid: format!("GPU-{index}"),
            name: "NVIDIA RTX PRO 6000 Blackwell Server Edition".into(),
            pci_bus_id: format!("00000000:{index:02X}:00.0"),
            model: Some("rtx-pro-6000-bse-96gb".into()),
            mig_mode: Some(MigModeReport {
                current: mig_on,
                pending: mig_on,
            }),
            gpu_instances: vec![],
            free: Default::default(),
            largest_placeable: None,
            fragmentation: 0.0,
            placeable_vgpu_types: vec![],
            error: None,
            nvml_free: None,
            layout_state: None,
            geometry: None,
        };
        let one_vgpu = VgpuReport {
            vm: Some("vm-x".into()),
            vgpu_type: "NVIDIA DC-1-8C".into(),
        };
        let mig_gpu = GpuReport {
            sliced_types: vec![SlicedTypeReport {
                vgpu_type: "NVIDIA DC-1-8C".into(),
                gi_profile_id: GiProfileId(14),
                max_per_gi: 3,
            }],
            gpu_instances: vec![GiReport {
                gi_id: GpuInstanceId(3),
                profile_id: GiProfileId(14),
                profile: "1g.24gb".into(),
                placement: Placement::new(0, 3),
                compute_instances: vec![],
                in_use: true,
                vm: one_vgpu.vm.clone(),
                vgpu_type: Some(one_vgpu.vgpu_type.clone()),
                processes: vec![],
                vgpus: vec![one_vgpu],
            }],
            ..gpu(0, true)
        };
        let whole_gpu = GpuReport {
            timesliced: Some(TimeslicedReport {
                vgpus: vec![VgpuReport {
                    vm: Some("vm-y".into()),
                    vgpu_type: "NVIDIA DC-24C".into(),
                }],
                types: vec![TimeslicedTypeReport {
                    vgpu_type: "NVIDIA DC-24C".into(),
                    max: 4,
                    more: 3,
                }],
            }),
            ..gpu(1, false)
        };
        let now = time::OffsetDateTime::now_utc();
        let host_with = |gpus: Vec<GpuReport>| {
            let doc = HostReport {
                schema: SCHEMA_V1.into(),
                agent_version: "0.1.0".into(),
                host_uuid: "u".into(),
                generation: 1,
                observed_at: crate::times::format_time(now),
                heartbeat_interval_s: 300,
                usage: None,
                gpus,
            }
            .to_json();
            crate::inventory::HostInfo {
                moref: HostRef::new("host-1"),
                name: "esx-rtx".into(),
                connection_state: Some("connected".into()),
                bios_uuid: None,
                vgpu_types: vec!["nvidia_dc-1-8c".into(), "nvidia_dc-24c".into()],
                graphics: vec![],
                document: Some(doc),
            }
        };
        // A hostile or broken agent naming a GI profile its GPU does not have: the type is
        // known (the agent publishes it) but nothing is counted or planned for it.
        let mut bogus = mig_gpu.clone();
        bogus.sliced_types[0].gi_profile_id = GiProfileId(99);
        let odd = crate::analysis::analyse(vec![one_host(host_with(vec![bogus]))], now);
        let t = parse_type_in("nvidia_dc-1-8c", &odd).expect("published, however oddly");
        let a = answer(&odd, &t, 1);
        assert_eq!((a.available, a.plan.len(), a.fits), (0, 0, false));
        let host = host_with(vec![mig_gpu, whole_gpu]);
        // Before the analysis neither name maps to a GI profile; both pass the precheck.
        assert!(precheck_type("nvidia_dc-1-8c").is_ok());
        assert!(precheck_type("nvidia_dc-24c").is_ok());
        let analysis = crate::analysis::analyse(vec![one_host(host)], now);
        assert!(analysis.warnings.is_empty(), "{:?}", analysis.warnings);
        // `vmig serve` analyses again when the report turns stale: after 3 heartbeats.
        let observed = crate::times::parse_time(&crate::times::format_time(now)).unwrap();
        assert_eq!(
            analysis.next_change(),
            Some(observed + time::Duration::seconds(3 * 300 + 1))
        );

        let sliced = parse_type_in("nvidia_dc-1-8c", &analysis).expect("published by the agent");
        let a = answer(&analysis, &sliced, 4);
        // GI 3 has 2 free slots; 3 more 1g.24gb GIs of 3 slots each can be created.
        assert_eq!(a.available, 2 + 3 * 3);
        assert_eq!(a.profiles, ["1g.24gb"]);
        let plan: Vec<_> = a
            .plan
            .iter()
            .map(|p| (p.gpu_index, p.placement, p.joins_gi, p.slots_left))
            .collect();
        let at = |s, n| Some(Placement::new(s, n));
        assert_eq!(
            plan,
            [
                // Packing: GI 3 fills first, then one new GI, which the next one joins.
                (0, at(0, 3), Some(3), Some(1)),
                (0, at(0, 3), Some(3), Some(0)),
                (0, plan[2].1, None, Some(2)),
                (0, plan[2].1, plan[3].2, Some(1)),
            ]
        );
        assert!(
            plan[3].2.is_some(),
            "the fourth joins the GI the third opened"
        );
        let mut text = Vec::new();
        a.render_text(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("GPU 0 GI 3 @0:3 (joins it; 1 slot(s) left)"),
            "{text}"
        );

        let whole = parse_type_in("nvidia_dc-24c", &analysis).expect("published by the agent");
        let a = answer(&analysis, &whole, 4);
        assert_eq!((a.available, a.fits, a.plan.len()), (3, false, 3));
        assert!(
            a.plan
                .iter()
                .all(|p| p.gpu_index == 1 && p.placement.is_none())
        );
        assert!(a.profiles.is_empty());

        // A time-sliced name no agent publishes is refused, saying so.
        let e = parse_type_in("nvidia_dc-48c", &analysis)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no agent in scope reports"), "{e}");
    }

    #[test]
    fn type_names_are_checked() {
        assert!(parse_type("grid_a100-3-20c").is_ok());
        assert!(parse_type("nvidia_h100xm-1-10c").is_ok());
        let e = parse_type("grid_a100-40c").unwrap_err().to_string();
        assert!(e.contains("time-sliced"), "{e}");
        let e = parse_type("banana").unwrap_err().to_string();
        assert!(e.contains("not a vGPU type"), "{e}");
        assert!(parse_type("grid_zz9-3-20c").is_err());
    }

    /// A GPU newer than vmig's build (here: an H100's geometry under another name and board)
    /// is planned from the geometry its agent published and the host's vGPU type names.
    #[test]
    fn a_gpu_missing_from_the_catalog_is_planned_from_published_geometry() {
        use mig::report::{GpuReport, HostReport, ModelGeometry, SCHEMA_V1};
        use vcenter_client::HostRef;

        use crate::inventory::HostInfo;

        let h100 = mig::GpuModel::by_key("h100-sxm5-80gb").expect("catalog model");
        let geometry = ModelGeometry::of_catalog(h100);
        let gpu = |index: u32, geometry: Option<ModelGeometry>| GpuReport {
            sliced_types: Vec::new(),
            timesliced: None,
            index,
            uuid: format!("GPU-{index}"),
            name: "NVIDIA Q900 Future".into(),
            pci_bus_id: format!("00000000:{index:02X}:00.0"),
            model: None,
            mig_mode: Some(mig::report::MigModeReport {
                current: true,
                pending: true,
            }),
            gpu_instances: vec![],
            free: [("3g.40gb".to_string(), 2)].into_iter().collect(),
            largest_placeable: Some("7g.80gb".into()),
            fragmentation: 0.0,
            placeable_vgpu_types: vec![],
            error: None,
            nvml_free: None,
            layout_state: None,
            geometry,
        };
        let now = time::OffsetDateTime::now_utc();
        let doc = HostReport {
            schema: SCHEMA_V1.into(),
            agent_version: "0.1.0".into(),
            host_uuid: "u".into(),
            generation: 1,
            observed_at: now
                .format(&time::format_description::well_known::Rfc3339)
                .expect("time"),
            heartbeat_interval_s: 300,
            usage: None,
            // The geometry once per model: the second GPU of the model has none.
            gpus: vec![
                GpuReport {
                    sliced_types: Vec::new(),
                    timesliced: None,
                    // NVML's own capacity read 0, as on the seed's ESXi host.
                    nvml_free: Some([("3g.40gb".to_string(), 0)].into_iter().collect()),
                    layout_state: None,
                    ..gpu(0, Some(geometry))
                },
                gpu(1, None),
            ],
        }
        .to_json();
        let host = HostInfo {
            moref: HostRef::new("host-1"),
            name: "esx-future".into(),
            connection_state: Some("connected".into()),
            bios_uuid: None,
            vgpu_types: vec!["nvidia_q900-3-40c".into(), "nvidia_q900-7-80c".into()],
            graphics: vec![],
            document: Some(doc),
        };
        let inv = one_host(host);
        // Before the analysis the type is unknown; `precheck_type` lets it through.
        assert!(parse_type("nvidia_q900-3-40c").is_err());
        assert!(precheck_type("nvidia_q900-3-40c").is_ok());
        let analysis = crate::analysis::analyse(vec![inv], now);
        let h = &analysis.hosts[0];
        assert!(
            h.gpus.iter().all(|g| g.problem.is_none()),
            "{:?}",
            h.gpus[0].problem
        );
        assert!(
            analysis.warnings.iter().any(|w| w.contains(
                "GPU 0: NVML's remaining capacity none disagrees with the placements; vmig uses the placements (3g.40gb×2)"
            )),
            "{:?}",
            analysis.warnings
        );
        let vtype = parse_type("nvidia_q900-3-40c").expect("learned from the report");
        let answer = answer(&analysis, &vtype, 4);
        assert_eq!(answer.available, 4, "two 3g.40gb on each of two GPUs");
        assert!(answer.fits);
        assert_eq!(answer.profiles, ["3g.40gb"]);
    }
}
