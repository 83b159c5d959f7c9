//! vim25 faults as typed values.
//!
//! A fault reaches us three ways: a `soapenv:Fault` body (HTTP 500), a
//! `missingSet` entry of the property collector, and `TaskInfo.error`. The
//! latter two are `LocalizedMethodFault`s. All three decode to [`Fault`]; the
//! concrete type comes from `xsi:type` (the element name is only the declared
//! base type on some servers), falling back to the `<Type>Fault` element name.

use std::fmt;

use serde::Serialize;

use super::node::Node;
use crate::moref::MoRef;

/// A decoded vim25 fault: its kind with the fields callers act on, the
/// concrete type name and the server's message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fault {
    /// The fault kind with its typed fields.
    pub kind: FaultKind,
    /// The concrete vim25 type name, e.g. `InvalidLogin` or `TaskInProgress`.
    pub type_name: String,
    /// `faultstring` or `localizedMessage`; may be empty (vcsim often sends none).
    pub message: String,
}

/// The faults vmig handles specifically; everything else is [`FaultKind::Other`]
/// (see [`Fault::type_name`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum FaultKind {
    /// The session is missing or expired; the client re-logs in once on this.
    NotAuthenticated {
        /// The object the call was about.
        object: Option<MoRef>,
        /// The privilege that was checked.
        privilege: Option<String>,
    },
    /// Wrong user name or password.
    InvalidLogin,
    /// A parameter was rejected.
    InvalidArgument {
        /// The offending parameter or property path.
        invalid_property: Option<String>,
    },
    /// The object does not exist (or was deleted).
    ManagedObjectNotFound {
        /// The reference that was not found.
        obj: Option<MoRef>,
    },
    /// The VM's power state forbids the operation.
    InvalidPowerState {
        /// The state the operation needs.
        requested_state: Option<String>,
        /// The VM's current state.
        existing_state: Option<String>,
    },
    /// The object's state forbids the operation.
    InvalidState,
    /// A name is already taken (e.g. a custom field definition).
    DuplicateName {
        /// The name that clashed.
        name: Option<String>,
        /// The object that already has it.
        object: Option<MoRef>,
    },
    /// The session's user lacks a privilege.
    NoPermission {
        /// The object the privilege was checked on.
        object: Option<MoRef>,
        /// The missing privilege, e.g. `Global.SetCustomField`.
        privilege: Option<String>,
    },
    /// A property path does not exist on the type.
    InvalidProperty {
        /// The property path.
        name: Option<String>,
    },
    /// The server does not implement the method (vcsim 0.24 lacks several).
    MethodNotFound {
        /// The object the method was called on.
        receiver: Option<MoRef>,
        /// The method name.
        method: Option<String>,
    },
    /// Any other fault; see [`Fault::type_name`].
    Other,
}

impl Fault {
    /// Decodes a `soapenv:Fault` element (`faultcode`, `faultstring`, `detail`).
    pub fn from_soap_fault(node: &Node) -> Fault {
        let message = node
            .child_text("faultstring")
            .unwrap_or_default()
            .to_string();
        let detail = node.child("detail").and_then(|d| d.children().first());
        match detail {
            Some(d) => Self::from_detail(d, message),
            None => Fault {
                kind: FaultKind::Other,
                // A fault without detail still has a faultcode worth showing.
                type_name: node
                    .child_text("faultcode")
                    .unwrap_or("UnknownFault")
                    .to_string(),
                message,
            },
        }
    }

    /// Decodes a `LocalizedMethodFault` (`<fault xsi:type=…>` plus
    /// `localizedMessage`), as found in `missingSet` and `TaskInfo.error`.
    pub fn from_localized(node: &Node) -> Fault {
        let message = node
            .child_text("localizedMessage")
            .unwrap_or_default()
            .to_string();
        match node.child("fault") {
            Some(f) => Self::from_detail(f, message),
            None => Fault {
                kind: FaultKind::Other,
                type_name: node
                    .xsi_type()
                    .unwrap_or("LocalizedMethodFault")
                    .to_string(),
                message,
            },
        }
    }

