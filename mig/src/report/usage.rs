//! Utilization summaries in the `vmig.mig/v1` document (added within v1): per GPU instance,
//! what the vGPU on it did over the last hour and day (mean, 95th percentile and maximum of
//! SM, memory-controller, encoder and decoder utilization and of framebuffer used), and each
//! GPU's ECC error counts.
//!
//! They sit beside the observed MIG state (`HostReport::usage`), not inside it: the state
//! decides the document's `generation` and changes rarely, utilization changes every sample.
//! A reader joins them by GPU UUID and GI id. Compact on purpose (vCenter custom values are
//! size-sensitive): each statistic is a `[mean, p95, max]` array; the size budget is in
//! docs/reported-data.md ("Utilization").
use serde::{Deserialize, Serialize};

use crate::ids::GpuInstanceId;

/// Most windows per GI (the agent writes two: 1 h and 24 h).
pub const MAX_WINDOWS: usize = 4;
/// Longest window accepted, seconds (one week).
pub const MAX_WINDOW_S: u32 = 7 * 86_400;
/// Longest sampling interval accepted, seconds.
pub const MAX_SAMPLE_INTERVAL_S: u32 = 3_600;
/// Largest framebuffer figure accepted, MiB (1 TiB; the largest GPU has 192 GB).
pub const MAX_FB_MIB: u64 = 1 << 20;
/// Largest ECC count accepted (2^53 − 1, exact in every JSON reader).
pub const MAX_ECC_COUNT: u64 = (1 << 53) - 1;
/// Largest XID count accepted (as ECC counts).
pub const MAX_XID_COUNT: u64 = MAX_ECC_COUNT;
/// Most distinct XID codes listed per GPU (the agent keeps the most recent ones).
pub const MAX_XID_CODES: usize = 8;
/// Largest XID code accepted (NVIDIA's XID catalogue is below 200; 999 is NVML's "unknown").
pub const MAX_XID_CODE: u64 = 65_535;

/// `[mean, p95, max]` of one figure over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Stats<T>(pub T, pub T, pub T);

impl<T: Copy + Ord> Stats<T> {
    pub fn mean(&self) -> T {
        self.0
    }
    pub fn p95(&self) -> T {
        self.1
    }
    pub fn max(&self) -> T {
        self.2
    }
    fn consistent(&self) -> bool {
        self.0 <= self.2 && self.1 <= self.2
    }
}

/// Every utilization summary of one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageReport {
    /// Seconds between two samples.
    pub sample_interval_s: u32,
    #[serde(default)]
    pub gpus: Vec<GpuUsage>,
}

/// One GPU's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuUsage {
    /// The GPU's `GPU-…` UUID, as in `gpus[].uuid`.
    pub uuid: String,
    /// Volatile ECC error counts (since the driver loaded), when NVML answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecc: Option<EccCounts>,
    /// XID errors seen since the agent started, when the driver delivers XID events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xid: Option<XidCounts>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu_instances: Vec<GiUsage>,
}

/// XID errors of one GPU (NVML `nvmlEventTypeXidCriticalError` events) since the agent started.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct XidCounts {
    /// All XIDs since the agent started.
    pub total: u64,
    /// Count per XID code, most recently seen code first, at most [`MAX_XID_CODES`] codes
    /// (older codes drop out of the list but stay in `total`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<XidCode>,
    /// The most recent XID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<LastXid>,
}

/// How often one XID code was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct XidCode {
    pub xid: u64,
    pub count: u64,
}

/// The most recent XID of a GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastXid {
    pub xid: u64,
    /// When the agent received it, RFC 3339 UTC by the host's clock (not vCenter's).
    pub at: String,
    /// The GPU instance NVML attributes it to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gi_id: Option<GpuInstanceId>,
}

/// ECC error counts of one GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EccCounts {
    pub corrected: u64,
    pub uncorrected: u64,
}

/// What the vGPU on one GPU instance did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GiUsage {
    pub gi_id: GpuInstanceId,
    /// The VM of the vGPU the figures are about (NVML's VM id, as `gpu_instances[].vm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm: Option<String>,
    /// Shortest window first.
    pub windows: Vec<UsageWindow>,
    /// Where the figures come from when not from per-vGPU utilization
    /// (`nvmlDeviceGetVgpuUtilization`, the default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<UsageSource>,
}

