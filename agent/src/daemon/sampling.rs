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
use mig::report::EccCounts;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::config::Config;
use super::config::stall_timeout_for;
use super::events::MigEvent;
use super::sampling_window::Sample;
use super::shared::Shared;
use super::usage_state::GpuReading;
use super::worker::Worker;
use crate::nvml::{Driver, GpmSampleHandle, Gpu, XidWatch};

/// The XIDs of `uuid` taken out of `pending`, oldest first.
fn take_xids(
    pending: &mut Vec<(String, u64, Option<GpuInstanceId>)>,
    uuid: &str,
) -> Vec<(u64, Option<GpuInstanceId>)> {
    let mut taken = Vec::new();
    pending.retain(|(u, xid, gi)| {
        if u == uuid {
            taken.push((*xid, *gi));
            false
        } else {
            true
        }
    });
    taken
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
                let mut shared = shared.borrow_mut();
                for r in &readings {
                    for (xid, gi) in &r.xids {
                        tracing::warn!(gpu = %r.uuid, xid, "the GPU reported an XID error");
                        shared.events.push(MigEvent::xid(&r.uuid, *xid, *gi));
                    }
                }
                shared.usage.record(readings);
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
    /// The XID event set of `driver`, registered once per load of the library.
    xid_watch: Option<XidWatch>,
    /// XID events were found unsupported (logged once).
    xid_unsupported_logged: bool,
    /// GPM state per GPU UUID, for the loaded `driver` (freed before it is dropped).
    gpm: Vec<GpmGpu>,
    /// GPUs on which GPM was found unsupported or failing (logged once each).
    gpm_logged: Vec<String>,
}

/// GPM on one GPU: whether the driver offers it (asked once per load) and each GI's sample of
/// the previous round.
#[derive(Debug)]
struct GpmGpu {
    uuid: String,
    supported: bool,
    previous: Vec<(GpuInstanceId, GpmSampleHandle)>,
}

impl GpmGpu {
    fn free(self, driver: &Driver) {
        for (_, h) in self.previous {
            driver.free_gpm_sample(h);
        }
    }
}

/// Log once per GPU that GPM is not used there.
fn gpm_not_used(logged: &mut Vec<String>, uuid: &str, why: &str) {
    if !logged.iter().any(|u| u == uuid) {
        tracing::info!(gpu = %uuid, "GPM is not used on this GPU: {why}");
        logged.push(uuid.to_string());
    }
}

/// One GPM round on `gpu`: a new sample of every GI with an active vGPU, and the SM / DRAM
/// bandwidth figures since the previous round's sample for those GIs that `covered` (GIs
/// with a per-vGPU sample this round) does not name. GPM never fails the round: an error
/// only means no GPM figure this time.
fn gpm_round(
    driver: &Driver,
    gpu: &Gpu<'_>,
    state: &mut GpmGpu,
    logged: &mut Vec<String>,
    covered: &[GpuInstanceId],
) -> Vec<(GpuInstanceId, String, Sample)> {
    let mut figures = Vec::new();
    if !state.supported {
        return figures;
    }
    let vgpus = match gpu.vgpus() {
        Ok(v) => v,
        Err(e) => {
            tracing::debug!(gpu = %state.uuid, error = %e, "active vGPUs not read for GPM this round");
            return figures;
        }
    };
    let mut previous = std::mem::take(&mut state.previous);
    for v in vgpus {
        let Some(gi) = v.gi_id else { continue };
        let earlier = previous
            .iter()
            .position(|(g, _)| *g == gi)
            .map(|i| previous.swap_remove(i).1);
        let later = match gpu.gpm_mig_sample(gi) {
            Ok(Some(h)) => h,
            Ok(None) => {
                gpm_not_used(
                    logged,
                    &state.uuid,
                    "the driver refuses GPM samples of GPU instances",
                );
                state.supported = false;
                if let Some(h) = earlier {
                    driver.free_gpm_sample(h);
                }
                break;
            }
            Err(e) => {
                tracing::debug!(gpu = %state.uuid, gi = gi.0, error = %e, "no GPM sample this round");
                if let Some(h) = earlier {
                    driver.free_gpm_sample(h);
                }
                continue;
            }
        };
        if let Some(earlier) = earlier {
            if !covered.contains(&gi) {
                match driver.gpm_figures(&earlier, &later) {
                    Ok(f) => figures.push((
                        gi,
                        v.vm_id.clone(),
                        Sample {
                            sm: f.sm.round() as u8,
                            mem: f.dram_bw.round() as u8,
                            enc: 0,
                            dec: 0,
                            fb_mib: None,
                        },
                    )),
                    Err(e) => {
                        tracing::debug!(gpu = %state.uuid, gi = gi.0, error = %e, "no GPM figures this round");
                    }
                }
            }
            driver.free_gpm_sample(earlier);
        }
        state.previous.push((gi, later));
    }
    // GIs without a vGPU any more (or after a refusal): their samples are of no use.
    for (_, h) in previous {
        driver.free_gpm_sample(h);
    }
    if !state.supported {
        for (_, h) in std::mem::take(&mut state.previous) {
            driver.free_gpm_sample(h);
        }
    }
    figures
}

