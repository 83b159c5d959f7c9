//! Why a layout command failed, and the exit code each reason maps to: 2 bad config or
//! arguments, 3 refused / blocked / does not match, 4 NVML failure (after rolling back the
//! GPU that failed).
use super::config::ConfigError;
use crate::error::{AgentError, ExitCode};

/// Why a layout command failed.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// Refused before any change (blocked, unreachable); the report says why.
    #[error("{0}")]
    Refused(String),
    /// `assert` found differences.
    #[error("{0}")]
    Mismatch(String),
    /// A step failed; the report says what was rolled back.
    #[error("{message}")]
    Failed {
        message: String,
        exit_code: ExitCode,
    },
}

impl LayoutError {
    /// The process exit code.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            LayoutError::Config(_) | LayoutError::Read { .. } => ExitCode::Usage,
            LayoutError::Agent(e) => e.exit_code(),
            LayoutError::Refused(_) | LayoutError::Mismatch(_) => ExitCode::State,
            LayoutError::Failed { exit_code, .. } => *exit_code,
        }
    }
}
