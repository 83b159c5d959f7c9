//! Turning one observation into what vCenter stores: the `vmig.mig/v1` JSON document
//! (`mig::report::HostReport`) and the one-line summary people read in the vSphere Client.
//!
//! Pure functions only: no clock, no NVML, no network, so the exact text is unit-tested.
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use mig::report::{GpuReport, HostReport, MigModeReport, SCHEMA_V1};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// This agent's version, as published in `agent_version`.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Assemble the published document.
pub fn host_report(
    host_uuid: &str,
    generation: u64,
    observed_at: &str,
    heartbeat_interval_s: u64,
    gpus: &[GpuReport],
) -> HostReport {
    HostReport {
        schema: SCHEMA_V1.to_string(),
        agent_version: AGENT_VERSION.to_string(),
        host_uuid: host_uuid.to_string(),
        generation,
        observed_at: observed_at.to_string(),
        heartbeat_interval_s,
        usage: None,
        gpus: gpus.to_vec(),
    }
}

/// A stable digest of the observed state alone (not its time or generation): two
/// observations with the same fingerprint are the same state and need no new generation.
pub fn fingerprint(gpus: &[GpuReport]) -> String {
    let json = serde_json::to_vec(gpus).unwrap_or_default();
    hex::encode(Sha256::digest(&json))
}

