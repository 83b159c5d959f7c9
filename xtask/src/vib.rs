//! `cargo xtask vib`: build the real vmig VIB and offline bundle end to end.
//!
//! 1. Compile `vmig-agent` for ESXi with `cargo zigbuild --target x86_64-unknown-linux-gnu.2.17`
//!    (glibc 2.17 baseline, so it runs on ESXi 7.0 and 8.0 user worlds); zig and
//!    cargo-zigbuild come from `scripts/deps.d/40-vib.sh` (venv in `target/vib-venv`).
//! 2. Check the binary with `vibpack check-binary` (glibc ≤ 2.17, no OpenSSL).
//! 3. `vibpack build` with `packaging/esxi/vib.toml`, then `vibpack inspect` both outputs.
//!
//! `SOURCE_DATE_EPOCH` sets every date and the VIB build number. When unset, a clean git tree
//! uses the last commit's time (so rebuilding a commit gives identical bytes) and a dirty tree
//! uses the current time (so changed content always gets a new, larger version).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::{cargo, root};

const ESXI_TARGET: &str = "x86_64-unknown-linux-gnu.2.17";

/// Runs the task with the arguments after `vib`.
pub fn run(args: &[String]) -> Result<()> {
    let mut release = true;
    let mut out = root().join("target").join("vib-out");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--debug" => release = false,
            "--out" => out = PathBuf::from(it.next().context("--out needs a directory")?),
            "-h" | "--help" => {
                println!(
                    "usage: cargo xtask vib [--debug] [--out DIR]\n\nbuilds vmig-agent for ESXi, then the VIB and offline bundle into DIR (default target/vib-out)"
                );
                return Ok(());
            }
            other => bail!("unknown argument `{other}` for `cargo xtask vib`"),
        }
    }
    let root = root();
    let venv_bin = root.join("target").join("vib-venv").join("bin");
    let path = std::env::join_paths(std::iter::once(venv_bin.clone()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))?;
    let has_zigbuild = Command::new("cargo-zigbuild")
        .arg("--version")
        .env("PATH", &path)
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_zigbuild {
        bail!(
            "cargo-zigbuild not found: run `bash scripts/install-deps.sh` (scripts/deps.d/40-vib.sh installs zig and cargo-zigbuild into target/vib-venv)"
        );
    }

    let profile = if release { "release" } else { "debug" };
    let mut zig = cargo();
    zig.env("PATH", &path).args([
        "zigbuild",
        "-p",
        "vmig-agent",
        "--bin",
        "vmig-agent",
        "--target",
        ESXI_TARGET,
    ]);
    if release {
        zig.arg("--release");
    }
    crate::run(&mut zig)?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let target_dir = if target_dir.is_relative() {
        root.join(target_dir)
    } else {
        target_dir
    };
    let agent = target_dir
        .join("x86_64-unknown-linux-gnu")
        .join(profile)
        .join("vmig-agent");
    if !agent.is_file() {
        bail!("zigbuild succeeded but {} is missing", agent.display());
    }

    let epoch = source_date_epoch(&root)?;
    eprintln!("xtask: SOURCE_DATE_EPOCH={epoch}");
    let vibpack = |args: &[&str]| {
        let mut c = cargo();
        c.args([
            "run",
            "--quiet",
            "-p",
            "vib-packaging",
            "--bin",
            "vibpack",
            "--",
        ])
        .args(args)
        .env("SOURCE_DATE_EPOCH", epoch.to_string());
        c
    };
    let agent_s = agent.display().to_string();
    crate::run(&mut vibpack(&["check-binary", &agent_s]))?;
    let out_s = out.display().to_string();
    let file_arg = format!("opt/vmig/bin/vmig-agent={agent_s}");
    crate::run(&mut vibpack(&[
        "build",
        "--spec",
        "packaging/esxi/vib.toml",
        "--out",
        &out_s,
        "--file",
        &file_arg,
        "--upstream-version",
        env!("CARGO_PKG_VERSION"),
    ]))?;
    for entry in
        std::fs::read_dir(&out).with_context(|| format!("cannot list {}", out.display()))?
    {
        let p = entry?.path();
        if p.extension().is_some_and(|e| e == "vib" || e == "zip") {
            crate::run(&mut vibpack(&["inspect", &p.display().to_string()]))?;
        }
    }
    eprintln!("xtask: VIB and offline bundle are in {}", out.display());
    Ok(())
}

/// `SOURCE_DATE_EPOCH` if set; else the last commit's time on a clean tree; else now.
fn source_date_epoch(root: &Path) -> Result<u64> {
    if let Ok(v) = std::env::var("SOURCE_DATE_EPOCH") {
        return v
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number"));
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    let clean = git(&["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|o| o.stdout.is_empty());
    if clean
        && let Some(o) = git(&["log", "-1", "--format=%ct"])
        && let Ok(t) = String::from_utf8_lossy(&o.stdout).trim().parse()
    {
        return Ok(t);
    }
    Ok(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("clock before 1970")?
        .as_secs())
}
