//! `vmig-agent` binary: parse the command line, then one `match` hands each command to the
//! function that runs it; print what it wrote and exit with its [`ExitCode`].
use std::fmt::Display;
use std::io::Write;
use std::path::PathBuf;

use clap::Parser;
use vmig_agent::cli::{Cli, Command, MigCommand};
use vmig_agent::nvml::Driver;
use vmig_agent::{AgentError, ExitCode, daemon, layout, smi};

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        // clap prints help/version (exit 0) and usage errors (exit 2) itself.
        Err(e) => e.exit(),
    };
    let json = cli.json;
    let lib = cli.nvml_lib;
    let code = match cli.command {
        // The daemon and check-config load NVML themselves: the daemon keeps running without it.
        Command::Run(a) => daemon::run(&a.options(lib)),
        Command::CheckConfig(a) => {
            let mut out = String::new();
            let code = daemon::check_config(&a.options(lib), &mut out);
            print(&out);
            code
        }
        Command::List => with_nvml(lib, AgentError::exit_code, |d, out| smi::list(d, json, out)),
        Command::Mig(m) => with_nvml(lib, AgentError::exit_code, |d, out| match &m {
            MigCommand::Mode(a) => smi::mode(d, a, json, out),
            MigCommand::Lgip(a) => smi::lgip(d, a, json, out),
            MigCommand::Lgipp(a) => smi::lgipp(d, a, json, out),
            MigCommand::Cgi(a) => smi::cgi(d, a, json, out),
            MigCommand::Lgi(a) => smi::lgi(d, a, json, out),
            MigCommand::Dgi(a) => smi::dgi(d, a, json, out),
            MigCommand::Lcip(a) => smi::lcip(d, a, json, out),
            MigCommand::Cci(a) => smi::cci(d, a, json, out),
            MigCommand::Lci(a) => smi::lci(d, a, json, out),
            MigCommand::Dci(a) => smi::dci(d, a, json, out),
        }),
        Command::Plan(a) => with_nvml(lib, layout::LayoutError::exit_code, |d, out| {
            layout::plan(d, &a.layout.selection(), &a.options(), json, out)
        }),
        Command::Apply(a) => with_nvml(lib, layout::LayoutError::exit_code, |d, out| {
            layout::apply(d, &a.layout.selection(), &a.options(), json, out)
        }),
        Command::Assert(a) => with_nvml(lib, layout::LayoutError::exit_code, |d, out| {
            layout::assert(d, &a.layout.selection(), json, out)
        }),
        Command::Export(a) => with_nvml(lib, layout::LayoutError::exit_code, |d, out| {
            layout::export_current(d, &a.options(), json, out)
        }),
    };
    code.into()
}

/// Load NVML (`--nvml-lib` / `VMIG_NVML_LIB`, else the default names), run `command`, print
/// what it wrote — also when it failed, after doing part of its work — and report its error.
fn with_nvml<E: Display + From<AgentError>>(
    lib: Option<PathBuf>,
    exit_code: fn(&E) -> ExitCode,
    command: impl FnOnce(&Driver, &mut String) -> Result<(), E>,
) -> ExitCode {
    let mut out = String::new();
    let result = Driver::load(lib.as_deref())
        .map_err(|e| E::from(AgentError::from(e)))
        .and_then(|driver| command(&driver, &mut out));
    print(&out);
    match result {
        Ok(()) => ExitCode::Ok,
        Err(e) => {
            eprintln!("vmig-agent: error: {e}");
            exit_code(&e)
        }
    }
}

/// Write a command's output to stdout. A closed stdout (`| head`) must not turn a successful
/// MIG change into a failure, so a write error is ignored.
fn print(out: &str) {
    let _ = std::io::stdout().write_all(out.as_bytes());
}
