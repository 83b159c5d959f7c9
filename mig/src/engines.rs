//! How many engines of each kind a MIG profile gets: one value type for the catalog, the
//! agent's NVML layer and its `lgip`/`lcip` tables, so the six counts are named and copied
//! in one place.
use serde::{Deserialize, Serialize};

/// The engine counts of one MIG profile, in NVML's terms.
///
/// For a GPU-instance profile every count is the GI's own. For a compute-instance profile
/// `sm` is the CI's exclusive SMs and the other counts are the engines it shares with the rest
/// of its GI (NVML's `shared…Count` fields). Memory is deliberately not here: only a GI owns
/// memory (its CIs share it), so `memory_mib` sits next to the GI profile's slice counts.
///
/// Serialised with NVML's short names (`sm`, `ce`, `dec`, `enc`, `jpeg`, `ofa`), which are
/// also the agent's stable JSON keys when flattened into its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct EngineCounts {
    /// Streaming multiprocessors (`multiprocessorCount`).
    pub sm: u32,
    /// Copy engines (`copyEngineCount`; `sharedCopyEngineCount` for a CI).
    pub ce: u32,
    /// Video decoders (`decoderCount`).
    pub dec: u32,
    /// Video encoders (`encoderCount`).
    pub enc: u32,
    /// JPEG decoders (`jpegCount`).
    pub jpeg: u32,
    /// Optical-flow accelerators (`ofaCount`).
    pub ofa: u32,
}

impl EngineCounts {
    /// Component-wise sum.
    #[must_use]
    pub fn plus(self, other: EngineCounts) -> EngineCounts {
        EngineCounts {
            sm: self.sm + other.sm,
            ce: self.ce + other.ce,
            dec: self.dec + other.dec,
            enc: self.enc + other.enc,
            jpeg: self.jpeg + other.jpeg,
            ofa: self.ofa + other.ofa,
        }
    }

    /// Component-wise difference, stopping at zero.
    #[must_use]
    pub fn saturating_sub(self, other: EngineCounts) -> EngineCounts {
        EngineCounts {
            sm: self.sm.saturating_sub(other.sm),
            ce: self.ce.saturating_sub(other.ce),
            dec: self.dec.saturating_sub(other.dec),
            enc: self.enc.saturating_sub(other.enc),
            jpeg: self.jpeg.saturating_sub(other.jpeg),
            ofa: self.ofa.saturating_sub(other.ofa),
        }
    }

    /// The media engines `[DEC, ENC, JPEG, OFA]`: the GPU has a fixed pool of them (those of
    /// its full-GPU profile) from which every GI takes its share. This is what makes the
    /// `+me` profiles singletons (there is one OFA).
    pub fn media(self) -> [u32; 4] {
        [self.dec, self.enc, self.jpeg, self.ofa]
    }

    /// Whether every media engine count is at most `pool`'s. SMs and copy engines are not
    /// compared: they come with compute slices, which placements already account for.
    pub fn media_fits_within(self, pool: EngineCounts) -> bool {
        self.media()
            .into_iter()
            .zip(pool.media())
            .all(|(need, have)| need <= have)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_is_component_wise_and_media_only_limits_media() {
        let a = EngineCounts {
            sm: 14,
            ce: 1,
            dec: 1,
            enc: 0,
            jpeg: 1,
            ofa: 1,
        };
        let pool = EngineCounts {
            sm: 1,
            ce: 0,
            dec: 5,
            enc: 0,
            jpeg: 1,
            ofa: 1,
        };
        assert_eq!(a.plus(a).saturating_sub(a), a);
        assert_eq!(a.saturating_sub(a.plus(a)), EngineCounts::default());
        assert_eq!(a.media(), [1, 0, 1, 1]);
        assert!(a.media_fits_within(pool), "SMs and CEs impose no limit");
        assert!(!a.plus(a).media_fits_within(pool), "one OFA in the pool");
    }
}
