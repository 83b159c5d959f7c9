//! Host maintenance calls against vcsim: entering and leaving maintenance mode (read back
//! through `runtime.inMaintenanceMode`), and `RebootHost_Task`, which vcsim 0.24 does not
//! implement: the client must surface vCenter's fault, typed, naming the method.

mod client_support;

use client_support::{connect, gpu_sim, start};
use vcenter_client::{HostProperty, TaskWait};

#[tokio::test]
async fn maintenance_mode_round_trip_and_reboot_fault() {
    let sim = start(gpu_sim());
    let c = connect(&sim).await;
    let host = c
        .hosts(&[HostProperty::Name])
        .await
        .unwrap()
        .into_iter()
        .find(|h| h.name.as_deref() == Some("DC0_C0_H0"))
        .unwrap()
        .moref;
    assert!(!c.in_maintenance_mode(&host).await.unwrap());
    let t = c.enter_maintenance_mode(&host, 0, false).await.unwrap();
    c.wait_for_task(&t, TaskWait::default()).await.unwrap();
    assert!(c.in_maintenance_mode(&host).await.unwrap());

    let e = c.reboot_host(&host, false).await.unwrap_err().to_string();
    assert!(e.contains("RebootHost_Task"), "{e}");

    let t = c.exit_maintenance_mode(&host, 0).await.unwrap();
    c.wait_for_task(&t, TaskWait::default()).await.unwrap();
    assert!(!c.in_maintenance_mode(&host).await.unwrap());
}
