//! `vmig-agent plan | apply | assert | export`: the layout commands. Dispatched from `main`
//! (like the daemon) because they print their own reports and use their own exit codes:
//! 0 done or matching, 2 bad config or arguments, 3 refused / blocked / does not match,
//! 4 NVML failure (after rolling back the GPU that failed).
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mig::GpuInstanceId;
use serde::Serialize;

use super::builtin;
use super::config::{ConfigError, LayoutFile};
use super::exec::{self, Execution, NvmlBackend};
use super::host::{self, GpuPlan, GpuView, ModeChange, Status};
use crate::cli::{Cli, Command};
use crate::error::{AgentError, EXIT_OK, EXIT_STATE, EXIT_USAGE, InstanceUser};
use crate::gpu_selector::GpuSelector;
use crate::nvml::{Driver, Gpu};
use crate::operations as ops;

/// Which layout to use.
#[derive(Debug, Clone, Args)]
pub struct LayoutArgs {
    /// Layout file in mig-parted's v1 format (`-` for stdin); the built-in vmig-layouts.yaml when omitted.
    #[arg(short = 'f', long = "config-file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Named config in the file (may be omitted when the file has only one).
    #[arg(short = 'c', long = "selected-config", value_name = "NAME")]
    pub config: Option<String>,
    /// Only this GPU (index, GPU-… UUID or PCI bus id); the config must select it.
    #[arg(short = 'i', long = "id", value_name = "GPU")]
    pub gpu: Option<GpuSelector>,
}

/// `plan`.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub layout: LayoutArgs,
    /// Plan as `apply --allow-partial` would: keep in-use instances, apply the rest.
    #[arg(long)]
    pub allow_partial: bool,
}

/// `apply`.
#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub layout: LayoutArgs,
    /// Where in-use instances block the layout, keep them and apply the rest instead of refusing.
    #[arg(long)]
    pub allow_partial: bool,
}

/// `assert`.
#[derive(Debug, Clone, Args)]
pub struct AssertArgs {
    #[command(flatten)]
    pub layout: LayoutArgs,
}

/// `export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Only this GPU.
    #[arg(short = 'i', long = "id", value_name = "GPU")]
    pub gpu: Option<GpuSelector>,
    /// Name of the exported config.
    #[arg(
        short = 'l',
        long = "config-label",
        default_value = "current",
        value_name = "NAME"
    )]
    pub label: String,
    /// Name GPUs by UUID instead of index (vmig extension; mig-parted cannot read it).
    #[arg(long)]
    pub by_uuid: bool,
}

/// Why a layout command failed.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// Refused before any change (blocked, unreachable); the report says why.
    #[error("{0}")]
    Refused(String),
    /// `assert` found differences.
    #[error("{0}")]
    Mismatch(String),
    /// A step failed; the report says what was rolled back.
    #[error("{message}")]
    Failed { message: String, exit_code: i32 },
}

impl LayoutError {
    /// The process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            LayoutError::Config(_) | LayoutError::Read { .. } => EXIT_USAGE,
            LayoutError::Agent(e) => e.exit_code(),
            LayoutError::Refused(_) | LayoutError::Mismatch(_) => EXIT_STATE,
            LayoutError::Failed { exit_code, .. } => *exit_code,
        }
    }
}

/// Run a layout command if `cli` is one; `None` for every other command.
pub fn dispatch(cli: &Cli) -> Option<ExitCode> {
    let mut out = String::new();
    let result = match &cli.command {
        Command::Plan(a) => with_driver(cli, |d| run_plan(d, a, cli.json, &mut out)),
        Command::Apply(a) => with_driver(cli, |d| run_apply(d, a, cli.json, &mut out)),
        Command::Assert(a) => with_driver(cli, |d| run_assert(d, a, cli.json, &mut out)),
        Command::Export(a) => with_driver(cli, |d| run_export(d, a, cli.json, &mut out)),
        _ => return None,
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
    Some(match result {
        Ok(()) => ExitCode::from(EXIT_OK as u8),
        Err(e) => {
            eprintln!("vmig-agent: error: {e}");
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    })
}

fn with_driver(
    cli: &Cli,
    f: impl FnOnce(&Driver) -> Result<(), LayoutError>,
) -> Result<(), LayoutError> {
    let driver = crate::cli::load_driver(cli)?;
    f(&driver)
}

/// Read the layout file the arguments name (or the built-in one).
pub fn load(args: &LayoutArgs) -> Result<LayoutFile, LayoutError> {
    match &args.file {
        None => Ok(builtin::default_layouts()?),
        Some(p) if p.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| LayoutError::Read {
                    path: "<stdin>".into(),
                    source,
                })?;
            Ok(LayoutFile::parse("<stdin>", &text)?)
        }
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| LayoutError::Read {
                path: p.display().to_string(),
                source,
            })?;
            Ok(LayoutFile::parse(&p.display().to_string(), &text)?)
        }
    }
}

