//! What can go wrong for an admin driving MIG, as typed values that name the object and the
//! fix, and the agent's one [`ExitCode`] type (0 ok, 1 failed, 2 usage or configuration,
//! 3 state conflict, 4 NVML failure), which every command maps its outcome to.
//!
//! The wording is the contract with the admin: every message says which GPU, which instance
//! or profile, and what to do next, in the terms nvidia-smi users know.
use std::fmt;

use mig::{ComputeInstanceId, GpuInstanceId, Placement};

use crate::nvml::{CallError, LoadError};

/// Every exit status of `vmig-agent`; the numbers are a documented contract
/// (docs/agent-cli.md "Exit codes", docs/layouts.md, docs/operations.md) and never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ExitCode {
    /// 0: success (`assert`: the GPUs match).
    Ok = 0,
    /// 1: `check-config` found a failing check, or the daemon stopped on an error.
    Failed = 1,
    /// 2: the command line is wrong (bad flag, unknown GPU or profile, illegal placement), or
    /// a configuration or layout file cannot be used.
    Usage = 2,
    /// 3: the GPU's state forbids it (MIG off or pending, no room, in use, no such instance;
    /// a layout refused or not matching).
    State = 3,
    /// 4: NVML could not be loaded or failed, or refused for lack of permission.
    Nvml = 4,
}

impl ExitCode {
    /// The number the process exits with.
    pub const fn code(self) -> u8 {
        self as u8
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}

/// Something that keeps a GPU or compute instance busy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InstanceUser {
    /// A compute process (CUDA application) on the instance.
    Process {
        pid: u32,
        name: Option<String>,
        ci_id: Option<ComputeInstanceId>,
    },
    /// A running VM whose vGPU this GI backs.
    Vgpu {
        vm_id: String,
        vgpu_type: Option<String>,
    },
    /// NVML said "in use" but listed no process or vGPU (another NVML client holds it).
    OtherClient,
}

impl fmt::Display for InstanceUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstanceUser::Process { pid, name, ci_id } => {
                write!(f, "process {pid}")?;
                if let Some(n) = name {
                    write!(f, " ({n})")?;
                }
                if let Some(ci) = ci_id {
                    write!(f, " on compute instance {}", ci.0)?;
                }
                Ok(())
            }
            InstanceUser::Vgpu { vm_id, vgpu_type } => {
                write!(f, "VM {vm_id}")?;
                if let Some(t) = vgpu_type {
                    write!(f, " (vGPU {t})")?;
                }
                Ok(())
            }
            InstanceUser::OtherClient => f.write_str("another NVML client"),
        }
    }
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// "it" for one user of an instance, "them" for several.
fn them<T>(users: &[T]) -> &'static str {
    if users.len() == 1 { "it" } else { "them" }
}

