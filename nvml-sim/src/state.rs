//! The simulated machine: GPUs, their MIG mode and layout, processes and vGPUs.
//!
//! This is the content of the state file (`NVML_SIM_STATE`) and every rule the simulated driver
//! applies on top of the pure `mig` model: MIG mode is pending until a reset, GI/CI calls need
//! MIG enabled, running processes and active vGPUs make instances "in use", MIG devices get
//! UUIDs that stay fixed for their lifetime. No I/O and no `unsafe` here: the FFI layer and the
//! control binary both drive these methods, so the CLI and the library cannot disagree.
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use mig::{
    CiProfileId, ComputeInstanceId, GiProfile, GiProfileId, GpuInstanceId, GpuModel, MigState,
    Placement,
};
use serde::{Deserialize, Serialize};

use crate::code::{NvmlCode, NvmlResult};
use crate::driver::{Behaviour, Platform};

/// Version of the state file layout; bumped on incompatible changes.
pub const STATE_FORMAT: u32 = 1;
/// Driver version reported by `nvmlSystemGetDriverVersion` unless the state says otherwise.
/// Below 580.82, so nvml-wrapper 0.13 picks its pre-13.x field-id scheme.
pub const DEFAULT_DRIVER_VERSION: &str = "550.54.15";
/// NVML version matching [`DEFAULT_DRIVER_VERSION`] (`nvmlSystemGetNVMLVersion`).
pub const DEFAULT_NVML_VERSION: &str = "12.550.54.15";
/// CUDA driver API version of an R550 driver (`nvmlSystemGetCudaDriverVersion`): 12.4.
pub const DEFAULT_CUDA_DRIVER_VERSION: i32 = 12040;
/// `gpuInstanceId`/`computeInstanceId` of a process when MIG is off (nvml.h).
pub const NO_INSTANCE: u32 = 0xFFFF_FFFF;
/// Used memory of a simulated process unless `occupy --memory-mib` says otherwise.
pub const DEFAULT_PROCESS_MEMORY_MIB: u64 = 256;

/// How `nvmlDeviceSetMigMode` reports and applies a mode change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigActivation {
    /// The change stays pending until `nvml-sim reset`; `activationStatus` =
    /// `NVML_ERROR_RESET_REQUIRED` (nvml.h: where the GPU reset is not exposed, e.g. a VM).
    #[default]
    ResetRequired,
    /// The change stays pending until `nvml-sim reset`; `activationStatus` =
    /// `NVML_ERROR_NOT_SUPPORTED`, as observed on ESXi with driver 510
    /// ("MIG mode is in pending enable state ...:Not Supported").
    NotSupported,
    /// Bare-metal behaviour: the driver resets the idle GPU itself and the mode is effective at
    /// once (`activationStatus` = SUCCESS); `NVML_ERROR_IN_USE` and pending while processes run.
    Immediate,
}

impl MigActivation {
    /// The `activationStatus` code for a change that stays pending.
    fn pending_status(self) -> u32 {
        match self {
            MigActivation::ResetRequired | MigActivation::Immediate => {
                NvmlCode::RESET_REQUIRED.raw()
            }
            MigActivation::NotSupported => NvmlCode::NOT_SUPPORTED.raw(),
        }
    }
}

/// The whole simulated machine, as stored in the state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimState {
    /// Layout version, [`STATE_FORMAT`].
    pub format: u32,
    /// `nvmlSystemGetDriverVersion`.
    pub driver_version: String,
    /// `nvmlSystemGetNVMLVersion`.
    pub nvml_version: String,
    /// `nvmlSystemGetCudaDriverVersion(_v2)`, e.g. 12040 for CUDA 12.4.
    pub cuda_driver_version: i32,
    /// How MIG mode changes are activated.
    #[serde(default)]
    pub mig_activation: MigActivation,
    /// The host OS the driver runs on (ESXi answers differently, see [`crate::driver`]).
    #[serde(default)]
    pub platform: Platform,
    /// Next vGPU instance id to hand out (`nvmlVgpuInstance_t`, never 0).
    #[serde(default = "first_vgpu_instance")]
    pub next_vgpu_instance: u32,
    /// Whether `nvmlDeviceRegisterEvents` accepts XID events (`init --no-xid-events`: no).
    #[serde(default = "events_supported")]
    pub xid_events: bool,
    /// The GPUs in NVML index order.
    pub gpus: Vec<SimGpu>,
}

fn first_vgpu_instance() -> u32 {
    1
}

