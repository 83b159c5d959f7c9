//! Host-side utilization queries for vGPUs, answered from the load `nvml-sim load` set
//! (`crate::load`): per-vGPU utilization samples, framebuffer used, and per-GPU ECC counts.
//!
//! Samples are taken at the time of the call (the real driver samples on its own clock and
//! hands out the recent ones); a call whose `lastSeenTimeStamp` is not older than now gets
//! no sample, as NVML returns only samples newer than the one the caller saw.
use std::ffi::{c_uint, c_ulonglong};
use std::time::{SystemTime, UNIX_EPOCH};

use super::types::{NvmlReturn, RawHandle};
use super::{gpu_of, guard, non_null, put, put_counted, resolve_gpu, with_state};
use crate::code::NvmlCode;
use crate::load::LoadLevel;
use crate::state::SimVgpu;

/// `nvmlValue_t`: the union NVML returns sample values in.
#[repr(C)]
#[derive(Clone, Copy)]
pub union NvmlValue {
    pub d_val: f64,
    pub ui_val: c_uint,
    pub ull_val: c_ulonglong,
}

impl NvmlValue {
    fn unsigned(v: u32) -> Self {
        let mut value = NvmlValue { ull_val: 0 };
        value.ui_val = v;
        value
    }
}

/// `nvmlVgpuInstanceUtilizationSample_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct VgpuUtilizationSample {
    pub vgpu_instance: c_uint,
    /// CPU time of the sample, µs.
    pub time_stamp: c_ulonglong,
    pub sm_util: NvmlValue,
    pub mem_util: NvmlValue,
    pub enc_util: NvmlValue,
    pub dec_util: NvmlValue,
}

/// `NVML_VALUE_TYPE_UNSIGNED_INT`.
const VALUE_TYPE_UNSIGNED_INT: c_uint = 1;
/// `NVML_MEMORY_ERROR_TYPE_CORRECTED` / `_UNCORRECTED`.
const ECC_CORRECTED: c_uint = 0;
const ECC_UNCORRECTED: c_uint = 1;
/// `NVML_VOLATILE_ECC` / `NVML_AGGREGATE_ECC`.
const ECC_VOLATILE: c_uint = 0;
const ECC_AGGREGATE: c_uint = 1;

pub(super) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The level of a vGPU at `now_us`.
fn level(v: &SimVgpu, now_us: u64) -> LoadLevel {
    v.load
        .as_ref()
        .map(|l| l.level_at(now_us / 1_000_000))
        .unwrap_or_default()
}

/// `nvmlDeviceGetVgpuUtilization`: one sample per active vGPU, newer than `last_seen`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetVgpuUtilization(
    device: RawHandle,
    last_seen_time_stamp: c_ulonglong,
    sample_val_type: *mut c_uint,
    vgpu_instance_samples_count: *mut c_uint,
    utilization_samples: *mut VgpuUtilizationSample,
) -> NvmlReturn {
    guard(|| {
        non_null(sample_val_type)?;
        with_state(|s| {
            let g = gpu_of(s, resolve_gpu(s, device)?)?;
            if g.vgpu_utilization_unsupported {
                return Err(NvmlCode::NOT_SUPPORTED);
            }
            let now = now_us();
            let samples: Vec<VgpuUtilizationSample> = if now > last_seen_time_stamp {
                g.vgpus
                    .iter()
                    .map(|v| {
                        let l = level(v, now);
                        VgpuUtilizationSample {
                            vgpu_instance: v.instance,
                            time_stamp: now,
                            sm_util: NvmlValue::unsigned(l.sm),
                            mem_util: NvmlValue::unsigned(l.mem),
                            enc_util: NvmlValue::unsigned(l.enc),
                            dec_util: NvmlValue::unsigned(l.dec),
                        }
                    })
                    .collect()
            } else {
                Vec::new()
            };
            // SAFETY: `sample_val_type` was checked not NULL above and is a writable
            // `nvmlValueType_t` (nvml.h).
            unsafe { put(sample_val_type, VALUE_TYPE_UNSIGNED_INT)? };
            // SAFETY: the caller's count/buffer pair unchanged: `*count` readable and
            // writable, the buffer NULL or holding that many samples (nvml.h), as
            // `put_counted` requires.
            unsafe { put_counted(vgpu_instance_samples_count, utilization_samples, &samples) }
        })
    })
}

/// `nvmlVgpuInstanceGetFbUsage`: framebuffer used by the vGPU, bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlVgpuInstanceGetFbUsage(
    vgpu_instance: c_uint,
    fb_usage: *mut c_ulonglong,
) -> NvmlReturn {
    guard(|| {
        non_null(fb_usage)?;
        with_state(|s| {
            let (_, v) = s.vgpu(vgpu_instance)?;
            let bytes = level(v, now_us()).fb_mib.saturating_mul(1024 * 1024);
            // SAFETY: `fb_usage` was checked not NULL above and is a writable
            // `unsigned long long` (nvml.h).
            unsafe { put(fb_usage, bytes) }
        })
    })
}

/// `nvmlDeviceGetTotalEccErrors`: the GPU's counts (volatile and aggregate are the same here:
/// the simulated driver is never reloaded).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetTotalEccErrors(
    device: RawHandle,
    error_type: c_uint,
    counter_type: c_uint,
    ecc_counts: *mut c_ulonglong,
) -> NvmlReturn {
    guard(|| {
        non_null(ecc_counts)?;
        if counter_type != ECC_VOLATILE && counter_type != ECC_AGGREGATE {
            return Err(NvmlCode::INVALID_ARGUMENT);
        }
        with_state(|s| {
            let g = gpu_of(s, resolve_gpu(s, device)?)?;
            let count = match error_type {
                ECC_CORRECTED => g.ecc.corrected,
                ECC_UNCORRECTED => g.ecc.uncorrected,
                _ => return Err(NvmlCode::INVALID_ARGUMENT),
            };
            // SAFETY: `ecc_counts` was checked not NULL above and is a writable
            // `unsigned long long` (nvml.h).
            unsafe { put(ecc_counts, count) }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_struct_has_nvml_s_layout() {
        // nvml.h: unsigned int, (pad), unsigned long long, four 8-byte unions.
        assert_eq!(std::mem::size_of::<NvmlValue>(), 8);
        assert_eq!(std::mem::size_of::<VgpuUtilizationSample>(), 48);
        assert_eq!(std::mem::offset_of!(VgpuUtilizationSample, time_stamp), 8);
        assert_eq!(std::mem::offset_of!(VgpuUtilizationSample, dec_util), 40);
    }
}
