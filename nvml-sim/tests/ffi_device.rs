//! Library lifetime and device queries through nvml-wrapper's real FFI path.
#![allow(
    unsafe_code,
    reason = "these tests call the exported C ABI directly, with NULL and foreign pointers too"
)]
mod common;

use std::ffi::{CStr, CString, c_char, c_uint};

use common::{Sim, c_str, env_lock, lib_path};
use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::*;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper_sys::bindings::*;

#[test]
fn init_shutdown_and_drop_do_not_panic() {
    let sim = Sim::new(&["a100-pcie-40gb"], &[]);
    {
        let nvml = sim.nvml();
        let second = sim.nvml(); // nvmlInit is reference counted
        assert_eq!(nvml.device_count().unwrap(), 1);
        drop(second);
        assert_eq!(
            nvml.device_count().unwrap(),
            1,
            "one shutdown of two inits keeps the library up"
        );
        nvml.shutdown().expect("explicit shutdown");
    }
    // A fresh init after everything was shut down works again.
    let nvml = sim.nvml();
    assert_eq!(nvml.sys_driver_version().unwrap(), "550.54.15");
    assert_eq!(nvml.sys_nvml_version().unwrap(), "12.550.54.15");
    assert_eq!(nvml.sys_cuda_driver_version().unwrap(), 12040);
}

#[test]
fn missing_state_is_driver_not_loaded() {
    let _env = env_lock();
    // SAFETY: env_lock serialises environment access within this test binary.
    unsafe { std::env::remove_var("NVML_SIM_STATE") };
    let err = Nvml::builder()
        .lib_path(lib_path().as_os_str())
        .init()
        .unwrap_err();
    assert!(matches!(err, NvmlError::DriverNotLoaded), "{err:?}");
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: `_env` holds the environment lock every test of this binary takes before touching the
    // environment or the library, so no other thread reads it now.
    unsafe { std::env::set_var("NVML_SIM_STATE", dir.path().join("absent.json")) };
    let err = Nvml::builder()
        .lib_path(lib_path().as_os_str())
        .init()
        .unwrap_err();
    assert!(matches!(err, NvmlError::DriverNotLoaded), "{err:?}");
    std::fs::write(dir.path().join("bad.json"), "{").unwrap();
    // SAFETY: still under `_env`, the lock that serialises all environment access in this binary.
    unsafe { std::env::set_var("NVML_SIM_STATE", dir.path().join("bad.json")) };
    let err = Nvml::builder()
        .lib_path(lib_path().as_os_str())
        .init()
        .unwrap_err();
    assert!(matches!(err, NvmlError::Unknown), "{err:?}");
}

