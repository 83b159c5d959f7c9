//! `vmig plan --fit TYPE[xN]`: the fewest moves of existing GIs that make N more VMs of a
//! MIG-backed vGPU type fit, planned by `mig::defrag` on the analysed inventory; with
//! `--apply`, executed move by move (submodule `apply`) with `assign`'s safety protocol.
//!
//! What may move (docs/admin-guide.md, "Defragmentation", states the vSphere rules):
//! - a reservation of a powered-off VM (`vmig.reservation` counted on a GPU): cold, anywhere
//!   on a GPU of the same model;
//! - a GI backing a running VM: live (vMotion) to a GPU of the same model on another host,
//!   only with `--allow live`, and only when vCenter's advanced setting
//!   `vgpu.hotmigrate.enabled` is `true` and the destination host offers the VM's vGPU type
//!   (`config.sharedPassthruGpuTypes`); otherwise the answer says why live moves are not
//!   offered;
//! - an idle GI (not in use, no VM): re-laid out on its own GPU (dry run only: vmig cannot
//!   change GIs from vCenter, so `--apply` plans with idle GIs pinned);
//! - anything else (in use without a VM the report names) is pinned.
//!
//! Only GPUs that can take the type count: MIG on, a fresh agent report, a known model.
mod apply;

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use mig::defrag::{DefragError, DefragLimits, FleetGpu, Mobility, MoveKind, plan_defrag};
use mig::{GpuInstanceId, GpuModel, VgpuType};

use crate::Connection;
use crate::analysis::{AgentStatus, Analysis};
use crate::error::AdminError;
use crate::exit::ExitCode;
use crate::inventory::{Progress, Scope};
use crate::output::{stdout_error, write_json};
use crate::snapshot::analyse;

/// `vmig plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// MIG-backed vGPU type and how many more VMs of it must fit, e.g. grid_a100-4-20cx2.
    #[arg(long, value_name = "TYPE[xN]")]
    pub fit: String,
    /// Only this datacenter.
    #[arg(long, value_name = "NAME")]
    pub datacenter: Option<String>,
    /// Only this cluster.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Which VMs may move: `cold` (powered-off VMs' reservations), `live` (vMotion running
    /// vGPU VMs); comma-separated or repeated. Idle GIs are always re-laid out.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "cold")]
    pub allow: Vec<Allow>,
    /// The longest plan to consider.
    #[arg(long, default_value_t = 4)]
    pub max_moves: u32,
    /// Print the plan only (the default; kept for scripts).
    #[arg(long, conflicts_with = "apply")]
    pub dry_run: bool,
    /// Execute the plan: each move under the VM's and the destination host's locks,
    /// journaled (`vmig repair` finishes a stopped one), cold moves first; stops at the first
    /// move that fails or finds the inventory changed (exit status 5: run vmig plan again).
    #[arg(long)]
    pub apply: bool,
}

/// What `--allow` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Allow {
    Cold,
    Live,
}

