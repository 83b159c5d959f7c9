//! The four traps of nvml-wrapper 0.13 (research nvml-mig.md §5), each shown against a real
//! dlopen'ed library and handled by `vmig_agent::nvml`:
//! 1. `Device::possible_placements()` returns `[]` → the raw `_v2` call;
//! 2. `INSUFFICIENT_RESOURCES` (23) is no named `NvmlError` → typed code and admin error;
//! 3. `Device::mig_device_count()` is the maximum → MIG devices are counted by enumeration;
//! 4. a raw call of a missing symbol panics → the symbol is checked first.
//!
//! nvml-sim finds its state through `NVML_SIM_STATE`, which a test must not set in its own
//! (multi-threaded) process; the library-level checks therefore run in a child process of
//! this test binary that gets the variable from the parent.
use std::path::{Path, PathBuf};
use std::process::Command;

use mig::{CiProfileId, GiProfileId, Placement};
use vmig_agent::nvml::{CallError, Driver, LoadError, NvmlCode};
use vmig_agent::{AgentError, operations};

use crate::harness::Host;

const CHILD_LIB: &str = "VMIG_AGENT_TEST_SIM_LIB";

#[test]
fn traps_1_to_3_through_nvml_sim() {
    let host = Host::with_mig(&["a100-pcie-40gb"]);
    vmig_testkit::run_child_test(
        "traps::child_traps_1_to_3",
        [("NVML_SIM_STATE", &host.state), (CHILD_LIB, &host.lib)],
    );
}

#[test]
#[ignore = "runs inside traps_1_to_3_through_nvml_sim, which sets NVML_SIM_STATE for it"]
fn child_traps_1_to_3() {
    let lib = PathBuf::from(std::env::var_os(CHILD_LIB).expect("started by the parent test"));
    let driver = Driver::load(Some(&lib)).expect("load nvml-sim");
    let gpu = driver.gpu_by_index(0).expect("GPU 0");

    // 1. nvml-wrapper's possible_placements() is empty; ours is the driver's list.
    let theirs = gpu
        .device()
        .possible_placements(9)
        .expect("the call itself succeeds");
    assert!(
        theirs.is_empty(),
        "nvml-wrapper 0.13 bug fixed? got {} placements",
        theirs.len()
    );
    let ours = gpu
        .gi_possible_placements(GiProfileId(9))
        .expect("raw placements");
    assert_eq!(
        ours,
        vec![
            Placement { start: 0, size: 4 },
            Placement { start: 4, size: 4 }
        ]
    );

    // 2. INSUFFICIENT_RESOURCES arrives as a named code, and as a typed admin error.
    let a = gpu.create_gi(GiProfileId(9), None).expect("first 3g");
    let b = gpu.create_gi(GiProfileId(9), None).expect("second 3g");
    let e = gpu
        .create_gi(GiProfileId(9), None)
        .expect_err("no room for a third");
    assert!(e.is(NvmlCode::INSUFFICIENT_RESOURCES), "{e}");
    assert!(
        e.to_string().contains("NVML_ERROR_INSUFFICIENT_RESOURCES"),
        "{e}"
    );
    let profiles = gpu.gi_profiles().expect("profiles");
    let three_g = profiles
        .iter()
        .find(|p| p.id == GiProfileId(9))
        .expect("3g profile");
    let err = operations::create_gpu_instance(&gpu, three_g, None).expect_err("full");
    assert!(
        matches!(err, AgentError::GiInsufficientResources { .. }),
        "{err}"
    );
    assert_eq!(err.exit_code().code(), 3);

    // 3. mig_device_count() is the maximum, not what exists.
    a.create_ci(CiProfileId(2), None).expect("CI in a");
    b.create_ci(CiProfileId(0), None).expect("CI in b");
    let max = gpu.device().mig_device_count().expect("max count");
    let real = gpu.mig_devices().expect("enumerate");
    assert_eq!(real.len(), 2, "{real:?}");
    assert!(max > 2, "max {max} is an upper bound, not the count");
    assert!(
        real.iter()
            .all(|d| d.uuid.starts_with("MIG-") && d.name.starts_with("MIG ")),
        "{real:?}"
    );
}

/// Build the incomplete NVML fixture with plain rustc into `dir`.
fn minimal_nvml(dir: &Path, cfg: Option<&str>) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nvml_minimal.rs");
    let name = format!("libnvml_minimal_{}.so", cfg.unwrap_or("full"));
    let out = dir.join(name);
    let mut cmd = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()));
    cmd.args([
        "--edition",
        "2021",
        "--crate-type",
        "cdylib",
        "--crate-name",
        "nvml_minimal",
        "-o",
    ])
    .arg(&out)
    .arg(&src);
    if let Some(c) = cfg {
        cmd.args(["--cfg", c]);
    }
    let o = cmd.output().expect("run rustc");
    assert!(
        o.status.success(),
        "rustc failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

#[test]
fn trap_4_missing_symbols_are_named_errors_not_panics() {
    let dir = vmig_testkit::temp_dir("agent-minimal-nvml");
    let lib = minimal_nvml(dir.path(), None);

    let driver = Driver::load(Some(&lib)).expect("the minimal library loads");
    let gpu = driver.gpu_by_index(0).expect("GPU 0");
    assert!(gpu.mig_mode().expect("mig mode").current);
    let e = gpu
        .gi_profiles()
        .expect_err("no profile calls in this library");
    assert_eq!(
        e,
        CallError::MissingSymbol {
            symbol: "nvmlDeviceGetGpuInstanceProfileInfo".into()
        }
    );
    let e = gpu
        .gi_possible_placements(GiProfileId(9))
        .expect_err("missing");
    assert_eq!(
        e,
        CallError::MissingSymbol {
            symbol: "nvmlDeviceGetGpuInstancePossiblePlacements_v2".into()
        }
    );
    let e = gpu.create_gi(GiProfileId(9), None).expect_err("missing");
    assert_eq!(
        e,
        CallError::MissingSymbol {
            symbol: "nvmlDeviceCreateGpuInstance".into()
        }
    );
    // The safe API's own lookups fail the same way (no panic either).
    assert!(matches!(
        gpu.processes(),
        Err(CallError::MissingSymbol { .. })
    ));
    assert_eq!(gpu.vgpus(), Ok(vec![]), "no vGPU calls means no vGPUs");
    drop(driver);

    // Through the binary: exit 4 with the symbol named.
    let r = Command::new(env!("CARGO_BIN_EXE_vmig-agent"))
        .args(["--nvml-lib"])
        .arg(&lib)
        .args(["mig", "lgip", "-i", "0"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(4), "{err}");
    assert!(
        err.contains("does not export nvmlDeviceGetGpuInstanceProfileInfo"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // A library without nvmlShutdown would make nvml-wrapper's Drop panic: refused at load.
    let no_shutdown = minimal_nvml(dir.path(), Some("no_shutdown"));
    match Driver::load(Some(&no_shutdown)) {
        Err(LoadError::NotNvml { symbol, .. }) => assert_eq!(symbol, "nvmlShutdown"),
        other => panic!("expected NotNvml, got {other:?}"),
    }
    let r = Command::new(env!("CARGO_BIN_EXE_vmig-agent"))
        .arg("--nvml-lib")
        .arg(&no_shutdown)
        .arg("list")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(4), "{err}");
    assert!(
        err.contains("is not an NVML library: it does not export nvmlShutdown"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
