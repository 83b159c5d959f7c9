//! The nvidia-smi MIG workflow (`-L`, `-mig`, `mig -lgip` … `-dci`): one function per
//! command, each a thin sequence of [`operations`](crate::operations) calls whose result is
//! rendered by [`render`] as a table or, with `--json`, as the same rows in JSON. Every
//! command appends what is meant for stdout to `out`; on error, `out` still holds what was
//! done before the failure (e.g. the GIs a `cgi` list created).
use mig::{ComputeInstanceId, GpuInstanceId};
use serde::Serialize;

use crate::cli::{CciArgs, CgiArgs, CiArgs, GiArgs, ModeArgs, OptGpu, OptGpuOptGi};
use crate::error::AgentError;
use crate::gpu_selector::{self, GpuSelector};
use crate::nvml::{self, Driver, GiProfileInfo, Gpu, GpuInstance};
use crate::operations as ops;
use crate::profile_spec::{ProfileList, StartList};
use crate::render::{
    self, CiProfileRow, CiRow, CreatedGi, DestroyedCi, DestroyedGi, GiPlacementsRow, GiProfileRow,
    GiRow,
};

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

/// The GPUs a command looks at: the one `-i` names, else every GPU.
fn candidates<'n>(
    driver: &'n Driver,
    sel: Option<&GpuSelector>,
) -> Result<Vec<Gpu<'n>>, AgentError> {
    match sel {
        Some(sel) => Ok(vec![gpu_selector::resolve(driver, sel)?]),
        None => all_gpus(driver),
    }
}

/// The GPUs a command works on: the one `-i` names (MIG must be on), else every GPU whose
/// MIG mode is currently enabled (failing like the first GPU when none is).
fn mig_gpus<'n>(driver: &'n Driver, sel: Option<&GpuSelector>) -> Result<Vec<Gpu<'n>>, AgentError> {
    let mut enabled = Vec::new();
    let mut first_err = None;
    for gpu in candidates(driver, sel)? {
        match ops::require_mig_enabled(&gpu) {
            Ok(()) => enabled.push(gpu),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    some_or_first_error(enabled, first_err)
}

/// `found` unless it is empty; then why the first GPU was left out (or that there is none).
fn some_or_first_error<T>(
    found: Vec<T>,
    first_err: Option<AgentError>,
) -> Result<Vec<T>, AgentError> {
    match (found.is_empty(), first_err) {
        (true, Some(e)) => Err(e),
        (true, None) => Err(AgentError::NoSuchGpu {
            selector: "any MIG-capable GPU".into(),
            available: Vec::new(),
        }),
        _ => Ok(found),
    }
}

/// A GPU whose GI profiles can be listed, and those profiles.
struct ProfileGpu<'n> {
    gpu: Gpu<'n>,
    profiles: Vec<GiProfileInfo>,
    /// MIG is currently enabled. Without it the driver's own `-lgip` prints Free = Total
    /// (driver 580, docs/mig-model.md §7), and NVML's remaining capacity is not asked.
    mig_on: bool,
}

/// The GPUs `lgip`/`lgipp` list: as [`mig_gpus`], and also a GPU with MIG disabled when the
/// driver answers its profile calls anyway (driver 580 does, docs/mig-model.md §7; older
/// drivers answer NOT_SUPPORTED, and such a GPU fails as before).
fn profile_gpus<'n>(
    driver: &'n Driver,
    sel: Option<&GpuSelector>,
) -> Result<Vec<ProfileGpu<'n>>, AgentError> {
    let mut listed = Vec::new();
    let mut first_err = None;
    for gpu in candidates(driver, sel)? {
        let refusal = match ops::require_mig_enabled(&gpu) {
            Ok(()) => None,
            Err(e @ (AgentError::MigDisabled { .. } | AgentError::MigPendingEnable { .. })) => {
                Some(e)
            }
            Err(e) => {
                first_err.get_or_insert(e);
                continue;
            }
        };
        let profiles = gpu
            .gi_profiles()
            .map_err(nvml_err(gpu.index(), "list GPU instance profiles"))?;
        match refusal {
            // An older driver: NOT_SUPPORTED for every profile while MIG is off.
            Some(e) if profiles.is_empty() => {
                first_err.get_or_insert(e);
            }
            refusal => listed.push(ProfileGpu {
                gpu,
                profiles,
                mig_on: refusal.is_none(),
            }),
        }
    }
    some_or_first_error(listed, first_err)
}

/// GI profiles in the order nvidia-smi lists them: by memory, then size, then NVML index.
fn display_order(mut profiles: Vec<GiProfileInfo>) -> Vec<GiProfileInfo> {
    profiles.sort_by_key(|p| (p.memory_mib, p.slice_count, p.index));
    profiles
}

