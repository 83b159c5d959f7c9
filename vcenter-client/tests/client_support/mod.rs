//! Shared setup for vcenter-client's integration tests against vcsim
//! (govmomi's simulator, started per test by vmig-testkit).

#![allow(dead_code)]

use vcenter_client::{Client, ConnectOptions, Credentials, TlsPolicy};
use vmig_testkit::{GpuConfig, GpuRule, Vcsim, VcsimBuilder};

/// A simulator with a100 GPUs on every host of cluster DC0_C0 (3 hosts) and
/// an h100 on the standalone host DC0_H0.
pub fn gpu_sim() -> VcsimBuilder {
    Vcsim::builder().gpu_hosts(
        GpuConfig::default()
            .rule(GpuRule::clusters("DC0_C0").gpu("a100-pcie-40gb", 2))
            .rule(GpuRule::hosts("DC0_H0").gpu("h100-sxm5-80gb", 1)),
    )
}

/// Starts `builder`, panicking with the harness's message on failure.
pub fn start(builder: VcsimBuilder) -> Vcsim {
    builder.start().unwrap_or_else(|e| panic!("{e}"))
}

/// Options trusting the simulator's generated CA.
pub fn options(sim: &Vcsim) -> ConnectOptions {
    options_with(sim, ca_policy(sim))
}

/// Options with an explicit TLS policy.
pub fn options_with(sim: &Vcsim, tls: TlsPolicy) -> ConnectOptions {
    ConnectOptions::new(
        sim.url(),
        Credentials::new(sim.username(), sim.password()),
        tls,
    )
}

/// Trust the simulator's CA file.
pub fn ca_policy(sim: &Vcsim) -> TlsPolicy {
    TlsPolicy::CaFile(
        sim.ca_pem_path()
            .expect("the simulator serves TLS")
            .to_path_buf(),
    )
}

/// Connects with the simulator's CA and credentials.
pub async fn connect(sim: &Vcsim) -> Client {
    Client::connect(options(sim))
        .await
        .unwrap_or_else(|e| panic!("connecting to {}: {e}", sim.url()))
}
