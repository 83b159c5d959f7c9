//! Re-running one `#[ignore]`d test of the current test binary in a child process.
//!
//! Some tests need a process of their own: nvml-sim reads `NVML_SIM_STATE` at load time and
//! counts NVML calls per process, and setting an environment variable in a multi-threaded test
//! process is unsound. Such a test is written as an `#[ignore]`d body plus a parent test that
//! starts the test binary again with `--exact NAME --ignored` and the environment it needs.

use std::ffi::OsStr;
use std::process::Command;

/// Runs the `#[ignore]`d test `name` (its full path inside the test binary, e.g.
/// `traps::child_traps_1_to_3`) alone in a fresh process of the current test binary, with
/// `env` added to the environment, and returns its stdout followed by its stderr.
///
/// # Panics
/// When the child cannot start, fails, or did not run exactly one test (a renamed test would
/// otherwise "pass" by running nothing); the message holds the child's whole output.
pub fn run_child_test<K, V>(name: &str, env: impl IntoIterator<Item = (K, V)>) -> String
where
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let exe = std::env::current_exe().expect("the path of the running test binary");
    let out = Command::new(&exe)
        .envs(env)
        .args([
            "--exact",
            name,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .unwrap_or_else(|e| panic!("running the child test {name} ({}): {e}", exe.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child test {name} failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "the child test {name} did not run:\n{text}"
    );
    text
}
