//! GPM (GPU Performance Monitoring) for MIG GPU instances: support query, opaque samples and
//! the metrics computed between two of them, answered from the load `nvml-sim load` set.
//!
//! A sample records the time and the activity the GI's vGPU has accumulated since its load was
//! set ([`crate::load::LoadSchedule::accumulated_until`]); a metric is the difference of two
//! samples divided by the time between them, as the real library computes a rate from two
//! snapshots of its counters (nvml.h, `nvmlGpmMetricsGet`).
//!
//! Sample handles are opaque to the caller, so they are numbers, not allocations: a handle the
//! library never handed out (or already freed) is refused with INVALID_ARGUMENT instead of
//! being dereferenced.
use std::collections::BTreeMap;
use std::ffi::{c_char, c_uint, c_void};
use std::sync::{Mutex, MutexGuard};

use super::types::{NvmlReturn, RawHandle};
use super::usage::now_us;
use super::{get, gpu_of, guard, non_null, put, resolve_gpu, with_state};
use crate::code::{NvmlCode, NvmlResult};
use crate::load::Accumulated;
use crate::state::SimGpu;

/// `NVML_GPM_SUPPORT_VERSION` / `NVML_GPM_METRICS_GET_VERSION` (nvml.h: plain 1, not the
/// size-encoded form other versioned structs use).
const GPM_SUPPORT_VERSION: c_uint = 1;
const GPM_METRICS_GET_VERSION: c_uint = 1;
/// `NVML_GPM_METRIC_MAX`: the size of the request's metric array.
const GPM_METRIC_MAX: usize = 210;
/// `NVML_GPM_METRIC_SM_UTIL`, `_SM_OCCUPANCY`, `_DRAM_BW_UTIL` (nvml.h).
const METRIC_SM_UTIL: c_uint = 2;
const METRIC_SM_OCCUPANCY: c_uint = 3;
const METRIC_DRAM_BW_UTIL: c_uint = 10;

/// `nvmlGpmSupport_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct GpmSupport {
    pub version: c_uint,
    pub is_supported_device: c_uint,
}

/// `nvmlGpmMetric_t`'s `metricInfo`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct GpmMetricInfo {
    pub short_name: *mut c_char,
    pub long_name: *mut c_char,
    pub unit: *mut c_char,
}

/// `nvmlGpmMetric_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct GpmMetric {
    pub metric_id: c_uint,
    pub nvml_return: NvmlReturn,
    pub value: f64,
    pub metric_info: GpmMetricInfo,
}

/// `nvmlGpmMetricsGet_t`.
#[repr(C)]
pub struct GpmMetricsGet {
    pub version: c_uint,
    pub num_metrics: c_uint,
    pub sample1: *mut c_void,
    pub sample2: *mut c_void,
    pub metrics: [GpmMetric; GPM_METRIC_MAX],
}

/// What one filled sample holds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Snapshot {
    /// The GPU (PCI bus, stable across handles) and GI sampled: two samples of different GIs
    /// cannot be compared.
    gpu_pci_bus: u32,
    gi: u32,
    time_us: u64,
    activity: Accumulated,
}

/// Live sample handles: `None` until a `*SampleGet` fills it.
struct Samples {
    next: usize,
    live: BTreeMap<usize, Option<Snapshot>>,
}

static SAMPLES: Mutex<Samples> = Mutex::new(Samples {
    next: 1,
    live: BTreeMap::new(),
});

fn samples() -> MutexGuard<'static, Samples> {
    // A panic while holding the lock leaves at worst one sample unfilled.
    SAMPLES.lock().unwrap_or_else(|e| e.into_inner())
}

fn key(sample: *mut c_void) -> usize {
    sample.addr()
}

/// Whether GPM is supported on the GPU's model: Hopper and newer (nvml.h, "Hopper or newer
/// fully supported devices"). The catalog has no architecture field; its PCI device ids tell
/// (GA100: 0x20xx; GH100: 0x23xx; Blackwell: 0x29xx and up). A model registered at run time
/// from a geometry has device id 0: its architecture is unknown, so GPM is not offered.
pub fn gpm_supported(gpu: &SimGpu) -> bool {
    gpu.model().pci_device_id >= 0x2300
}

/// `nvmlGpmQueryDeviceSupport`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmQueryDeviceSupport(
    device: RawHandle,
    gpm_support: *mut GpmSupport,
) -> NvmlReturn {
    guard(|| {
        non_null(gpm_support)?;
        // SAFETY: checked not NULL; a readable `nvmlGpmSupport_t` (nvml.h).
        let mut support = unsafe { get(gpm_support)? };
        if support.version != GPM_SUPPORT_VERSION {
            return Err(NvmlCode::ARGUMENT_VERSION_MISMATCH);
        }
        with_state(|s| {
            let g = gpu_of(s, resolve_gpu(s, device)?)?;
            support.is_supported_device = c_uint::from(gpm_supported(g));
            // SAFETY: as above, writable.
            unsafe { put(gpm_support, support) }
        })
    })
}

/// `nvmlGpmSampleAlloc`: a new, empty sample handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmSampleAlloc(gpm_sample: *mut *mut c_void) -> NvmlReturn {
    guard(|| {
        non_null(gpm_sample)?;
        let handle = {
            let mut all = samples();
            // Multiples of 16, never 0: looks like an aligned pointer to any caller.
            let id = all.next * 16;
            all.next += 1;
            all.live.insert(id, None);
            std::ptr::without_provenance_mut::<c_void>(id)
        };
        // SAFETY: checked not NULL; a writable `nvmlGpmSample_t` (nvml.h).
        unsafe { put(gpm_sample, handle) }
    })
}

