//! Starting vGPUs, and what the simulated vGPU manager offers (issue 18).
//!
//! On a GPU in MIG mode a vGPU runs in a GPU instance: a type the model offers
//! ([`crate::vgpu_types`]) must run in that GI's profile, and a GI runs vGPUs of one type
//! only, at most the type's per-GI maximum (several when the type is time-sliced inside the
//! GI). On a GPU not in MIG mode a whole-GPU time-sliced type runs, at most its per-GPU
//! maximum, every vGPU on the GPU of one type (equal-size mode). Refusals name the
//! `nvmlReturn_t` the driver gives for the same attempt, so a test reads what a real VM
//! power-on would see. A free-form type name (a model without simulated types, as the
//! earlier tests use) keeps the earlier rule: it takes a whole GI.
use mig::GpuInstanceId;

use super::{NO_INSTANCE, SimError, SimGpu, SimState, SimVgpu};
use crate::vgpu_types::{self, TypeSpec};

impl SimState {
    /// `nvml-sim occupy -i GPU --gi GI --vgpu TYPE --vm NAME`: a VM's MIG-backed vGPU becomes
    /// active on a GI; returns its `nvmlVgpuInstance_t`.
    pub fn start_vgpu(
        &mut self,
        index: u32,
        gi: u32,
        vgpu_type: &str,
        vm: &str,
    ) -> Result<u32, SimError> {
        self.check_vm_free(vm)?;
        let instance = self.next_vgpu_instance.max(1);
        let gpu = self.gpu_mut_checked(index)?;
        if !gpu.mig_mode.current {
            return Err(SimError::MigOff { gpu: index });
        }
        let name = gpu.check_gi_room(index, gi, vgpu_type)?;
        gpu.vgpus.push(SimVgpu {
            instance,
            vgpu_type: name,
            vm: vm.to_string(),
            gi,
            vm_is_uuid: false,
            load: None,
        });
        gpu.sync_in_use();
        self.next_vgpu_instance = instance + 1;
        Ok(instance)
    }

    /// `nvml-sim occupy -i GPU --vgpu TYPE --vm NAME` (no `--gi`): a whole-GPU time-sliced
    /// vGPU on a GPU that is not in MIG mode; returns its `nvmlVgpuInstance_t`.
    pub fn start_whole_gpu_vgpu(
        &mut self,
        index: u32,
        vgpu_type: &str,
        vm: &str,
    ) -> Result<u32, SimError> {
        self.check_vm_free(vm)?;
        let instance = self.next_vgpu_instance.max(1);
        let gpu = self.gpu_mut_checked(index)?;
        if gpu.mig_mode.current {
            return Err(SimError::NeedGi { gpu: index });
        }
        let spec = gpu.offered(index, vgpu_type, false)?;
        if let Some(other) = gpu.vgpus.iter().find(|v| v.vgpu_type != spec.name) {
            return Err(SimError::OtherSize {
                gpu: index,
                hosted: other.vgpu_type.clone(),
                wanted: spec.name.to_string(),
            });
        }
        let max = spec.max_per_gpu(gpu.model());
        if gpu.vgpus.len() as u32 >= max {
            return Err(SimError::GpuFull {
                gpu: index,
                hosted: spec.name.to_string(),
                max,
            });
        }
        gpu.vgpus.push(SimVgpu {
            instance,
            vgpu_type: spec.name.to_string(),
            vm: vm.to_string(),
            gi: NO_INSTANCE,
            vm_is_uuid: false,
            load: None,
        });
        self.next_vgpu_instance = instance + 1;
        Ok(instance)
    }

    fn check_vm_free(&self, vm: &str) -> Result<(), SimError> {
        if self.gpus.iter().any(|g| g.vgpus.iter().any(|v| v.vm == vm)) {
            return Err(SimError::VmInUse { vm: vm.to_string() });
        }
        Ok(())
    }

    /// The `nvmlVgpuTypeId_t` of an active vGPU's type on GPU `gpu`.
    pub fn vgpu_type_id_on(gpu: &SimGpu, name: &str) -> u32 {
        vgpu_types::find(gpu.model(), name)
            .map_or_else(|| SimState::vgpu_type_id(name), |t| t.id(gpu.model()))
    }
}

