//! Pass 3: an entry resolved for one GPU model — profile names, placements and CI splits
//! against the catalog, then the whole layout against the planner on an empty GPU, so a
//! layout that cannot exist on the model is refused before anything changes.
use crate::planner::PlanError;
use crate::{CiProfileId, DesiredGi, DesiredLayout, GiProfile, GpuModel, MigState, Placement};

use super::error::{ConfigError, KeyPath};
use super::model::{DeviceSpec, Entry, LayoutFile, SpecKind, Target};

impl LayoutFile {
    /// Resolve `entry` of `config` for a GPU of `model`: profile names, placements and CI
    /// splits against the catalog, then the whole layout against the planner on an empty GPU
    /// (so a layout that cannot exist on this model is refused before anything changes).
    pub fn target_for(
        &self,
        config: &str,
        entry: &Entry,
        model: &'static GpuModel,
    ) -> Result<Target, ConfigError> {
        if !entry.mig_enabled {
            return Ok(Target::Disabled);
        }
        let epath = Self::entry_path(config, entry.index);
        let mpath = epath.clone().key("mig-devices");
        let gpu = format!("{} ({})", model.nvml_name, model.key);
        let mut gis = Vec::new();
        // CI-form keys, per GI profile, in file order.
        let mut packed: Vec<(&'static GiProfile, Vec<&'static crate::CiProfile>)> = Vec::new();
        for spec in &entry.mig_devices {
            if spec.count == 0 {
                continue;
            }
            let kpath = mpath.clone().key(spec.key.clone());
            match &spec.kind {
                SpecKind::Gi { profile, start } => {
                    self.resolve_gi_key(
                        &mpath, &kpath, &gpu, model, spec, profile, *start, &mut gis,
                    )?;
                }
                SpecKind::Ci { ci, gi } => {
                    let p = model.gi_profile_by_name(gi).ok_or_else(|| {
                        self.error(
                            kpath.clone(),
                            format!("unknown GPU instance profile `{gi}` (in `{}`) for {gpu}; valid profiles: {}", spec.key, gi_names(model)),
                        )
                    })?;
                    let c = p.ci_profile_by_name(ci).ok_or_else(|| {
                        self.error(
                            kpath.clone(),
                            format!(
                                "unknown compute instance profile `{ci}` inside {} on {gpu}; valid: {}",
                                p.name,
                                p.ci_profiles.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
                            ),
                        )
                    })?;
                    let slot = match packed.iter().position(|(g, _)| g.id == p.id) {
                        Some(i) => i,
                        None => {
                            packed.push((p, Vec::new()));
                            packed.len() - 1
                        }
                    };
                    let most = p.instance_count.saturating_mul(c.instance_count);
                    if spec.count > most {
                        return Err(self.too_many(&mpath, &gpu, spec, most, "compute instances"));
                    }
                    for _ in 0..spec.count {
                        packed[slot].1.push(c);
                    }
                }
            }
        }
        for (gi, cis) in packed {
            let kpath = mpath.clone();
            for bin in pack_cis(gi, cis) {
                gis.push((
                    kpath.clone(),
                    DesiredGi {
                        profile: gi.id,
                        placement: None,
                        compute: bin,
                    },
                ));
            }
        }
        self.check_fits(&mpath, &gpu, model, &gis)
            .map(Target::Enabled)
    }

