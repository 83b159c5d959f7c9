//! Reconciling the GPUs with a desired layout (issue #21; docs/layouts.md "Desired layouts in
//! vCenter", docs/operations.md "Reconcile").
//!
//! With `[layout] source = "vcenter"` the daemon reads, on every poll, the desired layout that
//! `vmig layout set` wrote into vCenter (the host's `vmig.layout` value, else its cluster's;
//! [`DesiredSource`], implemented in `reconcile_vcenter.rs`), applies it with the same safety
//! as `vmig-agent apply` (plan first; nothing in use is destroyed; a GPU that fails is rolled
//! back) and publishes, per GPU, a [`GpuLayoutState`] in the `vmig.mig` document:
//! `applied`, `pending-reset`, `blocked-in-use`, `failed` or `invalid-layout`.
//!
//! Unlike `apply`, which refuses the whole host when one GPU is blocked, reconcile goes GPU by
//! GPU: a blocked GPU is reported and left as it is while the others get the layout, so
//! partial progress shows up per GPU instead of nothing happening.
//!
//! Precedence: a layout in the agent's own config (`[agent] layout_file` + `layout_name`) is
//! what the host's admin chose, so it wins over vCenter; it is then reconciled the same way and
//! reported with source `local`.
//!
//! When reconcile runs: whenever the desired layout (source, name, version) changed, or the
//! observed MIG state changed since the last attempt (a VM released its instance, a pending
//! MIG mode became current after a reset or reboot), and every [`RETRY_FAILED`] while a GPU
//! is `failed`. Otherwise the last states are republished as they are, so an idle host costs
//! no NVML calls beyond observation.
use std::collections::HashMap;
use std::time::Duration;

use mig::gpu_selector::GpuSelector;
use mig::report::{GpuLayoutState, GpuReport, LayoutStateKind};
use tokio::time::Instant;

use crate::layout::host::{GpuPlan, Status};
use crate::layout::{
    ApplyOptions, LayoutError, LayoutSelection, apply_file, plan_all, read_host, read_view,
};
use crate::nvml::Driver;

use super::desired::{DesiredInForce, States};

/// How often a `failed` GPU is tried again when nothing else changed.
pub const RETRY_FAILED: Duration = Duration::from_secs(60);

/// What the admin should do about a pending MIG mode change.
const RESET_ACTION: &str = "run `vmig rollout --cluster CLUSTER` (maintenance mode, reboot, wait for the agent), or put the host in maintenance mode and reboot it; the agent applies the rest of the layout afterwards";