#[test]
fn device_identity_pci_and_memory() {
    let sim = Sim::new(&["a100-pcie-40gb", "h100-sxm5-80gb"], &[]);
    let nvml = sim.nvml();
    assert_eq!(nvml.device_count().unwrap(), 2);
    let state = sim.show();

    let d0 = nvml.device_by_index(0).unwrap();
    assert_eq!(d0.name().unwrap(), "NVIDIA A100-PCIE-40GB");
    assert_eq!(d0.index().unwrap(), 0);
    let uuid = d0.uuid().unwrap();
    assert_eq!(uuid, state["gpus"][0]["uuid"].as_str().unwrap());
    assert!(uuid.starts_with("GPU-") && uuid.len() == 40, "{uuid}");
    // Stable per state file: a second library load reports the same UUID.
    assert_eq!(sim.nvml().device_by_index(0).unwrap().uuid().unwrap(), uuid);

    let pci = d0.pci_info().unwrap();
    assert_eq!(pci.pci_device_id, 0x20F1_10DE);
    assert_eq!(pci.bus_id, format!("00000000:{:02X}:00.0", pci.bus));
    assert_eq!(pci.domain, 0);

    let mem = d0.memory_info().unwrap(); // nvmlDeviceGetMemoryInfo_v2
    assert_eq!(mem.total, 40960 * 1024 * 1024);
    assert_eq!(mem.used, 0);
    assert_eq!(mem.free, mem.total);
    let mut v1 = nvmlMemory_t {
        total: 0,
        free: 0,
        used: 0,
    };
    // SAFETY: `d0.handle()` is a live device handle of the loaded library (`d0` borrows `nvml`),
    // and `v1` is a local `nvmlMemory_t`, the struct the v1 call writes.
    let rc = unsafe { nvml.lib().nvmlDeviceGetMemoryInfo(d0.handle(), &mut v1) };
    assert_eq!(rc, nvmlReturn_enum_NVML_SUCCESS);
    assert_eq!(
        (v1.total, v1.free, v1.used),
        (mem.total, mem.free, mem.used)
    );
    // A v2 struct with the wrong version word is refused.
    let mut bad = nvmlMemory_v2_t {
        version: 0x0100_0028,
        total: 0,
        reserved: 0,
        free: 0,
        used: 0,
    };
    // SAFETY: `bad` is a local `nvmlMemory_v2_t`, so even if its version were accepted the write
    // would fit; the handle is `d0`'s, live while `nvml` is.
    let rc = unsafe { nvml.lib().nvmlDeviceGetMemoryInfo_v2(d0.handle(), &mut bad) };
    assert_eq!(rc, nvmlReturn_enum_NVML_ERROR_ARGUMENT_VERSION_MISMATCH);

    let d1 = nvml.device_by_index(1).unwrap();
    assert_eq!(d1.name().unwrap(), "NVIDIA H100 80GB HBM3");
    assert_ne!(d1.uuid().unwrap(), uuid);
    assert_eq!(
        nvml.device_by_uuid(d1.uuid().unwrap())
            .unwrap()
            .index()
            .unwrap(),
        1
    );
    let bus = d1.pci_info().unwrap().bus_id;
    assert_eq!(
        nvml.device_by_pci_bus_id(bus.as_str())
            .unwrap()
            .index()
            .unwrap(),
        1
    );
    let legacy = format!("0000:{}", &bus[9..]);
    assert_eq!(
        nvml.device_by_pci_bus_id(legacy.as_str())
            .unwrap()
            .index()
            .unwrap(),
        1
    );
    assert!(matches!(
        nvml.device_by_uuid("GPU-00000000-0000-0000-0000-000000000000"),
        Err(NvmlError::NotFound)
    ));
    assert!(matches!(
        nvml.device_by_index(2),
        Err(NvmlError::InvalidArg)
    ));
    assert!(!d1.mig_is_mig_device_handle().unwrap());
    assert_eq!(d1.attributes().unwrap().multiprocessor_count, 132);
    assert!(d0.serial().unwrap().len() > 4);
}

#[test]
fn buffers_too_small_and_null_pointers_are_reported() {
    let sim = Sim::new(&["a100-pcie-40gb"], &[]);
    let nvml = sim.nvml();
    // SAFETY: the raw handle is only passed back to this library below, while `nvml` is alive;
    // nothing frees or dereferences it on our side.
    let dev = unsafe { nvml.device_by_index(0).unwrap().handle() };
    let lib = nvml.lib();
    let mut buf = [0 as c_char; 8];
    assert_eq!(
        // SAFETY: `buf` is a local array of `buf.len()` bytes, the length passed with it; `dev` is
        // a live handle.
        unsafe { lib.nvmlDeviceGetUUID(dev, buf.as_mut_ptr(), buf.len() as c_uint) },
        nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE
    );
    assert_eq!(
        // SAFETY: NULL is an out-pointer nvml.h lets callers pass (refused, never written); `dev`
        // is a live handle.
        unsafe { lib.nvmlDeviceGetName(dev, std::ptr::null_mut(), 96) },
        nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT
    );
    assert_eq!(
        // SAFETY: NULL is an out-pointer nvml.h lets callers pass: the call must refuse it without
        // writing.
        unsafe { lib.nvmlDeviceGetCount_v2(std::ptr::null_mut()) },
        nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT
    );
    // Handles that are not ours are refused, never dereferenced.
    let mut name = [0 as c_char; 96];
    for bogus in [
        std::ptr::null_mut(),
        0x1000 as nvmlDevice_t,
        usize::MAX as nvmlDevice_t,
    ] {
        assert_eq!(
            // SAFETY: the simulator decodes handles as integers and checks them against its state
            // (nvml_sim::handle), never dereferencing them, so foreign values are safe to pass;
            // `name` is a local of the 96 bytes passed.
            unsafe { lib.nvmlDeviceGetName(bogus, name.as_mut_ptr(), 96) },
            nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT
        );
    }
    assert_eq!(
        // SAFETY: `dev` is a live handle and `name` a local array of the 96 bytes passed.
        unsafe { lib.nvmlDeviceGetName(dev, name.as_mut_ptr(), 96) },
        nvmlReturn_enum_NVML_SUCCESS
    );
    assert_eq!(c_str(&name), "NVIDIA A100-PCIE-40GB");
}

