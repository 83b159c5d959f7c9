//! NVML return codes (`nvmlReturn_t`) and their `nvmlErrorString` texts.
//!
//! Everything the simulator decides ends up as one of these numbers, so they live in one
//! place with the mapping from the `mig` model's errors. Values are those of `nvml.h`.
use std::ffi::CStr;

use mig::MigError;

/// A non-success NVML return code. `Result<T, NvmlCode>` is the simulator's error type:
/// the real library has no richer error channel than this number, and neither do we.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NvmlCode(pub u32);

/// `Result` with an NVML return code as error.
pub type NvmlResult<T> = Result<T, NvmlCode>;

impl NvmlCode {
    /// `NVML_SUCCESS` (only used at the FFI boundary; never inside an `Err`).
    pub const SUCCESS: u32 = 0;
    /// `NVML_ERROR_UNINITIALIZED`
    pub const UNINITIALIZED: NvmlCode = NvmlCode(1);
    /// `NVML_ERROR_INVALID_ARGUMENT`
    pub const INVALID_ARGUMENT: NvmlCode = NvmlCode(2);
    /// `NVML_ERROR_NOT_SUPPORTED`
    pub const NOT_SUPPORTED: NvmlCode = NvmlCode(3);
    /// `NVML_ERROR_NO_PERMISSION`
    pub const NO_PERMISSION: NvmlCode = NvmlCode(4);
    /// `NVML_ERROR_NOT_FOUND`
    pub const NOT_FOUND: NvmlCode = NvmlCode(6);
    /// `NVML_ERROR_TIMEOUT`
    pub const TIMEOUT: NvmlCode = NvmlCode(10);
    /// `NVML_ERROR_INSUFFICIENT_SIZE`
    pub const INSUFFICIENT_SIZE: NvmlCode = NvmlCode(7);
    /// `NVML_ERROR_DRIVER_NOT_LOADED`
    pub const DRIVER_NOT_LOADED: NvmlCode = NvmlCode(9);
    /// `NVML_ERROR_FUNCTION_NOT_FOUND`
    pub const FUNCTION_NOT_FOUND: NvmlCode = NvmlCode(13);
    /// `NVML_ERROR_RESET_REQUIRED`
    pub const RESET_REQUIRED: NvmlCode = NvmlCode(16);
    /// `NVML_ERROR_IN_USE`
    pub const IN_USE: NvmlCode = NvmlCode(19);
    /// `NVML_ERROR_INSUFFICIENT_RESOURCES` (nvml-wrapper 0.13 surfaces it as `UnexpectedVariant(23)`).
    pub const INSUFFICIENT_RESOURCES: NvmlCode = NvmlCode(23);
    /// `NVML_ERROR_ARGUMENT_VERSION_MISMATCH` (a versioned struct with a version we do not know).
    pub const ARGUMENT_VERSION_MISMATCH: NvmlCode = NvmlCode(25);
    /// `NVML_ERROR_UNKNOWN`
    pub const UNKNOWN: NvmlCode = NvmlCode(999);

    /// The raw `nvmlReturn_t` value.
    pub fn raw(self) -> u32 {
        self.0
    }

    /// The symbolic name from `nvml.h`, for messages of the control binary.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "NVML_SUCCESS",
            1 => "NVML_ERROR_UNINITIALIZED",
            2 => "NVML_ERROR_INVALID_ARGUMENT",
            3 => "NVML_ERROR_NOT_SUPPORTED",
            4 => "NVML_ERROR_NO_PERMISSION",
            6 => "NVML_ERROR_NOT_FOUND",
            7 => "NVML_ERROR_INSUFFICIENT_SIZE",
            9 => "NVML_ERROR_DRIVER_NOT_LOADED",
            13 => "NVML_ERROR_FUNCTION_NOT_FOUND",
            16 => "NVML_ERROR_RESET_REQUIRED",
            19 => "NVML_ERROR_IN_USE",
            23 => "NVML_ERROR_INSUFFICIENT_RESOURCES",
            25 => "NVML_ERROR_ARGUMENT_VERSION_MISMATCH",
            999 => "NVML_ERROR_UNKNOWN",
            _ => "NVML_ERROR_(other)",
        }
    }
}

