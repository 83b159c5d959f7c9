//! Opaque NVML handles as tagged integers.
//!
//! NVML hands out `nvmlDevice_t`, `nvmlGpuInstance_t` and `nvmlComputeInstance_t` pointers that
//! callers never dereference. Another process may replace the simulator's state between any two
//! calls, so a handle cannot point at memory; instead it *encodes* what it names (GPU index, GI id, CI id) with a
//! kind tag. Decoding never trusts a value: the tag must match and the named object must still
//! exist in the current state (checked by the caller), so a stale or forged handle is answered
//! with `NVML_ERROR_INVALID_ARGUMENT` instead of undefined behaviour.

/// Marker in the top byte so that a random pointer is very unlikely to decode.
const MAGIC: u64 = 0x4E; // 'N'
const MAGIC_SHIFT: u32 = 56;
const KIND_SHIFT: u32 = 48;
const GPU_SHIFT: u32 = 32;
const GI_SHIFT: u32 = 16;
const FIELD_MASK: u64 = 0xFFFF;

/// What a handle names. Ids are the raw NVML numbers (GPU index, GI id, CI id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Handle {
    /// A physical GPU (`nvmlDevice_t` from `GetHandleByIndex`).
    Device { gpu: u32 },
    /// A GPU instance (`nvmlGpuInstance_t`).
    GpuInstance { gpu: u32, gi: u32 },
    /// A compute instance (`nvmlComputeInstance_t`).
    ComputeInstance { gpu: u32, gi: u32, ci: u32 },
    /// A MIG device (an `nvmlDevice_t` naming one compute instance).
    MigDevice { gpu: u32, gi: u32, ci: u32 },
}

impl Handle {
    fn kind(self) -> u64 {
        match self {
            Handle::Device { .. } => 1,
            Handle::GpuInstance { .. } => 2,
            Handle::ComputeInstance { .. } => 3,
            Handle::MigDevice { .. } => 4,
        }
    }

    /// The integer value handed to C as a pointer. Never zero (the magic byte is set).
    /// Ids above 16 bits cannot occur (GPU counts and MIG ids are small); they are masked.
    pub fn encode(self) -> u64 {
        let (gpu, gi, ci) = match self {
            Handle::Device { gpu } => (gpu, 0, 0),
            Handle::GpuInstance { gpu, gi } => (gpu, gi, 0),
            Handle::ComputeInstance { gpu, gi, ci } | Handle::MigDevice { gpu, gi, ci } => {
                (gpu, gi, ci)
            }
        };
        (MAGIC << MAGIC_SHIFT)
            | (self.kind() << KIND_SHIFT)
            | ((u64::from(gpu) & FIELD_MASK) << GPU_SHIFT)
            | ((u64::from(gi) & FIELD_MASK) << GI_SHIFT)
            | (u64::from(ci) & FIELD_MASK)
    }

    /// Decode a value received from C; `None` if it is not one of ours.
    pub fn decode(raw: u64) -> Option<Handle> {
        if raw >> MAGIC_SHIFT != MAGIC {
            return None;
        }
        let gpu = ((raw >> GPU_SHIFT) & FIELD_MASK) as u32;
        let gi = ((raw >> GI_SHIFT) & FIELD_MASK) as u32;
        let ci = (raw & FIELD_MASK) as u32;
        match (raw >> KIND_SHIFT) & 0xFF {
            1 if gi == 0 && ci == 0 => Some(Handle::Device { gpu }),
            2 if ci == 0 => Some(Handle::GpuInstance { gpu, gi }),
            3 => Some(Handle::ComputeInstance { gpu, gi, ci }),
            4 => Some(Handle::MigDevice { gpu, gi, ci }),
            _ => None,
        }
    }

    /// The GPU index this handle belongs to.
    pub fn gpu(self) -> u32 {
        match self {
            Handle::Device { gpu }
            | Handle::GpuInstance { gpu, .. }
            | Handle::ComputeInstance { gpu, .. }
            | Handle::MigDevice { gpu, .. } => gpu,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_foreign_values() {
        let all = [
            Handle::Device { gpu: 3 },
            Handle::GpuInstance { gpu: 0, gi: 13 },
            Handle::ComputeInstance {
                gpu: 1,
                gi: 2,
                ci: 0,
            },
            Handle::MigDevice {
                gpu: 7,
                gi: 14,
                ci: 2,
            },
        ];
        for h in all {
            assert_ne!(h.encode(), 0);
            assert_eq!(Handle::decode(h.encode()), Some(h));
        }
        assert_eq!(Handle::decode(0), None);
        assert_eq!(Handle::decode(0x1000), None);
        assert_eq!(Handle::decode(0x4E09_0000_0000_0000), None);
        // A GI handle is never accepted as a device handle by kind confusion.
        let gi = Handle::GpuInstance { gpu: 0, gi: 1 }.encode();
        assert!(!matches!(Handle::decode(gi), Some(Handle::Device { .. })));
    }

    proptest::proptest! {
        #[test]
        fn decoding_is_canonical(raw in proptest::prelude::any::<u64>()) {
            // Any value we accept re-encodes to itself: two different pointers never name
            // the same object, so handle equality in clients means object equality.
            if let Some(h) = Handle::decode(raw) {
                proptest::prop_assert_eq!(h.encode(), raw);
            }
        }

        #[test]
        fn small_ids_round_trip(gpu in 0u32..0x1_0000, gi in 0u32..0x1_0000, ci in 0u32..0x1_0000) {
            for h in [
                Handle::Device { gpu },
                Handle::GpuInstance { gpu, gi },
                Handle::ComputeInstance { gpu, gi, ci },
                Handle::MigDevice { gpu, gi, ci },
            ] {
                proptest::prop_assert_eq!(Handle::decode(h.encode()), Some(h));
            }
        }
    }
}
