//! The `vmig-agent` command line: the nvidia-smi MIG workflow (`-L`, `-mig`, `mig -lgip`
//! … `-dci`) as subcommands, each a thin sequence of [`operations`] calls whose result is
//! rendered by [`render`] as a table or, with `--json`, as the same rows in JSON.
//!
//! New command families (declarative layouts, the daemon) are added as further
//! [`Command`] variants with their own module; this file only parses and dispatches.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use mig::{ComputeInstanceId, GpuInstanceId};
use serde::Serialize;

use crate::error::AgentError;
use crate::gpu_selector::{self, GpuSelector};
use crate::nvml::{self, Driver, GiProfileInfo, Gpu, GpuInstance};
use crate::operations as ops;
use crate::profile_spec::{ProfileList, StartList};
use crate::render::{
    self, CiProfileRow, CiRow, CreatedGi, DestroyedCi, DestroyedGi, GiPlacementsRow, GiProfileRow,
    GiRow,
};

/// Drive NVIDIA MIG on this host through NVML, like nvidia-smi's MIG commands.
#[derive(Debug, Parser)]
#[command(name = "vmig-agent", version, about, propagate_version = true)]
pub struct Cli {
    /// Path of libnvidia-ml.so (default: libnvidia-ml.so.1, then libnvidia-ml.so, from the loader's search path).
    #[arg(long, global = true, env = "VMIG_NVML_LIB", value_name = "PATH")]
    pub nvml_lib: Option<PathBuf>,

    /// Machine-readable output (stable JSON keys, see docs/agent-cli.md).
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List GPUs and their MIG devices (like `nvidia-smi -L`).
    List,
    /// MIG management (like `nvidia-smi mig …` and `nvidia-smi -mig`).
    #[command(subcommand)]
    Mig(MigCommand),
    /// Run the daemon: observe MIG through NVML and publish it to vCenter (docs/operations.md).
    Run(crate::daemon::cli::RunArgs),
    /// Check the daemon's configuration, password file, NVML and vCenter connection, then exit.
    CheckConfig(crate::daemon::cli::CheckConfigArgs),
    /// Show the steps that would bring the GPUs to a named MIG layout (docs/layouts.md).
    Plan(crate::layout::PlanArgs),
    /// Apply a named MIG layout: safe, idempotent, rolled back on failure (docs/layouts.md).
    Apply(crate::layout::ApplyArgs),
    /// Exit 0 if the GPUs match a named MIG layout, else list the differences (exit 3).
    Assert(crate::layout::AssertArgs),
    /// Print the current MIG layout as a config that `apply` reproduces (placements included).
    Export(crate::layout::ExportArgs),
}

/// `mig` subcommands, named after nvidia-smi's flags.
#[derive(Debug, Subcommand)]
pub enum MigCommand {
    /// Show or change the MIG mode of a GPU (like `nvidia-smi -i N -mig 1|0`).
    Mode(ModeArgs),
    /// List GPU instance profiles with free/total instances (like `-lgip`).
    Lgip(OptGpu),
    /// List the possible placements of each GPU instance profile (like `-lgipp`).
    Lgipp(OptGpu),
    /// Create GPU instances (like `-cgi`).
    Cgi(CgiArgs),
    /// List GPU instances (like `-lgi`).
    Lgi(OptGpu),
    /// Destroy a GPU instance (like `-dgi -gi G`).
    Dgi(GiArgs),
    /// List compute instance profiles of GPU instances (like `-lcip [-gi G]`).
    Lcip(OptGpuOptGi),
    /// Create compute instances in a GPU instance (like `-gi G -cci`).
    Cci(CciArgs),
    /// List compute instances (like `-lci [-gi G]`).
    Lci(OptGpuOptGi),
    /// Destroy a compute instance (like `-dci -gi G -ci C`).
    Dci(CiArgs),
}

/// `-i` as a required argument.
#[derive(Debug, Args)]
pub struct GpuArg {
    /// GPU: index, UUID (GPU-…) or PCI bus id (0000:3B:00.0). UUID/PCI are stable; indices can change across reboots.
    #[arg(short = 'i', long = "id", value_name = "GPU")]
    pub gpu: GpuSelector,
}

