//! Rolling utilization windows kept in memory, in bounded space, and their compact summary for
//! the document (`mig::report::UsageReport`).
//!
//! Why buckets and not every sample: a day of 10-second samples of 56 GPU instances is 484,000
//! samples; the agent's whole resident budget is 12 MiB. Each window keeps a fixed ring of
//! buckets (1 h: 60 of 1 minute; 24 h: 288 of 5 minutes), each holding the count, mean and
//! maximum of its samples. The mean and maximum over the window are therefore exact; the 95th
//! percentile is the 95th percentile of the bucket means (nearest rank), i.e. of 1-minute or
//! 5-minute averages — a sustained peak counts, a single spike shows in `max` only.
//! One GI/VM series costs about 8 KiB whatever the sampling period; the book keeps at most
//! [`MAX_SERIES`] series and forgets one not sampled for a day.
//!
//! Pure: times are seconds on a monotonic clock passed in by the caller; no NVML, no I/O.
use std::collections::{BTreeMap, VecDeque};

use mig::GpuInstanceId;
use mig::report::{EccCounts, GiUsage, GpuUsage, Stats, UsageReport, UsageSource, UsageWindow};

/// Most series kept: 8 GPUs × 8 GIs, twice over (a VM replaced on a GI starts a new series).
pub const MAX_SERIES: usize = 128;
/// A series not sampled for this long is forgotten (the longest window).
pub const FORGET_AFTER_S: u64 = 86_400;

/// The two windows: (length, bucket width), seconds.
pub const WINDOWS: [(u32, u32); 2] = [(3_600, 60), (86_400, 300)];

/// One sample of one vGPU, in the document's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample {
    pub sm: u8,
    pub mem: u8,
    pub enc: u8,
    pub dec: u8,
    /// MiB; `None` when NVML did not report it.
    pub fb_mib: Option<u32>,
}

/// Count, sums and maxima of the samples of one bucket (sums only while it is open).
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    count: u32,
    sum: [u32; 4],
    max: [u8; 4],
    fb_count: u32,
    fb_sum: u64,
    fb_max: u32,
}

impl Acc {
    fn add(&mut self, s: Sample) {
        self.count += 1;
        for (i, v) in [s.sm, s.mem, s.enc, s.dec].into_iter().enumerate() {
            self.sum[i] += u32::from(v);
            self.max[i] = self.max[i].max(v);
        }
        if let Some(fb) = s.fb_mib {
            self.fb_count += 1;
            self.fb_sum += u64::from(fb);
            self.fb_max = self.fb_max.max(fb);
        }
    }

    fn close(&self) -> Bucket {
        let mean = |sum: u64, n: u32| {
            if n == 0 {
                0
            } else {
                (sum + u64::from(n) / 2) / u64::from(n)
            }
        };
        Bucket {
            count: self.count.min(u32::from(u16::MAX)) as u16,
            fb_count: self.fb_count.min(u32::from(u16::MAX)) as u16,
            mean: self.sum.map(|s| mean(u64::from(s), self.count) as u8),
            max: self.max,
            fb_mean: mean(self.fb_sum, self.fb_count) as u32,
            fb_max: self.fb_max,
        }
    }
}

/// A closed bucket: 20 bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    count: u16,
    fb_count: u16,
    mean: [u8; 4],
    max: [u8; 4],
    fb_mean: u32,
    fb_max: u32,
}

/// One rolling window of one series.
#[derive(Debug, Clone)]
struct Window {
    len_s: u32,
    width_s: u32,
    /// Closed buckets, oldest first, with their index (time / width).
    closed: VecDeque<(u32, Bucket)>,
    /// The open bucket and its index.
    open: Option<(u32, Acc)>,
}

impl Window {
    fn new((len_s, width_s): (u32, u32)) -> Self {
        Window {
            len_s,
            width_s,
            closed: VecDeque::new(),
            open: None,
        }
    }

    fn slots(&self) -> u32 {
        self.len_s / self.width_s
    }

    fn index(&self, now_s: u64) -> u32 {
        u32::try_from(now_s / u64::from(self.width_s)).unwrap_or(u32::MAX)
    }