/// Another source of a GI's figures than per-vGPU utilization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsageSource {
    /// GPM per GPU instance (`nvmlGpmMigSampleGet`, Hopper and newer): `sm` is
    /// `NVML_GPM_METRIC_SM_UTIL`, `mem` is `NVML_GPM_METRIC_DRAM_BW_UTIL`; GPM gives no
    /// encoder/decoder or framebuffer figure here, so `enc` and `dec` are 0 and `fb_mib`
    /// absent. Every sample of the windows came from GPM.
    Gpm,
}

impl GiUsage {
    /// The longest window, the one right-sizing judges by.
    pub fn longest(&self) -> Option<&UsageWindow> {
        self.windows.iter().max_by_key(|w| w.window_s)
    }
}

/// Statistics over the last `window_s` seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageWindow {
    /// Length of the window: 3600 or 86400.
    pub window_s: u32,
    /// How many seconds of it the samples cover (less while the agent has not run that long).
    pub covered_s: u32,
    /// SM (3D/compute) utilization, %.
    pub sm: Stats<u8>,
    /// Memory-controller utilization, %.
    pub mem: Stats<u8>,
    /// Encoder utilization, %.
    pub enc: Stats<u8>,
    /// Decoder utilization, %.
    pub dec: Stats<u8>,
    /// Framebuffer used, MiB; absent when NVML did not report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fb_mib: Option<Stats<u64>>,
}

impl UsageWindow {
    /// No engine was busy at any sample of the window.
    pub fn idle(&self) -> bool {
        self.sm.max() == 0 && self.enc.max() == 0 && self.dec.max() == 0
    }
}

/// The bounds of docs/reported-data.md ("Limits"), for `HostReport::validate`.
pub(super) fn validate(
    usage: &UsageReport,
    max_text: usize,
    max_gpus: usize,
) -> Result<(), String> {
    if usage.sample_interval_s == 0 || usage.sample_interval_s > MAX_SAMPLE_INTERVAL_S {
        return Err(format!(
            "usage.sample_interval_s {} is outside 1..={MAX_SAMPLE_INTERVAL_S}",
            usage.sample_interval_s
        ));
    }
    if usage.gpus.len() > max_gpus {
        return Err(format!(
            "usage.gpus has {} entries, more than {max_gpus}",
            usage.gpus.len()
        ));
    }
    for (i, gpu) in usage.gpus.iter().enumerate() {
        validate_gpu(gpu, max_text).map_err(|e| format!("usage.gpus[{i}]: {e}"))?;
    }
    Ok(())
}

fn validate_gpu(gpu: &GpuUsage, max_text: usize) -> Result<(), String> {
    if gpu.uuid.chars().count() > max_text {
        return Err(format!("uuid is longer than {max_text} characters"));
    }
    if gpu
        .ecc
        .is_some_and(|e| e.corrected > MAX_ECC_COUNT || e.uncorrected > MAX_ECC_COUNT)
    {
        return Err(format!("ecc counts are above {MAX_ECC_COUNT}"));
    }
    if let Some(xid) = &gpu.xid {
        validate_xid(xid).map_err(|e| format!("xid: {e}"))?;
    }
    let max_gis = super::MAX_MEMORY_SLICES as usize;
    if gpu.gpu_instances.len() > max_gis {
        return Err(format!(
            "gpu_instances has {} entries, more than {max_gis}",
            gpu.gpu_instances.len()
        ));
    }
    for (j, gi) in gpu.gpu_instances.iter().enumerate() {
        validate_gi(gi, max_text).map_err(|e| format!("gpu_instances[{j}]: {e}"))?;
    }
    Ok(())
}

fn validate_xid(xid: &XidCounts) -> Result<(), String> {
    if xid.total > MAX_XID_COUNT {
        return Err(format!("total {} is above {MAX_XID_COUNT}", xid.total));
    }
    if xid.codes.len() > MAX_XID_CODES {
        return Err(format!(
            "codes has {} entries, more than {MAX_XID_CODES}",
            xid.codes.len()
        ));
    }
    for c in &xid.codes {
        if c.xid > MAX_XID_CODE {
            return Err(format!("code {} is above {MAX_XID_CODE}", c.xid));
        }
        if c.count == 0 || c.count > xid.total {
            return Err(format!(
                "code {} has count {}, outside 1..=total ({})",
                c.xid, c.count, xid.total
            ));
        }
    }
    if let Some(last) = &xid.last {
        if last.xid > MAX_XID_CODE {
            return Err(format!("last.xid {} is above {MAX_XID_CODE}", last.xid));
        }
        if xid.total == 0 {
            return Err("last is set but total is 0".into());
        }
        super::limits::rfc3339_shape(&last.at)
            .map_err(|why| format!("last.at is not an RFC 3339 time: {why}"))?;
        if last.gi_id.is_some_and(|g| g.0 > super::MAX_ID) {
            return Err(format!("last.gi_id is larger than {}", super::MAX_ID));
        }
    }
    Ok(())
}

