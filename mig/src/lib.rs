//! The MIG domain model: what a MIG-capable GPU can be split into, what it is split into now,
//! and how to get from one layout to another. Pure data and logic — this crate never does I/O
//! and never contains `unsafe`; NVML, files and vCenter live in other crates.
//!
//! API CONTRACT (skeleton written first so dependent crates can be built in parallel; the
//! implementer fills in bodies and may ADD items, but must keep these names and signatures):
//! - ids: `GiProfileId`, `CiProfileId`, `GpuInstanceId`, `ComputeInstanceId`, `Placement`
//! - catalog: `GpuModel`, `GiProfile`, `CiProfile`, `catalog()`, `GpuModel::by_key/by_nvml_name/by_pci_device_id`
//! - state: `MigState`, `GpuInstance`, `ComputeInstance`, `MigError`
//! - planner: `DesiredLayout`, `DesiredGi`, `Plan`, `Step`, `plan()`, `PlanError`
//! - vgpu: `VgpuType`, vGPU type name mapping
//!
//! Additions beyond the contract: `MigMode`, `EngineCounts` (a profile's SM/CE/media engines), `InvalidStateError`
//! with `MigState::validate`, `ParsePlacementError` (`Placement: FromStr + Display`), the NVML
//! constants `catalog::gi_index` / `catalog::ci_index`, and query helpers on `MigState`
//! (`gpu_instance`, `gi_at`, `gi_profile_of`, `set_gi_in_use`, `set_ci_in_use`,
//! `free_ci_placements`, ...). Facts, sources and the driver behaviour modelled: docs/mig-model.md.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod defrag;
pub mod desired_layout;
pub mod engines;
pub mod fuzzing;
pub mod geometry;
pub mod gpu_selector;
pub mod ids;
pub mod layout_file;
pub mod planner;
pub mod report;
pub mod simulate;
pub mod state;
pub mod vgpu;
pub mod vgpu_slots;

pub use catalog::{CiProfile, GiProfile, GpuModel, catalog};
pub use engines::EngineCounts;
pub use ids::{
    CiProfileId, ComputeInstanceId, GiProfileId, GpuInstanceId, ParsePlacementError, Placement,
};
pub use planner::{
    ApplyError, DesiredGi, DesiredLayout, Plan, PlanError, PlanOptions, PlanOutcome, Step,
    apply_plan, best_fit_placement, plan, plan_with_options,
};
pub use state::{ComputeInstance, GpuInstance, InvalidStateError, MigError, MigMode, MigState};
pub use vgpu::VgpuType;
