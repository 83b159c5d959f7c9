//! What a layout file says once read: named configs, their entries, the GPUs each entry
//! names and the instances it asks for — and what an entry resolves to for one GPU model.
use std::fmt;

use crate::{DesiredLayout, GpuModel};
use serde::Serialize;

use crate::gpu_selector::GpuSelector;

/// The only config version mig-parted defines.
pub const VERSION: &str = "v1";

/// How an entry names GPUs (`devices:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Devices {
    /// `all`.
    All,
    /// A list of NVML indices (mig-parted) or, as a vmig extension, GPU UUIDs and PCI bus ids.
    List(Vec<GpuSelector>),
}

/// One `device-filter` item: `0xDDDDVVVV` (PCI device id and vendor, the way NVML's
/// `pciDeviceId` packs them), optionally `:0xSSSSssss` for the subsystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceFilter {
    /// Device id in the upper 16 bits, vendor id in the lower 16.
    pub device: u32,
    /// Subsystem device/vendor word, if the filter names one.
    pub subsystem: Option<u32>,
}

impl DeviceFilter {
    /// Parse `0x20B010DE` or `0x233010DE:0x16C110DE` (hex, any case, `0x` optional).
    pub fn parse(s: &str) -> Option<DeviceFilter> {
        let hex = |t: &str| {
            let t = t.trim();
            let t = t
                .strip_prefix("0x")
                .or_else(|| t.strip_prefix("0X"))
                .unwrap_or(t);
            if t.is_empty() || t.len() > 8 {
                return None;
            }
            u32::from_str_radix(t, 16).ok()
        };
        match s.split_once(':') {
            Some((d, sub)) => Some(DeviceFilter {
                device: hex(d)?,
                subsystem: Some(hex(sub)?),
            }),
            None => Some(DeviceFilter {
                device: hex(s)?,
                subsystem: None,
            }),
        }
    }

    /// Whether a GPU with this PCI device word (and subsystem word, if known) matches.
    pub fn matches(&self, device: u32, subsystem: Option<u32>) -> bool {
        self.device == device
            && match (self.subsystem, subsystem) {
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => false,
                (None, _) => true,
            }
    }

    /// The catalog models whose PCI device word matches (ignoring the subsystem).
    pub fn catalog_models(&self) -> impl Iterator<Item = &'static GpuModel> + '_ {
        crate::catalog()
            .iter()
            .filter(|m| m.pci_device_id_word() == self.device)
    }
}

impl fmt::Display for DeviceFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08X}", self.device)?;
        if let Some(s) = self.subsystem {
            write!(f, ":0x{s:08X}")?;
        }
        Ok(())
    }
}

/// What one `mig-devices` key asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecKind {
    /// A GPU-instance profile (`3g.20gb`, `1g.5gb+me`), optionally pinned to a start slice
    /// (`3g.20gb@4`, vmig extension). Each GI gets its default CI unless `compute` says otherwise.
    Gi { profile: String, start: Option<u32> },
    /// A compute-instance profile with fewer compute slices than its GI (`1c.3g.20gb`,
    /// mig-parted form): that many CIs, packed into as few GIs of `gi` as hold them.
    Ci { ci: String, gi: String },
}

/// One `mig-devices` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    /// The key as written.
    pub key: String,
    pub kind: SpecKind,
    /// How many GIs (or CIs for [`SpecKind::Ci`]).
    pub count: u32,
    /// vmig extension: the CI profiles inside each of these GIs (default: one full-GI CI).
    pub compute: Option<Vec<String>>,
}

/// One list item of a named config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the config's list (0-based).
    pub index: usize,
    pub devices: Devices,
    /// Empty: no filter.
    pub device_filter: Vec<DeviceFilter>,
    pub mig_enabled: bool,
    /// In file order; zero counts are kept (they ask for nothing).
    pub mig_devices: Vec<DeviceSpec>,
}

/// A named config (`mig-configs: NAME: [...]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedConfig {
    pub name: String,
    pub entries: Vec<Entry>,
}

/// A parsed layout file. Keeps its text so that later errors can name lines.
#[derive(Debug, Clone)]
pub struct LayoutFile {
    pub(super) origin: String,
    pub(super) text: String,
    /// Named configs in file order.
    pub configs: Vec<NamedConfig>,
}

/// What an entry asks of one GPU, resolved for its model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `mig-enabled: false`.
    Disabled,
    /// `mig-enabled: true` with this layout.
    Enabled(DesiredLayout),
}

/// Serialisable pointer to the entry a GPU was matched by, for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryRef {
    pub config: String,
    /// 0-based index in the config's list.
    pub entry: usize,
    pub line: Option<usize>,
}
