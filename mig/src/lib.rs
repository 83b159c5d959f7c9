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
#![forbid(unsafe_code)]

pub mod catalog;
pub mod ids;
pub mod planner;
pub mod state;
pub mod vgpu;

pub use catalog::{CiProfile, GiProfile, GpuModel, catalog};
pub use ids::{CiProfileId, ComputeInstanceId, GiProfileId, GpuInstanceId, Placement};
pub use planner::{DesiredGi, DesiredLayout, Plan, PlanError, Step, plan};
pub use state::{ComputeInstance, GpuInstance, MigError, MigState};
pub use vgpu::VgpuType;