    fn add(&mut self, now_s: u64, s: Sample) {
        let idx = self.index(now_s);
        match &mut self.open {
            Some((i, acc)) if *i == idx => acc.add(s),
            open => {
                if let Some((i, acc)) = open.take() {
                    self.closed.push_back((i, acc.close()));
                }
                let mut acc = Acc::default();
                acc.add(s);
                self.open = Some((idx, acc));
            }
        }
        self.expire(now_s);
    }

    /// Drop buckets that left the window.
    fn expire(&mut self, now_s: u64) {
        let first = self.index(now_s).saturating_sub(self.slots() - 1);
        while self.closed.front().is_some_and(|(i, _)| *i < first) {
            self.closed.pop_front();
        }
    }

    /// The buckets inside the window at `now_s` (closed, then the open one).
    fn buckets(&self, now_s: u64) -> Vec<Bucket> {
        let first = self.index(now_s).saturating_sub(self.slots() - 1);
        self.closed
            .iter()
            .copied()
            .chain(self.open.map(|(i, acc)| (i, acc.close())))
            .filter(|(i, b)| *i >= first && b.count > 0)
            .map(|(_, b)| b)
            .collect()
    }

    fn summary(&self, now_s: u64, interval_s: u32) -> Option<UsageWindow> {
        let buckets = self.buckets(now_s);
        let samples: u64 = buckets.iter().map(|b| u64::from(b.count)).sum();
        if samples == 0 {
            return None;
        }
        let stat = |k: usize| {
            let sum: u64 = buckets
                .iter()
                .map(|b| u64::from(b.mean[k]) * u64::from(b.count))
                .sum();
            let mean = ((sum + samples / 2) / samples) as u8;
            let p95 = p95(buckets.iter().map(|b| u64::from(b.mean[k]))) as u8;
            let max = buckets.iter().map(|b| b.max[k]).max().unwrap_or(0);
            Stats(mean.min(max), p95.min(max), max)
        };
        let fb_samples: u64 = buckets.iter().map(|b| u64::from(b.fb_count)).sum();
        let fb_mib = (fb_samples > 0).then(|| {
            let with_fb = buckets.iter().filter(|b| b.fb_count > 0);
            let sum: u64 = with_fb
                .clone()
                .map(|b| u64::from(b.fb_mean) * u64::from(b.fb_count))
                .sum();
            let max = with_fb
                .clone()
                .map(|b| u64::from(b.fb_max))
                .max()
                .unwrap_or(0);
            let mean = (sum + fb_samples / 2) / fb_samples;
            let p95 = p95(with_fb.map(|b| u64::from(b.fb_mean)));
            Stats(mean.min(max), p95.min(max), max)
        });
        let covered = samples.saturating_mul(u64::from(interval_s));
        Some(UsageWindow {
            window_s: self.len_s,
            covered_s: covered.min(u64::from(self.len_s)) as u32,
            sm: stat(0),
            mem: stat(1),
            enc: stat(2),
            dec: stat(3),
            fb_mib,
        })
    }
}

/// Nearest-rank 95th percentile; 0 for no values.
fn p95(values: impl Iterator<Item = u64>) -> u64 {
    let mut v: Vec<u64> = values.collect();
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let rank = (v.len() * 95).div_ceil(100).max(1);
    v[rank - 1]
}

/// Which vGPU on which GPU instance a series is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SeriesKey {
    pub gpu_uuid: String,
    pub gi: GpuInstanceId,
    pub vm: String,
}

#[derive(Debug, Clone)]
struct Series {
    last_s: u64,
    windows: Vec<Window>,
    /// Every sample came from GPM (published as `source: "gpm"`); one per-vGPU sample clears it.
    all_gpm: bool,
}

/// Every series of this host, and each GPU's ECC counts.
#[derive(Debug, Clone, Default)]
pub struct UsageBook {
    series: BTreeMap<SeriesKey, Series>,
    ecc: BTreeMap<String, EccCounts>,
}

