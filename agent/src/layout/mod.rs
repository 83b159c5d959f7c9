//! Declarative MIG layouts: `vmig-agent plan | apply | assert | export`.
//!
//! Admins name a layout once (a file in NVIDIA mig-parted's `version: v1` format, read
//! unchanged, plus vmig's extensions) and apply it on every host. Unlike mig-parted, which
//! clears a GPU and recreates it in a fixed order letting the driver place instances, vmig
//! hands the current state and the wanted layout to the `mig` planner, which keeps what
//! already matches, never destroys an instance in use, chooses placements so fragmented GPUs
//! still fit, and proves a layout infeasible before anything changes.
//!
//! Each command is one library function taking the NVML [`Driver`](crate::nvml::Driver),
//! a [`LayoutSelection`], its options and the `out` buffer its report goes to: [`plan`](fn@plan),
//! [`apply`](fn@apply) (also the daemon's entry point), [`assert`](fn@assert), [`export_current`];
//! they fail with a [`LayoutError`], whose exit code is 0 done or matching, 2 bad config or
//! arguments, 3 refused / blocked / does not match, 4 NVML failure (after rolling back the
//! GPU that failed).
//!
//! - [`config`] — parsing and validation with line/key errors, per-model resolution;
//! - [`builtin`] — the layouts shipped in the binary (`mig/layouts/vmig-layouts.yaml`);
//! - [`read`] — the layout file a selection names, and the GPUs as the layout code sees them;
//! - [`host`] — which GPUs a config selects and what each needs (pure decisions);
//! - [`exec`] — running a plan through a [`exec::MigBackend`] with rollback (NVML or in-memory);
//! - [`plan`](mod@plan), [`apply`](mod@apply), [`assert`](mod@assert), [`export`] — the
//!   four commands and their reports.
//!
//! docs/layouts.md documents the format, the shipped layouts and the safety rules.
pub mod apply;
pub mod assert;
pub mod builtin;
pub mod config;
pub mod error;
pub mod exec;
pub mod export;
pub mod host;
pub mod plan;
pub mod read;

pub use apply::{apply, apply_file};
pub use assert::assert;
pub use config::{ConfigError, LayoutFile, Target};
pub use error::LayoutError;
pub use exec::{MigBackend, NvmlBackend, SimBackend, execute};
pub use export::{ExportOptions, export_current};
pub use plan::{ApplyOptions, plan, plan_all};
pub use read::{LayoutSelection, load, read_host, read_view};
