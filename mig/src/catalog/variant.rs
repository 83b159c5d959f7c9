//! The variant of a GPU-instance profile: which media engines it claims beyond its share and
//! whether it runs graphics. Blackwell RTX PRO parts offer one GI size in up to five variants
//! (`1g.24gb`, `+me`, `+me.all`, `-me`, `+gfx`), each with its own profile id; the variant
//! decides the vGPU type attribute (`…C`, `…CME`, `…CMEALL`, `…CNOME`, `…CGFX`) and, through
//! the engines the profile takes, what can share the GPU with it. Meanings: nvml.h comments on
//! `NVML_GPU_INSTANCE_PROFILE_*` and the MIG User Guide's "Profile References".
use serde::{Deserialize, Serialize};

/// How a GI profile differs from the plain profile of its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProfileVariant {
    /// The plain profile (`3g.20gb`): its proportional share of the media engines.
    #[default]
    Standard,
    /// `+me`: at least one media engine more than its share (on A100/H100 the GPU's only OFA
    /// and JPEG unit), so one such GI exists at a time.
    MediaExtensions,
    /// `+me.all`: every media engine of the GPU; while it exists only `-me` GIs can be created
    /// (nvml.h: "prevents allocation of all but _NO_ME profiles").
    AllMediaExtensions,
    /// `-me`: no media engine at all, pure compute.
    NoMediaExtensions,
    /// `+gfx`: graphics APIs inside the GI (GB20x); NVML sets `GPU_INSTANCE_PROFILE_CAPS_GFX`.
    Graphics,
}

impl ProfileVariant {
    /// Every variant, the plain one first.
    pub const ALL: [ProfileVariant; 5] = [
        ProfileVariant::Standard,
        ProfileVariant::MediaExtensions,
        ProfileVariant::AllMediaExtensions,
        ProfileVariant::NoMediaExtensions,
        ProfileVariant::Graphics,
    ];

    /// The suffix of the profile name (`+me`, `+me.all`, `-me`, `+gfx`; empty for the plain one).
    pub const fn profile_suffix(self) -> &'static str {
        match self {
            ProfileVariant::Standard => "",
            ProfileVariant::MediaExtensions => "+me",
            ProfileVariant::AllMediaExtensions => "+me.all",
            ProfileVariant::NoMediaExtensions => "-me",
            ProfileVariant::Graphics => "+gfx",
        }
    }

    /// The attribute a MIG-backed vGPU type name carries after its series letter (`me` in
    /// `a100-1-5cme`; empty for the plain profile).
    pub const fn vgpu_attr(self) -> &'static str {
        match self {
            ProfileVariant::Standard => "",
            ProfileVariant::MediaExtensions => "me",
            ProfileVariant::AllMediaExtensions => "meall",
            ProfileVariant::NoMediaExtensions => "nome",
            ProfileVariant::Graphics => "gfx",
        }
    }

    /// The variant whose vGPU attribute is `attr` (lower case).
    pub fn from_vgpu_attr(attr: &str) -> Option<ProfileVariant> {
        Self::ALL.into_iter().find(|v| v.vgpu_attr() == attr)
    }

    /// The variant whose profile-name suffix is exactly `suffix`.
    pub fn from_profile_suffix(suffix: &str) -> Option<ProfileVariant> {
        Self::ALL.into_iter().find(|v| v.profile_suffix() == suffix)
    }

    /// The variant a profile name spells (`1g.24gb+me.all` → `AllMediaExtensions`); a name
    /// with no known suffix is `Standard`. `const` so the catalog tables derive it from the
    /// name they already carry instead of repeating it.
    pub const fn of_name(name: &str) -> ProfileVariant {
        let b = name.as_bytes();
        // Longest suffix first: `+me.all` also ends like nothing shorter, but keep the order
        // explicit so `+me` never shadows it.
        if ends_with(b, b"+me.all") {
            ProfileVariant::AllMediaExtensions
        } else if ends_with(b, b"+me") {
            ProfileVariant::MediaExtensions
        } else if ends_with(b, b"-me") {
            ProfileVariant::NoMediaExtensions
        } else if ends_with(b, b"+gfx") {
            ProfileVariant::Graphics
        } else {
            ProfileVariant::Standard
        }
    }

    /// Whether GIs of this variant run graphics APIs.
    pub const fn graphics(self) -> bool {
        matches!(self, ProfileVariant::Graphics)
    }
}

/// `name.ends_with(suffix)` for byte strings, usable in `const` context.
const fn ends_with(name: &[u8], suffix: &[u8]) -> bool {
    if suffix.len() > name.len() {
        return false;
    }
    let offset = name.len() - suffix.len();
    let mut i = 0;
    while i < suffix.len() {
        if name[offset + i] != suffix[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_suffixes_and_vgpu_attributes_round_trip() {
        assert_eq!(ProfileVariant::of_name("3g.20gb"), ProfileVariant::Standard);
        assert_eq!(
            ProfileVariant::of_name("1g.5gb+me"),
            ProfileVariant::MediaExtensions
        );
        assert_eq!(
            ProfileVariant::of_name("2g.48gb+me.all"),
            ProfileVariant::AllMediaExtensions
        );
        assert_eq!(
            ProfileVariant::of_name("1g.24gb-me"),
            ProfileVariant::NoMediaExtensions
        );
        assert_eq!(
            ProfileVariant::of_name("4g.96gb+gfx"),
            ProfileVariant::Graphics
        );
        assert_eq!(ProfileVariant::of_name("me"), ProfileVariant::Standard);
        for v in ProfileVariant::ALL {
            assert_eq!(ProfileVariant::from_vgpu_attr(v.vgpu_attr()), Some(v));
            assert_eq!(
                ProfileVariant::from_profile_suffix(v.profile_suffix()),
                Some(v)
            );
            let name = format!("1g.24gb{}", v.profile_suffix());
            assert_eq!(ProfileVariant::of_name(&name), v);
        }
        assert_eq!(ProfileVariant::from_vgpu_attr("xyz"), None);
        assert!(ProfileVariant::Graphics.graphics());
        assert!(!ProfileVariant::AllMediaExtensions.graphics());
    }
}
