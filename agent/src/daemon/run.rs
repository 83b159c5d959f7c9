//! The daemon's two loops, run side by side on one thread:
//!
//! - **observe**: every `poll_interval` read the GPUs ([`Observer`]), give the state a new
//!   generation when it changed, and wake the publisher. Enforce the configured layout at
//!   start and whenever a pending MIG mode became current.
//! - **publish**: whenever there is a newer generation than the last one published, or a
//!   heartbeat is due, publish the *latest* state ([`Sink`]); on failure wait with
//!   [`Backoff`] and try again with whatever is latest by then. Observation never waits for
//!   vCenter, so a long outage only delays publication.
//!
//! Both loops share [`Shared`] through a `RefCell` that is never borrowed across an `.await`,
//! and stop when the session's `CancellationToken` fires (SIGTERM, SIGHUP reload).
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::SystemTime;

use mig::report::MigModeReport;
use tokio::sync::Notify;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::backoff::{Backoff, BackoffPolicy};
use super::config::{Config, LayoutRef};
use super::document;
use super::observe::Observer;
use super::publish::{PublishError, Sink};
use super::shared::{CLOSE_TIMEOUT, Latest, Shared};

/// Run both loops until `cancel` fires, then close the sink.
pub async fn serve<O: Observer, S: Sink>(
    cfg: &Config,
    observer: &mut O,
    sink: &mut S,
    shared: &RefCell<Shared>,
    policy: BackoffPolicy,
    cancel: &CancellationToken,
) {
    let mut none = super::desired::NoDesired;
    serve_reconciling(cfg, observer, sink, &mut none, shared, policy, cancel).await;
}

/// [`serve`], plus the loop that reads the desired layout from `source` for reconcile
/// (`reconcile.rs`; it returns at once unless `[layout] source = "vcenter"`).
pub async fn serve_reconciling<O: Observer, S: Sink, D: super::desired::DesiredSource>(
    cfg: &Config,
    observer: &mut O,
    sink: &mut S,
    source: &mut D,
    shared: &RefCell<Shared>,
    policy: BackoffPolicy,
    cancel: &CancellationToken,
) {
    let changed = Notify::new();
    tokio::join!(
        observe_loop(cfg, observer, shared, &changed, cancel),
        publish_loop(cfg, sink, shared, &changed, policy, cancel),
        super::reconcile_loop::desired_loop(cfg, source, shared, cancel),
    );
}

async fn observe_loop<O: Observer>(
    cfg: &Config,
    observer: &mut O,
    shared: &RefCell<Shared>,
    changed: &Notify,
    cancel: &CancellationToken,
) {
    if let Some(layout) = &cfg.layout {
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            () = enforce(observer, layout, "at start", shared) => {}
        }
    }
    let mut ticks = tokio::time::interval(cfg.poll_interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut modes: HashMap<String, MigModeReport> = HashMap::new();
    let mut last_error: Option<String> = None;
    let mut reconciler = super::reconcile::Reconciler::default();
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        // Awaited beside the cancellation: a stalled NVML call must not hold up SIGTERM.
        let observed = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            r = observer.observe() => r,
        };
        let mut gpus = match observed {
            Ok(gpus) => gpus,
            Err(e) => {
                let message = format!("{e:#}");
                if e.downcast_ref::<super::worker::Stalled>().is_some()
                    && mark_stalled(shared, &message)
                {
                    changed.notify_one();
                }
                // One line per distinct problem, not one per poll.
                if last_error.as_deref() != Some(message.as_str()) {
                    tracing::error!(error = %message, "cannot read the GPUs through NVML; retrying every poll");
                    shared
                        .borrow_mut()
                        .events
                        .push(super::events::MigEvent::nvml_error(&message));
                }
                last_error = Some(message);
                continue;
            }
        };
        if last_error.take().is_some() {
            tracing::info!(gpus = gpus.len(), "NVML readable again");
        }
        if let Some(layout) = &cfg.layout {
            let applied: Vec<u32> = gpus
                .iter()
                .filter(|g| became_current(modes.get(&g.uuid).copied(), g.mig_mode))
                .map(|g| g.index)
                .collect();
            if !applied.is_empty() {
                let when = format!("after the pending MIG mode of GPU {applied:?} was applied");
                // Publish the state the layout produced, not the one before it.
                let after = tokio::select! {
                    biased;
                    () = cancel.cancelled() => return,
                    after = async {
                        enforce(observer, layout, &when, shared).await;
                        observer.observe().await
                    } => after,
                };
                if let Ok(after) = after {
                    gpus = after;
                }
            }
        }
        // Desired layout (reconcile.rs): only with `[layout] source = "vcenter"`.
        if cfg.layout_source == super::config::LayoutSourceMode::Vcenter {
            tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                () = super::reconcile_loop::step(observer, shared, &mut reconciler, &mut gpus) => {}
            }
        }
        modes = gpus
            .iter()
            .filter_map(|g| Some((g.uuid.clone(), g.mig_mode?)))
            .collect();
        let fingerprint = document::fingerprint(&gpus);
        let is_new = {
            let mut sh = shared.borrow_mut();
            let generation = sh.store.record(&fingerprint);
            let is_new = sh.latest.as_ref().map(|l| l.generation) != Some(generation);
            let observed_at = document::rfc3339(SystemTime::now());
            let events = match &sh.latest {
                Some(before) => super::events::changes(&before.gpus, &gpus),
                None => super::events::at_start(&gpus),
            };
            for e in events {
                sh.events.push(e);
            }
            sh.latest = Some(Latest {
                gpus,
                observed_at,
                generation,
            });
            if is_new {
                tracing::info!(generation, "MIG state changed");
            }
            is_new
        };
        if is_new {
            changed.notify_one();
        }
    }
}

