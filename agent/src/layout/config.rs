//! The layout file: NVIDIA mig-parted's `version: v1` config format plus vmig's extensions.
//! Parsing and validation live in `mig::layout_file` (pure, so `vmig layout set` refuses
//! exactly what the agent would refuse); this module keeps the agent's paths to them.
pub use mig::layout_file::*;
