//! How an admin names a GPU on the command line (`-i`): a UUID or PCI bus id, which are
//! stable, or an NVML index, which is only an alias (indices can move between reboots).
//! Parsed once here; [`resolve`] finds the GPU through NVML's own lookups.
use std::fmt;
use std::str::FromStr;

use crate::error::AgentError;
use crate::nvml::{Driver, Gpu, PciBusId};

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

/// Find the GPU the selector names, or say which GPUs exist.
pub fn resolve<'n>(driver: &'n Driver, selector: &GpuSelector) -> Result<Gpu<'n>, AgentError> {
    let nvml_err = |e| AgentError::Nvml {
        gpu: None,
        operation: format!("find GPU {selector}"),
        source: e,
    };
    let found = match selector {
        GpuSelector::Uuid(u) => driver.gpu_by_uuid(u).map_err(nvml_err)?,
        GpuSelector::PciBusId(p) => driver.gpu_by_pci_bus_id(p).map_err(nvml_err)?,
        GpuSelector::Index(i) => {
            let count = driver.gpu_count().map_err(nvml_err)?;
            if *i < count {
                Some(driver.gpu_by_index(*i).map_err(nvml_err)?)
            } else {
                None
            }
        }
    };
    match found {
        Some(gpu) => Ok(gpu),
        None => Err(AgentError::NoSuchGpu {
            selector: selector.to_string(),
            available: describe_all(driver),
        }),
    }
}

/// `0: NVIDIA A100-PCIE-40GB GPU-… 00000000:3B:00.0` for every GPU, best effort.
fn describe_all(driver: &Driver) -> Vec<String> {
    let Ok(gpus) = driver.gpus() else {
        return Vec::new();
    };
    gpus.iter()
        .map(|g| {
            format!(
                "{}: {} {} {}",
                g.index(),
                g.name().unwrap_or_default(),
                g.uuid().unwrap_or_default(),
                g.pci_bus_id().unwrap_or_default()
            )
        })
        .collect()
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
}
