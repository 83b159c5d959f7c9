//! What every layout command reads first: the layout file (a path, stdin or the built-in
//! layouts) and the GPUs as the layout code sees them.
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use mig::GpuInstanceId;

use super::builtin;
use super::config::LayoutFile;
use super::error::LayoutError;
use super::host::GpuView;
use crate::error::{AgentError, InstanceUser};
use crate::gpu_selector::GpuSelector;
use crate::nvml::{Driver, Gpu};

/// Which layout a command works with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayoutSelection {
    /// Layout file in mig-parted's v1 format (`-` for stdin); the built-in layouts when `None`.
    pub file: Option<PathBuf>,
    /// Named config in the file (may be `None` when the file has only one).
    pub config: Option<String>,
    /// Only this GPU; the config must select it.
    pub gpu: Option<GpuSelector>,
}

/// Read the layout file the selection names (or the built-in one).
pub fn load(selection: &LayoutSelection) -> Result<LayoutFile, LayoutError> {
    match &selection.file {
        None => Ok(builtin::default_layouts()?),
        Some(p) if p.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| LayoutError::Read {
                    path: "<stdin>".into(),
                    source,
                })?;
            Ok(LayoutFile::parse("<stdin>", &text)?)
        }
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| LayoutError::Read {
                path: p.display().to_string(),
                source,
            })?;
            Ok(LayoutFile::parse(&p.display().to_string(), &text)?)
        }
    }
}

/// One read of every GPU: the handles and what the layout code needs to know about each.
pub fn read_host(driver: &Driver) -> Result<(Vec<Gpu<'_>>, Vec<GpuView>), AgentError> {
    let gpus = driver.gpus().map_err(|e| AgentError::Nvml {
        gpu: None,
        operation: "list GPUs".into(),
        source: e,
    })?;
    let mut views = Vec::with_capacity(gpus.len());
    for gpu in &gpus {
        views.push(read_view(gpu)?);
    }
    Ok((gpus, views))
}

/// Read one GPU.
pub fn read_view(gpu: &Gpu<'_>) -> Result<GpuView, AgentError> {
    let s = crate::observe::observe_gpu(gpu)
        .map_err(|e| AgentError::nvml(gpu.index(), "read the MIG state", e))?;
    let pci = gpu.device().pci_info().ok();
    let mut users: BTreeMap<GpuInstanceId, Vec<String>> = BTreeMap::new();
    for p in &s.processes {
        if let Some(gi) = p.gi_id {
            let u = InstanceUser::Process {
                pid: p.pid,
                name: p.name.clone(),
                ci_id: p.ci_id,
            };
            users.entry(gi).or_default().push(u.to_string());
        }
    }
    for v in &s.vgpus {
        if let Some(gi) = v.gi_id {
            let u = InstanceUser::Vgpu {
                vm_id: v.vm_id.clone(),
                vgpu_type: v.vgpu_type.clone(),
            };
            users.entry(gi).or_default().push(u.to_string());
        }
    }
    let state = if s.mig_mode.is_some_and(|m| m.current) {
        s.to_mig_state()
    } else {
        None
    };
    Ok(GpuView {
        index: s.index,
        model: s.model.as_deref().and_then(mig::GpuModel::by_key),
        name: s.name,
        uuid: s.uuid,
        pci_bus_id: s.pci_bus_id,
        pci_device: pci.as_ref().map(|p| p.pci_device_id),
        pci_subsystem: pci.as_ref().and_then(|p| p.pci_sub_system_id),
        mig_mode: s.mig_mode,
        state,
        users,
    })
}