impl SimGpu {
    /// The model's type named `wanted`, of the kind this GPU's mode runs (`mig_backed`).
    fn offered(
        &self,
        index: u32,
        wanted: &str,
        mig_backed: bool,
    ) -> Result<&'static TypeSpec, SimError> {
        let model = self.model();
        vgpu_types::find(model, wanted)
            .filter(|t| t.is_mig_backed() == mig_backed)
            .ok_or_else(|| SimError::UnknownVgpuType {
                gpu: index,
                model: model.key.to_string(),
                wanted: wanted.to_string(),
                mode: if mig_backed {
                    " in MIG mode"
                } else {
                    " with MIG disabled"
                },
                known: self
                    .supported_types()
                    .iter()
                    .map(|t| t.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Whether GI `gi` takes one more vGPU of `wanted`; the type's canonical name if so.
    fn check_gi_room(&self, index: u32, gi: u32, wanted: &str) -> Result<String, SimError> {
        let Some(instance) = self.mig.gpu_instances.get(&GpuInstanceId(gi)) else {
            return Err(SimError::NoSuchGpuInstance { gpu: index, gi });
        };
        let model = self.model();
        let hosted: Vec<&SimVgpu> = self.vgpus.iter().filter(|v| v.gi == gi).collect();
        let (name, max) = if vgpu_types::types_of(model).is_empty() {
            (wanted.to_string(), 1)
        } else {
            let spec = self.offered(index, wanted, true)?;
            if spec.gi_profile_id(model) != Some(instance.profile) {
                let name_of = |id| {
                    model
                        .gi_profiles
                        .iter()
                        .find(|p| Some(p.id) == id)
                        .map_or_else(|| "unknown profile".to_string(), |p| p.name.to_string())
                };
                return Err(SimError::WrongGiProfile {
                    gpu: index,
                    gi,
                    wanted: spec.name.to_string(),
                    needs: name_of(spec.gi_profile_id(model)),
                    has: name_of(Some(instance.profile)),
                });
            }
            (spec.name.to_string(), spec.max_per_gi().unwrap_or(1))
        };
        if let Some(other) = hosted.iter().find(|v| v.vgpu_type != name) {
            return Err(SimError::GiHostsOtherType {
                gpu: index,
                gi,
                hosted: other.vgpu_type.clone(),
                wanted: name,
            });
        }
        if hosted.len() as u32 >= max {
            return Err(SimError::GiFull {
                gpu: index,
                gi,
                hosted: name,
                max,
            });
        }
        Ok(name)
    }

    /// `nvmlDeviceGetSupportedVgpus`: the MIG-backed types in MIG mode, else the whole-GPU
    /// ones.
    pub fn supported_types(&self) -> Vec<&'static TypeSpec> {
        let mig_on = self.mig_mode.current;
        vgpu_types::types_of(self.model())
            .iter()
            .filter(|t| t.is_mig_backed() == mig_on)
            .collect()
    }

    /// `nvmlDeviceGetCreatableVgpus`: in MIG mode the types some existing GI takes now; else
    /// the whole-GPU types that may start next to the running ones (equal-size mode: only
    /// the running type, while below its maximum).
    pub fn creatable_types(&self) -> Vec<&'static TypeSpec> {
        if self.mig_mode.current {
            let mut out: Vec<&'static TypeSpec> = Vec::new();
            for gi in self.mig.gpu_instances.keys() {
                for t in self.creatable_in_gi(gi.0) {
                    if !out.contains(&t) {
                        out.push(t);
                    }
                }
            }
            return out;
        }
        let model = self.model();
        self.supported_types()
            .into_iter()
            .filter(|t| {
                self.vgpus.iter().all(|v| v.vgpu_type == t.name)
                    && (self.vgpus.len() as u32) < t.max_per_gpu(model)
            })
            .collect()
    }

    /// `nvmlGpuInstanceGetCreatableVgpus`: the types GI `gi` takes one more of now.
    pub fn creatable_in_gi(&self, gi: u32) -> Vec<&'static TypeSpec> {
        let Some(instance) = self.gpu_instance(gi) else {
            return Vec::new();
        };
        let busy = self.processes.iter().any(|p| p.gi == Some(gi));
        let hosted: Vec<&SimVgpu> = self.vgpus.iter().filter(|v| v.gi == gi).collect();
        let model = self.model();
        vgpu_types::types_of(model)
            .iter()
            .filter(|t| t.gi_profile_id(model) == Some(instance.profile) && !busy)
            .filter(|t| {
                hosted.iter().all(|v| v.vgpu_type == t.name)
                    && (hosted.len() as u32) < t.max_per_gi().unwrap_or(0)
            })
            .collect()
    }