fn placements(p: &[Placement]) -> String {
    if p.is_empty() {
        "none".to_string()
    } else {
        p.iter()
            .map(|p| format!("{}:{}", p.start, p.size))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn ids(v: impl IntoIterator<Item = u32>) -> String {
    let v: Vec<String> = v.into_iter().map(|i| i.to_string()).collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

/// The text that tells an ESXi admin how to make a pending MIG mode change effective.
pub fn how_to_apply_mig_mode(gpu: u32) -> String {
    format!(
        "put the ESXi host in maintenance mode and reboot it, or reset GPU {gpu} while no VM uses it (nvidia-smi --gpu-reset -i {gpu})"
    )
}

/// Every failure the agent reports.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A malformed argument that clap could not catch (`-i foo`, bad PROFILES list …).
    #[error("{0}")]
    Usage(String),

    #[error("no GPU matches '{selector}'; GPUs on this host: {}", if available.is_empty() { "none".to_string() } else { available.join("; ") })]
    NoSuchGpu {
        selector: String,
        available: Vec<String>,
    },

    #[error(
        "unknown GPU instance profile '{given}' on GPU {gpu}; valid profiles: {}",
        join(valid)
    )]
    UnknownGiProfile {
        gpu: u32,
        given: String,
        valid: Vec<String>,
    },

    #[error(
        "unknown compute instance profile '{given}' in GPU instance {} on GPU {gpu}; valid profiles: {}",
        gi.0, join(valid)
    )]
    UnknownCiProfile {
        gpu: u32,
        gi: GpuInstanceId,
        given: String,
        valid: Vec<String>,
    },

    #[error(
        "placement start {start} is not legal for profile {profile} on GPU {gpu}; legal placements (start:size): {}",
        placements(legal)
    )]
    IllegalPlacement {
        gpu: u32,
        profile: String,
        start: u32,
        legal: Vec<Placement>,
    },

    #[error("GPU {gpu} ({name}) does not support MIG")]
    MigNotSupported { gpu: u32, name: String },

    #[error("MIG mode is disabled on GPU {gpu}: enable it with `vmig-agent mig mode -i {gpu} --enable`, then {}", how_to_apply_mig_mode(*gpu))]
    MigDisabled { gpu: u32 },

    #[error("MIG mode is pending enable on GPU {gpu}: the change takes effect after a GPU reset or reboot; {}", how_to_apply_mig_mode(*gpu))]
    MigPendingEnable { gpu: u32 },

    #[error(
        "cannot create a GPU instance of profile {profile} on GPU {gpu}{}: insufficient resources. Free placements for {profile}: {}. Occupied: {}. Profiles that still fit: {}",
        requested.map(|p| format!(" at placement {}:{}", p.start, p.size)).unwrap_or_default(),
        placements(free_placements),
        if occupied.is_empty() { "nothing".to_string() } else { occupied.join(", ") },
        if fits.is_empty() { "none".to_string() } else { fits.join(", ") }
    )]
    GiInsufficientResources {
        gpu: u32,
        profile: String,
        requested: Option<Placement>,
        free_placements: Vec<Placement>,
        /// `GI <id> (<profile>) at <start:size>` for each existing GI.
        occupied: Vec<String>,
        /// `<profile> (ID n, k free)` for each profile with remaining capacity.
        fits: Vec<String>,
    },

    #[error(
        "cannot create a compute instance of profile {profile} in GPU instance {} on GPU {gpu}: insufficient resources. Existing compute instances: {}. Profiles that still fit: {}",
        gi.0,
        if existing.is_empty() { "none".to_string() } else { existing.join(", ") },
        if fits.is_empty() { "none".to_string() } else { fits.join(", ") }
    )]
    CiInsufficientResources {
        gpu: u32,
        gi: GpuInstanceId,
        profile: String,
        existing: Vec<String>,
        fits: Vec<String>,
    },

    #[error("GPU instance {} not found on GPU {gpu}; existing GPU instances: {}", gi.0, ids(existing.iter().map(|g| g.0)))]
    GiNotFound {
        gpu: u32,
        gi: GpuInstanceId,
        existing: Vec<GpuInstanceId>,
    },

    #[error(
        "compute instance {} not found in GPU instance {} on GPU {gpu}; existing compute instances: {}",
        ci.0, gi.0, ids(existing.iter().map(|c| c.0))
    )]
    CiNotFound {
        gpu: u32,
        gi: GpuInstanceId,
        ci: ComputeInstanceId,
        existing: Vec<ComputeInstanceId>,
    },

    #[error(
        "GPU instance {} on GPU {gpu} still has compute instances {}: destroy them first (vmig-agent mig dci -i {gpu} --gi {} --ci <ID>)",
        gi.0, ids(cis.iter().map(|c| c.0)), gi.0
    )]
    GiHasComputeInstances {
        gpu: u32,
        gi: GpuInstanceId,
        cis: Vec<ComputeInstanceId>,
    },

    #[error("GPU instance {} on GPU {gpu} is in use by {}: stop {} first", gi.0, join(users), them(users))]
    GiInUse {
        gpu: u32,
        gi: GpuInstanceId,
        users: Vec<InstanceUser>,
    },

    #[error(
        "compute instance {} in GPU instance {} on GPU {gpu} is in use by {}: stop {} first",
        ci.0, gi.0, join(users), them(users)
    )]
    CiInUse {
        gpu: u32,
        gi: GpuInstanceId,
        ci: ComputeInstanceId,
        users: Vec<InstanceUser>,
    },

    #[error("GPU {gpu} is in use{}: {what}", if users.is_empty() { String::new() } else { format!(" by {}", join(users)) })]
    GpuInUse {
        gpu: u32,
        what: String,
        users: Vec<InstanceUser>,
    },

    #[error("permission denied: NVML refused to {operation} on GPU {gpu}; run vmig-agent as root")]
    PermissionDenied { gpu: u32, operation: String },

    #[error(transparent)]
    Load(#[from] LoadError),

    #[error("NVML failed to {operation}{}: {source}", gpu.map(|g| format!(" on GPU {g}")).unwrap_or_default())]
    Nvml {
        gpu: Option<u32>,
        operation: String,
        #[source]
        source: CallError,
    },
}

