//! How an admin names a GPU on the command line (`-i`): a UUID or PCI bus id, which are
//! stable, or an NVML index, which is only an alias (indices can move between reboots).
//! The selector itself is parsed in `mig::gpu_selector` (layout files use it too, and `vmig`
//! validates layouts without NVML); [`resolve`] finds the GPU through NVML's own lookups.
use crate::error::AgentError;
use crate::nvml::{Driver, Gpu};

pub use mig::gpu_selector::GpuSelector;

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
