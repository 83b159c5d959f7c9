//! The `vmig-agent` command line as clap definitions, and nothing else: this file only parses.
//! `main` matches on [`Command`] and hands each command's arguments to the function that runs
//! it — the nvidia-smi MIG workflow (`-L`, `-mig`, `mig -lgip` … `-dci`) to [`crate::smi`],
//! the layout commands to [`crate::layout`], `run` and `check-config` to [`crate::daemon`].
//! Arguments flow one way: the nvidia-smi commands take these structs, the daemon and the
//! layouts take their own option types (built here by `options`/`selection`), and nothing
//! below imports this file.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::daemon::config::DEFAULT_CONFIG_PATH;
use crate::daemon::vcenter::DEFAULT_BIOS_UUID_FILE;
use crate::daemon::{CheckOptions, RunOptions};
use crate::gpu_selector::GpuSelector;
use crate::layout::{ApplyOptions, ExportOptions, LayoutSelection};
use crate::profile_spec::{ProfileList, StartList};

/// Drive NVIDIA MIG on this host through NVML, like nvidia-smi's MIG commands.
#[derive(Debug, Parser)]
#[command(name = "vmig-agent", version, about, propagate_version = true)]
pub struct Cli {
    /// Path of libnvidia-ml.so (default: libnvidia-ml.so.1, then libnvidia-ml.so, from the loader's search path).
    #[arg(long, global = true, env = "VMIG_NVML_LIB", value_name = "PATH")]
    pub nvml_lib: Option<PathBuf>,

    /// Machine-readable output (stable JSON keys, see docs/agent-cli.md).
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List GPUs and their MIG devices (like `nvidia-smi -L`).
    List,
    /// MIG management (like `nvidia-smi mig …` and `nvidia-smi -mig`).
    #[command(subcommand)]
    Mig(MigCommand),
    /// Run the daemon: observe MIG through NVML and publish it to vCenter (docs/operations.md).
    Run(RunArgs),
    /// Check the daemon's configuration, password file, NVML and vCenter connection, then exit.
    CheckConfig(CheckConfigArgs),
    /// Show the steps that would bring the GPUs to a named MIG layout (docs/layouts.md).
    Plan(PlanArgs),
    /// Apply a named MIG layout: safe, idempotent, rolled back on failure (docs/layouts.md).
    Apply(ApplyArgs),
    /// Exit 0 if the GPUs match a named MIG layout, else list the differences (exit 3).
    Assert(AssertArgs),
    /// Print the current MIG layout as a config that `apply` reproduces (placements included).
    Export(ExportArgs),
}

/// `mig` subcommands, named after nvidia-smi's flags.
#[derive(Debug, Subcommand)]
pub enum MigCommand {
    /// Show or change the MIG mode of a GPU (like `nvidia-smi -i N -mig 1|0`).
    Mode(ModeArgs),
    /// List GPU instance profiles with free/total instances (like `-lgip`).
    Lgip(OptGpu),
    /// List the possible placements of each GPU instance profile (like `-lgipp`).
    Lgipp(OptGpu),
    /// Create GPU instances (like `-cgi`).
    Cgi(CgiArgs),
    /// List GPU instances (like `-lgi`).
    Lgi(OptGpu),
    /// Destroy a GPU instance (like `-dgi -gi G`).
    Dgi(GiArgs),
    /// List compute instance profiles of GPU instances (like `-lcip [-gi G]`).
    Lcip(OptGpuOptGi),
    /// Create compute instances in a GPU instance (like `-gi G -cci`).
    Cci(CciArgs),
    /// List compute instances (like `-lci [-gi G]`).
    Lci(OptGpuOptGi),
    /// Destroy a compute instance (like `-dci -gi G -ci C`).
    Dci(CiArgs),
}

/// `-i` as a required argument.
#[derive(Debug, Args)]
pub struct GpuArg {
    /// GPU: index, UUID (GPU-…) or PCI bus id (0000:3B:00.0). UUID/PCI are stable; indices can change across reboots.
    #[arg(short = 'i', long = "id", value_name = "GPU")]
    pub gpu: GpuSelector,
}

/// `-i` as an optional argument (all MIG-enabled GPUs when absent).
#[derive(Debug, Args)]
pub struct OptGpu {
    /// GPU: index, UUID (GPU-…) or PCI bus id; all MIG-enabled GPUs when omitted.
    #[arg(short = 'i', long = "id", value_name = "GPU")]
    pub gpu: Option<GpuSelector>,
}

#[derive(Debug, Args)]
#[group(id = "mode_change", multiple = false)]
pub struct ModeArgs {
    #[command(flatten)]
    pub gpu: GpuArg,
    /// Enable MIG (takes effect after a GPU reset or host reboot).
    #[arg(long, group = "mode_change")]
    pub enable: bool,
    /// Disable MIG (takes effect after a GPU reset or host reboot).
    #[arg(long, group = "mode_change")]
    pub disable: bool,
}

