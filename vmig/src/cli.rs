//! The `vmig` command line: argument parsing, one function per command, and the output edge
//! (results to stdout, errors and progress to stderr, the exit status). The binary calls
//! [`main`]; the work itself is in the sibling modules.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::analysis;
use crate::assign::{self, HostChoice};
use crate::capacity;
use crate::connect_opts::{ConnectArgs, ProcessEnvironment};
use crate::inventory::{NoProgress, Progress, Scope};
use crate::output::{line, stdout_error, write_json};
use crate::render::{self, Format};
use crate::report::ScopeView;
use crate::snapshot::{analyse, collect_all};
use crate::stream::StreamedReport;
use crate::{AdminError, Connection, ExitCode, Refusal, connect_all};

/// The part of `vmig --help` after the exit statuses.
const CONNECTION_HELP: &str = "\
Connection: --url or GOVC_URL (user:pass@host allowed), --username or GOVC_USERNAME,
--password-file or GOVC_PASSWORD (else a prompt on a terminal), --ca-file or
GOVC_TLS_CA_CERTS, --thumbprint, --insecure or GOVC_INSECURE=1.";

/// What `vmig --help` prints after the options: the exit statuses, then connection settings.
fn after_help() -> String {
    format!("{}\n\n{CONNECTION_HELP}", ExitCode::help_text())
}

/// `vmig`: MIG capacity and vGPU assignment across vCenter.
#[derive(Debug, Parser)]
#[command(name = "vmig", version, about = "MIG inventory, capacity and vGPU assignment for vCenter admins", after_help = after_help())]
pub struct Cli {
    /// Connection settings.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Print JSON on stdout instead of text (errors too).
    #[arg(long, global = true)]
    pub json: bool,
    /// More diagnostics on stderr: -v info, -vv debug (warnings are always shown).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
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
    /// Finish or undo assignments that stopped half-way (crash, Ctrl-C, lost connection).
    #[command(long_about = REPAIR_HELP)]
    Repair(RepairArgs),
    /// Serve a live report, its JSON and Prometheus metrics over HTTP (read-only).
    Serve(crate::serve::ServeArgs),
    /// The fewest moves of existing GIs that make N more VMs of a type fit (dry run).
    Plan(crate::plan::PlanArgs),
    /// What-if: replay VM arrivals and departures against today's inventory.
    Simulate(crate::simulate::SimulateArgs),
    /// One-time, as an administrator: create the custom attributes vmig and its agents use
    /// (then agents need no Global.ManageCustomFields); --check-role checks an account's privileges.
    Setup(crate::setup::SetupArgs),
    /// Desired MIG layouts kept in vCenter per cluster or host: set, show, clear.
    Layout(crate::layout::LayoutArgs),
    /// Bring a cluster's hosts to their desired layout through maintenance mode and reboots.
    Rollout(crate::rollout::RolloutArgs),
    /// VMs whose vGPU profile is larger than their measured peak, and idle slices.
    Rightsize(crate::rightsize::RightsizeArgs),
}

/// `vmig repair --help`.
const REPAIR_HELP: &str = "\
Finish or undo assignments that stopped half-way.

`vmig assign` records each step in the VM's reservation (reserved, relocating, relocated,
configuring, done) with the vCenter task it started. An assign that crashed, was
interrupted (Ctrl-C, SIGTERM), lost vCenter or saw a task outlive its wait leaves a
reservation whose step is not `done`; `vmig report` warns about it. `vmig repair` takes the
VM's lock, follows the recorded task to its end, then leaves the VM either fully assigned
(the vGPU added on the planned host) with its reservation, or unchanged with none.
Run it again at any time: it is idempotent.";

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
    /// The VM (name, id such as vm-42, or BIOS UUID).
    #[arg(long, value_name = "NAME")]
    pub vm: String,
    /// MIG-backed vGPU type, e.g. grid_a100-3-20c; repeat it to give the VM several vGPUs
    /// (same board and series; all placed on one host, or none).
    #[arg(long, value_name = "TYPE", required = true)]
    pub profile: Vec<String>,
    /// `auto` (current host if it fits, else best fit in the VM's cluster) or a host name.
    #[arg(long, value_name = "auto|NAME", default_value = "auto")]
    pub host: String,
    /// Check and plan, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long the reservation counts before the VM first runs, e.g. 7d, 12h, 30m
    /// (vCenter's clock; an expired reservation is no longer counted).
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_duration)]
    pub reserve_for: std::time::Duration,
}

