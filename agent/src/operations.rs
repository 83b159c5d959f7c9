//! The checked MIG operations: each checks, through NVML, everything an admin should hear
//! about *before* asking NVML to act (MIG mode, legal placement, instances in use, compute
//! instances left behind), and turns NVML's bare codes into [`AgentError`]s that name the
//! object and say what would work instead.
//!
//! The CLI calls these; the layout applier and the daemon are meant to call them too, so every
//! path that changes a GPU refuses the same things for the same reasons. Nothing here derives
//! an id from a placement or a table: ids, placements and capacities all come from NVML.
use mig::{ComputeInstanceId, GpuInstanceId, Placement};

use crate::error::{AgentError, InstanceUser};
use crate::nvml::{
    CallError, CiInfo, CiProfileInfo, ComputeInstance, GiInfo, GiProfileInfo, Gpu, GpuInstance,
    MigModeChange, NvmlCode, default_ci_profile,
};
use crate::profile_spec::ProfileSpec;

/// Fail unless MIG is currently enabled on `gpu`, saying precisely why not.
pub fn require_mig_enabled(gpu: &Gpu<'_>) -> Result<(), AgentError> {
    let g = gpu.index();
    match gpu.mig_mode() {
        Ok(m) if m.current => Ok(()),
        Ok(m) if m.pending => Err(AgentError::MigPendingEnable { gpu: g }),
        Ok(_) => Err(AgentError::MigDisabled { gpu: g }),
        Err(e) if e.is(NvmlCode::NOT_SUPPORTED) => Err(AgentError::MigNotSupported {
            gpu: g,
            name: gpu.name().unwrap_or_default(),
        }),
        Err(e) => Err(AgentError::nvml(g, "read the MIG mode", e)),
    }
}

/// Request MIG on or off. Returns what NVML reported; a change that needs a reset is not an
/// error (the caller tells the admin how to apply it).
pub fn set_mig_mode(gpu: &Gpu<'_>, enable: bool) -> Result<MigModeChange, AgentError> {
    let g = gpu.index();
    match gpu.set_mig_mode(enable) {
        Ok(change) => Ok(change),
        Err(e) if e.is(NvmlCode::NOT_SUPPORTED) => {
            Err(AgentError::MigNotSupported { gpu: g, name: gpu.name().unwrap_or_default() })
        }
        Err(e) if e.is(NvmlCode::IN_USE) => Err(AgentError::GpuInUse {
            gpu: g,
            what: "MIG mode cannot change while GPU instances exist or processes/VMs use the GPU; destroy the GPU instances and stop the VMs first".into(),
            users: gpu_users(gpu).unwrap_or_default(),
        }),
        Err(e) => Err(AgentError::nvml(g, "set the MIG mode", e)),
    }
}

/// The GI profiles of `gpu` (MIG must be enabled), in NVML index order.
pub fn gi_profiles(gpu: &Gpu<'_>) -> Result<Vec<GiProfileInfo>, AgentError> {
    require_mig_enabled(gpu)?;
    gpu.gi_profiles()
        .map_err(|e| AgentError::nvml(gpu.index(), "list GPU instance profiles", e))
}

fn profile_label(name: &str, id: u32) -> String {
    format!("{name} (ID {id})")
}

/// Match each spec against the GPU's profiles, keeping the order and repetitions given.
pub fn resolve_gi_profiles(
    gpu: u32,
    profiles: &[GiProfileInfo],
    specs: &[ProfileSpec],
) -> Result<Vec<GiProfileInfo>, AgentError> {
    specs
        .iter()
        .map(|spec| {
            profiles
                .iter()
                .find(|p| spec.matches(p.id.0, &p.name))
                .cloned()
                .ok_or_else(|| AgentError::UnknownGiProfile {
                    gpu,
                    given: spec.to_string(),
                    valid: profiles
                        .iter()
                        .map(|p| profile_label(&p.name, p.id.0))
                        .collect(),
                })
        })
        .collect()
}