/// `vmig plan`: prints the plan; exit status [`ExitCode::NoCapacity`] when none exists.
pub async fn run(
    conns: &[Connection],
    a: PlanArgs,
    json: bool,
    progress: &dyn Progress,
    out: &mut dyn Write,
) -> Result<ExitCode, AdminError> {
    let (name, count) = parse_fit(&a.fit)?;
    let vtype = crate::capacity::parse_type(&name)?;
    if a.apply {
        // Changes are made: a signal stops between vCenter calls, with the journal kept.
        crate::interrupt::install();
    }
    let scope = Scope {
        datacenter: a.datacenter,
        cluster: a.cluster,
    };
    let analysis = analyse(conns, &scope, progress).await?;
    let mut limits = DefragLimits {
        allow_cold: a.allow.contains(&Allow::Cold),
        allow_live: a.allow.contains(&Allow::Live),
        max_moves: a.max_moves,
        ..DefragLimits::default()
    };
    let mut opts = FleetOptions {
        for_apply: a.apply,
        live_vcenters: vec![false; conns.len()],
        pinned: Vec::new(),
    };
    let mut live_not_offered = Vec::new();
    if limits.allow_live {
        for (vi, conn) in conns.iter().enumerate() {
            match hot_migrate(conn).await? {
                None => opts.live_vcenters[vi] = true,
                Some(why) => live_not_offered.push(why),
            }
        }
    }
    let (fleet, answer) = loop {
        let fleet = fleet_with(&analysis, &opts);
        let mut answer = answer(&fleet, &vtype, count, limits)?;
        // A live move to a host that does not offer the VM's type is not offered: that GI
        // is pinned and the plan made again (each round pins one more, so this ends).
        match unoffered_live_move(&analysis, &fleet, &answer) {
            Some((gpu, gi, why)) => {
                live_not_offered.push(why);
                opts.pinned.push((gpu, gi));
            }
            None => {
                answer.live_not_offered = std::mem::take(&mut live_not_offered);
                answer.dry_run = !a.apply;
                break (fleet, answer);
            }
        }
        if opts.pinned.len() > 64 {
            limits.allow_live = false;
        }
    };
    if !a.apply || answer.no_plan.is_some() || answer.moves.is_empty() {
        if json {
            write_json(out, &answer)?;
        } else {
            answer.render_text(out).map_err(stdout_error)?;
        }
        return Ok(answer.exit_code());
    }
    let ctx = apply::Context {
        conns,
        scope: &scope,
        vtype: &vtype,
        count,
        limits,
        opts: &opts,
        progress,
    };
    let report = apply::apply(&ctx, &analysis, &fleet, &answer).await?;
    let code = report.exit_code();
    if json {
        write_json(
            out,
            &apply::Applied {
                plan: &answer,
                apply: &report,
            },
        )?;
    } else {
        answer.render_text(out).map_err(stdout_error)?;
        report.render_text(out).map_err(stdout_error)?;
    }
    Ok(code)
}

/// Whether vCenter lets vGPU VMs be moved with vMotion: `None` when its advanced setting
/// `vgpu.hotmigrate.enabled` is `true`, else the sentence saying why not.
async fn hot_migrate(conn: &Connection) -> Result<Option<String>, AdminError> {
    let value = conn
        .client
        .query_option(HOT_MIGRATE)
        .await
        .map_err(|source| AdminError::Vcenter {
            vcenter: conn.target.host.clone(),
            source,
        })?;
    Ok(match value {
        Some(v) if v.trim().eq_ignore_ascii_case("true") => None,
        Some(v) => Some(format!(
            "vCenter {}: vMotion of vGPU VMs is off (advanced setting {HOT_MIGRATE} = {v:?}); no live move is offered",
            conn.target.host
        )),
        None => Some(format!(
            "vCenter {}: vMotion of vGPU VMs is off (advanced setting {HOT_MIGRATE} is not set); no live move is offered",
            conn.target.host
        )),
    })
}

/// vCenter's advanced setting that enables vMotion of vGPU VMs (vSphere 6.7 U1 and later).
pub const HOT_MIGRATE: &str = "vgpu.hotmigrate.enabled";

/// The first live move whose destination host does not offer the moved VM's vGPU type:
/// (origin GPU, GI, why).
fn unoffered_live_move(
    analysis: &Analysis,
    fleet: &Fleet,
    answer: &PlanAnswer,
) -> Option<(usize, GpuInstanceId, String)> {
    answer.raw.iter().find_map(|m| {
        if m.kind != MoveKind::Live {
            return None;
        }
        let owner = fleet.owners[m.origin_gpu].get(&m.gi)?;
        let dest = &analysis.hosts[fleet.places[m.to_gpu].host_index];
        let vtype = owner.vgpu_type.as_deref().and_then(VgpuType::parse);
        let offered = vtype.as_ref().is_some_and(|t| dest.offered(t).is_some());
        (!offered).then(|| {
            (
                m.origin_gpu,
                m.gi,
                format!(
                    "VM {}: host {} does not offer its vGPU type {} (config.sharedPassthruGpuTypes); it is not moved live",
                    owner.vm,
                    dest.host.name,
                    owner.vgpu_type.as_deref().unwrap_or("(unknown)")
                ),
            )
        })
    })
}

