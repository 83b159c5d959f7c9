//! PCI bus ids as NVML prints them and admins type them, compared in one canonical form.

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

#[cfg(test)]
mod tests {
    use super::*;

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