    /// Decodes the fault object itself (the `detail` child or `fault` element).
    pub fn from_detail(d: &Node, message: String) -> Fault {
        let type_name = d.xsi_type().map(str::to_string).unwrap_or_else(|| {
            d.name()
                .strip_suffix("Fault")
                .unwrap_or(d.name())
                .to_string()
        });
        let moref = |name: &str| d.child(name).and_then(|n| n.to_moref().ok());
        let text = |name: &str| d.child_string(name);
        let kind = match type_name.as_str() {
            "NotAuthenticated" => FaultKind::NotAuthenticated {
                object: moref("object"),
                privilege: text("privilegeId"),
            },
            "InvalidLogin" => FaultKind::InvalidLogin,
            "InvalidArgument" => FaultKind::InvalidArgument {
                invalid_property: text("invalidProperty"),
            },
            "ManagedObjectNotFound" => FaultKind::ManagedObjectNotFound { obj: moref("obj") },
            "InvalidPowerState" => FaultKind::InvalidPowerState {
                requested_state: text("requestedState"),
                existing_state: text("existingState"),
            },
            "InvalidState" => FaultKind::InvalidState,
            "DuplicateName" => FaultKind::DuplicateName {
                name: text("name"),
                object: moref("object"),
            },
            "NoPermission" => FaultKind::NoPermission {
                object: moref("object"),
                privilege: text("privilegeId").or_else(|| {
                    // Newer servers list privileges under missingPrivileges.
                    d.child("missingPrivileges")
                        .and_then(|m| m.child("privileges"))
                        .and_then(|p| p.child_string("privilegeIds"))
                }),
            },
            "InvalidProperty" => FaultKind::InvalidProperty { name: text("name") },
            "MethodNotFound" => FaultKind::MethodNotFound {
                receiver: moref("receiver"),
                method: text("method"),
            },
            _ => FaultKind::Other,
        };
        let message = if message.is_empty() {
            d.child("faultMessage")
                .and_then(|m| m.child_string("message"))
                .unwrap_or_default()
        } else {
            message
        };
        Fault {
            kind,
            type_name,
            message,
        }
    }

    /// True for `NotAuthenticated`, the signal to log in again.
    pub fn is_not_authenticated(&self) -> bool {
        matches!(self.kind, FaultKind::NotAuthenticated { .. })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.type_name)?;
        match &self.kind {
            FaultKind::NotAuthenticated { object, privilege }
            | FaultKind::NoPermission { object, privilege } => {
                if let Some(p) = privilege {
                    write!(f, " (privilege {p}")?;
                    if let Some(o) = object {
                        write!(f, " on {o}")?;
                    }
                    f.write_str(")")?;
                }
            }
            FaultKind::InvalidArgument {
                invalid_property: Some(p),
            } => write!(f, " (invalid property {p})")?,
            FaultKind::ManagedObjectNotFound { obj: Some(o) } => write!(f, " ({o})")?,
            FaultKind::InvalidPowerState {
                requested_state,
                existing_state,
            } => {
                if let (Some(r), Some(e)) = (requested_state, existing_state) {
                    write!(f, " (needs {r}, VM is {e})")?;
                }
            }
            FaultKind::DuplicateName { name: Some(n), .. } => write!(f, " (name {n:?})")?,
            FaultKind::InvalidProperty { name: Some(n) } => write!(f, " (property {n})")?,
            FaultKind::MethodNotFound {
                method: Some(m), ..
            } => write!(f, " (method {m})")?,
            _ => {}
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::soap::decode::parse_whole;

    fn fault_of(body: &str) -> Fault {
        let doc = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
        );
        match parse_whole(doc.as_bytes(), "M") {
            Err(Error::Fault { fault, .. }) => *fault,
            other => panic!("expected a fault, got {other:?}"),
        }
    }

    #[test]
    fn invalid_login_from_real_vcenter_sample() {
        let f = fault_of(
            r#"<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Cannot complete login due to an incorrect user name or password.</faultstring><detail><InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin"></InvalidLoginFault></detail></soapenv:Fault>"#,
        );
        assert_eq!(f.kind, FaultKind::InvalidLogin);
        assert_eq!(
            f.to_string(),
            "InvalidLogin: Cannot complete login due to an incorrect user name or password."
        );
    }

