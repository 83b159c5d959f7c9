//! `vmig-agent run`: the resident daemon that keeps vCenter's view of this host's MIG slices
//! true ([`run`](fn@run), in [`service`]), and `vmig-agent check-config`, which validates its
//! configuration and connection ([`check_config`], in [`check`]). Both load NVML themselves
//! (the daemon keeps running when it is missing) and take their own option types.
//!
//! Flow: [`config`] → NVML observation ([`observe`]) → `mig::report::HostReport`
//! ([`document`]) → custom attributes `vmig.mig` / `vmig.mig.summary` on the host's
//! HostSystem ([`publish`]), paced by [`backoff`] and ordered by [`generation`], driven by the
//! loops in [`run`](mod@run). Utilization is sampled beside them on its own period
//! ([`sampling`], windows in [`sampling_window`]); MIG changes seen or made are posted as
//! vCenter events ([`events`]).
//!
//! ESXi constraints this module must keep (research vib-esxi.md §5): no child processes (no
//! `std::process::Command`), only glibc calls (no io_uring, pidfd, statx), one small
//! current-thread tokio runtime. The only `unsafe` is in [`sys`], for glibc's syslog and
//! gethostname.
pub mod backoff;
pub mod check;
pub mod config;
pub mod desired;
pub mod document;
pub mod events;
pub mod generation;
pub mod logging;
pub mod nvml_observer;
pub mod observe;
pub mod publish;
pub mod reconcile;
pub mod reconcile_loop;
pub mod reconcile_vcenter;
pub mod run;
pub mod sampling;
pub mod sampling_window;
pub mod service;
pub mod shared;
pub mod sys;
pub mod timesliced;
pub mod usage_state;
pub mod vcenter;
pub mod worker;

pub use check::{CheckOptions, check_config};
pub use service::{RunOptions, run};
