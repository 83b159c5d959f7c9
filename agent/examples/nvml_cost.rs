//! What NVML calls cost on this machine: `cargo run --release -p vmig-agent --example
//! nvml_cost -- [--nvml-lib PATH] [--iterations N]`.
//!
//! The agent's CPU budget (docs/performance.md, "Agent footprint") depends on the cost of
//! one NVML call, which the simulated library cannot tell: NVIDIA's library makes an ioctl
//! into the driver per call. This times, on every GPU, the read-only calls the daemon's
//! poll makes and then whole polls (`observe_gpu_cached`, as `vmig-agent run` does, and
//! the uncached `observe_gpu` of the one-shot commands), and prints the median per call.
//!
//! It only reads: no MIG mode change, no instance created or destroyed, safe on a
//! production host. A call that fails (e.g. GI listing with MIG disabled) is timed all the
//! same and shown with its error, since the daemon pays for failed calls too.
#![allow(
    clippy::print_stdout,
    reason = "a measuring program whose output is its stdout report"
)]
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use vmig_agent::nvml::{Driver, Gpu};
use vmig_agent::observe::{ObserveCache, observe_gpu, observe_gpu_cached};

fn main() -> Result<()> {
    let mut lib: Option<PathBuf> = None;
    let mut iterations: usize = 200;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--nvml-lib" => lib = Some(args.next().context("--nvml-lib needs a path")?.into()),
            "--iterations" => {
                iterations = args
                    .next()
                    .context("--iterations needs a number")?
                    .parse()
                    .context("--iterations")?;
                if iterations == 0 {
                    bail!("--iterations must be at least 1");
                }
            }
            other => {
                bail!("unknown option {other}; usage: nvml_cost [--nvml-lib PATH] [--iterations N]")
            }
        }
    }
    let driver = Driver::load(lib.as_deref()).context("loading NVML")?;
    println!(
        "library {} · driver {} · {iterations} iterations per row · median (min) per call",
        driver.lib_path().display(),
        driver.driver_version().unwrap_or_else(|| "unknown".into())
    );
    row("nvmlDeviceGetCount_v2", iterations, || {
        driver.gpu_count().map(|n| format!("{n} GPUs"))
    });
    for gpu in driver.gpus().context("listing GPUs")? {
        gpu_rows(&gpu, iterations);
    }
    Ok(())
}

fn gpu_rows(gpu: &Gpu<'_>, iterations: usize) {
    let i = gpu.index();
    println!(
        "GPU {i}: {} {}",
        gpu.name().unwrap_or_default(),
        gpu.pci_bus_id().unwrap_or_default()
    );
    let driver = gpu.driver();
    row("  nvmlDeviceGetHandleByIndex_v2", iterations, || {
        driver.gpu_by_index(i).map(|_| String::new())
    });
    row("  nvmlDeviceGetUUID", iterations, || gpu.uuid());
    row("  nvmlDeviceGetMigMode", iterations, || {
        gpu.mig_mode()
            .map(|m| format!("current {}, pending {}", m.current, m.pending))
    });
    row(
        "  nvmlDeviceGetComputeRunningProcesses_v3 (+ names)",
        iterations,
        || gpu.processes().map(|p| format!("{} processes", p.len())),
    );
    row("  nvmlDeviceGetActiveVgpus", iterations, || {
        gpu.vgpus().map(|v| format!("{} vGPUs", v.len()))
    });
    row(
        "  GI profiles with placements (many calls)",
        iterations,
        || gpu.gi_profiles().map(|p| format!("{} profiles", p.len())),
    );
    row(
        "  nvmlDeviceGetGpuInstances (every profile)",
        iterations,
        || gpu.gpu_instances().map(|g| format!("{} GIs", g.len())),
    );
    row("  poll, uncached (one-shot commands)", iterations, || {
        observe_gpu(gpu).map(|s| format!("{} GIs", s.gpu_instances.len()))
    });
    let mut cache = ObserveCache::default();
    row("  poll, cached (vmig-agent run)", iterations, || {
        observe_gpu_cached(gpu, &mut cache).map(|s| format!("{} GIs", s.gpu_instances.len()))
    });
}

fn row<E: std::fmt::Display>(
    what: &str,
    iterations: usize,
    mut call: impl FnMut() -> Result<String, E>,
) {
    let mut times = Vec::with_capacity(iterations);
    let mut outcome = String::new();
    for _ in 0..iterations {
        let t = Instant::now();
        let r = call();
        times.push(t.elapsed());
        outcome = match r {
            Ok(s) => s,
            Err(e) => format!("error: {e}"),
        };
    }
    times.sort();
    let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
    println!(
        "{what:<52} {:>10.1} µs ({:.1})  {outcome}",
        us(times[times.len() / 2]),
        us(times[0])
    );
}
