//! The synthetic fleet the scale benchmarks publish: every host gets an agent document for
//! its A100s, with layouts that vary host by host, as fresh as now.

use mig::report::{CiReport, GiReport, GpuReport, HostReport, MigModeReport, SCHEMA_V1};
use mig::{ComputeInstanceId, GpuModel, MigState, Placement};

/// The GPU model of every benchmark host.
pub(crate) const A100: &str = "a100-pcie-40gb";

/// A deterministic, varied layout for GPU `g` of host number `n`.
fn gpu_report(n: u32, g: u32) -> GpuReport {
    let model = GpuModel::by_key(A100).expect("catalog");
    let layouts: [&[(&str, u32)]; 5] = [
        &[],
        &[("3g.20gb", 4)],
        &[("3g.20gb", 4), ("2g.10gb", 0), ("1g.5gb", 2)],
        &[("1g.5gb", 0), ("1g.5gb", 3), ("1g.5gb", 6)],
        &[("7g.40gb", 0)],
    ];
    let mut state = MigState::new(model);
    let mut gis = Vec::new();
    for (k, (name, start)) in layouts[((n + g) % 5) as usize].iter().enumerate() {
        let p = model.gi_profile_by_name(name).expect("profile");
        let placement = Placement::new(*start, p.memory_slices);
        let Ok(id) = state.create_gi(p.id, Some(placement)) else {
            continue;
        };
        let ci = p
            .ci_profiles
            .iter()
            .find(|c| c.is_default)
            .unwrap_or(&p.ci_profiles[0]);
        let busy = k % 2 == 0;
        gis.push(GiReport {
            vgpus: Vec::new(),
            gi_id: id,
            profile_id: p.id,
            profile: p.name.to_string(),
            placement,
            compute_instances: vec![CiReport {
                ci_id: ComputeInstanceId(0),
                profile_id: Some(ci.id),
                profile: ci.name.to_string(),
                uuid: format!("MIG-{n:05}-{g}-{}", id.0),
            }],
            in_use: busy,
            vm: busy.then(|| format!("vm-{n}-{g}-{k}")),
            vgpu_type: busy.then(|| mig::vgpu::vgpu_types_for(model, p).remove(0)),
            processes: vec![],
        });
    }
    GpuReport {
        sliced_types: Vec::new(),
        timesliced: None,
        index: g,
        uuid: format!("GPU-{n:08}-{g:04}"),
        name: model.nvml_name.to_string(),
        pci_bus_id: format!("00000000:{:02X}:00.0", 0x3b + g),
        model: Some(A100.to_string()),
        mig_mode: Some(MigModeReport {
            current: true,
            pending: true,
        }),
        gpu_instances: gis,
        free: Default::default(),
        largest_placeable: state.largest_placeable().map(|p| p.name.to_string()),
        fragmentation: state.fragmentation(),
        placeable_vgpu_types: vec![],
        error: None,
        nvml_free: None,
        layout_state: None,
        geometry: None,
    }
}

/// The agent document of host number `n` (`DC0_C{n / hosts}_H{n % hosts}`).
pub(crate) fn host_doc(n: u32, gpus: u32, observed: &str) -> HostReport {
    HostReport {
        schema: SCHEMA_V1.to_string(),
        agent_version: "0.1.0".to_string(),
        host_uuid: format!("host-{n}"),
        generation: 1,
        observed_at: observed.to_string(),
        heartbeat_interval_s: 3600,
        usage: None,
        gpus: (0..gpus).map(|g| gpu_report(n, g)).collect(),
    }
}

/// Now, as agents write `observed` (RFC 3339, whole seconds, UTC: `2026-04-12T13:20:00Z`).
pub(crate) fn now_rfc3339() -> String {
    // The simulator has no clock of ours; the document only needs to be fresh.
    let now = time::OffsetDateTime::now_utc();
    time::OffsetDateTime::from_unix_timestamp(now.unix_timestamp())
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::now_rfc3339;

    #[test]
    fn now_is_what_date_u_printed() {
        // `date -u +%Y-%m-%dT%H:%M:%SZ` gave this shape before the `time` crate did.
        let now = now_rfc3339();
        let b = now.as_bytes();
        assert_eq!(b.len(), 20, "{now}");
        for (i, c) in b.iter().enumerate() {
            let want_digit = !matches!(i, 4 | 7 | 10 | 13 | 16 | 19);
            assert_eq!(c.is_ascii_digit(), want_digit, "{now}");
        }
        assert_eq!(
            [b[4], b[7], b[10], b[13], b[16], b[19]],
            *b"--T::Z",
            "{now}"
        );
    }
}
