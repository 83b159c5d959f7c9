//! `vmig rightsize [--cluster C]`: which VMs hold a MIG-backed vGPU larger than their measured
//! peak needs, and which slices have been idle, judged from the utilization the agents sample
//! (`vmig.mig` `usage`, docs/reported-data.md "Utilization").
//!
//! The rule, per GPU instance backing a VM's vGPU, over the longest window the agent sent
//! (24 h):
//! - **idle**: no SM, encoder or decoder activity at any sample of the window;
//! - **oversized**: a smaller GI profile of the same GPU model, with a vGPU type, fits the
//!   measured peak: framebuffer max × (1 + `--headroom`/100) ≤ the profile's memory, SM max ×
//!   the current compute slices ≤ 100 × the profile's compute slices (the peak compute work,
//!   moved to fewer slices, stays at or below 100 %), and encoders/decoders if the VM used
//!   any. The smallest such profile is proposed, with the memory and compute slices it frees.
//!
//! It only reads: changing a VM's vGPU is `vmig assign`/`unassign` (the VM powered off). A
//! window covering less than `--min-coverage-h` hours is listed as "too little data" rather
//! than judged, so a VM sampled for ten quiet minutes is not called idle. What it cannot know:
//! demand the VM would have had with a larger GPU, and peaks shorter than the sampling period.
use std::io::Write;

use serde::Serialize;

use mig::GpuModel;
use mig::report::{GiUsage, UsageWindow};

use crate::Connection;
use crate::analysis::{Analysis, GpuAnalysis, HostAnalysis};
use crate::error::AdminError;
use crate::exit::ExitCode;
use crate::inventory::{Progress, Scope};
use crate::output::{stdout_error, write_json};
use crate::snapshot::analyse;

/// `vmig rightsize`.
#[derive(Debug, clap::Args)]
pub struct RightsizeArgs {
    /// Only this datacenter.
    #[arg(long, value_name = "NAME")]
    pub datacenter: Option<String>,
    /// Only this cluster.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Framebuffer headroom over the measured peak, percent.
    #[arg(long, default_value_t = 10)]
    pub headroom: u32,
    /// Judge only windows whose samples cover at least this many hours (0: any).
    #[arg(long, value_name = "HOURS", default_value_t = 1.0)]
    pub min_coverage_h: f64,
}

/// What `rightsize` found for one VM's GPU instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No engine activity over the window.
    Idle,
    /// A smaller profile fits the peak.
    Oversized,
    /// The profile fits the measured need.
    Fits,
    /// The samples cover less than `--min-coverage-h`.
    TooLittleData,
}

/// One VM's GPU instance.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub vm: String,
    pub host: String,
    pub cluster: String,
    pub gpu_uuid: String,
    pub gi_id: u32,
    pub vgpu_type: Option<String>,
    pub profile: String,
    pub verdict: Verdict,
    /// The window judged, seconds, and how much of it the samples cover.
    pub window_s: u32,
    pub covered_s: u32,
    /// Peak (max) SM utilization, %.
    pub peak_sm: u8,
    /// Peak framebuffer used, MiB, when reported.
    pub peak_fb_mib: Option<u64>,
    /// The smaller profile that fits the peak, its vGPU type, and what it frees.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smaller: Option<Smaller>,
}

/// A smaller profile for an oversized VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Smaller {
    pub profile: String,
    pub vgpu_type: String,
    pub frees_memory_slices: u32,
    pub frees_compute_slices: u32,
}

/// The whole answer.
#[derive(Debug, Clone, Serialize)]
pub struct RightsizeAnswer {
    pub findings: Vec<Finding>,
    /// GIs with a VM but no utilization in the report (agent not sampling, or driver without
    /// vGPU utilization).
    pub unmeasured: u32,
}

/// `vmig rightsize`.
pub async fn run(
    conns: &[Connection],
    a: RightsizeArgs,
    json: bool,
    progress: &dyn Progress,
    out: &mut dyn Write,
) -> Result<ExitCode, AdminError> {
    if !(a.min_coverage_h.is_finite() && (0.0..=168.0).contains(&a.min_coverage_h)) {
        return Err(AdminError::Usage(format!(
            "--min-coverage-h {} must be between 0 and 168 hours",
            a.min_coverage_h
        )));
    }
    let scope = Scope {
        datacenter: a.datacenter.clone(),
        cluster: a.cluster.clone(),
    };
    let analysis = analyse(conns, &scope, progress).await?;
    let answer = answer(&analysis, &a);
    if json {
        write_json(out, &answer)?;
    } else {
        answer.render_text(out).map_err(stdout_error)?;
    }
    Ok(ExitCode::Ok)
}

