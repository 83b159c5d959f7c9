//! `nvml-sim`: create and drive the simulated machine behind the nvml-sim library.
//!
//! The library plays the driver's API; this binary plays everything around it that NVML
//! cannot do: installing GPUs (`init`), resetting them (`reset`, which applies a pending MIG
//! mode), and starting or stopping the workloads (`occupy`/`release`) that make instances busy, and what
//! those workloads do over time (`load`).
//! It changes the same state file, under the same lock, as the library.
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use nvml_sim::load::{EccCounts, LoadPhase, LoadSchedule};
use nvml_sim::state::{DEFAULT_PROCESS_MEMORY_MIB, LoadTarget};
use nvml_sim::{MigActivation, Platform, STATE_ENV, SimState, Store};

#[derive(Debug, Parser)]
#[command(
    name = "nvml-sim",
    version,
    about = "Control the simulated NVML machine (state file shared with libnvml_sim.so)"
)]
struct Cli {
    /// State file (the library reads the same path from NVML_SIM_STATE). Required by every
    /// command except `models`.
    #[arg(long, env = STATE_ENV, value_name = "FILE")]
    state: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Activation {
    /// MIG mode changes stay pending until `reset`; activationStatus RESET_REQUIRED.
    ResetRequired,
    /// Pending until `reset`; activationStatus NOT_SUPPORTED (as seen on ESXi, driver 510).
    NotSupported,
    /// Effective at once when the GPU is idle (bare-metal driver).
    Immediate,
}

impl From<Activation> for MigActivation {
    fn from(a: Activation) -> Self {
        match a {
            Activation::ResetRequired => MigActivation::ResetRequired,
            Activation::NotSupported => MigActivation::NotSupported,
            Activation::Immediate => MigActivation::Immediate,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PlatformArg {
    /// Bare-metal / KVM Linux host.
    Linux,
    /// VMware ESXi host driver (vGPU manager).
    Esxi,
}

impl From<PlatformArg> for Platform {
    fn from(p: PlatformArg) -> Self {
        match p {
            PlatformArg::Linux => Platform::Linux,
            PlatformArg::Esxi => Platform::Esxi,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the machine: one GPU per --gpu, MIG disabled unless --mig.
    Init {
        /// Catalog model key (repeat for more GPUs), e.g. a100-pcie-40gb, h100-sxm5-80gb.
        #[arg(long = "gpu", value_name = "MODEL", required = true)]
        gpus: Vec<String>,
        /// Replace an existing state file.
        #[arg(long)]
        force: bool,
        /// Start with MIG mode enabled (current and pending) on every GPU.
        #[arg(long)]
        mig: bool,
        /// How nvmlDeviceSetMigMode activates a change [default: not-supported with
        /// `--platform esxi`, else reset-required].
        #[arg(long, value_enum)]
        mig_activation: Option<Activation>,
        /// Driver version reported by nvmlSystemGetDriverVersion; the simulated driver
        /// behaves as that version does where versions differ (profiles offered, memory).
        #[arg(long)]
        driver_version: Option<String>,
        /// Host OS of the driver: `esxi` answers as the ESXi host driver does (remaining
        /// capacity 0 before the first GPU instance, activation "Not Supported").
        #[arg(long, value_enum, default_value = "linux")]
        platform: PlatformArg,
        /// Answer nvmlDeviceRegisterEvents with NOT_SUPPORTED, as a driver without event
        /// support does (no XIDs are delivered).
        #[arg(long)]
        no_xid_events: bool,
    },
    /// Reset GPUs: apply pending MIG mode, drop all GPU/compute instances. Refused while busy.
    Reset {
        /// Only this GPU (default: all).
        #[arg(short = 'i', long = "id")]
        index: Option<u32>,
    },
    /// Start a compute process on a GPU / MIG device, or a VM's vGPU on a GPU instance.
    Occupy {
        /// GPU index.
        #[arg(short = 'i', long = "id")]
        index: u32,
        /// GPU instance id (MIG mode).
        #[arg(long)]
        gi: Option<u32>,
        /// Compute instance id (MIG mode, with --pid).
        #[arg(long, requires = "gi")]
        ci: Option<u32>,
        /// Process id.
        #[arg(long, required_unless_present = "vgpu", conflicts_with = "vgpu")]
        pid: Option<u32>,
        /// Process name.
        #[arg(long, default_value = "cuda-app")]
        name: String,
        /// Framebuffer the process uses, MiB.
        #[arg(long, default_value_t = DEFAULT_PROCESS_MEMORY_MIB)]
        memory_mib: u64,
        /// vGPU type name, e.g. grid_a100-3-20c: with --gi a MIG-backed vGPU in that GI
        /// (time-sliced types: several of one type per GI, up to the type's per-GI maximum);
        /// without --gi a whole-GPU time-sliced vGPU on a GPU not in MIG mode (e.g.
        /// "NVIDIA DC-24C" on an RTX PRO 6000; `nvml-sim vgpu-types` lists them).
        #[arg(long, requires = "vm")]
        vgpu: Option<String>,
        /// VM owning the vGPU (its name, or its BIOS UUID with --vm-uuid).
        #[arg(long, requires = "vgpu")]
        vm: Option<String>,
        /// --vm is the VM's BIOS UUID: NVML reports it as a UUID, as ESXi may.
        #[arg(long, requires = "vm")]
        vm_uuid: bool,
    },
    /// End a process (--pid) or power off a VM's vGPU (--vm).
    Release {
        #[arg(long, required_unless_present = "vm", conflicts_with = "vm")]
        pid: Option<u32>,
        #[arg(long)]
        vm: Option<String>,
    },
    /// Set what a VM's vGPU does from now on: utilization and framebuffer used, as a cycle of
    /// phases (answered by nvmlDeviceGetVgpuUtilization / nvmlVgpuInstanceGetFbUsage), and/or
    /// a GPU's ECC error counts (nvmlDeviceGetTotalEccErrors).
    Load {
        /// The VM whose vGPU to load.
        #[arg(long, conflicts_with = "gi")]
        vm: Option<String>,
        /// GPU index: with --gi the vGPU on that GPU instance; with --ecc-* that GPU.
        #[arg(short = 'i', long = "id")]
        index: Option<u32>,
        /// GPU instance id whose vGPU to load (with -i).
        #[arg(long, requires = "index")]
        gi: Option<u32>,
        /// A phase `sm=40,mem=20,enc=0,dec=0,fb=3000,s=60` (percent; fb in MiB; s seconds,
        /// default 60). Repeat for a cycle; the phases repeat from now. `--phase ''` is idle.
        #[arg(long = "phase", value_name = "SPEC")]
        phases: Vec<String>,
        /// Volatile corrected ECC errors of GPU -i.
        #[arg(long, requires = "index")]
        ecc_corrected: Option<u64>,
        /// Volatile uncorrected ECC errors of GPU -i.
        #[arg(long, requires = "index")]
        ecc_uncorrected: Option<u64>,
        /// Whether nvmlDeviceGetVgpuUtilization answers on GPU -i (`unsupported`: it returns
        /// NOT_SUPPORTED, leaving GPM as the only utilization source).
        #[arg(long, requires = "index", value_name = "supported|unsupported", value_parser = ["supported", "unsupported"])]
        vgpu_utilization: Option<String>,
    },
    /// Queue one XID error on a GPU: the next `nvmlEventSetWait_v2` of every event set
    /// registered for XID critical errors on that GPU delivers it.
    Xid {
        /// GPU index.
        #[arg(long)]
        gpu: u32,
        /// The XID code (e.g. 79: the GPU has fallen off the bus; 48: double-bit ECC error).
        #[arg(long)]
        xid: u64,
        /// The GPU instance the error is attributed to (its `gpuInstanceId`).
        #[arg(long)]
        gi: Option<u32>,
    },
    /// Print the state as JSON.
    Show,
    /// List the GPU model keys `init --gpu` accepts.
    Models,
    /// List the vGPU types the simulated driver offers per model, with their limits.
    VgpuTypes,
}

/// Append a line to the command's output (written once at the end, see [`emit`]).
macro_rules! say {
    ($out:ident, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
}

/// Write the output; a closed pipe (`nvml-sim show | head`) is not an error.
fn emit(text: &str) -> Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to stdout")
        }
        _ => Ok(()),
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut out = String::new();
    run(cli, &mut out)?;
    emit(&out)
}

fn run(cli: Cli, out: &mut String) -> Result<()> {
    if let Command::Models = cli.command {
        for m in mig::catalog() {
            say!(out, "{:<20} {}", m.key, m.nvml_name);
        }
        return Ok(());
    }
    if let Command::VgpuTypes = cli.command {
        vgpu_types(out);
        return Ok(());
    }
    let state_path = cli
        .state
        .with_context(|| format!("no state file: pass --state FILE or set {STATE_ENV}"))?;
    let store = Store::new(&state_path);
    let path = state_path.display().to_string();
    match cli.command {
        Command::Init {
            gpus,
            force,
            mig,
            mig_activation,
            driver_version,
            platform,
            no_xid_events,
        } => {
            let mut state = SimState::new(&gpus)?;
            state.platform = platform.into();
            state.xid_events = !no_xid_events;
            state.mig_activation = match (mig_activation, state.platform) {
                (Some(a), _) => a.into(),
                (None, Platform::Esxi) => MigActivation::NotSupported,
                (None, Platform::Linux) => MigActivation::ResetRequired,
            };
            if let Some(v) = driver_version {
                state.set_driver_version(&v);
            }
            for g in &mut state.gpus {
                g.mig_mode.current = mig;
                g.mig_mode.pending = mig;
            }
            store.create(&state, force)?;
            for (i, g) in state.gpus.iter().enumerate() {
                say!(out, "GPU {i}: {} (UUID: {})", g.model().nvml_name, g.uuid);
            }
        }
        Command::Reset { index } => {
            store
                .update(|s| s.reset(index))?
                .with_context(|| format!("cannot reset ({path})"))?;
            say!(
                out,
                "reset {}",
                index.map_or_else(|| "all GPUs".to_string(), |i| format!("GPU {i}"))
            );
        }
        Command::Occupy {
            index,
            gi,
            ci,
            pid,
            name,
            memory_mib,
            vgpu,
            vm,
            vm_uuid,
        } => {
            if let (Some(vgpu), Some(vm), None) = (&vgpu, &vm, gi) {
                let inst = store
                    .update(|s| s.start_whole_gpu_vgpu(index, vgpu, vm))?
                    .with_context(|| format!("cannot start vGPU {vgpu} for VM {vm} ({path})"))?;
                say!(
                    out,
                    "vGPU instance {inst} ({vgpu}) of VM {vm} active on GPU {index} (time-sliced)"
                );
            } else if let (Some(vgpu), Some(vm), Some(gi)) = (vgpu, vm, gi) {
                let inst = store
                    .update(|s| {
                        if vm_uuid {
                            s.start_vgpu_by_uuid(index, gi, &vgpu, &vm)
                        } else {
                            s.start_vgpu(index, gi, &vgpu, &vm)
                        }
                    })?
                    .with_context(|| format!("cannot start vGPU {vgpu} for VM {vm} ({path})"))?;
                say!(
                    out,
                    "vGPU instance {inst} ({vgpu}) of VM {vm} active on GPU {index} GI {gi}"
                );
            } else if let Some(pid) = pid {
                let mig_device = match (gi, ci) {
                    (None, None) => None,
                    (Some(gi), Some(ci)) => Some((gi, ci)),
                    _ => anyhow::bail!("name the MIG device with both --gi and --ci"),
                };
                store
                    .update(|s| s.occupy(index, mig_device, pid, &name, memory_mib))?
                    .with_context(|| format!("cannot start pid {pid} ({path})"))?;
                say!(out, "pid {pid} ({name}) running on GPU {index}");
            }
        }
        Command::Release { pid, vm } => {
            if let Some(pid) = pid {
                store
                    .update(|s| s.release_pid(pid))?
                    .with_context(|| format!("cannot release ({path})"))?;
                say!(out, "pid {pid} released");
            } else if let Some(vm) = vm {
                store
                    .update(|s| s.stop_vgpu(&vm))?
                    .with_context(|| format!("cannot release ({path})"))?;
                say!(out, "vGPU of VM {vm} released");
            }
        }
        Command::Load {
            vm,
            index,
            gi,
            phases,
            ecc_corrected,
            ecc_uncorrected,
            vgpu_utilization,
        } => load(
            &store,
            &path,
            LoadArgs {
                vm,
                index,
                gi,
                phases,
                ecc_corrected,
                ecc_uncorrected,
                vgpu_utilization,
            },
            out,
        )?,
        Command::Xid { gpu, xid, gi } => {
            let seq = store
                .update(|s| s.push_xid(gpu, xid, gi))?
                .with_context(|| format!("cannot queue XID {xid} on GPU {gpu} ({path})"))?;
            say!(out, "XID {xid} queued on GPU {gpu} (event {seq})");
        }
        Command::Show => {
            let state = store.load()?;
            say!(out, "{}", serde_json::to_string_pretty(&state)?);
        }
        Command::Models | Command::VgpuTypes => {}
    }
    Ok(())
}

/// The arguments of `nvml-sim load`.
struct LoadArgs {
    vm: Option<String>,
    index: Option<u32>,
    gi: Option<u32>,
    phases: Vec<String>,
    ecc_corrected: Option<u64>,
    ecc_uncorrected: Option<u64>,
    vgpu_utilization: Option<String>,
}

fn load(store: &Store, path: &str, args: LoadArgs, out: &mut String) -> Result<()> {
    let target = match (args.vm, args.index, args.gi) {
        (Some(vm), _, _) => Some(LoadTarget::Vm(vm)),
        (None, Some(gpu), Some(gi)) => Some(LoadTarget::Gi { gpu, gi }),
        _ => None,
    };
    let ecc = (args.ecc_corrected.is_some() || args.ecc_uncorrected.is_some()).then(|| EccCounts {
        corrected: args.ecc_corrected.unwrap_or(0),
        uncorrected: args.ecc_uncorrected.unwrap_or(0),
    });
    let vgpu_util = args.vgpu_utilization.as_deref().map(|v| v == "supported");
    if target.is_none() && ecc.is_none() && vgpu_util.is_none() {
        anyhow::bail!(
            "name a vGPU (--vm VM, or -i GPU --gi GI) with --phase, or a GPU (-i) with --ecc-corrected/--ecc-uncorrected"
        );
    }
    if let Some(target) = target {
        if args.phases.is_empty() {
            anyhow::bail!("give the load with --phase (e.g. --phase sm=40,fb=3000)");
        }
        let phases = args
            .phases
            .iter()
            .map(|p| LoadPhase::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        let since_unix_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let schedule = LoadSchedule {
            since_unix_s,
            phases,
        };
        let instance = store
            .update(|s| s.set_vgpu_load(&target, schedule))?
            .with_context(|| format!("cannot set the load ({path})"))?;
        say!(
            out,
            "vGPU instance {instance}: load set ({} phases)",
            args.phases.len()
        );
    }
    if let (Some(supported), Some(index)) = (vgpu_util, args.index) {
        store
            .update(|s| s.set_vgpu_utilization_supported(index, supported))?
            .with_context(|| format!("cannot set vGPU utilization support ({path})"))?;
        say!(
            out,
            "GPU {index}: vGPU utilization {}",
            if supported {
                "supported"
            } else {
                "unsupported"
            }
        );
    }
    if let (Some(ecc), Some(index)) = (ecc, args.index) {
        store
            .update(|s| s.set_ecc(index, ecc))?
            .with_context(|| format!("cannot set ECC counts ({path})"))?;
        say!(
            out,
            "GPU {index}: ECC corrected {} uncorrected {}",
            ecc.corrected,
            ecc.uncorrected
        );
    }
    Ok(())
}

/// `nvml-sim vgpu-types`: per model, each type with where it runs and how many fit.
fn vgpu_types(out: &mut String) {
    use nvml_sim::vgpu_types::{Backing, Provenance, types_of};
    for m in mig::catalog() {
        for t in types_of(m) {
            let place = match t.backing {
                Backing::Mig { gi_profile, per_gi } => {
                    format!("MIG {gi_profile}, {per_gi} per GI")
                }
                Backing::WholeGpu { .. } => "whole GPU, MIG disabled".to_string(),
            };
            let how = match t.provenance {
                Provenance::Sourced => "sourced",
                Provenance::Inferred => "inferred",
            };
            say!(
                out,
                "{:<22} {:<18} {:<26} {:>3} per GPU  {how}",
                m.key,
                t.name,
                place,
                t.max_per_gpu(m)
            );
        }
    }
}