impl std::fmt::Display for NvmlCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = error_string(self.0).to_str().unwrap_or("Unknown Error");
        write!(f, "{text} ({}, {})", self.name(), self.0)
    }
}

impl std::error::Error for NvmlCode {}

/// The text `nvmlErrorString` returns for `code`, as a static NUL-terminated string.
///
/// Texts follow the real library's table (research/nvml-mig.md §3); codes it does not
/// name fall back to "Unknown Error" like the real one.
pub fn error_string(code: u32) -> &'static CStr {
    match code {
        0 => c"Success",
        1 => c"Uninitialized",
        2 => c"Invalid Argument",
        3 => c"Not Supported",
        4 => c"Insufficient Permissions",
        5 => c"Already Initialized",
        6 => c"Not Found",
        7 => c"Insufficient Size",
        8 => c"Insufficient External Power",
        9 => c"Driver Not Loaded",
        10 => c"Timeout",
        11 => c"Interrupt Request Issue",
        12 => c"NVML Shared Library Not Found",
        13 => c"Function Not Found",
        14 => c"Corrupted infoROM",
        15 => c"GPU is lost",
        16 => c"GPU requires reset",
        17 => c"GPU access blocked by the operating system",
        18 => c"Driver/library version mismatch",
        19 => c"In use by another client",
        20 => c"Insufficient Memory",
        21 => c"No data",
        22 => c"The requested vgpu operation is not available on target device, because ECC is enabled",
        23 => c"Insufficient Resources",
        24 => c"Ran out of critical resources, other than memory",
        25 => c"The provided version is invalid/unsupported",
        26 => c"The requested functionality has been deprecated",
        27 => c"The system is not ready for the request",
        28 => c"No GPUs were found",
        29 => c"Resource not in correct state to perform requested operation",
        _ => c"Unknown Error",
    }
}

impl From<MigError> for NvmlCode {
    /// The code the real driver returns for each refusal of the MIG model (research §4).
    fn from(e: MigError) -> Self {
        match e {
            MigError::MigDisabled => NvmlCode::NOT_SUPPORTED,
            MigError::UnknownGiProfile(_) | MigError::UnknownCiProfile { .. } => {
                NvmlCode::NOT_SUPPORTED
            }
            MigError::InvalidPlacement(_) => NvmlCode::INVALID_ARGUMENT,
            MigError::InsufficientResources => NvmlCode::INSUFFICIENT_RESOURCES,
            MigError::GiNotFound(_) | MigError::CiNotFound { .. } => NvmlCode::NOT_FOUND,
            MigError::GiInUse(_)
            | MigError::GiHasComputeInstances(_)
            | MigError::CiInUse { .. } => NvmlCode::IN_USE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_strings_match_the_real_table() {
        assert_eq!(error_string(0), c"Success");
        assert_eq!(error_string(19), c"In use by another client");
        assert_eq!(error_string(23), c"Insufficient Resources");
        assert_eq!(error_string(999), c"Unknown Error");
        assert_eq!(error_string(12345), c"Unknown Error");
    }

    #[test]
    fn mig_errors_map_to_driver_codes() {
        use mig::{GpuInstanceId, Placement};
        assert_eq!(
            NvmlCode::from(MigError::InsufficientResources),
            NvmlCode::INSUFFICIENT_RESOURCES
        );
        assert_eq!(
            NvmlCode::from(MigError::GiHasComputeInstances(GpuInstanceId(1))),
            NvmlCode::IN_USE
        );
        assert_eq!(
            NvmlCode::from(MigError::InvalidPlacement(Placement { start: 1, size: 4 })),
            NvmlCode::INVALID_ARGUMENT
        );
    }
}
