//! Shared helpers for vib-packaging's integration tests: fixtures, sample specs, tools.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use vib_packaging::spec::Spec;
use vib_packaging::{BuildInputs, Built, build, load_inputs};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crate has a parent")
        .to_path_buf()
}

/// `<repo>/../shared/fixtures/vib/`, the VMware-built VIB and bundle. `None` (test skipped)
/// on a developer machine without them; under CI a missing fixture fails the test.
pub fn fixture_dir() -> Option<PathBuf> {
    let dir = repo_root()
        .join("..")
        .join("shared")
        .join("fixtures")
        .join("vib");
    if dir.join(FIXTURE_VIB).is_file() && dir.join(FIXTURE_BUNDLE).is_file() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "VIB fixtures missing at {} (CI must provide ../shared/ beside the repo)",
            dir.display()
        );
    }
    eprintln!("skipping: VIB fixtures not found at {}", dir.display());
    None
}

/// The fixture VIB's file name.
pub const FIXTURE_VIB: &str = "virtuallyGhetto_bootbank_ghettoVCB_1.0.0-0.0.0.vib";
/// The fixture bundle's file name.
pub const FIXTURE_BUNDLE: &str = "vghetto-ghettoVCB-offline-bundle.zip";

/// Reads a fixture, or `None` when fixtures are absent outside CI.
pub fn fixture(name: &str) -> Option<Vec<u8>> {
    fixture_dir().map(|d| std::fs::read(d.join(name)).expect("fixture readable"))
}

/// A fixed epoch: 2026-04-12T13:20:00Z.
pub const EPOCH: u64 = 1_776_000_000;

/// A small spec like the real one, with its files written into `dir`.
pub fn sample_spec(dir: &Path, payload_type: &str) -> Spec {
    std::fs::write(dir.join("agent"), b"\x7fELF pretend binary\n").unwrap();
    std::fs::write(dir.join("init"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::write(dir.join("fw.xml"), b"<ConfigRoot/>\n").unwrap();
    std::fs::write(dir.join("empty"), b"").unwrap();
    let text = format!(
        r#"
[vib]
name = "vmig-agent"
vendor = "vmig"
summary = "test VIB"
description = "A & B <test>"
upstream_version = "0.1.0"
payload_name = "vmigagnt"
payload_type = "{payload_type}"
depends = [{{ name = "esx-base", relation = ">=", version = "7.0.0" }}]

[vib.urls]
website = "https://example.invalid/vmig"

[bundle]
vendor_code = "VMG"
component_ui_name = "vmig agent"
kb_url = "https://example.invalid/kb"
contact = "dev@example.invalid"

[[dir]]
path = "etc/vmig"
mode = "1755"

[[file]]
path = "opt/vmig/bin/vmig-agent"
source = "agent"
mode = "0755"

[[file]]
path = "etc/init.d/vmig-agent"
source = "init"
mode = "0755"

[[file]]
path = "etc/vmware/firewall/vmig.xml"
source = "fw.xml"
mode = "0444"

[[file]]
path = "etc/vmig/vcenter-password"
source = "empty"
mode = "1600"
"#
    );
    let path = dir.join("vib.toml");
    std::fs::write(&path, text).unwrap();
    Spec::load(&path).unwrap()
}

/// Inputs for `spec` at [`EPOCH`].
pub fn inputs(spec: &Spec) -> BuildInputs {
    load_inputs(spec, &Default::default(), None, Some(EPOCH), None).unwrap()
}

/// Builds the sample spec (vgz) in a fresh temp dir.
pub fn sample_build() -> Built {
    let dir = tempfile::tempdir().unwrap();
    let spec = sample_spec(dir.path(), "vgz");
    build(&spec, &inputs(&spec)).unwrap()
}

/// Looks for `tool` on PATH; under CI a missing tool fails the test.
pub fn require_tool(tool: &str, install_hint: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("`{tool}` is missing under CI: {install_hint}");
        }
        eprintln!("skipping: `{tool}` not installed ({install_hint})");
    }
    found
}
