//! XID events (`nvml-sim xid`) read back through nvml-wrapper's event API
//! (`nvmlEventSetCreate` / `nvmlDeviceRegisterEvents` / `nvmlEventSetWait_v2` /
//! `nvmlEventSetFree`), as the agent's sampler drains them.
mod common;

use common::Sim;
use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;

#[test]
fn queued_xids_are_delivered_once_per_set_after_registration() {
    let sim = Sim::new(&["a100-pcie-40gb", "a100-pcie-40gb"], &["--mig"]);
    // Before any set is registered: not delivered later (as the driver does).
    sim.ctl_ok(&["xid", "--gpu", "0", "--xid", "31"]);
    let nvml = sim.nvml();
    let d0 = nvml.device_by_index(0).unwrap();
    let uuid0 = d0.uuid().unwrap();
    let set = nvml.create_event_set().unwrap();
    let set = d0
        .register_events(EventTypes::CRITICAL_XID_ERROR, set)
        .unwrap();
    assert!(
        matches!(set.wait(0), Err(NvmlError::Timeout)),
        "nothing new yet"
    );

    let out = sim.ctl_ok(&["xid", "--gpu", "0", "--xid", "79"]);
    assert!(out.contains("XID 79 queued on GPU 0"), "{out}");
    sim.ctl_ok(&["xid", "--gpu", "1", "--xid", "48"]);
    sim.ctl_ok(&["xid", "--gpu", "0", "--xid", "0"]);

    let e = set.wait(0).unwrap();
    assert_eq!(e.device.uuid().unwrap(), uuid0);
    assert!(e.event_type.contains(EventTypes::CRITICAL_XID_ERROR));
    assert_eq!(e.event_data, Some(XidError::Value(79)));
    let e = set.wait(0).unwrap();
    assert_eq!(e.event_data, Some(XidError::Unknown), "code 0 reads as 999");
    // GPU 1 is not registered in this set.
    assert!(matches!(set.wait(0), Err(NvmlError::Timeout)));

    // A second set sees only what comes after its own registration; a waiting call returns
    // once an XID arrives within its timeout.
    let other = nvml.create_event_set().unwrap();
    let other = d0
        .register_events(EventTypes::CRITICAL_XID_ERROR, other)
        .unwrap();
    assert!(matches!(other.wait(50), Err(NvmlError::Timeout)));
    let path = sim.state.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let ok = std::process::Command::new(env!("CARGO_BIN_EXE_nvml-sim"))
            .env(nvml_sim::store::STATE_ENV, &path)
            .args(["xid", "--gpu", "0", "--xid", "13"])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    });
    let e = other.wait(5_000).unwrap();
    assert_eq!(e.event_data, Some(XidError::Value(13)));
    writer.join().unwrap();
    assert_eq!(set.wait(0).unwrap().event_data, Some(XidError::Value(13)));
    set.release_events().unwrap();
    other.release_events().unwrap();
}

#[test]
fn other_event_types_and_bad_targets_are_refused() {
    let sim = Sim::new(&["a100-pcie-40gb"], &["--mig"]);
    let nvml = sim.nvml();
    let d0 = nvml.device_by_index(0).unwrap();
    let set = nvml.create_event_set().unwrap();
    let e = d0
        .register_events(EventTypes::PSTATE_CHANGE, set)
        .expect_err("only XIDs");
    assert!(matches!(e.error, NvmlError::NotSupported), "{e:?}");
    assert!(
        sim.ctl_err(&["xid", "--gpu", "3", "--xid", "79"])
            .contains("GPU index 3 does not exist")
    );
    assert!(
        sim.ctl_err(&["xid", "--gpu", "0", "--xid", "79", "--gi", "5"])
            .contains("no GPU instance 5")
    );
}

#[test]
fn a_driver_without_events_refuses_the_registration() {
    let sim = Sim::new(&["a100-pcie-40gb"], &["--mig", "--no-xid-events"]);
    let nvml = sim.nvml();
    let d0 = nvml.device_by_index(0).unwrap();
    let set = nvml.create_event_set().unwrap();
    let e = d0
        .register_events(EventTypes::CRITICAL_XID_ERROR, set)
        .expect_err("no events");
    assert!(matches!(e.error, NvmlError::NotSupported), "{e:?}");
}
