//! Every operation of the client against vcsim with GPU hosts: service
//! content and version negotiation, container views, the property collector
//! (streamed, stopped early, paging options), typed host and VM reads,
//! SearchIndex, custom attributes and field definitions, vGPU reconfiguration,
//! relocation, power, tasks, and the faults the server returns for bad input.

mod client_support;

use std::ops::ControlFlow;

use client_support::{connect, gpu_sim, start};
use vcenter_client::{
    BiosUuid, Client, Error, FaultKind, FilterSpec, HostProperty, HostRef, MoRef, PowerState,
    RelocateSpec, RetrieveOptions, TaskWait, VgpuProfile, VmConfigSpec, VmProperty, VmRef,
};

async fn host_named(c: &Client, name: &str) -> vcenter_client::HostSystem {
    c.hosts(HostProperty::ALL)
        .await
        .unwrap()
        .into_iter()
        .find(|h| h.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no host {name}"))
}

#[tokio::test]
async fn service_content_views_and_property_collector() {
    let sim = start(gpu_sim().api_version("7.0.3.0"));
    let c = connect(&sim).await;
    let sc = c.service_content();
    assert_eq!(sc.about.api_type, "VirtualCenter");
    assert_eq!(sc.root_folder.value(), "group-d1");
    // Negotiated from /sdk/vimServiceVersions.xml.
    assert_eq!(c.api_version().as_str(), "7.0.3.0");

    // Container view create / use / destroy.
    let view = c
        .create_container_view(sc.root_folder.as_moref(), &["HostSystem"], true)
        .await
        .unwrap();
    let spec = FilterSpec::container_view(&view, "HostSystem", &["name", "noSuchProperty"]);
    let all = c
        .retrieve_all(&spec, RetrieveOptions::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    // vcsim reports an unknown path per object in missingSet.
    assert!(
        all.iter()
            .all(|o| o.missing.iter().any(|m| m.path == "noSuchProperty"))
    );

    // vcsim 0.24 ignores maxObjects and never pages: one page, all objects.
    let mut seen = 0;
    let stats = c
        .retrieve_properties(
            &spec,
            RetrieveOptions {
                max_objects: std::num::NonZeroU32::new(1),
            },
            |_| {
                seen += 1;
                ControlFlow::Continue(())
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (stats.objects, stats.pages, stats.stopped, seen),
        (4, 1, false, 4)
    );

    // The visitor can stop early.
    let stats = c
        .retrieve_properties(
            &spec,
            RetrieveOptions::default(),
            |_| ControlFlow::Break(()),
        )
        .await
        .unwrap();
    assert_eq!((stats.objects, stats.stopped), (1, true));

    c.destroy_view(&view).await.unwrap();
    let err = c
        .retrieve_all(&spec, RetrieveOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.fault_kind(),
            Some(FaultKind::ManagedObjectNotFound { .. })
        ),
        "destroyed view: {err}"
    );

    // Bad input faults, typed.
    let err = c
        .create_container_view(sc.root_folder.as_moref(), &["NoSuchType"], true)
        .await
        .unwrap_err();
    assert_eq!(
        err.fault_kind(),
        Some(&FaultKind::InvalidArgument {
            invalid_property: Some("type".into())
        }),
        "{err}"
    );
    let err = c
        .host(&HostRef::new("host-99999"), &[HostProperty::Name])
        .await
        .unwrap_err();
    assert_eq!(
        err.fault_kind(),
        Some(&FaultKind::ManagedObjectNotFound {
            obj: Some(MoRef::new("HostSystem", "host-99999"))
        }),
        "{err}"
    );
}

#[tokio::test]
async fn typed_host_reads_and_search_index() {
    let sim = start(gpu_sim());
    let c = connect(&sim).await;
    let hosts = c.hosts(HostProperty::ALL).await.unwrap();
    assert_eq!(hosts.len(), 4);
    let clusters = c.clusters().await.unwrap();
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0].name, "DC0_C0");
    assert_eq!(clusters[0].hosts.len(), 3);

    let h0 = host_named(&c, "DC0_C0_H0").await;
    assert_eq!(h0.cluster(), Some(clusters[0].moref.clone()));
    assert!(clusters[0].hosts.contains(&h0.moref));
    assert_eq!(h0.connection_state.as_deref(), Some("connected"));
    let hw = h0.hardware.as_ref().unwrap();
    assert!(hw.memory_size.unwrap() > 0);
    assert_eq!(
        hw.uuid.as_deref(),
        h0.bios_uuid.as_ref().map(BiosUuid::as_str)
    );
    // Two A100s, as the harness injected them.
    assert_eq!(h0.nvidia_pci_devices.len(), 2);
    assert!(
        h0.nvidia_pci_devices
            .iter()
            .all(|d| d.is_nvidia_gpu() && d.device_id == 0x20f1 && d.class_id == 0x0302)
    );
    assert_eq!(h0.nvidia_pci_devices[0].bus, 0x3b);
    assert_eq!(h0.graphics_info.len(), 2);
    assert_eq!(h0.graphics_info[0].device_name, "NVIDIA A100-PCIE-40GB");
    assert_eq!(h0.graphics_info[0].memory_size_in_kb, Some(40960 * 1024));
    assert!(
        h0.shared_passthru_gpu_types
            .iter()
            .any(|t| t == "grid_a100-3-20c")
    );
    assert_eq!(
        h0.shared_gpu_capabilities.len(),
        h0.shared_passthru_gpu_types.len()
    );
    let gc = h0.graphics_config.as_ref().unwrap();
    assert_eq!(gc.host_default_graphics_type, "sharedDirect");
    assert_eq!(gc.device_types.len(), 2);

    let standalone = host_named(&c, "DC0_H0").await;
    assert_eq!(standalone.cluster(), None);
    assert!(
        standalone
            .shared_passthru_gpu_types
            .iter()
            .any(|t| t.starts_with("nvidia_h100xm-"))
    );

    // SearchIndex by BIOS UUID, for every host.
    for h in &hosts {
        let uuid = h.bios_uuid.clone().unwrap();
        assert_eq!(
            c.find_host_by_uuid(&uuid).await.unwrap(),
            Some(h.moref.clone())
        );
    }
    let nobody: BiosUuid = "00000000-0000-0000-0000-000000000000".parse().unwrap();
    assert_eq!(c.find_host_by_uuid(&nobody).await.unwrap(), None);

    // By IP (a VMkernel NIC address) and by DNS host name, read generically.
    let net = c
        .retrieve_object(
            h0.moref.as_moref(),
            &["config.network.vnic", "config.network.netStackInstance"],
        )
        .await
        .unwrap();
    let ip = net
        .get("config.network.vnic")
        .and_then(|v| v.children().first())
        .and_then(|nic| nic.child("spec")?.child("ip")?.child_string("ipAddress"))
        .expect("vcsim hosts have a vmk0 address");
    let found = c.find_host_by_ip(ip.parse().unwrap()).await.unwrap();
    assert!(found.is_some(), "FindByIp {ip}");
    let dns = net
        .get("config.network.netStackInstance")
        .and_then(|v| v.children().first())
        .and_then(|n| n.child("dnsConfig")?.child_string("hostName"));
    if let Some(dns) = dns.filter(|d| !d.is_empty()) {
        assert!(
            c.find_host_by_dns_name(&dns).await.unwrap().is_some(),
            "FindByDnsName {dns}"
        );
    }
    assert_eq!(
        c.find_host_by_dns_name("no-such-host.example")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        c.find_host_by_ip("192.0.2.254".parse().unwrap())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn custom_attributes_are_idempotent_and_last_value_wins() {
    let sim = start(gpu_sim());
    let c = connect(&sim).await;
    let def = c
        .ensure_custom_field("vmig.mig", Some("HostSystem"))
        .await
        .unwrap();
    let again = c
        .ensure_custom_field("vmig.mig", Some("HostSystem"))
        .await
        .unwrap();
    assert_eq!(def, again);
    assert_eq!(def.managed_object_type.as_deref(), Some("HostSystem"));
    assert!(c.custom_field_defs().await.unwrap().contains(&def));

    let h0 = host_named(&c, "DC0_C0_H0").await;
    c.set_custom_value(h0.moref.as_moref(), def.key, r#"{"v":1}"#)
        .await
        .unwrap();
    // vcsim 0.24 appends a second entry instead of replacing the first.
    c.set_custom_value(h0.moref.as_moref(), def.key, r#"{"v":2,"s":"<&>"}"#)
        .await
        .unwrap();
    let values = c.custom_values(h0.moref.as_moref()).await.unwrap();
    assert_eq!(values.get(def.key), Some(r#"{"v":2,"s":"<&>"}"#));
    let h = c
        .host(&h0.moref, &[HostProperty::CustomValues])
        .await
        .unwrap();
    assert_eq!(h.custom_values.get(def.key), Some(r#"{"v":2,"s":"<&>"}"#));
    // Unset elsewhere.
    let h1 = host_named(&c, "DC0_C0_H1").await;
    assert_eq!(h1.custom_values.get(def.key), None);
}

#[tokio::test]
async fn field_definitions_are_created_once_and_removed_by_key() {
    let sim = start(gpu_sim());
    let c = connect(&sim).await;
    let def = c
        .add_custom_field_def("vmig.lock.test", Some("HostSystem"))
        .await
        .unwrap();
    assert_eq!(def.name, "vmig.lock.test");
    assert_eq!(def.managed_object_type.as_deref(), Some("HostSystem"));
    assert!(c.custom_field_defs().await.unwrap().contains(&def));
    // The second add of the same name is refused: the create-if-absent locks build on.
    let err = c
        .add_custom_field_def("vmig.lock.test", Some("HostSystem"))
        .await
        .unwrap_err();
    assert!(
        matches!(err.fault_kind(), Some(FaultKind::DuplicateName { .. })),
        "{err}"
    );
    c.remove_custom_field_def(def.key).await.unwrap();
    assert!(!c.custom_field_defs().await.unwrap().contains(&def));
    // Removing it again names the missing key.
    let err = c.remove_custom_field_def(def.key).await.unwrap_err();
    assert_eq!(
        err.fault().map(|f| f.type_name.as_str()),
        Some("NotFound"),
        "{err}"
    );
}

#[tokio::test]
async fn vms_power_off_and_on() {
    let sim = start(gpu_sim());
    let c = connect(&sim).await;
    let vm = c.vms(&[VmProperty::PowerState]).await.unwrap()[0].clone();
    // vcsim starts its VMs powered on.
    assert_eq!(vm.power_state, Some(PowerState::PoweredOn));
    let state = async |task| {
        c.wait_for_task(&task, TaskWait::default()).await.unwrap();
        c.vm(&vm.moref, &[VmProperty::PowerState])
            .await
            .unwrap()
            .power_state
    };
    let task = c.power_off_vm(&vm.moref).await.unwrap();
    assert_eq!(state(task).await, Some(PowerState::PoweredOff));
    let task = c.power_on_vm(&vm.moref).await.unwrap();
    assert_eq!(state(task).await, Some(PowerState::PoweredOn));
}

#[tokio::test]
async fn vgpu_reconfigure_relocate_and_tasks() {
    let sim = start(gpu_sim());
    let c = connect(&sim).await;
    let vms = c.vms(VmProperty::LIGHT).await.unwrap();
    assert_eq!(vms.len(), 4);
    let vm = vms
        .iter()
        .find(|v| {
            v.name
                .as_deref()
                .is_some_and(|n| n.starts_with("DC0_C0_RP0_VM"))
        })
        .unwrap()
        .clone();
    assert!(vm.uuid.is_some() && vm.memory_mb.is_some() && vm.host.is_some());
    assert_eq!(
        c.find_vm_by_uuid(vm.uuid.as_ref().unwrap()).await.unwrap(),
        Some(vm.moref.clone())
    );

    // Add a vGPU and lock memory in one reconfigure.
    let profile = VgpuProfile::new("grid_a100-3-20c").unwrap();
    let spec = VmConfigSpec::new()
        .add_vgpu(profile.clone())
        .memory_reservation_locked_to_max(true);
    let task = c.reconfigure_vm(&vm.moref, &spec).await.unwrap();
    let info = c.wait_for_task(&task, TaskWait::default()).await.unwrap();
    assert_eq!(info.entity.as_ref(), Some(vm.moref.as_moref()));
    let after = c.vm(&vm.moref, VmProperty::ALL).await.unwrap();
    assert_eq!(after.vgpus.len(), 1);
    assert_eq!(after.vgpus[0].profile, profile);
    assert_eq!(after.memory_reservation_locked_to_max, Some(true));

    // Remove it again.
    let task = c
        .reconfigure_vm(
            &vm.moref,
            &VmConfigSpec::new()
                .remove_vgpu(&after.vgpus[0])
                .memory_reservation_locked_to_max(false),
        )
        .await
        .unwrap();
    c.wait_for_task(&task, TaskWait::default()).await.unwrap();
    let cleared = c
        .vm(
            &vm.moref,
            &[VmProperty::Vgpus, VmProperty::MemoryReservationLockedToMax],
        )
        .await
        .unwrap();
    assert!(cleared.vgpus.is_empty());
    assert_eq!(cleared.memory_reservation_locked_to_max, Some(false));

    // A failing task surfaces its typed fault: editing a device the VM does
    // not have ends in InvalidDeviceSpec.
    let ghost = vcenter_client::VgpuDevice {
        key: vcenter_client::DeviceKey(424242),
        ..after.vgpus[0].clone()
    };
    let task = c
        .reconfigure_vm(
            &vm.moref,
            &VmConfigSpec::new().change_vgpu(&ghost, VgpuProfile::new("grid_a100-7-40c").unwrap()),
        )
        .await
        .unwrap();
    let err = c
        .wait_for_task(&task, TaskWait::default())
        .await
        .unwrap_err();
    match &err {
        Error::TaskFailed { task: t, fault, .. } => {
            assert_eq!(t, &task);
            assert_eq!(fault.type_name, "InvalidDeviceSpec", "{err}");
        }
        other => panic!("expected TaskFailed, got {other:?}"),
    }

    // Relocate to another host of the cluster.
    let from = vm.host.clone().unwrap();
    let clusters = c.clusters().await.unwrap();
    let to = clusters[0]
        .hosts
        .iter()
        .find(|h| **h != from)
        .unwrap()
        .clone();
    let task = c
        .relocate_vm(
            &vm.moref,
            &RelocateSpec {
                host: to.clone(),
                pool: None,
            },
        )
        .await
        .unwrap();
    c.wait_for_task(&task, TaskWait::default()).await.unwrap();
    let moved = c
        .vm(&vm.moref, &[VmProperty::Host, VmProperty::PowerState])
        .await
        .unwrap();
    assert_eq!(moved.host, Some(to));
    assert!(
        moved
            .power_state
            .is_some_and(|p| p == PowerState::PoweredOn || p == PowerState::PoweredOff)
    );

    // Unknown VM.
    let err = c
        .vm(&VmRef::new("vm-99999"), &[VmProperty::Name])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.fault_kind(),
            Some(FaultKind::ManagedObjectNotFound { .. })
        ),
        "{err}"
    );
}
