//! The incremental property collector on vcsim: the first `WaitForUpdatesEx` returns the
//! filter's objects, a custom value written afterwards comes back as a `modify` update with
//! the new value, an idle wait ends empty, and a stale version is refused so that the reader
//! starts over.

mod client_support;

use std::time::{Duration, Instant};

use client_support::{connect, gpu_sim, start};
use vcenter_client::{CustomValues, FilterSpec, HostRef, UpdateKind};

const HOST_PATHS: &[&str] = &["name", "customValue", "runtime.connectionState"];
const VM_PATHS: &[&str] = &["name", "customValue", "runtime.host", "runtime.powerState"];

#[tokio::test]
async fn a_custom_value_change_arrives_as_an_update() {
    let sim = start(gpu_sim());
    let c = connect(&sim).await;
    let def = c
        .ensure_custom_field("vmig.mig", Some("HostSystem"))
        .await
        .unwrap();
    let root = c.service_content().root_folder.as_moref().clone();
    let view = c
        .create_container_view(&root, &["HostSystem", "VirtualMachine"], true)
        .await
        .unwrap();
    let spec = FilterSpec::container_view_types(
        &view,
        &[("HostSystem", HOST_PATHS), ("VirtualMachine", VM_PATHS)],
    );
    let mut uc = c.create_update_collector(&spec).await.unwrap();

    // The first answer: every host and VM enters, with its properties.
    let first = c
        .wait_for_updates(&mut uc, Duration::from_secs(5))
        .await
        .unwrap()
        .expect("the initial state");
    assert!(!uc.version.is_empty());
    assert!(first.objects.iter().all(|o| o.kind == UpdateKind::Enter));
    let hosts: Vec<_> = first
        .objects
        .iter()
        .filter(|o| o.obj.kind() == "HostSystem")
        .collect();
    let vms = first
        .objects
        .iter()
        .filter(|o| o.obj.kind() == "VirtualMachine")
        .count();
    assert!(
        hosts.len() >= 2 && vms >= 1,
        "{} hosts, {vms} VMs",
        hosts.len()
    );
    let h0 = hosts
        .iter()
        .find(|h| h.value("name").map(|n| n.text()) == Some("DC0_C0_H0"))
        .expect("DC0_C0_H0 entered");
    let h0_ref = HostRef::try_from(h0.obj.clone()).unwrap();

    // Nothing changed: an idle wait ends without updates.
    let idle = c
        .wait_for_updates(&mut uc, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(
        idle.as_ref().is_none_or(|s| s.objects.is_empty()),
        "{idle:?}"
    );

    // A document written to one host comes back as that host's new customValue.
    c.set_custom_value(h0_ref.as_moref(), def.key, r#"{"v":3}"#)
        .await
        .unwrap();
    let started = Instant::now();
    let set = loop {
        if let Some(s) = c
            .wait_for_updates(&mut uc, Duration::from_secs(5))
            .await
            .unwrap()
            && !s.objects.is_empty()
        {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no update");
    };
    let u = set
        .objects
        .iter()
        .find(|o| o.obj == *h0_ref.as_moref())
        .expect("an update for DC0_C0_H0");
    assert_eq!(u.kind, UpdateKind::Modify);
    let values = CustomValues::from_node(u.value("customValue").unwrap()).unwrap();
    assert_eq!(values.get(def.key), Some(r#"{"v":3}"#));

    c.destroy_update_collector(&uc).await.unwrap();
    // The collector is gone with its version: waiting on it again is an error, which a
    // reader answers by starting over.
    assert!(
        c.wait_for_updates(&mut uc, Duration::from_secs(1))
            .await
            .is_err()
    );
}
