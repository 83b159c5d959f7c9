//! End-to-end tests of the `vmig-agent` binary against nvml-sim's simulated
//! libnvidia-ml.so: the real executable, a real dlopen'ed library, a state file per test.
mod catalog;
mod errors;
mod harness;
mod seed_replay;
mod session;
mod traps;
