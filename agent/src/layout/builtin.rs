//! The named layouts shipped with vmig (`mig/layouts/vmig-layouts.yaml`), compiled into the
//! binary so that `vmig-agent apply -c all-balanced` works on a host with no file deployed:
//! an ESXi host has no package manager to install a config file, and the admin should get the
//! same layouts on every host of the fleet. `-f FILE` replaces the built-in file entirely.
//! The text and its parsing live in `mig::layout_file::builtin` (`vmig` names them too).
pub use mig::layout_file::builtin::{
    DEFAULT_LAYOUTS_ORIGIN, DEFAULT_LAYOUTS_YAML, default_layouts,
};
