//! The agent must run in ESXi 7.0/8.0 user worlds: built with `cargo zigbuild` against the
//! glibc 2.17 baseline, no symbol may need a newer glibc and no OpenSSL may be linked.
//!
//! Builds one binary (debug, to keep CI time down) into its own target directory, so the
//! nested cargo never waits on the lock of the `cargo test` that runs this. The binary is
//! `vmig-agent` when the agent crate has it, else this crate's `vibpack`; override with
//! `VIB_ESXI_TEST_BIN=<package>:<bin>`.

mod common;

use std::path::PathBuf;
use std::process::Command;

use vib_packaging::elf::{GLIBC_BASELINE, check_esxi_binary};

const TARGET: &str = "x86_64-unknown-linux-gnu.2.17";

fn package_and_bin() -> (String, String) {
    if let Ok(v) = std::env::var("VIB_ESXI_TEST_BIN")
        && let Some((p, b)) = v.split_once(':')
    {
        return (p.into(), b.into());
    }
    let agent =
        std::fs::read_to_string(common::repo_root().join("agent/Cargo.toml")).unwrap_or_default();
    let has_agent_bin = agent.contains("[[bin]]") && agent.contains("name = \"vmig-agent\"");
    if has_agent_bin {
        ("vmig-agent".into(), "vmig-agent".into())
    } else {
        ("vib-packaging".into(), "vibpack".into())
    }
}

#[test]
fn zigbuild_output_fits_the_esxi_glibc_baseline() {
    let root = common::repo_root();
    let venv_bin = root.join("target/vib-venv/bin");
    let path = std::env::join_paths(std::iter::once(venv_bin.clone()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let found = Command::new("cargo-zigbuild")
        .arg("--version")
        .env("PATH", &path)
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "cargo-zigbuild missing under CI: scripts/deps.d/40-vib.sh installs it into target/vib-venv"
        );
        eprintln!("skipping: cargo-zigbuild not installed (bash scripts/install-deps.sh)");
        return;
    }
    let (package, bin) = package_and_bin();
    let outer_target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let target_dir = if outer_target.is_relative() {
        root.join(outer_target)
    } else {
        outer_target
    }
    .join("esxi-zigbuild");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&root)
        .env("PATH", &path)
        .env("CARGO_TARGET_DIR", &target_dir)
        // No debug info: the check reads only the dynamic section, and zig links faster.
        .env("CARGO_PROFILE_DEV_DEBUG", "0")
        .args([
            "zigbuild", "--quiet", "-p", &package, "--bin", &bin, "--target", TARGET,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo zigbuild of {package}/{bin} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exe = target_dir.join("x86_64-unknown-linux-gnu/debug").join(&bin);
    let data = std::fs::read(&exe).unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
    let report = check_esxi_binary(&data, GLIBC_BASELINE).unwrap_or_else(|e| panic!("{bin}: {e}"));
    assert!(report.needed.iter().any(|n| n == "libc.so.6"), "{report:?}");
    assert!(
        report.max_glibc.is_some_and(|v| v <= GLIBC_BASELINE),
        "{report:?}"
    );
    eprintln!(
        "{package}/{bin}: needs {:?}, newest {:?}",
        report.needed,
        report.glibc_versions.last()
    );
}
