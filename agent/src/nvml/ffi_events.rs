//! The raw XID event calls: `nvmlEventSetCreate`, `nvmlDeviceRegisterEvents`,
//! `nvmlEventSetWait_v2`, `nvmlEventSetFree` (the symbols nvml-wrapper 0.13's `EventSet` uses).
//! Raw rather than through `EventSet<'nvml>` because the set must live next to the `Driver`
//! that owns the `Nvml` it borrows from (the sampler keeps both), which the borrow cannot say.
//! Same rules as `ffi.rs`: symbols looked up before the call, handles go back only to the
//! library that produced them; the set handle is kept as an integer and never dereferenced.
#![allow(
    unsafe_code,
    reason = "the event-set handle cannot live beside the Nvml it borrows from in nvml-wrapper 0.13; each block states its SAFETY"
)]
use nvml_wrapper::{Device, Nvml};
use nvml_wrapper_sys::bindings::{nvmlEventData_t, nvmlEventSet_t};

use super::ffi::{RawError, check, dev};

/// `nvmlEventTypeXidCriticalError`.
const EVENT_TYPE_XID: u64 = 8;
/// `NVML_ERROR_TIMEOUT`: `nvmlEventSetWait_v2` found no event in time.
const TIMEOUT: u32 = 10;

/// An event set's handle, as an integer (opaque; only passed back to its library).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawEventSet(usize);

/// One delivered XID event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawXid {
    /// The device handle NVML names, as an integer (to match against registered devices).
    pub device: usize,
    /// `eventData`: the XID (999: unknown).
    pub xid: u64,
    /// `gpuInstanceId` (0xFFFFFFFF: none).
    pub gpu_instance: u32,
}

/// The symbol `$name` of `$nvml`'s library, or return [`RawError::MissingSymbol`].
macro_rules! symbol {
    ($nvml:expr, $name:ident) => {
        match $nvml.lib().$name.as_ref() {
            Ok(f) => *f,
            Err(_) => return Err(RawError::MissingSymbol(stringify!($name))),
        }
    };
}

/// `nvmlEventSetCreate`.
pub(crate) fn create(nvml: &Nvml) -> Result<RawEventSet, RawError> {
    let f = symbol!(nvml, nvmlEventSetCreate);
    let mut set: nvmlEventSet_t = std::ptr::null_mut();
    // SAFETY: `set` is a local out-pointer the call writes.
    check("nvmlEventSetCreate", unsafe { f(&mut set) })?;
    Ok(RawEventSet(set as usize))
}

/// `nvmlDeviceRegisterEvents(device, nvmlEventTypeXidCriticalError, set)`.
pub(crate) fn register_xid(
    nvml: &Nvml,
    device: &Device<'_>,
    set: RawEventSet,
) -> Result<(), RawError> {
    let f = symbol!(nvml, nvmlDeviceRegisterEvents);
    // SAFETY: the device and the set are handles of this library (`dev`, `create`).
    let rc = unsafe { f(dev(device), EVENT_TYPE_XID, set.0 as nvmlEventSet_t) };
    check("nvmlDeviceRegisterEvents", rc)
}

/// `nvmlEventSetWait_v2` with a zero timeout: the next pending event, `None` when there is none.
pub(crate) fn poll(nvml: &Nvml, set: RawEventSet) -> Result<Option<RawXid>, RawError> {
    let f = symbol!(nvml, nvmlEventSetWait_v2);
    // SAFETY: a C struct of a handle and integers: all-zero is a valid value.
    let mut data: nvmlEventData_t = unsafe { std::mem::zeroed() };
    // SAFETY: `data` is a local the call writes; the set is of this library.
    let rc = unsafe { f(set.0 as nvmlEventSet_t, &mut data, 0) };
    if rc == TIMEOUT {
        return Ok(None);
    }
    check("nvmlEventSetWait_v2", rc)?;
    Ok(Some(RawXid {
        device: data.device as usize,
        xid: if data.eventType & EVENT_TYPE_XID != 0 {
            data.eventData
        } else {
            0
        },
        gpu_instance: data.gpuInstanceId,
    }))
}

/// `nvmlEventSetFree`.
pub(crate) fn free(nvml: &Nvml, set: RawEventSet) -> Result<(), RawError> {
    let f = symbol!(nvml, nvmlEventSetFree);
    // SAFETY: the set is of this library and is not used again by the caller.
    check("nvmlEventSetFree", unsafe { f(set.0 as nvmlEventSet_t) })
}

/// The integer a device handle is matched by.
pub(crate) fn device_key(device: &Device<'_>) -> usize {
    dev(device) as usize
}