/// The fleet `mig::defrag` plans on, with a label per GI for the output.
#[derive(Debug)]
pub struct Fleet {
    pub gpus: Vec<FleetGpu>,
    /// Per GPU: GI id → what it backs (`VM web-1 (running)`, `reservation of VM db-2`).
    pub labels: Vec<BTreeMap<GpuInstanceId, String>>,
    /// Per GPU: where it is in vCenter.
    pub places: Vec<GpuPlace>,
    /// Per GPU: GI id → the VM it backs (cold and live GIs).
    pub owners: Vec<BTreeMap<GpuInstanceId, Owner>>,
}

/// Where a fleet GPU is.
#[derive(Debug, Clone)]
pub struct GpuPlace {
    /// Index into `Analysis::hosts`.
    pub host_index: usize,
    /// The vCenter (index into the connections) and the host's id there: with the UUID,
    /// what finds the GPU again in a fresh read (UUIDs alone need not be unique across
    /// hosts when agents report copied or simulated boards).
    pub vcenter: usize,
    pub host: String,
    /// `GPU-…` UUID.
    pub gpu_uuid: String,
}

/// The VM a movable GI backs.
#[derive(Debug, Clone)]
pub struct Owner {
    /// Its name (as the reservation or the agent names it).
    pub vm: String,
    /// Its id, when found in the inventory.
    pub vm_moref: Option<String>,
    /// Its vGPU type, when known.
    pub vgpu_type: Option<String>,
}

/// How the fleet is built.
#[derive(Debug, Clone, Default)]
pub struct FleetOptions {
    /// For `--apply`: idle GIs are pinned (vmig cannot re-lay them out from vCenter).
    pub for_apply: bool,
    /// Per vCenter: whether running VMs may be moved live there (`vgpu.hotmigrate.enabled`).
    pub live_vcenters: Vec<bool>,
    /// GIs (GPU index, GI) kept where they are.
    pub pinned: Vec<(usize, GpuInstanceId)>,
}

/// Every usable GPU of the analysis (MIG on, fresh report, known model) with the mobility of
/// its GIs, as the dry-run planner and `simulate` see it (live GIs movable).
pub fn fleet(analysis: &Analysis) -> Fleet {
    fleet_with(
        analysis,
        &FleetOptions {
            for_apply: false,
            live_vcenters: vec![true; analysis.inventories.len()],
            pinned: Vec::new(),
        },
    )
}

/// The VM the agent names `reported` (a name or a BIOS UUID) in vCenter `vi`.
fn find_vm<'a>(
    analysis: &'a Analysis,
    vi: usize,
    reported: &str,
) -> Option<&'a crate::inventory::VmInfo> {
    analysis
        .inventories
        .get(vi)?
        .vms()
        .map(|(_, _, v)| v)
        .find(|v| {
            v.name == reported
                || v.uuid
                    .as_deref()
                    .is_some_and(|u| crate::reservation::same_uuid(u, reported))
        })
}