/// `-i` as an optional argument (all MIG-enabled GPUs when absent).
#[derive(Debug, Args)]
pub struct OptGpu {
    /// GPU: index, UUID (GPU-…) or PCI bus id; all MIG-enabled GPUs when omitted.
    #[arg(short = 'i', long = "id", value_name = "GPU")]
    pub gpu: Option<GpuSelector>,
}

#[derive(Debug, Args)]
#[group(id = "mode_change", multiple = false)]
pub struct ModeArgs {
    #[command(flatten)]
    pub gpu: GpuArg,
    /// Enable MIG (takes effect after a GPU reset or host reboot).
    #[arg(long, group = "mode_change")]
    pub enable: bool,
    /// Disable MIG (takes effect after a GPU reset or host reboot).
    #[arg(long, group = "mode_change")]
    pub disable: bool,
}

#[derive(Debug, Args)]
pub struct CgiArgs {
    #[command(flatten)]
    pub gpu: GpuArg,
    /// Comma list of GPU instance profile ids or names, created in this order (e.g. 9,19,14,19 or 3g.20gb,1g.5gb).
    #[arg(value_name = "PROFILES")]
    pub profiles: ProfileList,
    /// Placement start (memory slice) for each profile, comma-separated, one per profile; without it the driver chooses.
    #[arg(long, value_name = "START[,START…]")]
    pub placement: Option<StartList>,
    /// Also create the default compute instance (the whole GPU instance) in each new GPU instance.
    #[arg(short = 'C', long = "default-compute-instance")]
    pub default_ci: bool,
}

#[derive(Debug, Args)]
pub struct GiArgs {
    #[command(flatten)]
    pub gpu: GpuArg,
    /// GPU instance id.
    #[arg(long = "gi", value_name = "G")]
    pub gi: u32,
}

#[derive(Debug, Args)]
pub struct OptGpuOptGi {
    #[command(flatten)]
    pub gpu: OptGpu,
    /// GPU instance id; all GPU instances when omitted.
    #[arg(long = "gi", value_name = "G")]
    pub gi: Option<u32>,
}

#[derive(Debug, Args)]
pub struct CciArgs {
    #[command(flatten)]
    pub gpu: GpuArg,
    /// GPU instance id.
    #[arg(long = "gi", value_name = "G")]
    pub gi: u32,
    /// Comma list of compute instance profile ids or names (e.g. 0,0 or 1c.3g.20gb); the default (whole-GI) profile when omitted.
    #[arg(value_name = "PROFILES")]
    pub profiles: Option<ProfileList>,
}

#[derive(Debug, Args)]
pub struct CiArgs {
    #[command(flatten)]
    pub gpu: GpuArg,
    /// GPU instance id.
    #[arg(long = "gi", value_name = "G")]
    pub gi: u32,
    /// Compute instance id.
    #[arg(long = "ci", value_name = "C")]
    pub ci: u32,
}

/// Load NVML as the global options say.
pub fn load_driver(cli: &Cli) -> Result<Driver, AgentError> {
    Ok(Driver::load(cli.nvml_lib.as_deref())?)
}

/// Run a parsed command line, appending everything meant for stdout to `out`. On error, `out`
/// still holds what was done before the failure (e.g. the GIs a `cgi` list created).
pub fn run(cli: &Cli, out: &mut String) -> Result<(), AgentError> {
    let driver = load_driver(cli)?;
    let json = cli.json;
    match &cli.command {
        Command::List => list(&driver, json, out),
        Command::Mig(m) => match m {
            MigCommand::Mode(a) => mode(&driver, a, json, out),
            MigCommand::Lgip(a) => lgip(&driver, a, json, out),
            MigCommand::Lgipp(a) => lgipp(&driver, a, json, out),
            MigCommand::Cgi(a) => cgi(&driver, a, json, out),
            MigCommand::Lgi(a) => lgi(&driver, a, json, out),
            MigCommand::Dgi(a) => dgi(&driver, a, json, out),
            MigCommand::Lcip(a) => lcip(&driver, a, json, out),
            MigCommand::Cci(a) => cci(&driver, a, json, out),
            MigCommand::Lci(a) => lci(&driver, a, json, out),
            MigCommand::Dci(a) => dci(&driver, a, json, out),
        },
        // Dispatched by `main` through `daemon::cli::dispatch` before NVML is loaded here.
        Command::Run(_) | Command::CheckConfig(_) => Err(AgentError::Usage(
            "`run` and `check-config` are started through daemon::cli::dispatch".into(),
        )),
        // Dispatched by `main` through `layout::dispatch`, which prints its own reports.
        Command::Plan(_) | Command::Apply(_) | Command::Assert(_) | Command::Export(_) => Err(
            AgentError::Usage("layout commands are started through layout::dispatch".into()),
        ),
    }
}

