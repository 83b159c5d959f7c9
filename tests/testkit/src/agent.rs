//! Running the real `vmig-agent` against a simulated GPU host: the daemon (`run`) with its
//! stderr kept for assertions, and the one-shot commands an admin types in the ESXi shell.
//! Only the library path differs from production: the config (or `--nvml-lib`) names
//! nvml-sim and `NVML_SIM_STATE` names the host's simulated GPUs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::binaries::{nvml_sim_lib, workspace_bin};
use crate::process::ChildGuard;

/// `vmig-agent run --config CONFIG` on the simulated GPUs in `state`, stderr into `log`,
/// not started yet (add arguments or environment, then [`ChildGuard::spawn`] it).
///
/// # Panics
/// When the agent cannot be built or `log` cannot be created.
pub fn agent_run_command(config: &Path, state: &Path, log: &Path) -> Command {
    let stderr = std::fs::File::create(log).expect("create the agent's log file");
    let mut cmd = Command::new(workspace_bin("vmig-agent"));
    cmd.arg("run")
        .arg("--config")
        .arg(config)
        .env("NVML_SIM_STATE", state)
        .env_remove("VMIG_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    cmd
}

/// A running `vmig-agent run`, killed on drop, with its log.
#[derive(Debug)]
pub struct RunningAgent {
    guard: ChildGuard,
    log: PathBuf,
}

impl RunningAgent {
    /// Starts [`agent_run_command`].
    ///
    /// # Panics
    /// When the agent cannot be built or started.
    pub fn start(config: &Path, state: &Path, log: &Path) -> RunningAgent {
        let mut cmd = agent_run_command(config, state, log);
        RunningAgent {
            guard: ChildGuard::spawn("vmig-agent run", &mut cmd).expect("start vmig-agent run"),
            log: log.to_path_buf(),
        }
    }

    /// Everything the agent logged so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process, to signal, stop or wait for it.
    pub fn guard(&mut self) -> &mut ChildGuard {
        &mut self.guard
    }
}

/// `vmig-agent --nvml-lib <nvml-sim> ARGS…` against the simulated GPUs in `state`, like an
/// admin in the ESXi shell; the whole output, whatever the exit status.
///
/// # Panics
/// When the agent cannot be built or run.
pub fn agent_cli_output(state: &Path, args: &[&str]) -> Output {
    Command::new(workspace_bin("vmig-agent"))
        .arg("--nvml-lib")
        .arg(nvml_sim_lib())
        .args(args)
        .env("NVML_SIM_STATE", state)
        .env_remove("VMIG_LOG")
        .output()
        .expect("run vmig-agent")
}
