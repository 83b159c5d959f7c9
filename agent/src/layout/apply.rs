//! `vmig-agent apply`: bring the GPUs to a layout — safe (nothing in use is destroyed
//! unless `--allow-partial` keeps it), idempotent, and rolled back per GPU on failure. The
//! daemon enforces its configured layout through the same [`apply`].
use serde::Serialize;

use super::config::{Entry, LayoutFile};
use super::error::LayoutError;
use super::exec::{self, Execution, NvmlBackend};
use super::host::{self, GpuPlan, GpuView, ModeChange, Status};
use super::plan::{ApplyOptions, PlanReport, emit_json, plan_all, render_plan, status_word};
use super::read::{LayoutSelection, load, read_host, read_view};
use crate::error::{AgentError, ExitCode};
use crate::nvml::{Driver, Gpu};
use crate::operations as ops;

/// `vmig-agent apply`, and the daemon's layout enforcement: bring every GPU the layout
/// selects to it, one GPU after the other, refusing before the first change when one cannot
/// get there. The report goes to `out`, also on error (what was done and rolled back).
/// Idempotent: when every GPU already matches, the report says "nothing to do".
pub fn apply(
    driver: &Driver,
    layout: &LayoutSelection,
    options: &ApplyOptions,
    json: bool,
    out: &mut String,
) -> Result<(), LayoutError> {
    let file = load(layout)?;
    apply_file(driver, &file, layout, options, json, out)
}

