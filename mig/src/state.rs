//! The MIG state of one GPU: which GPU instances and compute instances exist, where they sit,
//! and which are in use. All operations validate exactly as the driver does and return errors
//! that mirror NVML's codes, so the simulator and the planner share one source of truth.
//!
//! The driver rules modelled here (docs/mig-model.md has the sources):
//! - a GI occupies the memory slices `[start, start+size)` of its placement; creation fails
//!   with `InsufficientResources` on overlap, and with `InvalidPlacement` for a start the
//!   profile does not list;
//! - at most `instance_count` GIs of one profile exist at a time;
//! - the GPU has one pool of media engines (those of its full-GPU profile) and every GI holds
//!   its own; this is what makes `+me` profiles singletons and, on A30, `1g.6gb+me` and
//!   `2g.12gb+me` mutually exclusive;
//! - GI ids come from the model's `gi_id_regions` table; with no placement given the driver
//!   takes the free legal region with the lowest id;
//! - CIs occupy compute slices of their GI; CI ids start at 0 in each GI and take the lowest
//!   free id; with no placement given the lowest free legal start is taken;
//! - nothing cascades: a GI with CIs, or in use, cannot be destroyed; a CI in use cannot be.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::{CiProfile, GiProfile, GpuModel};
use crate::engines::EngineCounts;
use crate::ids::{CiProfileId, ComputeInstanceId, GiProfileId, GpuInstanceId, Placement};

/// A compute instance inside a GPU instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputeInstance {
    /// Driver-assigned id, unique within the parent GI.
    pub id: ComputeInstanceId,
    /// The CI profile it was created with.
    pub profile: CiProfileId,
    /// Placement in compute slices of the parent GI.
    pub placement: Placement,
    /// Something runs on it (processes, or the CI backs an active vGPU).
    pub in_use: bool,
}

/// A GPU instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuInstance {
    /// Driver-assigned id, unique on the GPU.
    pub id: GpuInstanceId,
    /// The GI profile it was created with.
    pub profile: GiProfileId,
    /// Placement in memory slices of the GPU.
    pub placement: Placement,
    /// Its compute instances by id.
    pub compute_instances: BTreeMap<ComputeInstanceId, ComputeInstance>,
    /// Marked in use from outside (e.g. it backs an active vGPU) regardless of its CIs.
    pub in_use: bool,
}

impl GpuInstance {
    /// In use if marked so, or if any of its compute instances is.
    pub fn is_in_use(&self) -> bool {
        self.in_use || self.compute_instances.values().any(|c| c.in_use)
    }

    /// Compute slices of this GI occupied by its CIs, as a bit mask.
    pub fn occupied_compute_mask(&self) -> u64 {
        self.compute_instances
            .values()
            .fold(0, |m, c| m | c.placement.mask())
    }

    fn lowest_free_ci_id(&self) -> ComputeInstanceId {
        let mut id = 0;
        while self.compute_instances.contains_key(&ComputeInstanceId(id)) {
            id += 1;
        }
        ComputeInstanceId(id)
    }
}

/// MIG mode of a GPU, as NVML reports it (`NVML_DEVICE_MIG_DISABLE` = 0, `_ENABLE` = 1).
/// `MigState` does not hold it: the caller tracks current and pending mode and answers
/// `MigError::MigDisabled` itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MigMode {
    /// MIG off: the GPU is one device, GI/CI calls fail with NOT_SUPPORTED.
    #[default]
    Disabled,
    /// MIG on: GIs and CIs can be created.
    Enabled,
}

impl MigMode {
    /// The NVML integer (`NVML_DEVICE_MIG_DISABLE` / `NVML_DEVICE_MIG_ENABLE`).
    pub fn as_nvml(self) -> u32 {
        match self {
            MigMode::Disabled => 0,
            MigMode::Enabled => 1,
        }
    }

