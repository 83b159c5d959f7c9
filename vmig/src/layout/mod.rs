//! `vmig layout set | show | clear`: the desired MIG layout of a cluster or host, kept in
//! vCenter (the `vmig.layout` custom attribute, `mig::desired_layout`) where the agents read
//! it on every poll (issue #21, docs/layouts.md "Desired layouts in vCenter").
//!
//! A host's own value overrides its cluster's. `set` validates the layout before anything is
//! written (the file parses with the agent's own rules, the named config exists, and it
//! resolves on every GPU model the target's agents report), so an impossible layout never
//! reaches a host; `show` lists desired against actual per host and GPU from the agents'
//! `vmig.mig` documents; `clear` empties the value (the agents then keep the GPUs as they are).
//!
//! Split: [`target`] finds the cluster or host and reads what is there, [`validate`] checks a
//! layout against the catalog and the reported GPUs, [`set`](mod@set) writes and clears,
//! [`show`](mod@show) joins and renders.
pub mod set;
pub mod show;
pub mod target;
pub mod validate;

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::{AdminError, Connection, ExitCode};

/// `vmig layout`.
#[derive(Debug, Args)]
pub struct LayoutArgs {
    #[command(subcommand)]
    pub command: LayoutCommand,
}

/// The `vmig layout` subcommands.
#[derive(Debug, Subcommand)]
pub enum LayoutCommand {
    /// Write the desired layout of a cluster or host into vCenter (validated first).
    Set(SetArgs),
    /// Desired against actual layout, per host and GPU.
    Show(ShowArgs),
    /// Remove the desired layout of a cluster or host (GPUs stay as they are).
    Clear(ClearArgs),
}

/// Which object a desired layout belongs to: exactly one of `--cluster`, `--host`.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    /// The cluster (every member host without a value of its own follows it).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The host (overrides its cluster's layout).
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
}

/// `vmig layout set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The named config (`all-balanced`, `seed-mixed`, … or one of `--file`).
    #[arg(long, value_name = "NAME")]
    pub layout: String,
    /// A layout file (mig-parted `version: v1` with vmig's extensions); the built-in
    /// layouts when omitted. Its whole text is stored, so every agent applies the same.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// `vmig layout show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Only the hosts of this cluster.
    #[arg(long, value_name = "NAME", conflicts_with = "host")]
    pub cluster: Option<String>,
    /// Only this host.
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
}

/// `vmig layout clear`.
#[derive(Debug, Args)]
pub struct ClearArgs {
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Runs one `vmig layout` subcommand.
pub async fn run(
    conns: &[Connection],
    args: LayoutArgs,
    json: bool,
    out: &mut dyn Write,
) -> Result<ExitCode, AdminError> {
    match args.command {
        LayoutCommand::Set(a) => set::run_set(conns, a, json, out).await,
        LayoutCommand::Clear(a) => set::run_clear(conns, a, json, out).await,
        LayoutCommand::Show(a) => show::run(conns, a, json, out).await,
    }
}

/// A vCenter error on connection `c`.
pub(crate) fn vc_err(c: &Connection) -> impl Fn(vcenter_client::Error) -> AdminError + '_ {
    move |source| AdminError::Vcenter {
        vcenter: c.target.host.clone(),
        source,
    }
}