/// A pending MIG mode change has just been applied (GPU reset or host reboot).
fn became_current(before: Option<MigModeReport>, now: Option<MigModeReport>) -> bool {
    matches!((before, now), (Some(b), Some(n)) if b.current != b.pending && n.current == n.pending)
}

/// Puts a stall on every GPU of the latest observation (`error`), under a new generation, so
/// that vmig shows it; returns whether anything changed. The observation time stays that of
/// the last real observation, so readers also see the report age.
fn mark_stalled(shared: &RefCell<Shared>, message: &str) -> bool {
    let mut sh = shared.borrow_mut();
    let Some(mut latest) = sh.latest.clone() else {
        return false;
    };
    let mut changed = false;
    for g in &mut latest.gpus {
        if g.error.as_deref() != Some(message) {
            g.error = Some(message.to_string());
            changed = true;
        }
    }
    if changed {
        latest.generation = sh.store.record(&document::fingerprint(&latest.gpus));
        sh.latest = Some(latest);
    }
    changed
}

async fn enforce<O: Observer>(
    observer: &mut O,
    layout: &LayoutRef,
    when: &str,
    shared: &RefCell<Shared>,
) {
    let event = match observer.enforce_layout(layout).await {
        Ok(done) => {
            tracing::info!(layout = %layout.name, file = %layout.file.display(), "layout enforced {when}: {done}");
            super::events::MigEvent::layout_applied(&layout.name, &format!("{when}: {done}"))
        }
        Err(e) => {
            let why = format!("{e:#}");
            tracing::error!(
                layout = %layout.name, file = %layout.file.display(), error = %why,
                "cannot enforce the layout {when}; reporting the GPUs as they are"
            );
            super::events::MigEvent::layout_refused(&layout.name, &format!("{when}: {why}"))
        }
    };
    shared.borrow_mut().events.push(event);
}