    /// `nvmlGpuInstanceGetActiveVgpus`: the vGPU instances running in GI `gi`.
    pub fn active_in_gi(&self, gi: u32) -> Vec<u32> {
        self.vgpus
            .iter()
            .filter(|v| v.gi == gi)
            .map(|v| v.instance)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtx(mig: bool) -> SimState {
        let key = "rtx-pro-6000-bse-96gb".to_string();
        let mut s = SimState::new(&[key.clone(), key]).expect("catalog has the RTX PRO 6000");
        if mig {
            s.gpus[0].mig_mode.current = true;
            s.gpus[0].mig_mode.pending = true;
        }
        s
    }

    fn create_gi(s: &mut SimState, profile: u32) -> u32 {
        s.gpus[0].create_gi(profile, None).expect("room for the GI")
    }

    #[test]
    fn a_gi_fills_slot_by_slot_then_refuses() {
        let mut s = rtx(true);
        let gi = create_gi(&mut s, 14);
        for (n, vm) in ["vm-1", "vm-2", "vm-3"].iter().enumerate() {
            let names: Vec<_> = s.gpus[0]
                .creatable_in_gi(gi)
                .iter()
                .map(|t| t.name)
                .collect();
            assert!(names.contains(&"NVIDIA DC-1-8C"), "slot {n}: {names:?}");
            s.start_vgpu(0, gi, "nvidia_dc-1-8c", vm)
                .expect("a free slot");
            assert_eq!(s.gpus[0].active_in_gi(gi).len(), n + 1);
        }
        assert!(s.gpus[0].creatable_in_gi(gi).is_empty());
        assert!(matches!(
            s.start_vgpu(0, gi, "NVIDIA DC-1-8C", "vm-4"),
            Err(SimError::GiFull { max: 3, .. })
        ));
        // The GI backs vGPUs: it cannot be destroyed, as with one whole-GI vGPU.
        assert!(s.gpus[0].gpu_instance(gi).expect("GI").in_use);
        s.stop_vgpu("vm-2").expect("running");
        assert_eq!(
            s.gpus[0].creatable_in_gi(gi)[0].name,
            "NVIDIA DC-1-8C",
            "only the hosted type while it has slots"
        );
        s.start_vgpu(0, gi, "DC-1-8C", "vm-4")
            .expect("the freed slot");
    }

    #[test]
    fn a_gi_runs_one_type_in_its_own_profile() {
        let mut s = rtx(true);
        let gi = create_gi(&mut s, 14);
        s.start_vgpu(0, gi, "NVIDIA DC-1-8C", "vm-1")
            .expect("free GI");
        let err = s.start_vgpu(0, gi, "NVIDIA DC-1-12C", "vm-2").unwrap_err();
        assert!(matches!(err, SimError::GiHostsOtherType { .. }), "{err}");
        assert!(err.to_string().contains("INSUFFICIENT_RESOURCES"));
        let err = s.start_vgpu(0, gi, "NVIDIA DC-2-24C", "vm-2").unwrap_err();
        assert!(matches!(err, SimError::WrongGiProfile { .. }), "{err}");
        let err = s.start_vgpu(0, gi, "NVIDIA DC-8C", "vm-2").unwrap_err();
        assert!(matches!(err, SimError::UnknownVgpuType { .. }), "{err}");
        // A whole-GI type takes the GI alone.
        let gi2 = create_gi(&mut s, 14);
        s.start_vgpu(0, gi2, "NVIDIA DC-1-24C", "vm-3")
            .expect("free GI");
        assert!(matches!(
            s.start_vgpu(0, gi2, "NVIDIA DC-1-24C", "vm-4"),
            Err(SimError::GiFull { max: 1, .. })
        ));
    }

    #[test]
    fn a_gpu_without_mig_runs_one_size_up_to_its_maximum() {
        let mut s = rtx(true);
        let gpu = 1;
        assert_eq!(s.gpus[1].supported_types().len(), 6);
        assert!(matches!(
            s.start_whole_gpu_vgpu(0, "NVIDIA DC-8C", "vm-0"),
            Err(SimError::NeedGi { .. })
        ));
        for n in 0..4 {
            s.start_whole_gpu_vgpu(gpu, "nvidia_dc-24c", &format!("vm-{n}"))
                .expect("room");
        }
        assert!(matches!(
            s.start_whole_gpu_vgpu(gpu, "NVIDIA DC-24C", "vm-9"),
            Err(SimError::GpuFull { max: 4, .. })
        ));
        assert!(s.gpus[1].creatable_types().is_empty());
        s.stop_vgpu("vm-0").expect("running");
        let creatable: Vec<_> = s.gpus[1].creatable_types().iter().map(|t| t.name).collect();
        assert_eq!(creatable, ["NVIDIA DC-24C"]);
        assert!(matches!(
            s.start_whole_gpu_vgpu(gpu, "NVIDIA DC-8C", "vm-9"),
            Err(SimError::OtherSize { .. })
        ));
        assert!(matches!(
            s.start_whole_gpu_vgpu(gpu, "NVIDIA DC-1-8C", "vm-9"),
            Err(SimError::UnknownVgpuType { .. })
        ));
        // Whole-GPU vGPUs have no GI (`nvmlVgpuInstanceGetGpuInstanceId`: INVALID).
        assert!(s.gpus[1].vgpus.iter().all(|v| v.gi == NO_INSTANCE));
    }

    #[test]
    fn free_form_types_on_models_without_types_keep_a_whole_gi() {
        let mut s = SimState::new(&["a100-pcie-40gb".into()]).expect("catalog");
        s.gpus[0].mig_mode.current = true;
        let gi = s.gpus[0].create_gi(9, None).expect("3g.20gb");
        s.start_vgpu(0, gi, "grid_a100-3-20c", "vm-1")
            .expect("free GI");
        assert!(matches!(
            s.start_vgpu(0, gi, "grid_a100-3-20c", "vm-2"),
            Err(SimError::GiFull { max: 1, .. })
        ));
        assert!(s.gpus[0].supported_types().is_empty());
        assert!(s.gpus[0].creatable_in_gi(gi).is_empty());
    }
}