fn validate_gi(gi: &GiUsage, max_text: usize) -> Result<(), String> {
    if gi.gi_id.0 > super::MAX_ID {
        return Err(format!(
            "gi_id {} is larger than {}",
            gi.gi_id,
            super::MAX_ID
        ));
    }
    if gi.vm.as_ref().is_some_and(|v| v.chars().count() > max_text) {
        return Err(format!("vm is longer than {max_text} characters"));
    }
    if gi.windows.len() > MAX_WINDOWS {
        return Err(format!(
            "windows has {} entries, more than {MAX_WINDOWS}",
            gi.windows.len()
        ));
    }
    for (k, w) in gi.windows.iter().enumerate() {
        validate_window(w).map_err(|e| format!("windows[{k}]: {e}"))?;
        if gi.source == Some(UsageSource::Gpm)
            && (w.enc.max() > 0 || w.dec.max() > 0 || w.fb_mib.is_some())
        {
            return Err(format!(
                "windows[{k}]: source is gpm, which reports no enc, dec or fb_mib, yet they are given"
            ));
        }
    }
    Ok(())
}

fn validate_window(w: &UsageWindow) -> Result<(), String> {
    if w.window_s == 0 || w.window_s > MAX_WINDOW_S {
        return Err(format!(
            "window_s {} is outside 1..={MAX_WINDOW_S}",
            w.window_s
        ));
    }
    if w.covered_s > w.window_s {
        return Err(format!(
            "covered_s {} is longer than the window ({} s)",
            w.covered_s, w.window_s
        ));
    }
    for (name, s) in [("sm", w.sm), ("mem", w.mem), ("enc", w.enc), ("dec", w.dec)] {
        if s.max() > 100 || !s.consistent() {
            return Err(format!(
                "{name} [{}, {}, {}] is not [mean, p95, max] percentages with mean and p95 at most max",
                s.0, s.1, s.2
            ));
        }
    }
    if let Some(fb) = w.fb_mib
        && (fb.max() > MAX_FB_MIB || !fb.consistent())
    {
        return Err(format!(
            "fb_mib [{}, {}, {}] is not [mean, p95, max] MiB with mean and p95 at most max, max at most {MAX_FB_MIB}",
            fb.0, fb.1, fb.2
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> UsageWindow {
        UsageWindow {
            window_s: 3600,
            covered_s: 1200,
            sm: Stats(20, 60, 80),
            mem: Stats(10, 20, 30),
            enc: Stats(0, 0, 0),
            dec: Stats(0, 0, 0),
            fb_mib: Some(Stats(3000, 5000, 6000)),
        }
    }

    fn xids() -> XidCounts {
        XidCounts {
            total: 3,
            codes: vec![XidCode { xid: 79, count: 1 }, XidCode { xid: 13, count: 2 }],
            last: Some(LastXid {
                xid: 79,
                at: "2026-12-02T17:30:00Z".into(),
                gi_id: Some(GpuInstanceId(1)),
            }),
        }
    }

    #[test]
    fn xid_counts_are_bounded_and_consistent() {
        assert!(validate(&report(window()), 256, 64).is_ok());
        let json = serde_json::to_string(&xids()).expect("serialises");
        assert!(json.contains(r#""codes":[{"xid":79,"count":1}"#), "{json}");
        type Change = Box<dyn Fn(&mut XidCounts)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|x| x.total = MAX_XID_COUNT + 1), "total"),
            (
                Box::new(|x| x.codes = vec![XidCode { xid: 1, count: 1 }; MAX_XID_CODES + 1]),
                "codes",
            ),
            (Box::new(|x| x.codes[0].count = 4), "count"),
            (Box::new(|x| x.codes[0].count = 0), "count"),
            (Box::new(|x| x.codes[0].xid = MAX_XID_CODE + 1), "code"),
            (
                Box::new(|x| {
                    if let Some(l) = x.last.as_mut() {
                        l.at = "yesterday".into();
                    }
                }),
                "last.at",
            ),
            (
                Box::new(|x| {
                    if let Some(l) = x.last.as_mut() {
                        l.xid = MAX_XID_CODE + 1;
                    }
                }),
                "last.xid",
            ),
            (
                Box::new(|x| {
                    x.total = 0;
                    x.codes.clear();
                }),
                "last is set",
            ),
        ];
        for (change, field) in cases {
            let mut r = report(window());
            if let Some(x) = r.gpus[0].xid.as_mut() {
                change(x);
            }
            let e = validate(&r, 256, 64).expect_err(field);
            assert!(e.starts_with("usage.gpus[0]: xid: "), "{e}");
            assert!(e.contains(field), "{e}");
        }
        // An older document without `xid` still reads.
        let old: GpuUsage = serde_json::from_str(r#"{"uuid":"GPU-1"}"#).expect("reads");
        assert_eq!(old.xid, None);
    }

    fn report(w: UsageWindow) -> UsageReport {
        UsageReport {
            sample_interval_s: 10,
            gpus: vec![GpuUsage {
                uuid: "GPU-1".into(),
                ecc: Some(EccCounts {
                    corrected: 1,
                    uncorrected: 0,
                }),
                xid: Some(xids()),
                gpu_instances: vec![GiUsage {
                    gi_id: GpuInstanceId(1),
                    vm: Some("vm-1".into()),
                    windows: vec![w],
                    source: None,
                }],
            }],
        }
    }

    #[test]
    fn statistics_are_compact_arrays() {
        let json = serde_json::to_string(&window()).expect("serialises");
        assert!(json.contains(r#""sm":[20,60,80]"#), "{json}");
        assert!(json.contains(r#""fb_mib":[3000,5000,6000]"#), "{json}");
        assert!(validate(&report(window()), 256, 64).is_ok());
    }

    #[test]
    fn impossible_figures_are_refused_naming_the_field() {
        type Change = Box<dyn Fn(&mut UsageWindow)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|w| w.sm = Stats(20, 60, 101)), "sm"),
            (Box::new(|w| w.mem = Stats(50, 20, 30)), "mem"),
            (Box::new(|w| w.enc = Stats(0, 40, 30)), "enc"),
            (
                Box::new(|w| w.fb_mib = Some(Stats(0, 0, MAX_FB_MIB + 1))),
                "fb_mib",
            ),
            (Box::new(|w| w.covered_s = 3601), "covered_s"),
            (Box::new(|w| w.window_s = 0), "window_s"),
            (Box::new(|w| w.window_s = MAX_WINDOW_S + 1), "window_s"),
        ];
        for (change, field) in cases {
            let mut w = window();
            change(&mut w);
            let e = validate(&report(w), 256, 64).expect_err(field);
            assert!(e.contains(field), "{e}");
            assert!(
                e.starts_with("usage.gpus[0]: gpu_instances[0]: windows[0]"),
                "{e}"
            );
        }
        let mut r = report(window());
        r.sample_interval_s = 0;
        assert!(validate(&r, 256, 64).is_err());
        let mut r = report(window());
        r.gpus[0].gpu_instances[0].windows = vec![window(); MAX_WINDOWS + 1];
        assert!(validate(&r, 256, 64).is_err());
        let mut r = report(window());
        r.gpus[0].ecc = Some(EccCounts {
            corrected: MAX_ECC_COUNT + 1,
            uncorrected: 0,
        });
        assert!(validate(&r, 256, 64).is_err());
        let mut r = report(window());
        r.gpus[0].gpu_instances[0].vm = Some("v".repeat(257));
        assert!(validate(&r, 256, 64).is_err());
    }

    #[test]
    fn gpm_sourced_windows_carry_no_encoder_or_framebuffer_figures() {
        let mut r = report(window());
        r.gpus[0].gpu_instances[0].source = Some(UsageSource::Gpm);
        let e = validate(&r, 256, 64).expect_err("the test window has enc and fb_mib");
        assert!(e.contains("source is gpm"), "{e}");
        let w = &mut r.gpus[0].gpu_instances[0].windows[0];
        w.enc = Stats(0, 0, 0);
        w.dec = Stats(0, 0, 0);
        w.fb_mib = None;
        validate(&r, 256, 64).expect("valid");
        let json = serde_json::to_string(&r).expect("serialises");
        assert!(json.contains(r#""source":"gpm""#), "{json}");
        let back: UsageReport = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, r);
        let other = json.replace(r#""source":"gpm""#, r#""source":"dcgm""#);
        assert!(
            serde_json::from_str::<UsageReport>(&other).is_err(),
            "an unknown source is refused"
        );
    }
}