async fn publish_loop<S: Sink>(
    cfg: &Config,
    sink: &mut S,
    shared: &RefCell<Shared>,
    changed: &Notify,
    policy: BackoffPolicy,
    cancel: &CancellationToken,
) {
    let mut backoff = Backoff::seeded(policy);
    let mut last_ok: Option<Instant> = None;
    let mut retry = false;
    loop {
        let due = {
            let sh = shared.borrow();
            match (&sh.latest, sh.published, last_ok) {
                (None, _, _) => None,
                (Some(_), _, _) if retry => Some(Instant::now()),
                (Some(_), _, None) => Some(Instant::now()),
                (Some(l), Some(p), Some(_)) if l.generation > p => Some(Instant::now()),
                (Some(_), _, Some(t)) => Some(t + cfg.heartbeat_interval),
            }
        };
        // MIG events waiting for the rate limit also wake the publisher (`events.rs`).
        let events_due = shared.borrow_mut().events.due_at(Instant::now());
        let due = match (due, events_due) {
            (Some(a), Some(b)) if last_ok.is_some() => Some(a.min(b)),
            (a, _) => a,
        };
        let wait = async {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            () = changed.notified() => continue,
            () = wait => {}
        }
        let outcome = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            outcome = publish_once(cfg, sink, shared) => outcome,
        };
        match outcome {
            Ok((generation, host)) => {
                if backoff.attempts() > 0 {
                    tracing::info!(host = %host, generation, "published again after {} failed attempts", backoff.attempts());
                } else {
                    tracing::info!(host = %host, generation, "published");
                }
                backoff.reset();
                shared.borrow_mut().published = Some(generation);
                last_ok = Some(Instant::now());
                retry = false;
            }
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(
                    error = %e, attempt = backoff.attempts(), retry_in_s = delay.as_secs_f32(),
                    "cannot publish to vCenter; still observing, will retry"
                );
                retry = true;
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    if tokio::time::timeout(CLOSE_TIMEOUT, sink.close())
        .await
        .is_err()
    {
        tracing::warn!("vCenter logout did not finish within {CLOSE_TIMEOUT:?}; exiting anyway");
    }
}

/// One publication of the latest state; returns the generation written and the host's label.
async fn publish_once<S: Sink>(
    cfg: &Config,
    sink: &mut S,
    shared: &RefCell<Shared>,
) -> Result<(u64, String), PublishError> {
    let target = sink.target().await?;
    // No await between reading the latest state and building the document: what is written
    // is exactly the latest observation with its own generation.
    let (document, summary, generation) = {
        let mut sh = shared.borrow_mut();
        let Shared {
            store,
            latest,
            usage,
            ..
        } = &mut *sh;
        let Some(latest) = latest.as_mut() else {
            return Err(PublishError::Vcenter {
                url: cfg.vcenter.url.clone(),
                detail: "nothing observed yet".into(),
            });
        };
        if let Some(published) = &target.published {
            if published.host_uuid != target.host_uuid {
                tracing::warn!(
                    host = %target.host_label, found = %published.host_uuid, ours = %target.host_uuid,
                    "the document on this host names another host UUID; replacing it (is another agent configured with this host?)"
                );
            } else if published.generation > latest.generation
                || (published.generation == latest.generation
                    && document::fingerprint(&published.gpus)
                        != document::fingerprint(&latest.gpus))
            {
                // vCenter holds a generation this process did not write (state file lost, or an
                // earlier run): never go below it.
                latest.generation = store.raise_above(published.generation);
                tracing::info!(
                    found = published.generation,
                    now = latest.generation,
                    "continuing above the generation found in vCenter"
                );
            }
        }
        let mut report = document::host_report(
            &target.host_uuid,
            latest.generation,
            &latest.observed_at,
            cfg.heartbeat_interval.as_secs(),
            &latest.gpus,
        );
        report.usage = usage.summary(&latest.gpus);
        (
            report.to_json(),
            document::summary(&latest.gpus),
            latest.generation,
        )
    };
    sink.write(&document, &summary).await?;
    let events = shared.borrow_mut().events.take_ready(Instant::now());
    if !events.is_empty()
        && let Err(e) = sink.post_events(&events).await
    {
        tracing::warn!(error = %e, count = events.len(), "cannot post MIG events to vCenter (privilege Global.LogEvent?); will retry with the next publication");
        let mut sh = shared.borrow_mut();
        sh.events.requeue(events);
        sh.events.hold(Instant::now() + cfg.heartbeat_interval);
    }
    Ok((generation, target.host_label))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::generation::GenerationStore;
    use crate::daemon::publish::Target;
    use mig::report::GpuReport;
    use mig::report::HostReport;
    use std::path::Path;
    use std::rc::Rc;
    use std::time::Duration;

    /// GPUs whose state the test changes through a shared cell.
    struct FakeObserver {
        state: Rc<RefCell<Vec<GpuReport>>>,
        layouts: Rc<RefCell<Vec<String>>>,
    }

    impl Observer for FakeObserver {
        async fn observe(&mut self) -> anyhow::Result<Vec<GpuReport>> {
            Ok(self.state.borrow().clone())
        }
        async fn enforce_layout(&mut self, layout: &LayoutRef) -> anyhow::Result<String> {
            self.layouts.borrow_mut().push(layout.name.clone());
            Ok("nothing to do".into())
        }
    }

    /// A vCenter that can be switched down, and records every write.
    #[derive(Default)]
    struct FakeVc {
        down: bool,
        writes: Vec<HostReport>,
        summaries: Vec<String>,
        attempts: u32,
        closed: bool,
        /// Event type ids posted, and whether posting is refused (no `Global.LogEvent`).
        events: Vec<&'static str>,
        events_refused: bool,
    }

    struct FakeSink(Rc<RefCell<FakeVc>>);

    impl Sink for FakeSink {
        async fn target(&mut self) -> Result<Target, PublishError> {
            let mut vc = self.0.borrow_mut();
            vc.attempts += 1;
            if vc.down {
                return Err(PublishError::Vcenter {
                    url: "fake".into(),
                    detail: "connection refused".into(),
                });
            }
            Ok(Target {
                host_uuid: "u-1".into(),
                host_label: "host-1".into(),
                published: vc.writes.last().cloned(),
            })
        }
        async fn write(&mut self, document: &str, summary: &str) -> Result<(), PublishError> {
            let mut vc = self.0.borrow_mut();
            vc.writes
                .push(HostReport::from_json(document).expect("valid document"));
            vc.summaries.push(summary.to_string());
            Ok(())
        }
        async fn post_events(
            &mut self,
            events: &[crate::daemon::events::MigEvent],
        ) -> Result<(), PublishError> {
            let mut vc = self.0.borrow_mut();
            if vc.events_refused {
                return Err(PublishError::Vcenter {
                    url: "fake".into(),
                    detail: "NoPermission Global.LogEvent".into(),
                });
            }
            vc.events.extend(events.iter().map(|e| e.kind.type_id()));
            Ok(())
        }
        async fn close(&mut self) {
            self.0.borrow_mut().closed = true;
        }
    }

    fn gpu(free: u32, mode: (bool, bool)) -> GpuReport {
        GpuReport {
            sliced_types: Vec::new(),
            timesliced: None,
            index: 0,
            uuid: "GPU-0".into(),
            name: "NVIDIA A100-PCIE-40GB".into(),
            pci_bus_id: "00000000:3B:00.0".into(),
            model: None,
            mig_mode: Some(MigModeReport {
                current: mode.0,
                pending: mode.1,
            }),
            gpu_instances: vec![],
            free: [("1g.5gb".to_string(), free)].into_iter().collect(),
            largest_placeable: None,
            fragmentation: 0.0,
            placeable_vgpu_types: vec![],
            error: None,
            nvml_free: None,
            layout_state: None,
            geometry: None,
        }
    }

    fn config(layout: bool) -> Config {
        let mut text = String::from(
            "[vcenter]\nurl = \"https://vc\"\nusername = \"u\"\npassword_file = \"/p\"\n\
             [agent]\npoll_interval_s = 5\nheartbeat_interval_s = 300\n",
        );
        if layout {
            text.push_str("layout_file = \"/l.yaml\"\nlayout_name = \"all-1g\"\n");
        }
        Config::parse(Path::new("/etc/vmig/agent.toml"), &text).expect("valid")
    }

    struct Rig {
        gpus: Rc<RefCell<Vec<GpuReport>>>,
        layouts: Rc<RefCell<Vec<String>>>,
        vc: Rc<RefCell<FakeVc>>,
        cancel: CancellationToken,
    }

    /// Run the daemon's loops on a paused clock while `script` drives the world.
    async fn with_daemon<F: std::future::Future<Output = ()>>(
        layout: bool,
        initial_published: Option<HostReport>,
        script: impl FnOnce(Rc<Rig>) -> F,
    ) -> Rc<Rig> {
        let rig = Rc::new(Rig {
            gpus: Rc::new(RefCell::new(vec![gpu(7, (true, true))])),
            layouts: Rc::default(),
            vc: Rc::default(),
            cancel: CancellationToken::new(),
        });
        if let Some(p) = initial_published {
            rig.vc.borrow_mut().writes.push(p);
        }
        let cfg = config(layout);
        let shared = RefCell::new(Shared::new(GenerationStore::open(None)));
        let mut observer = FakeObserver {
            state: rig.gpus.clone(),
            layouts: rig.layouts.clone(),
        };
        let mut sink = FakeSink(rig.vc.clone());
        tokio::join!(
            serve(
                &cfg,
                &mut observer,
                &mut sink,
                &shared,
                BackoffPolicy::default(),
                &rig.cancel
            ),
            async {
                script(rig.clone()).await;
                rig.cancel.cancel();
            }
        );
        rig
    }

    async fn sleep_s(s: u64) {
        tokio::time::sleep(Duration::from_secs(s)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn publishes_on_change_and_on_heartbeat_only() {
        let rig = with_daemon(false, None, |rig| async move {
            sleep_s(1).await;
            assert_eq!(
                rig.vc.borrow().writes.len(),
                1,
                "first observation is published at once"
            );
            sleep_s(60).await;
            assert_eq!(
                rig.vc.borrow().writes.len(),
                1,
                "no change, no heartbeat yet: nothing published"
            );
            rig.gpus.borrow_mut()[0].free.insert("1g.5gb".into(), 6);
            sleep_s(6).await;
            assert_eq!(
                rig.vc.borrow().writes.len(),
                2,
                "a change is published within one poll"
            );
            sleep_s(300).await;
            assert_eq!(
                rig.vc.borrow().writes.len(),
                3,
                "heartbeat republishes the unchanged state"
            );
        })
        .await;
        let vc = rig.vc.borrow();
        let gens: Vec<u64> = vc.writes.iter().map(|w| w.generation).collect();
        assert_eq!(gens, [1, 2, 2]);
        assert_ne!(vc.writes[1].observed_at, "", "observed_at is set");
        assert_eq!(vc.summaries[0], "1×A100-PCIE-40GB MIG on | free: 1g.5gb×7");
        assert!(vc.closed, "the session is closed at shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn mig_changes_become_events_and_a_refused_post_causes_no_publish_storm() {
        let mode = |current, pending| Some(MigModeReport { current, pending });
        let rig = with_daemon(false, None, |rig| async move {
            sleep_s(1).await;
            assert!(rig.vc.borrow().events.is_empty(), "nothing changed yet");
            rig.gpus.borrow_mut()[0].mig_mode = mode(true, false);
            sleep_s(6).await;
            assert_eq!(rig.vc.borrow().events, ["com.vmig.mig.mode.pending"]);
            // vCenter refuses events: the document is still published, the event waits.
            rig.vc.borrow_mut().events_refused = true;
            rig.gpus.borrow_mut()[0].mig_mode = mode(false, false);
            sleep_s(6).await;
            let writes = rig.vc.borrow().writes.len();
            assert_eq!(writes, 3, "both changes published");
            sleep_s(120).await;
            assert_eq!(
                rig.vc.borrow().writes.len(),
                writes,
                "a refused post does not make the publisher retry before the heartbeat"
            );
            rig.vc.borrow_mut().events_refused = false;
            sleep_s(300).await;
        })
        .await;
        let vc = rig.vc.borrow();
        assert_eq!(
            vc.events,
            ["com.vmig.mig.mode.pending", "com.vmig.mig.mode.done"],
            "the held event is posted with the heartbeat"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn outage_backs_off_then_publishes_latest() {
        let rig = with_daemon(false, None, |rig| async move {
            sleep_s(1).await;
            assert_eq!(rig.vc.borrow().writes.len(), 1);
            rig.vc.borrow_mut().down = true;
            let before = rig.vc.borrow().attempts;
            rig.gpus.borrow_mut()[0].free.insert("1g.5gb".into(), 3);
            sleep_s(600).await;
            let attempts = rig.vc.borrow().attempts - before;
            // 1+2+4+8+16+32+60+60… with jitter ≥ half: between 10 and 30 attempts in 10 min.
            assert!(
                (8..=40).contains(&attempts),
                "backoff should pace retries, got {attempts}"
            );
            rig.gpus.borrow_mut()[0].free.insert("1g.5gb".into(), 1);
            // Let a poll observe the new state while vCenter is still down: otherwise a retry
            // landing between the switch and the next poll would publish the older state
            // first, and the test would see three writes (1 run in ~30 before this wait).
            sleep_s(6).await;
            rig.vc.borrow_mut().down = false;
            sleep_s(61).await;
        })
        .await;
        let vc = rig.vc.borrow();
        assert_eq!(
            vc.writes.len(),
            2,
            "only the latest state is published after the outage"
        );
        assert_eq!(vc.writes[1].gpus[0].free["1g.5gb"], 1);
        assert_eq!(
            vc.writes[1].generation, 3,
            "both changes counted, the last one published"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn never_publishes_below_a_newer_generation() {
        let mut newer = document::host_report(
            "u-1",
            41,
            "2026-01-01T00:00:00Z",
            300,
            &[gpu(1, (true, true))],
        );
        newer.agent_version = "0.0.9".into();
        let rig = with_daemon(false, Some(newer), |_| async { sleep_s(1).await }).await;
        let vc = rig.vc.borrow();
        assert_eq!(vc.writes.last().map(|w| w.generation), Some(42));
    }

    #[tokio::test(start_paused = true)]
    async fn layout_enforced_at_start_and_after_pending_mode_applies() {
        let rig = with_daemon(true, None, |rig| async move {
            rig.gpus.borrow_mut()[0].mig_mode = Some(MigModeReport {
                current: false,
                pending: true,
            });
            sleep_s(6).await;
            assert_eq!(rig.layouts.borrow().len(), 1, "only at start so far");
            rig.gpus.borrow_mut()[0].mig_mode = Some(MigModeReport {
                current: true,
                pending: true,
            });
            sleep_s(6).await;
        })
        .await;
        assert_eq!(*rig.layouts.borrow(), ["all-1g", "all-1g"]);
    }
}
