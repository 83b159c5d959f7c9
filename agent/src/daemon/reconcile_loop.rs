//! The daemon's two reconcile loops (issue #21): `desired_loop` reads the desired layout
//! every poll into the shared state, and `step` runs inside the observe loop to apply it.
//! The reconciling itself (plans, states, events) is `reconcile.rs`.

use std::sync::Arc;

use mig::report::GpuReport;

use super::desired::{DesiredInForce, DesiredSource};
use super::reconcile::Reconciler;

/// One poll's reconcile step in the observe loop (`run.rs`): apply the desired layout when
/// [`Reconciler::needs_attempt`], re-observe so the published state is the one the layout
/// produced, and put each GPU's state on `gpus`.
pub async fn step<O: super::observe::Observer>(
    observer: &mut O,
    shared: &std::cell::RefCell<super::shared::Shared>,
    reconciler: &mut Reconciler,
    gpus: &mut Vec<GpuReport>,
) {
    let desired = shared.borrow().desired.clone();
    let Some(desired) = desired else {
        reconciler.clear();
        reconciler.attach(gpus);
        return;
    };
    let fingerprint = super::document::fingerprint(gpus);
    if reconciler.needs_attempt(&desired, &fingerprint) {
        match observer.reconcile(desired.clone()).await {
            Ok(states) => {
                if let Ok(after) = observer.observe().await {
                    *gpus = after;
                }
                let events =
                    reconciler.record(&desired, super::document::fingerprint(gpus), states);
                let mut sh = shared.borrow_mut();
                for e in events {
                    sh.events.push(e);
                }
            }
            Err(e) => {
                tracing::warn!(layout = %desired.label(), error = %format!("{e:#}"), "cannot reconcile the desired layout; trying again at the next poll");
            }
        }
    }
    reconciler.attach(gpus);
}

/// The loop beside observe and publish that reads the desired layout every poll into
/// `shared` (only with `[layout] source = "vcenter"`). A failed read keeps the last layout
/// read, so a vCenter outage neither stops nor undoes reconciling.
pub async fn desired_loop<D: DesiredSource>(
    cfg: &super::config::Config,
    source: &mut D,
    shared: &std::cell::RefCell<super::shared::Shared>,
    cancel: &tokio_util::sync::CancellationToken,
) {
    if cfg.layout_source != super::config::LayoutSourceMode::Vcenter {
        return;
    }
    let mut ticks = tokio::time::interval(cfg.poll_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error: Option<String> = None;
    let mut last_label: Option<String> = None;
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let fetched = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            r = source.fetch() => r,
        };
        match fetched {
            Ok(d) => {
                if last_error.take().is_some() {
                    tracing::info!("desired layout readable again");
                }
                let label = d.as_ref().map(DesiredInForce::label);
                if label != last_label {
                    match &label {
                        Some(l) => tracing::info!(layout = %l, "desired layout"),
                        None => tracing::info!("no desired layout is set for this host"),
                    }
                    last_label = label;
                }
                shared.borrow_mut().desired = d.map(Arc::new);
            }
            Err(e) => {
                if last_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(error = %e, "cannot read the desired layout; keeping the last one read");
                }
                last_error = Some(e);
            }
        }
    }
    let _ = tokio::time::timeout(super::shared::CLOSE_TIMEOUT, source.close()).await;
}
