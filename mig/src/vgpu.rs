//! MIG-backed vGPU type names as vSphere uses them (`grid_a100-3-20c`, `nvidia_h100xm-1-10c`)
//! and their mapping to GI profiles of a GPU model.
//!
//! Grammar (NVIDIA vGPU type tables; docs/mig-model.md §vGPU): after the vendor prefix,
//! a MIG-backed type is `<board>-<slices>-<GB><series>[<attr>]` (three dash-separated fields),
//! a time-sliced type is `<board>-<GB><series>` (two fields). `series` is one letter
//! (`a`, `b`, `c`, `q`; MIG-backed types are always `c`); `attr` is `me`, `nome`, `meall` or
//! `gfx` and maps to the profile suffix `+me`, `-me`, `+me.all`, `+gfx`. The host driver shows
//! the type as `GRID A100X-3-20C` or `NVIDIA H100XM-1-10C`; vSphere lower-cases it and joins
//! prefix and name with `_`. Parsing accepts all of these spellings.
use crate::catalog::{GiProfile, GpuModel, ProfileVariant};

/// A parsed vGPU type name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VgpuType {
    /// `grid` or `nvidia`.
    pub prefix: String,
    /// Board, e.g. `a100`, `a100d`, `h100xm`.
    pub board: String,
    /// For MIG-backed types: compute slices; `None` for time-sliced types.
    pub mig_slices: Option<u32>,
    /// Framebuffer in GB as in the name.
    pub fb_gb: u32,
    /// Series/suffix letters, e.g. `c`, `cme`.
    pub suffix: String,
}

/// The prefix-free, lower-case name of a vGPU type as any spelling gives it
/// ([`VgpuType::base_name`]); a name the grammar does not parse is only trimmed and
/// lower-cased, so two spellings of an unknown type still compare equal.
pub fn base_name_of(name: &str) -> String {
    VgpuType::parse(name).map_or_else(|| name.trim().to_ascii_lowercase(), |t| t.base_name())
}