/// The findings over every analysed host.
pub fn answer(analysis: &Analysis, a: &RightsizeArgs) -> RightsizeAnswer {
    let min_covered = (a.min_coverage_h * 3600.0) as u32;
    let mut findings = Vec::new();
    let mut unmeasured = 0;
    for host in &analysis.hosts {
        for g in &host.gpus {
            for gi in &g.report.gpu_instances {
                let Some(vm) = gi.vm.clone() else { continue };
                let usage = host
                    .report
                    .as_ref()
                    .and_then(|r| r.gi_usage(&g.report.uuid, gi.gi_id))
                    .filter(|u| u.vm.as_deref().is_none_or(|v| v == vm));
                let Some((usage, window)) = usage.and_then(|u| Some((u, u.longest()?))) else {
                    unmeasured += 1;
                    continue;
                };
                findings.push(judge(
                    host,
                    g,
                    gi,
                    vm,
                    usage,
                    window,
                    a.headroom,
                    min_covered,
                ));
            }
        }
    }
    findings.sort_by(|x, y| (&x.cluster, &x.host, &x.vm).cmp(&(&y.cluster, &y.host, &y.vm)));
    RightsizeAnswer {
        findings,
        unmeasured,
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one finding from its parts; called once"
)]
fn judge(
    host: &HostAnalysis,
    g: &GpuAnalysis,
    gi: &mig::report::GiReport,
    vm: String,
    _usage: &GiUsage,
    w: &UsageWindow,
    headroom: u32,
    min_covered: u32,
) -> Finding {
    let verdict_and_smaller = if w.covered_s < min_covered {
        (Verdict::TooLittleData, None)
    } else if w.idle() {
        (Verdict::Idle, None)
    } else {
        match g
            .model
            .and_then(|m| smaller_profile(m, gi.profile_id, w, headroom))
        {
            Some(s) => (Verdict::Oversized, Some(s)),
            None => (Verdict::Fits, None),
        }
    };
    Finding {
        vm,
        host: host.host.name.clone(),
        cluster: host.cluster.clone(),
        gpu_uuid: g.report.uuid.clone(),
        gi_id: gi.gi_id.0,
        vgpu_type: gi.vgpu_type.clone(),
        profile: gi.profile.clone(),
        verdict: verdict_and_smaller.0,
        window_s: w.window_s,
        covered_s: w.covered_s,
        peak_sm: w.sm.max(),
        peak_fb_mib: w.fb_mib.map(|f| f.max()),
        smaller: verdict_and_smaller.1,
    }
}

/// The smallest profile of `model` below `current` that fits the window's peak.
pub fn smaller_profile(
    model: &GpuModel,
    current: mig::GiProfileId,
    w: &UsageWindow,
    headroom: u32,
) -> Option<Smaller> {
    let now = model.gi_profile(current)?;
    // Without a framebuffer figure the memory need is unknown: propose nothing.
    let fb = w.fb_mib?.max();
    let need_mib = fb + fb * u64::from(headroom) / 100;
    let work = u64::from(w.sm.max()) * u64::from(now.compute_slices);
    model
        .gi_profiles
        .iter()
        .filter(|p| {
            (p.memory_slices, p.compute_slices) < (now.memory_slices, now.compute_slices)
                && p.memory_slices <= now.memory_slices
                && p.compute_slices <= now.compute_slices
        })
        .filter(|p| p.memory_mib >= need_mib && work <= 100 * u64::from(p.compute_slices))
        .filter(|p| w.enc.max() == 0 || p.engines.enc > 0)
        .filter(|p| w.dec.max() == 0 || p.engines.dec > 0)
        .filter_map(|p| Some((p, mig::vgpu::vgpu_type_for(model, p)?)))
        .min_by_key(|(p, _)| (p.memory_slices, p.compute_slices, p.memory_mib))
        .map(|(p, t)| Smaller {
            profile: p.name.to_string(),
            vgpu_type: t.to_string(),
            frees_memory_slices: now.memory_slices - p.memory_slices,
            frees_compute_slices: now.compute_slices - p.compute_slices,
        })
}

