//! The document a `vmig-agent` publishes about its host (`vmig.mig/v1`), and that `vmig`
//! reads back. It lives in the pure model crate because both ends must agree on it byte for
//! byte, and neither end should depend on the other's I/O stack. Schema: docs/reported-data.md.
//!
//! Compatibility rule: within `vmig.mig/v1` fields are only ever *added* (readers ignore unknown
//! keys and treat missing optional keys as absent); a breaking change gets a new schema name.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::GpuModel;
use crate::ids::{CiProfileId, ComputeInstanceId, GiProfileId, GpuInstanceId, Placement};
use crate::state::{GpuInstance, MigState};

mod layout_state;
mod limits;
mod usage;
mod validate;
mod vgpus;
pub use layout_state::{GpuLayoutState, LayoutSource, LayoutStateKind};
pub use limits::{
    MAX_COMPUTE_INSTANCES, MAX_DOCUMENT_BYTES, MAX_ERROR_CHARS, MAX_GENERATION, MAX_GPUS,
    MAX_HEARTBEAT_INTERVAL_S, MAX_ID, MAX_LIST_ENTRIES, MAX_MEMORY_SLICES, MAX_PROCESSES,
    MAX_TEXT_CHARS,
};
pub use usage::{
    EccCounts, GiUsage, GpuUsage, LastXid, MAX_ECC_COUNT, MAX_FB_MIB, MAX_SAMPLE_INTERVAL_S,
    MAX_WINDOW_S, MAX_WINDOWS, MAX_XID_CODE, MAX_XID_CODES, MAX_XID_COUNT, Stats, UsageReport,
    UsageSource, UsageWindow, XidCode, XidCounts,
};
pub use vgpus::{
    MAX_VGPUS_PER_GPU, SlicedTypeReport, TimeslicedReport, TimeslicedTypeReport, VgpuReport,
    vgpus_of,
};

/// The schema name this module writes and reads.
pub const SCHEMA_V1: &str = "vmig.mig/v1";

/// Name of the vCenter custom attribute holding the JSON document.
pub const FIELD_DOCUMENT: &str = "vmig.mig";
/// Name of the vCenter custom attribute holding the one-line summary.
pub const FIELD_SUMMARY: &str = "vmig.mig.summary";
/// Name of the VM custom attribute holding an admin's slice reservation (written by `vmig assign`).
pub const FIELD_RESERVATION: &str = "vmig.reservation";

/// The whole published document for one ESXi host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostReport {
    /// Always [`SCHEMA_V1`].
    pub schema: String,
    pub agent_version: String,
    /// BIOS UUID of the host (`hardware.systemInfo.uuid`).
    pub host_uuid: String,
    /// Monotonic per agent state file; a reader keeps the highest generation it has seen.
    pub generation: u64,
    /// RFC 3339 UTC time of the NVML observation.
    pub observed_at: String,
    /// How often the agent republishes even without change, so readers can flag stale reports
    /// (stale = older than 3 heartbeats).
    pub heartbeat_interval_s: u64,
    pub gpus: Vec<GpuReport>,
    /// Utilization summaries per GPU instance and ECC counts per GPU (added within v1; absent
    /// when the agent does not sample). Not part of the observed state: it does not move
    /// `generation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageReport>,
}

/// MIG mode as NVML reports it: a change is pending until the GPU is reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigModeReport {
    pub current: bool,
    pub pending: bool,
}

