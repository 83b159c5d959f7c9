//! PCI bus ids as NVML prints them and admins type them, compared in one canonical form.
//! The type lives in `mig` (layout files and `vmig` parse them too).
pub use mig::gpu_selector::PciBusId;
