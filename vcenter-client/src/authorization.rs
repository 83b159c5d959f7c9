//! `AuthorizationManager`: asking vCenter which privileges the logged-in account holds on
//! which objects (a preflight that names each missing privilege before a command fails half
//! way with `NoPermission`), and the role and permission calls an administrator (or a test)
//! uses to set such an account up.
//!
//! `HasPrivilegeOnEntities` is asked about the caller's own session: vCenter then resolves
//! groups, propagation and the most specific permission exactly as it does when it checks a
//! method call, which a client reading permissions itself could not (group membership lives in
//! the identity source). A user may always ask about its own session.

use serde::Serialize;

use crate::client::Client;
use crate::credentials::UserSession;
use crate::error::{Error, Result};
use crate::moref::MoRef;
use crate::soap::decode::Node;
use crate::soap::encode::Request;

/// Whether one privilege is held on one object (`PrivilegeAvailability` of an
/// `EntityPrivilege`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrivilegeGrant {
    /// The object asked about.
    pub entity: MoRef,
    /// The privilege id, e.g. `Global.SetCustomField`.
    pub privilege: String,
    /// Whether the session's user holds it there.
    pub granted: bool,
}

/// A role id (`AuthorizationRole.roleId`); the system roles are negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RoleId(pub i32);

impl std::fmt::Display for RoleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A role as vCenter lists it (`AuthorizationManager.roleList`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthorizationRole {
    /// Its id, as permissions refer to it.
    pub id: RoleId,
    /// Its name.
    pub name: String,
    /// The privilege ids it grants.
    pub privileges: Vec<String>,
}

impl AuthorizationRole {
    fn from_node(n: &Node) -> Result<Self> {
        Ok(AuthorizationRole {
            id: RoleId(
                n.child_parse("roleId")?
                    .ok_or_else(|| n.bad("an AuthorizationRole with a roleId"))?,
            ),
            name: n.child_string("name").unwrap_or_default(),
            privileges: n
                .children_named("privilege")
                .map(|p| p.text().to_string())
                .collect(),
        })
    }
}

impl Client {
    /// The session this client is logged in with (`None` after [`Client::logout`]).
    pub fn current_session(&self) -> Option<UserSession> {
        self.inner.session.read().ok().and_then(|s| s.clone())
    }

    fn authorization_manager(&self) -> Result<MoRef> {
        self.service_content()
            .authorization_manager
            .clone()
            .ok_or_else(|| Error::NotFound("this server has no AuthorizationManager".into()))
    }

    /// `AuthorizationManager.HasPrivilegeOnEntities` for this client's own session: for each
    /// object in `entities` and each id in `privileges`, whether it is held there. The answer
    /// lists every pair asked about, in the server's order.
    pub async fn has_privileges(
        &self,
        entities: &[MoRef],
        privileges: &[&str],
    ) -> Result<Vec<PrivilegeGrant>> {
        let session = self.current_session().ok_or_else(|| {
            Error::NotFound("no session: log in before asking for privileges".into())
        })?;
        let mut r = Request::new("HasPrivilegeOnEntities", &self.authorization_manager()?);
        for e in entities {
            r.moref("entity", e);
        }
        r.text("sessionId", &session.key.0)?;
        for p in privileges {
            r.text("privId", p)?;
        }
        let resp = self.invoke("HasPrivilegeOnEntities", r.finish()).await?;
        let mut out = Vec::new();
        for ep in resp.children_named("returnval") {
            let entity = ep
                .child("entity")
                .ok_or_else(|| ep.bad("an EntityPrivilege with an entity"))?
                .to_moref()?;
            for pa in ep.children_named("privAvailability") {
                out.push(PrivilegeGrant {
                    entity: entity.clone(),
                    privilege: pa
                        .child_string("privId")
                        .ok_or_else(|| pa.bad("a PrivilegeAvailability with a privId"))?,
                    granted: pa.child_bool("isGranted")?.unwrap_or(false),
                });
            }
        }
        Ok(out)
    }

    /// The roles defined in vCenter (`AuthorizationManager.roleList`).
    pub async fn roles(&self) -> Result<Vec<AuthorizationRole>> {
        let oc = self
            .retrieve_object(&self.authorization_manager()?, &["roleList"])
            .await?;
        match oc.get("roleList") {
            Some(list) => list
                .children()
                .iter()
                .map(AuthorizationRole::from_node)
                .collect(),
            None => Ok(Vec::new()),
        }
    }

    /// `AuthorizationManager.AddAuthorizationRole`: a role `name` granting `privileges`
    /// (vCenter adds `System.Anonymous`, `System.View` and `System.Read` itself). Returns its
    /// id as listed in `roleList` (vcsim 0.24 answers 0 whatever id it gave).
    /// Privilege `Authorization.ModifyRoles`.
    pub async fn add_role(&self, name: &str, privileges: &[&str]) -> Result<RoleId> {
        let mut r = Request::new("AddAuthorizationRole", &self.authorization_manager()?);
        r.text("name", name)?;
        for p in privileges {
            r.text("privIds", p)?;
        }
        self.invoke("AddAuthorizationRole", r.finish()).await?;
        self.roles()
            .await?
            .into_iter()
            .find(|role| role.name == name)
            .map(|role| role.id)
            .ok_or_else(|| {
                Error::NotFound(format!("role {name:?} is not listed after it was added"))
            })
    }

    /// `AuthorizationManager.SetEntityPermissions` with one permission: `principal` (a user,
    /// or a group when `group`) gets `role` on `entity`, and on its descendants when
    /// `propagate`. Privilege `Authorization.ModifyPermissions`.
    pub async fn set_permission(
        &self,
        entity: &MoRef,
        principal: &str,
        group: bool,
        role: RoleId,
        propagate: bool,
    ) -> Result<()> {
        let mut r = Request::new("SetEntityPermissions", &self.authorization_manager()?);
        r.moref("entity", entity);
        r.open("permission");
        r.moref("entity", entity);
        r.text("principal", principal)?;
        r.bool("group", group);
        r.int("roleId", i64::from(role.0));
        r.bool("propagate", propagate);
        r.close("permission");
        self.invoke("SetEntityPermissions", r.finish())
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_lists_its_privileges() {
        let xml = r#"<r><roleId>12</roleId><system>false</system><name>vmig-agent</name><privilege>Global.SetCustomField</privilege><privilege>System.Read</privilege></r>"#;
        let node = crate::soap::decode::parse_whole(
            format!(
                r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><XResponse xmlns="urn:vim25"><returnval>{xml}</returnval></XResponse></soapenv:Body></soapenv:Envelope>"#
            )
            .as_bytes(),
            "X",
        )
        .expect("parses");
        let role = AuthorizationRole::from_node(
            node.child("returnval")
                .and_then(|r| r.child("r"))
                .expect("role node"),
        )
        .expect("decodes");
        assert_eq!(role.id, RoleId(12));
        assert_eq!(role.name, "vmig-agent");
        assert_eq!(
            role.privileges,
            ["Global.SetCustomField", "System.Read"].map(String::from)
        );
    }
}
