//! The one validation step every reader of a `vmig.mig/v1` document runs after parsing it
//! ([`HostReport::from_json`] calls it). A document is outside input: any host with the
//! custom-attribute privilege can write any JSON there, so everything a reader later loops
//! over, multiplies or prints is bounded here, once, instead of in each reader. The limits are
//! far above what a real agent writes (docs/reported-data.md lists them) so they only ever
//! reject documents no driver could have produced.

use super::limits::{
    MAX_COMPUTE_INSTANCES, MAX_ERROR_CHARS, MAX_GENERATION, MAX_GPUS, MAX_HEARTBEAT_INTERVAL_S,
    MAX_LIST_ENTRIES, MAX_MEMORY_SLICES, MAX_PROCESSES, MAX_TEXT_CHARS, clip, count, id,
    rfc3339_shape, text,
};
use super::{GiReport, GpuReport, HostReport};
use crate::catalog::GpuModel;

/// Checks `report` against the limits above and the geometry of each GPU's catalog model.
/// The error is one sentence naming the first offending field.
pub fn validate(report: &HostReport) -> Result<(), String> {
    text("agent_version", &report.agent_version, MAX_TEXT_CHARS)?;
    text("host_uuid", &report.host_uuid, MAX_TEXT_CHARS)?;
    if report.generation > MAX_GENERATION {
        return Err(format!(
            "generation {} is above the largest accepted, {MAX_GENERATION}",
            report.generation
        ));
    }
    rfc3339_shape(&report.observed_at).map_err(|why| {
        format!(
            "observed_at {:?} is not an RFC 3339 time: {why}",
            clip(&report.observed_at)
        )
    })?;
    if report.heartbeat_interval_s == 0 || report.heartbeat_interval_s > MAX_HEARTBEAT_INTERVAL_S {
        return Err(format!(
            "heartbeat_interval_s {} is outside 1..={MAX_HEARTBEAT_INTERVAL_S}",
            report.heartbeat_interval_s
        ));
    }
    count("gpus", report.gpus.len(), MAX_GPUS)?;
    for (i, gpu) in report.gpus.iter().enumerate() {
        validate_gpu(gpu).map_err(|e| format!("gpus[{i}]: {e}"))?;
    }
    if let Some(usage) = &report.usage {
        super::usage::validate(usage, MAX_TEXT_CHARS, MAX_GPUS)?;
    }
    Ok(())
}

fn validate_gpu(gpu: &GpuReport) -> Result<(), String> {
    id("index", gpu.index)?;
    text("uuid", &gpu.uuid, MAX_TEXT_CHARS)?;
    text("name", &gpu.name, MAX_TEXT_CHARS)?;
    text("pci_bus_id", &gpu.pci_bus_id, MAX_TEXT_CHARS)?;
    if let Some(m) = &gpu.model {
        text("model", m, MAX_TEXT_CHARS)?;
    }
    if let Some(e) = &gpu.error {
        text("error", e, MAX_ERROR_CHARS)?;
    }
    if let Some(l) = &gpu.largest_placeable {
        text("largest_placeable", l, MAX_TEXT_CHARS)?;
    }
    if !(gpu.fragmentation.is_finite() && (0.0..=1.0).contains(&gpu.fragmentation)) {
        return Err(format!(
            "fragmentation {} is outside [0, 1]",
            gpu.fragmentation
        ));
    }
    count("free", gpu.free.len(), MAX_LIST_ENTRIES)?;
    for (name, n) in &gpu.free {
        text("free profile name", name, MAX_TEXT_CHARS)?;
        if *n > MAX_MEMORY_SLICES {
            return Err(format!(
                "free[{:?}] = {n} is more than {MAX_MEMORY_SLICES}",
                clip(name)
            ));
        }
    }
    count(
        "placeable_vgpu_types",
        gpu.placeable_vgpu_types.len(),
        MAX_LIST_ENTRIES,
    )?;
    for t in &gpu.placeable_vgpu_types {
        text("placeable_vgpu_types entry", t, MAX_TEXT_CHARS)?;
    }
    if let Some(l) = &gpu.layout_state {
        super::layout_state::validate(l)?;
    }
    super::vgpus::validate_gpu(gpu)?;
    // The geometry of the model when vmig knows it; the largest MIG geometry otherwise.
    let slices = gpu
        .catalog_model()
        .map_or(MAX_MEMORY_SLICES, |m: &GpuModel| {
            m.memory_slices.min(MAX_MEMORY_SLICES)
        });
    // Every GI holds at least one memory slice, so there are at most `slices` of them.
    count("gpu_instances", gpu.gpu_instances.len(), slices as usize)?;
    for (j, gi) in gpu.gpu_instances.iter().enumerate() {
        validate_gi(gi, slices).map_err(|e| format!("gpu_instances[{j}]: {e}"))?;
    }
    Ok(())
}