/// Match each spec against the CI profiles of one GI.
pub fn resolve_ci_profiles(
    gpu: u32,
    gi: GpuInstanceId,
    profiles: &[CiProfileInfo],
    specs: &[ProfileSpec],
) -> Result<Vec<CiProfileInfo>, AgentError> {
    specs
        .iter()
        .map(|spec| {
            profiles
                .iter()
                .find(|p| spec.matches(p.id.0, &p.name))
                .cloned()
                .ok_or_else(|| AgentError::UnknownCiProfile {
                    gpu,
                    gi,
                    given: spec.to_string(),
                    valid: profiles
                        .iter()
                        .map(|p| profile_label(&p.name, p.id.0))
                        .collect(),
                })
        })
        .collect()
}

/// Create one GPU instance. `start` asks for a placement (checked against NVML's legal
/// placements first); `None` lets the driver choose.
pub fn create_gpu_instance<'n>(
    gpu: &Gpu<'n>,
    profile: &GiProfileInfo,
    start: Option<u32>,
) -> Result<GpuInstance<'n>, AgentError> {
    let g = gpu.index();
    let placement = match start {
        None => None,
        Some(start) => {
            let legal = gpu
                .gi_possible_placements(profile.id)
                .map_err(|e| AgentError::nvml(g, "list GPU instance placements", e))?;
            match legal.iter().find(|p| p.start == start) {
                Some(p) => Some(*p),
                None => {
                    return Err(AgentError::IllegalPlacement {
                        gpu: g,
                        profile: profile_label(&profile.name, profile.id.0),
                        start,
                        legal,
                    });
                }
            }
        }
    };
    gpu.create_gi(profile.id, placement).map_err(|e| {
        if e.is(NvmlCode::INSUFFICIENT_RESOURCES) || e.is(NvmlCode::IN_USE) {
            gi_insufficient(gpu, profile, placement)
        } else {
            AgentError::nvml(
                g,
                format!("create a GPU instance of profile {}", profile.name),
                e,
            )
        }
    })
}

/// Explain a refused GI creation: what is occupied, which placements of this profile are
/// free, and which profiles would still fit.
fn gi_insufficient(
    gpu: &Gpu<'_>,
    profile: &GiProfileInfo,
    requested: Option<Placement>,
) -> AgentError {
    let existing: Vec<GiInfo> = gpu
        .gpu_instances()
        .map(|v| v.iter().map(GpuInstance::info).collect())
        .unwrap_or_default();
    let profiles = gpu.gi_profiles().unwrap_or_default();
    let name_of = |id: mig::GiProfileId| {
        profiles
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| id.0.to_string())
    };
    let overlaps =
        |a: &Placement, b: &Placement| a.start < b.start + b.size && b.start < a.start + a.size;
    let free_placements = gpu
        .gi_possible_placements(profile.id)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| !existing.iter().any(|gi| overlaps(p, &gi.placement)))
        .collect();
    let occupied = existing
        .iter()
        .map(|gi| {
            format!(
                "GI {} ({}) at {}:{}",
                gi.id.0,
                name_of(gi.profile_id),
                gi.placement.start,
                gi.placement.size
            )
        })
        .collect();
    let fits = profiles
        .iter()
        .filter_map(|p| match gpu.gi_remaining_capacity(p.id) {
            Ok(n) if n > 0 => Some(format!("{} (ID {}, {n} free)", p.name, p.id.0)),
            _ => None,
        })
        .collect();
    AgentError::GiInsufficientResources {
        gpu: gpu.index(),
        profile: profile_label(&profile.name, profile.id.0),
        requested,
        free_placements,
        occupied,
        fits,
    }
}

/// Look up a GPU instance by id, listing the existing ones when it is absent.
pub fn find_gpu_instance<'n>(
    gpu: &Gpu<'n>,
    id: GpuInstanceId,
) -> Result<GpuInstance<'n>, AgentError> {
    require_mig_enabled(gpu)?;
    match gpu.gpu_instance(id) {
        Ok(gi) => Ok(gi),
        Err(e) if e.is(NvmlCode::NOT_FOUND) || e.is(NvmlCode::INVALID_ARGUMENT) => {
            Err(AgentError::GiNotFound {
                gpu: gpu.index(),
                gi: id,
                existing: gpu
                    .gpu_instances()
                    .map(|v| v.iter().map(GpuInstance::id).collect())
                    .unwrap_or_default(),
            })
        }
        Err(e) => Err(AgentError::nvml(
            gpu.index(),
            format!("find GPU instance {}", id.0),
            e,
        )),
    }
}

