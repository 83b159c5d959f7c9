//! The host side of layouts: which GPUs a config selects, what each needs (a plan, a MIG mode
//! change, nothing), and the pure decisions behind `plan`, `apply` and `assert`.
//!
//! Everything here works on [`GpuView`]s — one read of each GPU taken before deciding — so the
//! decisions are made for every selected GPU before the first change, and the same code is
//! exercised by unit tests without NVML.
use std::collections::BTreeMap;

use mig::planner::{PlanOptions, PlanOutcome};
use mig::{DesiredGi, DesiredLayout, GpuInstanceId, GpuModel, MigState, Plan, PlanError};
use serde::Serialize;

use super::config::{ConfigError, Devices, Entry, EntryRef, LayoutFile, NamedConfig, Target};
use crate::gpu_selector::GpuSelector;
use crate::nvml::{MigMode, PciBusId};

/// What vmig read about one GPU before deciding anything.
#[derive(Debug, Clone)]
pub struct GpuView {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub pci_bus_id: Option<String>,
    /// NVML `pciDeviceId` (device id << 16 | vendor id).
    pub pci_device: Option<u32>,
    /// NVML `pciSubSystemId`.
    pub pci_subsystem: Option<u32>,
    pub model: Option<&'static GpuModel>,
    /// `None`: the GPU does not support MIG.
    pub mig_mode: Option<MigMode>,
    /// The layout, when MIG is currently enabled and the model is known.
    pub state: Option<MigState>,
    /// Who uses each in-use GI (`process 4242 (python)`, `VM vm-12 (vGPU grid_a100-3-20c)`).
    pub users: BTreeMap<GpuInstanceId, Vec<String>>,
}

impl GpuView {
    /// `GPU 0 (NVIDIA A100-PCIE-40GB, GPU-…)`.
    pub fn label(&self) -> String {
        format!("GPU {} ({}, {})", self.index, self.name, self.uuid)
    }

    fn pci_device_word(&self) -> Option<u32> {
        self.pci_device
            .or_else(|| self.model.map(GpuModel::pci_device_id_word))
    }

    /// Whether a `devices:` item names this GPU.
    pub fn is_named_by(&self, sel: &GpuSelector) -> bool {
        match sel {
            GpuSelector::Index(i) => *i == self.index,
            GpuSelector::Uuid(u) => u.eq_ignore_ascii_case(&self.uuid),
            GpuSelector::PciBusId(p) => self
                .pci_bus_id
                .as_deref()
                .and_then(PciBusId::parse)
                .is_some_and(|mine| mine == *p),
        }
    }

    /// Whether `entry` selects this GPU (its `devices` and its `device-filter`).
    pub fn is_selected_by(&self, entry: &Entry) -> bool {
        let named = match &entry.devices {
            Devices::All => true,
            Devices::List(l) => l.iter().any(|s| self.is_named_by(s)),
        };
        let filtered = entry.device_filter.is_empty()
            || self.pci_device_word().is_some_and(|d| {
                entry
                    .device_filter
                    .iter()
                    .any(|f| f.matches(d, self.pci_subsystem))
            });
        named && filtered
    }
}

