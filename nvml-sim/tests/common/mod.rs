//! Shared harness for the integration tests: a temp state file made by the real control binary,
//! and the built `libnvml_sim.so` loaded through nvml-wrapper's `lib_path`, i.e. the same FFI
//! path the agent uses.
//!
//! The library reads `NVML_SIM_STATE` from the test process's environment at `nvmlInit`, so
//! every test in a file takes [`Sim::lock`] first: tests in one binary run on parallel threads.
#![allow(dead_code)]

pub mod mig;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

use nvml_wrapper::Nvml;

static ENV_LOCK: Mutex<()> = Mutex::new(());

/// `target/<profile>/libnvml_sim.so`. A `cargo test -p nvml-sim` emits the cdylib next to the
/// test binaries, but a `cargo test --workspace` builds the library only as an rlib for its
/// dependents; the harness then builds the cdylib itself (once per process, under a lock).
pub fn lib_path() -> PathBuf {
    vmig_testkit::nvml_sim_lib()
}

/// One simulated machine in its own temp dir.
pub struct Sim {
    _dir: tempfile::TempDir,
    pub state: PathBuf,
    _guard: MutexGuard<'static, ()>,
}

impl Sim {
    /// Serialise with the other tests of this binary, create a state with these GPUs and
    /// point `NVML_SIM_STATE` at it.
    #[allow(
        unsafe_code,
        reason = "the library reads its state path from the environment, which only `set_var` changes"
    )]
    pub fn new(gpus: &[&str], extra_init_args: &[&str]) -> Sim {
        let guard = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state.json");
        let sim = Sim {
            _dir: dir,
            state,
            _guard: guard,
        };
        let mut args = vec!["init"];
        for g in gpus {
            args.push("--gpu");
            args.push(g);
        }
        args.extend_from_slice(extra_init_args);
        sim.ctl_ok(&args);
        // SAFETY: every test in this binary holds ENV_LOCK while touching the environment or
        // the library, so no other thread reads the environment concurrently.
        unsafe { std::env::set_var("NVML_SIM_STATE", &sim.state) };
        sim
    }

    /// Run the control binary on this state.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_nvml-sim"))
            .arg("--state")
            .arg(&self.state)
            .args(args)
            .env_remove("NVML_SIM_STATE")
            .output()
            .expect("run nvml-sim")
    }

    /// Run the control binary and require success; returns stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "nvml-sim {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run the control binary and require failure; returns stderr.
    pub fn ctl_err(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            !out.status.success(),
            "nvml-sim {args:?} unexpectedly succeeded"
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Load the simulated library through nvml-wrapper.
    pub fn nvml(&self) -> Nvml {
        Nvml::builder()
            .lib_path(lib_path().as_os_str())
            .init()
            .expect("nvml init through the simulator")
    }

    /// The state as JSON (via `nvml-sim show`).
    pub fn show(&self) -> serde_json::Value {
        serde_json::from_str(&self.ctl_ok(&["show"])).expect("show prints JSON")
    }
}

/// Read a NUL-terminated C char array.
pub fn c_str(chars: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8(bytes).expect("utf8")
}

/// Hold the environment lock without a machine (tests of a missing state).
pub fn env_lock() -> MutexGuard<'static, ()> {
    ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
