//! `vmig setup`: the one-time administrator command that creates every custom attribute
//! definition vmig and its agents use, so neither the agents' service account nor the report
//! account ever needs `Global.ManageCustomFields`; and `vmig setup --check-role`, a privilege
//! preflight that asks vCenter whether the logged-in account holds what a `vmig` role needs
//! and names each privilege it lacks.
//!
//! The definitions are the durable ones: `vmig.mig` and `vmig.mig.summary` on HostSystem (the
//! agents write them) and `vmig.reservation` on VirtualMachine (`vmig assign` writes it). The
//! `vmig.lock.*` definitions cannot be created ahead: creating one *is* taking the lock
//! (lock.rs), so an account that assigns keeps `Global.ManageCustomFields`.
//!
//! Privileges are asked with `AuthorizationManager.HasPrivilegeOnEntities` for the session
//! itself, on the vCenter root folder: the documented grant is a role on the root with
//! *propagate*, and vCenter then answers exactly as it will when it checks each call.

use std::io::Write;

use clap::{Args, ValueEnum};
use serde::Serialize;
use vcenter_client::{CustomFieldDef, FaultKind};

use crate::output::{stdout_error, write_json};
use crate::{AdminError, Connection, ExitCode};

/// Every durable custom attribute definition: name and the managed object type it is for.
pub const FIELD_DEFINITIONS: [(&str, &str); 3] = [
    (mig::report::FIELD_DOCUMENT, "HostSystem"),
    (mig::report::FIELD_SUMMARY, "HostSystem"),
    (mig::report::FIELD_RESERVATION, "VirtualMachine"),
];

/// The privileges vCenter adds to every role itself (`AddAuthorizationRole`); enough for
/// `vmig report`, `capacity`, `plan`, `simulate` and `serve` once `vmig setup` has run.
pub const READ_PRIVILEGES: [&str; 3] = ["System.Anonymous", "System.View", "System.Read"];

/// What `vmig assign`, `unassign` and `repair` need beyond [`READ_PRIVILEGES`], each with the
/// vSphere Client's name for it and why vmig needs it (docs/admin-guide.md, "Least privilege").
pub const ASSIGN_PRIVILEGES: [(&str, &str, &str); 6] = [
    (
        "VirtualMachine.Config.AddRemoveDevice",
        "Virtual machine → Change Configuration → Add or remove device",
        "ReconfigVM_Task adding or removing the vGPU",
    ),
    (
        "VirtualMachine.Config.Resource",
        "Virtual machine → Change Configuration → Change resource",
        "the memory reservation a vGPU requires",
    ),
    (
        "Resource.ColdMigrate",
        "Resource → Migrate powered off virtual machine",
        "RelocateVM_Task to the host where the GI fits",
    ),
    (
        "Resource.AssignVMToPool",
        "Resource → Assign virtual machine to resource pool",
        "RelocateVM_Task into another cluster's resource pool",
    ),
    (
        "Global.SetCustomField",
        "Global → Set custom attribute",
        "SetField of the VM's vmig.reservation",
    ),
    (
        "Global.ManageCustomFields",
        "Global → Manage custom attributes",
        "AddCustomFieldDef / RemoveCustomFieldDef of the vmig.lock.* fields (the locks)",
    ),
];

/// The role `--check-role` checks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleKind {
    /// Reading: report, capacity, plan, simulate, serve.
    Report,
    /// Changing VMs: assign, unassign, repair (includes report).
    Assign,
}

impl RoleKind {
    /// The privilege ids the role needs, on the root folder.
    pub fn privileges(self) -> Vec<&'static str> {
        let mut out = READ_PRIVILEGES.to_vec();
        if self == RoleKind::Assign {
            out.extend(ASSIGN_PRIVILEGES.iter().map(|(id, _, _)| *id));
        }
        out
    }
}

/// `vmig setup`.
#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Only say what would be created; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Instead of creating anything, check that the logged-in account holds every privilege
    /// this role needs (on the vCenter root folder) and name each missing one.
    #[arg(long, value_enum, value_name = "ROLE")]
    pub check_role: Option<RoleKind>,
}

/// What happened to one definition on one vCenter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum FieldState {
    /// It was there already (for this type, or global).
    AlreadyPresent { key: i32 },
    /// `vmig setup` created it.
    Created { key: i32 },
    /// `--dry-run`: it would be created.
    WouldCreate,
    /// A definition of that name exists for another type: vmig cannot use it.
    WrongType { defined_for: String },
}

