//! The real `vibpack` binary: build, inspect (exit codes), check-binary, error messages.

mod common;

use std::process::{Command, Output};

use common::{FIXTURE_VIB, fixture_dir, sample_spec};

fn vibpack(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vibpack"))
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap()
}

fn s(x: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(x)
}

#[test]
fn build_then_inspect_with_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    sample_spec(dir.path(), "vgz");
    let spec = dir.path().join("vib.toml");
    let out = dir.path().join("out");
    let other = dir.path().join("other-agent");
    std::fs::write(&other, b"another binary").unwrap();
    let file_arg = format!("opt/vmig/bin/vmig-agent={}", other.display());
    let o = Command::new(env!("CARGO_BIN_EXE_vibpack"))
        .args([
            s("build"),
            s("--spec"),
            spec.as_os_str(),
            s("--out"),
            out.as_os_str(),
            s("--file"),
            s(&file_arg),
        ])
        .env("SOURCE_DATE_EPOCH", "1776000000")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("version 0.1.0-29600000OEM.700.1.0.15843807"),
        "{stdout}"
    );
    let vib = out.join("vmig_bootbank_vmig-agent_0.1.0-29600000OEM.700.1.0.15843807.vib");
    let zip = out.join("vmig-agent_0.1.0-29600000OEM.700.1.0.15843807.zip");
    assert!(out.join("descriptor.xml").is_file());
    for f in [&vib, &zip] {
        let o = vibpack(&[s("inspect"), f.as_os_str()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
        assert!(String::from_utf8_lossy(&o.stdout).contains("OK: no defects"));
    }
    let o = vibpack(&[s("inspect"), s("--json"), vib.as_os_str()]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["kind"], "vib");
    assert_eq!(
        json["payloads"][0]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["path"] == "opt/vmig/bin/vmig-agent")
            .count(),
        1
    );
    assert_eq!(json["payloads"][0]["entries"][11]["size"], 14);
}

#[test]
fn inspect_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.vib");
    std::fs::write(&junk, b"definitely not a vib").unwrap();
    let o = vibpack(&[s("inspect"), junk.as_os_str()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not a VIB"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let b = common::sample_build();
    let mut members = vib_packaging::ar::read(&b.vib).unwrap();
    members[2].data[20] ^= 1;
    let bad = dir.path().join("bad.vib");
    std::fs::write(&bad, vib_packaging::ar::write(&members).unwrap()).unwrap();
    let o = vibpack(&[s("inspect"), bad.as_os_str()]);
    assert_eq!(o.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("defect(s):") && stdout.contains("checksum mismatch"),
        "{stdout}"
    );

    let missing = dir.path().join("missing.vib");
    let o = vibpack(&[s("inspect"), missing.as_os_str()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read"));
}

#[test]
fn inspect_accepts_the_fixture_vib() {
    let Some(dir) = fixture_dir() else { return };
    let o = vibpack(&[s("inspect"), dir.join(FIXTURE_VIB).as_os_str()]);
    assert!(o.status.success());
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("VIB virtuallyGhetto_bootbank_ghettoVCB_1.0.0-0.0.0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1644      797 etc/ghettovcb/ghettoVCB.conf"),
        "{stdout}"
    );
}

#[test]
fn build_reports_spec_errors_clearly() {
    let dir = tempfile::tempdir().unwrap();
    sample_spec(dir.path(), "vgz");
    let spec = dir.path().join("vib.toml");
    let text = std::fs::read_to_string(&spec).unwrap().replace(
        "payload_name = \"vmigagnt\"",
        "payload_name = \"much-too-long\"",
    );
    std::fs::write(&spec, text).unwrap();
    let out = dir.path().join("out");
    let o = vibpack(&[
        s("build"),
        s("--spec"),
        spec.as_os_str(),
        s("--out"),
        out.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("payload_name `much-too-long` must be 1..=8")
    );

    sample_spec(dir.path(), "vgz");
    let o = vibpack(&[
        s("build"),
        s("--spec"),
        spec.as_os_str(),
        s("--out"),
        out.as_os_str(),
        s("--file"),
        s("etc/nope=x"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("matches no [[file]]"));
}

#[test]
fn check_binary_accepts_a_dynamic_binary_and_names_the_baseline() {
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_vibpack"));
    // A host build needs a recent glibc: with a generous maximum it passes, with 2.2 it fails.
    let o = vibpack(&[
        s("check-binary"),
        exe.as_os_str(),
        s("--max-glibc"),
        s("2.99"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = vibpack(&[
        s("check-binary"),
        exe.as_os_str(),
        s("--max-glibc"),
        s("2.2"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("newer than ESXi's baseline"));
}