impl UsageBook {
    /// Record one per-vGPU sample of `key` taken at `now_s`.
    pub fn record(&mut self, now_s: u64, key: SeriesKey, sample: Sample) {
        self.record_from(now_s, key, sample, None);
    }

    /// Record one sample of `key` taken at `now_s` from `source` (`None`: per-vGPU
    /// utilization).
    pub fn record_from(
        &mut self,
        now_s: u64,
        key: SeriesKey,
        sample: Sample,
        source: Option<UsageSource>,
    ) {
        let gpm = source == Some(UsageSource::Gpm);
        let series = self.series.entry(key).or_insert_with(|| Series {
            last_s: now_s,
            windows: WINDOWS.iter().copied().map(Window::new).collect(),
            all_gpm: gpm,
        });
        series.all_gpm &= gpm;
        series.last_s = now_s;
        for w in &mut series.windows {
            w.add(now_s, sample);
        }
        self.forget(now_s);
    }

    /// Record a GPU's ECC counts (`None`: not reported, forget the old ones).
    pub fn record_ecc(&mut self, gpu_uuid: &str, ecc: Option<EccCounts>) {
        match ecc {
            Some(e) => {
                self.ecc.insert(gpu_uuid.to_string(), e);
            }
            None => {
                self.ecc.remove(gpu_uuid);
            }
        }
    }