/// [`fleet`] with options.
pub fn fleet_with(analysis: &Analysis, opts: &FleetOptions) -> Fleet {
    let mut out = Fleet {
        gpus: Vec::new(),
        labels: Vec::new(),
        places: Vec::new(),
        owners: Vec::new(),
    };
    for (hi, h) in analysis.hosts.iter().enumerate() {
        if h.status != AgentStatus::Ok {
            continue;
        }
        let live_ok = opts.live_vcenters.get(h.vcenter).copied().unwrap_or(false);
        for g in &h.gpus {
            let (Some(_), Some(state)) = (g.model, &g.state) else {
                continue;
            };
            if !g.mig_enabled() {
                continue;
            }
            let index = out.gpus.len();
            let mut mobility = BTreeMap::new();
            let mut labels = BTreeMap::new();
            let mut owners = BTreeMap::new();
            for gi in state.gpu_instances.values() {
                let reported = g.report.gpu_instances.iter().find(|r| r.gi_id == gi.id);
                let reservation = g
                    .reservations
                    .iter()
                    .find(|r| r.placement == Some(gi.placement));
                let (mob, label) = match (reported, reservation) {
                    (Some(r), _) if r.in_use || gi.is_in_use() => match &r.vm {
                        Some(vm) => {
                            let found = find_vm(analysis, h.vcenter, vm);
                            owners.insert(
                                gi.id,
                                Owner {
                                    vm: found.map_or_else(|| vm.clone(), |v| v.name.clone()),
                                    vm_moref: found.map(|v| v.moref.value().to_string()),
                                    vgpu_type: r.vgpu_type.clone().or_else(|| {
                                        found.and_then(|v| {
                                            v.vgpus.first().map(|d| d.profile.as_str().to_string())
                                        })
                                    }),
                                },
                            );
                            let mob = if live_ok {
                                Mobility::Live
                            } else {
                                Mobility::Pinned
                            };
                            (mob, format!("VM {vm} (running)"))
                        }
                        None => (Mobility::Pinned, "in use".to_string()),
                    },
                    (Some(_), _) if opts.for_apply => (Mobility::Pinned, "idle GI".to_string()),
                    (Some(_), _) => (Mobility::OwnedIdle, "idle GI".to_string()),
                    (None, Some(r)) => {
                        owners.insert(
                            gi.id,
                            Owner {
                                vm: r.held.vm.clone(),
                                vm_moref: Some(r.held.vm_moref.clone()),
                                vgpu_type: Some(r.held.reservation.vgpu_type.clone()),
                            },
                        );
                        (
                            Mobility::Cold,
                            format!("reservation of VM {} (powered off)", r.held.vm),
                        )
                    }
                    (None, None) => (Mobility::Pinned, "unknown".to_string()),
                };
                let mob = if opts.pinned.contains(&(index, gi.id)) {
                    Mobility::Pinned
                } else {
                    mob
                };
                mobility.insert(gi.id, mob);
                labels.insert(gi.id, label);
            }
            out.gpus.push(FleetGpu {
                name: format!("{} GPU {}", h.host.name, g.report.index),
                host: h.host.name.clone(),
                state: state.clone(),
                mobility,
            });
            out.labels.push(labels);
            out.places.push(GpuPlace {
                host_index: hi,
                vcenter: h.vcenter,
                host: h.host.moref.value().to_string(),
                gpu_uuid: g.report.uuid.clone(),
            });
            out.owners.push(owners);
        }
    }
    out
}

/// `TYPE` or `TYPExN` (e.g. `grid_a100-4-20cx2`).
pub fn parse_fit(text: &str) -> Result<(String, u32), AdminError> {
    if let Some((name, n)) = text.rsplit_once(['x', 'X'])
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
    {
        let n: u32 = n
            .parse()
            .map_err(|_| AdminError::Usage(format!("{text:?}: the count after x is too large")))?;
        if n == 0 {
            return Err(AdminError::Usage(format!(
                "{text:?}: the count must be at least 1"
            )));
        }
        return Ok((name.to_string(), n));
    }
    Ok((text.to_string(), 1))
}

/// One move as printed.
#[derive(Debug, Clone, Serialize)]
pub struct MoveView {
    pub step: usize,
    pub kind: MoveKind,
    /// What the GI backs.
    pub what: String,
    pub profile: String,
    pub from_gpu: String,
    pub from: mig::Placement,
    pub to_gpu: String,
    pub to: mig::Placement,
    /// VMs of the type that fit after this move.
    pub fits_after: u32,
}

/// The answer of `vmig plan`.
#[derive(Debug, Clone, Serialize)]
pub struct PlanAnswer {
    pub vgpu_type: String,
    pub profile: String,
    pub model: String,
    pub wanted: u32,
    pub fits_before: u32,
    pub fits_after: Option<u32>,
    pub moves: Vec<MoveView>,
    /// The plan has the fewest moves possible.
    pub minimal: bool,
    /// Why there is no plan (a proof, or the search limit).
    pub no_plan: Option<String>,
    /// Why live moves (vMotion) are not offered, when `--allow live` was given: one
    /// sentence per vCenter or VM.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub live_not_offered: Vec<String>,
    /// Nothing is changed (no `--apply`).
    pub dry_run: bool,
    /// The planner's moves, for `--apply`.
    #[serde(skip)]
    pub raw: Vec<mig::defrag::Move>,
}

