//! `vmig-agent check-config`: everything `run` would need, checked once, one line per check,
//! without publishing or changing anything (attribute definitions are looked up, not created).
//!
//! Exit status: 0 all checks passed, 1 a check failed, 2 the file itself is unusable.
use std::fmt::Write as _;
use std::path::PathBuf;

use mig::report::{FIELD_DOCUMENT, FIELD_SUMMARY, HostReport};
use vcenter_client::Client;

use super::config::{self, Config};
use super::nvml_observer::NvmlObserver;
use super::observe::Observer;
use super::vcenter::{self, HostIdentity};
use crate::error::ExitCode;

/// What `vmig-agent check-config` is started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOptions {
    /// The configuration file to check.
    pub config: PathBuf,
    /// File holding this host's SMBIOS UUID (as for `run`).
    pub bios_uuid_file: PathBuf,
    /// Only check the file itself, not vCenter or NVML.
    pub offline: bool,
    /// The NVML library to load when the configuration sets no `[agent] nvml_lib`.
    pub nvml_lib: Option<PathBuf>,
}

/// Check a configuration, appending one line per check to `out`.
pub fn check_config(args: &CheckOptions, out: &mut String) -> ExitCode {
    let mut report = Report::default();
    let code = run_checks(args, &mut report);
    out.push_str(&report.out);
    code
}

fn run_checks(args: &CheckOptions, report: &mut Report) -> ExitCode {
    let cfg = match Config::load(&args.config) {
        Ok(cfg) => cfg,
        Err(e) => {
            report.fail("config", &e.to_string());
            return ExitCode::Usage;
        }
    };
    let sampling = cfg.sample_interval.map_or_else(
        || "utilization sampling off".to_string(),
        |d| format!("utilization sampled every {} s", d.as_secs()),
    );
    let desired = match cfg.layout_source {
        config::LayoutSourceMode::Off => "desired layout: not read (observe only)",
        config::LayoutSourceMode::Vcenter => "desired layout: read from vCenter and reconciled",
    };
    report.ok(
        "config",
        &format!(
            "{} (vCenter {}, TLS: {:?}, poll every {} s, heartbeat {} s, NVML stall timeout {} s, {sampling}, {desired})",
            args.config.display(),
            cfg.vcenter.url,
            cfg.vcenter.tls,
            cfg.poll_interval.as_secs(),
            cfg.heartbeat_interval.as_secs(),
            cfg.nvml_stall_timeout.as_secs()
        ),
    );
    match config::read_password(&cfg.vcenter.password_file) {
        Ok(_) => report.ok(
            "password file",
            &format!("{} is private", cfg.vcenter.password_file.display()),
        ),
        Err(e) => {
            report.fail("password file", &e.to_string());
            return ExitCode::Usage;
        }
    }
    if let Some(layout) = &cfg.layout {
        check_layout(layout, report);
    }
    if !args.offline {
        check_nvml(&cfg, args, report);
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(check_vcenter(&cfg, args, report)),
            Err(e) => report.fail("vCenter", &format!("cannot start the async runtime: {e}")),
        }
    }
    if report.failed {
        ExitCode::Failed
    } else {
        ExitCode::Ok
    }
}

fn check_layout(layout: &config::LayoutRef, report: &mut Report) {
    let parsed = std::fs::read_to_string(&layout.file)
        .map_err(|e| format!("cannot read {}: {e}", layout.file.display()))
        .and_then(|text| {
            crate::layout::LayoutFile::parse(&layout.file.display().to_string(), &text)
                .map_err(|e| e.to_string())
        })
        .and_then(|file| {
            file.config(Some(&layout.name))
                .map(drop)
                .map_err(|e| e.to_string())
        });
    match parsed {
        Ok(()) => report.ok(
            "layout",
            &format!(
                "{} in {} is valid; `run` applies it at start and after a pending MIG mode applies",
                layout.name,
                layout.file.display()
            ),
        ),
        Err(e) => report.fail("layout", &e),
    }
}

fn check_nvml(cfg: &Config, args: &CheckOptions, report: &mut Report) {
    let mut observer = NvmlObserver::new(cfg.nvml_lib.clone().or_else(|| args.nvml_lib.clone()))
        .with_stall_timeout(cfg.nvml_stall_timeout);
    // The observer runs NVML on its own thread and is awaited (daemon/worker.rs).
    let observed = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(observer.observe()));
    match observed {
        Ok(gpus) => {
            let errors = gpus.iter().filter(|g| g.error.is_some()).count();
            let text = format!("{} GPU(s): {}", gpus.len(), super::document::summary(&gpus));
            if errors == 0 {
                report.ok("NVML", &text);
            } else {
                report.fail("NVML", &text);
            }
        }
        Err(e) => report.fail("NVML", &format!("{e:#}")),
    }
}

async fn check_vcenter(cfg: &Config, args: &CheckOptions, report: &mut Report) {
    let client = match vcenter::connect(&cfg.vcenter).await {
        Ok(c) => c,
        Err(e) => return report.fail("vCenter", &e.to_string()),
    };
    let about = &client.service_content().about;
    report.ok(
        "vCenter",
        &format!(
            "{} (API {}), logged in as {}",
            about.full_name,
            client.api_version(),
            cfg.vcenter.username
        ),
    );
    check_host(&client, cfg, args, report).await;
    if let Err(e) = client.logout().await {
        report.warn("logout", &e.to_string());
    }
}

