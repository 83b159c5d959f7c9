//! MIG-backed vGPU type names as vSphere uses them (`grid_a100-3-20c`, `nvidia_h100xm-1-10c`)
//! and their mapping to GI profiles of a GPU model.
use crate::catalog::{GiProfile, GpuModel};

/// A parsed vGPU type name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VgpuType {
    /// `grid` or `nvidia`.
    pub prefix: String,
    /// Board, e.g. `a100`, `a100d`, `h100xm`.
    pub board: String,
    /// For MIG-backed types: compute slices; `None` for time-sliced types.
    pub mig_slices: Option<u32>,
    /// Framebuffer in GB as in the name.
    pub fb_gb: u32,
    /// Series/suffix letters, e.g. `c`, `cme`.
    pub suffix: String,
}

impl VgpuType {
    /// Parse a name such as `grid_a100-3-20c` or `nvidia_h100xm-1-10cme`.
    pub fn parse(name: &str) -> Option<VgpuType> {
        let _ = name;
        todo!()
    }
    /// Whether this is a MIG-backed type (`<board>-<slices>-<fb><suffix>`).
    pub fn is_mig_backed(&self) -> bool {
        self.mig_slices.is_some()
    }
    /// The GI profile of `model` that backs this type, if any.
    pub fn gi_profile<'m>(&self, model: &'m GpuModel) -> Option<&'m GiProfile> {
        let _ = model;
        todo!()
    }
}

/// The MIG-backed vGPU type names (with `grid_` prefix) backed by `profile` on `model`.
pub fn vgpu_types_for(model: &GpuModel, profile: &GiProfile) -> Vec<String> {
    let _ = (model, profile);
    todo!()
}