/// One read of every GPU: the handles and what the layout code needs to know about each.
pub fn read_host(driver: &Driver) -> Result<(Vec<Gpu<'_>>, Vec<GpuView>), AgentError> {
    let gpus = driver.gpus().map_err(|e| AgentError::Nvml {
        gpu: None,
        operation: "list GPUs".into(),
        source: e,
    })?;
    let mut views = Vec::with_capacity(gpus.len());
    for gpu in &gpus {
        views.push(read_view(gpu)?);
    }
    Ok((gpus, views))
}

/// Read one GPU.
pub fn read_view(gpu: &Gpu<'_>) -> Result<GpuView, AgentError> {
    let s = crate::observe::observe_gpu(gpu)
        .map_err(|e| AgentError::nvml(gpu.index(), "read the MIG state", e))?;
    let pci = gpu.device().pci_info().ok();
    let mut users: std::collections::BTreeMap<GpuInstanceId, Vec<String>> = Default::default();
    for p in &s.processes {
        if let Some(gi) = p.gi_id {
            let u = InstanceUser::Process {
                pid: p.pid,
                name: p.name.clone(),
                ci_id: p.ci_id,
            };
            users.entry(gi).or_default().push(u.to_string());
        }
    }
    for v in &s.vgpus {
        if let Some(gi) = v.gi_id {
            let u = InstanceUser::Vgpu {
                vm_id: v.vm_id.clone(),
                vgpu_type: v.vgpu_type.clone(),
            };
            users.entry(gi).or_default().push(u.to_string());
        }
    }
    let state = if s.mig_mode.is_some_and(|m| m.current) {
        s.to_mig_state()
    } else {
        None
    };
    Ok(GpuView {
        index: s.index,
        model: s.model.as_deref().and_then(mig::GpuModel::by_key),
        name: s.name,
        uuid: s.uuid,
        pci_bus_id: s.pci_bus_id,
        pci_device: pci.as_ref().map(|p| p.pci_device_id),
        pci_subsystem: pci.as_ref().and_then(|p| p.pci_sub_system_id),
        mig_mode: s.mig_mode,
        state,
        users,
    })
}

/// The plans for every GPU the config selects. Validation errors abort before any plan.
fn plan_all(
    file: &LayoutFile,
    args: &LayoutArgs,
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
struct PlanReport<'a> {
    config: &'a str,
    file: &'a str,
    gpus: Vec<&'a GpuPlan>,
}