/// The GPUs a config selects, each with the entry that selects it (the last matching entry
/// wins, which is where mig-parted, applying matching entries in order, also ends up).
/// `only` restricts to one GPU; it is an error if the config does not select it.
pub fn select<'c>(
    file: &LayoutFile,
    config: &'c NamedConfig,
    gpus: &[GpuView],
    only: Option<&GpuSelector>,
) -> Result<Vec<(usize, &'c Entry)>, ConfigError> {
    let mut out = Vec::new();
    for (pos, g) in gpus.iter().enumerate() {
        if only.is_some_and(|s| !g.is_named_by(s)) {
            continue;
        }
        if let Some(e) = config.entries.iter().rev().find(|e| g.is_selected_by(e)) {
            out.push((pos, e));
        }
    }
    if out.is_empty() {
        let on_host = gpus
            .iter()
            .map(|g| {
                format!(
                    "GPU {} {} (PCI device {})",
                    g.index,
                    g.name,
                    g.pci_device_word()
                        .map_or_else(|| "unknown".into(), |d| format!("0x{d:08X}"))
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let what = match only {
            Some(s) => format!("GPU {s} is not selected by config `{}`", config.name),
            None => format!("config `{}` selects no GPU on this host", config.name),
        };
        return Err(file.error(
            LayoutFile::config_path(&config.name),
            format!(
                "{what}; GPUs here: {}",
                if on_host.is_empty() {
                    "none".into()
                } else {
                    on_host
                }
            ),
        ));
    }
    Ok(out)
}

/// What a GPU needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Already as the config says.
    Satisfied,
    /// Steps will bring it there.
    Changes,
    /// Steps bring it as far as in-use instances allow (`--allow-partial`).
    Partial,
    /// In-use instances block the layout; refused without `--allow-partial`.
    Blocked,
    /// MIG must be enabled first (takes effect after a reset); the layout follows.
    EnableMig,
    /// MIG must be disabled (after destroying every instance); takes effect after a reset.
    DisableMig,
    /// A MIG mode change is already pending; reset the GPU, then apply again.
    ResetPending,
    /// Not a MIG GPU and selected by `devices: all`: left alone, as mig-parted does.
    Skipped,
    /// The layout cannot be applied to this GPU (reason given).
    Unreachable,
}

/// A step of a GPU plan, for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedStep {
    #[serde(flatten)]
    pub step: mig::Step,
    pub text: String,
    /// The GI id the modelled driver would give a new GI (the real driver decides).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_gi: Option<GpuInstanceId>,
}

/// An in-use GI that the layout would need to destroy or change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockedGi {
    pub gi: GpuInstanceId,
    pub profile: String,
    pub placement: mig::Placement,
    pub users: Vec<String>,
}

impl BlockedGi {
    /// `GI 3 (3g.20gb at 4:4)`, as plan and apply reports name it.
    pub fn label(&self) -> String {
        format!("GI {} ({} at {})", self.gi, self.profile, self.placement)
    }

    /// ` by VM-a, VM-b`, or nothing when no user is known.
    pub fn by_users(&self) -> String {
        if self.users.is_empty() {
            String::new()
        } else {
            format!(" by {}", self.users.join(", "))
        }
    }
}

/// Which MIG mode change a GPU needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeChange {
    Enable,
    Disable,
}

/// The decision for one GPU.
#[derive(Debug, Clone, Serialize)]
pub struct GpuPlan {
    pub gpu: u32,
    pub name: String,
    pub uuid: String,
    pub model: Option<String>,
    pub entry: EntryRef,
    pub mig_enabled: bool,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode_change: Option<ModeChange>,
    /// Steps to run now.
    pub steps: Vec<PlannedStep>,
    /// Steps that follow a pending MIG enable, planned from an empty GPU.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after_reset: Vec<PlannedStep>,
    /// In-use GIs that stand in the way.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocked: Vec<BlockedGi>,
    /// Desired GIs a partial plan leaves out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip)]
    pub plan: Option<Plan>,
    #[serde(skip)]
    pub before: Option<MigState>,
    #[serde(skip)]
    pub desired: Option<DesiredLayout>,
}

/// `3g.20gb@4` / `3g.20gb` with a CI split in brackets when not the default.
pub fn desired_label(model: &GpuModel, d: &DesiredGi) -> String {
    let Some(p) = model.gi_profile(d.profile) else {
        return format!("profile {}", d.profile);
    };
    let mut s = p.name.to_string();
    if let Some(pl) = d.placement {
        s.push_str(&format!("@{}", pl.start));
    }
    if !d.compute.is_empty() {
        let names: Vec<&str> = d
            .compute
            .iter()
            .map(|c| p.ci_profile(*c).map_or("?", |c| c.name))
            .collect();
        s.push_str(&format!(" [{}]", names.join(", ")));
    }
    s
}