/// `vmig repair`.
#[derive(Debug, Args)]
pub struct RepairArgs {
    /// Only this VM (name, or id such as vm-42); default: every half-done assignment.
    #[arg(long, value_name = "NAME")]
    pub vm: Option<String>,
    /// Say what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `90s`, `30m`, `12h`, `7d`.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{s}`: expected a number and a unit, e.g. 7d, 12h, 30m, 90s"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{s}`: the unit must be s, m, h or d")),
    };
    if n == 0 {
        return Err("the duration must be more than 0".into());
    }
    Ok(std::time::Duration::from_secs(n.saturating_mul(mult)))
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
    exit_code: ExitCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<&'a Refusal>,
}

/// Runs `vmig` with the process's arguments; the binary's whole `main`. Results go to
/// stdout, diagnostics and the progress bar to stderr.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vmig: cannot start the async runtime: {e}");
            return ExitCode::Failure.into();
        }
    };
    let json = cli.json;
    // Unlocked: each write takes the lock, so nothing is held across the run's awaits.
    let mut stdout = std::io::stdout();
    match runtime.block_on(run(cli, &mut stdout)) {
        Ok(code) => code.into(),
        Err(e) => {
            let code = e.exit_code();
            // Errors name VMs and hosts as vCenter spells them: shown escaped, like the report.
            eprintln!("vmig: {}", crate::render::escape_controls(&e.to_string()));
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
                // The exit status already says what failed; a closed stdout cannot be told.
                let _ = writeln!(
                    stdout,
                    "{}",
                    serde_json::to_string_pretty(&body).unwrap_or_default()
                );
            }
            code.into()
        }
    }
}

/// Diagnostics on stderr: warnings always, `-v` info, `-vv` debug (vmig's own and its
/// vCenter client's).
fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    // A second subscriber (never: main runs once) would only be refused.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .try_init();
}

/// Runs a parsed command line, writing its results to `out` (`main` passes stdout; a report
/// with `--output` goes to that file instead); returns the exit status.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<ExitCode, AdminError> {
    let targets = cli.connect.resolve(&ProcessEnvironment)?;
    // Validate cheap inputs before connecting.
    if let Command::Capacity(CapacityArgs { profile, .. }) = &cli.command {
        capacity::precheck_type(profile)?;
    }
    if let Command::Assign(AssignArgs { profile, .. }) = &cli.command {
        for p in profile {
            capacity::precheck_type(p)?;
        }
    }
    let conns = connect_all(targets).await?;
    let progress = progress();
    let progress = progress.as_ref();
    let result = match cli.command {
        Command::Report(a) => run_report(&conns, a, cli.json, progress, out).await,
        Command::Capacity(a) => run_capacity(&conns, a, cli.json, progress, out).await,
        Command::Assign(a) => {
            crate::interrupt::install();
            run_assign(&conns, a, cli.json, progress, out).await
        }
        Command::Unassign(a) => {
            crate::interrupt::install();
            run_unassign(&conns, a, cli.json, progress, out).await
        }
        Command::Repair(a) => {
            crate::interrupt::install();
            run_repair(&conns, a, cli.json, progress, out).await
        }
        Command::Serve(a) => crate::serve::run(&conns, a).await,
        Command::Plan(a) => crate::plan::run(&conns, a, cli.json, progress, out).await,
        Command::Simulate(a) => crate::simulate::run_cmd(&conns, a, cli.json, progress, out).await,
        Command::Setup(a) => crate::setup::run(&conns, &a, cli.json, out).await,
        Command::Layout(a) => crate::layout::run(&conns, a, cli.json, out).await,
        Command::Rollout(a) => {
            crate::interrupt::install();
            crate::rollout::run(&conns, a, cli.json, out).await
        }
        Command::Rightsize(a) => crate::rightsize::run(&conns, a, cli.json, progress, out).await,
    };
    // Failed or not: no session is left behind in vCenter (connection.rs).
    crate::connection::logout_all(&conns).await;
    result
}

