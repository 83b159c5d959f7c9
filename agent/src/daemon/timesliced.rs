//! Time-sliced vGPUs in a GPU's report (issue 18; schema in `mig::report::vgpus`):
//! - on a GPU in MIG mode, the types one GI runs several of (`sliced_types`, only those with a
//!   per-GI maximum of 2 or more) and, per GI, every vGPU it runs (`gpu_instances[].vgpus`,
//!   from the GPU's active vGPUs and the GI each sits on);
//! - on a GPU not in MIG mode whose driver lists vGPU types, the running vGPUs and per type
//!   the per-GPU maximum and how many more could start now (`timesliced`).
//!
//! What the driver did not answer leaves the fields empty; nothing here fails a report.
use mig::report::{
    GpuReport, MAX_VGPUS_PER_GPU, SlicedTypeReport, TimeslicedReport, TimeslicedTypeReport,
    VgpuReport,
};

use crate::nvml::{ActiveVgpu, VgpuTypeInfo};
use crate::observe::GpuMigState;

/// Most types published per GPU (the document's list bound is larger; no board has this many).
const MAX_TYPES: usize = 64;

/// What the driver said about a GPU's vGPU types at this poll.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VgpuTypes {
    /// The types supported in the GPU's current mode.
    pub supported: Vec<VgpuTypeInfo>,
    /// The ids of those that may start now (read on GPUs not in MIG mode only).
    pub creatable: Vec<u32>,
}

/// Add the time-sliced fields to `report` (built from `state` by `gpu_report`).
pub fn add_vgpus(report: &mut GpuReport, state: &GpuMigState, types: &VgpuTypes) {
    if state.mig_mode.is_some_and(|m| m.current) {
        report.sliced_types = types
            .supported
            .iter()
            .filter_map(|t| {
                Some(SlicedTypeReport {
                    vgpu_type: t.name.clone(),
                    gi_profile_id: t.gi_profile_id?,
                    max_per_gi: t
                        .max_per_gi
                        .filter(|&m| m >= 2)?
                        .min(MAX_VGPUS_PER_GPU as u32),
                })
            })
            .take(MAX_TYPES)
            .collect();
        if report.sliced_types.is_empty() {
            return;
        }
        let mut budget = MAX_VGPUS_PER_GPU;
        for gi in &mut report.gpu_instances {
            gi.vgpus = state
                .vgpus
                .iter()
                .filter(|v| v.gi_id == Some(gi.gi_id))
                .take(budget)
                .map(vgpu_report)
                .collect();
            budget -= gi.vgpus.len();
        }
        return;
    }
    let whole: Vec<&VgpuTypeInfo> = types
        .supported
        .iter()
        .filter(|t| t.gi_profile_id.is_none())
        .take(MAX_TYPES)
        .collect();
    if whole.is_empty() {
        return;
    }
    let running: Vec<&ActiveVgpu> = state.vgpus.iter().take(MAX_VGPUS_PER_GPU).collect();
    let types = whole
        .iter()
        .filter_map(|t| {
            let max = t.max_per_gpu?.min(MAX_VGPUS_PER_GPU as u32);
            let of_type = running
                .iter()
                .filter(|v| v.vgpu_type.as_deref() == Some(t.name.as_str()))
                .count() as u32;
            let more = if types.creatable.contains(&t.id) {
                max.saturating_sub(of_type)
            } else {
                0
            };
            Some(TimeslicedTypeReport {
                vgpu_type: t.name.clone(),
                max,
                more,
            })
        })
        .collect();
    report.timesliced = Some(TimeslicedReport {
        vgpus: running.into_iter().map(vgpu_report).collect(),
        types,
    });
}

