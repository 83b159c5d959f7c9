//! Changing the VM after its slice is booked, with a journal: each step is written into the
//! VM's reservation (`step`, `task`) before the vCenter call it names (and `relocated`/`done`
//! after), under the VM's lock, which is checked before every write and renewed while tasks
//! run. So a crash, a signal or a lost connection leaves a record `vmig repair` can finish
//! or undo; nothing here ever assumes a task failed that it did not see fail.
//!
//! - A call vCenter answered with a fault started nothing: the change is rolled back.
//! - A task that ended in error: rolled back (reservation cleared, a move undone).
//! - A task still running, a network error while following it, or SIGINT/SIGTERM: the step
//!   stays recorded and the command stops with advice naming `vmig repair --vm NAME`.

use std::time::{Duration, Instant};

use vcenter_client::{
    CustomFieldKey, Error, HostProperty, HostRef, MoRef, RelocateSpec, ResourcePoolRef, TaskRef,
    TaskState, VgpuProfile, VmConfigSpec, VmProperty, VmRef,
};

use crate::interrupt::interrupted;
use crate::lock::Lock;
use crate::reservation::{Reservation, Step};
use crate::{AdminError, Connection};

/// How long a task is followed before the command stops and leaves it to `repair`.
const FOLLOW_FOR: Duration = Duration::from_secs(3600);

