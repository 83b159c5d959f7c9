//! Entry points for the cargo-fuzz targets in `mig/fuzz/` and the stable seed-corpus test
//! (`tests/fuzz_seeds.rs`). Each one runs a parser of outside input the way its readers do
//! and must never panic, whatever the bytes: the `vmig.mig/v1` document comes from a vCenter
//! custom attribute anyone with that privilege can edit, and vGPU type names come from
//! vCenter and from admins. Where a parser promises a round trip, the entry point checks it,
//! so a fuzzer also finds wrong answers, not only crashes. Pure: no I/O, like the crate.
#![doc(hidden)]
use crate::report::{GpuReport, HostReport};
use crate::vgpu::VgpuType;
use crate::{Placement, best_fit_placement};

/// Reads `data` as a published `vmig.mig/v1` document, then does what `vmig` does with one:
/// rebuilds each GPU's layout as a [`MigState`] from the reported ids and placements,
/// validates it and, when valid, asks for capacity and fragmentation; parses every vGPU type
/// name in it. A readable document must also survive `to_json` → `from_json` unchanged.
pub fn report(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let report = match HostReport::from_json(text) {
        Ok(r) => r,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let written = report.to_json();
    let again = match HostReport::from_json(&written) {
        Ok(r) => r,
        Err(e) => panic!("a report vmig read does not read back after to_json: {e}\n{written}"),
    };
    // `fragmentation` is an f64 and serde_json's default float parsing may differ in the
    // last bit; everything else must come back exactly.
    assert_eq!(
        without_floats(&again),
        without_floats(&report),
        "report changed on a round trip"
    );
    for gpu in &report.gpus {
        reader_view(gpu);
    }
}

fn without_floats(r: &HostReport) -> HostReport {
    let mut r = r.clone();
    for g in &mut r.gpus {
        g.fragmentation = 0.0;
    }
    r
}

/// The reader's side of one GPU: model lookup, reported layout as a state, queries on it.
fn reader_view(gpu: &GpuReport) {
    for name in &gpu.placeable_vgpu_types {
        vgpu_type(name.as_bytes());
    }
    for gi in &gpu.gpu_instances {
        if let Some(t) = &gi.vgpu_type {
            vgpu_type(t.as_bytes());
        }
        placement_round_trip(gi.placement);
    }
    let Some(model) = gpu.catalog_model() else {
        return;
    };
    for gi in &gpu.gpu_instances {
        let _ = model.gi_id_for(gi.placement);
    }
    // What `vmig` does with a report: the reported layout as a state, then queries on it.
    let Ok(state) = gpu.to_state(model) else {
        return;
    };
    let _ = (state.largest_placeable(), state.fragmentation());
    let _ = state.occupied_memory_mask();
    for p in model.gi_profiles {
        let _ = state.remaining_gi_capacity(p.id);
        let _ = state.free_placements(p.id);
        let _ = best_fit_placement(&state, p.id);
    }
}

/// `start:size` as shown must parse back to the same placement (it is what `vmig` prints and
/// what an admin pastes back into `--placement`).
fn placement_round_trip(p: Placement) {
    let shown = p.to_string();
    match shown.parse::<Placement>() {
        Ok(back) => assert_eq!(back, p, "placement {shown} changed on a round trip"),
        Err(_) => assert_eq!(p.size, 0, "placement {shown} does not parse back"),
    }
    let _ = (p.mask(), p.overlaps(p), p.contains(p));
}

/// Parses `data` as a vGPU type name, as vCenter and admins spell them. A parsed type must
/// print as a name that parses back to the same type, and map to profiles without panicking.
pub fn vgpu_type(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(t) = VgpuType::parse(text) else {
        return;
    };
    let shown = t.to_string();
    assert_eq!(
        VgpuType::parse(&shown).as_ref(),
        Some(&t),
        "vGPU type {text:?} printed as {shown:?} does not parse back"
    );
    let _ = (t.is_mig_backed(), t.mig_profile_name(), t.base_name());
    for model in crate::catalog() {
        let _ = t.gi_profile(model);
    }
    let _ = t.gpu_models().count();
}