    /// A GI-profile key (`3g.20gb`, `3g.20gb@4`, with an optional CI split): `count` GIs,
    /// appended to `gis` with the key they come from.
    #[allow(
        clippy::too_many_arguments,
        reason = "one key's context, passed down once"
    )]
    fn resolve_gi_key(
        &self,
        mpath: &KeyPath,
        kpath: &KeyPath,
        gpu: &str,
        model: &'static GpuModel,
        spec: &DeviceSpec,
        profile: &str,
        start: Option<u32>,
        gis: &mut Vec<(KeyPath, DesiredGi)>,
    ) -> Result<(), ConfigError> {
        let p = model.gi_profile_by_name(profile).ok_or_else(|| {
            self.error(
                kpath.clone(),
                format!(
                    "unknown GPU instance profile `{profile}` for {gpu}; valid profiles: {}",
                    gi_names(model)
                ),
            )
        })?;
        let placement = match start {
            None => None,
            Some(s) => {
                let legal = p.placements.iter().find(|pl| pl.start == s).copied();
                Some(legal.ok_or_else(|| {
                    self.error(
                        kpath.clone(),
                        format!(
                            "`{}` cannot start at memory slice {s} on {gpu}; legal starts for {}: {}",
                            spec.key,
                            p.name,
                            p.placements.iter().map(|pl| pl.start.to_string()).collect::<Vec<_>>().join(", ")
                        ),
                    )
                })?)
            }
        };
        let mut compute = Vec::new();
        if let Some(names) = &spec.compute {
            if names.is_empty() {
                return Err(self.error(
                    kpath.clone(),
                    format!("`compute: []` would leave the GI without compute instances; leave `compute` out for one full-GI CI, or list CI profiles of {}", p.name),
                ));
            }
            for n in names {
                let c =
                    p.ci_profile_by_name(n).ok_or_else(|| {
                        self.error(
                        kpath.clone(),
                        format!(
                            "unknown compute instance profile `{n}` inside {} on {gpu}; valid: {}",
                            p.name,
                            p.ci_profiles.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
                        ),
                    )
                    })?;
                compute.push(c.id);
            }
        }
        if spec.count > p.instance_count {
            return Err(self.too_many(mpath, gpu, spec, p.instance_count, "GPU instances"));
        }
        for _ in 0..spec.count {
            gis.push((
                kpath.clone(),
                DesiredGi {
                    profile: p.id,
                    placement,
                    compute: compute.clone(),
                },
            ));
        }
        Ok(())
    }

    /// The whole layout planned on an empty GPU of `model` (each GI alone first, so a CI split
    /// that cannot exist names its own key).
    fn check_fits(
        &self,
        mpath: &KeyPath,
        gpu: &str,
        model: &'static GpuModel,
        gis: &[(KeyPath, DesiredGi)],
    ) -> Result<DesiredLayout, ConfigError> {
        let desired = DesiredLayout {
            gpu_instances: gis.iter().map(|(_, g)| g.clone()).collect(),
        };
        // Per-GI problems (a CI split that cannot exist) name their own key.
        for (kpath, gi) in gis {
            let single = DesiredLayout {
                gpu_instances: vec![gi.clone()],
            };
            if let Err(e) = crate::plan(&MigState::new(model), &single) {
                return Err(self.error(
                    kpath.clone(),
                    format!("on {gpu}: {}", plan_error_text(model, &e)),
                ));
            }
        }
        if let Err(e) = crate::plan(&MigState::new(model), &desired) {
            return Err(self.error(
                mpath.clone(),
                format!(
                    "this layout does not fit {gpu}: {}",
                    plan_error_text(model, &e)
                ),
            ));
        }
        Ok(desired)
    }

    /// A count above what any GPU of the model can hold. Refused before the entry is expanded
    /// into one desired instance per count: a `u32` count would otherwise build (and plan)
    /// billions of them. Worded and located like the planner's own "does not fit".
    fn too_many(
        &self,
        mpath: &KeyPath,
        gpu: &str,
        spec: &DeviceSpec,
        most: u32,
        what: &str,
    ) -> ConfigError {
        self.error(
            mpath.clone(),
            format!(
                "this layout does not fit {gpu}: `{}` asks for {} {what}, and at most {most} fit",
                spec.key, spec.count
            ),
        )
    }
}

/// The GI profile names of `model`, for "valid profiles: …".
fn gi_names(model: &GpuModel) -> String {
    model
        .gi_profiles
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// mig-parted packs `Nc.<GI>` CIs into GIs in creation order, reusing the last GI while the
/// next CI still fits. The equivalent here: largest CIs first, each into the first GI with
/// room (compute slices and the CI profile's per-GI instance cap).
pub(super) fn pack_cis(
    gi: &'static GiProfile,
    mut cis: Vec<&'static crate::CiProfile>,
) -> Vec<Vec<CiProfileId>> {
    cis.sort_by_key(|c| std::cmp::Reverse(c.compute_slices));
    let mut bins: Vec<Vec<&'static crate::CiProfile>> = Vec::new();
    for c in cis {
        let fits = |b: &Vec<&'static crate::CiProfile>| {
            b.iter().map(|x| x.compute_slices).sum::<u32>() + c.compute_slices <= gi.compute_slices
                && (b.iter().filter(|x| x.id == c.id).count() as u32) < c.instance_count
        };
        match bins.iter_mut().find(|b| fits(b)) {
            Some(b) => b.push(c),
            None => bins.push(vec![c]),
        }
    }
    bins.into_iter()
        .map(|b| b.into_iter().map(|c| c.id).collect())
        .collect()
}

/// A planner error with profile ids replaced by this model's names.
pub fn plan_error_text(model: &GpuModel, e: &PlanError) -> String {
    let gi_name = |id: crate::GiProfileId| {
        model
            .gi_profile(id)
            .map_or_else(|| format!("profile {id}"), |p| p.name.to_string())
    };
    match e {
        PlanError::UnknownProfile(id) => format!("unknown GI profile {id}"),
        PlanError::UnknownCiProfile { gi, ci } => {
            format!("CI profile {ci} is not offered inside {}", gi_name(*gi))
        }
        PlanError::InvalidPlacement { profile, placement } => format!(
            "{} cannot sit at {placement}; legal placements: {}",
            gi_name(*profile),
            model
                .gi_profile(*profile)
                .map(|p| p
                    .placements
                    .iter()
                    .map(Placement::to_string)
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        ),
        other => other.to_string(),
    }
}
