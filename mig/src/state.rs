//! The MIG state of one GPU: which GPU instances and compute instances exist, where they sit,
//! and which are in use. All operations validate exactly as the driver does and return errors
//! that mirror NVML's codes, so the simulator and the planner share one source of truth.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::{GiProfile, GpuModel};
use crate::ids::{CiProfileId, ComputeInstanceId, GiProfileId, GpuInstanceId, Placement};

/// A compute instance inside a GPU instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputeInstance {
    pub id: ComputeInstanceId,
    pub profile: CiProfileId,
    /// Placement in compute slices of the parent GI.
    pub placement: Placement,
    /// Something runs on it (processes, or the CI backs an active vGPU).
    pub in_use: bool,
}

/// A GPU instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuInstance {
    pub id: GpuInstanceId,
    pub profile: GiProfileId,
    /// Placement in memory slices of the GPU.
    pub placement: Placement,
    pub compute_instances: BTreeMap<ComputeInstanceId, ComputeInstance>,
    /// Marked in use from outside (e.g. it backs an active vGPU) regardless of its CIs.
    pub in_use: bool,
}

impl GpuInstance {
    /// In use if marked so, or if any of its compute instances is.
    pub fn is_in_use(&self) -> bool {
        self.in_use || self.compute_instances.values().any(|c| c.in_use)
    }
}

/// Errors mirroring NVML return codes, with the object they concern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MigError {
    #[error("MIG mode is disabled")]
    MigDisabled,
    #[error("GPU instance profile {0:?} is not supported on this GPU")]
    UnknownGiProfile(GiProfileId),
    #[error("compute instance profile {ci:?} is not supported inside GPU instance profile {gi:?}")]
    UnknownCiProfile { gi: GiProfileId, ci: CiProfileId },
    #[error("placement {}:{} is not a legal placement for this profile", .0.start, .0.size)]
    InvalidPlacement(Placement),
    #[error("insufficient resources")]
    InsufficientResources,
    #[error("GPU instance {0:?} not found")]
    GiNotFound(GpuInstanceId),
    #[error("compute instance {ci:?} not found in GPU instance {gi:?}")]
    CiNotFound { gi: GpuInstanceId, ci: ComputeInstanceId },
    #[error("GPU instance {0:?} is in use")]
    GiInUse(GpuInstanceId),
    #[error("GPU instance {0:?} still has compute instances")]
    GiHasComputeInstances(GpuInstanceId),
    #[error("compute instance {ci:?} in GPU instance {gi:?} is in use")]
    CiInUse { gi: GpuInstanceId, ci: ComputeInstanceId },
}

/// The MIG layout of one GPU (MIG mode itself is tracked by the caller).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigState {
    /// Catalog key of the GPU model.
    pub model: String,
    pub gpu_instances: BTreeMap<GpuInstanceId, GpuInstance>,
}

impl MigState {
    /// An empty state for a model.
    pub fn new(model: &'static GpuModel) -> Self {
        MigState { model: model.key.to_string(), gpu_instances: BTreeMap::new() }
    }
    /// The catalog model of this state. Panics only if the key was not from the catalog
    /// (states are only built from catalog models or validated on deserialisation).
    pub fn gpu_model(&self) -> &'static GpuModel {
        todo!()
    }
    /// Create a GI; with `placement: None` the modelled driver's auto-placement policy chooses.
    pub fn create_gi(&mut self, profile: GiProfileId, placement: Option<Placement>) -> Result<GpuInstanceId, MigError> {
        let _ = (profile, placement);
        todo!()
    }
    /// Destroy a GI. Refused while it has CIs or is in use.
    pub fn destroy_gi(&mut self, gi: GpuInstanceId) -> Result<(), MigError> {
        let _ = gi;
        todo!()
    }
    /// Create a CI inside a GI; `placement: None` picks the first free legal placement.
    pub fn create_ci(&mut self, gi: GpuInstanceId, profile: CiProfileId, placement: Option<Placement>) -> Result<ComputeInstanceId, MigError> {
        let _ = (gi, profile, placement);
        todo!()
    }
    /// Destroy a CI. Refused while in use.
    pub fn destroy_ci(&mut self, gi: GpuInstanceId, ci: ComputeInstanceId) -> Result<(), MigError> {
        let _ = (gi, ci);
        todo!()
    }
    /// How many more GIs of `profile` could be created now (`nvmlDeviceGetGpuInstanceRemainingCapacity`).
    pub fn remaining_gi_capacity(&self, profile: GiProfileId) -> Result<u32, MigError> {
        let _ = profile;
        todo!()
    }
    /// Legal placements of `profile` that are free now.
    pub fn free_placements(&self, profile: GiProfileId) -> Result<Vec<Placement>, MigError> {
        let _ = profile;
        todo!()
    }
    /// How many more CIs of `profile` fit in GI `gi` now.
    pub fn remaining_ci_capacity(&self, gi: GpuInstanceId, profile: CiProfileId) -> Result<u32, MigError> {
        let _ = (gi, profile);
        todo!()
    }
    /// The largest GI profile (by compute then memory slices) that could be created now.
    pub fn largest_placeable(&self) -> Option<&'static GiProfile> {
        todo!()
    }
    /// Fragmentation in [0, 1]: 0 when free memory slices form placeable blocks, towards 1 when
    /// free slices are scattered so that big profiles cannot be placed. Documented in docs/mig-model.md.
    pub fn fragmentation(&self) -> f64 {
        todo!()
    }
}
