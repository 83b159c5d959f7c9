//! The one validation step every reader of a `vmig.mig/v1` document runs after parsing it
//! ([`HostReport::from_json`] calls it). A document is outside input: any host with the
//! custom-attribute privilege can write any JSON there, so everything a reader later loops
//! over, multiplies or prints is bounded here, once, instead of in each reader. The limits are
//! far above what a real agent writes (docs/reported-data.md lists them) so they only ever
//! reject documents no driver could have produced.

use super::{GiReport, GpuReport, HostReport};
use crate::catalog::GpuModel;

/// Largest document accepted, in bytes. A fully partitioned 8-GPU host writes about 20 KiB.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Longest name, UUID, profile, VM or type string, in characters.
pub const MAX_TEXT_CHARS: usize = 256;
/// Longest `error` text of a GPU, in characters.
pub const MAX_ERROR_CHARS: usize = 2048;
/// Most GPUs in one document (NVML enumerates at most 64 devices per host; no ESXi host
/// carries that many).
pub const MAX_GPUS: usize = 64;
/// Most placement units of any MIG GPU (8 memory slices on A100/H100, a 12-unit grid on the
/// RTX PRO 6000 Blackwell; published geometry is accepted up to 16); also bounds GI
/// placements of GPUs outside the catalog.
pub const MAX_MEMORY_SLICES: u32 = 16;
/// Most compute instances in one GPU instance (a GI has at most 8 compute slices).
pub const MAX_COMPUTE_INSTANCES: usize = 8;
/// Largest GI or CI id, profile id or GPU index accepted. NVML's ids are small integers
/// (GI ids stay below 16, CI ids below 8, profile ids below 32).
pub const MAX_ID: u32 = 255;
/// Most processes listed on one GPU instance.
pub const MAX_PROCESSES: usize = 1024;
/// Most entries in a GPU's `free` map or `placeable_vgpu_types` list.
pub const MAX_LIST_ENTRIES: usize = 256;
/// Largest `generation` accepted: 2^53 − 1, the largest integer every JSON reader (a
/// JavaScript one included) holds exactly. An agent counting one change a second needs 285
/// million years to get there, so a larger value is a forged or broken document; the agent
/// overwrites it (see agent/src/daemon/generation.rs) instead of failing on `+ 1`.
pub const MAX_GENERATION: u64 = (1 << 53) - 1;
/// Longest heartbeat interval accepted (one day); staleness is three heartbeats, so a larger
/// value would keep a dead agent's report "ok" for days.
pub const MAX_HEARTBEAT_INTERVAL_S: u64 = 86_400;

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
    super::vgpus::validate_gpu(gpu, |f, v| text(f, v, MAX_TEXT_CHARS))?;
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
    super::vgpus::validate_gi(gi, |f, v| text(f, v, MAX_TEXT_CHARS))?;
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

fn text(field: &str, value: &str, max: usize) -> Result<(), String> {
    // Bytes first: a cheap upper bound on the characters.
    if value.len() > max && value.chars().count() > max {
        return Err(format!("{field} is longer than {max} characters"));
    }
    Ok(())
}

fn count(field: &str, n: usize, max: usize) -> Result<(), String> {
    if n > max {
        return Err(format!("{field} has {n} entries, more than {max}"));
    }
    Ok(())
}

fn id(field: &str, value: u32) -> Result<(), String> {
    if value > MAX_ID {
        return Err(format!("{field} {value} is larger than {MAX_ID}"));
    }
    Ok(())
}

/// At most 40 characters of `s`, for quoting outside input in an error.
pub(super) fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Whether `s` has the shape of an RFC 3339 date-time (`2026-11-26T14:02:11Z`,
/// `…T14:02:11.5+01:00`) with its fields in range. The crate has no time library; the readers
/// parse the value with theirs and only need it to be sane here.
pub(super) fn rfc3339_shape(s: &str) -> Result<(), &'static str> {
    let b = s.as_bytes();
    if b.len() < 20 || b.len() > 40 {
        return Err("wrong length");
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        part.iter().try_fold(0u32, |acc, d| {
            acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
        })
    };
    let sep = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    let (Some(year), Some(month), Some(day), Some(hour), Some(min), Some(sec)) = (
        num(0..4),
        num(5..7),
        num(8..10),
        num(11..13),
        num(14..16),
        num(17..19),
    ) else {
        return Err("digits expected");
    };
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return Err("separators expected");
    }
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || min > 59
        || sec > 60
    {
        return Err("a field is out of range");
    }
    let mut rest = &b[19..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return Err("bad fraction of a second");
        }
        rest = &frac[digits..];
    }
    match rest {
        b"Z" | b"z" => Ok(()),
        [sign, h1, h2, b':', m1, m2]
            if (*sign == b'+' || *sign == b'-')
                && [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()) =>
        {
            Ok(())
        }
        _ => Err("bad time zone"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ReportError;

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