    /// Forget stale series, then the least recently sampled beyond [`MAX_SERIES`].
    fn forget(&mut self, now_s: u64) {
        self.series
            .retain(|_, s| now_s.saturating_sub(s.last_s) <= FORGET_AFTER_S);
        while self.series.len() > MAX_SERIES {
            let oldest = self
                .series
                .iter()
                .min_by_key(|(_, s)| s.last_s)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.series.remove(&k),
                None => break,
            };
        }
        if self.ecc.len() > mig::report::MAX_GPUS {
            let keep: Vec<String> = self
                .ecc
                .keys()
                .take(mig::report::MAX_GPUS)
                .cloned()
                .collect();
            self.ecc.retain(|k, _| keep.contains(k));
        }
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// The summary for the document: for every `(GPU, GI)` in `present` (what the latest
    /// observation shows), the most recently sampled series of that GI.
    pub fn summary(
        &self,
        now_s: u64,
        interval_s: u32,
        present: &[(String, Vec<GpuInstanceId>)],
    ) -> Option<UsageReport> {
        let mut gpus = Vec::new();
        for (uuid, gis) in present {
            let mut gpu_instances = Vec::new();
            for gi in gis {
                let latest = self
                    .series
                    .iter()
                    .filter(|(k, _)| k.gpu_uuid == *uuid && k.gi == *gi)
                    .max_by_key(|(_, s)| s.last_s);
                let Some((key, series)) = latest else {
                    continue;
                };
                let windows: Vec<UsageWindow> = series
                    .windows
                    .iter()
                    .filter_map(|w| w.summary(now_s, interval_s))
                    .collect();
                if !windows.is_empty() {
                    gpu_instances.push(GiUsage {
                        gi_id: *gi,
                        vm: Some(key.vm.clone()),
                        windows,
                        source: series.all_gpm.then_some(UsageSource::Gpm),
                    });
                }
            }
            let ecc = self.ecc.get(uuid).copied();
            if ecc.is_some() || !gpu_instances.is_empty() {
                gpus.push(GpuUsage {
                    uuid: uuid.clone(),
                    ecc,
                    xid: None,
                    gpu_instances,
                });
            }
        }
        (!gpus.is_empty()).then_some(UsageReport {
            sample_interval_s: interval_s,
            gpus,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::document;
    use mig::report::{CiReport, GiReport, GpuReport, MigModeReport};
    use mig::{CiProfileId, ComputeInstanceId, GiProfileId, Placement};

    fn key(gi: u32, vm: &str) -> SeriesKey {
        SeriesKey {
            gpu_uuid: "GPU-1".into(),
            gi: GpuInstanceId(gi),
            vm: vm.into(),
        }
    }

    fn sample(sm: u8, fb: u32) -> Sample {
        Sample {
            sm,
            mem: sm / 2,
            enc: 0,
            dec: 0,
            fb_mib: Some(fb),
        }
    }

    fn present(gis: &[u32]) -> Vec<(String, Vec<GpuInstanceId>)> {
        vec![(
            "GPU-1".into(),
            gis.iter().copied().map(GpuInstanceId).collect(),
        )]
    }

    #[test]
    fn mean_and_max_are_exact_and_p95_follows_sustained_load() {
        let mut book = UsageBook::default();
        // 50 minutes at 10 %, then 10 minutes at 90 %, one sample every 10 s.
        for t in (0..3600).step_by(10) {
            let busy = t >= 3000;
            book.record(
                t,
                key(1, "vm-a"),
                sample(if busy { 90 } else { 10 }, if busy { 8000 } else { 2000 }),
            );
        }
        let report = book.summary(3599, 10, &present(&[1])).expect("sampled");
        let gi = &report.gpus[0].gpu_instances[0];
        assert_eq!(gi.vm.as_deref(), Some("vm-a"));
        let hour = &gi.windows[0];
        assert_eq!(hour.window_s, 3600);
        assert_eq!(hour.covered_s, 3600);
        // (300 × 10 + 60 × 90) / 360 = 23.3
        assert_eq!(hour.sm, Stats(23, 90, 90));
        assert_eq!(hour.enc, Stats(0, 0, 0));
        assert_eq!(hour.fb_mib, Some(Stats(3000, 8000, 8000)));
        let day = &gi.windows[1];
        assert_eq!((day.window_s, day.sm.max()), (86_400, 90));
    }

    #[test]
    fn old_samples_leave_the_hour_but_stay_in_the_day() {
        let mut book = UsageBook::default();
        book.record(0, key(1, "vm-a"), sample(100, 9000));
        for t in (4000..4100).step_by(10) {
            book.record(t, key(1, "vm-a"), sample(0, 100));
        }
        let report = book.summary(4100, 10, &present(&[1])).expect("sampled");
        let w = &report.gpus[0].gpu_instances[0].windows;
        assert_eq!(w[0].sm.max(), 0, "the peak is more than an hour old");
        assert!(w[0].idle());
        assert_eq!(w[1].sm.max(), 100, "but still in the day");
        assert_eq!(w[1].fb_mib.map(|f| f.max()), Some(9000));
    }

    #[test]
    fn the_book_stays_bounded() {
        let mut book = UsageBook::default();
        for i in 0..(MAX_SERIES as u64 * 3) {
            book.record(i, key((i % 200) as u32, &format!("vm-{i}")), sample(1, 1));
        }
        assert_eq!(book.series_count(), MAX_SERIES);
        book.record(10 * FORGET_AFTER_S, key(1, "late"), sample(1, 1));
        assert_eq!(
            book.series_count(),
            1,
            "a day without samples forgets a series"
        );
        // The ring of one series never grows past its slots.
        let mut w = Window::new(WINDOWS[0]);
        for t in 0..20_000 {
            w.add(t, sample(5, 5));
        }
        assert!(w.closed.len() < 60);
    }

    #[test]
    fn a_gi_without_samples_and_a_replaced_vm_are_reported_as_they_are() {
        let mut book = UsageBook::default();
        book.record(0, key(1, "old-vm"), sample(80, 1));
        book.record(20, key(1, "new-vm"), sample(5, 1));
        let report = book.summary(30, 10, &present(&[1, 2])).expect("sampled");
        let gis = &report.gpus[0].gpu_instances;
        assert_eq!(gis.len(), 1, "GI 2 has no samples");
        assert_eq!(
            gis[0].vm.as_deref(),
            Some("new-vm"),
            "the latest VM on the GI"
        );
        assert_eq!(book.summary(30, 10, &present(&[])), None);
    }

    /// The size budget of docs/reported-data.md: 8 GPUs × 7 GIs, VM ids of 64 characters,
    /// every figure at its widest: `usage` ≤ 32 KiB, the whole document ≤ 64 KiB.
    #[test]
    fn eight_gpus_of_seven_gis_stay_within_the_size_budget() {
        let mut book = UsageBook::default();
        let mut gpus = Vec::new();
        for g in 0..8u32 {
            let uuid = format!("GPU-{g:08x}-0000-0000-0000-000000000000");
            book.record_ecc(
                &uuid,
                Some(EccCounts {
                    corrected: u64::from(u32::MAX),
                    uncorrected: u64::from(u32::MAX),
                }),
            );
            let mut gis = Vec::new();
            for gi in 0..7u32 {
                let vm = format!("{:0>64}", format!("vm-{g}-{gi}"));
                for t in (0..86_400).step_by(600) {
                    let k = SeriesKey {
                        gpu_uuid: uuid.clone(),
                        gi: GpuInstanceId(gi + 7),
                        vm: vm.clone(),
                    };
                    book.record(
                        t,
                        k,
                        Sample {
                            sm: 100,
                            mem: 100,
                            enc: 100,
                            dec: 100,
                            fb_mib: Some(81_920),
                        },
                    );
                }
                gis.push(GiReport {
                    vgpus: Vec::new(),
                    gi_id: GpuInstanceId(gi + 7),
                    profile_id: GiProfileId(19),
                    profile: "1g.10gb".into(),
                    placement: Placement { start: gi, size: 1 },
                    compute_instances: vec![CiReport {
                        ci_id: ComputeInstanceId(0),
                        profile_id: Some(CiProfileId(0)),
                        profile: "1c.1g.10gb".into(),
                        uuid: "MIG-00000000-0000-0000-0000-000000000000".into(),
                    }],
                    in_use: true,
                    vm: Some(vm),
                    vgpu_type: Some("grid_a100d-1-10c".into()),
                    processes: vec![],
                });
            }
            gpus.push(GpuReport {
                sliced_types: Vec::new(),
                timesliced: None,
                index: g,
                uuid,
                name: "NVIDIA A100-SXM4-80GB".into(),
                pci_bus_id: format!("00000000:{g:02X}:00.0"),
                model: Some("a100-sxm4-80gb".into()),
                mig_mode: Some(MigModeReport {
                    current: true,
                    pending: true,
                }),
                gpu_instances: gis,
                free: Default::default(),
                largest_placeable: None,
                fragmentation: 0.0,
                placeable_vgpu_types: vec![],
                error: None,
                nvml_free: None,
                geometry: None,
                layout_state: None,
            });
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
        let mut usage = book.summary(86_399, 10, &present).expect("sampled");
        // XID counts at their widest on every GPU.
        for g in &mut usage.gpus {
            g.xid = Some(mig::report::XidCounts {
                total: mig::report::MAX_XID_COUNT,
                codes: (0..mig::report::MAX_XID_CODES as u64)
                    .map(|i| mig::report::XidCode {
                        xid: mig::report::MAX_XID_CODE - i,
                        count: mig::report::MAX_XID_COUNT - i,
                    })
                    .collect(),
                last: Some(mig::report::LastXid {
                    xid: mig::report::MAX_XID_CODE,
                    at: "2026-12-02T16:00:00.123456+01:00".into(),
                    gi_id: Some(GpuInstanceId(13)),
                }),
            });
        }
        assert_eq!(
            usage
                .gpus
                .iter()
                .map(|g| g.gpu_instances.len())
                .sum::<usize>(),
            56
        );
        let usage_bytes = serde_json::to_string(&usage).expect("json").len();
        eprintln!("usage: {usage_bytes} bytes");
        assert!(usage_bytes <= 32 * 1024, "usage is {usage_bytes} bytes");
        let mut doc = document::host_report(
            "4c4c4544-0000-0000-0000-000000000000",
            1,
            "2026-12-02T16:00:00Z",
            300,
            &gpus,
        );
        doc.usage = Some(usage);
        let json = doc.to_json();
        eprintln!("document: {} bytes", json.len());
        assert!(json.len() <= 64 * 1024, "document is {} bytes", json.len());
        mig::report::HostReport::from_json(&json).expect("a reader accepts it");
    }
}
