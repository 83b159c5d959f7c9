//! GPM (GPU Performance Monitoring) per MIG GPU instance: support query, one sample per GI per
//! round, and SM utilization / DRAM bandwidth between two samples (nvml-wrapper's
//! `gpm_support`, `gpm_mig_sample`, `gpm_metrics_get`).
//!
//! Why raw handles: the sampler keeps each GI's previous sample until the next round, beside
//! the [`Driver`] that owns the library; a `GpmSample<'nvml>` borrowing that driver cannot be
//! stored next to it. A [`GpmSampleHandle`] therefore holds the handle (released from
//! nvml-wrapper with the safe `into_handle`) and the id of the driver that allocated it; it is
//! rebuilt into a `GpmSample` only for that same driver, which is what makes the rebuild sound.
//! A "not supported" answer (symbol missing, `NOT_SUPPORTED`) is `Ok(None)` / `false`, as for
//! the other utilization figures.
#![allow(
    unsafe_code,
    reason = "GpmSample::from_handle is unsafe in nvml-wrapper 0.13; each block states its SAFETY"
)]
use mig::GpuInstanceId;
use nvml_wrapper::enums::gpm::GpmMetricId;
use nvml_wrapper::gpm::{GpmSample, gpm_metrics_get};
use nvml_wrapper_sys::bindings::nvmlGpmSample_t;

use super::usage::unsupported;
use super::{CallError, Driver, Gpu, wrap};

/// A filled GPM sample of one GI, owned: free it with [`Driver::free_gpm_sample`] (dropping it
/// leaks the handle until NVML shuts down, never frees it twice).
#[derive(Debug)]
pub struct GpmSampleHandle {
    raw: nvmlGpmSample_t,
    driver_id: u64,
}

/// SM utilization and DRAM bandwidth utilization between two samples, percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpmFigures {
    pub sm: f64,
    pub dram_bw: f64,
}

impl Gpu<'_> {
    /// Whether the driver offers GPM on this GPU (Hopper and newer); `false` when it says no
    /// or lacks the call.
    pub fn gpm_supported(&self) -> Result<bool, CallError> {
        match wrap("nvmlGpmQueryDeviceSupport", self.device.gpm_support()) {
            Ok(s) => Ok(s),
            Err(e) if unsupported(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A GPM sample of GPU instance `gi` taken now; `Ok(None)` when GPM is not supported.
    pub fn gpm_mig_sample(&self, gi: GpuInstanceId) -> Result<Option<GpmSampleHandle>, CallError> {
        match wrap("nvmlGpmMigSampleGet", self.device.gpm_mig_sample(gi.0)) {
            Ok(s) => Ok(Some(GpmSampleHandle {
                raw: s.into_handle(),
                driver_id: self.driver.id,
            })),
            Err(e) if unsupported(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Driver {
    /// Rebuild `h` as nvml-wrapper's sample, or refuse a handle of another driver.
    fn gpm_sample<'n>(&'n self, h: &GpmSampleHandle) -> Result<GpmSample<'n>, CallError> {
        if h.driver_id != self.id {
            return Err(CallError::from_wrapper(
                "nvmlGpmMetricsGet",
                nvml_wrapper::error::NvmlError::InvalidArg,
            ));
        }
        // SAFETY: `h.raw` was allocated by nvmlGpmSampleAlloc of this very driver (same id)
        // and not freed: `free_gpm_sample` consumes the handle; the `GpmSample` built here is
        // turned back into a handle with `into_handle` (never dropped) by every caller.
        Ok(unsafe { GpmSample::from_handle(self.nvml(), h.raw) })
    }

    /// SM and DRAM bandwidth utilization of the GI between `earlier` and `later` (two samples
    /// of the same GI, `later` taken after `earlier`).
    pub fn gpm_figures(
        &self,
        earlier: &GpmSampleHandle,
        later: &GpmSampleHandle,
    ) -> Result<GpmFigures, CallError> {
        let a = self.gpm_sample(earlier)?;
        let b = self.gpm_sample(later)?;
        let result = wrap(
            "nvmlGpmMetricsGet",
            gpm_metrics_get(
                self.nvml(),
                &a,
                &b,
                &[GpmMetricId::SmUtil, GpmMetricId::DramBwUtil],
            ),
        );
        // Ownership stays with the handles.
        let _ = a.into_handle();
        let _ = b.into_handle();
        let metrics = result?;
        let value = |i: usize| -> Result<f64, CallError> {
            match metrics.get(i) {
                Some(Ok(m)) if m.value.is_finite() => Ok(m.value.clamp(0.0, 100.0)),
                Some(Ok(_)) | None => Err(CallError::from_wrapper(
                    "nvmlGpmMetricsGet",
                    nvml_wrapper::error::NvmlError::Unknown,
                )),
                Some(Err(e)) => Err(CallError::from_wrapper("nvmlGpmMetricsGet", clone_error(e))),
            }
        };
        Ok(GpmFigures {
            sm: value(0)?,
            dram_bw: value(1)?,
        })
    }

    /// Free a sample; errors are logged, not returned (the handle is gone either way).
    pub fn free_gpm_sample(&self, h: GpmSampleHandle) {
        if let Ok(s) = self.gpm_sample(&h)
            && let Err(e) = s.free()
        {
            tracing::debug!(error = %e, "nvmlGpmSampleFree failed");
        }
    }
}

/// The per-metric error, rebuilt (`NvmlError` is not `Clone`): "not supported" stays that.
fn clone_error(e: &nvml_wrapper::error::NvmlError) -> nvml_wrapper::error::NvmlError {
    use nvml_wrapper::error::NvmlError;
    match e {
        NvmlError::NotSupported => NvmlError::NotSupported,
        NvmlError::InvalidArg => NvmlError::InvalidArg,
        _ => NvmlError::Unknown,
    }
}
