//! nvml-sim: a simulated `libnvidia-ml.so` so vmig runs and is tested without a GPU.
//!
//! Built as a `cdylib`, this crate exports NVML's C ABI (`nvmlInit_v2`, the MIG calls, ...)
//! for clients such as `nvml-wrapper` loading it with `Nvml::builder().lib_path(..)`. Behind
//! the ABI is a simulated machine kept in a JSON state file named by `NVML_SIM_STATE`, shared
//! by every process that loads the library and by the `nvml-sim` control binary, as a real
//! driver's state is shared. MIG geometry and rules come from the pure `mig` crate.
//!
//! Map: [`code`] return codes and texts, [`driver`] what driver versions and ESXi change, [`handle`] opaque handle encoding, [`load`] simulated utilization and ECC counts, [`state`] the
//! machine and the driver rules, [`store`] the locked state file, [`vgpu_types`] the vGPU types offered per model, `ffi` the exported C functions
//! (the only `unsafe` code). Documentation: docs/nvml-sim.md.

pub mod code;
pub mod driver;
#[allow(
    unsafe_code,
    reason = "the exported NVML C ABI: raw pointers from C callers, `no_mangle` symbols"
)]
mod ffi;
pub mod handle;
pub mod load;
pub mod state;
pub mod store;
pub mod vgpu_types;

pub use code::{NvmlCode, NvmlResult};
pub use driver::Platform;
pub use ffi::{CALL_COUNT_ENV, types};
pub use state::{MigActivation, SimError, SimState};
pub use store::{STATE_ENV, Store, StoreError};
