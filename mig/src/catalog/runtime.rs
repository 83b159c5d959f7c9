//! GPU models learned at run time from the geometry an agent published (`gpus[].geometry` in
//! the host document), for GPUs this build's catalog does not know. Such a model is built
//! once per process and name, leaked to get the `'static` lifetime every catalog model has
//! (a handful of models, a few KiB each), and found by the usual `GpuModel::by_*` lookups.
use std::sync::RwLock;

use super::{CiProfile, GiProfile, GpuModel, ProfileVariant, ci_index};
use crate::ids::{CiProfileId, GiProfileId, Placement};
use crate::report::ModelGeometry;

static RUNTIME: RwLock<Vec<&'static GpuModel>> = RwLock::new(Vec::new());

/// The models registered so far.
pub fn runtime_models() -> Vec<&'static GpuModel> {
    RUNTIME.read().map(|m| m.clone()).unwrap_or_default()
}

fn leak_str(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

fn leak<T>(v: Vec<T>) -> &'static [T] {
    Box::leak(v.into_boxed_slice())
}

/// `NVIDIA B200` → `nvidia-b200`: a catalog-style key for a model known only by name.
fn key_of(name: &str) -> String {
    let mut key = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            key.push(c.to_ascii_lowercase());
        } else if !key.ends_with('-') {
            key.push('-');
        }
    }
    key.trim_matches('-').to_string()
}

/// NVML's compute-instance profile constant for a CI of `slices` compute slices.
fn full_ci_id(slices: u32) -> Option<u32> {
    Some(match slices {
        1 => ci_index::SLICE_1,
        2 => ci_index::SLICE_2,
        3 => ci_index::SLICE_3,
        4 => ci_index::SLICE_4,
        6 => ci_index::SLICE_6,
        7 => ci_index::SLICE_7,
        8 => ci_index::SLICE_8,
        _ => return None,
    })
}

/// Build the model for `nvml_name` from published geometry; `board` is the vGPU board the
/// host's type names use for it (`None`: no vGPU type maps to it). Geometry is outside input:
/// anything a driver could not report is an error, never a panic.
pub fn model_from_geometry(
    nvml_name: &str,
    board: Option<&str>,
    geo: &ModelGeometry,
) -> Result<GpuModel, String> {
    let bad = |why: String| Err(format!("geometry of {nvml_name}: {why}"));
    if geo.gi_profiles.is_empty() {
        return bad("no GPU instance profiles".into());
    }
    let mut profiles = Vec::new();
    for p in &geo.gi_profiles {
        let name = p.name.trim();
        let fits = p.size > 0
            && p.size <= 16
            && p.slices > 0
            && !p.starts.is_empty()
            && p.starts.iter().all(|s| s.saturating_add(p.size) <= 16);
        if name.is_empty() || !fits {
            return bad(format!(
                "profile {} ({name}) has no usable placements",
                p.id
            ));
        }
        if profiles.iter().any(|q: &GiProfile| q.id == p.id) {
            return bad(format!("profile id {} listed twice", p.id));
        }
        // Only the whole-GI CI is modelled: NVML lists CI profiles per existing GI, and on
        // vSphere the guest creates its one CI itself. Its id is NVML's constant for that
        // many slices [inferred, see docs/mig-model.md].
        let ci_profiles: &'static [CiProfile] = match full_ci_id(p.slices) {
            Some(id) => leak(vec![CiProfile {
                id: CiProfileId(id),
                name: leak_str(name),
                compute_slices: p.slices,
                instance_count: 1,
                sm_count: p.engines.sm,
                placements: leak(vec![Placement::new(0, p.slices)]),
                is_default: true,
            }]),
            None => return bad(format!("profile {} has {} compute slices", p.id, p.slices)),
        };
        profiles.push(GiProfile {
            id: GiProfileId(p.id.0),
            nvml_index: p.index,
            name: leak_str(name),
            variant: ProfileVariant::of_name(name),
            compute_slices: p.slices,
            memory_slices: p.size,
            instance_count: p.instances,
            memory_mib: p.memory_mib,
            engines: p.engines,
            p2p: false,
            placements: leak(
                p.starts
                    .iter()
                    .map(|s| Placement::new(*s, p.size))
                    .collect(),
            ),
            ci_profiles,
        });
    }
    let memory_slices = profiles
        .iter()
        .flat_map(|p| p.placements.iter().map(|pl| pl.end()))
        .max()
        .unwrap_or(0);
    let Some(full) = profiles
        .iter()
        .find(|p| p.memory_slices == memory_slices && p.placements.iter().any(|pl| pl.start == 0))
    else {
        return bad("no profile spans the whole GPU".into());
    };
    let (compute_slices, sm_count, memory_mib) =
        (full.compute_slices, full.engines.sm, full.memory_mib);
    let short = nvml_name
        .trim()
        .strip_prefix("NVIDIA ")
        .unwrap_or(nvml_name.trim());
    Ok(GpuModel {
        key: leak_str(&key_of(nvml_name)),
        nvml_name: leak_str(nvml_name.trim()),
        short_name: leak_str(short),
        pci_device_id: 0,
        memory_mib,
        compute_slices,
        memory_slices,
        sm_count,
        vgpu_board: leak_str(board.unwrap_or("")),
        gi_profiles: leak(profiles),
        gi_id_regions: &[],
    })
}

