//! The admin side of vmig: the logic behind the `vmig` command (`report`, `capacity`,
//! `assign`, `unassign`). The binary (`src/bin/vmig.rs`) only calls [`cli::main`].
//!
//! Flow: [`connect_opts`] resolves flags and `GOVC_*` variables into targets;
//! [`inventory`] reads each vCenter (concurrently per compute resource, streamed);
//! [`model`] joins that with the agents' `vmig.mig` documents and the VMs'
//! `vmig.reservation`s and analyses every GPU with the `mig` crate; [`render`] prints the
//! report; [`capacity`] and [`assign`] plan on the same analysis with `mig`'s best-fit
//! planner. [`lock`] is the compare-and-set that keeps two admins from booking the same
//! slice. docs/admin-guide.md is the user's view of all this.
//!
//! vmig never writes `vmig.mig` (the agents own it); it writes `vmig.reservation` on VMs and
//! short-lived `vmig.lock.*` field definitions.

pub mod assign;
pub mod capacity;
pub mod cli;
pub mod connect_opts;
pub mod inventory;
pub mod lock;
pub mod model;
pub mod power;
pub mod render;
pub mod reservation;

use std::fmt;

/// Exit status: success.
pub const EXIT_OK: u8 = 0;
/// Exit status: vCenter or I/O failure.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status: bad command line or settings (unknown vGPU type, no URL, no password).
pub const EXIT_USAGE: u8 = 2;
/// Exit status: `assign`/`unassign` refused by a check (VM, host or type).
pub const EXIT_REFUSED: u8 = 3;
/// Exit status: not enough free MIG capacity (also: another admin booked the last slice first).
pub const EXIT_NO_CAPACITY: u8 = 4;

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
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            RefusalKind::NoCapacity | RefusalKind::LostRace => EXIT_NO_CAPACITY,
            _ => EXIT_REFUSED,
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
        source: crate::Error,
    },
    /// Connection settings cannot be used.
    #[error(transparent)]
    Connect(#[from] connect_opts::ConnectOptsError),
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
    /// A bug or an impossible state.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AdminError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            AdminError::Connect(_) | AdminError::Usage(_) => EXIT_USAGE,
            AdminError::Refused(r) => r.exit_code(),
            _ => EXIT_FAILURE,
        }
    }
}

/// A logged-in vCenter and how it was reached.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The resolved settings.
    pub target: connect_opts::Target,
    /// The session.
    pub client: crate::Client,
}

/// Connects to every target concurrently; the first failure is returned.
pub async fn connect_all(
    targets: Vec<connect_opts::Target>,
) -> Result<Vec<Connection>, AdminError> {
    let attempts = futures_util::future::join_all(targets.into_iter().map(|target| async move {
        match crate::Client::connect(target.connect_options()).await {
            Ok(client) => Ok(Connection { target, client }),
            Err(source) => Err(AdminError::Vcenter {
                vcenter: target.host.clone(),
                source,
            }),
        }
    }))
    .await;
    attempts.into_iter().collect()
}