fn events_supported() -> bool {
    true
}

/// Current and pending MIG mode of one GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MigModeState {
    /// Effective now.
    pub current: bool,
    /// Effective after the next reset.
    pub pending: bool,
}

/// One simulated physical GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimGpu {
    /// `GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, fixed for the life of the state file.
    pub uuid: String,
    /// PCI bus number (domain 0, device 0, function 0).
    pub pci_bus: u32,
    /// Board serial number (`nvmlDeviceGetSerial`).
    pub serial: String,
    /// MIG mode.
    pub mig_mode: MigModeState,
    /// GPU/compute instances; also names the catalog model (`mig.model`).
    pub mig: MigState,
    /// UUIDs of the live MIG devices (one per compute instance).
    #[serde(default)]
    pub mig_devices: Vec<MigDeviceRecord>,
    /// Seed for MIG UUIDs of this GPU.
    pub uuid_seed: u64,
    /// Counter mixed into each new MIG UUID, so a re-created CI gets a new UUID.
    #[serde(default)]
    pub uuid_counter: u64,
    /// Processes with a compute context on this GPU.
    #[serde(default)]
    pub processes: Vec<SimProcess>,
    /// Active MIG-backed vGPUs on this GPU.
    #[serde(default)]
    pub vgpus: Vec<SimVgpu>,
    /// Volatile ECC error counts (`nvmlDeviceGetTotalEccErrors`), set by `nvml-sim load --ecc-*`.
    #[serde(default)]
    pub ecc: crate::load::EccCounts,
    /// `nvmlDeviceGetVgpuUtilization` answers NOT_SUPPORTED (`nvml-sim load -i N
    /// --vgpu-utilization unsupported`): what a driver that gives no per-vGPU utilization on a
    /// MIG-enabled parent looks like, so GPM (`nvmlGpmMigSampleGet`) is the only source left.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub vgpu_utilization_unsupported: bool,
    /// XID errors injected with `nvml-sim xid`, oldest first, at most [`MAX_QUEUED_XIDS`]:
    /// what `nvmlEventSetWait_v2` hands out. Each event set delivers those with a sequence
    /// number above the last it delivered, so several readers each see every XID.
    #[serde(default)]
    pub xids: Vec<SimXid>,
    /// Sequence number of the last XID injected on this GPU (0: none yet).
    #[serde(default)]
    pub xid_seq: u64,
}

/// Most XIDs a GPU keeps queued; older ones are dropped (a reader that is that far behind
/// misses them, as a real event set that overflows does).
pub const MAX_QUEUED_XIDS: usize = 256;

/// One injected XID error (`nvmlEventTypeXidCriticalError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimXid {
    /// Position in this GPU's XID sequence (from 1).
    pub seq: u64,
    /// The XID code (`eventData`).
    pub xid: u64,
    /// The GPU instance the error is attributed to, if any (`gpuInstanceId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gi: Option<u32>,
}

/// A MIG device (compute instance) and its UUID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigDeviceRecord {
    /// GPU instance id.
    pub gi: u32,
    /// Compute instance id.
    pub ci: u32,
    /// `MIG-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
    pub uuid: String,
}

/// A process with a compute context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimProcess {
    /// Process id.
    pub pid: u32,
    /// Process name (`nvmlSystemGetProcessName`; NVML's process structs carry none).
    pub name: String,
    /// GPU instance it runs on (`None` when MIG is off).
    pub gi: Option<u32>,
    /// Compute instance it runs on (`None` when MIG is off).
    pub ci: Option<u32>,
    /// Framebuffer used, MiB.
    pub used_memory_mib: u64,
}

/// A running VM whose MIG-backed vGPU sits on a GPU instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimVgpu {
    /// `nvmlVgpuInstance_t`.
    pub instance: u32,
    /// vGPU type name, e.g. `grid_a100-3-20c`.
    pub vgpu_type: String,
    /// VM id (`nvmlVgpuInstanceGetVmID`): a name, or a BIOS UUID when `vm_is_uuid`.
    pub vm: String,
    /// GPU instance backing it.
    pub gi: u32,
    /// `vm` is the VM's BIOS UUID (`NVML_VGPU_VM_ID_UUID`, what ESXi may report) rather
    /// than a domain name (`NVML_VGPU_VM_ID_DOMAIN_ID`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub vm_is_uuid: bool,
    /// What the VM does with it (`nvml-sim load`); idle when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<crate::load::LoadSchedule>,
}