/// One physical GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuReport {
    /// NVML index at observation time (an alias only: indices move between reboots).
    pub index: u32,
    pub uuid: String,
    /// Name as NVML reports it, e.g. `NVIDIA A100-PCIE-40GB`.
    pub name: String,
    pub pci_bus_id: String,
    /// Catalog key of the model (`a100-pcie-40gb`), when the GPU is in vmig's catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig_mode: Option<MigModeReport>,
    #[serde(default)]
    pub gpu_instances: Vec<GiReport>,
    /// Remaining capacity per GI profile name (only profiles with count > 0).
    #[serde(default)]
    pub free: BTreeMap<String, u32>,
    /// Largest GI profile that can still be created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub largest_placeable: Option<String>,
    /// Fragmentation in [0, 1] (see docs/mig-model.md).
    #[serde(default)]
    pub fragmentation: f64,
    /// MIG-backed vGPU types that could be started on this GPU now.
    #[serde(default)]
    pub placeable_vgpu_types: Vec<String>,
    /// Set when NVML failed for this GPU; the other fields are then partial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// NVML's own remaining capacity per GI profile name, present only when it disagrees with
    /// `free` (which the agent computes from placements and instances). Readers flag the
    /// disagreement and keep believing `free`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvml_free: Option<BTreeMap<String, u32>>,
    /// Where this GPU stands against the desired layout (absent when no layout is in force,
    /// and in documents of agents older than issue #21).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout_state: Option<GpuLayoutState>,
    /// The MIG geometry of this GPU's model as NVML describes it, on the first GPU of each
    /// model (by `name`) in the document, when MIG is on; readers whose catalog lacks the
    /// model plan from it (docs/reported-data.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geometry: Option<ModelGeometry>,
    /// vGPU types this GPU runs time-sliced inside a GI, with the driver's per-GI maximum
    /// (issue 18; empty on GPUs without MIG time-slicing and from older agents).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sliced_types: Vec<SlicedTypeReport>,
    /// Whole-GPU time-sliced vGPUs, on a GPU not in MIG mode that supports vGPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timesliced: Option<TimeslicedReport>,
}

/// A GPU model's GPU-instance profiles as NVML lists them (`-lgip` and `-lgipp` in one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelGeometry {
    /// Every GI profile the driver offers, in NVML profile-index order.
    pub gi_profiles: Vec<GiProfileGeometry>,
}

impl ModelGeometry {
    /// What an agent publishes for a catalog model whose driver lists exactly the catalog's
    /// profiles (tests, and a check that published and built-in geometry agree).
    pub fn of_catalog(model: &GpuModel) -> Self {
        ModelGeometry {
            gi_profiles: model
                .gi_profiles
                .iter()
                .map(|p| GiProfileGeometry {
                    id: p.id,
                    index: p.nvml_index,
                    name: p.name.to_string(),
                    slices: p.compute_slices,
                    instances: p.instance_count,
                    memory_mib: p.memory_mib,
                    engines: p.engines,
                    starts: p.placements.iter().map(|pl| pl.start).collect(),
                    size: p.memory_slices,
                })
                .collect(),
        }
    }
}

/// One GI profile: what `nvmlDeviceGetGpuInstanceProfileInfoV` and
/// `nvmlDeviceGetGpuInstancePossiblePlacements_v2` return, compactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiProfileGeometry {
    /// Profile id (`info.id`, nvidia-smi's id).
    pub id: GiProfileId,
    /// NVML profile index (`NVML_GPU_INSTANCE_PROFILE_*`).
    pub index: u32,
    /// Name without `MIG ` (`3g.20gb`).
    pub name: String,
    /// Compute slices (`sliceCount`).
    pub slices: u32,
    /// `instanceCount`.
    pub instances: u32,
    pub memory_mib: u64,
    /// SMs and engines (`sm`, `ce`, `dec`, `enc`, `jpeg`, `ofa` keys).
    #[serde(flatten)]
    pub engines: crate::EngineCounts,
    /// Legal placement starts (memory slices), as `-lgipp` lists them …
    pub starts: Vec<u32>,
    /// … each of this many memory slices.
    pub size: u32,
}

/// One GPU instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GiReport {
    pub gi_id: GpuInstanceId,
    pub profile_id: GiProfileId,
    /// Profile name, e.g. `3g.20gb`.
    pub profile: String,
    pub placement: Placement,
    #[serde(default)]
    pub compute_instances: Vec<CiReport>,
    pub in_use: bool,
    /// The VM whose vGPU this GI backs, when NVML tells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm: Option<String>,
    /// The vGPU type of that VM's vGPU, when NVML tells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vgpu_type: Option<String>,
    /// Processes running on this GI (pid, name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<ProcessReport>,
    /// Every vGPU this GI hosts when it runs time-sliced vGPUs (`vm`/`vgpu_type` then name
    /// the first, for readers older than issue 18); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vgpus: Vec<VgpuReport>,
}

/// One compute instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CiReport {
    pub ci_id: ComputeInstanceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_id: Option<CiProfileId>,
    pub profile: String,
    /// The MIG device UUID (`MIG-…`).
    pub uuid: String,
}

