//! What the sampler keeps between rounds: the rolling utilization windows ([`UsageBook`]) on
//! this process's clock and the XID counts per GPU. It lives in the state both daemon loops
//! share (`shared.rs`); the sampler (`sampling.rs`) fills it and the publisher reads its
//! summary.

use mig::GpuInstanceId;
use mig::report::{
    EccCounts, GpuReport, GpuUsage, LastXid, MAX_XID_CODE, MAX_XID_CODES, MAX_XID_COUNT,
    UsageReport, UsageSource, XidCode, XidCounts,
};
use tokio::time::Instant;

use super::sampling_window::{Sample, SeriesKey, UsageBook};

/// What one sampling round read on one GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuReading {
    pub uuid: String,
    pub ecc: Option<EccCounts>,
    /// `(gi, vm, sample)` per MIG-backed vGPU with a new sample.
    pub vgpus: Vec<(GpuInstanceId, String, Sample)>,
    /// `(gi, vm, sample)` from GPM, for GIs whose vGPU had no per-vGPU sample this round.
    pub gpm: Vec<(GpuInstanceId, String, Sample)>,
    /// Whether XID events are registered on this GPU (its counts are then published).
    pub xid_watched: bool,
    /// The XIDs received since the last round, oldest first: `(code, gi)`.
    pub xids: Vec<(u64, Option<GpuInstanceId>)>,
}

/// The rolling windows of this process and the clock they are kept on.
#[derive(Debug)]
pub struct UsageState {
    pub(super) book: UsageBook,
    origin: Instant,
    pub(super) interval_s: u32,
    /// XID counts per watched GPU UUID, since this process started.
    pub(super) xids: Vec<(String, XidCounts)>,
}

impl Default for UsageState {
    fn default() -> Self {
        UsageState {
            book: UsageBook::default(),
            origin: Instant::now(),
            interval_s: 0,
            xids: Vec::new(),
        }
    }
}

/// Count one XID received at `at` (RFC 3339) into `counts`.
pub(super) fn count_xid(counts: &mut XidCounts, xid: u64, gi: Option<GpuInstanceId>, at: &str) {
    // A code outside the bounds is NVML's "unknown" (999), so the document stays valid.
    let xid = if xid > MAX_XID_CODE { 999 } else { xid };
    counts.total = counts.total.saturating_add(1).min(MAX_XID_COUNT);
    let count = counts
        .codes
        .iter()
        .position(|c| c.xid == xid)
        .map_or(0, |i| counts.codes.remove(i).count);
    counts.codes.insert(
        0,
        XidCode {
            xid,
            count: count.saturating_add(1).min(counts.total),
        },
    );
    counts.codes.truncate(MAX_XID_CODES);
    counts.last = Some(LastXid {
        xid,
        at: at.to_string(),
        gi_id: gi,
    });
}

impl UsageState {
    pub(super) fn now_s(&self) -> u64 {
        self.origin.elapsed().as_secs()
    }

    /// Record one round of readings.
    pub fn record(&mut self, readings: Vec<GpuReading>) {
        let now = self.now_s();
        let at = super::document::rfc3339(std::time::SystemTime::now());
        for r in readings {
            self.book.record_ecc(&r.uuid, r.ecc);
            if r.xid_watched {
                let i = match self.xids.iter().position(|(u, _)| *u == r.uuid) {
                    Some(i) => i,
                    None => {
                        self.xids.push((r.uuid.clone(), XidCounts::default()));
                        self.xids.len() - 1
                    }
                };
                for (xid, gi) in &r.xids {
                    count_xid(&mut self.xids[i].1, *xid, *gi, &at);
                }
            }
            for (gi, vm, sample) in r.vgpus {
                let key = SeriesKey {
                    gpu_uuid: r.uuid.clone(),
                    gi,
                    vm,
                };
                self.book.record(now, key, sample);
            }
            for (gi, vm, sample) in r.gpm {
                let key = SeriesKey {
                    gpu_uuid: r.uuid.clone(),
                    gi,
                    vm,
                };
                self.book
                    .record_from(now, key, sample, Some(UsageSource::Gpm));
            }
        }
    }

    /// The summary of the GIs that `gpus` (the latest observation) shows; `None` when sampling
    /// is off or nothing was sampled yet.
    pub fn summary(&self, gpus: &[GpuReport]) -> Option<UsageReport> {
        if self.interval_s == 0 {
            return None;
        }
        let present: Vec<(String, Vec<GpuInstanceId>)> = gpus
            .iter()
            .map(|g| {
                (
                    g.uuid.clone(),
                    g.gpu_instances.iter().map(|gi| gi.gi_id).collect(),
                )
            })
            .collect();
        let mut summary = self.book.summary(self.now_s(), self.interval_s, &present);
        for (uuid, _) in &present {
            let Some((_, counts)) = self.xids.iter().find(|(u, _)| u == uuid) else {
                continue;
            };
            let report = summary.get_or_insert_with(|| UsageReport {
                sample_interval_s: self.interval_s,
                gpus: Vec::new(),
            });
            match report.gpus.iter_mut().find(|g| g.uuid == *uuid) {
                Some(g) => g.xid = Some(counts.clone()),
                None => report.gpus.push(GpuUsage {
                    uuid: uuid.clone(),
                    ecc: None,
                    xid: Some(counts.clone()),
                    gpu_instances: Vec::new(),
                }),
            }
        }
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xid_counts_keep_the_recent_codes_first_within_bounds() {
        let mut c = XidCounts::default();
        let at = "2026-12-02T17:30:00Z";
        count_xid(&mut c, 79, Some(GpuInstanceId(3)), at);
        count_xid(&mut c, 13, None, at);
        count_xid(&mut c, 79, None, at);
        assert_eq!(c.total, 3);
        assert_eq!(
            c.codes,
            vec![XidCode { xid: 79, count: 2 }, XidCode { xid: 13, count: 1 }]
        );
        assert_eq!(c.last.as_ref().map(|l| (l.xid, l.gi_id)), Some((79, None)));
        // Many distinct codes: only the most recent MAX_XID_CODES stay listed, all in `total`.
        for xid in 100..120 {
            count_xid(&mut c, xid, None, at);
        }
        assert_eq!(c.total, 23);
        assert_eq!(c.codes.len(), MAX_XID_CODES);
        assert_eq!(c.codes[0].xid, 119);
        // A code NVML could not name, or out of bounds, is 999.
        count_xid(&mut c, u64::MAX, None, at);
        assert_eq!(c.codes[0].xid, 999);
        let report = UsageReport {
            sample_interval_s: 10,
            gpus: vec![GpuUsage {
                uuid: "GPU-1".into(),
                ecc: None,
                xid: Some(c),
                gpu_instances: Vec::new(),
            }],
        };
        let mut doc = super::super::document::host_report("h", 1, at, 300, &[]);
        doc.usage = Some(report);
        doc.validate().expect("counted XIDs stay valid");
    }
}