/// The CI profiles of a GI.
pub fn ci_profiles(gpu: &Gpu<'_>, gi: &GpuInstance<'_>) -> Result<Vec<CiProfileInfo>, AgentError> {
    gi.ci_profiles().map_err(|e| {
        AgentError::nvml(
            gpu.index(),
            format!(
                "list compute instance profiles of GPU instance {}",
                gi.id().0
            ),
            e,
        )
    })
}

/// The CI profile `-C` would create in `gi` (the one spanning the whole GI).
pub fn default_ci_profile_of(
    gpu: &Gpu<'_>,
    gi: &GpuInstance<'_>,
    gi_profile: &GiProfileInfo,
) -> Result<CiProfileInfo, AgentError> {
    let profiles = ci_profiles(gpu, gi)?;
    default_ci_profile(gi_profile.slice_count, &profiles)
        .cloned()
        .ok_or_else(|| AgentError::UnknownCiProfile {
            gpu: gpu.index(),
            gi: gi.id(),
            given: "default (full GPU instance)".into(),
            valid: profiles
                .iter()
                .map(|p| profile_label(&p.name, p.id.0))
                .collect(),
        })
}

/// Create one compute instance in `gi`.
pub fn create_compute_instance<'n>(
    gpu: &Gpu<'n>,
    gi: &GpuInstance<'n>,
    profile: &CiProfileInfo,
) -> Result<ComputeInstance<'n>, AgentError> {
    gi.create_ci(profile.id, None).map_err(|e| {
        if e.is(NvmlCode::INSUFFICIENT_RESOURCES) || e.is(NvmlCode::IN_USE) {
            ci_insufficient(gpu, gi, profile)
        } else {
            AgentError::nvml(
                gpu.index(),
                format!(
                    "create a compute instance of profile {} in GPU instance {}",
                    profile.name,
                    gi.id().0
                ),
                e,
            )
        }
    })
}

