//! GPU and compute instances: handles valid while their [`Driver`] lives, with their CI
//! profiles, placements, creation, listing and destruction.
use mig::{CiProfileId, ComputeInstanceId, GiProfileId, GpuInstanceId, Placement};

use super::ffi::{self, RawCi, RawError, RawGi};
use super::info::short_name;
use super::{CallError, CiInfo, CiProfileInfo, Driver, GiInfo, MAX_CI_PROFILE_INDEX, NvmlCode};

/// A GPU instance, valid while its [`Driver`] lives (NVML invalidates it on destroy/reset).
#[derive(Debug)]
pub struct GpuInstance<'n> {
    driver: &'n Driver,
    gpu_index: u32,
    raw: RawGi,
    info: GiInfo,
}

impl<'n> GpuInstance<'n> {
    pub(super) fn from_raw(
        driver: &'n Driver,
        gpu_index: u32,
        raw: RawGi,
    ) -> Result<Self, CallError> {
        let i = ffi::gi_info(&driver.nvml, raw)?;
        let info = GiInfo {
            id: GpuInstanceId(i.id),
            profile_id: GiProfileId(i.profile_id),
            placement: Placement {
                start: i.start,
                size: i.size,
            },
        };
        Ok(GpuInstance {
            driver,
            gpu_index,
            raw,
            info,
        })
    }

    /// Id, profile and placement as NVML reported them when this handle was obtained.
    pub fn info(&self) -> GiInfo {
        self.info
    }

    pub fn id(&self) -> GpuInstanceId {
        self.info.id
    }

    /// NVML index of the parent GPU.
    pub fn gpu_index(&self) -> u32 {
        self.gpu_index
    }

    /// CI profiles offered inside this GI, in NVML index order.
    pub fn ci_profiles(&self) -> Result<Vec<CiProfileInfo>, CallError> {
        let mut out = Vec::new();
        for index in 0..MAX_CI_PROFILE_INDEX {
            match ffi::ci_profile_info(&self.driver.nvml, self.raw, index) {
                Ok(p) => out.push(CiProfileInfo {
                    index,
                    id: CiProfileId(p.id),
                    name: short_name(p.name)
                        .unwrap_or_else(|| format!("{}c (profile {})", p.slice_count, p.id)),
                    slice_count: p.slice_count,
                    instance_count: p.instance_count,
                    engines: p.engines,
                }),
                Err(RawError::Code { code, .. }) if NvmlCode(code) == NvmlCode::NOT_SUPPORTED => {}
                Err(RawError::Code { code, .. })
                    if NvmlCode(code) == NvmlCode::INVALID_ARGUMENT =>
                {
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    /// Legal placements (in compute slices of this GI) of a CI profile.
    pub fn ci_possible_placements(
        &self,
        profile: CiProfileId,
    ) -> Result<Vec<Placement>, CallError> {
        let v = ffi::ci_possible_placements(&self.driver.nvml, self.raw, profile.0)?;
        Ok(v.into_iter()
            .map(|(start, size)| Placement { start, size })
            .collect())
    }

    /// How many more CIs of this profile fit in this GI now.
    pub fn ci_remaining_capacity(&self, profile: CiProfileId) -> Result<u32, CallError> {
        Ok(ffi::ci_remaining_capacity(
            &self.driver.nvml,
            self.raw,
            profile.0,
        )?)
    }

    /// Create a compute instance; `placement: None` lets the driver choose.
    pub fn create_ci(
        &self,
        profile: CiProfileId,
        placement: Option<Placement>,
    ) -> Result<ComputeInstance<'n>, CallError> {
        let raw = ffi::create_ci(
            &self.driver.nvml,
            self.raw,
            profile.0,
            placement.map(|p| (p.start, p.size)),
        )?;
        ComputeInstance::from_raw(self.driver, self.info.id, raw)
    }

    /// Every compute instance in this GI, sorted by id.
    pub fn compute_instances(&self) -> Result<Vec<ComputeInstance<'n>>, CallError> {
        let profiles: Vec<CiProfileId> = self.ci_profiles()?.iter().map(|p| p.id).collect();
        self.compute_instances_of(&profiles)
    }

    /// The compute instances of these CI profiles, sorted by id: [`GpuInstance::compute_instances`]
    /// for a caller that already knows the CI profiles of this GI's profile.
    pub fn compute_instances_of(
        &self,
        profiles: &[CiProfileId],
    ) -> Result<Vec<ComputeInstance<'n>>, CallError> {
        let mut out = Vec::new();
        for profile in profiles {
            for raw in ffi::compute_instances(&self.driver.nvml, self.raw, profile.0)? {
                out.push(ComputeInstance::from_raw(self.driver, self.info.id, raw)?);
            }
        }
        out.sort_by_key(|ci| ci.info.id);
        out.dedup_by_key(|ci| ci.info.id);
        Ok(out)
    }

    /// The compute instance with this id (`NOT_FOUND` if none).
    pub fn compute_instance(
        &self,
        id: ComputeInstanceId,
    ) -> Result<ComputeInstance<'n>, CallError> {
        let raw = ffi::ci_by_id(&self.driver.nvml, self.raw, id.0)?;
        ComputeInstance::from_raw(self.driver, self.info.id, raw)
    }

    /// Destroy this GI. NVML refuses (`IN_USE`) while CIs or processes exist; it never cascades.
    pub fn destroy(self) -> Result<(), CallError> {
        Ok(ffi::destroy_gi(&self.driver.nvml, self.raw)?)
    }
}

/// A compute instance, valid while its [`Driver`] lives and its GI exists.
#[derive(Debug)]
pub struct ComputeInstance<'n> {
    driver: &'n Driver,
    raw: RawCi,
    info: CiInfo,
}

impl<'n> ComputeInstance<'n> {
    pub(super) fn from_raw(
        driver: &'n Driver,
        gi_id: GpuInstanceId,
        raw: RawCi,
    ) -> Result<Self, CallError> {
        let i = ffi::ci_info(&driver.nvml, raw)?;
        let info = CiInfo {
            gi_id,
            id: ComputeInstanceId(i.id),
            profile_id: CiProfileId(i.profile_id),
            placement: Placement {
                start: i.start,
                size: i.size,
            },
        };
        Ok(ComputeInstance { driver, raw, info })
    }

    pub fn info(&self) -> CiInfo {
        self.info
    }

    pub fn id(&self) -> ComputeInstanceId {
        self.info.id
    }

    /// Destroy this CI. NVML refuses (`IN_USE`) while processes run on it.
    pub fn destroy(self) -> Result<(), CallError> {
        Ok(ffi::destroy_ci(&self.driver.nvml, self.raw)?)
    }
}
