//! Time-sliced vGPUs in the host document (issue 18), additive to `vmig.mig/v1`:
//! - a MIG GPU whose driver runs several time-sliced vGPUs inside one GI lists, per GPU, the
//!   types that may do so with the driver's per-GI maximum ([`SlicedTypeReport`], from
//!   `nvmlVgpuTypeGetMaxInstancesPerGpuInstance`), and per GI every vGPU it hosts
//!   ([`VgpuReport`], from `nvmlGpuInstanceGetActiveVgpus`);
//! - a GPU *not* in MIG mode that runs (or may run) time-sliced vGPUs lists them and, per
//!   type, how many more could start now ([`TimeslicedReport`]).
//!
//! Readers that predate these fields keep working: a GI hosting time-sliced vGPUs still has
//! `in_use`, `vm` and `vgpu_type` (its first vGPU), so an old `vmig` counts it as taken.

use serde::{Deserialize, Serialize};

use crate::ids::{GiProfileId, GpuInstanceId};
use crate::vgpu_slots::{GiSlots, GpuSlots, MaxPerGi, SlicedType};

use super::limits::{MAX_ID, MAX_LIST_ENTRIES, MAX_TEXT_CHARS, clip, text};
use super::{GiReport, GpuReport};

/// The most vGPUs one GPU (or one GI) may list: NVIDIA's densest time-sliced types run a few
/// dozen per GPU; a document claiming more is not believed.
pub const MAX_VGPUS_PER_GPU: usize = 64;

/// One running vGPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VgpuReport {
    /// The VM it belongs to, as NVML names it (`nvmlVgpuInstanceGetVmID`), when it tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm: Option<String>,
    /// The vGPU type's name as the driver spells it (`nvmlVgpuTypeGetName`).
    pub vgpu_type: String,
}

/// A vGPU type that runs time-sliced inside GIs of one profile on this GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlicedTypeReport {
    /// The type's name as the driver spells it.
    pub vgpu_type: String,
    /// The GI profile it runs in.
    pub gi_profile_id: GiProfileId,
    /// How many of it one GI hosts (`maxInstancePerGI`); at least 2, since a type one GI
    /// hosts once is an ordinary MIG-backed type and is not listed here.
    pub max_per_gi: u32,
}

/// Whole-GPU time-sliced vGPUs on a GPU that is not in MIG mode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeslicedReport {
    /// The vGPUs running on the GPU (`nvmlDeviceGetActiveVgpus`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vgpus: Vec<VgpuReport>,
    /// The types the GPU supports, each with its per-GPU maximum and how many more could
    /// start now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<TimeslicedTypeReport>,
}

/// One whole-GPU time-sliced type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeslicedTypeReport {
    /// The type's name as the driver spells it.
    pub vgpu_type: String,
    /// Most vGPUs of this type one GPU runs (`nvmlVgpuTypeGetMaxInstances`).
    pub max: u32,
    /// How many more could start now, given the vGPUs running (0 when the driver does not
    /// list the type as creatable, e.g. another size runs in same-size mode).
    pub more: u32,
}

impl SlicedTypeReport {
    /// As the pure model's [`SlicedType`]; `None` for a maximum of 0 (validation refuses it
    /// anyway).
    pub fn to_sliced(&self) -> Option<SlicedType> {
        Some(SlicedType {
            name: crate::vgpu::base_name_of(&self.vgpu_type),
            gi_profile: self.gi_profile_id,
            max_per_gi: MaxPerGi::new(self.max_per_gi)?,
        })
    }
}

impl GpuReport {
    /// The time-sliced types this GPU publishes, as the pure model's [`SlicedType`]s (entries
    /// whose maximum is 0 are dropped).
    pub fn sliced_types(&self) -> Vec<SlicedType> {
        self.sliced_types
            .iter()
            .filter_map(SlicedTypeReport::to_sliced)
            .collect()
    }

    /// This GPU's GIs as slots for time-sliced vGPUs: every GI of a profile some published
    /// type runs in, with the type it hosts and how many of its slots are used. GIs backing a
    /// whole-GI vGPU, or running processes, are left out (nothing can join them).
    pub fn gpu_slots(&self) -> GpuSlots {
        let types = self.sliced_types();
        let mut slots = GpuSlots::default();
        for gi in &self.gpu_instances {
            if let Some(s) = gi_slots(gi, &types) {
                slots.gis.push(s);
            }
        }
        slots
    }
}

