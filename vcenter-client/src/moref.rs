//! Managed object references and the other identifiers vSphere hands out.
//!
//! vim25 names every server object by a `(type, value)` pair such as
//! `HostSystem:host-34`. Keeping those pairs (and keys, UUIDs, profile names) in
//! their own types stops a VM reference from being passed where a host is
//! expected, and keeps string juggling at the XML edge.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A managed object reference (`ManagedObjectReference`): the object's type
/// name and its server-assigned id (`host-34`, `vm-57`, `session[…]…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct MoRef {
    kind: String,
    value: String,
}

impl MoRef {
    /// Builds a reference from its managed object type (e.g. `HostSystem`) and id.
    pub fn new(kind: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            value: value.into(),
        }
    }

    /// The managed object type, e.g. `VirtualMachine`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The server-assigned id, e.g. `vm-57`.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for MoRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// Parses the `Type:value` form printed by [`MoRef`]'s `Display`.
impl FromStr for MoRef {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some((kind, value)) if !kind.is_empty() && !value.is_empty() => {
                Ok(MoRef::new(kind, value))
            }
            _ => Err(crate::Error::InvalidInput {
                what: "managed object reference",
                detail: format!("{s:?} is not of the form Type:value (e.g. HostSystem:host-34)"),
            }),
        }
    }
}

/// Error returned when a [`MoRef`] of one type is converted into a typed
/// reference of another.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("managed object {found} is not a {expected}")]
pub struct WrongKind {
    /// The type the caller asked for.
    pub expected: &'static str,
    /// The reference that was offered.
    pub found: MoRef,
}

macro_rules! typed_ref {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(MoRef);

        impl $name {
            /// The vim25 managed object type this reference names.
            pub const KIND: &'static str = $kind;

            /// Builds a reference from a server id such as `host-34`.
            pub fn new(value: impl Into<String>) -> Self {
                Self(MoRef::new($kind, value))
            }

            /// The server-assigned id.
            pub fn value(&self) -> &str {
                self.0.value()
            }

            /// The untyped reference.
            pub fn as_moref(&self) -> &MoRef {
                &self.0
            }
        }

        impl TryFrom<MoRef> for $name {
            type Error = WrongKind;

            fn try_from(r: MoRef) -> Result<Self, WrongKind> {
                if r.kind() == $kind {
                    Ok(Self(r))
                } else {
                    Err(WrongKind { expected: $kind, found: r })
                }
            }
        }

        impl From<$name> for MoRef {
            fn from(r: $name) -> MoRef {
                r.0
            }
        }

        impl AsRef<MoRef> for $name {
            fn as_ref(&self) -> &MoRef {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

typed_ref!(
    /// A `HostSystem` (an ESXi host).
    HostRef,
    "HostSystem"
);
typed_ref!(
    /// A `VirtualMachine`.
    VmRef,
    "VirtualMachine"
);
typed_ref!(
    /// A `Task` returned by `*_Task` methods.
    TaskRef,
    "Task"
);
typed_ref!(
    /// A `ClusterComputeResource`.
    ClusterRef,
    "ClusterComputeResource"
);
typed_ref!(
    /// A `Folder`.
    FolderRef,
    "Folder"
);
typed_ref!(
    /// A `ResourcePool`.
    ResourcePoolRef,
    "ResourcePool"
);
typed_ref!(
    /// A session-scoped `ContainerView` from `ViewManager.CreateContainerView`.
    ContainerViewRef,
    "ContainerView"
);

/// Key of a custom field definition (`CustomFieldDef.key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CustomFieldKey(pub i32);

impl fmt::Display for CustomFieldKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Key of a virtual device within one VM (`VirtualDevice.key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DeviceKey(pub i32);

impl fmt::Display for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Key of a login session (`UserSession.key`), as `SessionIsActive` and
/// `TerminateSession` take it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SessionKey(pub String);

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A BIOS (SMBIOS) UUID: `hardware.systemInfo.uuid` of a host or `config.uuid`
/// of a VM, in the 8-4-4-4-12 hex form.
///
/// The spelling is kept as given (vCenter compares the string), but
/// equality with [`BiosUuid::matches`] ignores ASCII case because SMBIOS
/// tools print upper case while vCenter usually stores lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct BiosUuid(String);

impl BiosUuid {
    /// The UUID text as it was parsed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Case-insensitive comparison.
    pub fn matches(&self, other: &BiosUuid) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl FromStr for BiosUuid {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let groups: Vec<&str> = s.split('-').collect();
        let lens_ok = groups.len() == 5
            && groups
                .iter()
                .zip([8, 4, 4, 4, 12])
                .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
        if lens_ok {
            Ok(BiosUuid(s.to_string()))
        } else {
            Err(crate::Error::InvalidInput {
                what: "BIOS UUID",
                detail: format!("{s:?} is not of the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"),
            })
        }
    }
}

impl fmt::Display for BiosUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A vGPU profile name as vSphere spells it (`grid_a100-3-20c`, `nvidia_a40-1b`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct VgpuProfile(String);

impl VgpuProfile {
    /// Wraps a profile name; it must be non-empty and free of whitespace.
    pub fn new(name: impl Into<String>) -> Result<Self, crate::Error> {
        let name = name.into();
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(crate::Error::InvalidInput {
                what: "vGPU profile name",
                detail: format!("{name:?} is empty or contains whitespace"),
            });
        }
        Ok(Self(name))
    }

    /// The profile name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for VgpuProfile {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for VgpuProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_refs_check_kind() {
        let h = HostRef::try_from(MoRef::new("HostSystem", "host-1")).unwrap();
        assert_eq!(h.to_string(), "HostSystem:host-1");
        let err = VmRef::try_from(MoRef::new("HostSystem", "host-1")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "managed object HostSystem:host-1 is not a VirtualMachine"
        );
    }

    #[test]
    fn moref_round_trips_display() {
        let r: MoRef = "ContainerView:session[ab]cd".parse().unwrap();
        assert_eq!(r.kind(), "ContainerView");
        assert_eq!(r.value(), "session[ab]cd");
        assert!("nocolon".parse::<MoRef>().is_err());
    }

    #[test]
    fn bios_uuid_validates_shape() {
        let u: BiosUuid = "564D2F12-8041-639b-5018-05a835b72eaf".parse().unwrap();
        let l: BiosUuid = "564d2f12-8041-639b-5018-05a835b72eaf".parse().unwrap();
        assert!(u.matches(&l));
        assert!("564d2f12-8041-639b-5018".parse::<BiosUuid>().is_err());
        assert!(
            "564d2f12-8041-639b-5018-05a835b72eag"
                .parse::<BiosUuid>()
                .is_err()
        );
    }

    #[test]
    fn vgpu_profile_rejects_blank() {
        assert!(VgpuProfile::new("grid_a100-3-20c").is_ok());
        assert!(VgpuProfile::new("").is_err());
        assert!(VgpuProfile::new("a b").is_err());
    }
}