/// Follows `task` (an `unassign`'s reconfiguration) to its end under the VM's lock, which
/// it renews: a task that outlives a wait or a read that fails is never taken for failed.
/// Only a task vCenter reports failed is an error; one that stays unknown stops the command
/// with advice.
pub(crate) async fn follow_task(
    conn: &Connection,
    task: &TaskRef,
    lock: &mut Lock,
    vm_name: &str,
) -> Result<(), AdminError> {
    let start = Instant::now();
    let mut failures = 0u32;
    let unknown = |why: String| {
        AdminError::Incomplete(format!(
            "VM {vm_name}: task {task} {why}; it may still finish: run the command again once it has ended"
        ))
    };
    loop {
        let wait = vcenter_client::TaskWait {
            timeout: crate::lock::stale_after() / 4,
            ..vcenter_client::TaskWait::default()
        };
        match conn.client.wait_for_task(task, wait).await {
            Ok(_) => return Ok(()),
            Err(e @ Error::TaskFailed { .. }) => {
                return Err(AdminError::Vcenter {
                    vcenter: conn.target.host.clone(),
                    source: e,
                });
            }
            Err(Error::TaskTimeout { .. }) => failures = 0,
            Err(e) => {
                failures += 1;
                tracing::warn!(task = %task, error = %e, "cannot read the task; retrying (it is not assumed failed)");
                if failures >= 30 {
                    return Err(unknown(format!("could not be read ({e})")));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        if start.elapsed() > FOLLOW_FOR {
            return Err(unknown("is still running".into()));
        }
        if let Err(e) = lock.renew_if_due().await {
            return Err(unknown(format!("is running, and {e}")));
        }
    }
}

/// One VM being changed under its lock, with its reservation as the journal.
pub(crate) struct Changer<'a> {
    pub conn: &'a Connection,
    pub vm: &'a VmRef,
    pub vm_name: &'a str,
    /// Key of the `vmig.reservation` field.
    pub key: CustomFieldKey,
    pub reservation: Reservation,
    pub vm_lock: &'a mut Lock,
    /// `assign`, `unassign` or `repair`, for messages.
    pub command: &'static str,
}

/// How a followed task ended.
pub(crate) enum Ended {
    /// Success.
    Done,
    /// It failed (the fault says why).
    Failed(Error),
}

impl Changer<'_> {
    fn vc(&self, source: Error) -> AdminError {
        AdminError::Vcenter {
            vcenter: self.conn.target.host.clone(),
            source,
        }
    }

    /// Stops with the step recorded and advice naming `vmig repair`.
    pub fn stop(&self, why: &str) -> AdminError {
        AdminError::Incomplete(format!(
            "VM {}: {} stopped at step {} ({why}); the VM's reservation records how far it got: run `vmig repair --vm {}` to finish or undo it",
            self.vm_name,
            self.command,
            self.reservation.step().as_str(),
            self.vm_name
        ))
    }

    /// Writes the journal step (and task) into the reservation, after checking the VM lock.
    pub async fn record(&mut self, step: Step, task: Option<&TaskRef>) -> Result<(), AdminError> {
        self.vm_lock
            .renew_if_due()
            .await
            .map_err(|e| crate::AdminError::Incomplete(format!("VM {}: {e}", self.vm_name)))?;
        self.vm_lock
            .check()
            .await
            .map_err(|e| crate::AdminError::Incomplete(format!("VM {}: {e}", self.vm_name)))?;
        self.reservation.step = Some(step);
        self.reservation.task = task.map(|t| t.value().to_string());
        self.conn
            .client
            .set_custom_value(self.vm.as_moref(), self.key, &self.reservation.to_json())
            .await
            .map_err(|e| self.vc(e))?;
        tracing::info!(vm = self.vm_name, step = step.as_str(), "journal");
        Ok(())
    }

    /// Follows `task` to its end, renewing the VM lock; transient errors are retried. Stops
    /// (the step stays recorded) on a signal, or when the task outlives [`FOLLOW_FOR`].
    pub async fn follow(&mut self, task: &TaskRef) -> Result<Ended, AdminError> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(100);
        let mut failures = 0u32;
        loop {
            match self.conn.client.task_info(task).await {
                Ok(info) => {
                    failures = 0;
                    match info.state {
                        TaskState::Success => return Ok(Ended::Done),
                        TaskState::Error => {
                            let fault = info.error.unwrap_or_else(|| vcenter_client::Fault {
                                kind: vcenter_client::FaultKind::Other,
                                type_name: "UnknownTaskError".into(),
                                message: "the task ended in error without saying why".into(),
                            });
                            return Ok(Ended::Failed(Error::TaskFailed {
                                task: task.clone(),
                                operation: info.operation,
                                fault: Box::new(fault),
                            }));
                        }
                        TaskState::Queued | TaskState::Running => {}
                    }
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(task = %task, error = %e, "cannot read the task; retrying (it is not assumed failed)");
                    if failures >= 30 {
                        return Err(
                            self.stop(&format!("vCenter did not answer about task {task}: {e}"))
                        );
                    }
                }
            }
            if interrupted() {
                return Err(self.stop(&format!("interrupted while task {task} runs")));
            }
            if start.elapsed() > FOLLOW_FOR {
                return Err(self.stop(&format!("task {task} is still running")));
            }
            if let Err(e) = self.vm_lock.renew_if_due().await {
                return Err(self.stop(&e.to_string()));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// Starts a task with `call` under journal step `step`, then follows it. A call vCenter
    /// refused with a fault started nothing (`Ended::Failed`); a call whose answer was lost
    /// may have started a task: stop for `repair`.
    async fn run_step<F>(&mut self, step: Step, call: F) -> Result<Ended, AdminError>
    where
        F: AsyncFnOnce(&vcenter_client::Client) -> vcenter_client::Result<TaskRef>,
    {
        if interrupted() {
            return Err(self.stop("interrupted"));
        }
        self.record(step, None).await?;
        let task = match call(&self.conn.client).await {
            Ok(t) => t,
            Err(e) if e.fault().is_some() => return Ok(Ended::Failed(e)),
            Err(e) => {
                return Err(self.stop(&format!("no answer to the {} call: {e}", step.as_str())));
            }
        };
        self.record(step, Some(&task)).await?;
        self.follow(&task).await
    }

    /// Moves the powered-off VM to `host` (`pool` when it changes cluster).
    pub async fn relocate(
        &mut self,
        host: &HostRef,
        pool: Option<ResourcePoolRef>,
    ) -> Result<Ended, AdminError> {
        self.relocate_journaled(Step::Relocating, Step::Relocated, host, pool)
            .await
    }

    /// `RelocateVM_Task` journaled as `during` while it runs and `after` once it succeeded.
    async fn relocate_journaled(
        &mut self,
        during: Step,
        after: Step,
        host: &HostRef,
        pool: Option<ResourcePoolRef>,
    ) -> Result<Ended, AdminError> {
        let vm = self.vm.clone();
        let spec = RelocateSpec {
            host: host.clone(),
            pool,
        };
        let ended = self
            .run_step(during, async move |c: &vcenter_client::Client| {
                c.relocate_vm(&vm, &spec).await
            })
            .await?;
        if matches!(ended, Ended::Done) {
            self.record(after, None).await?;
        }
        Ok(ended)
    }

    /// Adds the vGPUs (and locks memory to the maximum, which a vGPU VM needs), all in one
    /// `ReconfigVM_Task`: vCenter applies a reconfiguration whole or not at all, so a VM
    /// given several vGPUs (issue 18) never keeps only some of them.
    pub async fn add_vgpus(&mut self, spelled: &[&str]) -> Result<Ended, AdminError> {
        let mut spec = VmConfigSpec::new().memory_reservation_locked_to_max(true);
        for s in spelled {
            spec = spec.add_vgpu(VgpuProfile::new(*s).map_err(|e| self.vc(e))?);
        }
        let vm = self.vm.clone();
        let ended = self
            .run_step(
                Step::Configuring,
                async move |c: &vcenter_client::Client| c.reconfigure_vm(&vm, &spec).await,
            )
            .await?;
        if matches!(ended, Ended::Done) {
            self.record(Step::Done, None).await?;
        }
        Ok(ended)
    }

    /// Removes the vGPU with `spec` (built by `removal_spec`), journaled as `unassigning`,
    /// then `unassigned`; clearing the reservation (the release) is the caller's last step.
    pub async fn remove_vgpus(&mut self, spec: &VmConfigSpec) -> Result<Ended, AdminError> {
        let vm = self.vm.clone();
        let spec = spec.clone();
        let ended = self
            .run_step(
                Step::Unassigning,
                async move |c: &vcenter_client::Client| c.reconfigure_vm(&vm, &spec).await,
            )
            .await?;
        if matches!(ended, Ended::Done) {
            self.record(Step::Unassigned, None).await?;
        }
        Ok(ended)
    }

    /// Moves the VM (powered off: cold; running: vMotion) to `host` for `plan --apply`,
    /// journaled as `moving`, then `done`.
    pub async fn move_to(
        &mut self,
        host: &HostRef,
        pool: Option<ResourcePoolRef>,
    ) -> Result<Ended, AdminError> {
        self.relocate_journaled(Step::Moving, Step::Done, host, pool)
            .await
    }

    /// Undoes a change that failed: moves the VM back to the host the journal names (when it
    /// was moved; across clusters into that host's cluster's root pool), then clears the
    /// reservation. Failures here only warn: the error the
    /// caller reports is the one that made it roll back.
    pub async fn roll_back(&mut self, moved: bool) {
        if moved && let Some(from) = self.reservation.from_host.clone() {
            let back = HostRef::new(from);
            let pool = match pool_toward(&self.conn.client, self.vm, &back).await {
                Ok(pool) => pool,
                Err(e) => {
                    tracing::warn!(vm = self.vm_name, error = %e, "could not read the original host's resource pool; moving the VM back without one");
                    None
                }
            };
            match self.relocate(&back, pool).await {
                Ok(Ended::Done) => {}
                Ok(Ended::Failed(e)) => {
                    tracing::warn!(vm = self.vm_name, error = %e, "could not move the VM back to its host");
                }
                Err(e) => {
                    tracing::warn!(vm = self.vm_name, error = %e, "could not move the VM back")
                }
            }
        }
        if let Err(e) = super::reserve::clear_reservation(&self.conn.client, self.vm).await {
            tracing::warn!(vm = self.vm_name, error = %e, "could not clear the reservation after a failed change");
        }
    }
}

/// The resource pool a relocation of `vm` to `to` names: the root pool of `to`'s cluster (or
/// standalone compute resource) when the VM is now in another one (a VM's pool must belong
/// to its host's compute resource; `assign` names the target's the same way); none within
/// one, so the VM keeps its pool.
pub(crate) async fn pool_toward(
    c: &vcenter_client::Client,
    vm: &VmRef,
    to: &HostRef,
) -> Result<Option<ResourcePoolRef>, Error> {
    let parent = async |h: &HostRef| -> Result<Option<MoRef>, Error> {
        Ok(c.host(h, &[HostProperty::Parent]).await?.parent)
    };
    let Some(home) = parent(to).await? else {
        return Ok(None);
    };
    let now = match c.vm(vm, &[VmProperty::Host]).await?.host {
        Some(h) => parent(&h).await?,
        None => None,
    };
    if now.as_ref() == Some(&home) {
        return Ok(None);
    }
    let oc = c.retrieve_object(&home, &["resourcePool"]).await?;
    Ok(oc
        .get("resourcePool")
        .and_then(|n| n.to_moref().ok())
        .and_then(|r| ResourcePoolRef::try_from(r).ok()))
}
