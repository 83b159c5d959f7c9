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

pub use cli::{
    ApplyArgs, AssertArgs, ExportArgs, LayoutArgs, LayoutError, PlanArgs, dispatch, run_apply,
    run_assert, run_export, run_plan,
};
pub use config::{ConfigError, LayoutFile, Target};
pub use exec::{MigBackend, NvmlBackend, SimBackend, execute};

/// Apply named layout `config` from `file` (the built-in layouts when `None`) to every GPU it
/// selects, as `vmig-agent apply` does: for the daemon, which enforces a layout at start and
/// after a pending MIG mode change took effect. Returns the text report (also on error) and
/// the outcome. Idempotent: when every GPU already matches, the report says "nothing to do".
pub fn enforce(
    driver: &crate::nvml::Driver,
    file: Option<&std::path::Path>,
    config: &str,
    allow_partial: bool,
) -> (String, Result<(), LayoutError>) {
    let args = ApplyArgs {
        layout: LayoutArgs {
            file: file.map(std::path::Path::to_path_buf),
            config: Some(config.to_string()),
            gpu: None,
        },
        allow_partial,
    };
    let mut out = String::new();
    let r = run_apply(driver, &args, false, &mut out);
    (out, r)
}