/// `vmig report`: reads, analyses and renders; to `--output` when given, else to `out`.
async fn run_report(
    conns: &[Connection],
    a: ReportArgs,
    json: bool,
    progress: &dyn Progress,
    out: &mut dyn Write,
) -> Result<ExitCode, AdminError> {
    let scope = Scope {
        datacenter: a.datacenter.clone(),
        cluster: a.cluster.clone(),
    };
    let invs = collect_all(conns, &scope, progress).await?;
    let now = crate::connection::vcenter_time(conns).await?;
    let scope = ScopeView {
        datacenter: a.datacenter,
        cluster: a.cluster,
    };
    let format = if json { Format::Json } else { a.format };
    let write = |out: &mut dyn Write| match format {
        // JSON is written one compute resource at a time (see StreamedReport): at vCenter's
        // maximum inventory the whole model would not fit the memory budget.
        Format::Json => render::json::render_streamed(&StreamedReport::new(invs, now, scope), out),
        _ => render::render(&analysis::analyse(invs, now).report(scope), format, out),
    };
    match &a.output {
        Some(path) => {
            let write_err = |source| AdminError::Output {
                what: path.display().to_string(),
                source,
            };
            let file = std::fs::File::create(path).map_err(write_err)?;
            let mut file = std::io::BufWriter::new(file);
            write(&mut file).map_err(write_err)?;
            file.flush().map_err(write_err)?;
            eprintln!("vmig: wrote {}", path.display());
        }
        None => {
            let mut out = std::io::BufWriter::new(out);
            write(&mut out)
                .and_then(|()| out.flush())
                .map_err(stdout_error)?;
        }
    }
    Ok(ExitCode::Ok)
}

/// `vmig capacity`: exit status [`ExitCode::NoCapacity`] when the count does not fit.
async fn run_capacity(
    conns: &[Connection],
    a: CapacityArgs,
    json: bool,
    progress: &dyn Progress,
    out: &mut dyn Write,
) -> Result<ExitCode, AdminError> {
    capacity::precheck_type(&a.profile)?;
    let scope = Scope {
        datacenter: a.datacenter,
        cluster: a.cluster,
    };
    let analysis = analyse(conns, &scope, progress).await?;
    // After the analysis: it may have learned a GPU model from an agent's geometry.
    let vtype = capacity::parse_type_in(&a.profile, &analysis)?;
    let answer = capacity::answer(&analysis, &vtype, a.count);
    if json {
        write_json(out, &answer)?;
    } else {
        answer.render_text(out).map_err(stdout_error)?;
    }
    Ok(answer.exit_code())
}

/// How `assign` tells that a vGPU shares its GI (issue 18).
fn shared(time_sliced: bool) -> &'static str {
    if time_sliced {
        ", time-sliced in the GI there"
    } else {
        ""
    }
}

