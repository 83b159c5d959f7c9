//! The `run` and `check-config` command lines, as clap structs the agent's CLI flattens into
//! its `Command` enum, and [`dispatch`], which `main` calls before anything loads NVML (the
//! daemon loads it itself, and keeps running when it is missing).
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::config::DEFAULT_CONFIG_PATH;
use super::vcenter::DEFAULT_BIOS_UUID_FILE;
use crate::cli::{Cli, Command};

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

/// Exit status of a configuration that cannot be used (same as a usage error).
pub const EXIT_CONFIG: u8 = 2;

/// Run `run` / `check-config` if that is the command; `None` for every other command.
pub fn dispatch(cli: &Cli) -> Option<ExitCode> {
    match &cli.command {
        Command::Run(args) => Some(super::service::run(args, cli.nvml_lib.clone())),
        Command::CheckConfig(args) => Some(super::check::check_config(args, cli.nvml_lib.clone())),
        _ => None,
    }
}