impl PlanAnswer {
    pub fn exit_code(&self) -> ExitCode {
        if self.no_plan.is_some() {
            ExitCode::NoCapacity
        } else {
            ExitCode::Ok
        }
    }

    pub fn render_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "plan{}: {}\u{d7} {} ({} on {}): {} fit now",
            if self.dry_run { " (dry run)" } else { "" },
            self.wanted,
            self.vgpu_type,
            self.profile,
            self.model,
            self.fits_before
        )?;
        for why in &self.live_not_offered {
            writeln!(out, "live moves: {why}")?;
        }
        if let Some(why) = &self.no_plan {
            return writeln!(out, "no plan: {why}");
        }
        if self.moves.is_empty() {
            return writeln!(out, "nothing to move: {} already fit", self.wanted);
        }
        for m in &self.moves {
            writeln!(
                out,
                "  {}. {:<8} {} {}: {} at {} -> {} at {}  ({} fit after)",
                m.step,
                kind_name(m.kind),
                m.what,
                m.profile,
                m.from_gpu,
                m.from,
                m.to_gpu,
                m.to,
                m.fits_after
            )?;
        }
        writeln!(
            out,
            "{} move{}, {} fit after{}",
            self.moves.len(),
            if self.moves.len() == 1 { "" } else { "s" },
            self.fits_after.unwrap_or(self.fits_before),
            if self.minimal {
                " (the fewest moves possible)"
            } else {
                " (greedy plan for a large fleet: not proven minimal)"
            }
        )
    }
}

fn kind_name(k: MoveKind) -> &'static str {
    match k {
        MoveKind::Relayout => "relayout",
        MoveKind::Cold => "cold",
        MoveKind::Live => "vmotion",
    }
}

/// Plan on `fleet` for `count` more VMs of `vtype`. The first model with a GI profile for the
/// type is planned on (a type names exactly one board).
pub fn answer(
    fleet: &Fleet,
    vtype: &VgpuType,
    count: u32,
    limits: DefragLimits,
) -> Result<PlanAnswer, AdminError> {
    let (model, profile): (&'static GpuModel, _) = vtype
        .gpu_models()
        .find_map(|m| vtype.gi_profile(m).map(|p| (m, p)))
        .ok_or_else(|| AdminError::Usage(format!("{vtype} names no MIG GI profile")))?;
    let mut a = PlanAnswer {
        vgpu_type: vtype.to_string(),
        profile: profile.name.to_string(),
        model: model.key.to_string(),
        wanted: count,
        fits_before: 0,
        fits_after: None,
        moves: Vec::new(),
        minimal: true,
        no_plan: None,
        live_not_offered: Vec::new(),
        dry_run: true,
        raw: Vec::new(),
    };
    match plan_defrag(&fleet.gpus, model, profile.id, count, limits) {
        Ok(plan) => {
            a.fits_before = plan.fits_before;
            a.fits_after = Some(plan.fits_after);
            a.minimal = plan.exact;
            a.raw = plan.moves.clone();
            a.moves = plan
                .moves
                .iter()
                .enumerate()
                .map(|(i, m)| MoveView {
                    step: i + 1,
                    kind: m.kind,
                    what: fleet.labels[m.origin_gpu]
                        .get(&m.gi)
                        .cloned()
                        .unwrap_or_default(),
                    profile: m.profile.clone(),
                    from_gpu: fleet.gpus[m.from_gpu].name.clone(),
                    from: m.from,
                    to_gpu: fleet.gpus[m.to_gpu].name.clone(),
                    to: m.to,
                    fits_after: m.fits_after,
                })
                .collect();
        }
        Err(e) => {
            a.fits_before = match &e {
                DefragError::Impossible { fits_before, .. }
                | DefragError::OverLimit { fits_before, .. } => *fits_before,
                DefragError::UnknownProfile { .. } => 0,
            };
            a.minimal = !matches!(e, DefragError::OverLimit { exact: false, .. });
            a.no_plan = Some(e.to_string());
        }
    }
    Ok(a)
}
