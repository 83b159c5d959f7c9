//! Shared test harness for vmig's crates: real processes, real servers, isolated per test.
//!
//! - [`Vcsim`]: govmomi's vCenter simulator (built from `tests/vcsim`), with NVIDIA GPU data
//!   injected into chosen hosts, served over TLS with a throw-away CA so tests exercise real
//!   certificate verification. One simulator per test (or per test binary); killed on drop.
//! - [`TestCa`]: throw-away certificate authorities and server certificates (rcgen).
//! - [`workspace_bin`], [`nvml_sim_lib`], [`vcsim_binary`]: build the programs a test runs,
//!   once per process, with the same target directory and profile as the running test.
//! - [`ChildGuard`], [`temp_dir`]: every child process dies with the test; every test gets
//!   its own directory.
//! - [`RunningAgent`], [`agent_run_command`], [`agent_cli_output`]: the real `vmig-agent` on a
//!   simulated GPU host (daemon and one-shot commands).
//! - [`run_child_test`]: re-run one `#[ignore]`d test in a process of its own.
//! - [`fuzz_seeds`], [`mutations`]: the fuzz corpus and its mutations for stable-Rust tests.
//!
//! Nothing here skips: a missing Go toolchain or a failed build is a test failure, in CI and
//! on a laptop alike, with a message that says how to install what is missing.
//! docs/testing.md describes the whole test infrastructure.

mod agent;
mod binaries;
mod certs;
mod child_test;
mod fuzz;
mod process;
mod sim;
mod vcsim;

pub use agent::{RunningAgent, agent_cli_output, agent_run_command};
pub use binaries::{
    TargetLayout, nvml_sim_lib, target_layout, try_vcsim_binary, vcsim_binary, workspace_bin,
    workspace_bin_in, workspace_root,
};
pub use certs::{ServerCert, TestCa, sha256_thumbprint, unrelated_ca_pem};
pub use child_test::run_child_test;
pub use fuzz::{Mutations, Seed, fuzz_seeds, mutations};
pub use process::{ChildGuard, process_alive};
pub use sim::{nvml_sim, wait_for};
pub use tempfile::TempDir;
pub use vcsim::{
    GpuConfig, GpuCount, GpuModelSpec, GpuRule, HostReboot, TlsMode, Vcsim, VcsimBuilder, VcsimTls,
};

use std::path::PathBuf;

/// Everything that can go wrong while setting up test infrastructure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `tests/vcsim/build.sh` could not build the simulator (exit status 3: Go or govmomi missing).
    #[error(
        "cannot build the vCenter simulator (tests/vcsim/build.sh): {0}\n\
         Install Go and govmomi with `sudo scripts/install-deps.sh` \
         (Debian packages golang-go golang-github-vmware-govmomi-dev)"
    )]
    VcsimBuild(String),
    /// The simulator exited or stayed silent instead of printing its URL.
    #[error("vcsim did not start: {reason}\n--- vcsim stderr ({log}) ---\n{stderr}")]
    VcsimStart {
        /// What happened (exit status or timeout).
        reason: String,
        /// Path of the simulator's log file.
        log: PathBuf,
        /// The log's last lines.
        stderr: String,
    },
    /// Generating a certificate failed.
    #[error("generating a test certificate: {0}")]
    Cert(#[from] rcgen::Error),
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// The operation and the object, e.g. "writing /tmp/x/ca.pem".
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Result of this crate's fallible functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// A fresh directory for one test, removed when the returned guard drops.
///
/// The prefix names the test in `ls /tmp` when something leaks or hangs.
///
/// # Panics
/// When the system temp directory is not writable: no test can run then.
pub fn temp_dir(prefix: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("vmig-{prefix}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temp dir for {prefix}: {e}"))
}
