//! The `run` process: configuration, logging, a current-thread tokio runtime, signals.
//!
//! - SIGTERM / SIGINT: cancel the loops, log out of vCenter (at most [`CLOSE_TIMEOUT`]) and
//!   exit 0, all within 2 s.
//! - SIGHUP: read the configuration again. A valid one replaces the running one (new
//!   vCenter session, NVML reloaded, immediate republication); an invalid one is logged and
//!   the running configuration stays.
//!
//! One thread is enough: the daemon waits almost all the time, NVML reads of a full 8-GPU host
//! take milliseconds, and ESXi counts every thread of a user world (docs/performance.md).
use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::backoff::BackoffPolicy;
use super::config::{self, Config, TlsMode};
use super::generation::{GenerationStore, state_path_for};
use super::logging;
use super::nvml_observer::NvmlObserver;
use super::run::serve_reconciling;
use super::shared::{CLOSE_TIMEOUT, Shared};
use super::vcenter::{HostIdentity, VcenterSink};
use crate::error::ExitCode;

/// How long the loops get to stop after SIGTERM before the process exits regardless.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1800);

/// What `vmig-agent run` is started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// The configuration file (TOML, docs/operations.md).
    pub config: PathBuf,
    /// Log to syslog (facility daemon) instead of stderr.
    pub syslog: bool,
    /// Log level, or a tracing filter (`VMIG_LOG` overrides it).
    pub log_level: String,
    /// File holding this host's SMBIOS UUID, when `[host] uuid` is not set.
    pub bios_uuid_file: PathBuf,
    /// The NVML library to load when the configuration sets no `[agent] nvml_lib`.
    pub nvml_lib: Option<PathBuf>,
}

/// `vmig-agent run`: 0 after SIGTERM/SIGINT, [`ExitCode::Usage`] for an unusable
/// configuration, [`ExitCode::Failed`] when the daemon stops on an error.
pub fn run(args: &RunOptions) -> ExitCode {
    logging::init(
        if args.syslog {
            logging::Target::Syslog
        } else {
            logging::Target::Stderr
        },
        &args.log_level,
    );
    let cfg = match load(args) {
        Ok(cfg) => cfg,
        Err(e) => {
            tracing::error!("refusing to start: {e}");
            return ExitCode::Usage;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::Failed;
        }
    };
    match runtime.block_on(serve_process(args, cfg)) {
        Ok(()) => ExitCode::Ok,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::Failed
        }
    }
}

/// Load and check the configuration, including that the password file is private.
fn load(args: &RunOptions) -> Result<Config, config::ConfigError> {
    let cfg = Config::load(&args.config)?;
    config::read_password(&cfg.vcenter.password_file)?;
    Ok(cfg)
}

enum Next {
    Exit,
    Reload(Box<Config>),
}

async fn serve_process(args: &RunOptions, mut cfg: Config) -> anyhow::Result<()> {
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let shared = RefCell::new(Shared::new(GenerationStore::open(Some(state_path_for(
        &args.config,
    )))));
    loop {
        announce(&cfg);
        let cancel = CancellationToken::new();
        let mut observer =
            NvmlObserver::new(cfg.nvml_lib.clone().or_else(|| args.nvml_lib.clone()))
                .with_stall_timeout(cfg.nvml_stall_timeout);
        let identity = HostIdentity {
            uuid_override: cfg.host_uuid.clone(),
            bios_uuid_file: args.bios_uuid_file.clone(),
        };
        let mut source = super::reconcile_vcenter::VcenterDesired::new(
            cfg.vcenter.clone(),
            identity.clone(),
            cfg.layout.clone(),
        );
        let mut sink = VcenterSink::new(cfg.vcenter.clone(), identity);
        let next = {
            let nvml_lib = cfg.nvml_lib.clone().or_else(|| args.nvml_lib.clone());
            let work = async {
                tokio::join!(
                    serve_reconciling(
                        &cfg,
                        &mut observer,
                        &mut sink,
                        &mut source,
                        &shared,
                        BackoffPolicy::default(),
                        &cancel,
                    ),
                    super::sampling::sample_loop(&cfg, nvml_lib, &shared, &cancel),
                );
            };
            tokio::pin!(work);
            loop {
                tokio::select! {
                    () = &mut work => break Next::Exit,
                    _ = sigterm.recv() => {
                        tracing::info!("SIGTERM: logging out of vCenter and exiting");
                        stop(&cancel, work.as_mut()).await;
                        break Next::Exit;
                    }
                    _ = sigint.recv() => {
                        tracing::info!("SIGINT: logging out of vCenter and exiting");
                        stop(&cancel, work.as_mut()).await;
                        break Next::Exit;
                    }
                    _ = sighup.recv() => match load(args) {
                        Ok(new) => {
                            tracing::info!(config = %args.config.display(), "SIGHUP: configuration reloaded");
                            stop(&cancel, work.as_mut()).await;
                            break Next::Reload(Box::new(new));
                        }
                        Err(e) => tracing::error!("SIGHUP: keeping the running configuration: {e}"),
                    },
                }
            }
        };
        match next {
            Next::Exit => return Ok(()),
            Next::Reload(new) => cfg = *new,
        }
    }
}

/// Cancel the loops and give them [`SHUTDOWN_GRACE`] to finish (logout included).
async fn stop(cancel: &CancellationToken, work: std::pin::Pin<&mut impl Future<Output = ()>>) {
    cancel.cancel();
    if tokio::time::timeout(SHUTDOWN_GRACE, work).await.is_err() {
        tracing::warn!("the loops did not stop within {SHUTDOWN_GRACE:?}");
    }
}

fn announce(cfg: &Config) {
    let identity = match &cfg.host_uuid {
        Some(u) => format!("[host] uuid {u}"),
        None => "discovered (BIOS UUID, then DNS name, then IP)".into(),
    };
    if cfg.vcenter.tls == TlsMode::Insecure {
        tracing::warn!("[vcenter] insecure = true: vCenter's certificate is NOT verified");
    }
    tracing::info!(
        version = super::document::AGENT_VERSION,
        config = %cfg.path.display(),
        vcenter = %cfg.vcenter.url,
        user = %cfg.vcenter.username,
        tls = ?cfg.vcenter.tls,
        host = %identity,
        poll_s = cfg.poll_interval.as_secs(),
        heartbeat_s = cfg.heartbeat_interval.as_secs(),
        nvml_stall_timeout_s = cfg.nvml_stall_timeout.as_secs(),
        layout_source = ?cfg.layout_source,
        close_timeout = ?CLOSE_TIMEOUT,
        "vmig-agent running"
    );
}