/// Brings the GPUs to `desired`, GPU by GPU (runs on the NVML thread). Returns each selected
/// GPU's state; GPUs the layout does not select, and non-MIG GPUs, get none.
pub fn reconcile_gpus(driver: &Driver, desired: &DesiredInForce) -> States {
    let Ok((gpus, views)) = read_host(driver) else {
        // Observation reports NVML failures on every GPU; nothing to add here.
        return Vec::new();
    };
    let all = |s: GpuLayoutState| -> States {
        views.iter().map(|v| (v.uuid.clone(), s.clone())).collect()
    };
    let file = match &desired.file {
        Ok(f) => f,
        Err(why) => {
            return all(desired.state(
                LayoutStateKind::InvalidLayout,
                Some(why.clone()),
                Some(
                    "fix the desired layout (vmig layout set / clear); nothing was changed".into(),
                ),
            ));
        }
    };
    let selection = LayoutSelection {
        file: None,
        config: Some(desired.name.clone()),
        gpu: None,
    };
    let plans = match plan_all(file, &selection, &views, false) {
        Ok((_, plans)) => plans,
        Err(LayoutError::Config(e)) => {
            return all(desired.state(
                LayoutStateKind::InvalidLayout,
                Some(e.to_string()),
                Some(
                    "fix the desired layout (vmig layout set / clear); nothing was changed".into(),
                ),
            ));
        }
        Err(e) => {
            return all(desired.state(LayoutStateKind::Failed, Some(e.to_string()), None));
        }
    };
    let mut out = Vec::new();
    for (pos, plan) in plans {
        let view = &views[pos];
        let state = match plan.status {
            Status::EnableMig | Status::DisableMig | Status::Changes | Status::Partial => {
                let one = LayoutSelection {
                    gpu: Some(GpuSelector::Uuid(view.uuid.clone())),
                    ..selection.clone()
                };
                let mut report = String::new();
                match apply_file(
                    driver,
                    file,
                    &one,
                    &ApplyOptions::default(),
                    false,
                    &mut report,
                ) {
                    Ok(()) => {
                        tracing::info!(gpu = %view.label(), layout = %desired.label(), "layout applied: {}", one_line(&report));
                        // What the GPU looks like now decides the state (a MIG mode change
                        // may still wait for a reset).
                        match read_view(&gpus[pos])
                            .map_err(LayoutError::from)
                            .and_then(|v| plan_all(file, &one, std::slice::from_ref(&v), false))
                        {
                            Ok((_, after)) => after
                                .first()
                                .and_then(|(_, p)| state_of_plan(desired, p))
                                .unwrap_or_else(|| {
                                    desired.state(LayoutStateKind::Applied, None, None)
                                }),
                            Err(e) => {
                                desired.state(LayoutStateKind::Failed, Some(e.to_string()), None)
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(gpu = %view.label(), layout = %desired.label(), error = %e, "cannot apply the desired layout: {}", one_line(&report));
                        match e {
                            // Something came into use between the plan and the apply.
                            LayoutError::Refused(m) => desired.state(
                                LayoutStateKind::BlockedInUse,
                                Some(m),
                                Some("stop or move what uses the instance; the agent tries again when it is free".into()),
                            ),
                            other => desired.state(
                                LayoutStateKind::Failed,
                                Some(format!("{other} ({})", one_line(&report))),
                                Some("see the agent's log; the GPU was rolled back to its layout from before".into()),
                            ),
                        }
                    }
                }
            }
            _ => match state_of_plan(desired, &plan) {
                Some(s) => s,
                None => continue,
            },
        };
        out.push((view.uuid.clone(), state));
    }
    out
}

/// The state a plan implies without applying anything (`None`: not a GPU the layout is for).
fn state_of_plan(desired: &DesiredInForce, p: &GpuPlan) -> Option<GpuLayoutState> {
    Some(match p.status {
        Status::Satisfied => desired.state(LayoutStateKind::Applied, None, None),
        Status::Skipped => return None,
        Status::Unreachable => desired.state(
            LayoutStateKind::InvalidLayout,
            p.reason.clone(),
            Some("choose a layout this GPU can hold (vmig layout set)".into()),
        ),
        Status::Blocked => {
            let mut s = desired.state(
                LayoutStateKind::BlockedInUse,
                Some(format!(
                    "in use: {}",
                    p.blocked
                        .iter()
                        .map(|b| format!("{}{}", b.label(), b.by_users()))
                        .collect::<Vec<_>>()
                        .join("; ")
                )),
                Some("stop or move these VMs (or processes); the agent applies the layout when the instances are free".into()),
            );
            s.blocked_by = p.blocked.iter().flat_map(|b| b.users.clone()).collect();
            s
        }
        Status::ResetPending | Status::EnableMig | Status::DisableMig => desired.state(
            LayoutStateKind::PendingReset,
            Some(format!(
                "MIG mode {} is pending on GPU {}: it takes effect after a GPU reset or host reboot",
                match p.mig_enabled {
                    true => "enable",
                    false => "disable",
                },
                p.gpu
            )),
            Some(RESET_ACTION.into()),
        ),
        Status::Changes | Status::Partial => desired.state(
            LayoutStateKind::Failed,
            Some("the layout was applied but the GPU still differs from it".into()),
            Some("see the agent's log".into()),
        ),
    })
}

fn one_line(report: &str) -> String {
    report
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// What the observe loop remembers between polls.
#[derive(Debug, Default)]
pub struct Reconciler {
    /// [`DesiredInForce::key`] of the last attempt.
    key: Option<String>,
    /// Fingerprint of the GPUs right after the last attempt.
    fingerprint: Option<String>,
    last_attempt: Option<Instant>,
    states: HashMap<String, GpuLayoutState>,
}

impl Reconciler {
    /// Whether `desired` must be (re)applied to GPUs whose state (without layout states)
    /// fingerprints as `fingerprint`.
    pub fn needs_attempt(&self, desired: &DesiredInForce, fingerprint: &str) -> bool {
        let failed = self
            .states
            .values()
            .any(|s| s.state == LayoutStateKind::Failed);
        self.key.as_deref() != Some(desired.key().as_str())
            || self.fingerprint.as_deref() != Some(fingerprint)
            || (failed
                && self
                    .last_attempt
                    .is_none_or(|t| t.elapsed() >= RETRY_FAILED))
    }

    /// Records an attempt's result; returns the vCenter events of the states that changed
    /// ([`state_events`]).
    pub fn record(
        &mut self,
        desired: &DesiredInForce,
        fingerprint: String,
        states: States,
    ) -> Vec<super::events::MigEvent> {
        let states: HashMap<String, GpuLayoutState> = states.into_iter().collect();
        let events = state_events(&self.states, &states);
        self.key = Some(desired.key());
        self.fingerprint = Some(fingerprint);
        self.last_attempt = Some(Instant::now());
        self.states = states;
        events
    }

    /// Forgets everything (no desired layout any more: the GPUs stay as they are).
    pub fn clear(&mut self) {
        if self.key.is_some() {
            tracing::info!("no desired layout any more; the GPUs stay as they are");
        }
        *self = Reconciler::default();
    }

    /// Puts the last states on the observed GPUs.
    pub fn attach(&self, gpus: &mut [GpuReport]) {
        for g in gpus {
            g.layout_state = self.states.get(&g.uuid).cloned();
        }
    }
}

/// Logs each GPU whose layout state changed and returns the vCenter events for them
/// (`events.rs`: `applied` is a layout-applied event, every other state a layout-refused one
/// that names the state, the reason and what to do). `before` and `after` are the states by
/// GPU UUID; an unchanged state gives no event, so a blocked GPU is not re-announced every poll.
pub fn state_events(
    before: &HashMap<String, GpuLayoutState>,
    after: &HashMap<String, GpuLayoutState>,
) -> Vec<super::events::MigEvent> {
    use super::events::MigEvent;
    let mut changed: Vec<(&String, &GpuLayoutState)> = after
        .iter()
        .filter(|(uuid, s)| before.get(*uuid) != Some(*s))
        .collect();
    // HashMap order is arbitrary: post in a stable order.
    changed.sort_by(|a, b| a.0.cmp(b.0));
    changed
        .into_iter()
        .map(|(uuid, s)| {
            let detail = s.reason.as_deref().unwrap_or("");
            match s.state {
                LayoutStateKind::Applied => {
                    tracing::info!(gpu = %uuid, layout = %s.layout, version = ?s.version, "layout state: applied");
                    MigEvent::layout_applied(&s.layout, &format!("GPU {uuid}"))
                }
                k => {
                    tracing::warn!(gpu = %uuid, layout = %s.layout, version = ?s.version, "layout state: {} {detail}", k.as_str());
                    let action = s
                        .action
                        .as_deref()
                        .map(|a| format!("; {a}"))
                        .unwrap_or_default();
                    MigEvent::layout_refused(
                        &s.layout,
                        &format!("GPU {uuid}: {} {detail}{action}", k.as_str()),
                    )
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::desired::digest;
    use mig::report::LayoutSource;

    fn desired(version: u64, text: &str) -> DesiredInForce {
        DesiredInForce {
            source: LayoutSource::VcenterCluster,
            name: "all-balanced".into(),
            version: Some(version),
            file: Err("unused".into()),
            digest: digest(text),
        }
    }

    fn state(kind: LayoutStateKind) -> GpuLayoutState {
        desired(1, "").state(kind, None, None)
    }

    /// A new attempt when the layout (version or content) or the GPUs changed, or a failed
    /// GPU is due a retry; none when nothing changed.
    #[tokio::test(start_paused = true)]
    async fn attempts_only_on_change_or_failure() {
        let mut r = Reconciler::default();
        let d1 = desired(1, "a");
        assert!(r.needs_attempt(&d1, "fp"));
        let events = r.record(
            &d1,
            "fp".into(),
            vec![("GPU-1".into(), state(LayoutStateKind::Applied))],
        );
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(
            events[0].kind,
            super::super::events::EventKind::LayoutApplied
        );
        assert!(events[0].message.contains("GPU-1"), "{events:?}");
        let again = r.record(
            &d1,
            "fp".into(),
            vec![("GPU-1".into(), state(LayoutStateKind::Applied))],
        );
        assert!(again.is_empty(), "an unchanged state is not posted again");
        assert!(!r.needs_attempt(&d1, "fp"));
        assert!(r.needs_attempt(&d1, "fp2"), "the GPUs changed");
        assert!(r.needs_attempt(&desired(2, "a"), "fp"), "a new version");
        assert!(
            r.needs_attempt(&desired(1, "b"), "fp"),
            "same version, other content"
        );

        let events = r.record(
            &d1,
            "fp".into(),
            vec![("GPU-1".into(), state(LayoutStateKind::Failed))],
        );
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(
            events[0].kind,
            super::super::events::EventKind::LayoutRefused
        );
        assert!(events[0].message.contains("failed"), "{events:?}");
        assert!(!r.needs_attempt(&d1, "fp"));
        tokio::time::advance(RETRY_FAILED).await;
        assert!(r.needs_attempt(&d1, "fp"), "a failed GPU is retried");

        let mut gpus = vec![GpuReport {
            sliced_types: Vec::new(),
            timesliced: None,
            index: 0,
            uuid: "GPU-1".into(),
            name: "A100".into(),
            pci_bus_id: String::new(),
            model: None,
            mig_mode: None,
            gpu_instances: vec![],
            free: Default::default(),
            largest_placeable: None,
            fragmentation: 0.0,
            placeable_vgpu_types: vec![],
            error: None,
            nvml_free: None,
            layout_state: None,
            geometry: None,
        }];
        r.attach(&mut gpus);
        assert_eq!(
            gpus[0].layout_state.as_ref().map(|s| s.state),
            Some(LayoutStateKind::Failed)
        );
        r.clear();
        r.attach(&mut gpus);
        assert!(gpus[0].layout_state.is_none());
    }
}