    /// From the NVML integer; `None` for anything but 0 and 1.
    pub fn from_nvml(value: u32) -> Option<MigMode> {
        match value {
            0 => Some(MigMode::Disabled),
            1 => Some(MigMode::Enabled),
            _ => None,
        }
    }
}

/// Errors mirroring NVML return codes, with the object they concern.
/// NVML mapping: `MigDisabled` → NOT_SUPPORTED; `UnknownGiProfile`/`UnknownCiProfile` →
/// NOT_SUPPORTED (profile query) or INVALID_ARGUMENT (create); `InvalidPlacement` →
/// INVALID_ARGUMENT; `InsufficientResources` → INSUFFICIENT_RESOURCES; `GiNotFound`/`CiNotFound`
/// → NOT_FOUND; `GiInUse`/`GiHasComputeInstances`/`CiInUse` → IN_USE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MigError {
    /// MIG mode is off on the GPU.
    #[error(
        "MIG mode is disabled on this GPU; enable it (nvidia-smi -mig 1, then reset the GPU) first"
    )]
    MigDisabled,
    /// The GPU has no GI profile with this id.
    #[error(
        "GPU instance profile {0} is not supported on this GPU; list the valid ones with `nvidia-smi mig -lgip`"
    )]
    UnknownGiProfile(GiProfileId),
    /// The GI profile offers no CI profile with this id.
    #[error(
        "compute instance profile {ci} is not supported inside GPU instance profile {gi}; list the valid ones with `nvidia-smi mig -lcip`"
    )]
    UnknownCiProfile {
        /// The GI profile.
        gi: GiProfileId,
        /// The CI profile asked for.
        ci: CiProfileId,
    },
    /// The placement is not one the profile lists.
    #[error(
        "placement {0} is not a legal placement for this profile; use one listed by `nvidia-smi mig -lgipp`/`-lcipp`"
    )]
    InvalidPlacement(Placement),
    /// No room: overlap with existing instances, the profile's instance limit, or media engines.
    #[error(
        "insufficient resources: the instance would overlap an existing one or exceed the profile's instance or media-engine limit; destroy instances or pick another placement"
    )]
    InsufficientResources,
    /// No GI with this id.
    #[error("GPU instance {0} not found")]
    GiNotFound(GpuInstanceId),
    /// No CI with this id in that GI.
    #[error("compute instance {ci} not found in GPU instance {gi}")]
    CiNotFound {
        /// The GI searched.
        gi: GpuInstanceId,
        /// The CI asked for.
        ci: ComputeInstanceId,
    },
    /// The GI (or one of its CIs) is in use.
    #[error("GPU instance {0} is in use; stop what runs on it (e.g. power off the VM) first")]
    GiInUse(GpuInstanceId),
    /// The GI still has CIs; destroy does not cascade.
    #[error("GPU instance {0} still has compute instances; destroy them first")]
    GiHasComputeInstances(GpuInstanceId),
    /// The CI is in use.
    #[error("compute instance {ci} in GPU instance {gi} is in use; stop what runs on it first")]
    CiInUse {
        /// The parent GI.
        gi: GpuInstanceId,
        /// The CI.
        ci: ComputeInstanceId,
    },
}

/// Why a deserialised `MigState` is not one the driver could be in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("inconsistent MIG state for model `{model}`: {reason}")]
pub struct InvalidStateError {
    /// The state's model key.
    pub model: String,
    /// What is wrong.
    pub reason: String,
}

/// The MIG layout of one GPU (MIG mode itself is tracked by the caller).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigState {
    /// Catalog key of the GPU model.
    pub model: String,
    /// GPU instances by id.
    pub gpu_instances: BTreeMap<GpuInstanceId, GpuInstance>,
}

/// What a set of GIs takes from the GPU: memory slices, instances per profile, engines.
/// Kept separate from `MigState` so that hypothetical layouts (fragmentation) reuse the rules.
#[derive(Debug, Clone, Default)]
struct Occupancy {
    mask: u64,
    counts: BTreeMap<GiProfileId, u32>,
    engines: EngineCounts,
}

