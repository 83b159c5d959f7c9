//! The raw utilization call nvml-wrapper 0.13 has no safe method for:
//! `nvmlDeviceGetVgpuUtilization` (per-vGPU SM / memory-controller / encoder / decoder
//! utilization). Same rules as `ffi.rs`: the symbol is looked up before the call (a driver
//! without it gives [`RawError::MissingSymbol`], never a panic), handles go back only to the
//! library that produced them.
#![allow(
    unsafe_code,
    reason = "nvmlDeviceGetVgpuUtilization has no safe wrapper in nvml-wrapper 0.13; each block states its SAFETY"
)]
use std::ffi::c_uint;
use std::ptr;

use nvml_wrapper::{Device, Nvml};
use nvml_wrapper_sys::bindings::{
    nvmlValue_t, nvmlValueType_enum_NVML_VALUE_TYPE_DOUBLE,
    nvmlValueType_enum_NVML_VALUE_TYPE_UNSIGNED_INT,
    nvmlValueType_enum_NVML_VALUE_TYPE_UNSIGNED_LONG,
    nvmlValueType_enum_NVML_VALUE_TYPE_UNSIGNED_LONG_LONG, nvmlValueType_t,
    nvmlVgpuInstanceUtilizationSample_t,
};

use super::ffi::{RawError, check, dev};

/// `nvmlValueType_t` members, named as in nvml.h.
const VALUE_DOUBLE: nvmlValueType_t = nvmlValueType_enum_NVML_VALUE_TYPE_DOUBLE;
const VALUE_UINT: nvmlValueType_t = nvmlValueType_enum_NVML_VALUE_TYPE_UNSIGNED_INT;
const VALUE_ULONG: nvmlValueType_t = nvmlValueType_enum_NVML_VALUE_TYPE_UNSIGNED_LONG;
const VALUE_ULONGLONG: nvmlValueType_t = nvmlValueType_enum_NVML_VALUE_TYPE_UNSIGNED_LONG_LONG;

/// `NVML_ERROR_INSUFFICIENT_SIZE`.
const INSUFFICIENT_SIZE: u32 = 7;
/// More vGPUs than any GPU runs (a fully split GPU has 7; time-sliced ones up to 32): a
/// driver reporting more is not believed, so the buffer stays bounded.
const MAX_SAMPLES: u32 = 64;

/// One vGPU instance's utilization sample, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawVgpuUtilization {
    pub vgpu_instance: u32,
    /// CPU time of the sample, µs.
    pub time_stamp: u64,
    pub sm: u32,
    pub mem: u32,
    pub enc: u32,
    pub dec: u32,
}

/// The value of an `nvmlValue_t` of type `value_type` as a whole percentage (clamped to 100).
#[allow(
    clippy::useless_conversion,
    reason = "`unsigned long` is 64 bits on Linux x86-64 but 32 on other targets"
)]
fn percent(value: nvmlValue_t, value_type: nvmlValueType_t) -> u32 {
    // SAFETY: `value_type` is what NVML wrote into `sampleValType` for this call: it names the
    // member of the union NVML filled; every member is plain data of at most 8 bytes.
    let v: u64 = unsafe {
        match value_type {
            VALUE_UINT => u64::from(value.uiVal),
            VALUE_ULONG => u64::from(value.ulVal),
            VALUE_ULONGLONG => value.ullVal,
            VALUE_DOUBLE if value.dVal.is_finite() => value.dVal.clamp(0.0, 100.0).round() as u64,
            _ => 0,
        }
    };
    v.min(100) as u32
}

/// `nvmlDeviceGetVgpuUtilization`: the samples newer than `last_seen` (µs), one per vGPU.
pub(crate) fn vgpu_utilization(
    nvml: &Nvml,
    device: &Device<'_>,
    last_seen: u64,
) -> Result<Vec<RawVgpuUtilization>, RawError> {
    let f = match nvml.lib().nvmlDeviceGetVgpuUtilization.as_ref() {
        Ok(f) => *f,
        Err(_) => return Err(RawError::MissingSymbol("nvmlDeviceGetVgpuUtilization")),
    };
    let name = "nvmlDeviceGetVgpuUtilization";
    let mut value_type: nvmlValueType_t = VALUE_UINT;
    let mut count: c_uint = 0;
    // SAFETY: the documented size query: a NULL buffer with `*count == 0`; `value_type` and
    // `count` are locals the call writes; the device handle is of this library (`dev`).
    let rc = unsafe {
        f(
            dev(device),
            last_seen,
            &mut value_type,
            &mut count,
            ptr::null_mut(),
        )
    };
    if rc != INSUFFICIENT_SIZE {
        // SUCCESS here means no vGPU has a newer sample.
        return check(name, rc).map(|()| Vec::new());
    }
    let capacity = count.min(MAX_SAMPLES);
    // SAFETY: a C struct of integers and unions of integers/doubles: all-zero is a valid value.
    let zero: nvmlVgpuInstanceUtilizationSample_t = unsafe { std::mem::zeroed() };
    let mut buf = vec![zero; capacity as usize];
    let mut count = capacity;
    // SAFETY: `buf` holds `count` samples, the capacity passed in `count`; the other pointers
    // are locals.
    let rc = unsafe {
        f(
            dev(device),
            last_seen,
            &mut value_type,
            &mut count,
            buf.as_mut_ptr(),
        )
    };
    check(name, rc)?;
    buf.truncate(count.min(capacity) as usize);
    Ok(buf
        .iter()
        .map(|s| RawVgpuUtilization {
            vgpu_instance: s.vgpuInstance,
            time_stamp: s.timeStamp,
            sm: percent(s.smUtil, value_type),
            mem: percent(s.memUtil, value_type),
            enc: percent(s.encUtil, value_type),
            dec: percent(s.decUtil, value_type),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_by_their_type_and_clamped() {
        let v = nvmlValue_t { ullVal: 250 };
        assert_eq!(percent(v, VALUE_ULONGLONG), 100);
        let v = nvmlValue_t { dVal: 42.4 };
        assert_eq!(percent(v, VALUE_DOUBLE), 42);
        let v = nvmlValue_t { dVal: f64::NAN };
        assert_eq!(percent(v, VALUE_DOUBLE), 0);
        let mut v = nvmlValue_t { ullVal: 0 };
        v.uiVal = 37;
        assert_eq!(percent(v, VALUE_UINT), 37);
        assert_eq!(percent(v, 99), 0, "an unknown type is no figure");
    }
}
