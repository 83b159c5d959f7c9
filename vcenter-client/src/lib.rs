//! A vim25 (vSphere Web Services SOAP) client for vCenter, written for vmig.
//!
//! It covers what vmig needs and no more: sessions with transparent
//! re-login, the property collector (streamed, paged), container views,
//! `SearchIndex` host lookups, custom attributes, vGPU reconfiguration,
//! relocation and task polling, with typed reads of hosts and VMs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), vcenter_client::Error> {
//! use vcenter_client::{Client, ConnectOptions, Credentials, HostProperty, TlsPolicy};
//! let tp = "AB:".repeat(31) + "CD";
//! let client = Client::connect(ConnectOptions::new(
//!     "https://vcenter.example.com",
//!     Credentials::new("svc-vmig@vsphere.local", "secret"),
//!     TlsPolicy::Thumbprint(tp.parse()?),
//! ))
//! .await?;
//! for h in client.hosts(&[HostProperty::Name, HostProperty::Gpu]).await? {
//!     println!("{:?}: {:?}", h.name, h.shared_passthru_gpu_types);
//! }
//! # Ok(()) }
//! ```
//!
//! Layering: [`soap`] is pure XML in and out (fuzzed); `transport` moves bytes
//! (reqwest + rustls/ring, no OpenSSL); [`Client`] adds sessions; the other
//! modules are one vSphere concept each. See `docs/vcenter-client.md`.

mod authorization;
mod client;
mod credentials;
mod custom_fields;
mod error;
mod events;
mod host;
mod maintenance;
mod moref;
mod options;
mod password_file;
mod property;
mod search;
mod session;
pub mod soap;
mod task;
mod tls;
mod transport;
mod updates;
mod version;
mod vm;

pub use authorization::{AuthorizationRole, PrivilegeGrant, RoleId};
pub use client::{AboutInfo, Client, ConnectOptions, ServiceContent};
pub use credentials::{Credentials, Password, UserSession};
pub use custom_fields::{CustomFieldDef, CustomValues};
pub use error::{Error, Result};
pub use events::{EventSeverity, HostEvent, MAX_EVENTS_READ, PostedEvent};
pub use host::{
    Cluster, GraphicsConfig, GraphicsDeviceType, GraphicsInfo, HardwareSummary, HostProperty,
    HostSystem, NVIDIA_VENDOR_ID, PciDevice, SharedGpuCapabilities,
};
pub use moref::{
    BiosUuid, ClusterRef, ContainerViewRef, CustomFieldKey, DeviceKey, FolderRef, HostRef, MoRef,
    ResourcePoolRef, SessionKey, TaskRef, VgpuProfile, VmRef, WrongKind,
};
pub use password_file::{PasswordFileError, check_private, read_password_file};
pub use property::{
    DynamicProperty, FilterSpec, MissingProperty, ObjectContent, ObjectSpec, PropertySpec,
    RetrieveOptions, RetrieveStats, TraversalSpec,
};
pub use soap::decode::Node;
pub use soap::fault::{Fault, FaultKind};
pub use task::{TaskInfo, TaskState, TaskWait};
pub use tls::{Sha256Thumbprint, TlsPolicy};
pub use updates::{
    ObjectUpdate, PropertyChange, StreamedUpdates, UpdateCollector, UpdateKind, UpdateSet,
    is_invalid_collector_version,
};
pub use version::ApiVersion;
pub use vm::{PowerState, RelocateSpec, VgpuDevice, VirtualMachine, VmConfigSpec, VmProperty};

/// Entry points for the fuzz targets and the stable seed-corpus test: they
/// run the same decoders the client runs on untrusted server bytes and must
/// never panic, whatever the input.
#[doc(hidden)]
pub mod fuzzing {
    use std::ops::ControlFlow;

    use crate::soap::decode::{self, Mode, Node};
    use crate::{HostSystem, ObjectContent, TaskInfo, TaskRef, VirtualMachine};

    /// Decodes `data` as a streamed property-collector response, converting
    /// every object into the typed host and VM views, then as a whole response.
    pub fn response(data: &[u8]) {
        let _ = decode::parse_sync(data, Mode::Stream, &mut |n: Node| {
            if let Ok(oc) = ObjectContent::from_node(n) {
                let _ = HostSystem::from_content(ObjectContent {
                    obj: crate::MoRef::new("HostSystem", "h"),
                    ..oc.clone()
                });
                let _ = VirtualMachine::from_content(ObjectContent {
                    obj: crate::MoRef::new("VirtualMachine", "v"),
                    ..oc.clone()
                });
                for p in &oc.props {
                    let _ = TaskInfo::from_node(&TaskRef::new("t"), &p.val);
                }
            }
            Ok(ControlFlow::Continue(()))
        });
        if let Ok(resp) = decode::parse_whole(data, "Fuzz")
            && let Some(rv) = resp.child("returnval")
        {
            let _ = crate::client::ServiceContent::from_node(rv);
            let _ = crate::credentials::UserSession::from_node(rv);
        }
    }

    /// Decodes `data` as a response that may be a SOAP fault and renders it.
    pub fn fault(data: &[u8]) {
        if let Err(e) = decode::parse_whole(data, "Fuzz") {
            let _ = e.to_string();
            if let Some(f) = e.fault() {
                let _ = (f.to_string(), f.is_not_authenticated());
            }
        }
    }
}