#[derive(Debug, Args)]
pub struct CgiArgs {
    #[command(flatten)]
    pub gpu: GpuArg,
    /// Comma list of GPU instance profile ids or names, created in this order (e.g. 9,19,14,19 or 3g.20gb,1g.5gb).
    #[arg(value_name = "PROFILES")]
    pub profiles: ProfileList,
    /// Placement start (memory slice) for each profile, comma-separated, one per profile; without it the driver chooses.
    #[arg(long, value_name = "START[,START…]")]
    pub placement: Option<StartList>,
    /// Also create the default compute instance (the whole GPU instance) in each new GPU instance.
    #[arg(short = 'C', long = "default-compute-instance")]
    pub default_ci: bool,
}

#[derive(Debug, Args)]
pub struct GiArgs {
    #[command(flatten)]
    pub gpu: GpuArg,
    /// GPU instance id.
    #[arg(long = "gi", value_name = "G")]
    pub gi: u32,
}

#[derive(Debug, Args)]
pub struct OptGpuOptGi {
    #[command(flatten)]
    pub gpu: OptGpu,
    /// GPU instance id; all GPU instances when omitted.
    #[arg(long = "gi", value_name = "G")]
    pub gi: Option<u32>,
}

#[derive(Debug, Args)]
pub struct CciArgs {
    #[command(flatten)]
    pub gpu: GpuArg,
    /// GPU instance id.
    #[arg(long = "gi", value_name = "G")]
    pub gi: u32,
    /// Comma list of compute instance profile ids or names (e.g. 0,0 or 1c.3g.20gb); the default (whole-GI) profile when omitted.
    #[arg(value_name = "PROFILES")]
    pub profiles: Option<ProfileList>,
}

#[derive(Debug, Args)]
pub struct CiArgs {
    #[command(flatten)]
    pub gpu: GpuArg,
    /// GPU instance id.
    #[arg(long = "gi", value_name = "G")]
    pub gi: u32,
    /// Compute instance id.
    #[arg(long = "ci", value_name = "C")]
    pub ci: u32,
}

/// `vmig-agent run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The daemon's configuration file (TOML, see docs/operations.md).
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// Log to syslog (facility daemon) instead of stderr, as ESXi's init script runs it.
    #[arg(long)]
    pub syslog: bool,
    /// Log level: error, warn, info, debug or trace (env VMIG_LOG, a tracing filter, overrides it).
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: String,
    /// File holding this host's SMBIOS UUID, used to find the host in vCenter when `[host] uuid` is not set.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_BIOS_UUID_FILE)]
    pub bios_uuid_file: PathBuf,
}

impl RunArgs {
    /// The daemon's options; `nvml_lib` is the global `--nvml-lib` / `VMIG_NVML_LIB`.
    pub fn options(&self, nvml_lib: Option<PathBuf>) -> RunOptions {
        RunOptions {
            config: self.config.clone(),
            syslog: self.syslog,
            log_level: self.log_level.clone(),
            bios_uuid_file: self.bios_uuid_file.clone(),
            nvml_lib,
        }
    }
}

/// `vmig-agent check-config`.
#[derive(Debug, Clone, Args)]
pub struct CheckConfigArgs {
    /// The configuration file to check.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// File holding this host's SMBIOS UUID (as for `run`).
    #[arg(long, value_name = "FILE", default_value = DEFAULT_BIOS_UUID_FILE)]
    pub bios_uuid_file: PathBuf,
    /// Only check the file itself (syntax, keys, password file), not vCenter or NVML.
    #[arg(long)]
    pub offline: bool,
}

impl CheckConfigArgs {
    /// The check's options; `nvml_lib` is the global `--nvml-lib` / `VMIG_NVML_LIB`.
    pub fn options(&self, nvml_lib: Option<PathBuf>) -> CheckOptions {
        CheckOptions {
            config: self.config.clone(),
            bios_uuid_file: self.bios_uuid_file.clone(),
            offline: self.offline,
            nvml_lib,
        }
    }
}

/// Which layout to use (`plan`, `apply`, `assert`).
#[derive(Debug, Clone, Args)]
pub struct LayoutArgs {
    /// Layout file in mig-parted's v1 format (`-` for stdin); the built-in vmig-layouts.yaml when omitted.
    #[arg(short = 'f', long = "config-file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Named config in the file (may be omitted when the file has only one).
    #[arg(short = 'c', long = "selected-config", value_name = "NAME")]
    pub config: Option<String>,
    /// Only this GPU (index, GPU-… UUID or PCI bus id); the config must select it.
    #[arg(short = 'i', long = "id", value_name = "GPU")]
    pub gpu: Option<GpuSelector>,
}