impl SamplerCore {
    fn new(lib: Option<PathBuf>) -> Self {
        SamplerCore {
            lib,
            driver: None,
            last_seen: Vec::new(),
            unsupported: Vec::new(),
            xid_watch: None,
            xid_unsupported_logged: false,
            gpm: Vec::new(),
            gpm_logged: Vec::new(),
        }
    }

    /// Load NVML and register for XID events once per load.
    fn load(&mut self) -> anyhow::Result<()> {
        let driver = Driver::load(self.lib.as_deref())?;
        match driver.watch_xids() {
            Ok(Some(watch)) => self.xid_watch = Some(watch),
            Ok(None) => {
                if !self.xid_unsupported_logged {
                    tracing::info!(
                        "the driver does not deliver XID events; XID counts are not reported"
                    );
                    self.xid_unsupported_logged = true;
                }
            }
            Err(e) => {
                if !self.xid_unsupported_logged {
                    tracing::warn!(error = %e, "cannot register for XID events; XID counts are not reported until the agent restarts");
                    self.xid_unsupported_logged = true;
                }
            }
        }
        self.driver = Some(driver);
        Ok(())
    }

    /// Forget the library (it is loaded again next round), freeing the event set first.
    fn unload(&mut self) {
        if let (Some(driver), Some(watch)) = (self.driver.as_ref(), self.xid_watch.take()) {
            driver.unwatch_xids(watch);
        }
        if let Some(driver) = self.driver.as_ref() {
            for g in std::mem::take(&mut self.gpm) {
                g.free(driver);
            }
        }
        self.driver = None;
    }

    /// The XIDs pending, per GPU UUID.
    fn drain_xids(&self) -> Vec<(String, u64, Option<GpuInstanceId>)> {
        let (Some(driver), Some(watch)) = (self.driver.as_ref(), self.xid_watch.as_ref()) else {
            return Vec::new();
        };
        match driver.drain_xids(watch) {
            Ok(events) => events
                .into_iter()
                .map(|e| (e.gpu_uuid, e.xid, e.gi))
                .collect(),
            Err(e) => {
                tracing::debug!(error = %e, "XID events not read this round");
                Vec::new()
            }
        }
    }

