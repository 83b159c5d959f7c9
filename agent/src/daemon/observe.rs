//! The daemon's view of the GPUs: a seam between the loop in `run.rs` and NVML.
//!
//! The loop only needs "the state of every GPU now" and "enforce this layout"; keeping that
//! behind a trait lets the loop be tested with a scripted observer and paused time, and lets
//! the NVML-backed implementation (`nvml_observer.rs`) evolve with the agent's NVML module.
use std::future::Future;

use mig::report::GpuReport;

use std::sync::Arc;

use super::config::LayoutRef;
use super::desired::{DesiredInForce, States};

/// Something that can read the MIG state of all GPUs of this host.
pub trait Observer {
    /// The state of every GPU. A failing GPU is reported in its own `error` field; `Err` means
    /// NVML as a whole is unusable right now (library missing, driver not loaded), and the
    /// loop tries again at the next poll.
    ///
    /// Async so that the NVML-backed observer can run NVML on a thread of its own and give up
    /// waiting on a stalled call (`worker.rs`).
    fn observe(&mut self) -> impl Future<Output = anyhow::Result<Vec<GpuReport>>>;

    /// Bring the GPUs to the named layout (the declarative `apply`), returning a one-line
    /// account of what was done for the log.
    fn enforce_layout(
        &mut self,
        layout: &LayoutRef,
    ) -> impl Future<Output = anyhow::Result<String>>;

    /// Bring the GPUs to a desired layout GPU by GPU and say where each stands
    /// (`reconcile.rs`). Observers that cannot apply layouts report no states.
    fn reconcile(
        &mut self,
        desired: Arc<DesiredInForce>,
    ) -> impl Future<Output = anyhow::Result<States>> {
        let _ = desired;
        async { Ok(Vec::new()) }
    }
}