impl LayoutArgs {
    /// The layout these arguments name.
    pub fn selection(&self) -> LayoutSelection {
        LayoutSelection {
            file: self.file.clone(),
            config: self.config.clone(),
            gpu: self.gpu.clone(),
        }
    }
}

/// `plan`.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub layout: LayoutArgs,
    /// Plan as `apply --allow-partial` would: keep in-use instances, apply the rest.
    #[arg(long)]
    pub allow_partial: bool,
}

impl PlanArgs {
    /// Plan with the options `apply` would get.
    pub fn options(&self) -> ApplyOptions {
        ApplyOptions {
            allow_partial: self.allow_partial,
        }
    }
}

/// `apply`.
#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub layout: LayoutArgs,
    /// Where in-use instances block the layout, keep them and apply the rest instead of refusing.
    #[arg(long)]
    pub allow_partial: bool,
}

impl ApplyArgs {
    /// The apply options.
    pub fn options(&self) -> ApplyOptions {
        ApplyOptions {
            allow_partial: self.allow_partial,
        }
    }
}

/// `assert`.
#[derive(Debug, Clone, Args)]
pub struct AssertArgs {
    #[command(flatten)]
    pub layout: LayoutArgs,
}

/// `export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Only this GPU.
    #[arg(short = 'i', long = "id", value_name = "GPU")]
    pub gpu: Option<GpuSelector>,
    /// Name of the exported config.
    #[arg(
        short = 'l',
        long = "config-label",
        default_value = "current",
        value_name = "NAME"
    )]
    pub label: String,
    /// Name GPUs by UUID instead of index (vmig extension; mig-parted cannot read it).
    #[arg(long)]
    pub by_uuid: bool,
}

impl ExportArgs {
    /// The export options.
    pub fn options(&self) -> ExportOptions {
        ExportOptions {
            gpu: self.gpu.clone(),
            label: self.label.clone(),
            by_uuid: self.by_uuid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile_spec::ProfileSpec;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("vmig-agent").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn cgi_takes_profiles_placements_and_default_ci() {
        let cli = parse(&["mig", "cgi", "-i", "0", "9,19,14,19", "-C"]).unwrap();
        let Command::Mig(MigCommand::Cgi(a)) = cli.command else {
            panic!("not cgi")
        };
        assert_eq!(a.gpu.gpu, GpuSelector::Index(0));
        let specs = a.profiles.0;
        assert_eq!(
            specs,
            vec![
                ProfileSpec::Id(9),
                ProfileSpec::Id(19),
                ProfileSpec::Id(14),
                ProfileSpec::Id(19)
            ]
        );
        assert!(a.default_ci);

        let cli = parse(&[
            "--json",
            "mig",
            "cgi",
            "-i",
            "GPU-abc-def",
            "3g.20gb",
            "--placement",
            "4",
        ])
        .unwrap();
        assert!(cli.json);
        let Command::Mig(MigCommand::Cgi(a)) = cli.command else {
            panic!("not cgi")
        };
        assert_eq!(a.gpu.gpu, GpuSelector::Uuid("GPU-abc-def".into()));
        assert_eq!(a.placement, Some(StartList(vec![4])));
    }

    #[test]
    fn global_options_go_anywhere() {
        let cli = parse(&["mig", "lgi", "--json", "--nvml-lib", "/x/libnvidia-ml.so.1"]).unwrap();
        assert!(cli.json);
        assert_eq!(
            cli.nvml_lib.as_deref(),
            Some(std::path::Path::new("/x/libnvidia-ml.so.1"))
        );
    }

    #[test]
    fn usage_errors_are_exit_code_2() {
        for bad in [
            vec!["mig", "mode", "-i", "0", "--enable", "--disable"],
            vec!["mig", "dgi", "-i", "0"],
            vec!["mig", "dci", "-i", "0", "--gi", "1"],
            vec!["mig", "cgi", "-i", "MIG-1234-5678", "9"],
            vec!["mig", "cgi", "-i", "0", "9,,19"],
            vec!["mig", "lgip", "-i", "nonsense"],
            vec!["mig", "frobnicate"],
        ] {
            let e = parse(&bad).expect_err(&format!("{bad:?} should fail"));
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn selectors_accept_pci_ids() {
        let cli = parse(&["mig", "lgi", "-i", "3b:00.0"]).unwrap();
        let Command::Mig(MigCommand::Lgi(a)) = cli.command else {
            panic!("not lgi")
        };
        assert!(matches!(a.gpu, Some(GpuSelector::PciBusId(_))));
    }

    #[test]
    fn help_lists_every_mig_command() {
        let mut cmd = Cli::command();
        let help = cmd
            .find_subcommand_mut("mig")
            .expect("mig")
            .render_help()
            .to_string();
        for c in [
            "mode", "lgip", "lgipp", "cgi", "lgi", "dgi", "lcip", "cci", "lci", "dci",
        ] {
            assert!(help.contains(c), "{c} missing from help");
        }
    }
}
