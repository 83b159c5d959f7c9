//! The crate's one error type.
//!
//! Server-side problems arrive as typed [`Fault`]s; everything else (network,
//! TLS, malformed XML) says which URL, file or element was involved.

use std::path::PathBuf;
use std::time::Duration;

use crate::moref::TaskRef;
use crate::soap::fault::{Fault, FaultKind};
use crate::tls::Sha256Thumbprint;

/// Everything that can go wrong talking to vCenter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered the call with a SOAP fault.
    #[error("vCenter call {method} failed: {fault}")]
    Fault {
        /// The vim25 method that faulted.
        method: String,
        /// The decoded fault.
        fault: Box<Fault>,
    },
    /// A task ended in state `error`.
    #[error("task {task} ({operation}) failed: {fault}")]
    TaskFailed {
        /// The task.
        task: TaskRef,
        /// The operation that started it, e.g. `ReconfigVM_Task`.
        operation: String,
        /// `TaskInfo.error`.
        fault: Box<Fault>,
    },
    /// A task did not finish in the time allowed.
    #[error("task {task} is still {state} after {waited:?}; it keeps running on the server")]
    TaskTimeout {
        /// The task.
        task: TaskRef,
        /// Its last seen state.
        state: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The server certificate's thumbprint differs from the pinned one.
    #[error(
        "TLS: {url} presented a certificate with SHA-256 thumbprint {seen}, but {expected} is pinned; \
         if the certificate was replaced on purpose, pin the new thumbprint"
    )]
    ThumbprintMismatch {
        /// The server URL.
        url: String,
        /// The pinned thumbprint.
        expected: Sha256Thumbprint,
        /// The thumbprint the server presented.
        seen: Sha256Thumbprint,
    },
    /// The TLS handshake failed (untrusted chain, wrong host name, …).
    #[error("TLS handshake with {url} failed: {detail}{}", seen.map(|s| format!(" (server certificate SHA-256 thumbprint {s})")).unwrap_or_default())]
    Tls {
        /// The server URL.
        url: String,
        /// What rustls reported.
        detail: String,
        /// The thumbprint of the certificate presented, when one was.
        seen: Option<Sha256Thumbprint>,
    },
    /// The TLS configuration could not be built.
    #[error("TLS setup: {0}")]
    TlsConfig(String),
    /// The CA bundle file could not be used.
    #[error("CA bundle {}: {detail}", path.display())]
    CaFile {
        /// The file named in [`crate::TlsPolicy::CaFile`].
        path: PathBuf,
        /// Why it was refused.
        detail: String,
    },
    /// A network-level failure (connect, reset, timeout).
    #[error("HTTP request to {url} failed: {detail}")]
    Http {
        /// The URL.
        url: String,
        /// The error chain.
        detail: String,
    },
    /// An HTTP status other than 200 (or 500 with a SOAP fault).
    #[error("{url} answered {method} with HTTP {status}: {body}")]
    HttpStatus {
        /// The URL.
        url: String,
        /// The vim25 method or resource requested.
        method: String,
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// An answer went past one of the client's limits on what vCenter may send
    /// (`soap::decode::MAX_*`): a bound, so a broken or hostile server cannot exhaust memory.
    #[error("vCenter's answer exceeds the client's limit of {limit} {what}")]
    ResponseLimit {
        /// The limit.
        limit: u64,
        /// What it counts, e.g. "bytes in one response".
        what: &'static str,
    },
    /// The response is not well-formed XML.
    #[error("malformed XML in {context}: {detail}")]
    Xml {
        /// What was being read.
        context: String,
        /// The parser's complaint.
        detail: String,
    },
    /// The response is XML but not the expected shape.
    #[error("unexpected {context}: {detail}")]
    Decode {
        /// The element or call.
        context: String,
        /// What was wrong.
        detail: String,
    },
    /// A caller-supplied value cannot be used.
    #[error("invalid {what}: {detail}")]
    InvalidInput {
        /// What kind of value.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// Something the caller looked up does not exist.
    #[error("not found: {0}")]
    NotFound(String),
}

impl Error {
    /// The server fault, for [`Error::Fault`] and [`Error::TaskFailed`].
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            Error::Fault { fault, .. } | Error::TaskFailed { fault, .. } => Some(fault),
            _ => None,
        }
    }

    /// The fault kind, if this is a server fault.
    pub fn fault_kind(&self) -> Option<&FaultKind> {
        self.fault().map(|f| &f.kind)
    }

    /// True when the session is not (or no longer) authenticated.
    pub fn is_not_authenticated(&self) -> bool {
        self.fault().is_some_and(Fault::is_not_authenticated)
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