fn vgpu_report(v: &ActiveVgpu) -> VgpuReport {
    VgpuReport {
        vm: Some(v.vm_id.clone()),
        // The driver named no type: say so rather than drop the vGPU (it still takes a slot).
        vgpu_type: v.vgpu_type.clone().unwrap_or_else(|| "unknown".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use mig::report::{GiReport, HostReport};
    use mig::{GiProfileId, GpuInstanceId, Placement};

    use super::*;
    use crate::nvml::MigMode;

    fn info(
        id: u32,
        name: &str,
        gi: Option<u32>,
        per_gpu: u32,
        per_gi: Option<u32>,
    ) -> VgpuTypeInfo {
        VgpuTypeInfo {
            id,
            name: name.into(),
            gi_profile_id: gi.map(GiProfileId),
            max_per_gpu: Some(per_gpu),
            max_per_gi: per_gi,
        }
    }

    fn vgpu(vm: &str, t: &str, gi: Option<u32>) -> ActiveVgpu {
        ActiveVgpu {
            vm_id: vm.into(),
            vgpu_type: Some(t.into()),
            gi_id: gi.map(GpuInstanceId),
        }
    }

    fn state(mig: bool, vgpus: Vec<ActiveVgpu>) -> GpuMigState {
        GpuMigState {
            index: 0,
            name: "NVIDIA RTX PRO 6000 Blackwell Server Edition".into(),
            uuid: "GPU-0".into(),
            pci_bus_id: None,
            memory_mib: None,
            model: None,
            mig_mode: Some(MigMode {
                current: mig,
                pending: mig,
            }),
            gi_profiles: Vec::new(),
            gpu_instances: Vec::new(),
            mig_devices: Vec::new(),
            processes: Vec::new(),
            vgpus,
        }
    }

    fn report(gis: &[u32]) -> GpuReport {
        let doc = HostReport::from_json(include_str!(
            "../../../mig/fuzz/seeds/report/a100-docs-example.json"
        ))
        .expect("seed");
        let mut g = doc.gpus[0].clone();
        g.gpu_instances = gis
            .iter()
            .map(|&id| GiReport {
                gi_id: GpuInstanceId(id),
                profile_id: GiProfileId(14),
                profile: "1g.24gb".into(),
                placement: Placement {
                    start: id.saturating_sub(1),
                    size: 1,
                },
                compute_instances: Vec::new(),
                in_use: false,
                vm: None,
                vgpu_type: None,
                processes: Vec::new(),
                vgpus: Vec::new(),
            })
            .collect();
        g
    }

    #[test]
    fn mig_gpus_publish_only_types_a_gi_runs_several_of_and_the_vgpus_per_gi() {
        let types = VgpuTypes {
            supported: vec![
                info(1, "NVIDIA DC-1-24C", Some(14), 4, Some(1)),
                info(2, "NVIDIA DC-1-8C", Some(14), 12, Some(3)),
                info(3, "NVIDIA DC-2-48C", Some(5), 2, None),
            ],
            creatable: Vec::new(),
        };
        let st = state(
            true,
            vec![
                vgpu("vm-1", "NVIDIA DC-1-8C", Some(1)),
                vgpu("vm-2", "NVIDIA DC-1-8C", Some(1)),
                vgpu("vm-3", "NVIDIA DC-1-24C", Some(2)),
            ],
        );
        let mut r = report(&[1, 2, 3]);
        add_vgpus(&mut r, &st, &types);
        assert_eq!(r.sliced_types.len(), 1);
        assert_eq!(r.sliced_types[0].max_per_gi, 3);
        let per_gi: Vec<usize> = r.gpu_instances.iter().map(|g| g.vgpus.len()).collect();
        assert_eq!(per_gi, [2, 1, 0]);
        assert!(r.timesliced.is_none());
        // Without a type of max >= 2 nothing changes from the earlier document.
        let mut plain = report(&[1]);
        add_vgpus(
            &mut plain,
            &st,
            &VgpuTypes {
                supported: types.supported[..1].to_vec(),
                creatable: Vec::new(),
            },
        );
        assert!(plain.sliced_types.is_empty() && plain.gpu_instances[0].vgpus.is_empty());
    }

    #[test]
    fn a_gpu_without_mig_publishes_its_vgpus_and_how_many_more_fit() {
        let types = VgpuTypes {
            supported: vec![
                info(7, "NVIDIA DC-24C", None, 4, None),
                info(8, "NVIDIA DC-8C", None, 12, None),
            ],
            creatable: vec![7],
        };
        let st = state(false, vec![vgpu("vm-1", "NVIDIA DC-24C", None)]);
        let mut r = report(&[]);
        add_vgpus(&mut r, &st, &types);
        let ts = r.timesliced.expect("timesliced");
        assert_eq!(ts.vgpus.len(), 1);
        let more: Vec<(u32, u32)> = ts.types.iter().map(|t| (t.max, t.more)).collect();
        assert_eq!(
            more,
            [(4, 3), (12, 0)],
            "same size: the other type cannot start"
        );
        // A GPU whose driver lists no types gets no `timesliced`.
        let mut none = report(&[]);
        add_vgpus(&mut none, &st, &VgpuTypes::default());
        assert!(none.timesliced.is_none());
    }

    /// A driver answering beyond the schema's bounds (a per-GI maximum of 1000, 70 vGPUs in
    /// one GI, a vGPU without a type name) still gives a document every reader accepts.
    #[test]
    fn a_driver_beyond_the_bounds_is_cut_to_them() {
        let types = VgpuTypes {
            supported: vec![info(2, "NVIDIA DC-1-8C", Some(14), 5000, Some(1000))],
            creatable: Vec::new(),
        };
        let mut vgpus: Vec<ActiveVgpu> = (0..70)
            .map(|i| vgpu(&format!("vm-{i}"), "NVIDIA DC-1-8C", Some(1)))
            .collect();
        vgpus[0].vgpu_type = None;
        let mut r = report(&[1]);
        add_vgpus(&mut r, &state(true, vgpus), &types);
        assert_eq!(r.sliced_types[0].max_per_gi, MAX_VGPUS_PER_GPU as u32);
        assert_eq!(r.gpu_instances[0].vgpus.len(), MAX_VGPUS_PER_GPU);
        assert_eq!(r.gpu_instances[0].vgpus[0].vgpu_type, "unknown");
        let mut doc = HostReport::from_json(include_str!(
            "../../../mig/fuzz/seeds/report/a100-docs-example.json"
        ))
        .expect("seed");
        doc.gpus = vec![r];
        let text = serde_json::to_string(&doc).expect("serialises");
        HostReport::from_json(&text).expect("readers accept it");

        let whole = VgpuTypes {
            supported: vec![info(7, "NVIDIA DC-8C", None, 5000, None)],
            creatable: vec![7],
        };
        let many = (0..70)
            .map(|i| vgpu(&format!("vm-{i}"), "NVIDIA DC-8C", None))
            .collect();
        let mut r = report(&[]);
        add_vgpus(&mut r, &state(false, many), &whole);
        let ts = r.timesliced.expect("timesliced");
        assert_eq!(ts.vgpus.len(), MAX_VGPUS_PER_GPU);
        assert_eq!((ts.types[0].max, ts.types[0].more), (64, 0));
    }

    /// docs/reported-data.md "Size budget": 8 GPUs, each at the schema's bound of 64 vGPUs
    /// with 64-character VM ids, half in MIG mode (8 GIs of 8 vGPUs) and half not, stays far
    /// below the readers' limit, and every reader accepts it.
    #[test]
    fn eight_fully_sliced_gpus_stay_within_the_size_budget() {
        let vm = |i: usize| format!("{i:0>64}");
        let mig_types = VgpuTypes {
            supported: vec![info(2, "NVIDIA DC-1-8C", Some(14), 64, Some(8))],
            creatable: Vec::new(),
        };
        let whole_types = VgpuTypes {
            supported: (0..6)
                .map(|i| {
                    info(
                        10 + i,
                        &format!("NVIDIA DC-{}C", 8 * (i + 1)),
                        None,
                        64,
                        None,
                    )
                })
                .collect(),
            creatable: vec![10],
        };
        let gis: Vec<u32> = (1..=8).collect();
        let mut doc = HostReport::from_json(include_str!(
            "../../../mig/fuzz/seeds/report/a100-docs-example.json"
        ))
        .expect("seed");
        doc.gpus = (0..8)
            .map(|g| {
                let mig = g % 2 == 0;
                let vgpus = (0..64)
                    .map(|i| {
                        let gi = mig.then_some(1 + (i / 8) as u32);
                        vgpu(&vm(g * 64 + i), "NVIDIA DC-1-8C", gi)
                    })
                    .collect();
                let mut r = report(if mig { &gis } else { &[] });
                r.index = g as u32;
                r.uuid = format!("GPU-{g}");
                add_vgpus(
                    &mut r,
                    &state(mig, vgpus),
                    if mig { &mig_types } else { &whole_types },
                );
                r
            })
            .collect();
        let text = serde_json::to_string(&doc).expect("serialises");
        assert!(text.len() < 96 * 1024, "{} bytes", text.len());
        HostReport::from_json(&text).expect("readers accept it");
    }
}