/// `plan`: append the report to `out`; `Err` when a GPU is blocked or unreachable.
pub fn run_plan(
    driver: &Driver,
    a: &PlanArgs,
    json: bool,
    out: &mut String,
) -> Result<(), LayoutError> {
    let file = load(&a.layout)?;
    let (_, views) = read_host(driver)?;
    let (name, plans) = plan_all(&file, &a.layout, &views, a.allow_partial)?;
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

fn status_word(s: Status) -> &'static str {
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

fn render_plan(out: &mut String, view: &GpuView, p: &GpuPlan) {
    header(out, view, p);
    for b in &p.blocked {
        out.push_str(&format!(
            "  blocked: GI {} ({} at {}) is in use{}\n",
            b.gi,
            b.profile,
            b.placement,
            if b.users.is_empty() {
                String::new()
            } else {
                format!(" by {}", b.users.join(", "))
            }
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

fn emit_json<T: Serialize + ?Sized>(out: &mut String, v: &T) {
    out.push_str(&serde_json::to_string_pretty(v).unwrap_or_default());
    out.push('\n');
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
    exit_code: i32,
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
            exit_code: EXIT_OK,
        }
    }

    fn fail(mut self, e: &AgentError) -> Self {
        self.status = "failed";
        self.failed = Some(e.to_string());
        self.exit_code = e.exit_code();
        self
    }
}

/// `apply`: append the report to `out` (also on error: what was done and rolled back).
pub fn run_apply(
    driver: &Driver,
    a: &ApplyArgs,
    json: bool,
    out: &mut String,
) -> Result<(), LayoutError> {
    let file = load(&a.layout)?;
    let (gpus, views) = read_host(driver)?;
    let (name, plans) = plan_all(&file, &a.layout, &views, a.allow_partial)?;
    // Refuse before the first change if any selected GPU cannot get its layout.
    let stuck: Vec<&(usize, GpuPlan)> = plans
        .iter()
        .filter(|(_, p)| matches!(p.status, Status::Blocked | Status::Unreachable))
        .filter(|(_, p)| {
            !(a.allow_partial
                && p.status == Status::Blocked
                && p.mode_change == Some(ModeChange::Disable))
        })
        .collect();
    if !stuck.is_empty() {
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
            for (pos, p) in &stuck {
                render_plan(out, &views[*pos], p);
            }
        }
        let hint = if stuck.iter().any(|(_, p)| p.status == Status::Blocked) {
            "; stop what uses them, or pass --allow-partial to apply the rest"
        } else {
            ""
        };
        return Err(LayoutError::Refused(format!(
            "nothing was changed: {}{hint}",
            stuck
                .iter()
                .map(|(pos, p)| format!("{} is {}", views[*pos].label(), status_word(p.status)))
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    let mut results = Vec::new();
    let mut failure = None;
    for (pos, p) in &plans {
        let gpu = &gpus[*pos];
        let r = apply_gpu(&file, &name, gpu, p, a.allow_partial);
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

fn render_applied(out: &mut String, view: &GpuView, r: &Applied) {
    out.push_str(&format!("{}: {}\n", view.label(), r.status));
    for d in &r.done {
        out.push_str(&format!("  done: {}\n", d.text));
    }
    for b in &r.blocked {
        out.push_str(&format!(
            "  kept in use: GI {} ({} at {}){}\n",
            b.gi,
            b.profile,
            b.placement,
            if b.users.is_empty() {
                String::new()
            } else {
                format!(" by {}", b.users.join(", "))
            }
        ));
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
        Status::EnableMig => match ops::set_mig_mode(gpu, true) {
            Err(e) => Applied::new(p, "failed").fail(&e),
            Ok(change) if change.mode.current => {
                // Took effect at once (e.g. Hopper): continue with the layout now.
                let fresh = read_view(gpu).map(|v| {
                    let entry = file
                        .config(Some(config))
                        .ok()
                        .and_then(|c| c.entries.get(p.entry.entry).cloned());
                    (v, entry)
                });
                match fresh {
                    Ok((v, Some(entry))) => {
                        match host::plan_gpu(file, config, &entry, &v, allow_partial) {
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
                                r.exit_code = EXIT_USAGE;
                                r
                            }
                        }
                    }
                    Ok((_, None)) => Applied::new(p, "mig enabled"),
                    Err(e) => Applied::new(p, "failed").fail(&e),
                }
            }
            Ok(_) => {
                let mut r = Applied::new(p, "mig enable pending");
                r.message = Some(format!("MIG mode enable requested; {}", mode_guidance(g)));
                r
            }
        },
        Status::DisableMig => {
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
                        crate::error::how_to_apply_mig_mode(g)
                    ));
                }
                Err(e) => r = r.fail(&e),
            }
            r
        }
        Status::Changes | Status::Partial => {
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
                    Err(e) => {
                        r.message = Some(format!("warning: could not read the GPU back: {e}"))
                    }
                }
            }
            r
        }
    }
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

#[derive(Serialize)]
struct AssertRow {
    gpu: u32,
    uuid: String,
    matches: bool,
    differences: Vec<String>,
}

/// `assert`: append one line per GPU (and its differences) to `out`; `Err` on a mismatch.
pub fn run_assert(
    driver: &Driver,
    a: &AssertArgs,
    json: bool,
    out: &mut String,
) -> Result<(), LayoutError> {
    let file = load(&a.layout)?;
    let (_, views) = read_host(driver)?;
    let (name, plans) = plan_all(&file, &a.layout, &views, false)?;
    let rows: Vec<AssertRow> = plans
        .iter()
        .map(|(pos, p)| {
            let d = host::differences(p, &views[*pos]);
            AssertRow {
                gpu: p.gpu,
                uuid: p.uuid.clone(),
                matches: d.is_empty(),
                differences: d,
            }
        })
        .collect();
    let bad = rows.iter().filter(|r| !r.matches).count();
    if json {
        emit_json(out, &rows);
    } else {
        for (r, (pos, _)) in rows.iter().zip(&plans) {
            let label = views[*pos].label();
            if r.matches {
                out.push_str(&format!("{label}: matches config `{name}`\n"));
            } else {
                out.push_str(&format!("{label}: does NOT match config `{name}`\n"));
                for d in &r.differences {
                    out.push_str(&format!("  {d}\n"));
                }
            }
        }
    }
    if bad == 0 {
        Ok(())
    } else {
        Err(LayoutError::Mismatch(format!(
            "{bad} GPU(s) do not match config `{name}`"
        )))
    }
}

/// `export`: append the current layout as a config file (or JSON) to `out`.
pub fn run_export(
    driver: &Driver,
    a: &ExportArgs,
    json: bool,
    out: &mut String,
) -> Result<(), LayoutError> {
    let (_, views) = read_host(driver)?;
    let views: Vec<&GpuView> = views
        .iter()
        .filter(|v| a.gpu.as_ref().is_none_or(|s| v.is_named_by(s)))
        .collect();
    if views.is_empty()
        && let Some(s) = &a.gpu
    {
        return Err(AgentError::NoSuchGpu {
            selector: s.to_string(),
            available: Vec::new(),
        }
        .into());
    }
    let (yaml, value) = super::export::export(&views, &a.label, a.by_uuid);
    if json {
        emit_json(out, &value);
    } else {
        out.push_str(&yaml);
    }
    Ok(())
}