/// The vGPUs a GI hosts, as any agent reports them: its `vgpus`, or, from an agent older
/// than that field, the one vGPU its `vgpu_type` (and `vm`) name. The one rule for readers
/// of both kinds of document (slots here, the report's lines in `vmig`).
pub fn vgpus_of<'a>(
    vgpus: &'a [VgpuReport],
    vm: Option<&str>,
    vgpu_type: Option<&str>,
) -> std::borrow::Cow<'a, [VgpuReport]> {
    match (vgpus, vgpu_type) {
        ([], Some(t)) => std::borrow::Cow::Owned(vec![VgpuReport {
            vm: vm.map(str::to_string),
            vgpu_type: t.to_string(),
        }]),
        _ => std::borrow::Cow::Borrowed(vgpus),
    }
}

impl GiReport {
    /// This GI's vGPUs ([`vgpus_of`]).
    pub fn hosted_vgpus(&self) -> std::borrow::Cow<'_, [VgpuReport]> {
        vgpus_of(&self.vgpus, self.vm.as_deref(), self.vgpu_type.as_deref())
    }
}

fn gi_slots(gi: &GiReport, types: &[SlicedType]) -> Option<GiSlots> {
    if !types.iter().any(|t| t.gi_profile == gi.profile_id) || !gi.processes.is_empty() {
        return None;
    }
    let empty = GiSlots::empty(GpuInstanceId(gi.gi_id.0), gi.profile_id);
    let vgpus = gi.hosted_vgpus();
    let Some(first) = vgpus.first() else {
        return (!gi.in_use).then_some(empty);
    };
    let name = crate::vgpu::base_name_of(&first.vgpu_type);
    let hosted = types
        .iter()
        .find(|t| t.name == name && t.gi_profile == gi.profile_id)?;
    let used = u32::try_from(vgpus.len()).unwrap_or(u32::MAX);
    Some(GiSlots {
        hosted: Some(hosted.clone()),
        used,
        ..empty
    })
}

pub(super) fn validate_gpu(gpu: &GpuReport) -> Result<(), String> {
    if gpu.sliced_types.len() > MAX_LIST_ENTRIES {
        return Err(format!(
            "sliced_types has {} entries, more than {}",
            gpu.sliced_types.len(),
            MAX_LIST_ENTRIES
        ));
    }
    for t in &gpu.sliced_types {
        text("sliced_types vgpu_type", &t.vgpu_type, MAX_TEXT_CHARS)?;
        if !(2..=MAX_VGPUS_PER_GPU as u32).contains(&t.max_per_gi) {
            return Err(format!(
                "sliced_types max_per_gi {} is outside 2..={MAX_VGPUS_PER_GPU}",
                t.max_per_gi
            ));
        }
        if t.gi_profile_id.0 > MAX_ID {
            return Err(format!(
                "sliced_types gi_profile_id {} is above {}",
                t.gi_profile_id.0, MAX_ID
            ));
        }
    }
    if let Some(ts) = &gpu.timesliced {
        vgpus("timesliced.vgpus", &ts.vgpus)?;
        if ts.types.len() > MAX_LIST_ENTRIES {
            return Err(format!(
                "timesliced.types has {} entries, more than {}",
                ts.types.len(),
                MAX_LIST_ENTRIES
            ));
        }
        for t in &ts.types {
            text("timesliced.types vgpu_type", &t.vgpu_type, MAX_TEXT_CHARS)?;
            if t.max as usize > MAX_VGPUS_PER_GPU || t.more > t.max {
                return Err(format!(
                    "timesliced type {:?}: max {} / more {} (max at most {MAX_VGPUS_PER_GPU}, more at most max)",
                    clip(&t.vgpu_type),
                    t.max,
                    t.more
                ));
            }
        }
    }
    Ok(())
}

pub(super) fn validate_gi(gi: &GiReport) -> Result<(), String> {
    vgpus("vgpus", &gi.vgpus)
}