/// The one-line summary, e.g.
/// `2×A100-40GB MIG on | free: 3g.20gb×1 1g.5gb×2 | vGPU: grid_a100-3-20c×1`.
pub fn summary(gpus: &[GpuReport]) -> String {
    if gpus.is_empty() {
        return "no NVIDIA GPU seen by NVML".to_string();
    }
    // GPUs grouped by (model, MIG status) in order of first appearance.
    let mut groups: Vec<(String, String, usize)> = Vec::new();
    let mut free: BTreeMap<&str, u32> = BTreeMap::new();
    let mut vgpus: BTreeMap<&str, u32> = BTreeMap::new();
    let mut errors = Vec::new();
    for gpu in gpus {
        let model = short_model(gpu);
        let mode = mode_text(gpu.mig_mode);
        match groups
            .iter_mut()
            .find(|(m, s, _)| *m == model && *s == mode)
        {
            Some(group) => group.2 += 1,
            None => groups.push((model, mode, 1)),
        }
        for (profile, count) in &gpu.free {
            *free.entry(profile.as_str()).or_default() += count;
        }
        for gi in &gpu.gpu_instances {
            if let (true, Some(t)) = (gi.in_use, gi.vgpu_type.as_deref()) {
                *vgpus.entry(t).or_default() += 1;
            }
        }
        if gpu.error.is_some() {
            errors.push(gpu.index.to_string());
        }
    }
    let mut parts = vec![
        groups
            .iter()
            .map(|(model, mode, n)| format!("{n}×{model} {mode}"))
            .collect::<Vec<_>>()
            .join(", "),
    ];
    if gpus.iter().any(|g| g.mig_mode.is_some_and(|m| m.current)) {
        let mut free: Vec<(&str, u32)> = free.into_iter().filter(|(_, n)| *n > 0).collect();
        // Largest profiles first: that is what an admin looks for.
        free.sort_by(|a, b| slices(b.0).cmp(&slices(a.0)).then(a.0.cmp(b.0)));
        let free = if free.is_empty() {
            "none".to_string()
        } else {
            free.iter()
                .map(|(p, n)| format!("{p}×{n}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        parts.push(format!("free: {free}"));
    }
    if !vgpus.is_empty() {
        parts.push(format!(
            "vGPU: {}",
            vgpus
                .iter()
                .map(|(t, n)| format!("{t}×{n}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    if !errors.is_empty() {
        parts.push(format!("NVML error on GPU {}", errors.join(",")));
    }
    parts.join(" | ")
}

fn short_model(gpu: &GpuReport) -> String {
    gpu.model
        .as_deref()
        .and_then(mig::GpuModel::by_key)
        .map(|m| m.short_name.to_string())
        .unwrap_or_else(|| gpu.name.trim_start_matches("NVIDIA ").to_string())
}

fn mode_text(mode: Option<MigModeReport>) -> String {
    match mode {
        None => "no MIG".into(),
        Some(MigModeReport {
            current: true,
            pending: true,
        }) => "MIG on".into(),
        Some(MigModeReport {
            current: false,
            pending: false,
        }) => "MIG off".into(),
        Some(MigModeReport {
            current: false,
            pending: true,
        }) => "MIG off (on after reset)".into(),
        Some(MigModeReport {
            current: true,
            pending: false,
        }) => "MIG on (off after reset)".into(),
    }
}

/// Compute slices of a profile name (`3g.20gb` → 3), for ordering only.
fn slices(profile: &str) -> u32 {
    profile
        .split('g')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// RFC 3339 UTC time with second precision (`2026-11-26T14:02:11Z`); a clock before 1970
/// reads as the epoch.
pub fn rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i64::try_from(secs)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        // Only a clock past the year 9999, which RFC 3339 cannot write, gets here.
        .unwrap_or_else(|| "9999-12-31T23:59:59Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mig::report::GiReport;
    use mig::{GiProfileId, GpuInstanceId, Placement};
    use std::time::Duration;

    fn gpu(index: u32, mode: Option<(bool, bool)>, free: &[(&str, u32)]) -> GpuReport {
        GpuReport {
            sliced_types: Vec::new(),
            timesliced: None,
            index,
            uuid: format!("GPU-{index}"),
            name: "NVIDIA A100-PCIE-40GB".into(),
            pci_bus_id: format!("00000000:{:02X}:00.0", 0x3b + index),
            model: None,
            mig_mode: mode.map(|(current, pending)| MigModeReport { current, pending }),
            gpu_instances: vec![],
            free: free.iter().map(|(p, n)| (p.to_string(), *n)).collect(),
            largest_placeable: None,
            fragmentation: 0.0,
            placeable_vgpu_types: vec![],
            error: None,
            nvml_free: None,
            layout_state: None,
            geometry: None,
        }
    }

    #[test]
    fn summary_reads_like_the_issue() {
        let mut a = gpu(0, Some((true, true)), &[("3g.20gb", 1), ("1g.5gb", 1)]);
        a.gpu_instances.push(GiReport {
            vgpus: Vec::new(),
            gi_id: GpuInstanceId(2),
            profile_id: GiProfileId(9),
            profile: "3g.20gb".into(),
            placement: Placement { start: 0, size: 4 },
            compute_instances: vec![],
            in_use: true,
            vm: Some("render-01".into()),
            vgpu_type: Some("grid_a100-3-20c".into()),
            processes: vec![],
        });
        let b = gpu(1, Some((true, true)), &[("1g.5gb", 1)]);
        assert_eq!(
            summary(&[a, b]),
            "2×A100-PCIE-40GB MIG on | free: 3g.20gb×1 1g.5gb×2 | vGPU: grid_a100-3-20c×1"
        );
    }

    #[test]
    fn summary_shows_pending_modes_and_errors() {
        let mut c = gpu(1, Some((false, true)), &[]);
        c.error = Some("NVML: GPU is lost".into());
        let s = summary(&[gpu(0, Some((false, false)), &[]), c, gpu(2, None, &[])]);
        assert_eq!(
            s,
            "1×A100-PCIE-40GB MIG off, 1×A100-PCIE-40GB MIG off (on after reset), 1×A100-PCIE-40GB no MIG | NVML error on GPU 1"
        );
        assert_eq!(summary(&[]), "no NVIDIA GPU seen by NVML");
        assert_eq!(
            summary(&[gpu(0, Some((true, true)), &[])]),
            "1×A100-PCIE-40GB MIG on | free: none"
        );
    }

    #[test]
    fn fingerprint_ignores_nothing_but_time() {
        let a = vec![gpu(0, Some((true, true)), &[("1g.5gb", 7)])];
        let mut b = a.clone();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        b[0].free.insert("1g.5gb".into(), 6);
        assert_ne!(fingerprint(&a), fingerprint(&b));
        let r1 = host_report("u", 1, "2026-01-01T00:00:00Z", 300, &a);
        let r2 = host_report("u", 1, "2026-01-01T00:00:05Z", 300, &a);
        assert_eq!(fingerprint(&r1.gpus), fingerprint(&r2.gpus));
        assert_eq!(r1.schema, "vmig.mig/v1");
    }

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_798_294_931)),
            "2026-12-26T14:22:11Z"
        );
    }
}
