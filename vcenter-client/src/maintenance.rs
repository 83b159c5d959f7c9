//! Host maintenance for `vmig rollout`: `EnterMaintenanceMode_Task`,
//! `ExitMaintenanceMode_Task`, `RebootHost_Task` and reading
//! `runtime.inMaintenanceMode`. Each task method returns the task; follow it
//! with [`Client::wait_for_task`]. Requests are written in WSDL order.
//!
//! vCenter evacuates a host entering maintenance mode through DRS (fully
//! automated clusters migrate powered-on VMs; otherwise the task waits until
//! they are moved or powered off, or fails at its timeout). vcsim 0.24 sets
//! the flag without evacuating anything and implements no `RebootHost_Task`.
use crate::client::Client;
use crate::error::Result;
use crate::moref::{HostRef, TaskRef};
use crate::soap::encode::Request;

impl Client {
    /// `HostSystem.EnterMaintenanceMode_Task(timeout, evacuatePoweredOffVms)`.
    /// `timeout_s` 0 lets the task run until vCenter finishes (or fails) the
    /// evacuation. Privilege `Host.Config.Maintenance`.
    pub async fn enter_maintenance_mode(
        &self,
        host: &HostRef,
        timeout_s: i32,
        evacuate_powered_off_vms: bool,
    ) -> Result<TaskRef> {
        let body = enter_request(host, timeout_s, evacuate_powered_off_vms);
        let resp = self.invoke("EnterMaintenanceMode_Task", body).await?;
        crate::vm::task_ref(&resp, "EnterMaintenanceMode_Task")
    }

    /// `HostSystem.ExitMaintenanceMode_Task(timeout)`. Privilege
    /// `Host.Config.Maintenance`.
    pub async fn exit_maintenance_mode(&self, host: &HostRef, timeout_s: i32) -> Result<TaskRef> {
        let mut r = Request::new("ExitMaintenanceMode_Task", host.as_moref());
        r.int("timeout", i64::from(timeout_s));
        let resp = self.invoke("ExitMaintenanceMode_Task", r.finish()).await?;
        crate::vm::task_ref(&resp, "ExitMaintenanceMode_Task")
    }

    /// `HostSystem.RebootHost_Task(force)`. Without `force` vCenter refuses a
    /// host that is not in maintenance mode. Privilege `Host.Config.Maintenance`.
    pub async fn reboot_host(&self, host: &HostRef, force: bool) -> Result<TaskRef> {
        let mut r = Request::new("RebootHost_Task", host.as_moref());
        r.bool("force", force);
        let resp = self.invoke("RebootHost_Task", r.finish()).await?;
        crate::vm::task_ref(&resp, "RebootHost_Task")
    }

    /// `runtime.inMaintenanceMode` of `host` (`false` when not reported).
    pub async fn in_maintenance_mode(&self, host: &HostRef) -> Result<bool> {
        let oc = self
            .retrieve_object(host.as_moref(), &["runtime.inMaintenanceMode"])
            .await?;
        Ok(oc
            .get("runtime.inMaintenanceMode")
            .is_some_and(|v| v.text().trim() == "true"))
    }
}

fn enter_request(host: &HostRef, timeout_s: i32, evacuate: bool) -> String {
    let mut r = Request::new("EnterMaintenanceMode_Task", host.as_moref());
    r.int("timeout", i64::from(timeout_s));
    r.bool("evacuatePoweredOffVms", evacuate);
    r.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enter_request_is_in_wsdl_order() {
        let h = HostRef::new("host-21");
        let xml = enter_request(&h, 0, false);
        assert!(
            xml.contains(r#"<EnterMaintenanceMode_Task xmlns="urn:vim25"><_this type="HostSystem">host-21</_this><timeout>0</timeout><evacuatePoweredOffVms>false</evacuatePoweredOffVms></EnterMaintenanceMode_Task>"#),
            "{xml}"
        );
    }
}
