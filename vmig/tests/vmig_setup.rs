//! `vmig setup` on vcsim: it creates every durable custom attribute once (a second run finds
//! them "already present", `--dry-run` changes nothing), and `--check-role` asks vCenter
//! whether the account holds the documented role: exactly the documented privileges pass, the
//! same role minus one fails naming it. tests/vcsim answers `HasPrivilegeOnEntities` from the
//! roles and permissions set here (vcsim itself would grant everything).

mod vmig_support;

use vcenter_client::{Client, RoleId};
use vmig::setup::{ASSIGN_PRIVILEGES, FIELD_DEFINITIONS};
use vmig_support::{Env, text};
use vmig_testkit::Vcsim;

fn defined(rt: &tokio::runtime::Runtime, c: &Client) -> Vec<(String, Option<String>)> {
    rt.block_on(c.custom_field_defs())
        .expect("field defs")
        .into_iter()
        .filter(|d| d.name.starts_with("vmig."))
        .map(|d| (d.name, d.managed_object_type))
        .collect()
}

#[test]
fn setup_creates_every_definition_once() {
    let env = Env::start(Vcsim::builder().hosts_per_cluster(1), "vmig-setup");
    let rt = Env::runtime();
    let admin = env.client(&rt);
    assert!(defined(&rt, &admin).is_empty(), "a fresh simulator");

    let out = env.vmig(&["setup", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (name, t) in FIELD_DEFINITIONS {
        assert!(
            stdout.contains(&format!("{name} ({t}): missing, would be created")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("nothing was changed"), "{stdout}");
    assert!(defined(&rt, &admin).is_empty(), "--dry-run changed vCenter");

    let out = env.vmig(&["setup"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches(": created (key ").count(), 3, "{stdout}");
    let mut want: Vec<(String, Option<String>)> = FIELD_DEFINITIONS
        .iter()
        .map(|(n, t)| ((*n).to_string(), Some((*t).to_string())))
        .collect();
    let mut got = defined(&rt, &admin);
    want.sort();
    got.sort();
    assert_eq!(got, want);

    let again = env.vmig_json(&["setup"], 0);
    let states: Vec<&str> = again
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["state"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(states, ["already_present"; 3], "{again}");
    let out = env.vmig(&["setup"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("already present")
            .count(),
        4,
        "three lines and the summary: {}",
        text(&out)
    );
    assert_eq!(defined(&rt, &admin).len(), 3, "nothing created twice");
}

/// Creates role `name` with `privileges` and grants it to `user` on the root, propagating.
fn grant(
    rt: &tokio::runtime::Runtime,
    admin: &Client,
    name: &str,
    privileges: &[&str],
    user: &str,
) {
    let root = admin.service_content().root_folder.as_moref().clone();
    let role: RoleId = rt
        .block_on(admin.add_role(name, privileges))
        .unwrap_or_else(|e| panic!("add role {name}: {e}"));
    rt.block_on(admin.set_permission(&root, user, false, role, true))
        .unwrap_or_else(|e| panic!("grant {name} to {user}: {e}"));
}

#[test]
fn check_role_names_each_missing_privilege() {
    let env = Env::start(Vcsim::builder().hosts_per_cluster(1), "vmig-check-role");
    let rt = Env::runtime();
    let admin = env.client(&rt);
    let documented: Vec<&str> = ASSIGN_PRIVILEGES.iter().map(|(id, _, _)| *id).collect();
    grant(&rt, &admin, "vmig-assign", &documented, "svc-assign");
    let less: Vec<&str> = documented
        .iter()
        .copied()
        .filter(|p| *p != "Resource.ColdMigrate")
        .collect();
    grant(&rt, &admin, "vmig-assign-less", &less, "svc-less");
    // The report role is the read-only privileges vCenter puts in every role.
    grant(&rt, &admin, "vmig-report", &[], "svc-report");

    let check = |user: &str, role: &str| {
        env.vmig_cmd(&["setup", "--check-role", role])
            .env("GOVC_USERNAME", user)
            .output()
            .expect("run vmig")
    };
    let out = check("svc-assign", "assign");
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("MISSING"), "{stdout}");
    assert!(
        stdout.contains("holds every privilege the assign role needs"),
        "{stdout}"
    );

    let out = check("svc-less", "assign");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("MISSING").count(), 1, "{stdout}");
    assert!(
        stdout.contains("MISSING") && stdout.contains("Resource.ColdMigrate on Folder:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("lacks 1 privilege(s) the assign role needs: Resource.ColdMigrate"),
        "{stdout}"
    );
    // The smaller role still reads.
    let out = check("svc-less", "report");
    assert!(out.status.success(), "{}", text(&out));
    let out = check("svc-report", "report");
    assert!(out.status.success(), "{}", text(&out));
    let out = check("svc-report", "assign");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for p in &documented {
        assert!(stdout.contains(&format!("{p} on")), "{p}: {stdout}");
    }
    assert_eq!(
        stdout.matches("MISSING").count(),
        documented.len(),
        "{stdout}"
    );

    // An account with no permission anywhere holds nothing, not even the read privileges.
    let out = check("svc-nobody", "report");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("System.Read"),
        "{}",
        text(&out)
    );
}

/// The privileges the code checks are the ones docs/admin-guide.md tells the admin to grant.
#[test]
fn the_documented_role_is_the_checked_role() {
    let guide = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/admin-guide.md"
    ))
    .expect("docs/admin-guide.md");
    let section = guide
        .split("## Least privilege")
        .nth(1)
        .expect("a \"Least privilege\" section in docs/admin-guide.md");
    for (id, _, _) in ASSIGN_PRIVILEGES {
        assert!(
            section.contains(&format!("`{id}`")),
            "{id} is not documented"
        );
    }
    for (name, t) in FIELD_DEFINITIONS {
        assert!(section.contains(name) && section.contains(t), "{name}");
    }
}
