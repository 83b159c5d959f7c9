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

impl Placement {
    /// A placement of `size` slices starting at `start`.
    pub const fn new(start: u32, size: u32) -> Self {
        Placement { start, size }
    }

    /// One past the last occupied slice. Saturates at `u32::MAX`: placements also arrive
    /// deserialized from outside (`vmig.mig/v1` reports, reservations), where any `u32` pair
    /// can appear, and no real GPU has that many slices, so the clamp changes no real answer.
    pub const fn end(self) -> u32 {
        self.start.saturating_add(self.size)
    }

    /// Whether the two slice ranges share at least one slice.
    pub const fn overlaps(self, other: Placement) -> bool {
        self.start < other.end() && other.start < self.end()
    }

    /// Whether `other` lies entirely inside this range.
    pub const fn contains(self, other: Placement) -> bool {
        self.start <= other.start && other.end() <= self.end()
    }

    /// The occupied slices as a bit mask (bit `i` = slice `i`). Slices past 63 are not
    /// representable; no MIG GPU has more than 12.
    pub const fn mask(self) -> u64 {
        if self.size == 0 || self.start >= 64 {
            return 0;
        }
        let ones = if self.size >= 64 {
            u64::MAX
        } else {
            (1u64 << self.size) - 1
        };
        ones << self.start
    }
}

impl std::fmt::Display for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.start, self.size)
    }
}

/// Why a `start:size` text is not a placement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a placement; write it as START:SIZE, e.g. 4:4")]
pub struct ParsePlacementError(pub String);

impl std::str::FromStr for Placement {
    type Err = ParsePlacementError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParsePlacementError(s.to_string());
        let (start, size) = s.trim().split_once(':').ok_or_else(err)?;
        let start = start.trim().parse().map_err(|_| err())?;
        let size: u32 = size.trim().parse().map_err(|_| err())?;
        if size == 0 {
            return Err(err());
        }
        Ok(Placement { start, size })
    }
}

macro_rules! display_as_number {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&self.0, f)
            }
        }
    )*};
}
display_as_number!(GiProfileId, CiProfileId, GpuInstanceId, ComputeInstanceId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_is_symmetric_and_half_open() {
        let a = Placement::new(0, 4);
        assert!(a.overlaps(Placement::new(3, 1)));
        assert!(!a.overlaps(Placement::new(4, 4)));
        assert!(Placement::new(4, 4).contains(Placement::new(6, 2)));
        assert_eq!(Placement::new(4, 2).mask(), 0b0011_0000);
    }

    /// Regression (found by the `report` fuzz target): a deserialized placement such as
    /// `{"start": 1, "size": 4294967295}` overflowed in `end()`.
    #[test]
    fn out_of_range_placements_do_not_overflow() {
        let huge = Placement::new(1, u32::MAX);
        assert_eq!(huge.end(), u32::MAX);
        assert!(huge.overlaps(huge));
        assert!(huge.contains(Placement::new(u32::MAX - 1, 1)));
        assert!(Placement::new(0, 4).overlaps(huge));
        assert!(!Placement::new(0, 1).overlaps(huge));
        assert_eq!(Placement::new(u32::MAX, 1).mask(), 0);
    }

    #[test]
    fn placement_text_round_trips() {
        let p: Placement = "4:4".parse().unwrap();
        assert_eq!(p, Placement::new(4, 4));
        assert_eq!(p.to_string(), "4:4");
        assert!("4".parse::<Placement>().is_err());
        assert!("4:0".parse::<Placement>().is_err());
        assert!("a:1".parse::<Placement>().is_err());
    }
}
