//! Declarative MIG layouts: `vmig-agent plan | apply | assert | export`.
//!
//! Admins name a layout once (a file in NVIDIA mig-parted's `version: v1` format, read
//! unchanged, plus vmig's extensions) and apply it on every host. Unlike mig-parted, which
//! clears a GPU and recreates it in a fixed order letting the driver place instances, vmig
//! hands the current state and the wanted layout to the `mig` planner, which keeps what
//! already matches, never destroys an instance in use, chooses placements so fragmented GPUs
//! still fit, and proves a layout infeasible before anything changes.
//!
//! - [`config`] — parsing and validation with line/key errors, per-model resolution;
//! - [`builtin`] — the layouts shipped in the binary (`agent/layouts/vmig-layouts.yaml`);
//! - [`host`] — which GPUs a config selects and what each needs (pure decisions);
//! - [`exec`] — running a plan through a [`exec::MigBackend`] with rollback (NVML or in-memory);
//! - [`export`] — the current layout as a file that `apply` reproduces;
//! - [`cli`] — the four subcommands, their reports and exit codes.
//!
//! docs/layouts.md documents the format, the shipped layouts and the safety rules.
pub mod builtin;
pub mod cli;
pub mod config;
pub mod exec;
pub mod export;
pub mod host;

pub use cli::{ApplyArgs, AssertArgs, ExportArgs, LayoutError, PlanArgs, dispatch};
pub use config::{ConfigError, LayoutFile, Target};
pub use exec::{MigBackend, NvmlBackend, SimBackend, execute};