impl RightsizeAnswer {
    /// The text answer: oversized and idle first, then the rest.
    pub fn render_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let esc = |s: &str| crate::render::escape_controls(s).into_owned();
        if self.findings.is_empty() {
            writeln!(
                out,
                "no measured vGPU VMs (agents publish utilization with sample_interval_s > 0)"
            )?;
        }
        for f in &self.findings {
            let peak = format!(
                "peak SM {}%{}",
                f.peak_sm,
                f.peak_fb_mib
                    .map(|m| format!(", FB {m} MiB"))
                    .unwrap_or_default()
            );
            let what = match (&f.verdict, &f.smaller) {
                (Verdict::Oversized, Some(s)) => format!(
                    "OVERSIZED: {} ({}) fits, frees {} memory / {} compute slices",
                    s.profile, s.vgpu_type, s.frees_memory_slices, s.frees_compute_slices
                ),
                (Verdict::Idle, _) => "IDLE over the window".to_string(),
                (Verdict::TooLittleData, _) => "too little data".to_string(),
                _ => "fits".to_string(),
            };
            writeln!(
                out,
                "{}  {} on {} GI {} ({})  {}  [{} of {} min]  {}",
                esc(&f.vm),
                f.vgpu_type
                    .as_deref()
                    .map(esc)
                    .unwrap_or_else(|| "-".into()),
                esc(&f.host),
                f.gi_id,
                esc(&f.profile),
                peak,
                f.covered_s / 60,
                f.window_s / 60,
                what
            )?;
        }
        if self.unmeasured > 0 {
            writeln!(
                out,
                "{} vGPU VM(s) without utilization in their host's report (agent not sampling, or the driver does not report vGPU utilization)",
                self.unmeasured
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mig::report::Stats;

    fn window(sm: u8, fb: u64) -> UsageWindow {
        UsageWindow {
            window_s: 86_400,
            covered_s: 86_400,
            sm: Stats(sm / 2, sm, sm),
            mem: Stats(1, 1, 1),
            enc: Stats(0, 0, 0),
            dec: Stats(0, 0, 0),
            fb_mib: Some(Stats(fb / 2, fb, fb)),
        }
    }

    fn a100() -> &'static GpuModel {
        GpuModel::by_key("a100-pcie-40gb").expect("catalog")
    }

    fn profile(name: &str) -> mig::GiProfileId {
        a100().gi_profile_by_name(name).expect("profile").id
    }

    #[test]
    fn a_quiet_3g_fits_on_a_1g_and_frees_slices() {
        // 3g.20gb at 20 % SM peak = 0.6 slices of work; 3000 MiB + 10 % fits 1g.5gb (4.75 GiB).
        let s =
            smaller_profile(a100(), profile("3g.20gb"), &window(20, 3000), 10).expect("smaller");
        assert_eq!(s.profile, "1g.5gb");
        assert_eq!(s.vgpu_type, "grid_a100-1-5c");
        assert_eq!((s.frees_memory_slices, s.frees_compute_slices), (3, 2));
    }

    #[test]
    fn compute_or_memory_peaks_keep_the_profile() {
        // 90 % of 3 slices = 2.7 slices: needs 3.
        assert_eq!(
            smaller_profile(a100(), profile("3g.20gb"), &window(90, 3000), 10),
            None
        );
        // 60 % of 3 = 1.8 slices, 8000 MiB (+10 %: 8800): the 2g.10gb fits.
        let s = smaller_profile(a100(), profile("3g.20gb"), &window(60, 8000), 10).expect("2g");
        assert_eq!(s.profile, "2g.10gb");
        // 18000 MiB + 10 % does not fit 10 GB.
        assert_eq!(
            smaller_profile(a100(), profile("3g.20gb"), &window(10, 18_000), 10),
            None
        );
        // No framebuffer figure: nothing proposed.
        let mut w = window(10, 1000);
        w.fb_mib = None;
        assert_eq!(smaller_profile(a100(), profile("3g.20gb"), &w, 10), None);
        // Already the smallest.
        assert_eq!(
            smaller_profile(a100(), profile("1g.5gb"), &window(1, 10), 10),
            None
        );
    }
}