/// `list`: every GPU and its MIG devices (like `nvidia-smi -L`).
pub fn list(driver: &Driver, json: bool, out: &mut String) -> Result<(), AgentError> {
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

/// `mig mode`: show or change the MIG mode of one GPU.
pub fn mode(driver: &Driver, a: &ModeArgs, json: bool, out: &mut String) -> Result<(), AgentError> {
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

/// `mig lgip`: GI profiles with free/total instances. A GPU with MIG disabled whose driver
/// lists its profiles shows Free = Total, as nvidia-smi 580 prints it: what fits once MIG is
/// on; nothing can be created before.
pub fn lgip(driver: &Driver, a: &OptGpu, json: bool, out: &mut String) -> Result<(), AgentError> {
    let mut rows = Vec::new();
    for ProfileGpu {
        gpu,
        profiles,
        mig_on,
    } in profile_gpus(driver, a.gpu.as_ref())?
    {
        let g = gpu.index();
        for p in display_order(profiles) {
            rows.push(GiProfileRow {
                gpu: g,
                profile_id: p.id,
                instances_free: if mig_on {
                    gpu.gi_remaining_capacity(p.id)
                        .map_err(nvml_err(g, "read remaining GPU instance capacity"))?
                } else {
                    p.instance_count
                },
                instances_total: p.instance_count,
                memory_mib: p.memory_mib,
                engines: p.engines,
                p2p: p.p2p,
                name: p.name,
            });
        }
    }
    let style = render::TableStyle::of_driver(driver.driver_version().as_deref());
    emit(out, json, rows.as_slice(), |r| {
        render::gi_profiles_table(r, style)
    });
    Ok(())
}

/// `mig lgipp`: the possible placements of each GI profile.
pub fn lgipp(driver: &Driver, a: &OptGpu, json: bool, out: &mut String) -> Result<(), AgentError> {
    let mut rows = Vec::new();
    for ProfileGpu { gpu, profiles, .. } in profile_gpus(driver, a.gpu.as_ref())? {
        let g = gpu.index();
        for p in display_order(profiles) {
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

/// `mig cgi`: create GPU instances (and, with `-C`, their default compute instances).
pub fn cgi(driver: &Driver, a: &CgiArgs, json: bool, out: &mut String) -> Result<(), AgentError> {
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

/// GIs in the order nvidia-smi lists them: it asks NVML for the GIs of each profile in
/// profile-index order, so the seed's `-lgi` shows 11, 12 (1g), 6 (2g), 1 (3g), not 1, 6, 11,
/// 12. `gis` come sorted by id, which the stable sort keeps within one profile.
fn in_profile_order<'n>(
    mut gis: Vec<GpuInstance<'n>>,
    profiles: &[GiProfileInfo],
) -> Vec<GpuInstance<'n>> {
    gis.sort_by_key(|gi| {
        let pid = gi.info().profile_id;
        let rank = profiles.iter().position(|p| p.id == pid);
        (rank.unwrap_or(usize::MAX), rank.map_or(pid.0, |_| 0))
    });
    gis
}

/// `mig lgi`: list GPU instances.
pub fn lgi(driver: &Driver, a: &OptGpu, json: bool, out: &mut String) -> Result<(), AgentError> {
    let mut rows = Vec::new();
    for gpu in mig_gpus(driver, a.gpu.as_ref())? {
        let g = gpu.index();
        let profiles = ops::gi_profiles(&gpu)?;
        let gis = gpu
            .gpu_instances()
            .map_err(nvml_err(g, "list GPU instances"))?;
        for gi in in_profile_order(gis, &profiles) {
            rows.push(gi_row(g, &gi, &profiles));
        }
    }
    let style = render::TableStyle::of_driver(driver.driver_version().as_deref());
    emit(out, json, rows.as_slice(), |r| render::gis_table(r, style));
    Ok(())
}

/// `mig dgi`: destroy a GPU instance.
pub fn dgi(driver: &Driver, a: &GiArgs, json: bool, out: &mut String) -> Result<(), AgentError> {
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
        None => {
            let gis = gpu
                .gpu_instances()
                .map_err(nvml_err(gpu.index(), "list GPU instances"))?;
            Ok(in_profile_order(gis, &ops::gi_profiles(gpu)?))
        }
    }
}

/// `mig lcip`: CI profiles of GPU instances.
pub fn lcip(
    driver: &Driver,
    a: &OptGpuOptGi,
    json: bool,
    out: &mut String,
) -> Result<(), AgentError> {
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
                    engines: p.engines,
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

/// `mig cci`: create compute instances in a GPU instance.
pub fn cci(driver: &Driver, a: &CciArgs, json: bool, out: &mut String) -> Result<(), AgentError> {
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

/// `mig lci`: list compute instances.
pub fn lci(
    driver: &Driver,
    a: &OptGpuOptGi,
    json: bool,
    out: &mut String,
) -> Result<(), AgentError> {
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

/// `mig dci`: destroy a compute instance.
pub fn dci(driver: &Driver, a: &CiArgs, json: bool, out: &mut String) -> Result<(), AgentError> {
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
