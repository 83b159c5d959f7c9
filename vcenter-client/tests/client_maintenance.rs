//! Host maintenance calls against vcsim: entering and leaving maintenance mode (read back
//! through `runtime.inMaintenanceMode`), and `RebootHost_Task` (added to vcsim by
//! tests/vcsim/reboot.go): outside maintenance mode the client surfaces vCenter's
//! `InvalidState` fault, typed, naming the method; in maintenance mode the task succeeds and
//! the host is `notResponding` while it reboots.

mod client_support;

use client_support::{connect, gpu_sim, start};
use vcenter_client::{HostProperty, TaskWait};

#[tokio::test]
async fn maintenance_mode_round_trip_and_reboot_fault() {
    // A reboot that outlasts the test, so "notResponding" is seen however slow the machine.
    let sim = start(gpu_sim().announce_reboots(std::time::Duration::from_secs(600)));
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
    let e = c.reboot_host(&host, false).await.unwrap_err();
    assert_eq!(
        e.fault().map(|f| f.type_name.as_str()),
        Some("InvalidState"),
        "{e}"
    );
    assert!(e.to_string().contains("RebootHost_Task"), "{e}");

    let t = c.enter_maintenance_mode(&host, 0, false).await.unwrap();
    c.wait_for_task(&t, TaskWait::default()).await.unwrap();
    assert!(c.in_maintenance_mode(&host).await.unwrap());

    let t = c.reboot_host(&host, false).await.unwrap();
    c.wait_for_task(&t, TaskWait::default()).await.unwrap();
    let state = c
        .hosts(&[HostProperty::Name, HostProperty::ConnectionState])
        .await
        .unwrap()
        .into_iter()
        .find(|h| h.moref == host)
        .and_then(|h| h.connection_state);
    assert_eq!(state.as_deref(), Some("notResponding"), "while it reboots");

    let t = c.exit_maintenance_mode(&host, 0).await.unwrap();
    c.wait_for_task(&t, TaskWait::default()).await.unwrap();
    assert!(!c.in_maintenance_mode(&host).await.unwrap());
}