    #[test]
    fn not_authenticated_carries_object_and_privilege() {
        let f = fault_of(
            r#"<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring></faultstring><detail><NotAuthenticatedFault xmlns="urn:vim25" xsi:type="NotAuthenticated"><object type="ViewManager">ViewManager</object><privilegeId>System.View</privilegeId></NotAuthenticatedFault></detail></soapenv:Fault>"#,
        );
        assert!(f.is_not_authenticated());
        assert_eq!(
            f.kind,
            FaultKind::NotAuthenticated {
                object: Some(MoRef::new("ViewManager", "ViewManager")),
                privilege: Some("System.View".into())
            }
        );
        assert_eq!(
            f.to_string(),
            "NotAuthenticated (privilege System.View on ViewManager:ViewManager)"
        );
    }

    #[test]
    fn invalid_argument_and_managed_object_not_found() {
        let f = fault_of(
            r#"<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring></faultstring><detail><InvalidArgumentFault xmlns="urn:vim25" xsi:type="InvalidArgument"><invalidProperty>type</invalidProperty></InvalidArgumentFault></detail></soapenv:Fault>"#,
        );
        assert_eq!(
            f.kind,
            FaultKind::InvalidArgument {
                invalid_property: Some("type".into())
            }
        );
        let f = fault_of(
            r#"<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>The object has already been deleted or has not been completely created</faultstring><detail><ManagedObjectNotFoundFault xmlns="urn:vim25" xsi:type="ManagedObjectNotFound"><obj type="VirtualMachine">vm-99999</obj></ManagedObjectNotFoundFault></detail></soapenv:Fault>"#,
        );
        assert_eq!(
            f.kind,
            FaultKind::ManagedObjectNotFound {
                obj: Some(MoRef::new("VirtualMachine", "vm-99999"))
            }
        );
    }

    #[test]
    fn vcsim_prefix_and_element_name_fallback() {
        // vcsim writes the xsi namespace under another prefix.
        let f = fault_of(
            r#"<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring></faultstring><detail><DuplicateNameFault xmlns="urn:vim25" xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="DuplicateName"><name>vmig.mig</name><object type="CustomFieldsManager">CustomFieldsManager</object></DuplicateNameFault></detail></soapenv:Fault>"#,
        );
        assert!(
            matches!(f.kind, FaultKind::DuplicateName { name: Some(ref n), .. } if n == "vmig.mig")
        );
        // No xsi:type at all: the element name minus "Fault" names the type.
        let f = fault_of(
            r#"<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>x</faultstring><detail><InvalidPowerStateFault xmlns="urn:vim25"><requestedState>poweredOff</requestedState><existingState>poweredOn</existingState></InvalidPowerStateFault></detail></soapenv:Fault>"#,
        );
        assert_eq!(f.type_name, "InvalidPowerState");
        assert_eq!(
            f.to_string(),
            "InvalidPowerState (needs poweredOff, VM is poweredOn): x"
        );
    }

    #[test]
    fn unknown_faults_keep_type_and_message() {
        let f = fault_of(
            r#"<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>busy</faultstring><detail><TaskInProgressFault xmlns="urn:vim25" xsi:type="TaskInProgress"><task type="Task">task-1</task></TaskInProgressFault></detail></soapenv:Fault>"#,
        );
        assert_eq!(f.kind, FaultKind::Other);
        assert_eq!(f.to_string(), "TaskInProgress: busy");
        let f = fault_of(
            r#"<soapenv:Fault><faultcode>ClientFaultCode</faultcode><faultstring>bad xml</faultstring></soapenv:Fault>"#,
        );
        assert_eq!(f.type_name, "ClientFaultCode");
    }

    #[test]
    fn no_permission_names_the_privilege() {
        let f = fault_of(
            r#"<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Permission to perform this operation was denied.</faultstring><detail><NoPermissionFault xmlns="urn:vim25" xsi:type="NoPermission"><object type="HostSystem">host-34</object><privilegeId>Global.SetCustomField</privilegeId></NoPermissionFault></detail></soapenv:Fault>"#,
        );
        assert_eq!(
            f.to_string(),
            "NoPermission (privilege Global.SetCustomField on HostSystem:host-34): Permission to perform this operation was denied."
        );
    }
}