/// Every command's output: `value` as pretty JSON with `--json`, else its text rendering.
fn emit<T: Serialize + ?Sized>(
    out: &mut String,
    json: bool,
    value: &T,
    text: impl FnOnce(&T) -> String,
) {
    if json {
        // Serialising these plain row structs cannot fail (no maps with non-string keys).
        out.push_str(&serde_json::to_string_pretty(value).unwrap_or_default());
        out.push('\n');
    } else {
        out.push_str(&text(value));
    }
}

/// Creates one instance per wanted profile, in order, stopping at the first failure. The text
/// output reports each success as it happens (as nvidia-smi does); the JSON output lists
/// what was created. Either way the error, if any, is returned after the report.
fn create_each<W, C: Serialize>(
    out: &mut String,
    json: bool,
    wanted: &[W],
    mut create: impl FnMut(&W) -> Result<C, AgentError>,
    text: impl Fn(&C) -> String,
) -> Result<(), AgentError> {
    let mut created = Vec::new();
    let mut result = Ok(());
    for w in wanted {
        match create(w) {
            Ok(c) => {
                if !json {
                    out.push_str(&text(&c));
                }
                created.push(c);
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if json {
        emit(out, json, &created, |_| String::new());
    }
    result
}

fn all_gpus(driver: &Driver) -> Result<Vec<Gpu<'_>>, AgentError> {
    driver.gpus().map_err(|e| AgentError::Nvml {
        gpu: None,
        operation: "list GPUs".into(),
        source: e,
    })
}

/// The name of profile `id` among `profiles`, else the raw id (a profile NVML did not list).
fn profile_name<'a, Id: PartialEq + 'a>(
    mut profiles: impl Iterator<Item = (Id, &'a str)>,
    id: Id,
    raw: u32,
) -> String {
    profiles
        .find(|(p, _)| *p == id)
        .map_or_else(|| raw.to_string(), |(_, name)| name.to_string())
}

fn nvml_err(gpu: u32, what: &str) -> impl FnOnce(nvml::CallError) -> AgentError + '_ {
    move |e| AgentError::nvml(gpu, what, e)
}

/// The GPUs a command works on: the one `-i` names (MIG must be on), else every GPU whose
/// MIG mode is currently enabled (failing like the first GPU when none is).
fn mig_gpus<'n>(driver: &'n Driver, sel: Option<&GpuSelector>) -> Result<Vec<Gpu<'n>>, AgentError> {
    if let Some(sel) = sel {
        let gpu = gpu_selector::resolve(driver, sel)?;
        ops::require_mig_enabled(&gpu)?;
        return Ok(vec![gpu]);
    }
    let all = all_gpus(driver)?;
    let mut enabled = Vec::new();
    let mut first_err = None;
    for gpu in all {
        match ops::require_mig_enabled(&gpu) {
            Ok(()) => enabled.push(gpu),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match (enabled.is_empty(), first_err) {
        (true, Some(e)) => Err(e),
        (true, None) => Err(AgentError::NoSuchGpu {
            selector: "any MIG-capable GPU".into(),
            available: Vec::new(),
        }),
        _ => Ok(enabled),
    }
}

/// GI profiles in the order nvidia-smi lists them: by memory, then size, then NVML index.
fn display_order(mut profiles: Vec<GiProfileInfo>) -> Vec<GiProfileInfo> {
    profiles.sort_by_key(|p| (p.memory_mib, p.slice_count, p.index));
    profiles
}

fn list(driver: &Driver, json: bool, out: &mut String) -> Result<(), AgentError> {
    let gpus = all_gpus(driver)?;
    let mut listed = Vec::new();
    for gpu in &gpus {
        let g = gpu.index();
        let mode = match gpu.mig_mode() {
            Ok(m) => Some(m),
            Err(e) if e.is(nvml::NvmlCode::NOT_SUPPORTED) => None,
            Err(e) => return Err(AgentError::nvml(g, "read the MIG mode", e)),
        };
        let devices = if mode.is_some_and(|m| m.current) {
            gpu.mig_devices().map_err(nvml_err(g, "list MIG devices"))?
        } else {
            Vec::new()
        };
        listed.push(render::ListGpu {
            index: g,
            name: gpu.name().map_err(nvml_err(g, "read the GPU name"))?,
            uuid: gpu.uuid().map_err(nvml_err(g, "read the GPU UUID"))?,
            mig_mode: mode.map(|m| render::ModeJson::new(m.current, m.pending)),
            mig_devices: devices
                .into_iter()
                .map(|d| render::ListMigDevice {
                    gi_id: d.gi_id,
                    ci_id: d.ci_id,
                    name: d.name,
                    uuid: d.uuid,
                    memory_mib: d.memory_mib,
                })
                .collect(),
        });
    }
    let list = render::ListOutput { gpus: listed };
    emit(out, json, &list, render::list_lines);
    Ok(())
}

fn mode(driver: &Driver, a: &ModeArgs, json: bool, out: &mut String) -> Result<(), AgentError> {
    let gpu = gpu_selector::resolve(driver, &a.gpu.gpu)?;
    let g = gpu.index();
    let (m, activation) = if a.enable || a.disable {
        let change = ops::set_mig_mode(&gpu, a.enable)?;
        (change.mode, change.activation)
    } else {
        let m = gpu.mig_mode().map_err(|e| {
            if e.is(nvml::NvmlCode::NOT_SUPPORTED) {
                AgentError::MigNotSupported {
                    gpu: g,
                    name: gpu.name().unwrap_or_default(),
                }
            } else {
                AgentError::nvml(g, "read the MIG mode", e)
            }
        })?;
        (m, None)
    };
    let o = render::ModeOutput {
        gpu: g,
        pci_bus_id: gpu.pci_bus_id().unwrap_or_else(|_| format!("GPU {g}")),
        mig_mode: render::ModeJson::new(m.current, m.pending),
        activation_status: activation.map(|c| {
            c.name()
                .map_or_else(|| format!("NVML code {}", c.0), str::to_string)
        }),
        reset_required: m.current != m.pending,
    };
    emit(out, json, &o, render::mode_lines);
    Ok(())
}

fn lgip(driver: &Driver, a: &OptGpu, json: bool, out: &mut String) -> Result<(), AgentError> {
    let mut rows = Vec::new();
    for gpu in mig_gpus(driver, a.gpu.as_ref())? {
        let g = gpu.index();
        for p in display_order(ops::gi_profiles(&gpu)?) {
            rows.push(GiProfileRow {
                gpu: g,
                profile_id: p.id,
                instances_free: gpu
                    .gi_remaining_capacity(p.id)
                    .map_err(nvml_err(g, "read remaining GPU instance capacity"))?,
                instances_total: p.instance_count,
                memory_mib: p.memory_mib,
                sm: p.sm,
                ce: p.ce,
                dec: p.dec,
                enc: p.enc,
                jpeg: p.jpeg,
                ofa: p.ofa,
                p2p: p.p2p,
                name: p.name,
            });
        }
    }
    emit(out, json, rows.as_slice(), render::gi_profiles_table);
    Ok(())
}

fn lgipp(driver: &Driver, a: &OptGpu, json: bool, out: &mut String) -> Result<(), AgentError> {
    let mut rows = Vec::new();
    for gpu in mig_gpus(driver, a.gpu.as_ref())? {
        let g = gpu.index();
        for p in display_order(ops::gi_profiles(&gpu)?) {
            rows.push(GiPlacementsRow {
                gpu: g,
                profile_id: p.id,
                placements: gpu
                    .gi_possible_placements(p.id)
                    .map_err(nvml_err(g, "list GPU instance placements"))?,
                name: p.name,
            });
        }
    }
    emit(out, json, rows.as_slice(), render::gi_placements_lines);
    Ok(())
}

fn gi_row(gpu: u32, gi: &GpuInstance<'_>, profiles: &[GiProfileInfo]) -> GiRow {
    let i = gi.info();
    GiRow {
        gpu,
        gi_id: i.id,
        profile_id: i.profile_id,
        name: profile_name(
            profiles.iter().map(|p| (p.id, p.name.as_str())),
            i.profile_id,
            i.profile_id.0,
        ),
        placement: i.placement,
    }
}

fn ci_row(gpu: u32, ci: &nvml::ComputeInstance<'_>, profiles: &[nvml::CiProfileInfo]) -> CiRow {
    let i = ci.info();
    CiRow {
        gpu,
        gi_id: i.gi_id,
        ci_id: i.id,
        profile_id: i.profile_id,
        name: profile_name(
            profiles.iter().map(|p| (p.id, p.name.as_str())),
            i.profile_id,
            i.profile_id.0,
        ),
        placement: i.placement,
    }
}

fn cgi(driver: &Driver, a: &CgiArgs, json: bool, out: &mut String) -> Result<(), AgentError> {
    let specs = &a.profiles.0;
    let gpu = gpu_selector::resolve(driver, &a.gpu.gpu)?;
    let g = gpu.index();
    let profiles = ops::gi_profiles(&gpu)?;
    let wanted = ops::resolve_gi_profiles(g, &profiles, specs)?;
    let starts: Vec<Option<u32>> = match &a.placement {
        None => vec![None; wanted.len()],
        Some(StartList(s)) if s.len() == wanted.len() => s.iter().copied().map(Some).collect(),
        Some(StartList(s)) => {
            return Err(AgentError::Usage(format!(
                "--placement has {} start(s) but PROFILES has {} profile(s); give one start per profile",
                s.len(),
                wanted.len()
            )));
        }
    };
    let wanted: Vec<_> = wanted.iter().zip(starts).collect();
    create_each(
        out,
        json,
        &wanted,
        |(profile, start)| create_one_gi(&gpu, profile, *start, a.default_ci, &profiles),
        |c| {
            let mut text = format!("{}\n", render::created_gi_line(&c.gi));
            if let Some(ci) = &c.compute_instance {
                text.push_str(&format!("{}\n", render::created_ci_line(ci)));
            }
            text
        },
    )
}

fn create_one_gi(
    gpu: &Gpu<'_>,
    profile: &GiProfileInfo,
    start: Option<u32>,
    default_ci: bool,
    profiles: &[GiProfileInfo],
) -> Result<CreatedGi, AgentError> {
    let g = gpu.index();
    let gi = ops::create_gpu_instance(gpu, profile, start)?;
    let row = gi_row(g, &gi, profiles);
    let compute_instance = if default_ci {
        let ci_profile = ops::default_ci_profile_of(gpu, &gi, profile)?;
        let ci = ops::create_compute_instance(gpu, &gi, &ci_profile)?;
        Some(ci_row(g, &ci, std::slice::from_ref(&ci_profile)))
    } else {
        None
    };
    Ok(CreatedGi {
        gi: row,
        compute_instance,
    })
}

fn lgi(driver: &Driver, a: &OptGpu, json: bool, out: &mut String) -> Result<(), AgentError> {
    let mut rows = Vec::new();
    for gpu in mig_gpus(driver, a.gpu.as_ref())? {
        let g = gpu.index();
        let profiles = ops::gi_profiles(&gpu)?;
        for gi in gpu
            .gpu_instances()
            .map_err(nvml_err(g, "list GPU instances"))?
        {
            rows.push(gi_row(g, &gi, &profiles));
        }
    }
    emit(out, json, rows.as_slice(), render::gis_table);
    Ok(())
}

fn dgi(driver: &Driver, a: &GiArgs, json: bool, out: &mut String) -> Result<(), AgentError> {
    let gpu = gpu_selector::resolve(driver, &a.gpu.gpu)?;
    let info = ops::destroy_gpu_instance(&gpu, GpuInstanceId(a.gi))?;
    let d = DestroyedGi {
        gpu: gpu.index(),
        gi_id: info.id,
    };
    emit(out, json, std::slice::from_ref(&d), |_| {
        format!("{}\n", render::destroyed_gi_line(&d))
    });
    Ok(())
}

/// The GIs a `--gi`-filtered listing covers on one GPU.
fn selected_gis<'n>(gpu: &Gpu<'n>, gi: Option<u32>) -> Result<Vec<GpuInstance<'n>>, AgentError> {
    match gi {
        Some(id) => Ok(vec![ops::find_gpu_instance(gpu, GpuInstanceId(id))?]),
        None => gpu
            .gpu_instances()
            .map_err(nvml_err(gpu.index(), "list GPU instances")),
    }
}

