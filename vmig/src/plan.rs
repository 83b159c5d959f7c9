//! `vmig plan --fit TYPE[xN]`: the fewest moves of existing GIs that make N more VMs of a
//! MIG-backed vGPU type fit, planned by `mig::defrag` on the analysed inventory. Dry run only:
//! executing the moves needs the assign journal (issue 15).
//!
//! What may move (docs/admin-guide.md, "Defragmentation", states the vSphere rules):
//! - a reservation of a powered-off VM (`vmig.reservation` counted on a GPU): cold, anywhere
//!   on a GPU of the same model;
//! - a GI backing a running VM: live (vMotion) to a GPU of the same model on another host,
//!   only with `--allow live`;
//! - an idle GI (not in use, no VM): re-laid out on its own GPU;
//! - anything else (in use without a VM the report names) is pinned.
//!
//! Only GPUs that can take the type count: MIG on, a fresh agent report, a known model.
use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use mig::defrag::{DefragError, DefragLimits, FleetGpu, Mobility, MoveKind, plan_defrag};
use mig::{GpuInstanceId, GpuModel, VgpuType};

use crate::Connection;
use crate::analysis::{AgentStatus, Analysis};
use crate::cli::{analyse, stdout_error, write_json};
use crate::error::AdminError;
use crate::exit::ExitCode;
use crate::inventory::{Progress, Scope};

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
    /// Execute the plan (not implemented yet: it needs the assign journal of issue 15).
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
        return Err(AdminError::Usage(
            "vmig plan --apply is not implemented yet: it needs the assign journal of issue 15; run without --apply for the dry-run plan".into(),
        ));
    }
    let scope = Scope {
        datacenter: a.datacenter,
        cluster: a.cluster,
    };
    let analysis = analyse(conns, &scope, progress).await?;
    let limits = DefragLimits {
        allow_cold: a.allow.contains(&Allow::Cold),
        allow_live: a.allow.contains(&Allow::Live),
        max_moves: a.max_moves,
        ..DefragLimits::default()
    };
    let answer = answer(&fleet(&analysis), &vtype, count, limits)?;
    if json {
        write_json(out, &answer)?;
    } else {
        answer.render_text(out).map_err(stdout_error)?;
    }
    Ok(answer.exit_code())
}

/// The fleet `mig::defrag` plans on, with a label per GI for the output.
#[derive(Debug)]
pub struct Fleet {
    pub gpus: Vec<FleetGpu>,
    /// Per GPU: GI id → what it backs (`VM web-1 (running)`, `reservation of VM db-2`).
    pub labels: Vec<BTreeMap<GpuInstanceId, String>>,
}

/// Every usable GPU of the analysis (MIG on, fresh report, known model) with the mobility of
/// its GIs.
pub fn fleet(analysis: &Analysis) -> Fleet {
    let mut out = Fleet {
        gpus: Vec::new(),
        labels: Vec::new(),
    };
    for h in &analysis.hosts {
        if h.status != AgentStatus::Ok {
            continue;
        }
        for g in &h.gpus {
            let (Some(_), Some(state)) = (g.model, &g.state) else {
                continue;
            };
            if !g.mig_enabled() {
                continue;
            }
            let mut mobility = BTreeMap::new();
            let mut labels = BTreeMap::new();
            for gi in state.gpu_instances.values() {
                let reported = g.report.gpu_instances.iter().find(|r| r.gi_id == gi.id);
                let reservation = g
                    .reservations
                    .iter()
                    .find(|r| r.placement == Some(gi.placement));
                let (mob, label) = match (reported, reservation) {
                    (Some(r), _) if r.in_use || gi.is_in_use() => match &r.vm {
                        Some(vm) => (Mobility::Live, format!("VM {vm} (running)")),
                        None => (Mobility::Pinned, "in use".to_string()),
                    },
                    (Some(_), _) => (Mobility::OwnedIdle, "idle GI".to_string()),
                    (None, Some(r)) => (
                        Mobility::Cold,
                        format!("reservation of VM {} (powered off)", r.held.vm),
                    ),
                    (None, None) => (Mobility::Pinned, "unknown".to_string()),
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
    /// Always true: `--apply` is not implemented yet.
    pub dry_run: bool,
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
            "plan (dry run): {}\u{d7} {} ({} on {}): {} fit now",
            self.wanted, self.vgpu_type, self.profile, self.model, self.fits_before
        )?;
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
        dry_run: true,
    };
    match plan_defrag(&fleet.gpus, model, profile.id, count, limits) {
        Ok(plan) => {
            a.fits_before = plan.fits_before;
            a.fits_after = Some(plan.fits_after);
            a.minimal = plan.exact;
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
