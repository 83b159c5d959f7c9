//! Is a layout possible on the GPUs it will reach? Checked before `vmig layout set` writes
//! anything and before `vmig rollout` puts a host in maintenance mode.
//!
//! The layout file has already been parsed with the agent's own rules (`mig::layout_file`),
//! which resolves every entry with a `device-filter` on the models it names. What remains is
//! what depends on the hosts: each GPU an agent reports is matched to its entry the way the
//! agent does it (the last entry whose `devices` and `device-filter` select it), and that
//! entry must resolve on the GPU's model. Entries without a filter must resolve on at least
//! one model vmig knows, so a layout no GPU could hold is refused even where no agent
//! reported yet.
use mig::gpu_selector::{GpuSelector, PciBusId};
use mig::layout_file::{Devices, Entry, LayoutFile};
use mig::report::GpuReport;

/// Whether `entry` selects `gpu` (as `agent::layout::host::GpuView::is_selected_by`; the
/// document has no PCI subsystem id, so a filter naming one matches on the device id only).
fn selects(entry: &Entry, gpu: &GpuReport) -> bool {
    let named = match &entry.devices {
        Devices::All => true,
        Devices::List(l) => l.iter().any(|s| match s {
            GpuSelector::Index(i) => *i == gpu.index,
            GpuSelector::Uuid(u) => u.eq_ignore_ascii_case(&gpu.uuid),
            GpuSelector::PciBusId(p) => PciBusId::parse(&gpu.pci_bus_id) == Some(*p),
        }),
    };
    let word = gpu.catalog_model().map(mig::GpuModel::pci_device_id_word);
    let filtered = entry.device_filter.is_empty()
        || word.is_some_and(|w| entry.device_filter.iter().any(|f| f.device == w));
    named && filtered
}

/// The entry of `config` that applies to `gpu`, if any.
pub fn entry_for<'f>(file: &'f LayoutFile, config: &str, gpu: &GpuReport) -> Option<&'f Entry> {
    file.config(Some(config))
        .ok()?
        .entries
        .iter()
        .rev()
        .find(|e| selects(e, gpu))
}

/// Checks config `name` of `file` against the GPUs `(host, gpu)` it will reach. `Ok` holds
/// notes for the admin (GPUs the layout does not select); `Err` the reason it is refused.
pub fn check(
    file: &LayoutFile,
    name: &str,
    gpus: &[(String, GpuReport)],
) -> Result<Vec<String>, String> {
    let config = file.config(Some(name)).map_err(|e| e.to_string())?;
    for e in config.entries.iter().filter(|e| e.device_filter.is_empty()) {
        let mut first_err = None;
        let fits_somewhere = mig::catalog()
            .iter()
            .any(|m| match file.target_for(name, e, m) {
                Ok(_) => true,
                Err(err) => {
                    first_err.get_or_insert(err);
                    false
                }
            });
        if !fits_somewhere {
            return Err(format!(
                "entry {} of `{name}` cannot exist on any GPU vmig knows: {}",
                e.index,
                first_err.map(|e| e.to_string()).unwrap_or_default()
            ));
        }
    }
    let mut notes = Vec::new();
    for (host, gpu) in gpus {
        let Some(model) = gpu.catalog_model() else {
            notes.push(format!(
                "{host} GPU {} ({}) is not a MIG model vmig knows; the agent leaves it",
                gpu.index, gpu.name
            ));
            continue;
        };
        match entry_for(file, name, gpu) {
            None => notes.push(format!(
                "{host} GPU {} ({}) is not selected by `{name}`; the agent leaves it as it is",
                gpu.index, gpu.name
            )),
            Some(e) => {
                file.target_for(name, e, model)
                    .map_err(|err| format!("{host} GPU {} ({}): {err}", gpu.index, model.key))?;
            }
        }
    }
    Ok(notes)
}