/// `nvmlGpmSampleFree`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmSampleFree(gpm_sample: *mut c_void) -> NvmlReturn {
    guard(|| {
        samples()
            .live
            .remove(&key(gpm_sample))
            .map(|_| ())
            .ok_or(NvmlCode::INVALID_ARGUMENT)
    })
}

/// `nvmlGpmMigSampleGet`: fill `gpm_sample` with GI `gpu_instance_id`'s counters now.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmMigSampleGet(
    device: RawHandle,
    gpu_instance_id: c_uint,
    gpm_sample: *mut c_void,
) -> NvmlReturn {
    guard(|| {
        if !samples().live.contains_key(&key(gpm_sample)) {
            return Err(NvmlCode::INVALID_ARGUMENT);
        }
        let snapshot = with_state(|s| {
            let g = gpu_of(s, resolve_gpu(s, device)?)?;
            if !gpm_supported(g) || !g.mig_mode.current {
                return Err(NvmlCode::NOT_SUPPORTED);
            }
            if g.gpu_instance(gpu_instance_id).is_none() {
                return Err(NvmlCode::INVALID_ARGUMENT);
            }
            let time_us = now_us();
            let activity = g
                .vgpus
                .iter()
                .filter(|v| v.gi == gpu_instance_id)
                .filter_map(|v| v.load.as_ref())
                .map(|l| l.accumulated_until(time_us))
                .fold(Accumulated::default(), |a, b| Accumulated {
                    sm: a.sm + b.sm,
                    mem: a.mem + b.mem,
                });
            Ok(Snapshot {
                gpu_pci_bus: g.pci_bus,
                gi: gpu_instance_id,
                time_us,
                activity,
            })
        })?;
        let mut all = samples();
        let slot = all
            .live
            .get_mut(&key(gpm_sample))
            .ok_or(NvmlCode::INVALID_ARGUMENT)?;
        *slot = Some(snapshot);
        Ok(())
    })
}

/// The value of metric `id` between `a` and `b` (b later), or the per-metric error.
fn metric(id: c_uint, a: &Snapshot, b: &Snapshot) -> NvmlResult<f64> {
    let secs = (b.time_us - a.time_us) as f64 / 1e6;
    let sm = ((b.activity.sm - a.activity.sm) / secs).clamp(0.0, 100.0);
    let mem = ((b.activity.mem - a.activity.mem) / secs).clamp(0.0, 100.0);
    match id {
        METRIC_SM_UTIL => Ok(sm),
        // The simulation has no warps: occupancy is reported as half the SM utilization, a
        // fixed relation only so that tests can tell the two metrics apart.
        METRIC_SM_OCCUPANCY => Ok(sm / 2.0),
        METRIC_DRAM_BW_UTIL => Ok(mem),
        _ => Err(NvmlCode::NOT_SUPPORTED),
    }
}

/// `nvmlGpmMetricsGet`: the requested metrics between `sample1` and `sample2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmMetricsGet(metrics_get: *mut GpmMetricsGet) -> NvmlReturn {
    guard(|| {
        non_null(metrics_get)?;
        // SAFETY: checked not NULL; the caller passes a whole `nvmlGpmMetricsGet_t` (nvml.h),
        // readable and writable, and nothing else refers to it during the call.
        let request = unsafe { &mut *metrics_get };
        if request.version != GPM_METRICS_GET_VERSION {
            return Err(NvmlCode::ARGUMENT_VERSION_MISMATCH);
        }
        let count = usize::try_from(request.num_metrics).map_err(|_| NvmlCode::INVALID_ARGUMENT)?;
        if count > GPM_METRIC_MAX {
            return Err(NvmlCode::INVALID_ARGUMENT);
        }
        let (a, b) = {
            let all = samples();
            let filled = |p: *mut c_void| {
                all.live
                    .get(&key(p))
                    .copied()
                    .flatten()
                    .ok_or(NvmlCode::INVALID_ARGUMENT)
            };
            (filled(request.sample1)?, filled(request.sample2)?)
        };
        if a.gpu_pci_bus != b.gpu_pci_bus || a.gi != b.gi || b.time_us <= a.time_us {
            return Err(NvmlCode::INVALID_ARGUMENT);
        }
        for m in &mut request.metrics[..count] {
            let (ret, value) = match metric(m.metric_id, &a, &b) {
                Ok(v) => (NvmlCode::SUCCESS, v),
                Err(code) => (code.0, 0.0),
            };
            m.nvml_return = ret;
            m.value = value;
            m.metric_info = GpmMetricInfo {
                short_name: std::ptr::null_mut(),
                long_name: std::ptr::null_mut(),
                unit: std::ptr::null_mut(),
            };
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_structs_have_nvml_s_layout() {
        // nvml.h: two unsigned ints, two pointers, then 210 metrics of
        // (uint, nvmlReturn_t, double, three char pointers).
        assert_eq!(std::mem::size_of::<GpmMetric>(), 40);
        assert_eq!(std::mem::offset_of!(GpmMetricsGet, metrics), 24);
        assert_eq!(std::mem::size_of::<GpmMetricsGet>(), 24 + 210 * 40);
        assert_eq!(std::mem::size_of::<GpmSupport>(), 8);
    }
}