/// One line of `vmig setup`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct FieldResult {
    pub vcenter: String,
    pub name: &'static str,
    pub managed_object_type: &'static str,
    #[serde(flatten)]
    pub state: FieldState,
}

/// One line of `vmig setup --check-role`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct PrivilegeResult {
    pub vcenter: String,
    pub privilege: String,
    /// The object it was checked on (`Folder:group-d1`).
    pub entity: String,
    pub granted: bool,
}

/// `vmig setup`: creates (or with `--dry-run` lists) the definitions, or checks a role.
pub async fn run(
    conns: &[Connection],
    args: &SetupArgs,
    json: bool,
    out: &mut dyn Write,
) -> Result<ExitCode, AdminError> {
    if let Some(role) = args.check_role {
        return check_role(conns, role, json, out).await;
    }
    let mut results = Vec::new();
    for c in conns {
        results.extend(ensure_fields(c, args.dry_run).await?);
    }
    let failed = results
        .iter()
        .any(|r| matches!(r.state, FieldState::WrongType { .. }));
    if json {
        write_json(out, &results)?;
    } else {
        write_field_lines(&results, args.dry_run, out).map_err(stdout_error)?;
    }
    Ok(if failed {
        ExitCode::Failure
    } else {
        ExitCode::Ok
    })
}

/// Creates the missing definitions on one vCenter (none with `dry_run`).
pub async fn ensure_fields(c: &Connection, dry_run: bool) -> Result<Vec<FieldResult>, AdminError> {
    let vc = |source| AdminError::Vcenter {
        vcenter: c.target.host.clone(),
        source,
    };
    let defs = c.client.custom_field_defs().await.map_err(vc)?;
    let mut results = Vec::new();
    for (name, mo_type) in FIELD_DEFINITIONS {
        let state = match find(&defs, name, mo_type) {
            Found::Usable(d) => FieldState::AlreadyPresent { key: d.key.0 },
            Found::Other(t) => FieldState::WrongType { defined_for: t },
            Found::None if dry_run => FieldState::WouldCreate,
            Found::None => match c.client.add_custom_field_def(name, Some(mo_type)).await {
                Ok(d) => FieldState::Created { key: d.key.0 },
                // Another admin (or an agent) created it since we looked.
                Err(e) if matches!(e.fault_kind(), Some(FaultKind::DuplicateName { .. })) => {
                    let again = c.client.custom_field_defs().await.map_err(vc)?;
                    match find(&again, name, mo_type) {
                        Found::Usable(d) => FieldState::AlreadyPresent { key: d.key.0 },
                        Found::Other(t) => FieldState::WrongType { defined_for: t },
                        Found::None => return Err(vc(e)),
                    }
                }
                Err(e) if matches!(e.fault_kind(), Some(FaultKind::NoPermission { .. })) => {
                    return Err(AdminError::Usage(format!(
                        "vCenter {}: {} may not create custom attributes ({e}); run `vmig setup` as \
                         a vCenter administrator (privilege Global.ManageCustomFields)",
                        c.target.host,
                        c.target.credentials.user()
                    )));
                }
                Err(e) => return Err(vc(e)),
            },
        };
        results.push(FieldResult {
            vcenter: c.target.host.clone(),
            name,
            managed_object_type: mo_type,
            state,
        });
    }
    Ok(results)
}

enum Found<'a> {
    Usable(&'a CustomFieldDef),
    Other(String),
    None,
}

/// The definition vmig would use for `name` on `mo_type`: one for that type, or a global one
/// (which applies to every type), the way the agent and `vmig assign` look it up.
fn find<'a>(defs: &'a [CustomFieldDef], name: &str, mo_type: &str) -> Found<'a> {
    let named = || defs.iter().filter(|d| d.name == name);
    if let Some(d) = named().find(|d| {
        d.managed_object_type.is_none() || d.managed_object_type.as_deref() == Some(mo_type)
    }) {
        return Found::Usable(d);
    }
    match named().find_map(|d| d.managed_object_type.clone()) {
        Some(t) => Found::Other(t),
        None => Found::None,
    }
}

