//! The `vmig` command line: argument parsing, output and exit codes. The binary calls
//! [`main`]; everything it does is in the sibling modules.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use super::assign::{self, HostChoice};
use super::capacity;
use super::connect_opts::{ConnectArgs, ProcessEnvironment};
use super::inventory::{self, NoProgress, Progress, Scope, VmSelection};
use super::model::{self, ScopeView};
use super::render::{self, Format};
use super::{AdminError, EXIT_FAILURE, EXIT_OK, connect_all};

const EXIT_CODES: &str = "\
Exit status:
  0  success (capacity: the requested count fits)
  1  vCenter, network or file error
  2  bad command line or connection settings (unknown vGPU type, no URL, no password)
  3  assign/unassign refused by a check (VM not found or powered on, other vGPU type,
     host not found or not offering the type, no current agent report, nothing to do)
  4  not enough free MIG capacity (capacity: fewer than --count fit; assign: no free
     slice, or another admin reserved the last one first)

Connection: --url or GOVC_URL (user:pass@host allowed), --username or GOVC_USERNAME,
--password-file or GOVC_PASSWORD (else a prompt on a terminal), --ca-file or
GOVC_TLS_CA_CERTS, --thumbprint, --insecure or GOVC_INSECURE=1.";

/// `vmig`: MIG capacity and vGPU assignment across vCenter.
#[derive(Debug, Parser)]
#[command(name = "vmig", version, about = "MIG inventory, capacity and vGPU assignment for vCenter admins", after_help = EXIT_CODES)]
pub struct Cli {
    /// Connection settings.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Print JSON on stdout instead of text (errors too).
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inventory of GPUs, MIG layouts, free capacity and vGPU VMs.
    Report(ReportArgs),
    /// Where N more VMs of a MIG-backed vGPU type fit, host by host.
    Capacity(CapacityArgs),
    /// Give a powered-off VM a MIG-backed vGPU where it fits best.
    Assign(AssignArgs),
    /// Remove a VM's MIG-backed vGPU and its reservation.
    Unassign(UnassignArgs),
}

/// `vmig report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Only this datacenter.
    #[arg(long, value_name = "NAME")]
    pub datacenter: Option<String>,
    /// Only this cluster.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Output format (--json means json).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `vmig capacity`.
#[derive(Debug, Args)]
pub struct CapacityArgs {
    /// MIG-backed vGPU type, e.g. grid_a100-3-20c.
    #[arg(long, value_name = "TYPE")]
    pub profile: String,
    /// How many VMs must fit.
    #[arg(long, default_value_t = 1)]
    pub count: u32,
    /// Only this datacenter.
    #[arg(long, value_name = "NAME")]
    pub datacenter: Option<String>,
    /// Only this cluster.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
}

/// `vmig assign`.
#[derive(Debug, Args)]
pub struct AssignArgs {
    /// The VM (name, or id such as vm-42).
    #[arg(long, value_name = "NAME")]
    pub vm: String,
    /// MIG-backed vGPU type, e.g. grid_a100-3-20c.
    #[arg(long, value_name = "TYPE")]
    pub profile: String,
    /// `auto` (current host if it fits, else best fit in the VM's cluster) or a host name.
    #[arg(long, value_name = "auto|NAME", default_value = "auto")]
    pub host: String,
    /// Check and plan, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `vmig unassign`.
#[derive(Debug, Args)]
pub struct UnassignArgs {
    /// The VM (name, or id such as vm-42).
    #[arg(long, value_name = "NAME")]
    pub vm: String,
}

/// A terminal progress bar on stderr (only when stderr is a terminal).
struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn add_work(&self, n: u64) {
        self.0.inc_length(n);
    }
    fn done(&self, what: &str) {
        self.0.set_message(what.to_string());
        self.0.inc(1);
    }
}

fn progress() -> Box<dyn Progress> {
    if !std::io::stderr().is_terminal() {
        return Box::new(NoProgress);
    }
    let bar =
        indicatif::ProgressBar::with_draw_target(Some(0), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} reading vCenter {pos}/{len} compute resources {wide_msg}",
    ) {
        bar.set_style(style);
    }
    Box::new(Bar(bar))
}

#[derive(Serialize)]
struct ErrorJson<'a> {
    error: String,
    exit_code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<&'a super::Refusal>,
}

/// Runs `vmig` with the process's arguments; the binary's whole `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vmig: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let json = cli.json;
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = e.exit_code();
            eprintln!("vmig: {e}");
            if json {
                let refusal = match &e {
                    AdminError::Refused(r) => Some(r),
                    _ => None,
                };
                let body = ErrorJson {
                    error: e.to_string(),
                    exit_code: code,
                    refusal,
                };
                println!(
                    "{}",
                    serde_json::to_string_pretty(&body).unwrap_or_default()
                );
            }
            ExitCode::from(code)
        }
    }
}

fn print_json<T: Serialize>(value: &T) -> Result<(), AdminError> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)
        .map_err(std::io::Error::other)
        .and_then(|()| writeln!(out))
        .map_err(|source| AdminError::Output {
            what: "stdout".into(),
            source,
        })
}