    fn sample(&mut self) -> anyhow::Result<Vec<GpuReading>> {
        if self.driver.is_none() {
            self.load()?;
        }
        let mut xids = self.drain_xids();
        let Some(driver) = self.driver.as_ref() else {
            anyhow::bail!("NVML not loaded");
        };
        let gpus = match driver.gpus() {
            Ok(g) => g,
            Err(e) => {
                self.unload();
                return Err(e).context("cannot list the GPUs for sampling");
            }
        };
        let watched: Vec<String> = self
            .xid_watch
            .as_ref()
            .map(|w| w.gpus().map(str::to_string).collect())
            .unwrap_or_default();
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
            let covered: Vec<GpuInstanceId> = vgpus.iter().filter_map(|v| v.gi_id).collect();
            let i = match self.gpm.iter().position(|g| g.uuid == uuid) {
                Some(i) => i,
                None => {
                    let supported = match gpu.gpm_supported() {
                        Ok(true) => true,
                        Ok(false) => {
                            gpm_not_used(
                                &mut self.gpm_logged,
                                &uuid,
                                "the driver does not offer GPM (Hopper and newer only)",
                            );
                            false
                        }
                        Err(e) => {
                            gpm_not_used(
                                &mut self.gpm_logged,
                                &uuid,
                                &format!("cannot ask whether GPM is supported: {e}"),
                            );
                            false
                        }
                    };
                    self.gpm.push(GpmGpu {
                        uuid: uuid.clone(),
                        supported,
                        previous: Vec::new(),
                    });
                    self.gpm.len() - 1
                }
            };
            let gpm = gpm_round(
                driver,
                gpu,
                &mut self.gpm[i],
                &mut self.gpm_logged,
                &covered,
            );
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
                gpm,
                xid_watched: watched.contains(&uuid),
                xids: take_xids(&mut xids, &uuid),
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
        let (kept, gone): (Vec<GpmGpu>, Vec<GpmGpu>) = std::mem::take(&mut self.gpm)
            .into_iter()
            .partition(|g| readings.iter().any(|r| r.uuid == g.uuid));
        self.gpm = kept;
        for g in gone {
            g.free(driver);
        }
        Ok(readings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::usage_state::UsageState;
    use mig::report::UsageSource;

    #[test]
    fn take_xids_keeps_order_and_leaves_other_gpus() {
        let mut pending = vec![
            ("GPU-a".to_string(), 1, None),
            ("GPU-b".to_string(), 2, None),
            ("GPU-a".to_string(), 3, Some(GpuInstanceId(1))),
        ];
        assert_eq!(
            take_xids(&mut pending, "GPU-a"),
            vec![(1, None), (3, Some(GpuInstanceId(1)))]
        );
        assert_eq!(pending.len(), 1);
    }

    /// The child tests below load nvml-sim in a process of their own (as nvml_observer's).
    const CHILD_LIB: &str = "VMIG_TEST_SAMPLER_NVML_LIB";

    fn run_child(test: &str, extra: &[&str]) {
        run_child_on("a100-pcie-40gb", test, extra);
    }

    fn run_child_on(model: &str, test: &str, extra: &[&str]) {
        let dir = vmig_testkit::temp_dir("agent-sampler-xid");
        let state = dir.path().join("nvml-sim.json");
        let out = std::process::Command::new(vmig_testkit::workspace_bin("nvml-sim"))
            .arg("--state")
            .arg(&state)
            .args(["init", "--mig", "--gpu", model])
            .args(extra)
            .output()
            .expect("run nvml-sim init");
        assert!(out.status.success(), "{out:?}");
        vmig_testkit::run_child_test(
            test,
            [
                ("NVML_SIM_STATE", state),
                (CHILD_LIB, vmig_testkit::nvml_sim_lib()),
            ],
        );
    }

    fn child_core() -> SamplerCore {
        SamplerCore::new(Some(PathBuf::from(
            std::env::var_os(CHILD_LIB).expect("started by the parent test"),
        )))
    }

    fn inject_xid(xid: &str) {
        sim_ctl(&["xid", "--gpu", "0", "--xid", xid]);
    }

    /// Run `nvml-sim ARGS` on the child's state file.
    fn sim_ctl(args: &[&str]) {
        let state = std::env::var_os("NVML_SIM_STATE").expect("set by the parent test");
        let out = std::process::Command::new(vmig_testkit::workspace_bin("nvml-sim"))
            .arg("--state")
            .arg(state)
            .args(args)
            .output()
            .expect("run nvml-sim");
        assert!(out.status.success(), "{out:?}");
    }

    /// A 3g GI on GPU 0 with VM `vm-g`'s vGPU of `vgpu_type` on it, loaded at 60 % SM and
    /// 25 % memory for an hour; returns the GI id.
    fn loaded_vgpu(core: &mut SamplerCore, vgpu_type: &str) -> GpuInstanceId {
        core.sample().expect("first round loads NVML");
        let driver = core.driver.as_ref().expect("loaded");
        let gpus = driver.gpus().expect("GPUs");
        let gi = gpus[0]
            .create_gi(mig::GiProfileId(9), None)
            .expect("3g GI")
            .id();
        let gi_text = gi.0.to_string();
        sim_ctl(&[
            "occupy", "-i", "0", "--gi", &gi_text, "--vgpu", vgpu_type, "--vm", "vm-g",
        ]);
        sim_ctl(&[
            "load",
            "--vm",
            "vm-g",
            "--phase",
            "sm=60,mem=25,fb=4000,s=3600",
        ]);
        gi
    }

    fn present(uuid: &str, gi: GpuInstanceId) -> Vec<(String, Vec<GpuInstanceId>)> {
        vec![(uuid.to_string(), vec![gi])]
    }

    #[test]
    fn hopper_without_vgpu_utilization_gets_sm_from_gpm() {
        run_child_on(
            "h100-sxm5-80gb",
            "daemon::sampling::tests::child_hopper_without_vgpu_utilization_gets_sm_from_gpm",
            &[],
        );
    }

    #[test]
    #[ignore = "runs inside hopper_without_vgpu_utilization_gets_sm_from_gpm"]
    fn child_hopper_without_vgpu_utilization_gets_sm_from_gpm() {
        let mut core = child_core();
        let gi = loaded_vgpu(&mut core, "nvidia_h100xm-3-40c");
        // While per-vGPU utilization answers, GPM only keeps its sample fresh.
        let r = core.sample().expect("sample");
        assert_eq!(r[0].vgpus.len(), 1, "{r:?}");
        assert!(r[0].gpm.is_empty(), "{r:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
        let r = core.sample().expect("sample");
        assert!(r[0].gpm.is_empty(), "per-vGPU sample wins: {r:?}");

        sim_ctl(&["load", "-i", "0", "--vgpu-utilization", "unsupported"]);
        let mut usage = UsageState::default();
        for _ in 0..2 {
            std::thread::sleep(std::time::Duration::from_millis(200));
            let r = core.sample().expect("sample");
            assert!(r[0].vgpus.is_empty(), "{r:?}");
            assert_eq!(
                r[0].gpm,
                vec![(
                    gi,
                    "vm-g".to_string(),
                    Sample {
                        sm: 60,
                        mem: 25,
                        enc: 0,
                        dec: 0,
                        fb_mib: None
                    }
                )],
                "the SM figure comes from GPM"
            );
            usage.record(r);
        }
        let uuid = core.gpm[0].uuid.clone();
        let report = usage
            .book
            .summary(usage.now_s(), 10, &present(&uuid, gi))
            .expect("sampled");
        let g = &report.gpus[0].gpu_instances[0];
        assert_eq!(g.source, Some(UsageSource::Gpm));
        assert_eq!(g.vm.as_deref(), Some("vm-g"));
        assert_eq!(g.windows[0].sm.max(), 60);
        assert_eq!(g.windows[0].mem.max(), 25);
        let mut doc = super::super::document::host_report("h", 1, "2026-12-02T18:00:00Z", 300, &[]);
        doc.usage = Some(report);
        doc.validate()
            .expect("a GPM-sourced summary is a valid document");
        core.unload();
    }

    #[test]
    fn ampere_gets_nothing_from_gpm() {
        run_child(
            "daemon::sampling::tests::child_ampere_gets_nothing_from_gpm",
            &[],
        );
    }

    #[test]
    #[ignore = "runs inside ampere_gets_nothing_from_gpm"]
    fn child_ampere_gets_nothing_from_gpm() {
        let mut core = child_core();
        loaded_vgpu(&mut core, "grid_a100-3-20c");
        sim_ctl(&["load", "-i", "0", "--vgpu-utilization", "unsupported"]);
        for _ in 0..2 {
            std::thread::sleep(std::time::Duration::from_millis(200));
            let r = core.sample().expect("sampling works without GPM");
            assert!(r[0].vgpus.is_empty() && r[0].gpm.is_empty(), "{r:?}");
        }
        assert!(!core.gpm[0].supported);
        assert_eq!(core.gpm_logged.len(), 1, "logged once");
        core.unload();
    }

    #[test]
    fn the_sampler_drains_xid_events_each_round() {
        run_child(
            "daemon::sampling::tests::child_the_sampler_drains_xid_events_each_round",
            &[],
        );
    }

    #[test]
    #[ignore = "runs inside the_sampler_drains_xid_events_each_round"]
    fn child_the_sampler_drains_xid_events_each_round() {
        let mut core = child_core();
        let r = core.sample().expect("sample");
        assert!(r[0].xid_watched && r[0].xids.is_empty(), "{r:?}");
        inject_xid("79");
        inject_xid("48");
        let r = core.sample().expect("sample");
        assert_eq!(r[0].xids, vec![(79, None), (48, None)]);
        let mut usage = UsageState::default();
        usage.record(r);
        assert_eq!(usage.xids[0].1.total, 2);
        // Drained: the next round has none, and the watched GPU still reports zero new ones.
        let r = core.sample().expect("sample");
        assert!(r[0].xid_watched && r[0].xids.is_empty(), "{r:?}");
        usage.record(r);
        assert_eq!(usage.xids[0].1.total, 2);
        core.unload();
    }

    #[test]
    fn without_event_support_no_xid_counts_are_kept() {
        run_child(
            "daemon::sampling::tests::child_without_event_support_no_xid_counts_are_kept",
            &["--no-xid-events"],
        );
    }

    #[test]
    #[ignore = "runs inside without_event_support_no_xid_counts_are_kept"]
    fn child_without_event_support_no_xid_counts_are_kept() {
        let mut core = child_core();
        let r = core.sample().expect("sampling works without events");
        assert!(!r[0].xid_watched, "{r:?}");
        assert!(core.xid_unsupported_logged);
        inject_xid("79");
        let r = core.sample().expect("sample");
        assert!(r[0].xids.is_empty());
        let mut usage = UsageState::default();
        usage.record(r);
        assert!(usage.xids.is_empty(), "nothing is published for the GPU");
    }
}