fn planned_steps(before: &MigState, plan: &Plan) -> Vec<PlannedStep> {
    let texts = plan.describe(before);
    // Replay on a copy to learn the ids the modelled driver hands out.
    let mut scratch = before.clone();
    let mut out = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        let mut expected_gi = None;
        match step {
            mig::Step::CreateGi { profile, placement } => {
                expected_gi = scratch.create_gi(*profile, Some(*placement)).ok();
            }
            mig::Step::CreateCi {
                gi_placement,
                profile,
            } => {
                if let Some(g) = scratch.gi_at(*gi_placement).map(|g| g.id) {
                    let _ = scratch.create_ci(g, *profile, None);
                }
            }
            mig::Step::DestroyCi { gi, ci } => {
                let _ = scratch.destroy_ci(*gi, *ci);
            }
            mig::Step::DestroyGi { gi } => {
                let _ = scratch.destroy_gi(*gi);
            }
        }
        out.push(PlannedStep {
            step: step.clone(),
            text: texts.get(i).cloned().unwrap_or_else(|| step.to_string()),
            expected_gi,
        });
    }
    out
}

fn blocked_gis(view: &GpuView, state: &MigState, ids: &[GpuInstanceId]) -> Vec<BlockedGi> {
    let model = state.gpu_model();
    ids.iter()
        .filter_map(|id| state.gpu_instance(*id))
        .map(|g| BlockedGi {
            gi: g.id,
            profile: model
                .gi_profile(g.profile)
                .map_or_else(|| g.profile.to_string(), |p| p.name.to_string()),
            placement: g.placement,
            users: view.users.get(&g.id).cloned().unwrap_or_default(),
        })
        .collect()
}

/// Decide what `entry` needs on `view`. `file` resolves the entry for the GPU's model; its
/// errors (unknown profile for this model, layout does not fit) are returned, not planned.
pub fn plan_gpu(
    file: &LayoutFile,
    config: &str,
    entry: &Entry,
    view: &GpuView,
    allow_partial: bool,
) -> Result<GpuPlan, ConfigError> {
    let mut gp = GpuPlan {
        gpu: view.index,
        name: view.name.clone(),
        uuid: view.uuid.clone(),
        model: view.model.map(|m| m.key.to_string()),
        entry: EntryRef {
            config: config.to_string(),
            entry: entry.index,
            line: file.entry_line(config, entry.index),
        },
        mig_enabled: entry.mig_enabled,
        status: Status::Satisfied,
        mode_change: None,
        steps: Vec::new(),
        after_reset: Vec::new(),
        blocked: Vec::new(),
        dropped: Vec::new(),
        reason: None,
        plan: None,
        before: None,
        desired: None,
    };
    let Some(mode) = view.mig_mode else {
        if entry.mig_enabled {
            if matches!(entry.devices, Devices::All) {
                gp.status = Status::Skipped;
                gp.reason =
                    Some("does not support MIG; left alone (selected by `devices: all`)".into());
            } else {
                gp.status = Status::Unreachable;
                gp.reason = Some("does not support MIG, but the entry names it explicitly with `mig-enabled: true`".into());
            }
        }
        return Ok(gp);
    };
    if !entry.mig_enabled {
        plan_mig_off(&mut gp, view, mode);
        return Ok(gp);
    }
    let Some(model) = view.model else {
        gp.status = Status::Unreachable;
        gp.reason = Some(format!(
            "vmig does not know the MIG geometry of `{}`; it cannot plan a layout for it",
            view.name
        ));
        return Ok(gp);
    };
    let Target::Enabled(desired) = file.target_for(config, entry, model)? else {
        return Ok(gp);
    };
    gp.desired = Some(desired.clone());
    match (mode.current, mode.pending) {
        (false, pending) => {
            plan_mig_enable(&mut gp, view, model, &desired, pending);
            return Ok(gp);
        }
        (true, false) => {
            // A disable is pending: asking for enable again cancels it, no reset needed.
            gp.mode_change = Some(ModeChange::Enable);
        }
        (true, true) => {}
    }
    let Some(state) = view.state.clone() else {
        gp.status = Status::Unreachable;
        gp.reason = Some("the GPU's MIG state could not be read".into());
        return Ok(gp);
    };
    plan_changes(&mut gp, view, model, state, &desired, allow_partial);
    Ok(gp)
}