/// Vendor prefixes vSphere puts in front of the type name.
const PREFIXES: [&str; 2] = ["grid", "nvidia"];

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl VgpuType {
    /// Parse a name such as `grid_a100-3-20c` or `nvidia_h100xm-1-10cme`. Also accepts the
    /// driver's display form (`GRID A100X-3-20C`), any case, and a bare name without prefix
    /// (then `prefix` is empty). Returns `None` for anything that is not a vGPU type name.
    pub fn parse(name: &str) -> Option<VgpuType> {
        let lower = name.trim().to_ascii_lowercase();
        let (prefix, rest) = PREFIXES
            .iter()
            .find_map(|p| {
                let tail = lower.strip_prefix(p)?;
                let tail = tail.strip_prefix('_').or_else(|| tail.strip_prefix(' '))?;
                Some((p.to_string(), tail.trim_start().to_string()))
            })
            .unwrap_or_else(|| (String::new(), lower.clone()));
        let fields: Vec<&str> = rest.split('-').collect();
        let (board, slices, tail) = match fields.as_slice() {
            [board, tail] => (*board, None, *tail),
            [board, slices, tail] => (*board, Some(digits(slices)?), *tail),
            _ => return None,
        };
        let board_ok = board
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && board.chars().all(|c| c.is_ascii_alphanumeric());
        if !board_ok || slices == Some(0) {
            return None;
        }
        let split = tail.find(|c: char| !c.is_ascii_digit())?;
        let (fb, suffix) = tail.split_at(split);
        let fb_gb = digits(fb)?;
        let series = suffix.chars().next()?;
        if !matches!(series, 'a' | 'b' | 'c' | 'q') {
            return None;
        }
        let attr = &suffix[1..];
        let attr_ok = match slices {
            Some(_) => ProfileVariant::from_vgpu_attr(attr).is_some(),
            None => attr.is_empty(),
        };
        if !attr_ok {
            return None;
        }
        Some(VgpuType {
            prefix,
            board: board.to_string(),
            mig_slices: slices,
            fb_gb,
            suffix: suffix.to_string(),
        })
    }

    /// Whether this is a MIG-backed type (`<board>-<slices>-<fb><suffix>`).
    pub fn is_mig_backed(&self) -> bool {
        self.mig_slices.is_some()
    }

    /// The GI profile name this type stands for (`3g.20gb`, `1g.5gb+me`), board not checked;
    /// `None` for time-sliced types.
    pub fn mig_profile_name(&self) -> Option<String> {
        let slices = self.mig_slices?;
        let variant = ProfileVariant::from_vgpu_attr(self.suffix.get(1..)?)?;
        Some(format!(
            "{slices}g.{}gb{}",
            self.fb_gb,
            variant.profile_suffix()
        ))
    }

    /// The GI profile of `model` that backs this type, if any (the board must be the model's).
    pub fn gi_profile<'m>(&self, model: &'m GpuModel) -> Option<&'m GiProfile> {
        if !self.board.eq_ignore_ascii_case(model.vgpu_board) {
            return None;
        }
        let profile = model
            .gi_profiles
            .iter()
            .find(|p| Some(p.name.to_string()) == self.mig_profile_name())?;
        (Some(profile.compute_slices) == self.mig_slices).then_some(profile)
    }

    /// The catalog models (and models registered from published geometry) whose vGPU board
    /// this type names.
    pub fn gpu_models(&self) -> impl Iterator<Item = &'static GpuModel> + '_ {
        crate::catalog()
            .iter()
            .chain(crate::catalog::runtime_models())
            .filter(|m| !m.vgpu_board.is_empty() && m.vgpu_board.eq_ignore_ascii_case(&self.board))
    }

    /// The type name without vendor prefix, lower case (`a100-3-20c`); equal for the `grid_`
    /// and `nvidia_` spellings of one type.
    pub fn base_name(&self) -> String {
        match self.mig_slices {
            Some(s) => format!("{}-{s}-{}{}", self.board, self.fb_gb, self.suffix),
            None => format!("{}-{}{}", self.board, self.fb_gb, self.suffix),
        }
    }

    /// The MIG-backed C-series type for `profile` on `model`, with the given prefix.
    /// `None` if the profile's name has no GB figure the type grammar can carry.
    pub fn for_profile(model: &GpuModel, profile: &GiProfile, prefix: &str) -> Option<VgpuType> {
        let base = profile
            .name
            .strip_suffix(profile.variant.profile_suffix())?;
        let gb = base.split_once('.')?.1.strip_suffix("gb")?;
        let attr = profile.variant.vgpu_attr();
        Some(VgpuType {
            prefix: prefix.to_string(),
            board: model.vgpu_board.to_string(),
            mig_slices: Some(profile.compute_slices),
            fb_gb: digits(gb)?,
            suffix: format!("c{attr}"),
        })
    }
}

impl std::fmt::Display for VgpuType {
    /// The vSphere spelling: `grid_a100-3-20c` (no `_` when the prefix is empty).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "{}", self.base_name())
        } else {
            write!(f, "{}_{}", self.prefix, self.base_name())
        }
    }
}

/// Boards whose vGPU types NVIDIA's host driver names `GRID …` (vSphere: `grid_…`): the
/// Ampere data-centre boards. Every later family (Ada, Hopper, Blackwell) is `NVIDIA …`
/// (`nvidia_h100xm-80c`, `nvidia_l40s-48q`) [S: research mig-profiles.md §5.4].
const GRID_BOARDS: [&str; 9] = [
    "a100", "a100x", "a100d", "a100dx", "a800", "a800d", "a800dx", "a30", "a30x",
];

