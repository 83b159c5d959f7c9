//! What the admin commands fail with: [`AdminError`], and the [`Refusal`] of a check that
//! stops an `assign` or `unassign` (a refusal is an answer, not a fault: it has its own exit
//! status and its own `--json` shape).

use std::fmt;

use crate::ExitCode;

/// Why an `assign` or `unassign` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// No VM of that name.
    VmNotFound,
    /// Several VMs of that name.
    VmAmbiguous,
    /// The VM is not powered off.
    VmPoweredOn,
    /// The VM already has a vGPU of another type.
    OtherVgpu,
    /// Nothing to do (already assigned, or nothing to unassign).
    NothingToDo,
    /// No host of that name.
    HostNotFound,
    /// The host does not offer the type.
    TypeNotOffered,
    /// The host's agent report is missing, stale or unreadable.
    NoAgentReport,
    /// No free slice (reservations included).
    NoCapacity,
    /// Another admin reserved the last slice first.
    LostRace,
    /// Another vmig is changing the VM, or the VM already carries a reservation.
    VmBusy,
    /// This vmig's lock was broken while it stalled; it stopped without writing.
    LockLost,
}

/// A check that failed: one sentence naming the VM, the host and the reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refusal {
    /// Which check.
    pub kind: RefusalKind,
    /// The VM.
    pub vm: String,
    /// The host concerned, if any.
    pub host: Option<String>,
    /// The whole sentence.
    pub message: String,
}

impl Refusal {
    /// A refusal; `message` is the complete sentence.
    pub fn new(kind: RefusalKind, vm: &str, host: Option<&str>, message: String) -> Self {
        Refusal {
            kind,
            vm: vm.to_string(),
            host: host.map(str::to_string),
            message,
        }
    }

    /// The exit status for this refusal.
    pub fn exit_code(&self) -> ExitCode {
        match self.kind {
            RefusalKind::NoCapacity | RefusalKind::LostRace => ExitCode::NoCapacity,
            _ => ExitCode::Refused,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Everything an admin command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A vCenter call failed.
    #[error("vCenter {vcenter}: {source}")]
    Vcenter {
        /// Which vCenter (host part of the URL).
        vcenter: String,
        /// The client error.
        #[source]
        source: vcenter_client::Error,
    },
    /// Connection settings cannot be used.
    #[error(transparent)]
    Connect(#[from] crate::connect_opts::ConnectOptsError),
    /// A command-line value is wrong.
    #[error("{0}")]
    Usage(String),
    /// A check refused the change.
    #[error("{0}")]
    Refused(Refusal),
    /// Writing the output failed.
    #[error("writing {what}: {source}")]
    Output {
        /// The destination.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A change stopped part-way (signal, a task still running, vCenter unreachable while
    /// following it); the VM's reservation records how far it got.
    #[error("{0}")]
    Incomplete(String),
    /// `vmig layout` / `vmig rollout` refused the request (unknown object, impossible or
    /// unreadable layout); nothing was written.
    #[error("{0}")]
    LayoutRefused(String),
    /// A bug or an impossible state.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AdminError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            AdminError::Connect(_) | AdminError::Usage(_) => ExitCode::Usage,
            AdminError::Refused(r) => r.exit_code(),
            AdminError::LayoutRefused(_) => ExitCode::Refused,
            _ => ExitCode::Failure,
        }
    }
}
