//! `vmig`: the vCenter admin's view of MIG. The library behind the `vmig` command
//! (`report`, `capacity`, `assign`, `unassign`, `repair`, `serve`); the binary (`src/main.rs`) only calls
//! [`cli::main`]. docs/admin-guide.md is the user's view of all this.
//!
//! Flow: [`connect_opts`] resolves flags and `GOVC_*` variables into targets and
//! [`connection`] logs in to each; [`inventory`] reads each vCenter (concurrently per compute
//! resource, streamed) with the `vcenter-client` crate; [`analysis`] joins that with the
//! agents' `vmig.mig` documents and the VMs' `vmig.reservation`s ([`reservation`]) and
//! analyses every GPU with the `mig` crate; [`report`] is the serialisable view of that
//! analysis, [`stream`] writes the same view one compute resource at a time, and [`render`]
//! prints it. [`capacity`] and [`assign`] plan on the same analysis with `mig`'s best-fit
//! planner. [`lock`] is the mutual exclusion (with fencing tokens and vCenter's clock) that
//! keeps two admins from booking the same slice or changing the same VM; [`interrupt`]
//! makes SIGINT/SIGTERM stop a change between vCenter calls. [`serve`] keeps the same model
//! current with vCenter's incremental property collector and serves it over HTTP. [`error`] and [`exit`] are how a command fails and the exit status it ends with.
//!
//! vmig never writes `vmig.mig` (the agents own it); it writes `vmig.reservation` on VMs and
//! short-lived `vmig.lock.*` field definitions.

pub mod analysis;
pub mod assign;
pub mod capacity;
pub mod cli;
pub mod connect_opts;
pub mod connection;
pub mod error;
pub mod exit;
pub mod fuzzing;
pub mod interrupt;
pub mod inventory;
pub mod layout;
pub mod lock;
pub mod output;
pub mod plan;
pub mod render;
pub mod report;
pub mod reservation;
pub mod rightsize;
pub mod rollout;
pub mod serve;
pub mod setup;
pub mod simulate;
pub mod snapshot;
pub mod stream;
pub mod times;

pub use connection::{Connection, connect_all};
pub use error::{AdminError, Refusal, RefusalKind};
pub use exit::ExitCode;