fn ci_insufficient(gpu: &Gpu<'_>, gi: &GpuInstance<'_>, profile: &CiProfileInfo) -> AgentError {
    let profiles = gi.ci_profiles().unwrap_or_default();
    let name_of = |id: mig::CiProfileId| {
        profiles
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| id.0.to_string())
    };
    let existing = gi
        .compute_instances()
        .map(|v| {
            v.iter()
                .map(|ci| {
                    let i = ci.info();
                    format!(
                        "CI {} ({}) at {}:{}",
                        i.id.0,
                        name_of(i.profile_id),
                        i.placement.start,
                        i.placement.size
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let fits = profiles
        .iter()
        .filter_map(|p| match gi.ci_remaining_capacity(p.id) {
            Ok(n) if n > 0 => Some(format!("{} (ID {}, {n} free)", p.name, p.id.0)),
            _ => None,
        })
        .collect();
    AgentError::CiInsufficientResources {
        gpu: gpu.index(),
        gi: gi.id(),
        profile: profile_label(&profile.name, profile.id.0),
        existing,
        fits,
    }
}

/// Look up a compute instance, listing the existing ones when it is absent.
pub fn find_compute_instance<'n>(
    gpu: &Gpu<'n>,
    gi: &GpuInstance<'n>,
    id: ComputeInstanceId,
) -> Result<ComputeInstance<'n>, AgentError> {
    match gi.compute_instance(id) {
        Ok(ci) => Ok(ci),
        Err(e) if e.is(NvmlCode::NOT_FOUND) || e.is(NvmlCode::INVALID_ARGUMENT) => {
            Err(AgentError::CiNotFound {
                gpu: gpu.index(),
                gi: gi.id(),
                ci: id,
                existing: gi
                    .compute_instances()
                    .map(|v| v.iter().map(ComputeInstance::id).collect())
                    .unwrap_or_default(),
            })
        }
        Err(e) => Err(AgentError::nvml(
            gpu.index(),
            format!(
                "find compute instance {} in GPU instance {}",
                id.0,
                gi.id().0
            ),
            e,
        )),
    }
}

fn users_err(gpu: &Gpu<'_>, e: CallError) -> AgentError {
    AgentError::nvml(gpu.index(), "list the processes and vGPUs using the GPU", e)
}

/// Every process and active vGPU on the GPU.
pub fn gpu_users(gpu: &Gpu<'_>) -> Result<Vec<InstanceUser>, AgentError> {
    users_matching(gpu, |_, _| true)
}

fn users_matching(
    gpu: &Gpu<'_>,
    keep: impl Fn(Option<GpuInstanceId>, Option<ComputeInstanceId>) -> bool,
) -> Result<Vec<InstanceUser>, AgentError> {
    let mut users: Vec<InstanceUser> = gpu
        .processes()
        .map_err(|e| users_err(gpu, e))?
        .into_iter()
        .filter(|p| keep(p.gi_id, p.ci_id))
        .map(|p| InstanceUser::Process {
            pid: p.pid,
            name: p.name,
            ci_id: p.ci_id,
        })
        .collect();
    users.extend(
        gpu.vgpus()
            .map_err(|e| users_err(gpu, e))?
            .into_iter()
            .filter(|v| keep(v.gi_id, None))
            .map(|v| InstanceUser::Vgpu {
                vm_id: v.vm_id,
                vgpu_type: v.vgpu_type,
            }),
    );
    Ok(users)
}

/// Processes running in GI `gi` and VMs whose vGPU it backs.
pub fn gi_users(gpu: &Gpu<'_>, gi: GpuInstanceId) -> Result<Vec<InstanceUser>, AgentError> {
    users_matching(gpu, |g, _| g == Some(gi))
}

/// Destroy a GPU instance; refused while anything uses it or compute instances remain.
pub fn destroy_gpu_instance(gpu: &Gpu<'_>, id: GpuInstanceId) -> Result<GiInfo, AgentError> {
    let g = gpu.index();
    let gi = find_gpu_instance(gpu, id)?;
    let users = gi_users(gpu, id)?;
    if !users.is_empty() {
        return Err(AgentError::GiInUse {
            gpu: g,
            gi: id,
            users,
        });
    }
    let cis: Vec<ComputeInstanceId> = gi
        .compute_instances()
        .map_err(|e| {
            AgentError::nvml(
                g,
                format!("list compute instances of GPU instance {}", id.0),
                e,
            )
        })?
        .iter()
        .map(ComputeInstance::id)
        .collect();
    if !cis.is_empty() {
        return Err(AgentError::GiHasComputeInstances {
            gpu: g,
            gi: id,
            cis,
        });
    }
    let info = gi.info();
    gi.destroy().map_err(|e| {
        if e.is(NvmlCode::IN_USE) {
            AgentError::GiInUse {
                gpu: g,
                gi: id,
                users: vec![InstanceUser::OtherClient],
            }
        } else {
            AgentError::nvml(g, format!("destroy GPU instance {}", id.0), e)
        }
    })?;
    Ok(info)
}

/// Destroy a compute instance; refused while processes run on it or a VM uses its GI.
pub fn destroy_compute_instance(
    gpu: &Gpu<'_>,
    gi_id: GpuInstanceId,
    ci_id: ComputeInstanceId,
) -> Result<CiInfo, AgentError> {
    let g = gpu.index();
    let gi = find_gpu_instance(gpu, gi_id)?;
    let ci = find_compute_instance(gpu, &gi, ci_id)?;
    let users = users_matching(gpu, |gi, ci| {
        gi == Some(gi_id) && (ci.is_none() || ci == Some(ci_id))
    })?;
    if !users.is_empty() {
        return Err(AgentError::CiInUse {
            gpu: g,
            gi: gi_id,
            ci: ci_id,
            users,
        });
    }
    let info = ci.info();
    ci.destroy().map_err(|e| {
        if e.is(NvmlCode::IN_USE) {
            AgentError::CiInUse {
                gpu: g,
                gi: gi_id,
                ci: ci_id,
                users: vec![InstanceUser::OtherClient],
            }
        } else {
            AgentError::nvml(
                g,
                format!(
                    "destroy compute instance {} in GPU instance {}",
                    ci_id.0, gi_id.0
                ),
                e,
            )
        }
    })?;
    Ok(info)
}
