//! XID events: `nvmlEventSetCreate`, `nvmlDeviceRegisterEvents`, `nvmlEventSetWait_v2`,
//! `nvmlEventSetFree`, answered from the XID queue `nvml-sim xid` fills in the state file
//! (`SimGpu::xids`).
//!
//! An event set lives in this process only (a table below; its handle is a tagged index, not a
//! pointer, so a forged or freed one is refused). It remembers per registered GPU the last XID
//! sequence number it delivered, starting at the newest one when the GPU is registered: as
//! with the real driver, errors before registration are not delivered. Only
//! `nvmlEventTypeXidCriticalError` is supported; other event types are `NOT_SUPPORTED`, which
//! is what a driver without event support answers too.
use std::ffi::{c_uint, c_ulonglong};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::types::{NvmlReturn, RawHandle};
use super::{guard, non_null, put, resolve_gpu, with_state};
use crate::code::{NvmlCode, NvmlResult};
use crate::handle::Handle;

/// `nvmlEventTypeXidCriticalError`.
pub const EVENT_TYPE_XID: c_ulonglong = 8;
/// `eventData` NVML uses for an XID it cannot name.
const XID_UNKNOWN: c_ulonglong = 999;
/// Tag in the top byte of an event-set handle ('E'), distinct from device handles ('N').
const SET_MAGIC: u64 = 0x45;
/// How often a blocking wait looks at the state file again.
const POLL: Duration = Duration::from_millis(20);

/// `nvmlEventData_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct EventData {
    pub device: RawHandle,
    pub event_type: c_ulonglong,
    pub event_data: c_ulonglong,
    pub gpu_instance_id: c_uint,
    pub compute_instance_id: c_uint,
}

/// One event set: per registered GPU index, the last XID sequence number delivered.
#[derive(Debug, Default)]
struct EventSet {
    gpus: Vec<(u32, u64)>,
}

/// Live sets by slot; a freed slot is `None` and never reused (so a stale handle stays invalid).
static SETS: Mutex<Vec<Option<EventSet>>> = Mutex::new(Vec::new());

fn sets() -> MutexGuard<'static, Vec<Option<EventSet>>> {
    SETS.lock().unwrap_or_else(|e| e.into_inner())
}

fn encode(slot: usize) -> RawHandle {
    ((SET_MAGIC << 56) | slot as u64) as RawHandle
}

fn decode(raw: RawHandle) -> NvmlResult<usize> {
    let v = raw as u64;
    if v >> 56 != SET_MAGIC {
        return Err(NvmlCode::INVALID_ARGUMENT);
    }
    let slot =
        usize::try_from(v & 0x00FF_FFFF_FFFF_FFFF).map_err(|_| NvmlCode::INVALID_ARGUMENT)?;
    if sets().get(slot).is_some_and(Option::is_some) {
        Ok(slot)
    } else {
        Err(NvmlCode::INVALID_ARGUMENT)
    }
}

/// `nvmlEventSetCreate`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlEventSetCreate(set: *mut RawHandle) -> NvmlReturn {
    guard(|| {
        non_null(set)?;
        // Creating a set needs an initialised library, as every call does.
        with_state(|_| Ok(()))?;
        let mut table = sets();
        table.push(Some(EventSet::default()));
        let handle = encode(table.len() - 1);
        drop(table);
        // SAFETY: `set` is the caller's out-pointer (checked non-null above), per the NVML contract.
        unsafe { put(set, handle) }
    })
}

/// `nvmlDeviceRegisterEvents`: only XID critical errors, on a whole GPU.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceRegisterEvents(
    device: RawHandle,
    event_types: c_ulonglong,
    set: RawHandle,
) -> NvmlReturn {
    guard(|| {
        let slot = decode(set)?;
        if event_types & !EVENT_TYPE_XID != 0 || event_types == 0 {
            return Err(NvmlCode::NOT_SUPPORTED);
        }
        let (gpu, newest) = with_state(|s| {
            let gpu = resolve_gpu(s, device)?;
            if !s.xid_events {
                return Err(NvmlCode::NOT_SUPPORTED);
            }
            Ok((gpu, s.gpu(gpu)?.xid_seq))
        })?;
        let mut table = sets();
        let entry = table
            .get_mut(slot)
            .and_then(Option::as_mut)
            .ok_or(NvmlCode::INVALID_ARGUMENT)?;
        if !entry.gpus.iter().any(|(g, _)| *g == gpu) {
            entry.gpus.push((gpu, newest));
        }
        Ok(())
    })
}

/// The oldest undelivered XID of `slot`, marked delivered.
fn next_event(slot: usize) -> NvmlResult<Option<EventData>> {
    let registered = sets()
        .get(slot)
        .and_then(Option::as_ref)
        .ok_or(NvmlCode::INVALID_ARGUMENT)?
        .gpus
        .clone();
    let found = with_state(|s| {
        for (gpu, seen) in &registered {
            let Ok(g) = s.gpu(*gpu) else { continue };
            if let Some(x) = g.xids.iter().find(|x| x.seq > *seen) {
                return Ok(Some((*gpu, *x)));
            }
        }
        Ok(None)
    })?;
    let Some((gpu, xid)) = found else {
        return Ok(None);
    };
    if let Some(entry) = sets().get_mut(slot).and_then(Option::as_mut)
        && let Some(seen) = entry.gpus.iter_mut().find(|(g, _)| *g == gpu)
    {
        seen.1 = xid.seq;
    }
    Ok(Some(EventData {
        device: super::raw(Handle::Device { gpu }),
        event_type: EVENT_TYPE_XID,
        event_data: if xid.xid == 0 { XID_UNKNOWN } else { xid.xid },
        // NVML's "no instance" is 0xFFFFFFFF.
        gpu_instance_id: xid.gi.unwrap_or(u32::MAX),
        compute_instance_id: u32::MAX,
    }))
}

/// `nvmlEventSetWait_v2`: the next XID, waiting up to `timeout_ms` (0: do not wait).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlEventSetWait_v2(
    set: RawHandle,
    data: *mut EventData,
    timeout_ms: c_uint,
) -> NvmlReturn {
    guard(|| {
        non_null(data)?;
        let slot = decode(set)?;
        let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
        loop {
            if let Some(event) = next_event(slot)? {
                // SAFETY: `data` is the caller's `nvmlEventData_t` out-pointer, checked non-null.
                return unsafe { put(data, event) };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(NvmlCode::TIMEOUT);
            }
            std::thread::sleep(POLL.min(deadline - now));
        }
    })
}

/// `nvmlEventSetFree`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlEventSetFree(set: RawHandle) -> NvmlReturn {
    guard(|| {
        let slot = decode(set)?;
        if let Some(entry) = sets().get_mut(slot) {
            *entry = None;
        }
        Ok(())
    })
}
