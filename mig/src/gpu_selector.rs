//! How an admin names a GPU (`-i` on the agent's command line, `devices:` in a layout file):
//! a UUID or PCI bus id, which are stable, or an NVML index, which is only an alias (indices
//! can move between reboots). Pure parsing, shared by the agent (which resolves a selector
//! through NVML) and `vmig` (which validates layouts before writing them to vCenter).
use std::fmt;
use std::str::FromStr;

/// A PCI bus id in NVML's canonical form `DDDDDDDD:BB:DD.F` (domain, bus, device, function).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PciBusId {
    pub domain: u32,
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

impl PciBusId {
    /// Parse `[domain:]bus:device.function` in hex, any case, any domain width.
    pub fn parse(s: &str) -> Option<PciBusId> {
        let s = s.trim();
        let (rest, function) = s.rsplit_once('.')?;
        let parts: Vec<&str> = rest.split(':').collect();
        let (domain, bus, device) = match parts.as_slice() {
            [bus, device] => ("0", *bus, *device),
            [domain, bus, device] => (*domain, *bus, *device),
            _ => return None,
        };
        let hex = |t: &str, max_len: usize| {
            if t.is_empty() || t.len() > max_len {
                None
            } else {
                u32::from_str_radix(t, 16).ok()
            }
        };
        Some(PciBusId {
            domain: hex(domain, 8)?,
            bus: u8::try_from(hex(bus, 2)?).ok()?,
            device: u8::try_from(hex(device, 2)?).ok()?,
            function: u8::try_from(hex(function, 1)?).ok()?,
        })
    }
}

impl std::fmt::Display for PciBusId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:08X}:{:02X}:{:02X}.{:X}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

/// A parsed `-i` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuSelector {
    /// `GPU-…` UUID (case-insensitive).
    Uuid(String),
    /// PCI bus id in any common spelling (`0000:3B:00.0`, `3b:00.0`).
    PciBusId(PciBusId),
    /// NVML index.
    Index(u32),
}

impl FromStr for GpuSelector {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let prefix = |p: &str| {
            t.len() > p.len() && t.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p))
        };
        if prefix("GPU-") {
            return Ok(GpuSelector::Uuid(t.to_string()));
        }
        if prefix("MIG-") {
            return Err(format!(
                "'{t}' is a MIG device UUID; -i takes the parent GPU (index, GPU-… UUID or PCI bus id)"
            ));
        }
        if t.contains(':') {
            return PciBusId::parse(t)
                .map(GpuSelector::PciBusId)
                .ok_or_else(|| {
                    format!("'{t}' is not a PCI bus id (expected e.g. 0000:3B:00.0 or 3b:00.0)")
                });
        }
        t.parse::<u32>().map(GpuSelector::Index).map_err(|_| {
            format!("'{t}' is not a GPU index, GPU-… UUID or PCI bus id (e.g. 0, GPU-5d0e…, 0000:3B:00.0)")
        })
    }
}

impl fmt::Display for GpuSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuSelector::Uuid(u) => f.write_str(u),
            GpuSelector::PciBusId(p) => write!(f, "{p}"),
            GpuSelector::Index(i) => write!(f, "{i}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_each_form() {
        assert_eq!("0".parse(), Ok(GpuSelector::Index(0)));
        assert_eq!(
            "GPU-14ac2834-0d81-0508-69eb-e25264c08d21".parse(),
            Ok(GpuSelector::Uuid(
                "GPU-14ac2834-0d81-0508-69eb-e25264c08d21".into()
            ))
        );
        let pci = PciBusId {
            domain: 0,
            bus: 0x3b,
            device: 0,
            function: 0,
        };
        assert_eq!("0000:3B:00.0".parse(), Ok(GpuSelector::PciBusId(pci)));
        assert_eq!("3b:00.0".parse(), Ok(GpuSelector::PciBusId(pci)));
        assert!(
            "MIG-b6cd45f2-9655-5269-9b96-65446729d5dc"
                .parse::<GpuSelector>()
                .is_err()
        );
        assert!("first".parse::<GpuSelector>().is_err());
        assert!("-1".parse::<GpuSelector>().is_err());
    }

    proptest! {
        #[test]
        fn pci_ids_round_trip(domain in 0u32..0x1_0000, bus: u8, device in 0u8..32, function in 0u8..8) {
            let p = PciBusId { domain, bus, device, function };
            prop_assert_eq!(p.to_string().parse::<GpuSelector>(), Ok(GpuSelector::PciBusId(p)));
            let short = format!("{:04x}:{:02x}:{:02x}.{}", domain, bus, device, function);
            prop_assert_eq!(short.parse::<GpuSelector>(), Ok(GpuSelector::PciBusId(p)));
        }

        #[test]
        fn any_input_parses_or_errors_without_panic(s in ".{0,40}") {
            let _ = s.parse::<GpuSelector>();
        }
    }

    #[test]
    fn pci_bus_ids_normalise() {
        let canonical = PciBusId {
            domain: 0,
            bus: 0x3b,
            device: 0,
            function: 0,
        };
        for s in ["0000:3B:00.0", "00000000:3b:00.0", "3b:00.0", " 3B:00.0 "] {
            assert_eq!(PciBusId::parse(s), Some(canonical), "{s}");
        }
        assert_eq!(canonical.to_string(), "00000000:3B:00.0");
        for bad in ["3b:00", "zz:00.0", "0:1:2:3.0", "100:00.0", "3b:00.10", ""] {
            assert_eq!(PciBusId::parse(bad), None, "{bad}");
        }
    }
}