fn vgpus(field: &str, list: &[VgpuReport]) -> Result<(), String> {
    if list.len() > MAX_VGPUS_PER_GPU {
        return Err(format!(
            "{field} has {} entries, more than {MAX_VGPUS_PER_GPU}",
            list.len()
        ));
    }
    for v in list {
        text(&format!("{field} vgpu_type"), &v.vgpu_type, MAX_TEXT_CHARS)?;
        if let Some(vm) = &v.vm {
            text(&format!("{field} vm"), vm, MAX_TEXT_CHARS)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Placement;
    use crate::report::{HostReport, ReportError};

    const GOOD: &str = include_str!("../../fuzz/seeds/report/a100-docs-example.json");

    fn gi(id: u32, profile: u32, vgpus: &[&str]) -> GiReport {
        GiReport {
            gi_id: GpuInstanceId(id),
            profile_id: GiProfileId(profile),
            profile: "1g.24gb".into(),
            placement: Placement { start: id, size: 1 },
            compute_instances: Vec::new(),
            in_use: !vgpus.is_empty(),
            vm: vgpus.first().map(|_| "vm-1".to_string()),
            vgpu_type: vgpus.first().map(|t| t.to_string()),
            processes: Vec::new(),
            vgpus: vgpus
                .iter()
                .map(|t| VgpuReport {
                    vm: None,
                    vgpu_type: t.to_string(),
                })
                .collect(),
        }
    }

    fn gpu(gis: Vec<GiReport>) -> GpuReport {
        let mut doc = HostReport::from_json(GOOD).expect("good seed");
        let mut g = doc.gpus.swap_remove(0);
        g.gpu_instances = gis;
        g.sliced_types = vec![SlicedTypeReport {
            vgpu_type: "NVIDIA DC-1-8C".into(),
            gi_profile_id: GiProfileId(14),
            max_per_gi: 3,
        }];
        g
    }

    #[test]
    fn slots_follow_the_published_vgpus_and_maxima() {
        let g = gpu(vec![
            gi(1, 14, &["nvidia_dc-1-8c", "NVIDIA DC-1-8C"]),
            gi(2, 14, &[]),
            // Another profile: not a slot.
            gi(3, 9, &[]),
        ]);
        let slots = g.gpu_slots();
        assert_eq!(slots.gis.len(), 2);
        let t = &g.sliced_types()[0];
        assert_eq!(t.name, "dc-1-8c");
        assert_eq!(slots.gis[0].used, 2);
        assert_eq!(slots.gis[0].free_for(t), 1);
        assert_eq!(slots.gis[1].free_for(t), 3);
        // Packing: the fuller GI first.
        assert_eq!(slots.choose(t), Some(GpuInstanceId(1)));
    }

    #[test]
    fn a_gi_hosting_an_unpublished_type_or_processes_is_no_slot() {
        let mut busy = gi(2, 14, &[]);
        busy.processes.push(crate::report::ProcessReport {
            pid: 7,
            name: None,
            ci_id: None,
        });
        let g = gpu(vec![gi(1, 14, &["nvidia_dc-1-24c"]), busy]);
        assert!(g.gpu_slots().gis.is_empty());
    }

    #[test]
    fn an_older_agents_gi_counts_its_one_vgpu() {
        let mut old = gi(1, 14, &[]);
        old.in_use = true;
        old.vgpu_type = Some("nvidia_dc-1-8c".into());
        let slots = gpu(vec![old]).gpu_slots();
        assert_eq!(slots.gis[0].used, 1);
    }

    #[test]
    fn hostile_vgpu_fields_are_refused_with_a_reason() {
        let reason = |g: GpuReport| {
            let mut doc = HostReport::from_json(GOOD).expect("good seed");
            doc.gpus[0] = g;
            let text = serde_json::to_string(&doc).expect("serialises");
            match HostReport::from_json(&text) {
                Err(ReportError::Invalid(r)) => r,
                other => panic!("expected invalid, got {other:?}"),
            }
        };
        let mut g = gpu(Vec::new());
        g.sliced_types[0].max_per_gi = 1;
        assert!(reason(g).contains("max_per_gi 1"));
        let many: Vec<&str> = vec!["nvidia_dc-1-8c"; MAX_VGPUS_PER_GPU + 1];
        let mut hot = gi(1, 14, &[]);
        hot.vgpus = gi(1, 14, &many).vgpus;
        assert!(reason(gpu(vec![hot])).contains("more than 64"));
        let mut g = gpu(Vec::new());
        g.timesliced = Some(TimeslicedReport {
            vgpus: Vec::new(),
            types: vec![TimeslicedTypeReport {
                vgpu_type: "nvidia_l40-4q".into(),
                max: 2,
                more: 3,
            }],
        });
        assert!(reason(g).contains("more at most max"));
    }

    #[test]
    fn documents_without_the_fields_read_as_before() {
        let doc = HostReport::from_json(GOOD).expect("good seed");
        assert!(
            doc.gpus
                .iter()
                .all(|g| g.sliced_types.is_empty() && g.timesliced.is_none())
        );
        let text = serde_json::to_string(&doc).expect("serialises");
        assert!(!text.contains("sliced_types") && !text.contains("vgpus"));
    }
}
