//! XID errors as NVML events: one event set registered for `nvmlEventTypeXidCriticalError` on
//! every GPU, drained without waiting (raw calls in `ffi_events`). A driver or GPU without
//! event support (`NOT_SUPPORTED`, symbol missing) is "no XIDs reported", not an error, as for
//! the other utilization figures (docs/reported-data.md, "XID errors").
use mig::GpuInstanceId;

use super::ffi_events::{self, RawEventSet};
use super::usage::unsupported;
use super::{CallError, Driver};

/// Most events one drain takes: a GPU in an error storm must not keep the sampler busy.
pub const MAX_DRAIN: usize = 256;

/// The registered event set and the GPUs it covers.
#[derive(Debug)]
pub struct XidWatch {
    set: RawEventSet,
    /// (device handle key, GPU UUID) per registered GPU.
    devices: Vec<(usize, String)>,
}

impl XidWatch {
    /// The UUIDs of the GPUs whose XIDs this set receives.
    pub fn gpus(&self) -> impl Iterator<Item = &str> {
        self.devices.iter().map(|(_, u)| u.as_str())
    }
}

/// One XID error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XidEvent {
    pub gpu_uuid: String,
    /// The XID code (999: the driver could not name it).
    pub xid: u64,
    /// The GPU instance the driver attributes it to, if any.
    pub gi: Option<GpuInstanceId>,
}

impl Driver {
    /// Register one event set for XID errors on every GPU. `Ok(None)` when the driver has no
    /// event support or no GPU accepts the registration; GPUs that refuse are left out.
    pub fn watch_xids(&self) -> Result<Option<XidWatch>, CallError> {
        let set = match ffi_events::create(self.nvml()) {
            Ok(s) => s,
            Err(e) => {
                let e = CallError::from(e);
                return if unsupported(&e) { Ok(None) } else { Err(e) };
            }
        };
        let mut devices = Vec::new();
        let gpus = match self.gpus() {
            Ok(g) => g,
            Err(e) => {
                let _ = ffi_events::free(self.nvml(), set);
                return Err(e);
            }
        };
        for gpu in &gpus {
            let Ok(uuid) = gpu.uuid() else { continue };
            match ffi_events::register_xid(self.nvml(), &gpu.device, set) {
                Ok(()) => devices.push((ffi_events::device_key(&gpu.device), uuid)),
                Err(e) => {
                    let e = CallError::from(e);
                    if !unsupported(&e) {
                        tracing::debug!(gpu = %uuid, error = %e, "XID events not registered on this GPU");
                    }
                }
            }
        }
        if devices.is_empty() {
            let _ = ffi_events::free(self.nvml(), set);
            return Ok(None);
        }
        Ok(Some(XidWatch { set, devices }))
    }

    /// The XIDs pending on `watch`, oldest first, at most [`MAX_DRAIN`]; never waits.
    pub fn drain_xids(&self, watch: &XidWatch) -> Result<Vec<XidEvent>, CallError> {
        let mut events = Vec::new();
        while events.len() < MAX_DRAIN {
            let Some(raw) = ffi_events::poll(self.nvml(), watch.set)? else {
                break;
            };
            let Some((_, uuid)) = watch.devices.iter().find(|(d, _)| *d == raw.device) else {
                continue;
            };
            events.push(XidEvent {
                gpu_uuid: uuid.clone(),
                xid: raw.xid,
                gi: (raw.gpu_instance != u32::MAX).then_some(GpuInstanceId(raw.gpu_instance)),
            });
        }
        Ok(events)
    }

    /// Free the event set (before the driver is dropped or reloaded).
    pub fn unwatch_xids(&self, watch: XidWatch) {
        if let Err(e) = ffi_events::free(self.nvml(), watch.set) {
            tracing::debug!(error = %CallError::from(e), "cannot free the XID event set");
        }
    }
}
