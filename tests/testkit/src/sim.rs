//! Driving a simulated ESXi GPU host from a test: the `nvml-sim` command line (the host's
//! side of MIG: create instances, start vGPUs, load, reset) and waiting for a real agent or
//! `vmig` to catch up with it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::binaries::workspace_bin_in;

/// Runs `nvml-sim --state STATE ARGS…` and returns its stdout.
///
/// # Panics
/// When nvml-sim cannot be built or run, or refuses the command (its output is in the message).
pub fn nvml_sim(state: &Path, args: &[&str]) -> String {
    let out = Command::new(workspace_bin_in("nvml-sim", "nvml-sim"))
        .arg("--state")
        .arg(state)
        .args(args)
        .output()
        .expect("run nvml-sim");
    assert!(
        out.status.success(),
        "nvml-sim {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `check` every 200 ms until it answers.
///
/// # Panics
/// After `timeout`, naming `what` it waited for.
pub fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