/// Runs a parsed command line; returns the exit status.
pub async fn run(cli: Cli) -> Result<u8, AdminError> {
    let targets = cli.connect.resolve(&ProcessEnvironment)?;
    // Validate cheap inputs before connecting.
    if let Command::Capacity(a) = &cli.command {
        capacity::parse_type(&a.profile)?;
    }
    if let Command::Assign(a) = &cli.command {
        capacity::parse_type(&a.profile)?;
    }
    let conns = connect_all(targets).await?;
    let progress = progress();
    match cli.command {
        Command::Report(a) => {
            let scope = Scope {
                datacenter: a.datacenter.clone(),
                cluster: a.cluster.clone(),
            };
            let invs = collect_all(&conns, &scope, progress.as_ref()).await?;
            let now = time::OffsetDateTime::now_utc();
            let scope = ScopeView {
                datacenter: a.datacenter,
                cluster: a.cluster,
            };
            let format = if cli.json { Format::Json } else { a.format };
            let write = |out: &mut dyn Write| match format {
                // JSON is written one compute resource at a time (see StreamedReport):
                // at vCenter's maximum inventory the whole model would not fit the
                // memory budget.
                Format::Json => render::json::render_streamed(
                    &model::StreamedReport::new(invs, now, scope),
                    out,
                ),
                _ => render::render(&model::analyse(invs, now).report(scope), format, out),
            };
            match &a.output {
                Some(path) => {
                    let write_err = |source| AdminError::Output {
                        what: path.display().to_string(),
                        source,
                    };
                    let file = std::fs::File::create(path).map_err(write_err)?;
                    let mut out = std::io::BufWriter::new(file);
                    write(&mut out).map_err(write_err)?;
                    out.flush().map_err(write_err)?;
                    eprintln!("vmig: wrote {}", path.display());
                }
                None => {
                    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                    write(&mut out)
                        .and_then(|()| out.flush())
                        .map_err(|source| AdminError::Output {
                            what: "stdout".into(),
                            source,
                        })?;
                }
            }
            Ok(EXIT_OK)
        }
        Command::Capacity(a) => {
            let vtype = capacity::parse_type(&a.profile)?;
            let scope = Scope {
                datacenter: a.datacenter,
                cluster: a.cluster,
            };
            let analysis = analyse(&conns, &scope, progress.as_ref()).await?;
            let answer = capacity::answer(&analysis, &vtype, a.count);
            if cli.json {
                print_json(&answer)?;
            } else {
                answer
                    .render_text(&mut std::io::stdout().lock())
                    .map_err(|source| AdminError::Output {
                        what: "stdout".into(),
                        source,
                    })?;
            }
            Ok(answer.exit_code())
        }
        Command::Assign(a) => {
            let choice = if a.host == "auto" {
                HostChoice::Auto
            } else {
                HostChoice::Named(a.host.clone())
            };
            let out = assign::assign(
                &conns,
                &a.vm,
                &a.profile,
                choice,
                a.dry_run,
                progress.as_ref(),
            )
            .await?;
            if cli.json {
                print_json(&out)?;
            } else {
                let verb = if out.dry_run {
                    "would assign"
                } else {
                    "assigned"
                };
                let moved = if out.relocated {
                    format!(
                        " (relocated from {})",
                        out.from_host.as_deref().unwrap_or("?")
                    )
                } else {
                    String::new()
                };
                println!(
                    "{verb} {} ({}) to VM {} on host {}{moved}, GPU {} {} at slices {} (fragmentation after {:.2})",
                    out.vgpu_type,
                    out.profile,
                    out.vm,
                    out.host,
                    out.gpu_index,
                    out.gpu_uuid,
                    out.placement,
                    out.fragmentation_after
                );
            }
            Ok(EXIT_OK)
        }
        Command::Unassign(a) => {
            let out = assign::unassign(&conns, &a.vm, progress.as_ref()).await?;
            if cli.json {
                print_json(&out)?;
            } else {
                println!(
                    "unassigned VM {}: removed {}{}",
                    out.vm,
                    if out.removed.is_empty() {
                        "no vGPU".to_string()
                    } else {
                        out.removed.join(", ")
                    },
                    if out.reservation_cleared {
                        ", reservation cleared"
                    } else {
                        ""
                    }
                );
            }
            Ok(EXIT_OK)
        }
    }
}

/// Reads every vCenter concurrently, keeping only the VMs a report or capacity answer uses.
async fn collect_all(
    conns: &[super::Connection],
    scope: &Scope,
    progress: &dyn Progress,
) -> Result<Vec<inventory::VcenterInventory>, AdminError> {
    futures_util::future::join_all(conns.iter().map(|c| {
        inventory::collect_with(
            &c.client,
            &c.target.host,
            scope,
            VmSelection::Report,
            progress,
        )
    }))
    .await
    .into_iter()
    .collect()
}

async fn analyse(
    conns: &[super::Connection],
    scope: &Scope,
    progress: &dyn Progress,
) -> Result<model::Analysis, AdminError> {
    let invs = collect_all(conns, scope, progress).await?;
    Ok(model::analyse(invs, time::OffsetDateTime::now_utc()))
}