/// The vendor prefix vSphere shows in front of `board`'s type names: `grid` or `nvidia`.
/// The one place vmig decides it; where a host lists its types (`sharedPassthruGpuTypes`),
/// callers use the host's spelling instead (`vmig`'s `HostAnalysis::offered`).
pub fn vendor_prefix(board: &str) -> &'static str {
    if GRID_BOARDS.iter().any(|b| b.eq_ignore_ascii_case(board)) {
        "grid"
    } else {
        "nvidia"
    }
}

/// The MIG-backed C-series type for `profile` on `model`, spelled as NVIDIA names the
/// family's types (`grid_a100-3-20c`, `nvidia_h100xm-1-10c`). `None` for a model with no
/// known vGPU board: a name would have to be invented.
pub fn vgpu_type_for(model: &GpuModel, profile: &GiProfile) -> Option<VgpuType> {
    if model.vgpu_board.is_empty() {
        return None;
    }
    VgpuType::for_profile(model, profile, vendor_prefix(model.vgpu_board))
}

/// The MIG-backed vGPU type names backed by `profile` on `model`, with the family's prefix
/// ([`vendor_prefix`]). A host may still spell a type the other way (the prefix follows the
/// vGPU release's display name); compare with `VgpuType::base_name` to accept both.
pub fn vgpu_types_for(model: &GpuModel, profile: &GiProfile) -> Vec<String> {
    vgpu_type_for(model, profile)
        .map(|t| t.to_string())
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(key: &str) -> &'static GpuModel {
        GpuModel::by_key(key).unwrap()
    }

    #[test]
    fn names_are_spelled_per_family() {
        let h100 = model("h100-sxm5-80gb");
        let p = h100.gi_profile_by_name("1g.10gb").unwrap();
        assert_eq!(vgpu_types_for(h100, p), ["nvidia_h100xm-1-10c"]);
        let a100 = model("a100-pcie-40gb");
        let p = a100.gi_profile_by_name("3g.20gb").unwrap();
        assert_eq!(vgpu_types_for(a100, p), ["grid_a100-3-20c"]);
        assert_eq!(vendor_prefix("a30"), "grid");
        assert_eq!(vendor_prefix("h200x"), "nvidia");
        assert_eq!(vendor_prefix("b200"), "nvidia");
    }

    #[test]
    fn parses_mig_backed_and_time_sliced_types() {
        let t = VgpuType::parse("grid_a100-3-20c").unwrap();
        assert_eq!(
            (
                t.prefix.as_str(),
                t.board.as_str(),
                t.mig_slices,
                t.fb_gb,
                t.suffix.as_str()
            ),
            ("grid", "a100", Some(3), 20, "c")
        );
        assert!(t.is_mig_backed());
        let t = VgpuType::parse("nvidia_h100xm-1-10cme").unwrap();
        assert_eq!(
            (t.board.as_str(), t.mig_slices, t.suffix.as_str()),
            ("h100xm", Some(1), "cme")
        );
        for timesliced in [
            "grid_a100-4c",
            "grid_a100-40c",
            "grid_a100d-80c",
            "nvidia_l40s-48q",
            "grid_m10-8q",
        ] {
            let t = VgpuType::parse(timesliced).unwrap();
            assert!(!t.is_mig_backed(), "{timesliced}");
            assert_eq!(t.mig_profile_name(), None);
        }
        assert_eq!(
            VgpuType::parse("GRID A100X-2-10C").unwrap().to_string(),
            "grid_a100x-2-10c"
        );
        assert_eq!(VgpuType::parse("a100-3-20c").unwrap().prefix, "");
        for bad in [
            "",
            "grid_",
            "grid_a100",
            "grid_a100-3-20",
            "grid_a100-x-20c",
            "grid_a100-3-20z",
            "grid_a100-0-20c",
            "grid_a100-1-2-3c",
            "grid_a100-4cme",
            "grid_-3-20c",
            "grid_a100-3-20cxx",
        ] {
            assert_eq!(VgpuType::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn maps_types_to_profiles_per_board() {
        let a100 = model("a100-pcie-40gb");
        let p = |name: &str, m: &'static GpuModel| {
            VgpuType::parse(name)
                .and_then(|t| t.gi_profile(m))
                .map(|p| p.name)
        };
        assert_eq!(p("grid_a100-3-20c", a100), Some("3g.20gb"));
        assert_eq!(p("grid_a100-1-5cme", a100), Some("1g.5gb+me"));
        assert_eq!(p("grid_a100-1-10c", a100), Some("1g.10gb"));
        assert_eq!(p("nvidia_a100-7-40c", a100), Some("7g.40gb"));
        assert_eq!(p("grid_a100-40c", a100), None, "time-sliced");
        assert_eq!(p("grid_a100d-3-40c", a100), None, "other board");
        assert_eq!(
            p("grid_a100x-3-20c", model("a100-sxm4-40gb")),
            Some("3g.20gb")
        );
        assert_eq!(
            p("grid_a100d-1-10cme", model("a100-pcie-80gb")),
            Some("1g.10gb+me")
        );
        assert_eq!(
            p("grid_a100dx-1-20c", model("a100-sxm4-80gb")),
            Some("1g.20gb")
        );
        assert_eq!(p("grid_a30-2-12cme", model("a30-24gb")), Some("2g.12gb+me"));
        assert_eq!(
            p("nvidia_h100xm-3-40c", model("h100-sxm5-80gb")),
            Some("3g.40gb")
        );
        assert_eq!(
            p("nvidia_h100-1-10c", model("h100-pcie-80gb")),
            Some("1g.10gb")
        );
        assert_eq!(
            p("nvidia_h100l-7-94c", model("h100-nvl-94gb")),
            Some("7g.94gb")
        );
        assert_eq!(p("nvidia_h20-1-24c", model("h20-96gb")), Some("1g.24gb"));
        assert_eq!(
            p("nvidia_h100xl-3-47c", model("h100-sxm5-94gb")),
            Some("3g.47gb")
        );
        assert_eq!(
            p("nvidia_h200x-3-71c", model("h200-sxm-141gb")),
            Some("3g.71gb")
        );
        assert_eq!(
            p("nvidia_h200-1-18cme", model("h200-nvl-141gb")),
            Some("1g.18gb+me")
        );
        let t = VgpuType::parse("grid_a100d-2-20c").unwrap();
        assert_eq!(
            t.gpu_models().map(|m| m.key).collect::<Vec<_>>(),
            ["a100-pcie-80gb"]
        );
    }

    #[test]
    fn every_catalog_profile_has_a_round_tripping_type_name() {
        for m in crate::catalog() {
            if m.vgpu_board.is_empty() {
                // No source names this model's vGPU types: none are made up.
                for p in m.gi_profiles {
                    assert!(vgpu_types_for(m, p).is_empty(), "{} {}", m.key, p.name);
                }
                continue;
            }
            for p in m.gi_profiles {
                let names = vgpu_types_for(m, p);
                assert_eq!(names.len(), 1, "{} {}", m.key, p.name);
                let t = VgpuType::parse(&names[0]).unwrap();
                assert_eq!(t.gi_profile(m).map(|q| q.id), Some(p.id), "{}", names[0]);
                // The family's prefix (`grid_` for Ampere, `nvidia_` after), then the base name.
                let prefix = format!("{}_", vendor_prefix(m.vgpu_board));
                assert_eq!(Some(t.base_name().as_str()), names[0].strip_prefix(&prefix));
            }
        }
        let a100 = model("a100-pcie-40gb");
        assert_eq!(
            vgpu_types_for(a100, a100.gi_profile_by_name("3g.20gb").unwrap()),
            ["grid_a100-3-20c"]
        );
        assert_eq!(
            vgpu_types_for(a100, a100.gi_profile_by_name("1g.5gb+me").unwrap()),
            ["grid_a100-1-5cme"]
        );
    }
}