/// [`apply`] with the layout file already read: the daemon's desired layouts from vCenter
/// arrive as text (`daemon/reconcile.rs`). `layout.file` is not read again.
pub fn apply_file(
    driver: &Driver,
    file: &LayoutFile,
    layout: &LayoutSelection,
    options: &ApplyOptions,
    json: bool,
    out: &mut String,
) -> Result<(), LayoutError> {
    let (gpus, views) = read_host(driver)?;
    let (name, plans) = plan_all(file, layout, &views, options.allow_partial)?;
    refuse_stuck(file, &name, &plans, &views, options, json, out)?;
    let mut results = Vec::new();
    let mut failure = None;
    for (pos, p) in &plans {
        let r = apply_gpu(file, &name, &gpus[*pos], p, options.allow_partial);
        if !json {
            render_applied(out, &views[*pos], &r);
        }
        let failed = r.failed.clone().map(|msg| LayoutError::Failed {
            message: format!(
                "{} failed: {msg}; GPUs after it in the config were not touched",
                views[*pos].label()
            ),
            exit_code: r.exit_code,
        });
        results.push(r);
        if failed.is_some() {
            failure = failed;
            break;
        }
    }
    if json {
        #[derive(Serialize)]
        struct ApplyReport<'a> {
            config: &'a str,
            file: &'a str,
            gpus: &'a [Applied],
        }
        emit_json(
            out,
            &ApplyReport {
                config: &name,
                file: file.origin(),
                gpus: &results,
            },
        );
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Refuse before the first change if any selected GPU cannot get its layout, reporting the
/// plans of those that cannot (all plans with `--json`).
fn refuse_stuck(
    file: &LayoutFile,
    name: &str,
    plans: &[(usize, GpuPlan)],
    views: &[GpuView],
    options: &ApplyOptions,
    json: bool,
    out: &mut String,
) -> Result<(), LayoutError> {
    let stuck: Vec<&(usize, GpuPlan)> = plans
        .iter()
        .filter(|(_, p)| matches!(p.status, Status::Blocked | Status::Unreachable))
        .filter(|(_, p)| {
            !(options.allow_partial
                && p.status == Status::Blocked
                && p.mode_change == Some(ModeChange::Disable))
        })
        .collect();
    if stuck.is_empty() {
        return Ok(());
    }
    if json {
        emit_json(
            out,
            &PlanReport {
                config: name,
                file: file.origin(),
                gpus: plans.iter().map(|(_, p)| p).collect(),
            },
        );
    } else {
        for (pos, p) in &stuck {
            render_plan(out, &views[*pos], p);
        }
    }
    let hint = if stuck.iter().any(|(_, p)| p.status == Status::Blocked) {
        "; stop what uses them, or pass --allow-partial to apply the rest"
    } else {
        ""
    };
    Err(LayoutError::Refused(format!(
        "nothing was changed: {}{hint}",
        stuck
            .iter()
            .map(|(pos, p)| format!("{} is {}", views[*pos].label(), status_word(p.status)))
            .collect::<Vec<_>>()
            .join("; ")
    )))
}

/// What `apply` did on one GPU.
#[derive(Debug, Serialize)]
struct Applied {
    gpu: u32,
    uuid: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    done: Vec<exec::DoneStep>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollback: Option<exec::Rollback>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    blocked: Vec<host::BlockedGi>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dropped: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    /// Exit code of the failure, when `failed` is set.
    #[serde(skip)]
    exit_code: ExitCode,
}

impl Applied {
    fn new(p: &GpuPlan, status: &'static str) -> Self {
        Applied {
            gpu: p.gpu,
            uuid: p.uuid.clone(),
            status,
            done: Vec::new(),
            failed: None,
            rollback: None,
            blocked: Vec::new(),
            dropped: Vec::new(),
            message: None,
            exit_code: ExitCode::Ok,
        }
    }

    fn fail(mut self, e: &AgentError) -> Self {
        self.status = "failed";
        self.failed = Some(e.to_string());
        self.exit_code = e.exit_code();
        self
    }
}

fn render_applied(out: &mut String, view: &GpuView, r: &Applied) {
    out.push_str(&format!("{}: {}\n", view.label(), r.status));
    for d in &r.done {
        out.push_str(&format!("  done: {}\n", d.text));
    }
    for b in &r.blocked {
        out.push_str(&format!("  kept in use: {}{}\n", b.label(), b.by_users()));
    }
    if !r.dropped.is_empty() {
        out.push_str(&format!("  left out: {}\n", r.dropped.join(", ")));
    }
    if let Some(f) = &r.failed {
        out.push_str(&format!("  FAILED: {f}\n"));
    }
    if let Some(rb) = &r.rollback {
        for u in &rb.undone {
            out.push_str(&format!("  rolled back: {u}\n"));
        }
        for u in &rb.failed {
            out.push_str(&format!("  could NOT roll back: {u}\n"));
        }
        out.push_str(if rb.restored {
            "  the GPU is back in its layout from before the apply\n"
        } else {
            "  the GPU is NOT in its layout from before the apply; it is now:\n"
        });
        if !rb.restored {
            match &rb.state_now {
                Some(s) => {
                    for line in layout_lines(s) {
                        out.push_str(&format!("    {line}\n"));
                    }
                }
                None => out.push_str("    (could not be read)\n"),
            }
        }
    }
    if let Some(m) = &r.message {
        out.push_str(&format!("  {m}\n"));
    }
}

/// `GI 1: 3g.20gb at 4:4, CIs [3g.20gb at 0:3]` per GI.
pub fn layout_lines(s: &mig::MigState) -> Vec<String> {
    let model = s.try_gpu_model();
    let gi_name = |p: mig::GiProfileId| {
        model
            .and_then(|m| m.gi_profile(p))
            .map_or_else(|| p.to_string(), |p| p.name.to_string())
    };
    if s.gpu_instances.is_empty() {
        return vec!["no GPU instances".into()];
    }
    s.gpu_instances
        .values()
        .map(|g| {
            let cis: Vec<String> = g
                .compute_instances
                .values()
                .map(|c| {
                    let n = model
                        .and_then(|m| m.gi_profile(g.profile))
                        .and_then(|p| p.ci_profile(c.profile))
                        .map_or_else(|| c.profile.to_string(), |c| c.name.to_string());
                    format!("CI {} {n} at {}", c.id, c.placement)
                })
                .collect();
            format!(
                "GI {}: {} at {}, [{}]",
                g.id,
                gi_name(g.profile),
                g.placement,
                cis.join(", ")
            )
        })
        .collect()
}

fn mode_guidance(gpu: u32) -> String {
    format!(
        "to make it take effect: {}; then run the same apply again to create the layout",
        crate::error::how_to_apply_mig_mode(gpu)
    )
}

/// Apply one GPU's plan.
fn apply_gpu(
    file: &LayoutFile,
    config: &str,
    gpu: &Gpu<'_>,
    p: &GpuPlan,
    allow_partial: bool,
) -> Applied {
    let g = gpu.index();
    match p.status {
        Status::Satisfied => {
            let mut r = Applied::new(p, "nothing to do");
            r.message = Some("already as configured".into());
            r
        }
        Status::Skipped => {
            let mut r = Applied::new(p, "skipped");
            r.message = p.reason.clone();
            r
        }
        Status::ResetPending => {
            let mut r = Applied::new(p, "pending reset");
            r.message = Some(format!(
                "a MIG mode change is pending; {}",
                mode_guidance(g)
            ));
            r
        }
        Status::Blocked | Status::Unreachable => {
            // Only a blocked MIG disable under --allow-partial gets here: leave the GPU as is.
            let mut r = Applied::new(p, "left as is");
            r.blocked = p.blocked.clone();
            r.message = p.reason.clone();
            r
        }
        Status::EnableMig => enable_mig(file, config, gpu, p, allow_partial),
        Status::DisableMig => disable_mig(gpu, p),
        Status::Changes | Status::Partial => apply_changes(gpu, p),
    }
}

/// Enable MIG; where it takes effect at once (e.g. Hopper), go on with the layout now.
fn enable_mig(
    file: &LayoutFile,
    config: &str,
    gpu: &Gpu<'_>,
    p: &GpuPlan,
    allow_partial: bool,
) -> Applied {
    match ops::set_mig_mode(gpu, true) {
        Err(e) => Applied::new(p, "failed").fail(&e),
        Ok(change) if change.mode.current => {
            let fresh = read_view(gpu).map(|v| {
                let entry = file
                    .config(Some(config))
                    .ok()
                    .and_then(|c| c.entries.get(p.entry.entry).cloned());
                (v, entry)
            });
            match fresh {
                Ok((v, Some(entry))) => {
                    continue_after_enable(file, config, gpu, p, &entry, &v, allow_partial)
                }
                Ok((_, None)) => Applied::new(p, "mig enabled"),
                Err(e) => Applied::new(p, "failed").fail(&e),
            }
        }
        Ok(_) => {
            let mut r = Applied::new(p, "mig enable pending");
            r.message = Some(format!(
                "MIG mode enable requested; {}",
                mode_guidance(gpu.index())
            ));
            r
        }
    }
}

/// MIG took effect at once: plan the GPU again as it is now and apply that.
fn continue_after_enable(
    file: &LayoutFile,
    config: &str,
    gpu: &Gpu<'_>,
    p: &GpuPlan,
    entry: &Entry,
    view: &GpuView,
    allow_partial: bool,
) -> Applied {
    match host::plan_gpu(file, config, entry, view, allow_partial) {
        Ok(np)
            if matches!(
                np.status,
                Status::Changes | Status::Partial | Status::Satisfied
            ) =>
        {
            let mut r = apply_gpu(file, config, gpu, &np, allow_partial);
            r.message = Some(format!(
                "MIG enabled (took effect at once); {}",
                r.message.unwrap_or_default()
            ));
            r
        }
        Ok(np) => {
            let mut r = Applied::new(p, "mig enabled");
            r.message = Some(format!(
                "MIG enabled; layout not applied: {}",
                np.reason.unwrap_or_default()
            ));
            r
        }
        Err(e) => {
            let mut r = Applied::new(p, "failed");
            r.failed = Some(e.to_string());
            r.exit_code = ExitCode::Usage;
            r
        }
    }
}

/// Destroy what the plan says (if anything), then ask for MIG off.
fn disable_mig(gpu: &Gpu<'_>, p: &GpuPlan) -> Applied {
    let mut r = Applied::new(p, "mig disable pending");
    if let (Some(plan), Some(before)) = (&p.plan, &p.before) {
        let ex = exec::execute(&mut NvmlBackend::new(gpu), before, plan);
        if fill_execution(&mut r, ex) {
            return r;
        }
    }
    match ops::set_mig_mode(gpu, false) {
        Ok(change) if !change.mode.current => {
            r.status = "mig disabled";
            r.message = Some("MIG mode disabled".into());
        }
        Ok(_) => {
            r.message = Some(format!(
                "MIG mode disable requested; it takes effect after a reset: {}",
                crate::error::how_to_apply_mig_mode(gpu.index())
            ));
        }
        Err(e) => r = r.fail(&e),
    }
    r
}

/// Run the plan's steps (all, or with `--allow-partial` those next to in-use instances), then
/// read the GPU back.
fn apply_changes(gpu: &Gpu<'_>, p: &GpuPlan) -> Applied {
    let mut r = Applied::new(
        p,
        if p.status == Status::Partial {
            "partially applied"
        } else {
            "applied"
        },
    );
    r.blocked = p.blocked.clone();
    r.dropped = p.dropped.clone();
    if p.mode_change == Some(ModeChange::Enable)
        && let Err(e) = ops::set_mig_mode(gpu, true)
    {
        return r.fail(&e);
    }
    let (Some(plan), Some(before)) = (&p.plan, &p.before) else {
        return r;
    };
    let ex = exec::execute(&mut NvmlBackend::new(gpu), before, plan);
    if fill_execution(&mut r, ex) {
        return r;
    }
    // Read back: the GPU must now be the layout (or, partially, as planned).
    if p.status == Status::Changes
        && let Some(desired) = &p.desired
    {
        match read_view(gpu) {
            Ok(v) if v.state.as_ref().is_some_and(|s| desired.is_satisfied_by(s)) => {
                r.message = Some("the GPU now matches the layout".into());
            }
            Ok(_) => {
                r.message = Some(
                    "warning: the GPU does not match the layout after applying; run `vmig-agent assert` for the differences".into(),
                );
            }
            Err(e) => r.message = Some(format!("warning: could not read the GPU back: {e}")),
        }
    }
    r
}

/// Copy an execution into the report; true when it failed.
fn fill_execution(r: &mut Applied, ex: Execution) -> bool {
    r.done = ex.done;
    match ex.failed {
        Some((i, text, e)) => {
            r.status = if ex.rollback.as_ref().is_some_and(|rb| rb.restored) {
                "rolled back"
            } else {
                "failed"
            };
            r.failed = Some(format!("step {} ({text}): {e}", i + 1));
            r.exit_code = e.exit_code;
            r.rollback = ex.rollback;
            true
        }
        None => false,
    }
}