async fn check_host(client: &Client, cfg: &Config, args: &CheckOptions, report: &mut Report) {
    let identity = HostIdentity {
        uuid_override: cfg.host_uuid.clone(),
        bios_uuid_file: args.bios_uuid_file.clone(),
    };
    let (host, uuid, label) = match vcenter::find_host(client, &cfg.vcenter, &identity).await {
        Ok(found) => found,
        Err(e) => return report.fail("host", &e.to_string()),
    };
    report.ok("host", &format!("{label}, BIOS UUID {uuid}"));
    let defs = match client.custom_field_defs().await {
        Ok(d) => d,
        Err(e) => {
            return report.fail(
                "custom attributes",
                &vcenter::map_error(&cfg.vcenter, e).to_string(),
            );
        }
    };
    let mut keys = Vec::new();
    for name in [FIELD_DOCUMENT, FIELD_SUMMARY] {
        match defs.iter().find(|d| d.name == name) {
            Some(d) => keys.push((name, Some(d.key))),
            None => keys.push((name, None)),
        }
    }
    let missing: Vec<&str> = keys
        .iter()
        .filter(|(_, k)| k.is_none())
        .map(|(n, _)| *n)
        .collect();
    if missing.is_empty() {
        report.ok(
            "custom attributes",
            &format!("{FIELD_DOCUMENT} and {FIELD_SUMMARY} are defined"),
        );
    } else {
        report.ok(
            "custom attributes",
            &format!(
                "{} not defined yet; `vmig setup` (as an administrator) creates them, else `run` does (needs privilege Global.ManageCustomFields)",
                missing.join(", ")
            ),
        );
    }
    check_privileges(client, host.as_moref(), !missing.is_empty(), report).await;
    if let Some((_, Some(key))) = keys.first() {
        match client
            .custom_values(host.as_moref())
            .await
            .map(|v| v.get(*key).map(HostReport::from_json))
        {
            Ok(Some(Ok(r))) => report.ok(
                "published",
                &format!(
                    "generation {} observed at {} by vmig-agent {}",
                    r.generation, r.observed_at, r.agent_version
                ),
            ),
            Ok(Some(Err(e))) => report.warn(
                "published",
                &format!("the current {FIELD_DOCUMENT} value is unreadable: {e}"),
            ),
            Ok(None) => report.ok("published", "nothing yet"),
            Err(e) => report.fail(
                "published",
                &vcenter::map_error(&cfg.vcenter, e).to_string(),
            ),
        }
    }
}

/// Asks vCenter whether this account holds what `run` needs: `Global.SetCustomField` on its
/// host, and `Global.ManageCustomFields` (root folder) only while the attributes are missing.
async fn check_privileges(
    client: &Client,
    host: &vcenter_client::MoRef,
    fields_missing: bool,
    report: &mut Report,
) {
    let root = client.service_content().root_folder.as_moref().clone();
    let mut wanted = vec![(host.clone(), vcenter::SET_FIELD)];
    if fields_missing {
        wanted.push((root.clone(), vcenter::MANAGE_FIELDS));
    }
    let mut missing = Vec::new();
    for (entity, privilege) in &wanted {
        match client
            .has_privileges(std::slice::from_ref(entity), &[privilege])
            .await
        {
            Ok(g) if g.iter().any(|g| g.privilege == *privilege && g.granted) => {}
            Ok(_) => missing.push(format!("{privilege} on {entity}")),
            Err(e) => {
                return report.warn(
                    "privileges",
                    &format!("vCenter could not say which privileges this account holds: {e}"),
                );
            }
        }
    }
    let held: Vec<String> = wanted.iter().map(|(e, p)| format!("{p} on {e}")).collect();
    if missing.is_empty() {
        report.ok("privileges", &held.join(", "));
    } else if fields_missing
        && missing
            .iter()
            .any(|m| m.starts_with(vcenter::MANAGE_FIELDS))
    {
        report.fail(
            "privileges",
            &format!(
                "missing {}; the attributes are not defined and this account may not create \
                 them: run `vmig setup` once as a vCenter administrator (then only {} is needed)",
                missing.join(", "),
                vcenter::SET_FIELD
            ),
        );
    } else {
        report.fail(
            "privileges",
            &format!(
                "missing {}; add it to the agent's role (docs/operations.md)",
                missing.join(", ")
            ),
        );
    }
}

#[derive(Debug, Default)]
struct Report {
    out: String,
    failed: bool,
}

impl Report {
    fn line(&mut self, status: &str, what: &str, text: &str) {
        let _ = writeln!(self.out, "{status:<5} {what}: {text}");
    }
    fn ok(&mut self, what: &str, text: &str) {
        self.line("ok", what, text);
    }
    fn warn(&mut self, what: &str, text: &str) {
        self.line("warn", what, text);
    }
    fn fail(&mut self, what: &str, text: &str) {
        self.failed = true;
        self.line("FAIL", what, text);
    }
}
