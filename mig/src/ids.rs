//! Identifier newtypes. NVML hands out bare `unsigned int`s for very different things
//! (profile ids, profile *indices*, instance ids, slice offsets); keeping them apart in the
//! type system is what stops a GI id from being passed where a profile id is expected.
use serde::{Deserialize, Serialize};

/// A GPU-instance profile id as NVML returns it in `nvmlGpuInstanceProfileInfo_t::id` and
/// nvidia-smi shows in `-lgip` (e.g. 9 for `3g.20gb` on A100-40GB). Per GPU model, not global.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GiProfileId(pub u32);

/// A compute-instance profile id (equals the NVML `COMPUTE_INSTANCE_PROFILE_*` constant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CiProfileId(pub u32);

/// A GPU-instance id, unique per physical GPU, assigned by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GpuInstanceId(pub u32);

/// A compute-instance id, unique within its GPU instance, assigned by the driver (starts at 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ComputeInstanceId(pub u32);

/// A contiguous range of slices: memory slices of the GPU for a GPU instance, compute slices
/// of the GPU instance for a compute instance (`nvmlGpuInstancePlacement_t` /
/// `nvmlComputeInstancePlacement_t`). Displayed as nvidia-smi does: `start:size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Placement {
    pub start: u32,
    pub size: u32,
}