fn lcip(driver: &Driver, a: &OptGpuOptGi, json: bool, out: &mut String) -> Result<(), AgentError> {
    let mut rows = Vec::new();
    for gpu in mig_gpus(driver, a.gpu.gpu.as_ref())? {
        let g = gpu.index();
        let gi_profiles = ops::gi_profiles(&gpu)?;
        for gi in selected_gis(&gpu, a.gi)? {
            let profiles = ops::ci_profiles(&gpu, &gi)?;
            let slices = gi_profiles
                .iter()
                .find(|p| p.id == gi.info().profile_id)
                .map(|p| p.slice_count);
            let default = slices
                .and_then(|s| nvml::default_ci_profile(s, &profiles))
                .map(|p| p.id);
            for p in &profiles {
                rows.push(CiProfileRow {
                    gpu: g,
                    gi_id: gi.id(),
                    profile_id: p.id,
                    name: p.name.clone(),
                    instances_free: gi
                        .ci_remaining_capacity(p.id)
                        .map_err(nvml_err(g, "read remaining compute instance capacity"))?,
                    instances_total: p.instance_count,
                    sm: p.sm,
                    ce: p.ce,
                    dec: p.dec,
                    enc: p.enc,
                    jpeg: p.jpeg,
                    ofa: p.ofa,
                    default: default == Some(p.id),
                });
            }
        }
    }
    emit(out, json, &rows, |rows| {
        if rows.is_empty() {
            "No compute instance profiles found: Not Found\n".into()
        } else {
            render::ci_profiles_table(rows)
        }
    });
    Ok(())
}