/// What a GPU whose entry says `mig-enabled: false` needs, by its current/pending MIG mode.
fn plan_mig_off(gp: &mut GpuPlan, view: &GpuView, mode: MigMode) {
    match (mode.current, mode.pending) {
        (false, false) => {}
        (false, true) => {
            // Cancelling a pending enable needs no reset.
            gp.status = Status::DisableMig;
            gp.mode_change = Some(ModeChange::Disable);
        }
        (true, false) => {
            gp.status = Status::ResetPending;
            gp.reason = Some(format!(
                "MIG disable is pending: {}",
                crate::error::how_to_apply_mig_mode(view.index)
            ));
        }
        (true, true) => {
            gp.status = Status::DisableMig;
            gp.mode_change = Some(ModeChange::Disable);
            if let Some(state) = &view.state {
                let in_use: Vec<GpuInstanceId> = state
                    .gpu_instances
                    .values()
                    .filter(|g| g.is_in_use())
                    .map(|g| g.id)
                    .collect();
                if !in_use.is_empty() {
                    gp.status = Status::Blocked;
                    gp.blocked = blocked_gis(view, state, &in_use);
                    gp.reason = Some("MIG cannot be disabled while GPU instances are in use; stop the VMs and processes first".into());
                    return;
                }
                match mig::plan(state, &DesiredLayout::default()) {
                    Ok(p) => {
                        gp.steps = planned_steps(state, &p);
                        gp.plan = Some(p);
                        gp.before = Some(state.clone());
                        gp.desired = Some(DesiredLayout::default());
                    }
                    Err(e) => {
                        gp.status = Status::Unreachable;
                        gp.reason = Some(e.to_string());
                    }
                }
            }
        }
    }
}

/// MIG is off (or its enable pending): enable it; the layout follows after the reset.
fn plan_mig_enable(
    gp: &mut GpuPlan,
    view: &GpuView,
    model: &'static GpuModel,
    desired: &DesiredLayout,
    pending: bool,
) {
    gp.status = if pending {
        Status::ResetPending
    } else {
        Status::EnableMig
    };
    if !pending {
        gp.mode_change = Some(ModeChange::Enable);
    }
    let empty = MigState::new(model);
    gp.reason = Some(format!(
        "MIG {} on this GPU; the layout is created by the next apply after the reset: {}",
        if pending {
            "enable is pending"
        } else {
            "is disabled: it will be enabled, which takes effect after a reset,"
        },
        crate::error::how_to_apply_mig_mode(view.index)
    ));
    match mig::plan(&empty, desired) {
        Ok(p) => gp.after_reset = planned_steps(&empty, &p),
        Err(e) => {
            gp.status = Status::Unreachable;
            gp.reason = Some(super::config::plan_error_text(model, &e));
        }
    }
}

