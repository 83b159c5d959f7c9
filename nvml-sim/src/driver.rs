//! Where drivers and platforms differ: which GI profiles a driver offers, the memory it
//! reports for them, and what the ESXi host driver answers that a bare-metal one does not.
//!
//! The catalog in the `mig` crate holds one driver's view of each GPU (the newest one a source
//! shows). Real drivers differ: the seed's ESXi host (A100-PCIE-40GB, driver 510.47.03) offers
//! no `1g.10gb`, prints other memory sizes and reads a remaining capacity of 0 on an empty GPU.
//! `nvml-sim init --driver-version V --platform P` selects the behaviour; the FFI layer asks
//! [`Behaviour`] before it answers. Sources for each rule: docs/nvml-sim.md and
//! docs/mig-model.md ("Driver differences").
use mig::{GiProfile, GiProfileId, GpuModel, MigState};
use serde::{Deserialize, Serialize};

/// The operating system the simulated driver runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Platform {
    /// A bare-metal or KVM Linux host: NVML answers as NVIDIA's documentation shows.
    #[default]
    Linux,
    /// An ESXi host with NVIDIA's host driver (the vGPU manager), as the seed's session shows.
    Esxi,
}

/// What one (model, driver version, platform) changes in the catalog's answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Behaviour {
    /// GI profiles this driver does not offer (NOT_SUPPORTED by index, INVALID_ARGUMENT by id).
    pub hidden: Vec<GiProfileId>,
    /// `memorySizeMB` this driver reports instead of the catalog's, per profile id.
    pub memory_mib: Vec<(GiProfileId, u64)>,
    /// `nvmlDeviceGetGpuInstanceRemainingCapacity` reads 0 while the GPU has no GPU instance
    /// (ESXi: the seed's `-lgip` shows `0/7 … 0/1` with MIG on and no instance, and the
    /// `-cgi 9,19,14,19` that followed succeeded).
    pub capacity_zero_when_empty: bool,
    /// Pairs of GI profiles this driver refuses to have on one GPU at the same time, in either
    /// order: creating the second is INSUFFICIENT_RESOURCES and its remaining capacity reads 0.
    pub exclusive: Vec<(GiProfileId, GiProfileId)>,
    /// The GI profile-info calls answer while MIG is disabled (older drivers: NOT_SUPPORTED).
    /// Seen on driver 580.159.04 (H100 80GB HBM3, MIG disabled): `nvidia-smi mig -lgip` and
    /// `-lgipp` list every profile and placement (docs/mig-model.md §7). From R580 on, by that
    /// observation; the exact first release is not known.
    pub profiles_with_mig_off: bool,
}

/// The driver's major version (`510` of `510.47.03`); `None` if it does not start with digits.
pub fn driver_major(version: &str) -> Option<u32> {
    version.split('.').next()?.trim().parse().ok()
}

/// The CUDA driver API version (`nvmlSystemGetCudaDriverVersion`, 1000 × major + 10 × minor)
/// a driver branch ships, from NVIDIA's CUDA toolkit/driver table; a branch between two rows
/// gets the older row's version.
pub fn cuda_of(major: u32) -> i32 {
    const TABLE: &[(u32, i32)] = &[
        (450, 11000),
        (460, 11020),
        (470, 11040),
        (510, 11060),
        (515, 11070),
        (520, 11080),
        (525, 12000),
        (530, 12010),
        (535, 12020),
        (545, 12030),
        (550, 12040),
        (555, 12050),
        (560, 12060),
        (565, 12070),
        (570, 12080),
        (575, 12090),
        (580, 13000),
    ];
    TABLE
        .iter()
        .rev()
        .find(|(m, _)| major >= *m)
        .map_or(11000, |(_, cuda)| *cuda)
}

/// The behaviour of `model` under driver `version` on `platform`.
pub fn behaviour(model: &GpuModel, version: &str, platform: Platform) -> Behaviour {
    let mut b = Behaviour {
        capacity_zero_when_empty: platform == Platform::Esxi,
        ..Behaviour::default()
    };
    // An unparsable version gets the catalog's (newest) behaviour.
    let Some(major) = driver_major(version) else {
        b.profiles_with_mig_off = true;
        return b;
    };
    b.profiles_with_mig_off = major >= 580;
    if major < 510 {
        // MIG user guide, "Concepts": "prior to NVIDIA driver release R510, the combination of
        // a (4 memory, 4 compute) and a (4 memory, 3 compute) profile was not supported". The
        // rule is stated by shape, so it is applied by shape (on the GPUs such drivers run MIG
        // on, that is A100 `4g` with `3g`). The error code is inferred.
        let shape = |compute: u32, memory: u32| {
            model
                .gi_profiles
                .iter()
                .find(|p| p.compute_slices == compute && p.memory_slices == memory)
                .map(|p| p.id)
        };
        if let (Some(four), Some(three)) = (shape(4, 4), shape(3, 4)) {
            b.exclusive.push((four, three));
        }
    }
    let a100 = model.key.starts_with("a100-");
    let a100_40 = a100 && model.key.ends_with("-40gb");
    if a100 {
        // MIG user guide, supported profiles: `1g.10gb` (A100-40GB) needs R525+; the same
        // rule is applied to `1g.20gb` on A100-80GB by analogy (inferred).
        if major < 525 {
            b.hidden.push(GiProfileId(15));
        }
        // `1g.5gb+me` / `1g.10gb+me` need R470+ (MIG user guide).
        if major < 470 {
            b.hidden.push(GiProfileId(20));
        }
    }
    if model.key == "a30-24gb" {
        // MIG user guide: `1g.6gb+me` R470+, `2g.12gb+me` R525+.
        if major < 525 {
            b.hidden.push(GiProfileId(6));
        }
        if major < 470 {
            b.hidden.push(GiProfileId(21));
        }
    }
    if a100_40 && major == 510 {
        // The seed's `-lgip` (A100-PCIE-40GB, 510.47.03): 4.75 / 9.75 / 19.62 / 19.62 / 39.50
        // GiB. The MiB values are those GiB × 1024 (the GiB column is verified, the exact MiB
        // inferred; the seed's `nvidia-smi` shows 4864MiB for a 1g.5gb device).
        b.memory_mib = vec![
            (GiProfileId(19), 4864),
            (GiProfileId(20), 4864),
            (GiProfileId(14), 9984),
            (GiProfileId(9), 20096),
            (GiProfileId(5), 20096),
            (GiProfileId(0), 40448),
        ];
    }
    b
}