impl SimVgpu {
    /// The `nvmlVgpuVmIdType_t` of [`SimVgpu::vm`].
    pub fn vm_id_type(&self) -> u32 {
        // NVML_VGPU_VM_ID_UUID = 1, NVML_VGPU_VM_ID_DOMAIN_ID = 0.
        u32::from(self.vm_is_uuid)
    }
}

/// Which vGPU `nvml-sim load` changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadTarget {
    /// The vGPU of this VM.
    Vm(String),
    /// The vGPU on this GPU instance.
    Gi { gpu: u32, gi: u32 },
}

/// Refusals of the control-binary operations; the messages say what to do instead.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SimError {
    #[error("unknown GPU model `{key}`; known models: {known}")]
    UnknownModel { key: String, known: String },
    #[error("GPU index {index} does not exist (this machine has {count} GPUs, indices 0..{count})")]
    NoSuchGpu { index: u32, count: u32 },
    #[error("GPU {gpu} has MIG enabled: name the MIG device with --gi and --ci")]
    NeedInstance { gpu: u32 },
    #[error("GPU {gpu} has MIG disabled: drop --gi/--ci (the process runs on the whole GPU)")]
    MigOff { gpu: u32 },
    #[error("GPU {gpu} has no compute instance {ci} in GPU instance {gi}; create it first")]
    NoSuchMigDevice { gpu: u32, gi: u32, ci: u32 },
    #[error("GPU {gpu} has no GPU instance {gi}; create it first")]
    NoSuchGpuInstance { gpu: u32, gi: u32 },
    #[error("pid {pid} already runs on GPU {gpu}; release it first")]
    PidInUse { pid: u32, gpu: u32 },
    #[error("no simulated process has pid {pid}")]
    NoSuchPid { pid: u32 },
    #[error("no active vGPU belongs to VM `{vm}`")]
    NoSuchVm { vm: String },
    #[error("GPU {gpu} GI {gi} backs no active vGPU; start one with `nvml-sim occupy --vgpu`")]
    NoVgpuOnGi { gpu: u32, gi: u32 },
    #[error("VM `{vm}` already has an active vGPU; release it first")]
    VmInUse { vm: String },
    #[error(
        "GPU {gpu} cannot be reset while in use (pids {pids:?}, vGPU VMs {vms:?}); release them first"
    )]
    Busy {
        gpu: u32,
        pids: Vec<u32>,
        vms: Vec<String>,
    },
    #[error("a machine needs at least one GPU (--gpu MODEL)")]
    NoGpus,
    #[error(
        "GPU {gpu} GI {gi} already hosts {max} vGPU(s) of type {hosted}, the most one GI runs; the driver answers NVML_ERROR_INSUFFICIENT_RESOURCES. Start it in another GI"
    )]
    GiFull {
        gpu: u32,
        gi: u32,
        hosted: String,
        max: u32,
    },
    #[error(
        "GPU {gpu} GI {gi} hosts vGPU type {hosted}, not {wanted}: a GI runs vGPUs of one type; the driver answers NVML_ERROR_INSUFFICIENT_RESOURCES. Start it in another GI"
    )]
    GiHostsOtherType {
        gpu: u32,
        gi: u32,
        hosted: String,
        wanted: String,
    },
    #[error(
        "vGPU type {wanted} runs in GI profile {needs}, GPU {gpu} GI {gi} is a {has}; the driver answers NVML_ERROR_INVALID_ARGUMENT. Pick a GI of profile {needs}"
    )]
    WrongGiProfile {
        gpu: u32,
        gi: u32,
        wanted: String,
        needs: String,
        has: String,
    },
    #[error("GPU {gpu} ({model}) offers no vGPU type {wanted}{mode}; its types: {known}")]
    UnknownVgpuType {
        gpu: u32,
        model: String,
        wanted: String,
        mode: &'static str,
        known: String,
    },
    #[error(
        "GPU {gpu} already runs {max} vGPU(s) of type {hosted}, the most it runs; the driver answers NVML_ERROR_INSUFFICIENT_RESOURCES"
    )]
    GpuFull { gpu: u32, hosted: String, max: u32 },
    #[error(
        "GPU {gpu} runs vGPUs of type {hosted} and all vGPUs on a GPU are of one size (equal-size mode); the driver answers NVML_ERROR_INSUFFICIENT_RESOURCES for {wanted}"
    )]
    OtherSize {
        gpu: u32,
        hosted: String,
        wanted: String,
    },
    #[error("GPU {gpu} has MIG enabled: a vGPU there runs in a GPU instance, name it with --gi")]
    NeedGi { gpu: u32 },
}