/// MIG is on: the steps from the GPU's state to `desired`, keeping what is in use when the
/// strict plan is blocked (applied only with `allow_partial`).
fn plan_changes(
    gp: &mut GpuPlan,
    view: &GpuView,
    model: &'static GpuModel,
    state: MigState,
    desired: &DesiredLayout,
    allow_partial: bool,
) {
    gp.before = Some(state.clone());
    let strict = mig::planner::plan_with_options(&state, desired, PlanOptions::default());
    let outcome: PlanOutcome = match strict {
        Ok(o) => o,
        Err(PlanError::BlockedByInUse { gis, reason }) => {
            gp.blocked = blocked_gis(view, &state, &gis);
            gp.reason = Some(reason);
            match mig::planner::plan_with_options(
                &state,
                desired,
                PlanOptions {
                    allow_partial: true,
                },
            ) {
                Ok(o) => {
                    gp.status = if allow_partial {
                        Status::Partial
                    } else {
                        Status::Blocked
                    };
                    o
                }
                Err(e) => {
                    gp.status = Status::Unreachable;
                    gp.reason = Some(super::config::plan_error_text(model, &e));
                    return;
                }
            }
        }
        Err(e) => {
            gp.status = Status::Unreachable;
            gp.reason = Some(super::config::plan_error_text(model, &e));
            return;
        }
    };
    if !outcome.in_use_outside.is_empty() && gp.blocked.is_empty() {
        gp.blocked = blocked_gis(view, &state, &outcome.in_use_outside);
    }
    gp.dropped = outcome
        .dropped
        .iter()
        .map(|d| desired_label(model, d))
        .collect();
    gp.steps = planned_steps(&state, &outcome.plan);
    if gp.status == Status::Satisfied {
        gp.status = if outcome.plan.is_noop() && gp.mode_change.is_none() {
            Status::Satisfied
        } else {
            Status::Changes
        };
    }
    gp.plan = Some(outcome.plan);
}

/// Why a GPU does not match its entry, one line each; empty when it matches.
pub fn differences(gp: &GpuPlan, view: &GpuView) -> Vec<String> {
    let mut out = Vec::new();
    let mode = view.mig_mode;
    if !gp.mig_enabled {
        match mode {
            None
            | Some(MigMode {
                current: false,
                pending: false,
            }) => {}
            Some(m) => out.push(format!(
                "MIG mode is {} (pending {}); the config wants it disabled",
                on_off(m.current),
                on_off(m.pending)
            )),
        }
        return out;
    }
    match mode {
        None => {
            if gp.status != Status::Skipped {
                out.push("the GPU does not support MIG".into());
            }
            return out;
        }
        Some(m) if !m.current || !m.pending => {
            out.push(format!(
                "MIG mode is {} (pending {}); the config wants it enabled",
                on_off(m.current),
                on_off(m.pending)
            ));
            if !m.current {
                return out;
            }
        }
        Some(_) => {}
    }
    let (Some(model), Some(state), Some(desired)) = (view.model, &view.state, &gp.desired) else {
        if let Some(r) = &gp.reason {
            out.push(r.clone());
        }
        return out;
    };
    if desired.is_satisfied_by(state) {
        return out;
    }
    // Explain with a greedy pairing (pinned wants first); the verdict above is exact.
    let mut wants: Vec<&DesiredGi> = desired.gpu_instances.iter().collect();
    wants.sort_by_key(|d| d.placement.is_none());
    let mut have: Vec<&mig::GpuInstance> = state.gpu_instances.values().collect();
    let mut missing = Vec::new();
    for w in wants {
        let split = canonical(model, w);
        let pos = have.iter().position(|g| {
            g.profile == w.profile
                && w.placement.is_none_or(|p| p == g.placement)
                && split.as_ref().is_some_and(|s| *s == ci_split(g))
        });
        match pos {
            Some(i) => {
                have.remove(i);
            }
            None => missing.push(desired_label(model, w)),
        }
    }
    for m in missing {
        out.push(format!("missing GI {m}"));
    }
    for g in have {
        let p = model.gi_profile(g.profile);
        let cis: Vec<&str> = g
            .compute_instances
            .values()
            .map(|c| {
                p.and_then(|p| p.ci_profile(c.profile))
                    .map_or("?", |c| c.name)
            })
            .collect();
        out.push(format!(
            "unexpected GI {} ({} at {}, CIs [{}])",
            g.id,
            p.map_or("?", |p| p.name),
            g.placement,
            cis.join(", ")
        ));
    }
    out
}

