//! vmig-agent: the per-host side of vmig. It drives NVIDIA MIG through NVML (never by running
//! nvidia-smi) and reads the full MIG state of the host for the daemon to publish.
//!
//! Module map:
//! - [`nvml`] — safe MIG API over `nvml-wrapper`; `nvml::ffi` (private) holds every `unsafe`
//!   NVML call (the only other `unsafe` is `daemon::sys`, for a few glibc calls).
//! - [`operations`] — checked create/destroy/mode operations with admin-facing errors.
//! - [`observe`](mod@observe) — one serde snapshot of every GPU's MIG state.
//! - [`render`] — nvidia-smi-shaped tables and the stable `--json` rows.
//! - [`cli`] — the `vmig-agent` command line (clap definitions only; `main` routes each
//!   command to the function that runs it); [`smi`] — the nvidia-smi MIG commands;
//!   [`error`] — errors and the one [`ExitCode`] type.
//! - [`gpu_selector`], [`profile_spec`] — parsing of `-i` and PROFILES arguments.
//! - [`layout`] — declarative MIG layouts (`plan`, `apply`, `assert`, `export`; docs/layouts.md).
//! - [`daemon`] — `run` and `check-config` (docs/operations.md).
//!
//! The library writes nothing to stdout: every command appends its output to a `String`
//! that the binary prints.
pub mod cli;
pub mod daemon;
pub mod error;
pub mod fuzzing;
pub mod gpu_selector;
pub mod layout;
pub mod nvml;
pub mod observe;
pub mod operations;
pub mod profile_spec;
pub mod render;
pub mod smi;

pub use error::{AgentError, ExitCode};
pub use observe::{HostMigState, observe};
