//! `vibpack`: build and inspect ESXi VIBs and offline bundles.
//!
//! Thin wiring over the `vib_packaging` library: parse arguments, read and write files, map
//! outcomes to exit codes (0 ok, 1 defects found, 2 unusable input or failure).
#![allow(
    clippy::print_stdout,
    reason = "a CLI: its reports and built paths are its stdout; the library never prints"
)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use vib_packaging::{Report, Spec, build, elf, inspect, load_inputs};

#[derive(Debug, Parser)]
#[command(
    name = "vibpack",
    version,
    about = "Build and inspect ESXi VIBs and offline bundles"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a VIB and its offline bundle (component) from a spec.
    Build {
        /// The vib.toml spec.
        #[arg(long)]
        spec: PathBuf,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Replace a file's source: DEST=SRC, DEST being the [[file]] path.
        #[arg(long = "file", value_name = "DEST=SRC")]
        files: Vec<String>,
        /// Detached PKCS#7 signature to store as sig.pkcs7 (non-community levels).
        #[arg(long)]
        signature: Option<PathBuf>,
        /// Allow a non-community level without --signature (first pass of signing).
        #[arg(long)]
        allow_unsigned: bool,
        /// Upstream part of a derived version (default: the spec's upstream_version).
        #[arg(long)]
        upstream_version: Option<String>,
        /// Seconds since 1970 for every date and the build number (default: newest input mtime).
        #[arg(long, env = "SOURCE_DATE_EPOCH")]
        source_date_epoch: Option<u64>,
    },
    /// Parse and validate a .vib or offline bundle .zip.
    Inspect {
        /// The file to inspect.
        file: PathBuf,
        /// Print the full report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check that an ELF binary can run on ESXi 7.0/8.0 (glibc baseline, no OpenSSL).
    CheckBinary {
        /// The binary.
        file: PathBuf,
        /// Newest allowed glibc symbol version.
        #[arg(long, default_value = "2.17")]
        max_glibc: String,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vibpack: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Build {
            spec,
            out,
            files,
            signature,
            allow_unsigned,
            upstream_version,
            source_date_epoch,
        } => {
            let parsed = Spec::load(&spec)?;
            let mut overrides = BTreeMap::new();
            for f in files {
                let Some((dest, src)) = f.split_once('=') else {
                    bail!("--file {f:?} must be DEST=SRC");
                };
                overrides.insert(dest.to_string(), PathBuf::from(src));
            }
            let mut inputs = load_inputs(
                &parsed,
                &overrides,
                signature.as_deref(),
                source_date_epoch,
                upstream_version,
            )?;
            inputs.allow_unsigned = allow_unsigned;
            let built = build(&parsed, &inputs)?;
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let write = |name: &str, data: &[u8]| -> Result<PathBuf> {
                let p = out.join(name);
                std::fs::write(&p, data)
                    .with_context(|| format!("cannot write {}", p.display()))?;
                Ok(p)
            };
            let vib = write(&built.vib_file_name, &built.vib)?;
            let bundle = write(&built.bundle_file_name, &built.bundle)?;
            // The descriptor alone, for signing (docs/packaging.md, "Signing").
            let desc = write("descriptor.xml", built.descriptor.to_xml().as_bytes())?;
            println!("version {}", built.descriptor.version);
            println!("vib     {}", vib.display());
            println!("bundle  {}", bundle.display());
            println!("descriptor {}", desc.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect { file, json } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let report =
                inspect(&bytes).with_context(|| format!("cannot inspect {}", file.display()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_report(&report);
            }
            Ok(if report.defects().is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::CheckBinary { file, max_glibc } => {
            let (a, b) = max_glibc
                .split_once('.')
                .context("--max-glibc must look like 2.17")?;
            let max = (
                a.parse().context("--max-glibc major")?,
                b.parse().context("--max-glibc minor")?,
            );
            let data =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let report = elf::check_esxi_binary(&data, max)
                .with_context(|| format!("{} fails the ESXi check", file.display()))?;
            println!("needed: {}", report.needed.join(", "));
            println!(
                "newest glibc version: {}",
                report.glibc_versions.last().map_or("none", String::as_str)
            );
            println!(
                "ok: runs on ESXi 7.0/8.0 user worlds (glibc <= {}.{}, no OpenSSL)",
                max.0, max.1
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_vib(r: &vib_packaging::inspect::VibReport, indent: &str) {
    let d = &r.descriptor;
    println!(
        "{indent}VIB {} ({} bytes, sha256 {})",
        r.vib_id, r.size, r.sha256
    );
    println!("{indent}  summary: {}", d.summary);
    println!("{indent}  release date: {}", d.release_date);
    println!(
        "{indent}  acceptance: {}, signature: {}",
        d.acceptance_level.as_str(),
        if r.signature_size == 0 {
            "none".to_string()
        } else {
            format!("{} bytes", r.signature_size)
        }
    );
    println!(
        "{indent}  live install: {}, live remove: {}, maintenance mode: {}",
        d.live_install_allowed, d.live_remove_allowed, d.maintenance_mode
    );
    for p in &r.payloads {
        println!(
            "{indent}  payload {} ({}, {} bytes, {} unpacked)",
            p.name, p.format, p.size, p.uncompressed_size
        );
        for e in &p.entries {
            println!("{indent}    {} {:>8} {}", e.mode, e.size, e.path);
        }
    }
}

fn print_report(report: &Report) {
    match report {
        Report::Vib(r) => print_vib(r, ""),
        Report::Bundle(b) => {
            println!("offline bundle: {}", b.entries.join(", "));
            for (name, code) in &b.vendors {
                println!("  vendor {name} (code {code})");
            }
            for m in &b.metadata {
                println!("  metadata {} for {} {}", m.url, m.product_id, m.version);
            }
            for bl in &b.bulletins {
                match &bl.component {
                    Some(c) => {
                        println!("  component {} {} (bulletin {})", c.name, c.version, bl.id)
                    }
                    None => println!("  bulletin {} (legacy, not a component)", bl.id),
                }
            }
            for v in &b.vibs {
                println!("  {}:", v.path);
                print_vib(&v.report, "    ");
            }
        }
    }
    let warnings = report.warnings();
    if !warnings.is_empty() {
        println!("warnings:");
        for w in warnings {
            println!("  - {w}");
        }
    }
    let defects = report.defects();
    if defects.is_empty() {
        println!("OK: no defects");
    } else {
        println!("{} defect(s):", defects.len());
        for d in defects {
            println!("  - {d}");
        }
    }
}
