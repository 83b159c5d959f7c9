//! Powering VMs off and on. `vmig` itself never changes a VM's power state (assign and
//! unassign refuse a running VM instead); the tests and the scale benchmark use these to
//! prepare the simulator's VMs, which start powered on.

use crate::soap::encode::Request;
use crate::{Client, Error, TaskRef, TaskWait, VmRef};

async fn power_task(client: &Client, vm: &VmRef, method: &'static str) -> Result<(), Error> {
    let r = Request::new(method, vm.as_moref());
    let resp = client.invoke(method, r.finish()).await?;
    let task = resp
        .child("returnval")
        .ok_or_else(|| Error::Decode {
            context: method.into(),
            detail: "no returnval".into(),
        })?
        .to_moref()?;
    let task = TaskRef::try_from(task).map_err(|e| Error::Decode {
        context: method.into(),
        detail: e.to_string(),
    })?;
    client
        .wait_for_task(&task, TaskWait::default())
        .await
        .map(drop)
}

/// `VirtualMachine.PowerOffVM_Task` (hard power-off), waiting for it.
pub async fn power_off(client: &Client, vm: &VmRef) -> Result<(), Error> {
    power_task(client, vm, "PowerOffVM_Task").await
}

/// `VirtualMachine.PowerOnVM_Task`, waiting for it.
pub async fn power_on(client: &Client, vm: &VmRef) -> Result<(), Error> {
    power_task(client, vm, "PowerOnVM_Task").await
}
