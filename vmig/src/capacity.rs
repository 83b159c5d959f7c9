//! `vmig capacity`: where N more VMs of a MIG-backed vGPU type fit, host by host.
//!
//! Placement-aware: each GPU's reported layout plus reservations is a `mig::MigState`, and
//! N VMs are placed one at a time with `mig::planner::best_fit_placement`, choosing each time
//! the GPU that is left least fragmented (then the fullest GPU, so empty GPUs stay empty for
//! big profiles). Only usable capacity counts: the host offers the type, MIG mode is on and
//! the agent's report is fresh. The same [`Candidate`] ranking picks the GPU for `assign`.

use std::cmp::Ordering;

use serde::Serialize;

use mig::{GiProfileId, MigState, Placement, VgpuType};

use crate::analysis::{Analysis, HostAnalysis};
use crate::{AdminError, ExitCode};

/// Parses a vGPU type name that must be MIG-backed, without asking the catalog.
fn parse_syntax(name: &str) -> Result<VgpuType, AdminError> {
    let t = VgpuType::parse(name).ok_or_else(|| {
        AdminError::Usage(format!(
            "{name:?} is not a vGPU type name; MIG-backed types look like grid_a100-3-20c"
        ))
    })?;
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
pub fn parse_type(name: &str) -> Result<VgpuType, AdminError> {
    check_profile(parse_syntax(name)?, name)
}

/// What can be checked before any report is read: a MIG-backed name and, for a board vmig's
/// catalog knows, a profile of that board. A board only an agent's report can teach vmig (a
/// GPU newer than this build) passes; [`parse_type`] checks it after the analysis.
pub fn precheck_type(name: &str) -> Result<VgpuType, AdminError> {
    let t = parse_syntax(name)?;
    let known = mig::catalog()
        .iter()
        .any(|m| m.vgpu_board.eq_ignore_ascii_case(&t.board));
    if known { check_profile(t, name) } else { Ok(t) }
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
}

fn evaluate(state: &MigState, profile: GiProfileId) -> Option<Choice> {
    let placement = mig::planner::best_fit_placement(state, profile)?;
    let mut after = state.clone();
    after.create_gi(profile, Some(placement)).ok()?;
    let slices = after.gpu_model().memory_slices;
    let free = slices.saturating_sub(after.occupied_memory_mask().count_ones());
    Some(Choice {
        placement,
        fragmentation: after.fragmentation(),
        free_slices: free,
    })
}

impl Candidate<'_> {
    /// The best placement here now, if any.
    pub fn choice(&self) -> Option<Choice> {
        self.best
    }

    /// Records a GI placed at the current best choice; returns it.
    pub fn take(&mut self) -> Option<Choice> {
        let c = self.best?;
        self.state.create_gi(self.profile, Some(c.placement)).ok()?;
        self.best = evaluate(&self.state, self.profile);
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

/// Best-fit order: least fragmentation left, then fewest free slices left (pack), then
/// host name and GPU index (stable output).
pub fn better(a: &Candidate<'_>, b: &Candidate<'_>) -> Ordering {
    match (a.best, b.best) {
        (Some(x), Some(y)) => x
            .fragmentation
            .total_cmp(&y.fragmentation)
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
            let (Some(model), Some(state)) = (g.model, &g.state) else {
                continue;
            };
            if !g.mig_enabled() {
                continue;
            }
            let Some(profile) = vtype.gi_profile(model) else {
                continue;
            };
            let best = evaluate(state, profile.id);
            out.push(Candidate {
                host,
                gpu: i,
                profile: profile.id,
                state: state.clone(),
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
    /// GI placement.
    pub placement: Placement,
    /// Fragmentation of that GPU afterwards.
    pub fragmentation_after: f64,
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
    let mut plan = Vec::new();
    for n in 1..=requested {
        let Some(best) = cands.iter_mut().min_by(|a, b| better(a, b)) else {
            break;
        };
        let Some(choice) = best.take() else { break };
        plan.push(PlannedVm {
            n,
            host: best.host.host.name.clone(),
            cluster: best.host.cluster.clone(),
            gpu_index: best.gpu_index(),
            gpu_uuid: best.gpu_uuid().to_string(),
            placement: choice.placement,
            fragmentation_after: choice.fragmentation,
        });
    }
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
        writeln!(
            out,
            "{} (GI profile {}): {} more fit in scope; {} requested: {}.",
            self.vgpu_type,
            self.profiles.join("/"),
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
                let line = format!(
                    "  {:>3}. {} GPU {} @{} (fragmentation after {:.2})",
                    p.n, p.host, p.gpu_index, p.placement, p.fragmentation_after
                );
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
        use vcenter_client::{HostRef, MoRef};

        use crate::inventory::{
            ComputeInventory, DatacenterInventory, FieldKeys, HostInfo, VcenterInventory,
        };

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
        let inv = VcenterInventory {
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
        };
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