fn cci(driver: &Driver, a: &CciArgs, json: bool, out: &mut String) -> Result<(), AgentError> {
    let gpu = gpu_selector::resolve(driver, &a.gpu.gpu)?;
    let g = gpu.index();
    let gi = ops::find_gpu_instance(&gpu, GpuInstanceId(a.gi))?;
    let profiles = ops::ci_profiles(&gpu, &gi)?;
    let wanted = match &a.profiles {
        Some(ProfileList(specs)) => ops::resolve_ci_profiles(g, gi.id(), &profiles, specs)?,
        None => {
            let gi_profiles = ops::gi_profiles(&gpu)?;
            let gp = gi_profiles
                .iter()
                .find(|p| p.id == gi.info().profile_id)
                .cloned()
                .ok_or_else(|| {
                    AgentError::Usage(format!(
                        "GPU instance {} has an unknown profile; give PROFILES explicitly",
                        a.gi
                    ))
                })?;
            vec![ops::default_ci_profile_of(&gpu, &gi, &gp)?]
        }
    };
    create_each(
        out,
        json,
        &wanted,
        |p| ops::create_compute_instance(&gpu, &gi, p).map(|ci| ci_row(g, &ci, &profiles)),
        |row| format!("{}\n", render::created_ci_line(row)),
    )
}