impl AgentError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        use AgentError::*;
        match self {
            Usage(_)
            | NoSuchGpu { .. }
            | UnknownGiProfile { .. }
            | UnknownCiProfile { .. }
            | IllegalPlacement { .. } => ExitCode::Usage,
            MigNotSupported { .. }
            | MigDisabled { .. }
            | MigPendingEnable { .. }
            | GiInsufficientResources { .. }
            | CiInsufficientResources { .. }
            | GiNotFound { .. }
            | CiNotFound { .. }
            | GiHasComputeInstances { .. }
            | GiInUse { .. }
            | CiInUse { .. }
            | GpuInUse { .. } => ExitCode::State,
            PermissionDenied { .. } | Load(_) | Nvml { .. } => ExitCode::Nvml,
        }
    }

    /// Wrap an NVML failure of `operation` on `gpu`; `NO_PERMISSION` becomes
    /// [`AgentError::PermissionDenied`].
    pub fn nvml(gpu: u32, operation: impl Into<String>, source: CallError) -> AgentError {
        let operation = operation.into();
        if source.is(crate::nvml::NvmlCode::NO_PERMISSION) {
            AgentError::PermissionDenied { gpu, operation }
        } else {
            AgentError::Nvml {
                gpu: Some(gpu),
                operation,
                source,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nvml::NvmlCode;

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(AgentError::Usage("x".into()).exit_code().code(), 2);
        assert_eq!(AgentError::MigDisabled { gpu: 0 }.exit_code().code(), 3);
        let gi = GpuInstanceId(1);
        assert_eq!(
            AgentError::GiInUse {
                gpu: 0,
                gi,
                users: vec![]
            }
            .exit_code()
            .code(),
            3
        );
        let failed = CallError::Failed {
            function: "f",
            code: NvmlCode::UNKNOWN,
        };
        assert_eq!(AgentError::nvml(0, "list", failed).exit_code().code(), 4);
        let denied = CallError::Failed {
            function: "f",
            code: NvmlCode::NO_PERMISSION,
        };
        let e = AgentError::nvml(0, "create a GPU instance", denied);
        assert!(matches!(e, AgentError::PermissionDenied { .. }));
        assert_eq!(e.exit_code().code(), 4);
    }

    #[test]
    fn messages_name_the_object() {
        let e = AgentError::MigPendingEnable { gpu: 0 };
        assert!(
            e.to_string()
                .starts_with("MIG mode is pending enable on GPU 0: ")
        );
        let e = AgentError::GiInUse {
            gpu: 0,
            gi: GpuInstanceId(1),
            users: vec![InstanceUser::Process {
                pid: 4242,
                name: Some("python".into()),
                ci_id: Some(ComputeInstanceId(0)),
            }],
        };
        assert_eq!(
            e.to_string(),
            "GPU instance 1 on GPU 0 is in use by process 4242 (python) on compute instance 0: stop it first"
        );
    }
}
