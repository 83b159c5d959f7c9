//! Developer tasks, run as `cargo xtask <task>` (see `.cargo/config.toml`):
//! - `test`: install what a fresh Debian machine lacks, then fmt, clippy and every test.
//! - `demo`: the main job end to end on simulated GPUs and the vCenter simulator.
//! - `vib`, `footprint`, `scale`: packaging and benchmarks (see docs/packaging.md, docs/performance.md).
//!
//! Tasks orchestrate tools and binaries; they hold no product logic.
#![allow(
    clippy::print_stdout,
    reason = "a developer tool: its results (benchmark tables, demo progress, help) are its stdout"
)]
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

mod args;
mod demo;
mod fleet;
mod footprint;
mod probe;
mod scale;
mod scale_serve;
mod vib;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    match task {
        "test" => test(),
        "demo" => demo::demo(),
        "vib" => vib::run(&args[1..]),
        "footprint" => footprint::run(&args[1..]),
        "scale" => scale::run(&args[1..]),
        "help" | "--help" | "-h" => {
            println!(
                "usage: cargo xtask <task>\n\ntasks:\n  test   install dependencies, then fmt, clippy and all tests\n  demo   run vmig end to end: vCenter simulator, 4 simulated GPU hosts, agents, assign, report\n  vib    build vmig-agent for ESXi, then its VIB and offline bundle\n  footprint  measure vmig-agent run (RSS, CPU, document size) against vcsim\n  scale  time vmig report at vCenter's maximum inventory against pyVmomi and curl (--vmig-serve: and vmig serve)"
            );
            Ok(())
        }
        other => bail!("unknown task `{other}`; run `cargo xtask help`"),
    }
}

/// The repository root (xtask lives one level below it).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .current_dir(root())
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn test() -> Result<()> {
    run(Command::new("bash").arg("scripts/install-deps.sh"))?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args(["test", "--workspace"]))?;
    Ok(())
}