impl Behaviour {
    /// Whether the driver offers the profile with this id.
    pub fn offers(&self, id: GiProfileId) -> bool {
        !self.hidden.contains(&id)
    }

    /// Whether this driver lets a GI of `profile` join the GIs `state` already has (false when
    /// one of them forms an `exclusive` pair with it).
    pub fn allows_with(&self, profile: GiProfileId, state: &MigState) -> bool {
        let partner = |(a, b): &(GiProfileId, GiProfileId)| {
            if *a == profile {
                Some(*b)
            } else if *b == profile {
                Some(*a)
            } else {
                None
            }
        };
        self.exclusive
            .iter()
            .filter_map(partner)
            .all(|other| state.gpu_instances.values().all(|gi| gi.profile != other))
    }

    /// The profile as this driver reports it (`None` if it does not offer it).
    pub fn view(&self, p: &GiProfile) -> Option<GiProfile> {
        if !self.offers(p.id) {
            return None;
        }
        let mut p = p.clone();
        if let Some((_, mib)) = self.memory_mib.iter().find(|(id, _)| *id == p.id) {
            p.memory_mib = *mib;
        }
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a100() -> &'static GpuModel {
        GpuModel::by_key("a100-pcie-40gb").expect("catalog model")
    }

    #[test]
    fn driver_510_on_esxi_is_the_seed() {
        let b = behaviour(a100(), "510.47.03", Platform::Esxi);
        assert!(!b.offers(GiProfileId(15)));
        assert!(b.offers(GiProfileId(20)));
        assert!(b.capacity_zero_when_empty);
        let gib: Vec<String> = [19, 20, 14, 9, 5, 0]
            .iter()
            .map(|id| {
                let p = a100().gi_profile(GiProfileId(*id)).expect("profile");
                b.view(p).expect("offered").memory_gib_display()
            })
            .collect();
        assert_eq!(gib, ["4.75", "4.75", "9.75", "19.62", "19.62", "39.50"]);
    }

    #[test]
    fn drivers_before_r510_refuse_4g_with_3g() {
        let (four, three) = (GiProfileId(5), GiProfileId(9));
        for model in ["a100-pcie-40gb", "a100-sxm4-80gb"] {
            let model = GpuModel::by_key(model).expect("catalog model");
            let old = behaviour(model, "470.82.01", Platform::Linux);
            assert_eq!(old.exclusive, [(four, three)]);
            let mut state = MigState::new(model);
            assert!(old.allows_with(four, &state) && old.allows_with(three, &state));
            state.create_gi(three, None).expect("3g on an empty GPU");
            assert!(!old.allows_with(four, &state));
            assert!(old.allows_with(three, &state), "two 3g are fine");
            assert!(old.allows_with(GiProfileId(19), &state));
            // From R510 on the combination is allowed (the seed's 510.47.03 included).
            for newer in ["510.47.03", "550.54.15"] {
                assert!(behaviour(model, newer, Platform::Linux).allows_with(four, &state));
            }
        }
        // The A30 has no 3g profile: nothing to refuse.
        let a30 = GpuModel::by_key("a30-24gb").expect("catalog model");
        assert!(
            behaviour(a30, "470.82.01", Platform::Linux)
                .exclusive
                .is_empty()
        );
    }

    #[test]
    fn newer_drivers_and_linux_keep_the_catalog() {
        let b = behaviour(a100(), "550.54.15", Platform::Linux);
        assert_eq!(b, Behaviour::default());
        // Driver 580 answers the profile calls with MIG off; an unparsable version is taken
        // as the newest driver.
        let newest = Behaviour {
            profiles_with_mig_off: true,
            ..Behaviour::default()
        };
        for v in ["580.159.04", "590.44.01", "garbage"] {
            assert_eq!(behaviour(a100(), v, Platform::Linux), newest, "{v}");
        }
        assert!(!behaviour(a100(), "575.57.08", Platform::Linux).profiles_with_mig_off);
        assert_eq!(driver_major("580.82.07"), Some(580));
        assert_eq!(cuda_of(510), 11060);
        assert_eq!(cuda_of(550), 12040);
    }
}