/// `vmig assign`.
async fn run_assign(
    conns: &[Connection],
    a: AssignArgs,
    json: bool,
    progress: &dyn Progress,
    out: &mut dyn Write,
) -> Result<ExitCode, AdminError> {
    let choice = if a.host == "auto" {
        HostChoice::Auto
    } else {
        HostChoice::Named(a.host.clone())
    };
    let done = assign::assign(
        conns,
        &a.vm,
        &a.profile,
        choice,
        a.dry_run,
        a.reserve_for,
        progress,
    )
    .await?;
    if json {
        write_json(out, &done)?;
        return Ok(ExitCode::Ok);
    }
    let verb = if done.dry_run {
        "would assign"
    } else {
        "assigned"
    };
    let moved = if done.relocated {
        format!(
            " (relocated from {})",
            done.from_host.as_deref().unwrap_or("?")
        )
    } else {
        String::new()
    };
    line(
        out,
        &format!(
            "{verb} {} ({}) to VM {} on host {}{moved}, GPU {} {} at slices {}{} (fragmentation after {:.2})",
            done.vgpu_type,
            done.profile,
            done.vm,
            done.host,
            done.gpu_index,
            done.gpu_uuid,
            done.placement,
            shared(done.time_sliced),
            done.fragmentation_after
        ),
    )?;
    for m in &done.more {
        line(
            out,
            &format!(
                "{verb} {} ({}) to VM {} on host {}, GPU {} {} at slices {}{} (fragmentation after {:.2})",
                m.vgpu_type,
                m.profile,
                done.vm,
                done.host,
                m.gpu_index,
                m.gpu_uuid,
                m.placement,
                shared(m.time_sliced),
                m.fragmentation_after
            ),
        )?;
    }
    Ok(ExitCode::Ok)
}

/// `vmig unassign`.
async fn run_unassign(
    conns: &[Connection],
    a: UnassignArgs,
    json: bool,
    progress: &dyn Progress,
    out: &mut dyn Write,
) -> Result<ExitCode, AdminError> {
    let done = assign::unassign(conns, &a.vm, progress).await?;
    if json {
        write_json(out, &done)?;
        return Ok(ExitCode::Ok);
    }
    line(
        out,
        &format!(
            "unassigned VM {}: removed {}{}",
            done.vm,
            if done.removed.is_empty() {
                "no vGPU".to_string()
            } else {
                done.removed.join(", ")
            },
            if done.reservation_cleared {
                ", reservation cleared"
            } else {
                ""
            }
        ),
    )?;
    Ok(ExitCode::Ok)
}

/// `vmig repair`.
async fn run_repair(
    conns: &[Connection],
    a: RepairArgs,
    json: bool,
    progress: &dyn Progress,
    out: &mut dyn Write,
) -> Result<ExitCode, AdminError> {
    let done = assign::repair(conns, a.vm.as_deref(), a.dry_run, progress).await?;
    if json {
        write_json(out, &done)?;
        return Ok(ExitCode::Ok);
    }
    if done.vms.is_empty() {
        writeln!(out, "nothing to repair: no half-done assignment").map_err(stdout_error)?;
    }
    for v in &done.vms {
        line(
            out,
            &format!(
                "VM {} (step {}): {}: {}",
                v.vm,
                v.step,
                v.action.replace('_', " "),
                v.detail
            ),
        )?;
    }
    Ok(ExitCode::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_for_durations() {
        assert_eq!(
            parse_duration("7d").unwrap(),
            std::time::Duration::from_secs(7 * 86_400)
        );
        assert_eq!(
            parse_duration("90s").unwrap(),
            std::time::Duration::from_secs(90)
        );
        assert!(parse_duration("0h").is_err());
        assert!(parse_duration("3w").unwrap_err().contains("unit"));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn repair_and_verbosity_parse() {
        let cli =
            Cli::try_parse_from(["vmig", "-vv", "repair", "--vm", "web-01", "--dry-run"]).unwrap();
        assert_eq!(cli.verbose, 2);
        let Command::Repair(a) = cli.command else {
            panic!("not repair");
        };
        assert_eq!(a.vm.as_deref(), Some("web-01"));
        assert!(a.dry_run);
    }
}
