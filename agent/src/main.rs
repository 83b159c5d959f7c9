//! `vmig-agent` binary: parse the command line, run it, print, map the error to an exit code.
use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use vmig_agent::cli::{Cli, run};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        // clap prints help/version (exit 0) and usage errors (exit 2) itself.
        Err(e) => e.exit(),
    };
    if let Some(code) = vmig_agent::daemon::cli::dispatch(&cli) {
        return code;
    }
    if let Some(code) = vmig_agent::layout::dispatch(&cli) {
        return code;
    }
    let mut out = String::new();
    let result = run(&cli, &mut out);
    // A closed stdout (`| head`) must not turn a successful MIG change into a failure.
    let _ = std::io::stdout().write_all(out.as_bytes());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmig-agent: error: {e}");
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}