impl Occupancy {
    fn add(&mut self, profile: &GiProfile, placement: Placement) {
        self.mask |= placement.mask();
        *self.counts.entry(profile.id).or_default() += 1;
        self.engines = self.engines.plus(profile.engines);
    }

    fn remove(&mut self, profile: &GiProfile, placement: Placement) {
        self.mask &= !placement.mask();
        if let Some(n) = self.counts.get_mut(&profile.id) {
            *n = n.saturating_sub(1);
        }
        self.engines = self.engines.saturating_sub(profile.engines);
    }

    /// How many more of `profile` the instance limit and the engine pool allow.
    fn quota(&self, model: &GpuModel, profile: &GiProfile) -> u32 {
        let existing = self.counts.get(&profile.id).copied().unwrap_or(0);
        let mut quota = profile.instance_count.saturating_sub(existing);
        let pool = model.engine_pool();
        let media = pool
            .media()
            .into_iter()
            .zip(self.engines.media())
            .zip(profile.engines.media());
        for ((have, used), per) in media {
            // Engines this profile does not use impose no limit.
            if let Some(n) = have.saturating_sub(used).checked_div(per) {
                quota = quota.min(n);
            }
        }
        quota
    }

    /// Legal placements of `profile` that overlap nothing, in `-lgipp` order.
    fn free_slots(&self, profile: &GiProfile) -> impl Iterator<Item = Placement> + '_ {
        let mask = self.mask;
        profile
            .placements
            .iter()
            .copied()
            .filter(move |p| p.mask() & mask == 0)
    }

    fn remaining(&self, model: &GpuModel, profile: &GiProfile) -> u32 {
        self.quota(model, profile)
            .min(max_disjoint(self.free_slots(profile)))
    }

    /// The largest profile (compute slices, then memory slices; first in table order on a
    /// tie) with room for one more instance.
    fn largest(&self, model: &'static GpuModel) -> Option<&'static GiProfile> {
        model
            .gi_profiles
            .iter()
            .rev()
            .filter(|p| self.remaining(model, p) > 0)
            .max_by_key(|p| (p.compute_slices, p.memory_slices))
    }
}

/// The most pairwise disjoint ranges among `slots` (interval scheduling: earliest end first).
fn max_disjoint(slots: impl Iterator<Item = Placement>) -> u32 {
    let mut slots: Vec<Placement> = slots.collect();
    slots.sort_by_key(|p| (p.end(), p.start));
    let mut taken = 0u64;
    let mut count = 0;
    for p in slots {
        if p.mask() & taken == 0 {
            taken |= p.mask();
            count += 1;
        }
    }
    count
}

impl MigState {
    /// An empty state for a model.
    pub fn new(model: &'static GpuModel) -> Self {
        MigState {
            model: model.key.to_string(),
            gpu_instances: BTreeMap::new(),
        }
    }