fn write_field_lines(
    results: &[FieldResult],
    dry_run: bool,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    for r in results {
        let what = format!("{}: {} ({})", r.vcenter, r.name, r.managed_object_type);
        match &r.state {
            FieldState::AlreadyPresent { key } => {
                writeln!(out, "{what}: already present (key {key})")?
            }
            FieldState::Created { key } => writeln!(out, "{what}: created (key {key})")?,
            FieldState::WouldCreate => writeln!(out, "{what}: missing, would be created")?,
            FieldState::WrongType { defined_for } => writeln!(
                out,
                "{what}: FAILED: a definition of that name exists for {defined_for}, which vmig cannot use; \
                 remove it (vSphere Client → Administration → Custom Attributes) and run `vmig setup` again"
            )?,
        }
    }
    let count = |f: fn(&FieldState) -> bool| results.iter().filter(|r| f(&r.state)).count();
    let created = count(|s| matches!(s, FieldState::Created { .. }));
    let present = count(|s| matches!(s, FieldState::AlreadyPresent { .. }));
    let missing = count(|s| matches!(s, FieldState::WouldCreate));
    if dry_run {
        writeln!(
            out,
            "dry run: {missing} to create, {present} already present; nothing was changed"
        )
    } else {
        writeln!(
            out,
            "{created} created, {present} already present; agents now need only Global.SetCustomField on their hosts"
        )
    }
}

/// `--check-role`: every privilege of `role` on each vCenter's root folder, for this session.
async fn check_role(
    conns: &[Connection],
    role: RoleKind,
    json: bool,
    out: &mut dyn Write,
) -> Result<ExitCode, AdminError> {
    let privileges = role.privileges();
    let mut results = Vec::new();
    for c in conns {
        let root = c.client.service_content().root_folder.as_moref().clone();
        let grants = c
            .client
            .has_privileges(std::slice::from_ref(&root), &privileges)
            .await
            .map_err(|source| AdminError::Vcenter {
                vcenter: c.target.host.clone(),
                source,
            })?;
        for p in &privileges {
            // A privilege the server did not answer about is not known to be held.
            let granted = grants.iter().any(|g| g.privilege == *p && g.granted);
            results.push(PrivilegeResult {
                vcenter: c.target.host.clone(),
                privilege: (*p).to_string(),
                entity: root.to_string(),
                granted,
            });
        }
    }
    let missing: Vec<&PrivilegeResult> = results.iter().filter(|r| !r.granted).collect();
    if json {
        write_json(out, &results)?;
    } else {
        write_privilege_lines(role, &results, &missing, out).map_err(stdout_error)?;
    }
    Ok(if missing.is_empty() {
        ExitCode::Ok
    } else {
        ExitCode::Failure
    })
}

fn write_privilege_lines(
    role: RoleKind,
    results: &[PrivilegeResult],
    missing: &[&PrivilegeResult],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    for r in results {
        let status = if r.granted { "ok     " } else { "MISSING" };
        let ui = ASSIGN_PRIVILEGES
            .iter()
            .find(|(id, _, _)| *id == r.privilege)
            .map(|(_, ui, why)| format!(" ({ui}: {why})"))
            .unwrap_or_default();
        writeln!(
            out,
            "{status} {}: {} on {}{ui}",
            r.vcenter, r.privilege, r.entity
        )?;
    }
    let name = match role {
        RoleKind::Report => "report",
        RoleKind::Assign => "assign",
    };
    if missing.is_empty() {
        writeln!(
            out,
            "the account holds every privilege the {name} role needs"
        )
    } else {
        let list: Vec<&str> = missing.iter().map(|r| r.privilege.as_str()).collect();
        writeln!(
            out,
            "the account lacks {} privilege(s) the {name} role needs: {}; add them to its role \
             (granted on the vCenter root, propagate to children: docs/admin-guide.md)",
            list.len(),
            list.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vcenter_client::CustomFieldKey;

    fn def(key: i32, name: &str, t: Option<&str>) -> CustomFieldDef {
        CustomFieldDef {
            key: CustomFieldKey(key),
            name: name.into(),
            managed_object_type: t.map(String::from),
        }
    }

    #[test]
    fn a_global_definition_is_used_and_one_for_another_type_is_not() {
        let defs = [
            def(1, "vmig.mig", None),
            def(2, "vmig.reservation", Some("HostSystem")),
        ];
        assert!(matches!(find(&defs, "vmig.mig", "HostSystem"), Found::Usable(d) if d.key.0 == 1));
        assert!(
            matches!(find(&defs, "vmig.reservation", "VirtualMachine"), Found::Other(t) if t == "HostSystem")
        );
        assert!(matches!(
            find(&defs, "vmig.mig.summary", "HostSystem"),
            Found::None
        ));
    }

    #[test]
    fn the_assign_role_includes_the_read_privileges() {
        let p = RoleKind::Assign.privileges();
        assert!(p.contains(&"System.Read") && p.contains(&"Resource.ColdMigrate"));
        assert_eq!(RoleKind::Report.privileges(), READ_PRIVILEGES.to_vec());
    }
}
