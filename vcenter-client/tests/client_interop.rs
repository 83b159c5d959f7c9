//! Interop with pyVmomi (an independent vim25 client) on the same vcsim:
//! pyVmomi reads back the custom value, vGPU and memory lock vcenter-client
//! wrote, then writes its own, which vcenter-client reads back.
//!
//! Needs the venv made by scripts/deps.d/30-pyvmomi.sh (`target/venv-pyvmomi`,
//! or `VMIG_PYVMOMI_PYTHON`). Without it the test fails when `CI` is set and
//! is skipped with a message otherwise.

mod client_support;

use std::path::PathBuf;
use std::process::Command;

use client_support::{connect, gpu_sim, start};
use vcenter_client::{HostProperty, TaskWait, VgpuProfile, VmConfigSpec, VmProperty};

fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VMIG_PYVMOMI_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let p = vmig_testkit::workspace_root().join("target/venv-pyvmomi/bin/python");
    if p.is_file() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{} is missing: run scripts/install-deps.sh (scripts/deps.d/30-pyvmomi.sh) to install pyVmomi",
            p.display()
        );
    }
    eprintln!(
        "SKIPPED: no pyVmomi venv at {} (run scripts/deps.d/30-pyvmomi.sh)",
        p.display()
    );
    None
}

#[tokio::test]
async fn pyvmomi_reads_what_we_wrote_and_we_read_what_it_wrote() {
    let Some(python) = python() else { return };
    let sim = start(gpu_sim());
    let c = connect(&sim).await;

    let hosts = c.hosts(&[HostProperty::Name]).await.unwrap();
    let host_ref = |name: &str| {
        hosts
            .iter()
            .find(|h| h.name.as_deref() == Some(name))
            .unwrap()
            .moref
            .clone()
    };
    let vms = c.vms(&[VmProperty::Name]).await.unwrap();
    let mut vm_names: Vec<(String, vcenter_client::VmRef)> = vms
        .iter()
        .map(|v| (v.name.clone().unwrap(), v.moref.clone()))
        .collect();
    vm_names.sort();
    let (ours_vm, ours_ref) = vm_names[0].clone();
    let (theirs_vm, theirs_ref) = vm_names[1].clone();

    // vcenter-client writes.
    let def = c
        .ensure_custom_field("vmig.interop", Some("HostSystem"))
        .await
        .unwrap();
    let ours_value = r#"{"schema":1,"gpus":[{"profile":"3g.20gb","free":2}],"note":"<&>"}"#;
    c.set_custom_value(host_ref("DC0_C0_H0").as_moref(), def.key, ours_value)
        .await
        .unwrap();
    let spec = VmConfigSpec::new()
        .add_vgpu(VgpuProfile::new("grid_a100-3-20c").unwrap())
        .memory_reservation_locked_to_max(true);
    let task = c.reconfigure_vm(&ours_ref, &spec).await.unwrap();
    c.wait_for_task(&task, TaskWait::default()).await.unwrap();

    // pyVmomi verifies and writes its own.
    let script = vmig_testkit::workspace_root().join("tests/interop/pyvmomi_interop.py");
    let theirs_value = r#"{"schema":1,"writer":"pyvmomi"}"#;
    let out = Command::new(&python)
        .arg(&script)
        .args([
            "--url",
            sim.url(),
            "--user",
            sim.username(),
            "--password",
            sim.password(),
        ])
        .arg("--cafile")
        .arg(sim.ca_pem_path().unwrap())
        .args([
            "--field",
            "vmig.interop",
            "--expect-host",
            "DC0_C0_H0",
            "--expect-value",
            ours_value,
        ])
        .args([
            "--expect-vm",
            &ours_vm,
            "--expect-profile",
            "grid_a100-3-20c",
        ])
        .args(["--write-host", "DC0_C0_H1", "--write-value", theirs_value])
        .args([
            "--write-vm",
            &theirs_vm,
            "--write-profile",
            "grid_a100-7-40c",
        ])
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pyVmomi check failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(r#""ok": true"#), "{stdout}");

    // vcenter-client reads what pyVmomi wrote.
    let h1 = c
        .host(&host_ref("DC0_C0_H1"), &[HostProperty::CustomValues])
        .await
        .unwrap();
    assert_eq!(h1.custom_values.get(def.key), Some(theirs_value));
    let theirs = c.vm(&theirs_ref, VmProperty::ALL).await.unwrap();
    assert_eq!(theirs.vgpus.len(), 1);
    assert_eq!(theirs.vgpus[0].profile.as_str(), "grid_a100-7-40c");
    assert_eq!(theirs.memory_reservation_locked_to_max, Some(true));
}