/// Derive a UUID body (the 32 hex digits with dashes) from a seed and a salt.
fn uuid_body(seed: u64, salt: u64) -> String {
    fn mix(mut z: u64) -> u64 {
        // splitmix64: a stable, well-spread mixer (the UUID must not change between versions).
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let a = mix(seed ^ mix(salt));
    let b = mix(a ^ salt.rotate_left(17));
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A fresh random seed (std's per-process random hasher keys plus time and pid).
fn random_seed(salt: u64) -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(salt);
    h.write_u32(std::process::id());
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    h.finish()
}

/// PCI bus numbers for the first GPUs, spread like a typical 8-GPU server.
const PCI_BUSES: [u32; 8] = [0x17, 0x31, 0x4B, 0x65, 0x98, 0xB1, 0xCA, 0xE3];

impl SimState {
    /// A machine with one GPU per catalog key, MIG disabled everywhere, fresh random UUIDs.
    pub fn new(model_keys: &[String]) -> Result<SimState, SimError> {
        if model_keys.is_empty() {
            return Err(SimError::NoGpus);
        }
        let mut gpus = Vec::with_capacity(model_keys.len());
        for (i, key) in model_keys.iter().enumerate() {
            let model = GpuModel::by_key(key).ok_or_else(|| SimError::UnknownModel {
                key: key.clone(),
                known: mig::catalog()
                    .iter()
                    .map(|m| m.key)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
            let seed = random_seed(i as u64);
            let pci_bus = PCI_BUSES.get(i).copied().unwrap_or(0x10 + i as u32);
            gpus.push(SimGpu {
                uuid: format!("GPU-{}", uuid_body(seed, 0)),
                pci_bus,
                serial: format!("13240{:08}", seed % 100_000_000),
                mig_mode: MigModeState::default(),
                mig: MigState::new(model),
                mig_devices: Vec::new(),
                uuid_seed: seed,
                uuid_counter: 0,
                processes: Vec::new(),
                vgpus: Vec::new(),
                ecc: crate::load::EccCounts::default(),
                vgpu_utilization_unsupported: false,
                xids: Vec::new(),
                xid_seq: 0,
            });
        }
        Ok(SimState {
            format: STATE_FORMAT,
            driver_version: DEFAULT_DRIVER_VERSION.into(),
            nvml_version: DEFAULT_NVML_VERSION.into(),
            cuda_driver_version: DEFAULT_CUDA_DRIVER_VERSION,
            mig_activation: MigActivation::default(),
            platform: Platform::default(),
            next_vgpu_instance: 1,
            xid_events: true,
            gpus,
        })
    }

    /// Check what serde cannot: known models, format version.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != STATE_FORMAT {
            return Err(format!(
                "state format {} is not the supported {STATE_FORMAT}",
                self.format
            ));
        }
        for (i, g) in self.gpus.iter().enumerate() {
            if GpuModel::by_key(&g.mig.model).is_none() {
                return Err(format!("GPU {i} has unknown model `{}`", g.mig.model));
            }
            g.mig.validate().map_err(|e| format!("GPU {i}: {e}"))?;
        }
        Ok(())
    }

    /// Report driver `version`, with the NVML and CUDA versions that driver branch ships
    /// (NVML's version is `<CUDA major>.<driver version>`).
    pub fn set_driver_version(&mut self, version: &str) {
        self.driver_version = version.to_string();
        if let Some(cuda) = crate::driver::driver_major(version).map(crate::driver::cuda_of) {
            self.cuda_driver_version = cuda;
            self.nvml_version = format!("{}.{version}", cuda / 1000);
        }
    }

    /// What this state's driver version and platform change in `gpu`'s answers.
    pub fn behaviour(&self, gpu: &SimGpu) -> Behaviour {
        crate::driver::behaviour(gpu.model(), &self.driver_version, self.platform)
    }

    /// The GPU at NVML index `index`, or `NVML_ERROR_INVALID_ARGUMENT`.
    pub fn gpu(&self, index: u32) -> NvmlResult<&SimGpu> {
        self.gpus
            .get(index as usize)
            .ok_or(NvmlCode::INVALID_ARGUMENT)
    }

    /// Mutable [`SimState::gpu`].
    pub fn gpu_mut(&mut self, index: u32) -> NvmlResult<&mut SimGpu> {
        self.gpus
            .get_mut(index as usize)
            .ok_or(NvmlCode::INVALID_ARGUMENT)
    }

    fn gpu_mut_checked(&mut self, index: u32) -> Result<&mut SimGpu, SimError> {
        let count = self.gpus.len() as u32;
        self.gpus
            .get_mut(index as usize)
            .ok_or(SimError::NoSuchGpu { index, count })
    }

    /// `nvmlDeviceSetMigMode`: record the wish; returns `activationStatus`.
    pub fn set_mig_mode(&mut self, index: u32, enable: bool) -> NvmlResult<u32> {
        let activation = self.mig_activation;
        let gpu = self.gpu_mut(index)?;
        gpu.mig_mode.pending = enable;
        if gpu.mig_mode.current == enable {
            return Ok(NvmlCode::SUCCESS);
        }
        if activation == MigActivation::Immediate {
            if gpu.is_busy() {
                return Ok(NvmlCode::IN_USE.raw());
            }
            gpu.reset();
            return Ok(NvmlCode::SUCCESS);
        }
        Ok(activation.pending_status())
    }

    /// `nvml-sim reset`: reset one GPU or all; refuses while any of them is in use.
    pub fn reset(&mut self, index: Option<u32>) -> Result<(), SimError> {
        let targets: Vec<u32> = match index {
            Some(i) => {
                self.gpu_mut_checked(i)?;
                vec![i]
            }
            None => (0..self.gpus.len() as u32).collect(),
        };
        for &i in &targets {
            let gpu = &self.gpus[i as usize];
            if gpu.is_busy() {
                return Err(SimError::Busy {
                    gpu: i,
                    pids: gpu.processes.iter().map(|p| p.pid).collect(),
                    vms: gpu.vgpus.iter().map(|v| v.vm.clone()).collect(),
                });
            }
        }
        for &i in &targets {
            self.gpus[i as usize].reset();
        }
        Ok(())
    }

    /// `nvml-sim occupy`: start a simulated compute process.
    pub fn occupy(
        &mut self,
        index: u32,
        mig_device: Option<(u32, u32)>,
        pid: u32,
        name: &str,
        used_memory_mib: u64,
    ) -> Result<(), SimError> {
        if let Some((g, _)) = self
            .gpus
            .iter()
            .enumerate()
            .find(|(_, g)| g.processes.iter().any(|p| p.pid == pid))
        {
            return Err(SimError::PidInUse { pid, gpu: g as u32 });
        }
        let gpu = self.gpu_mut_checked(index)?;
        let (gi, ci) = match (gpu.mig_mode.current, mig_device) {
            (true, None) => return Err(SimError::NeedInstance { gpu: index }),
            (false, Some(_)) => return Err(SimError::MigOff { gpu: index }),
            (false, None) => (None, None),
            (true, Some((gi, ci))) => {
                if gpu.compute_instance(gi, ci).is_none() {
                    return Err(SimError::NoSuchMigDevice { gpu: index, gi, ci });
                }
                (Some(gi), Some(ci))
            }
        };
        gpu.processes.push(SimProcess {
            pid,
            name: name.to_string(),
            gi,
            ci,
            used_memory_mib,
        });
        gpu.sync_in_use();
        Ok(())
    }

    /// `nvml-sim release --pid`: end a simulated process.
    pub fn release_pid(&mut self, pid: u32) -> Result<(), SimError> {
        for gpu in &mut self.gpus {
            if let Some(pos) = gpu.processes.iter().position(|p| p.pid == pid) {
                gpu.processes.remove(pos);
                gpu.sync_in_use();
                return Ok(());
            }
        }
        Err(SimError::NoSuchPid { pid })
    }

    /// `nvml-sim occupy --vgpu TYPE --vm UUID --vm-uuid`: as [`SimState::start_vgpu`], the VM
    /// named by its BIOS UUID as ESXi's NVML may name it.
    pub fn start_vgpu_by_uuid(
        &mut self,
        index: u32,
        gi: u32,
        vgpu_type: &str,
        uuid: &str,
    ) -> Result<u32, SimError> {
        let instance = self.start_vgpu(index, gi, vgpu_type, uuid)?;
        if let Some(v) = self
            .gpus
            .iter_mut()
            .flat_map(|g| g.vgpus.iter_mut())
            .find(|v| v.instance == instance)
        {
            v.vm_is_uuid = true;
        }
        Ok(instance)
    }

    /// `nvml-sim load --vm VM` / `-i GPU --gi GI`: give the vGPU of that VM (or the vGPU on
    /// that GPU instance) this load from now on.
    pub fn set_vgpu_load(
        &mut self,
        target: &LoadTarget,
        schedule: crate::load::LoadSchedule,
    ) -> Result<u32, SimError> {
        let vgpu = match target {
            LoadTarget::Vm(vm) => self
                .gpus
                .iter_mut()
                .flat_map(|g| g.vgpus.iter_mut())
                .find(|v| v.vm == *vm)
                .ok_or_else(|| SimError::NoSuchVm { vm: vm.clone() })?,
            LoadTarget::Gi { gpu, gi } => {
                let g = self.gpu_mut_checked(*gpu)?;
                g.vgpus
                    .iter_mut()
                    .find(|v| v.gi == *gi)
                    .ok_or(SimError::NoVgpuOnGi { gpu: *gpu, gi: *gi })?
            }
        };
        vgpu.load = Some(schedule);
        Ok(vgpu.instance)
    }

    /// `nvml-sim load -i GPU --vgpu-utilization supported|unsupported`.
    pub fn set_vgpu_utilization_supported(
        &mut self,
        index: u32,
        supported: bool,
    ) -> Result<(), SimError> {
        self.gpu_mut_checked(index)?.vgpu_utilization_unsupported = !supported;
        Ok(())
    }

    /// `nvml-sim load -i GPU --ecc-corrected N --ecc-uncorrected M`.
    pub fn set_ecc(&mut self, index: u32, ecc: crate::load::EccCounts) -> Result<(), SimError> {
        self.gpu_mut_checked(index)?.ecc = ecc;
        Ok(())
    }

    /// `nvml-sim xid --gpu N --xid CODE [--gi ID]`: queue one XID error; returns its
    /// sequence number.
    pub fn push_xid(&mut self, index: u32, xid: u64, gi: Option<u32>) -> Result<u64, SimError> {
        let gpu = self.gpu_mut_checked(index)?;
        if let Some(gi) = gi
            && gpu.gpu_instance(gi).is_none()
        {
            return Err(SimError::NoSuchGpuInstance { gpu: index, gi });
        }
        gpu.xid_seq += 1;
        let seq = gpu.xid_seq;
        gpu.xids.push(SimXid { seq, xid, gi });
        let excess = gpu.xids.len().saturating_sub(MAX_QUEUED_XIDS);
        gpu.xids.drain(..excess);
        Ok(seq)
    }

    /// `nvml-sim release --vm`: the VM powered off; its vGPU is gone.
    pub fn stop_vgpu(&mut self, vm: &str) -> Result<(), SimError> {
        for gpu in &mut self.gpus {
            if let Some(pos) = gpu.vgpus.iter().position(|v| v.vm == vm) {
                gpu.vgpus.remove(pos);
                gpu.sync_in_use();
                return Ok(());
            }
        }
        Err(SimError::NoSuchVm { vm: vm.to_string() })
    }

    /// The GPU index and vGPU with this instance id.
    pub fn vgpu(&self, instance: u32) -> NvmlResult<(u32, &SimVgpu)> {
        self.gpus
            .iter()
            .enumerate()
            .find_map(|(i, g)| {
                g.vgpus
                    .iter()
                    .find(|v| v.instance == instance)
                    .map(|v| (i as u32, v))
            })
            .ok_or(NvmlCode::INVALID_ARGUMENT)
    }

    /// The vGPU type id (`nvmlVgpuTypeId_t`) of a type name: a stable hash, never 0, so the
    /// id survives other VMs starting and stopping.
    pub fn vgpu_type_id(name: &str) -> u32 {
        // FNV-1a, 32 bit.
        let mut h: u32 = 0x811C_9DC5;
        for b in name.bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        h.max(1)
    }

    /// The type name of a vGPU type id: a type the simulated driver offers
    /// ([`crate::vgpu_types`]), or the free-form type of an active vGPU.
    pub fn vgpu_type_name(&self, id: u32) -> Option<&str> {
        if let Some((_, t)) = crate::vgpu_types::by_id(id) {
            return Some(t.name);
        }
        self.gpus
            .iter()
            .flat_map(|g| g.vgpus.iter())
            .map(|v| v.vgpu_type.as_str())
            .find(|name| SimState::vgpu_type_id(name) == id)
    }
}

impl SimGpu {
    /// The catalog model.
    pub fn model(&self) -> &'static GpuModel {
        self.mig.gpu_model()
    }

    /// `NVML_DEVICE_PCI_BUS_ID_FMT`: `00000000:17:00.0`.
    pub fn pci_bus_id(&self) -> String {
        format!("{:08X}:{:02X}:{:02X}.0", 0, self.pci_bus, 0)
    }

    /// `NVML_DEVICE_PCI_BUS_ID_LEGACY_FMT`: `0000:17:00.0`.
    pub fn pci_bus_id_legacy(&self) -> String {
        format!("{:04X}:{:02X}:{:02X}.0", 0, self.pci_bus, 0)
    }

    /// Processes or active vGPUs keep the GPU from being reset.
    pub fn is_busy(&self) -> bool {
        !self.processes.is_empty() || !self.vgpus.is_empty()
    }

    /// A GPU reset: the pending MIG mode takes effect and, as on real hardware, MIG instances
    /// do not survive it.
    fn reset(&mut self) {
        self.mig_mode.current = self.mig_mode.pending;
        let model = self.model();
        self.mig = MigState::new(model);
        self.mig_devices.clear();
    }

    /// Mirror processes and vGPUs into the `in_use` flags the `mig` model checks on destroy.
    pub fn sync_in_use(&mut self) {
        for (gi_id, gi) in self.mig.gpu_instances.iter_mut() {
            gi.in_use = self.vgpus.iter().any(|v| v.gi == gi_id.0);
            for (ci_id, ci) in gi.compute_instances.iter_mut() {
                ci.in_use = self
                    .processes
                    .iter()
                    .any(|p| p.gi == Some(gi_id.0) && p.ci == Some(ci_id.0));
            }
        }
    }

    /// GI/CI operations need MIG enabled now (not merely pending).
    pub fn require_mig(&self) -> NvmlResult<()> {
        if self.mig_mode.current {
            Ok(())
        } else {
            Err(NvmlCode::NOT_SUPPORTED)
        }
    }

    /// The GI with this id, if it exists.
    pub fn gpu_instance(&self, gi: u32) -> Option<&mig::GpuInstance> {
        self.mig.gpu_instances.get(&GpuInstanceId(gi))
    }

    /// The CI `ci` in GI `gi`, if it exists.
    pub fn compute_instance(&self, gi: u32, ci: u32) -> Option<&mig::ComputeInstance> {
        self.gpu_instance(gi)?
            .compute_instances
            .get(&ComputeInstanceId(ci))
    }

    /// The catalog profile of live GI `gi`.
    pub fn gi_profile_of(&self, gi: u32) -> NvmlResult<&'static GiProfile> {
        let inst = self.gpu_instance(gi).ok_or(NvmlCode::INVALID_ARGUMENT)?;
        self.model()
            .gi_profile(inst.profile)
            .ok_or(NvmlCode::UNKNOWN)
    }

    /// `nvmlDeviceCreateGpuInstance(WithPlacement)`.
    pub fn create_gi(&mut self, profile: u32, placement: Option<Placement>) -> NvmlResult<u32> {
        self.require_mig()?;
        if self.model().gi_profile(GiProfileId(profile)).is_none() {
            // nvml.h: INVALID_ARGUMENT "if device, profile, profileId or gpuInstance are invalid".
            return Err(NvmlCode::INVALID_ARGUMENT);
        }
        let id = self.mig.create_gi(GiProfileId(profile), placement)?;
        Ok(id.0)
    }

    /// `nvmlGpuInstanceDestroy`: refused (`IN_USE`) while CIs, processes or vGPUs exist on it.
    pub fn destroy_gi(&mut self, gi: u32) -> NvmlResult<()> {
        self.require_mig()?;
        self.sync_in_use();
        self.mig.destroy_gi(GpuInstanceId(gi)).map_err(|e| match e {
            mig::MigError::GiNotFound(_) => NvmlCode::INVALID_ARGUMENT,
            other => other.into(),
        })
    }

    /// `nvmlGpuInstanceCreateComputeInstance(WithPlacement)`; gives the MIG device its UUID.
    pub fn create_ci(
        &mut self,
        gi: u32,
        profile: u32,
        placement: Option<Placement>,
    ) -> NvmlResult<u32> {
        self.require_mig()?;
        let gi_profile = self.gi_profile_of(gi)?;
        if gi_profile.ci_profile(CiProfileId(profile)).is_none() {
            return Err(NvmlCode::NOT_SUPPORTED);
        }
        let ci = self
            .mig
            .create_ci(GpuInstanceId(gi), CiProfileId(profile), placement)?
            .0;
        self.uuid_counter += 1;
        let salt = (u64::from(gi) << 48) ^ (u64::from(ci) << 32) ^ self.uuid_counter;
        let uuid = format!("MIG-{}", uuid_body(self.uuid_seed, salt));
        self.mig_devices.retain(|d| !(d.gi == gi && d.ci == ci));
        self.mig_devices.push(MigDeviceRecord { gi, ci, uuid });
        Ok(ci)
    }

    /// `nvmlComputeInstanceDestroy`: refused (`IN_USE`) while processes run on it.
    pub fn destroy_ci(&mut self, gi: u32, ci: u32) -> NvmlResult<()> {
        self.require_mig()?;
        self.sync_in_use();
        self.mig
            .destroy_ci(GpuInstanceId(gi), ComputeInstanceId(ci))
            .map_err(|e| match e {
                mig::MigError::GiNotFound(_) | mig::MigError::CiNotFound { .. } => {
                    NvmlCode::INVALID_ARGUMENT
                }
                other => other.into(),
            })?;
        self.mig_devices.retain(|d| !(d.gi == gi && d.ci == ci));
        Ok(())
    }

    /// Live MIG devices as (GI id, CI id) in the order MIG device indices enumerate them
    /// (GI id, then CI id, like nvidia-smi's `MIG Dev` numbering).
    pub fn mig_device_list(&self) -> Vec<(u32, u32)> {
        self.mig
            .gpu_instances
            .iter()
            .flat_map(|(gi, inst)| inst.compute_instances.keys().map(move |ci| (gi.0, ci.0)))
            .collect()
    }

    /// `nvmlDeviceGetMaxMigDeviceCount`: one MIG device per compute slice when MIG is on.
    pub fn max_mig_devices(&self) -> u32 {
        if self.mig_mode.current {
            self.model().compute_slices
        } else {
            0
        }
    }

    /// UUID of MIG device (gi, ci); a record is created lazily for CIs made by older states.
    pub fn mig_uuid(&self, gi: u32, ci: u32) -> String {
        self.mig_devices
            .iter()
            .find(|d| d.gi == gi && d.ci == ci)
            .map(|d| d.uuid.clone())
            .unwrap_or_else(|| {
                let salt = (u64::from(gi) << 48) ^ (u64::from(ci) << 32);
                format!("MIG-{}", uuid_body(self.uuid_seed, salt))
            })
    }

    /// Name of MIG device (gi, ci), e.g. `NVIDIA A100-PCIE-40GB MIG 1c.3g.20gb`.
    pub fn mig_name(&self, gi: u32, ci: u32) -> NvmlResult<String> {
        let gi_profile = self.gi_profile_of(gi)?;
        let inst = self
            .compute_instance(gi, ci)
            .ok_or(NvmlCode::INVALID_ARGUMENT)?;
        let ci_profile = gi_profile
            .ci_profile(inst.profile)
            .ok_or(NvmlCode::UNKNOWN)?;
        Ok(format!(
            "{} MIG {}",
            self.model().nvml_name,
            ci_profile.name
        ))
    }

    /// Processes, optionally only those on MIG device (gi, ci).
    pub fn processes_on(&self, mig_device: Option<(u32, u32)>) -> Vec<&SimProcess> {
        self.processes
            .iter()
            .filter(|p| match mig_device {
                None => true,
                Some((gi, ci)) => p.gi == Some(gi) && p.ci == Some(ci),
            })
            .collect()
    }

    /// (total, used) framebuffer in bytes; for a MIG device, of its GPU instance.
    pub fn memory_bytes(&self, mig_device: Option<(u32, u32)>) -> NvmlResult<(u64, u64)> {
        const MIB: u64 = 1024 * 1024;
        match mig_device {
            None => {
                let used: u64 = self.processes.iter().map(|p| p.used_memory_mib).sum();
                Ok((self.model().memory_mib * MIB, used * MIB))
            }
            Some((gi, _)) => {
                let profile = self.gi_profile_of(gi)?;
                let used: u64 = self
                    .processes
                    .iter()
                    .filter(|p| p.gi == Some(gi))
                    .map(|p| p.used_memory_mib)
                    .sum();
                Ok((profile.memory_mib * MIB, used * MIB))
            }
        }
    }
}

mod vgpu_rules;

#[cfg(test)]
mod tests;