fn lci(driver: &Driver, a: &OptGpuOptGi, json: bool, out: &mut String) -> Result<(), AgentError> {
    let mut rows = Vec::new();
    for gpu in mig_gpus(driver, a.gpu.gpu.as_ref())? {
        let g = gpu.index();
        for gi in selected_gis(&gpu, a.gi)? {
            let profiles = ops::ci_profiles(&gpu, &gi)?;
            let cis = gi
                .compute_instances()
                .map_err(nvml_err(g, "list compute instances"))?;
            rows.extend(cis.iter().map(|ci| ci_row(g, ci, &profiles)));
        }
    }
    emit(out, json, rows.as_slice(), render::cis_table);
    Ok(())
}

fn dci(driver: &Driver, a: &CiArgs, json: bool, out: &mut String) -> Result<(), AgentError> {
    let gpu = gpu_selector::resolve(driver, &a.gpu.gpu)?;
    let info = ops::destroy_compute_instance(&gpu, GpuInstanceId(a.gi), ComputeInstanceId(a.ci))?;
    let d = DestroyedCi {
        gpu: gpu.index(),
        gi_id: info.gi_id,
        ci_id: info.id,
    };
    emit(out, json, std::slice::from_ref(&d), |_| {
        format!("{}\n", render::destroyed_ci_line(&d))
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile_spec::ProfileSpec;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("vmig-agent").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn cgi_takes_profiles_placements_and_default_ci() {
        let cli = parse(&["mig", "cgi", "-i", "0", "9,19,14,19", "-C"]).unwrap();
        let Command::Mig(MigCommand::Cgi(a)) = cli.command else {
            panic!("not cgi")
        };
        assert_eq!(a.gpu.gpu, GpuSelector::Index(0));
        let specs = a.profiles.0;
        assert_eq!(
            specs,
            vec![
                ProfileSpec::Id(9),
                ProfileSpec::Id(19),
                ProfileSpec::Id(14),
                ProfileSpec::Id(19)
            ]
        );
        assert!(a.default_ci);

        let cli = parse(&[
            "--json",
            "mig",
            "cgi",
            "-i",
            "GPU-abc-def",
            "3g.20gb",
            "--placement",
            "4",
        ])
        .unwrap();
        assert!(cli.json);
        let Command::Mig(MigCommand::Cgi(a)) = cli.command else {
            panic!("not cgi")
        };
        assert_eq!(a.gpu.gpu, GpuSelector::Uuid("GPU-abc-def".into()));
        assert_eq!(a.placement, Some(StartList(vec![4])));
    }

    #[test]
    fn global_options_go_anywhere() {
        let cli = parse(&["mig", "lgi", "--json", "--nvml-lib", "/x/libnvidia-ml.so.1"]).unwrap();
        assert!(cli.json);
        assert_eq!(
            cli.nvml_lib.as_deref(),
            Some(std::path::Path::new("/x/libnvidia-ml.so.1"))
        );
    }

    #[test]
    fn usage_errors_are_exit_code_2() {
        for bad in [
            vec!["mig", "mode", "-i", "0", "--enable", "--disable"],
            vec!["mig", "dgi", "-i", "0"],
            vec!["mig", "dci", "-i", "0", "--gi", "1"],
            vec!["mig", "cgi", "-i", "MIG-1234-5678", "9"],
            vec!["mig", "cgi", "-i", "0", "9,,19"],
            vec!["mig", "lgip", "-i", "nonsense"],
            vec!["mig", "frobnicate"],
        ] {
            let e = parse(&bad).expect_err(&format!("{bad:?} should fail"));
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn selectors_accept_pci_ids() {
        let cli = parse(&["mig", "lgi", "-i", "3b:00.0"]).unwrap();
        let Command::Mig(MigCommand::Lgi(a)) = cli.command else {
            panic!("not lgi")
        };
        assert!(matches!(a.gpu, Some(GpuSelector::PciBusId(_))));
    }

    #[test]
    fn help_lists_every_mig_command() {
        let mut cmd = Cli::command();
        let help = cmd
            .find_subcommand_mut("mig")
            .expect("mig")
            .render_help()
            .to_string();
        for c in [
            "mode", "lgip", "lgipp", "cgi", "lgi", "dgi", "lcip", "cci", "lci", "dci",
        ] {
            assert!(help.contains(c), "{c} missing from help");
        }
    }
}
