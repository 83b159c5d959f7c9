//! The ESXi init script must pass shellcheck as POSIX sh (ESXi runs it with busybox sh; the
//! installed shellcheck 0.9 has no busybox dialect, and POSIX sh is the stricter subset).

mod common;

use std::process::Command;

#[test]
fn init_script_passes_shellcheck() {
    let script = common::repo_root().join("packaging/esxi/vmig-agent");
    if !common::require_tool(
        "shellcheck",
        "scripts/deps.d/40-vib.sh installs it (apt: shellcheck)",
    ) {
        return;
    }
    let out = Command::new("shellcheck")
        .args(["-s", "sh", "-S", "style"])
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shellcheck:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn init_script_handles_the_verbs_without_esxi() {
    let script = common::repo_root().join("packaging/esxi/vmig-agent");
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.starts_with("#!/bin/sh\n"));
    assert!(text.contains("# chkconfig: on "));
    for verb in ["start", "stop", "restart", "status"] {
        assert!(text.contains(&format!("    {verb}")), "{verb}");
    }
    // Run it on this Linux machine: ESXi tools are absent, so `status` reports not running
    // (exit 3) and an unknown installer word is ignored (exit 0).
    let out = Command::new("sh")
        .arg(&script)
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = Command::new("sh")
        .arg(&script)
        .args(["frobnicate", "install"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn firewall_rule_is_outbound_443_only() {
    let xml = std::fs::read(common::repo_root().join("packaging/esxi/vmig.xml")).unwrap();
    let root = vib_packaging::xml::parse(&xml).unwrap();
    let service = root.child("service").unwrap();
    let rules: Vec<_> = service.children_named("rule").collect();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].child_text("direction"), Some("outbound"));
    assert_eq!(rules[0].child_text("protocol"), Some("tcp"));
    assert_eq!(rules[0].child_text("port"), Some("443"));
}

#[test]
fn the_real_spec_parses_and_ships_what_esxi_needs() {
    let spec =
        vib_packaging::Spec::load(&common::repo_root().join("packaging/esxi/vib.toml")).unwrap();
    let paths: Vec<&str> = spec.files.iter().map(|f| f.path.as_str()).collect();
    for p in [
        "opt/vmig/bin/vmig-agent",
        "etc/init.d/vmig-agent",
        "etc/vmware/firewall/vmig.xml",
        "etc/vmig/agent.toml.example",
    ] {
        assert!(paths.contains(&p), "{p}");
    }
    let example =
        std::fs::read_to_string(common::repo_root().join("packaging/esxi/agent.toml.example"))
            .unwrap();
    let parsed: toml::Value = toml::from_str(&example).unwrap();
    assert_eq!(parsed["agent"]["poll_interval_s"].as_integer(), Some(5));
    assert_eq!(
        parsed["agent"]["heartbeat_interval_s"].as_integer(),
        Some(300)
    );
    assert_eq!(
        parsed["vcenter"]["password_file"].as_str(),
        Some("/etc/vmig/vcenter-password")
    );
}