/// A process on a MIG device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessReport {
    pub pid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_id: Option<ComputeInstanceId>,
}

/// Why a published document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("not a vmig report: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("unsupported report schema `{found}` (this vmig reads `{SCHEMA_V1}`); upgrade vmig")]
    UnsupportedSchema { found: String },
    #[error("invalid report: it is {size} bytes, more than the {MAX_DOCUMENT_BYTES}-byte limit")]
    TooLarge { size: usize },
    /// Parsed, but outside what any agent could have written ([`HostReport::validate`]).
    #[error("invalid report: {0}")]
    Invalid(String),
}

impl GpuReport {
    /// The catalog model of this GPU: its reported key, else its NVML name.
    pub fn catalog_model(&self) -> Option<&'static GpuModel> {
        self.model
            .as_deref()
            .and_then(GpuModel::by_key)
            .or_else(|| GpuModel::by_nvml_name(&self.name))
    }

    /// The reported layout as a [`MigState`] of `model`, keeping the reported GI ids. CIs are
    /// recreated with the modelled driver's default placement (the document carries no CI
    /// placements). A document is outside input: a layout the driver could not have produced
    /// (unknown profile, overlapping or illegal placements) is an error, never a panic.
    pub fn to_state(&self, model: &'static GpuModel) -> Result<MigState, String> {
        let mut state = MigState::new(model);
        for gi in &self.gpu_instances {
            let profile = model
                .gi_profile(gi.profile_id)
                .or_else(|| model.gi_profile_by_name(&gi.profile))
                .ok_or_else(|| {
                    format!(
                        "GI {} has profile {} ({}) unknown on {}",
                        gi.gi_id, gi.profile_id, gi.profile, model.key
                    )
                })?;
            state.gpu_instances.insert(
                gi.gi_id,
                GpuInstance {
                    id: gi.gi_id,
                    profile: profile.id,
                    placement: gi.placement,
                    compute_instances: BTreeMap::new(),
                    in_use: gi.in_use,
                },
            );
            for ci in &gi.compute_instances {
                let ci_profile = ci
                    .profile_id
                    .and_then(|id| profile.ci_profile(id))
                    .or_else(|| profile.ci_profile_by_name(&ci.profile));
                if let Some(cp) = ci_profile {
                    // Best effort: the CI layout only feeds diagrams.
                    let _ = state.create_ci(gi.gi_id, cp.id, None);
                }
            }
        }
        state.validate().map_err(|e| e.to_string())?;
        Ok(state)
    }
}

impl HostReport {
    /// Parse a published document, checking its schema name and [validating](Self::validate)
    /// it: every reader goes through here, so no reader sees an unbounded value.
    pub fn from_json(text: &str) -> Result<HostReport, ReportError> {
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(ReportError::TooLarge { size: text.len() });
        }
        let report: HostReport = serde_json::from_str(text)?;
        if report.schema != SCHEMA_V1 {
            return Err(ReportError::UnsupportedSchema {
                found: report.schema,
            });
        }
        report.validate().map_err(ReportError::Invalid)?;
        Ok(report)
    }

    /// The utilization summary of GI `gi` on the GPU with `uuid`, if the agent sent one.
    /// The utilization entry of GPU `uuid` (its ECC and XID counts), if any.
    pub fn gpu_usage(&self, uuid: &str) -> Option<&GpuUsage> {
        self.usage.as_ref()?.gpus.iter().find(|g| g.uuid == uuid)
    }

    pub fn gi_usage(&self, uuid: &str, gi: GpuInstanceId) -> Option<&GiUsage> {
        self.usage
            .as_ref()?
            .gpus
            .iter()
            .find(|g| g.uuid == uuid)?
            .gpu_instances
            .iter()
            .find(|u| u.gi_id == gi)
    }

    /// Checks the document against the limits of docs/reported-data.md ("Limits"): placements
    /// inside the model's memory slices, ids and counts within NVML's, text lengths bounded,
    /// `observed_at` an RFC 3339 time, `heartbeat_interval_s` in 1..=1 day. The error is one
    /// sentence naming the first offending field.
    pub fn validate(&self) -> Result<(), String> {
        validate::validate(self)
    }

    /// Compact JSON, as published (vCenter custom values are size-sensitive).
    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}