    /// The catalog model of this state. Panics only if the key was not from the catalog
    /// (states are only built from catalog models or validated on deserialisation).
    pub fn gpu_model(&self) -> &'static GpuModel {
        self.try_gpu_model().unwrap_or_else(|| {
            panic!(
                "MigState model `{}` is not in the catalog; validate states after deserialising",
                self.model
            )
        })
    }

    /// The catalog model of this state, `None` if the key is unknown.
    pub fn try_gpu_model(&self) -> Option<&'static GpuModel> {
        GpuModel::by_key(&self.model)
    }

    /// Whether no GI exists.
    pub fn is_empty(&self) -> bool {
        self.gpu_instances.is_empty()
    }

    /// The GI with this id.
    pub fn gpu_instance(&self, gi: GpuInstanceId) -> Option<&GpuInstance> {
        self.gpu_instances.get(&gi)
    }

    /// The GI that sits exactly at `placement`, if any.
    pub fn gi_at(&self, placement: Placement) -> Option<&GpuInstance> {
        self.gpu_instances
            .values()
            .find(|g| g.placement == placement)
    }

    /// The catalog profile of an existing GI.
    pub fn gi_profile_of(&self, gi: GpuInstanceId) -> Result<&'static GiProfile, MigError> {
        let inst = self
            .gpu_instances
            .get(&gi)
            .ok_or(MigError::GiNotFound(gi))?;
        self.profile(inst.profile)
    }

    /// Memory slices occupied by GIs, as a bit mask (bit `i` = slice `i`).
    pub fn occupied_memory_mask(&self) -> u64 {
        self.gpu_instances
            .values()
            .fold(0, |m, g| m | g.placement.mask())
    }

    fn profile(&self, id: GiProfileId) -> Result<&'static GiProfile, MigError> {
        self.gpu_model()
            .gi_profile(id)
            .ok_or(MigError::UnknownGiProfile(id))
    }

    fn occupancy(&self) -> Occupancy {
        let model = self.gpu_model();
        let mut occ = Occupancy::default();
        for g in self.gpu_instances.values() {
            // A GI whose profile is unknown still blocks its slices.
            match model.gi_profile(g.profile) {
                Some(p) => occ.add(p, g.placement),
                None => occ.mask |= g.placement.mask(),
            }
        }
        occ
    }

    /// Check that a GI of `profile` can be created at `placement` now.
    fn check_gi_at(
        &self,
        occ: &Occupancy,
        profile: &GiProfile,
        placement: Placement,
    ) -> Result<(), MigError> {
        if !profile.placements.contains(&placement) {
            return Err(MigError::InvalidPlacement(placement));
        }
        if placement.mask() & occ.mask != 0 || occ.quota(self.gpu_model(), profile) == 0 {
            return Err(MigError::InsufficientResources);
        }
        Ok(())
    }

    /// The placement the modelled driver picks for `profile` when none is given: the free
    /// legal region with the lowest GI id.
    fn auto_gi_placement(
        &self,
        occ: &Occupancy,
        profile: &GiProfile,
    ) -> Result<Placement, MigError> {
        let model = self.gpu_model();
        if occ.quota(model, profile) == 0 {
            return Err(MigError::InsufficientResources);
        }
        occ.free_slots(profile)
            .min_by_key(|p| (model.gi_id_for(*p).unwrap_or(u32::MAX), p.start))
            .ok_or(MigError::InsufficientResources)
    }

    /// Create a GI; with `placement: None` the modelled driver's auto-placement policy chooses.
    pub fn create_gi(
        &mut self,
        profile: GiProfileId,
        placement: Option<Placement>,
    ) -> Result<GpuInstanceId, MigError> {
        let model = self.gpu_model();
        let prof = self.profile(profile)?;
        let occ = self.occupancy();
        let placement = match placement {
            Some(p) => {
                self.check_gi_at(&occ, prof, p)?;
                p
            }
            None => self.auto_gi_placement(&occ, prof)?,
        };
        let id = match model.gi_id_for(placement) {
            Some(id) if !self.gpu_instances.contains_key(&GpuInstanceId(id)) => GpuInstanceId(id),
            // Not reachable with catalog data (every legal placement has its own region, and
            // two GIs in one region would overlap); keep ids unique regardless.
            _ => {
                let mut id = 0;
                while self.gpu_instances.contains_key(&GpuInstanceId(id)) {
                    id += 1;
                }
                GpuInstanceId(id)
            }
        };
        self.gpu_instances.insert(
            id,
            GpuInstance {
                id,
                profile,
                placement,
                compute_instances: BTreeMap::new(),
                in_use: false,
            },
        );
        Ok(id)
    }

    /// Destroy a GI. Refused while it has CIs or is in use.
    pub fn destroy_gi(&mut self, gi: GpuInstanceId) -> Result<(), MigError> {
        let inst = self
            .gpu_instances
            .get(&gi)
            .ok_or(MigError::GiNotFound(gi))?;
        if inst.is_in_use() {
            return Err(MigError::GiInUse(gi));
        }
        if !inst.compute_instances.is_empty() {
            return Err(MigError::GiHasComputeInstances(gi));
        }
        self.gpu_instances.remove(&gi);
        Ok(())
    }

    fn ci_profile(
        &self,
        gi: GpuInstanceId,
        profile: CiProfileId,
    ) -> Result<(&GpuInstance, &'static CiProfile), MigError> {
        let inst = self
            .gpu_instances
            .get(&gi)
            .ok_or(MigError::GiNotFound(gi))?;
        let gi_prof = self.profile(inst.profile)?;
        let ci_prof = gi_prof
            .ci_profile(profile)
            .ok_or(MigError::UnknownCiProfile {
                gi: inst.profile,
                ci: profile,
            })?;
        Ok((inst, ci_prof))
    }

    fn ci_quota(inst: &GpuInstance, ci_prof: &CiProfile) -> u32 {
        let existing = inst
            .compute_instances
            .values()
            .filter(|c| c.profile == ci_prof.id)
            .count() as u32;
        ci_prof.instance_count.saturating_sub(existing)
    }

    /// Create a CI inside a GI; `placement: None` picks the first free legal placement.
    pub fn create_ci(
        &mut self,
        gi: GpuInstanceId,
        profile: CiProfileId,
        placement: Option<Placement>,
    ) -> Result<ComputeInstanceId, MigError> {
        let (inst, ci_prof) = self.ci_profile(gi, profile)?;
        let taken = inst.occupied_compute_mask();
        if let Some(p) = placement
            && !ci_prof.placements.contains(&p)
        {
            return Err(MigError::InvalidPlacement(p));
        }
        if Self::ci_quota(inst, ci_prof) == 0 {
            return Err(MigError::InsufficientResources);
        }
        let placement = match placement {
            Some(p) if p.mask() & taken == 0 => p,
            Some(_) => return Err(MigError::InsufficientResources),
            None => ci_prof
                .placements
                .iter()
                .copied()
                .filter(|p| p.mask() & taken == 0)
                .min_by_key(|p| p.start)
                .ok_or(MigError::InsufficientResources)?,
        };
        let id = inst.lowest_free_ci_id();
        let inst = self
            .gpu_instances
            .get_mut(&gi)
            .ok_or(MigError::GiNotFound(gi))?;
        inst.compute_instances.insert(
            id,
            ComputeInstance {
                id,
                profile,
                placement,
                in_use: false,
            },
        );
        Ok(id)
    }

    /// Destroy a CI. Refused while in use.
    pub fn destroy_ci(&mut self, gi: GpuInstanceId, ci: ComputeInstanceId) -> Result<(), MigError> {
        let inst = self
            .gpu_instances
            .get_mut(&gi)
            .ok_or(MigError::GiNotFound(gi))?;
        let c = inst
            .compute_instances
            .get(&ci)
            .ok_or(MigError::CiNotFound { gi, ci })?;
        if c.in_use {
            return Err(MigError::CiInUse { gi, ci });
        }
        inst.compute_instances.remove(&ci);
        Ok(())
    }

    /// Mark a GI in use or idle (e.g. a vGPU VM powered on or off on it).
    pub fn set_gi_in_use(&mut self, gi: GpuInstanceId, in_use: bool) -> Result<(), MigError> {
        let inst = self
            .gpu_instances
            .get_mut(&gi)
            .ok_or(MigError::GiNotFound(gi))?;
        inst.in_use = in_use;
        Ok(())
    }

    /// Mark a CI in use or idle (processes started or ended on it).
    pub fn set_ci_in_use(
        &mut self,
        gi: GpuInstanceId,
        ci: ComputeInstanceId,
        in_use: bool,
    ) -> Result<(), MigError> {
        let inst = self
            .gpu_instances
            .get_mut(&gi)
            .ok_or(MigError::GiNotFound(gi))?;
        let c = inst
            .compute_instances
            .get_mut(&ci)
            .ok_or(MigError::CiNotFound { gi, ci })?;
        c.in_use = in_use;
        Ok(())
    }

    /// How many more GIs of `profile` could be created now (`nvmlDeviceGetGpuInstanceRemainingCapacity`).
    pub fn remaining_gi_capacity(&self, profile: GiProfileId) -> Result<u32, MigError> {
        let prof = self.profile(profile)?;
        Ok(self.occupancy().remaining(self.gpu_model(), prof))
    }

    /// Legal placements of `profile` where a GI could be created now (free slices, and the
    /// profile's instance and media-engine limits not reached), in `-lgipp` order.
    pub fn free_placements(&self, profile: GiProfileId) -> Result<Vec<Placement>, MigError> {
        let prof = self.profile(profile)?;
        let occ = self.occupancy();
        if occ.quota(self.gpu_model(), prof) == 0 {
            return Ok(Vec::new());
        }
        Ok(occ.free_slots(prof).collect())
    }

    /// How many more CIs of `profile` fit in GI `gi` now.
    pub fn remaining_ci_capacity(
        &self,
        gi: GpuInstanceId,
        profile: CiProfileId,
    ) -> Result<u32, MigError> {
        let (inst, ci_prof) = self.ci_profile(gi, profile)?;
        let taken = inst.occupied_compute_mask();
        let free = max_disjoint(
            ci_prof
                .placements
                .iter()
                .copied()
                .filter(|p| p.mask() & taken == 0),
        );
        Ok(Self::ci_quota(inst, ci_prof).min(free))
    }

    /// Legal placements of CI `profile` inside GI `gi` where a CI could be created now.
    pub fn free_ci_placements(
        &self,
        gi: GpuInstanceId,
        profile: CiProfileId,
    ) -> Result<Vec<Placement>, MigError> {
        let (inst, ci_prof) = self.ci_profile(gi, profile)?;
        if Self::ci_quota(inst, ci_prof) == 0 {
            return Ok(Vec::new());
        }
        let taken = inst.occupied_compute_mask();
        Ok(ci_prof
            .placements
            .iter()
            .copied()
            .filter(|p| p.mask() & taken == 0)
            .collect())
    }

    /// The largest GI profile (by compute then memory slices) that could be created now.
    pub fn largest_placeable(&self) -> Option<&'static GiProfile> {
        self.occupancy().largest(self.gpu_model())
    }

    /// Fragmentation in [0, 1]: 0 when free memory slices form placeable blocks, towards 1 when
    /// free slices are scattered so that big profiles cannot be placed. Documented in docs/mig-model.md.
    ///
    /// Defined as `1 - now / best`, where `now` is the compute slices of `largest_placeable()`
    /// and `best` the same figure maximised over every legal re-layout of the existing GIs
    /// (same profiles, any placements). 0 when `best` is 0 (the GPU is full however it is
    /// laid out) — waste that no re-layout can avoid is not fragmentation.
    pub fn fragmentation(&self) -> f64 {
        let model = self.gpu_model();
        let now = self.largest_placeable().map_or(0, |p| p.compute_slices);
        let mut profiles: Vec<&'static GiProfile> = self
            .gpu_instances
            .values()
            .filter_map(|g| model.gi_profile(g.profile))
            .collect();
        // Big profiles first: they have the fewest placements, so the search prunes early.
        profiles.sort_by_key(|p| (std::cmp::Reverse(p.memory_slices), p.id));
        let upper = model.full_profile().compute_slices;
        let mut best = now;
        let mut occ = Occupancy::default();
        best_relayout(model, &profiles, 0, 0, &mut occ, upper, &mut best);
        if best == 0 {
            0.0
        } else {
            1.0 - f64::from(now) / f64::from(best)
        }
    }

    /// Check that a state (e.g. read from disk) is one the driver could be in: known model and
    /// profiles, legal non-overlapping placements, limits respected, ids consistent.
    pub fn validate(&self) -> Result<(), InvalidStateError> {
        let fail = |reason: String| InvalidStateError {
            model: self.model.clone(),
            reason,
        };
        let model = self
            .try_gpu_model()
            .ok_or_else(|| fail("the model key is not in the catalog".into()))?;
        let mut occ = Occupancy::default();
        for (key, g) in &self.gpu_instances {
            if *key != g.id {
                return Err(fail(format!(
                    "GI stored under id {key} says its id is {}",
                    g.id
                )));
            }
            let prof = model
                .gi_profile(g.profile)
                .ok_or_else(|| fail(format!("GI {} has unknown profile {}", g.id, g.profile)))?;
            if !prof.placements.contains(&g.placement) {
                return Err(fail(format!(
                    "GI {} sits at {}, not a legal placement of {}",
                    g.id, g.placement, prof.name
                )));
            }
            if g.placement.mask() & occ.mask != 0 {
                return Err(fail(format!(
                    "GI {} at {} overlaps another GI",
                    g.id, g.placement
                )));
            }
            if occ.quota(model, prof) == 0 {
                return Err(fail(format!(
                    "GI {} exceeds the instance or media-engine limit of {}",
                    g.id, prof.name
                )));
            }
            occ.add(prof, g.placement);
            let mut taken = 0u64;
            let mut counts: BTreeMap<CiProfileId, u32> = BTreeMap::new();
            for (ckey, c) in &g.compute_instances {
                if *ckey != c.id {
                    return Err(fail(format!(
                        "CI stored under id {ckey} in GI {} says its id is {}",
                        g.id, c.id
                    )));
                }
                let cp = prof.ci_profile(c.profile).ok_or_else(|| {
                    fail(format!(
                        "CI {} in GI {} has unknown profile {}",
                        c.id, g.id, c.profile
                    ))
                })?;
                if !cp.placements.contains(&c.placement) || c.placement.mask() & taken != 0 {
                    return Err(fail(format!(
                        "CI {} in GI {} has an illegal or overlapping placement {}",
                        c.id, g.id, c.placement
                    )));
                }
                taken |= c.placement.mask();
                let n = counts.entry(cp.id).or_default();
                *n += 1;
                if *n > cp.instance_count {
                    return Err(fail(format!(
                        "GI {} holds more {} CIs than allowed",
                        g.id, cp.name
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Depth-first search over re-layouts of `profiles` (sorted so equal profiles are adjacent):
/// raise `best` to the largest compute-slice count placeable in any complete layout.
/// Equal profiles take placements in increasing index order so each set is tried once.
fn best_relayout(
    model: &'static GpuModel,
    profiles: &[&'static GiProfile],
    i: usize,
    min_slot: usize,
    occ: &mut Occupancy,
    upper: u32,
    best: &mut u32,
) {
    if *best >= upper {
        return;
    }
    let Some(prof) = profiles.get(i) else {
        if let Some(p) = occ.largest(model) {
            *best = (*best).max(p.compute_slices);
        }
        return;
    };
    for (slot, &placement) in prof.placements.iter().enumerate().skip(min_slot) {
        if placement.mask() & occ.mask != 0 || occ.quota(model, prof) == 0 {
            continue;
        }
        occ.add(prof, placement);
        let next_min = match profiles.get(i + 1) {
            Some(next) if next.id == prof.id => slot + 1,
            _ => 0,
        };
        best_relayout(model, profiles, i + 1, next_min, occ, upper, best);
        occ.remove(prof, placement);
        if *best >= upper {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
