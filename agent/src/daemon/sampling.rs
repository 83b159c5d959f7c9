//! Utilization sampling: on its own period (`[agent] sample_interval_s`, default 10 s, 0 =
//! off), separate from the MIG poll, read every vGPU's utilization and framebuffer use and
//! each GPU's ECC counts through NVML, keep rolling 1 h and 24 h windows in memory
//! ([`UsageBook`]), and hand the publisher a compact summary per GPU instance
//! (`HostReport::usage`).
//!
//! Why a thread and a library handle of its own: the MIG observer may be busy applying a
//! layout for seconds, or stalled on the driver; sampling must neither wait for it nor hold it
//! up. NVML is thread-safe and reference-counts `nvmlInit`, so a second handle is cheap.
//! Sampling never changes the document's `generation`: the summary is attached at publication
//! (change or heartbeat), so utilization is as fresh as the last publication.
//! What it must never do: mark a GPU as failing because a utilization call is unsupported
//! (docs/reported-data.md, "Utilization").
use std::cell::RefCell;
use std::path::PathBuf;

use anyhow::Context;
use mig::GpuInstanceId;
use mig::report::{EccCounts, GpuReport, UsageReport};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::config::Config;
use super::nvml_observer::stall_timeout_for;
use super::run::Shared;
use super::sampling_window::{Sample, SeriesKey, UsageBook};
use super::worker::Worker;
use crate::nvml::Driver;

/// What one sampling round read on one GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuReading {
    pub uuid: String,
    pub ecc: Option<EccCounts>,
    /// `(gi, vm, sample)` per MIG-backed vGPU with a new sample.
    pub vgpus: Vec<(GpuInstanceId, String, Sample)>,
}

/// The rolling windows of this process and the clock they are kept on.
#[derive(Debug)]
pub struct UsageState {
    book: UsageBook,
    origin: Instant,
    interval_s: u32,
}

impl Default for UsageState {
    fn default() -> Self {
        UsageState {
            book: UsageBook::default(),
            origin: Instant::now(),
            interval_s: 0,
        }
    }
}

impl UsageState {
    fn now_s(&self) -> u64 {
        self.origin.elapsed().as_secs()
    }

    /// Record one round of readings.
    pub fn record(&mut self, readings: Vec<GpuReading>) {
        let now = self.now_s();
        for r in readings {
            self.book.record_ecc(&r.uuid, r.ecc);
            for (gi, vm, sample) in r.vgpus {
                let key = SeriesKey {
                    gpu_uuid: r.uuid.clone(),
                    gi,
                    vm,
                };
                self.book.record(now, key, sample);
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
        self.book.summary(self.now_s(), self.interval_s, &present)
    }
}

/// Sample until `cancel` fires (returns at once when sampling is off).
pub async fn sample_loop(
    cfg: &Config,
    lib: Option<PathBuf>,
    shared: &RefCell<Shared>,
    cancel: &CancellationToken,
) {
    let Some(period) = cfg.sample_interval else {
        shared.borrow_mut().usage.interval_s = 0;
        return;
    };
    shared.borrow_mut().usage.interval_s = u32::try_from(period.as_secs()).unwrap_or(u32::MAX);
    let mut worker = match Worker::spawn("nvml-sampler", move |_| SamplerCore::new(lib)) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!("cannot start the sampling thread: {e}; utilization is not reported");
            return;
        }
    };
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let deadline = stall_timeout_for(period);
    let mut last_error: Option<String> = None;
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let outcome = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            r = worker.call("sampling utilization", deadline, SamplerCore::sample) => r,
        };
        match outcome.map_err(anyhow::Error::from).and_then(|r| r) {
            Ok(readings) => {
                if last_error.take().is_some() {
                    tracing::info!("utilization sampling works again");
                }
                shared.borrow_mut().usage.record(readings);
            }
            Err(e) => {
                let message = format!("{e:#}");
                if last_error.as_deref() != Some(message.as_str()) {
                    tracing::warn!(error = %message, "cannot sample utilization; retrying every {}s", period.as_secs());
                }
                last_error = Some(message);
            }
        }
    }
}

/// The sampler's NVML handle and what it remembers between rounds, on its thread.
#[derive(Debug)]
struct SamplerCore {
    lib: Option<PathBuf>,
    driver: Option<Driver>,
    /// Per GPU UUID, the newest sample time seen (µs), for `lastSeenTimeStamp`.
    last_seen: Vec<(String, u64)>,
    /// GPUs whose driver does not report vGPU utilization (logged once).
    unsupported: Vec<String>,
}

impl SamplerCore {
    fn new(lib: Option<PathBuf>) -> Self {
        SamplerCore {
            lib,
            driver: None,
            last_seen: Vec::new(),
            unsupported: Vec::new(),
        }
    }

    fn sample(&mut self) -> anyhow::Result<Vec<GpuReading>> {
        if self.driver.is_none() {
            self.driver = Some(Driver::load(self.lib.as_deref())?);
        }
        let Some(driver) = self.driver.as_ref() else {
            anyhow::bail!("NVML not loaded");
        };
        let gpus = match driver.gpus() {
            Ok(g) => g,
            Err(e) => {
                self.driver = None;
                return Err(e).context("cannot list the GPUs for sampling");
            }
        };
        let mut readings = Vec::with_capacity(gpus.len());
        for gpu in &gpus {
            let Ok(uuid) = gpu.uuid() else { continue };
            let ecc = gpu.ecc_counts().ok().flatten();
            let seen = self
                .last_seen
                .iter()
                .find(|(u, _)| *u == uuid)
                .map_or(0, |(_, t)| *t);
            let vgpus = match gpu.vgpu_usage(seen) {
                Ok(Some(samples)) => samples,
                Ok(None) => {
                    if !self.unsupported.contains(&uuid) {
                        tracing::info!(gpu = %uuid, "the driver does not report vGPU utilization on this GPU");
                        self.unsupported.push(uuid.clone());
                    }
                    Vec::new()
                }
                Err(e) => {
                    tracing::debug!(gpu = %uuid, error = %e, "vGPU utilization not read this round");
                    Vec::new()
                }
            };
            if let Some(newest) = vgpus.iter().map(|v| v.time_stamp_us).max() {
                self.last_seen.retain(|(u, _)| *u != uuid);
                self.last_seen.push((uuid.clone(), newest));
            }
            readings.push(GpuReading {
                vgpus: vgpus
                    .into_iter()
                    .filter_map(|v| {
                        let sample = Sample {
                            sm: v.sm,
                            mem: v.mem,
                            enc: v.enc,
                            dec: v.dec,
                            fb_mib: v.fb_mib.map(|m| u32::try_from(m).unwrap_or(u32::MAX)),
                        };
                        Some((v.gi_id?, v.vm_id, sample))
                    })
                    .collect(),
                uuid,
                ecc: ecc.map(|e| EccCounts {
                    corrected: e.corrected,
                    uncorrected: e.uncorrected,
                }),
            });
        }
        // Only GPUs still present are remembered.
        self.last_seen
            .retain(|(u, _)| readings.iter().any(|r| r.uuid == *u));
        Ok(readings)
    }
}
