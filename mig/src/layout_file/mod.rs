//! The layout file (moved here from the agent so that `vmig layout set` validates a layout
//! with exactly the agent's rules before writing it to vCenter; the agent re-exports it as
//! `vmig_agent::layout::config`): NVIDIA mig-parted's `version: v1` config format, read unchanged, plus
//! vmig's extensions (explicit placements `"3g.20gb@4"`, CI splits `{count, compute}`, GPUs
//! named by UUID or PCI bus id). docs/layouts.md is the user-facing description.
//!
//! Reading happens in three passes so that every error carries the line and the key it is
//! about, and nothing is sent to a GPU before all of them passed:
//! 1. a structural walk of the YAML that refuses duplicate keys *at the key* (serde's derived
//!    maps would silently keep the last value, and the YAML library would only point at the
//!    enclosing map);
//! 2. typed deserialisation with unknown fields refused (mig-parted refuses them too);
//! 3. per-GPU-model resolution ([`LayoutFile::target_for`]): profile names, placements, CI
//!    splits and the whole layout are checked against the catalog model and the planner from
//!    an empty GPU, so "more instances than fit" is proven before anything changes.
//!
//! YAML keeps no positions after parsing, so the line of a key found wrong in pass 3 is
//! recovered by parsing once more with a walker that fails exactly at that key: the YAML
//! library stamps its own error with the position, which is then read back (`locate`).
//!
//! One file per idea: `model` what a file says (configs, entries, device specs, targets);
//! `error` where a problem is and the error; `raw` and `read` passes 1–2 (the typed
//! shape and its checks); `keys` the `mig-devices` key grammar; `locate` the structural
//! walks (duplicates, positions); `resolve` pass 3 against a GPU model.
pub mod builtin;
mod error;
mod keys;
mod locate;
mod model;
mod raw;
mod read;
mod resolve;

pub use builtin::{DEFAULT_LAYOUTS_ORIGIN, DEFAULT_LAYOUTS_YAML, default_layouts};
pub use error::{ConfigError, KeyPath, PathSeg};
pub use locate::locate;
pub use model::{
    DeviceFilter, DeviceSpec, Devices, Entry, EntryRef, LayoutFile, NamedConfig, SpecKind, Target,
    VERSION,
};
pub use resolve::plan_error_text;

#[cfg(test)]
mod tests;