fn on_off(b: bool) -> &'static str {
    if b { "enabled" } else { "disabled" }
}

fn canonical(model: &GpuModel, d: &DesiredGi) -> Option<Vec<mig::CiProfileId>> {
    let p = model.gi_profile(d.profile)?;
    let mut v = if d.compute.is_empty() {
        vec![p.default_ci_profile().id]
    } else {
        d.compute.clone()
    };
    v.sort();
    Some(v)
}

fn ci_split(g: &mig::GpuInstance) -> Vec<mig::CiProfileId> {
    let mut v: Vec<_> = g.compute_instances.values().map(|c| c.profile).collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::builtin::default_layouts;

    fn view(
        index: u32,
        model: &'static GpuModel,
        mode: Option<(bool, bool)>,
        state: Option<MigState>,
    ) -> GpuView {
        GpuView {
            index,
            name: model.nvml_name.to_string(),
            uuid: format!("GPU-{index:08x}-0000-0000-0000-000000000000"),
            pci_bus_id: Some(format!("00000000:{:02X}:00.0", 0x3b + index)),
            pci_device: Some(model.pci_device_id_word()),
            pci_subsystem: None,
            model: Some(model),
            mig_mode: mode.map(|(current, pending)| MigMode { current, pending }),
            state,
            users: BTreeMap::new(),
        }
    }

    #[test]
    fn selection_uses_filters_indices_uuids_and_last_entry_wins() {
        let a100 = GpuModel::by_key("a100-pcie-40gb").unwrap();
        let h100 = GpuModel::by_key("h100-sxm5-80gb").unwrap();
        let gpus = vec![
            view(0, a100, Some((true, true)), None),
            view(1, h100, Some((true, true)), None),
        ];
        let file = default_layouts().unwrap();
        let cfg = file.config(Some("all-balanced")).unwrap();
        let sel = select(&file, cfg, &gpus, None).unwrap();
        assert_eq!(sel.len(), 2);
        assert!(
            sel[0]
                .1
                .device_filter
                .iter()
                .any(|f| f.device == 0x20F1_10DE)
        );
        assert!(
            sel[1]
                .1
                .device_filter
                .iter()
                .any(|f| f.device == 0x2330_10DE)
        );

        let f = LayoutFile::parse(
            "t",
            "version: v1\nmig-configs:\n  c:\n    - devices: all\n      mig-enabled: false\n    - devices: [\"GPU-00000001-0000-0000-0000-000000000000\"]\n      mig-enabled: true\n      mig-devices: {}\n",
        )
        .unwrap();
        let c = f.config(None).unwrap();
        let sel = select(&f, c, &gpus, None).unwrap();
        assert!(!sel[0].1.mig_enabled);
        assert!(sel[1].1.mig_enabled);
        let only = select(&f, c, &gpus, Some(&GpuSelector::Index(1))).unwrap();
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].0, 1);
    }

    #[test]
    fn mig_off_gpu_plans_enable_then_layout_after_reset() {
        let a100 = GpuModel::by_key("a100-pcie-40gb").unwrap();
        let file = default_layouts().unwrap();
        let cfg = file.config(Some("seed-mixed")).unwrap();
        let v = view(0, a100, Some((false, false)), None);
        let gp = plan_gpu(&file, &cfg.name, &cfg.entries[0], &v, false).unwrap();
        assert_eq!(gp.status, Status::EnableMig);
        assert_eq!(gp.mode_change, Some(ModeChange::Enable));
        assert_eq!(
            gp.after_reset
                .iter()
                .filter(|s| matches!(s.step, mig::Step::CreateGi { .. }))
                .count(),
            4
        );
    }
}