fn validate_gi(gi: &GiReport, slices: u32) -> Result<(), String> {
    id("gi_id", gi.gi_id.0)?;
    id("profile_id", gi.profile_id.0)?;
    text("profile", &gi.profile, MAX_TEXT_CHARS)?;
    let p = gi.placement;
    // `checked_add`: `start + size` is exactly what a hostile document overflows.
    let inside = p.size >= 1 && p.start.checked_add(p.size).is_some_and(|end| end <= slices);
    if !inside {
        return Err(format!(
            "placement start {} size {} is not inside the GPU's {slices} memory slices",
            p.start, p.size
        ));
    }
    count(
        "compute_instances",
        gi.compute_instances.len(),
        MAX_COMPUTE_INSTANCES,
    )?;
    for ci in &gi.compute_instances {
        id("ci_id", ci.ci_id.0)?;
        if let Some(pid) = ci.profile_id {
            id("compute instance profile_id", pid.0)?;
        }
        text("compute instance profile", &ci.profile, MAX_TEXT_CHARS)?;
        text("compute instance uuid", &ci.uuid, MAX_TEXT_CHARS)?;
    }
    if let Some(vm) = &gi.vm {
        text("vm", vm, MAX_TEXT_CHARS)?;
    }
    if let Some(t) = &gi.vgpu_type {
        text("vgpu_type", t, MAX_TEXT_CHARS)?;
    }
    super::vgpus::validate_gi(gi)?;
    count("processes", gi.processes.len(), MAX_PROCESSES)?;
    for pr in &gi.processes {
        if let Some(n) = &pr.name {
            text("process name", n, MAX_TEXT_CHARS)?;
        }
        if let Some(ci) = pr.ci_id {
            id("process ci_id", ci.0)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ReportError;
    use crate::report::limits::MAX_DOCUMENT_BYTES;

    const GOOD: &str = include_str!("../../fuzz/seeds/report/a100-docs-example.json");

    /// The good document with `from` replaced by `to` (which must occur).
    fn edited(from: &str, to: &str) -> String {
        assert!(GOOD.contains(from), "{from}");
        GOOD.replacen(from, to, 1)
    }

    fn reason(doc: &str) -> String {
        match HostReport::from_json(doc) {
            Err(ReportError::Invalid(r)) => r,
            other => panic!("expected an invalid report, got {other:?}"),
        }
    }

    #[test]
    fn hostile_documents_are_invalid_with_a_reason() {
        assert!(HostReport::from_json(GOOD).is_ok());
        let cases = [
            (
                r#""size": 4 }"#,
                r#""size": 4294967295 }"#,
                "placement start 4 size 4294967295",
            ),
            (
                r#""start": 4,"#,
                r#""start": 4294967295,"#,
                "not inside the GPU's 8 memory slices",
            ),
            (r#""size": 4 }"#, r#""size": 0 }"#, "size 0"),
            (
                r#""heartbeat_interval_s": 300"#,
                r#""heartbeat_interval_s": 18446744073709551615"#,
                "heartbeat_interval_s",
            ),
            (
                r#""heartbeat_interval_s": 300"#,
                r#""heartbeat_interval_s": 0"#,
                "heartbeat_interval_s 0",
            ),
            ("2026-11-26T14:02:11Z", "tomorrow", "observed_at"),
            (
                r#""generation": 17"#,
                r#""generation": 18446744073709551615"#,
                "generation 18446744073709551615",
            ),
            (
                r#""gi_id": 1"#,
                r#""gi_id": 4000000000"#,
                "gi_id 4000000000",
            ),
            (
                r#""fragmentation": 0.0"#,
                r#""fragmentation": 7.5"#,
                "fragmentation",
            ),
            (r#""1g.5gb": 4"#, r#""1g.5gb": 4000000"#, "free"),
        ];
        for (from, to, want) in cases {
            let r = reason(&edited(from, to));
            assert!(r.contains(want), "{to}: {r}");
        }
        let long = "x".repeat(MAX_TEXT_CHARS + 1);
        assert!(reason(&edited("render-01", &long)).contains("vm is longer than 256"));
        let big = " ".repeat(MAX_DOCUMENT_BYTES) + GOOD;
        assert!(matches!(
            HostReport::from_json(&big),
            Err(ReportError::TooLarge { .. })
        ));
        let gi = r#"{"gi_id":2,"profile_id":19,"profile":"1g.5gb","placement":{"start":0,"size":1},"in_use":false}"#;
        let many = [gi; 9].join(",");
        let r = reason(&edited(
            r#""gpu_instances": ["#,
            &format!(r#""gpu_instances": [{many},"#),
        ));
        assert!(
            r.contains("gpu_instances has 10 entries, more than 8"),
            "{r}"
        );
    }

    #[test]
    fn rfc3339_shapes() {
        for ok in [
            "2026-11-26T14:02:11Z",
            "2026-11-26T14:02:11.123+01:00",
            "1999-01-01t00:00:00z",
        ] {
            assert_eq!(rfc3339_shape(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "yesterday",
            "2026-13-26T14:02:11Z",
            "2026-11-26 14:02:11Z",
            "2026-11-26T14:02:11",
            "2026-11-26T14:02:11.Z",
            "0000-11-26T14:02:11Z",
            "2026-11-26T14:02:11+0100",
        ] {
            assert!(rfc3339_shape(bad).is_err(), "{bad}");
        }
    }
}
