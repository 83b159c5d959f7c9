//! Builds, reads and validates the packages that install `vmig-agent` on ESXi: the VIB,
//! the offline bundle (depot zip) and the vSphere 7+ component inside it.
//!
//! VMware's own packaging library (`esximage`) only ships with ESXi and PowerCLI, so the
//! formats are implemented here from their observed layout, matched byte for byte against
//! VIBs and bundles built by VMware's tools (`shared/fixtures/vib/`):
//! - [`ar`]: the VIB container; [`descriptor`]: `descriptor.xml`;
//! - [`tarball`] + [`gz`]: `vgz` (gzipped vmtar) and `tgz` (gzipped ustar) payloads;
//! - [`zip`] + [`bundle`]: the depot zip and its `metadata.zip`;
//! - [`build`]: spec + files → VIB + bundle, reproducibly; [`inspect`]: the validator;
//! - [`elf`]: checks the agent binary can run in an ESXi user world.
//!
//! Every reader takes untrusted bytes without panicking (see `fuzz/` and the proptests).
//! The library never reads the clock: dates come from the caller's `SOURCE_DATE_EPOCH`.

pub mod ar;
pub mod build;
pub mod bundle;
pub mod descriptor;
pub mod elf;
pub mod gz;
pub mod inspect;
pub mod spec;
pub mod tarball;
pub mod time;
pub mod version;
pub mod xml;
pub mod zip;

pub use build::{BuildInputs, Built, build, load_inputs};
pub use inspect::{Defect, InspectError, Report, inspect, inspect_bundle, inspect_vib};
pub use spec::Spec;