#[test]
fn error_strings_are_the_real_texts() {
    let sim = Sim::new(&["a100-pcie-40gb"], &[]);
    let nvml = sim.nvml();
    let text = |code| {
        // SAFETY: nvmlErrorString returns a pointer to a static NUL-terminated text for every code
        // (unknown ones included), valid for the life of the loaded library, which `nvml` keeps
        // loaded.
        unsafe { CStr::from_ptr(nvml.lib().nvmlErrorString(code)) }
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(text(nvmlReturn_enum_NVML_SUCCESS), "Success");
    assert_eq!(
        text(nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT),
        "Invalid Argument"
    );
    assert_eq!(text(nvmlReturn_enum_NVML_ERROR_NOT_FOUND), "Not Found");
    assert_eq!(
        text(nvmlReturn_enum_NVML_ERROR_IN_USE),
        "In use by another client"
    );
    assert_eq!(
        text(nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_RESOURCES),
        "Insufficient Resources"
    );
    assert_eq!(
        text(nvmlReturn_enum_NVML_ERROR_RESET_REQUIRED),
        "GPU requires reset"
    );
    assert_eq!(text(nvmlReturn_enum_NVML_ERROR_UNKNOWN), "Unknown Error");
    assert_eq!(text(123_456), "Unknown Error");
}

#[test]
fn calls_before_init_are_uninitialized_and_unknown_symbols_are_absent() {
    let _env = env_lock();
    // Load the library directly: no nvmlInit has run in this handle's view of the world
    // (every other test of this binary has shut down its Nvml before releasing the lock).
    let path = CString::new(lib_path().to_str().unwrap()).unwrap();
    // SAFETY: plain dlopen/dlsym of our own test library.
    unsafe {
        let h = libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        assert!(!h.is_null());
        let sym = |name: &str| libc::dlsym(h, CString::new(name).unwrap().as_ptr());
        let get_count: extern "C" fn(*mut c_uint) -> c_uint =
            std::mem::transmute(sym("nvmlDeviceGetCount_v2"));
        let mut n = 7;
        assert_eq!(get_count(&mut n), nvmlReturn_enum_NVML_ERROR_UNINITIALIZED);
        let shutdown: extern "C" fn() -> c_uint = std::mem::transmute(sym("nvmlShutdown"));
        assert_eq!(shutdown(), nvmlReturn_enum_NVML_ERROR_UNINITIALIZED);
        // Legacy names exist alongside the versioned ones.
        for legacy in [
            "nvmlInit",
            "nvmlDeviceGetCount",
            "nvmlDeviceGetHandleByIndex",
            "nvmlComputeInstanceGetInfo",
            "nvmlDeviceGetComputeRunningProcesses",
            "nvmlDeviceGetComputeRunningProcesses_v2",
            "nvmlDeviceGetGpuInstancePossiblePlacements",
        ] {
            assert!(!sym(legacy).is_null(), "{legacy} missing");
        }
        // Functions the simulator does not implement are absent, so clients get the same
        // "symbol not found" they would get from an older real driver.
        assert!(sym("nvmlDeviceGetPowerUsage").is_null());
        // GPM per GI is implemented (ffi_gpm.rs); whole-GPU GPM samples and streaming are not.
        assert!(sym("nvmlGpmSampleGet").is_null());
        assert!(sym("nvmlGpmSetStreamingEnabled").is_null());
        libc::dlclose(h);
    }
    // nvml-wrapper turns an absent symbol into FailedToLoadSymbol, not a panic.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nvml-sim"))
        .args([
            "--state",
            state.to_str().unwrap(),
            "init",
            "--gpu",
            "a100-pcie-40gb",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    // SAFETY: env_lock held.
    unsafe { std::env::set_var("NVML_SIM_STATE", &state) };
    let nvml = Nvml::builder()
        .lib_path(lib_path().as_os_str())
        .init()
        .unwrap();
    let dev = nvml.device_by_index(0).unwrap();
    assert!(matches!(
        dev.power_usage(),
        Err(NvmlError::FailedToLoadSymbol(_))
    ));
    assert!(matches!(
        dev.temperature(TemperatureSensor::Gpu),
        Err(NvmlError::FailedToLoadSymbol(_))
    ));
}

/// nvmlSimGetCallCount through the loaded library (not an NVML function, so not in the bindings).
fn call_count() -> u64 {
    let lib = CString::new(lib_path().into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: RTLD_NOLOAD returns the already loaded library; the symbol's C signature is
    // `nvmlReturn_t nvmlSimGetCallCount(unsigned long long *)`.
    unsafe {
        let h = libc::dlopen(lib.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
        assert!(!h.is_null(), "the library is loaded");
        let sym = libc::dlsym(h, c"nvmlSimGetCallCount".as_ptr());
        assert!(!sym.is_null(), "nvmlSimGetCallCount is exported");
        let f =
            std::mem::transmute::<*mut libc::c_void, unsafe extern "C" fn(*mut u64) -> c_uint>(sym);
        let mut n = 0;
        assert_eq!(f(&mut n), 0);
        assert_eq!(f(std::ptr::null_mut()), 2, "NULL → INVALID_ARGUMENT");
        libc::dlclose(h);
        n
    }
}

#[test]
fn cached_state_follows_every_change_by_other_processes() {
    // The library parses the state file only when it changed (docs/nvml-sim.md, "State
    // file"); a client must still see each change another process makes, at its next call.
    let sim = Sim::new(&["a100-pcie-40gb", "h100-sxm5-80gb"], &[]);
    let nvml = sim.nvml();
    let d = nvml.device_by_index(0).unwrap();
    let before = call_count();
    assert!(d.running_compute_processes().unwrap().is_empty());
    assert!(call_count() > before, "NVML calls are counted");
    for round in 0..10u32 {
        let pid = (4000 + round).to_string();
        sim.ctl_ok(&["occupy", "-i", "0", "--pid", &pid]);
        let procs = d.running_compute_processes().unwrap();
        assert_eq!(
            procs.iter().map(|p| p.pid).collect::<Vec<_>>(),
            vec![4000 + round],
            "round {round}"
        );
        sim.ctl_ok(&["release", "--pid", &pid]);
        assert!(
            d.running_compute_processes().unwrap().is_empty(),
            "round {round}"
        );
    }
    // A write through this library is seen by the control binary and by this library.
    let d1 = nvml.device_by_index(1).unwrap();
    assert_eq!(
        d1.set_mig_mode(true).unwrap(),
        nvmlReturn_enum_NVML_ERROR_RESET_REQUIRED
    );
    assert_eq!(d1.mig_mode().unwrap().pending, 1);
    assert_eq!(sim.show()["gpus"][1]["mig_mode"]["pending"], true);
    sim.ctl_ok(&["reset", "-i", "1"]);
    assert_eq!(d1.mig_mode().unwrap().current, 1);
    // A state file replaced by a new machine (init --force) is a new machine.
    sim.ctl_ok(&["init", "--force", "--gpu", "a100-pcie-40gb"]);
    assert_eq!(nvml.device_count().unwrap(), 1);
}

#[test]
fn process_names_come_from_occupy_and_are_cut_to_the_buffer() {
    let sim = Sim::new(&["a100-pcie-40gb"], &[]);
    sim.ctl_ok(&["occupy", "-i", "0", "--pid", "4242", "--name", "trainer.py"]);
    let nvml = sim.nvml();
    assert_eq!(nvml.sys_process_name(4242, 64).unwrap(), "trainer.py");
    assert!(matches!(
        nvml.sys_process_name(4243, 64),
        Err(NvmlError::NotFound)
    ));
    let lib = nvml.lib();
    let mut buf = [0 as c_char; 6];
    assert_eq!(
        // SAFETY: `buf` is a local array of `buf.len()` bytes, the length passed with it.
        unsafe { lib.nvmlSystemGetProcessName(4242, buf.as_mut_ptr(), buf.len() as c_uint) },
        nvmlReturn_enum_NVML_SUCCESS,
        "a short buffer gets the name cut, as NVIDIA documents"
    );
    assert_eq!(c_str(&buf), "train");
    for (ptr, len) in [(buf.as_mut_ptr(), 0), (std::ptr::null_mut(), 6)] {
        assert_eq!(
            // SAFETY: each pair is a valid buffer with length 0 or NULL with a length: both are
            // argument errors the call must refuse without writing.
            unsafe { lib.nvmlSystemGetProcessName(4242, ptr, len) },
            nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT
        );
    }
}