/// Register the model built by [`model_from_geometry`] (once per name and board) and return
/// it; a name the static catalog knows returns the catalog's model.
pub fn register_geometry(
    nvml_name: &str,
    board: Option<&str>,
    geo: &ModelGeometry,
) -> Result<&'static GpuModel, String> {
    let name = nvml_name.trim();
    if let Some(m) = super::catalog()
        .iter()
        .find(|m| m.nvml_name.eq_ignore_ascii_case(name))
    {
        return Ok(m);
    }
    let board = board.unwrap_or("");
    let mut models = RUNTIME
        .write()
        .map_err(|_| "model registry poisoned".to_string())?;
    if let Some(m) = models.iter().find(|m| {
        m.nvml_name.eq_ignore_ascii_case(name) && m.vgpu_board.eq_ignore_ascii_case(board)
    }) {
        return Ok(m);
    }
    let board = (!board.is_empty()).then_some(board);
    let model: &'static GpuModel = Box::leak(Box::new(model_from_geometry(name, board, geo)?));
    models.retain(|m| !m.nvml_name.eq_ignore_ascii_case(name));
    models.push(model);
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_gpu_is_planned_from_its_published_geometry() {
        let h100 = GpuModel::by_key("h100-sxm5-80gb").expect("catalog model");
        let geo = ModelGeometry::of_catalog(h100);
        let m = register_geometry("NVIDIA Z100 Test", Some("z100"), &geo).expect("valid");
        assert_eq!(m.key, "nvidia-z100-test");
        assert_eq!((m.memory_slices, m.compute_slices), (8, 7));
        assert_eq!(GpuModel::by_nvml_name("nvidia z100 test"), Some(m));
        assert_eq!(GpuModel::by_key("nvidia-z100-test"), Some(m));
        // Same answers as the catalog model it was copied from.
        let mut ours = crate::MigState::new(m);
        let mut theirs = crate::MigState::new(h100);
        // Explicit placements: a model from geometry has no driver GI-id table, so vmig
        // plans placements itself (as it does for every model).
        for (id, start, size) in [(9, 4, 4), (19, 0, 1), (14, 2, 2)] {
            let at = Some(Placement::new(start, size));
            ours.create_gi(GiProfileId(id), at).expect("fits");
            theirs.create_gi(GiProfileId(id), at).expect("fits");
        }
        for p in h100.gi_profiles {
            assert_eq!(
                ours.remaining_gi_capacity(p.id).expect("known"),
                theirs.remaining_gi_capacity(p.id).expect("known"),
                "{}",
                p.name
            );
        }
        // vGPU types of its board map to its profiles.
        let t = crate::VgpuType::parse("nvidia_z100-3-40c").expect("type");
        assert!(t.gpu_models().any(|g| g == m));
        assert_eq!(t.gi_profile(m).map(|p| p.name), Some("3g.40gb"));
        // The catalog's own names are never shadowed.
        let a100 = GpuModel::by_key("a100-pcie-40gb").expect("catalog model");
        assert_eq!(register_geometry(a100.nvml_name, None, &geo), Ok(a100));
    }

    #[test]
    fn impossible_geometry_is_refused() {
        let mut geo =
            ModelGeometry::of_catalog(GpuModel::by_key("a30-24gb").expect("catalog model"));
        geo.gi_profiles.retain(|p| p.size < 4);
        assert!(
            model_from_geometry("X", None, &geo).is_err(),
            "no full profile"
        );
        let mut geo =
            ModelGeometry::of_catalog(GpuModel::by_key("a30-24gb").expect("catalog model"));
        geo.gi_profiles[0].starts = vec![u32::MAX];
        assert!(model_from_geometry("X", None, &geo).is_err());
        assert!(
            model_from_geometry(
                "X",
                None,
                &ModelGeometry {
                    gi_profiles: vec![]
                }
            )
            .is_err()
        );
    }
}
