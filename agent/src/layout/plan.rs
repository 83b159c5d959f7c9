//! `vmig-agent plan`: what `apply` would do, per GPU, without changing anything; and the plan
//! rendering that `apply` reuses when it refuses.
use serde::Serialize;

use super::config::LayoutFile;
use super::error::LayoutError;
use super::host::{self, GpuPlan, GpuView, ModeChange, Status};
use super::read::{LayoutSelection, load, read_host};
use crate::nvml::Driver;

/// How `apply` (and `plan`, which shows what it would do) treats instances in use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Where in-use instances block the layout, keep them and apply the rest instead of
    /// refusing the whole layout.
    pub allow_partial: bool,
}

/// The plans for every GPU the config selects. Validation errors abort before any plan.
pub fn plan_all(
    file: &LayoutFile,
    args: &LayoutSelection,
    views: &[GpuView],
    allow_partial: bool,
) -> Result<(String, Vec<(usize, GpuPlan)>), LayoutError> {
    let config = file.config(args.config.as_deref())?;
    let selected = host::select(file, config, views, args.gpu.as_ref())?;
    let mut plans = Vec::new();
    for (pos, entry) in selected {
        plans.push((
            pos,
            host::plan_gpu(file, &config.name, entry, &views[pos], allow_partial)?,
        ));
    }
    Ok((config.name.clone(), plans))
}

#[derive(Serialize)]
pub(super) struct PlanReport<'a> {
    pub config: &'a str,
    pub file: &'a str,
    pub gpus: Vec<&'a GpuPlan>,
}

/// `vmig-agent plan`: the steps [`apply`](fn@super::apply) would take with `options`, appended
/// to `out`; `Err` when a GPU is blocked or unreachable.
pub fn plan(
    driver: &Driver,
    layout: &LayoutSelection,
    options: &ApplyOptions,
    json: bool,
    out: &mut String,
) -> Result<(), LayoutError> {
    let file = load(layout)?;
    let (_, views) = read_host(driver)?;
    let (name, plans) = plan_all(&file, layout, &views, options.allow_partial)?;
    if json {
        emit_json(
            out,
            &PlanReport {
                config: &name,
                file: file.origin(),
                gpus: plans.iter().map(|(_, p)| p).collect(),
            },
        );
    } else {
        out.push_str(&format!("config `{name}` from {}\n", file.origin()));
        for (pos, p) in &plans {
            render_plan(out, &views[*pos], p);
        }
    }
    let stuck: Vec<String> = plans
        .iter()
        .filter(|(_, p)| matches!(p.status, Status::Blocked | Status::Unreachable))
        .map(|(pos, p)| format!("{} is {}", views[*pos].label(), status_word(p.status)))
        .collect();
    if stuck.is_empty() {
        Ok(())
    } else {
        Err(LayoutError::Refused(format!(
            "the layout cannot be applied as is: {}",
            stuck.join("; ")
        )))
    }
}

pub(super) fn status_word(s: Status) -> &'static str {
    match s {
        Status::Satisfied => "already as configured",
        Status::Changes => "to be changed",
        Status::Partial => "to be changed partially (in-use instances kept)",
        Status::Blocked => "blocked by instances in use (see --allow-partial)",
        Status::EnableMig => "to get MIG enabled (takes effect after a reset)",
        Status::DisableMig => "to get MIG disabled (takes effect after a reset)",
        Status::ResetPending => "waiting for a reset of its pending MIG mode change",
        Status::Skipped => "skipped (no MIG support)",
        Status::Unreachable => "unreachable",
    }
}

fn header(out: &mut String, view: &GpuView, p: &GpuPlan) {
    out.push_str(&format!(
        "{}: entry {} of `{}`{}: {}\n",
        view.label(),
        p.entry.entry + 1,
        p.entry.config,
        p.entry
            .line
            .map(|l| format!(" (line {l})"))
            .unwrap_or_default(),
        status_word(p.status)
    ));
}

fn render_steps(out: &mut String, indent: &str, steps: &[host::PlannedStep]) {
    for (i, s) in steps.iter().enumerate() {
        let expected = s
            .expected_gi
            .map(|g| format!(" (expected GI {g})"))
            .unwrap_or_default();
        out.push_str(&format!("{indent}{}. {}{expected}\n", i + 1, s.text));
    }
}

pub(super) fn render_plan(out: &mut String, view: &GpuView, p: &GpuPlan) {
    header(out, view, p);
    for b in &p.blocked {
        out.push_str(&format!(
            "  blocked: {} is in use{}\n",
            b.label(),
            b.by_users()
        ));
    }
    if let Some(r) = &p.reason {
        out.push_str(&format!("  why: {r}\n"));
    }
    match p.mode_change {
        Some(ModeChange::Enable) => out.push_str("  enable MIG mode\n"),
        Some(ModeChange::Disable) if p.steps.is_empty() => out.push_str("  disable MIG mode\n"),
        _ => {}
    }
    if p.status == Status::Blocked && !p.steps.is_empty() {
        out.push_str("  with --allow-partial these steps would run:\n");
        render_steps(out, "    ", &p.steps);
    } else {
        render_steps(out, "  ", &p.steps);
    }
    if p.mode_change == Some(ModeChange::Disable) && !p.steps.is_empty() {
        out.push_str(&format!("  {}. disable MIG mode\n", p.steps.len() + 1));
    }
    if !p.dropped.is_empty() {
        out.push_str(&format!(
            "  left out (no room next to in-use instances): {}\n",
            p.dropped.join(", ")
        ));
    }
    if !p.after_reset.is_empty() {
        out.push_str("  after the reset, apply again to run:\n");
        render_steps(out, "    ", &p.after_reset);
    }
}

pub(super) fn emit_json<T: Serialize + ?Sized>(out: &mut String, v: &T) {
    out.push_str(&serde_json::to_string_pretty(v).unwrap_or_default());
    out.push('\n');
}
