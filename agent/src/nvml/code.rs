//! NVML return codes as one typed value, and the error every call of the safe layer returns.
//!
//! nvml-wrapper 0.13 knows codes 1–22 and 999 by name but hands 23–30
//! (`INSUFFICIENT_RESOURCES`, `ARGUMENT_VERSION_MISMATCH`, …) back as
//! `NvmlError::UnexpectedVariant(code)`, and raw calls return bare integers. Both paths end
//! here as an [`NvmlCode`], so "not enough room for this GI" is recognised the same way
//! whichever path reported it.
use std::fmt;

/// An `nvmlReturn_t` value other than success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NvmlCode(pub u32);

impl NvmlCode {
    pub const UNINITIALIZED: NvmlCode = NvmlCode(1);
    pub const INVALID_ARGUMENT: NvmlCode = NvmlCode(2);
    pub const NOT_SUPPORTED: NvmlCode = NvmlCode(3);
    pub const NO_PERMISSION: NvmlCode = NvmlCode(4);
    pub const NOT_FOUND: NvmlCode = NvmlCode(6);
    pub const INSUFFICIENT_SIZE: NvmlCode = NvmlCode(7);
    pub const RESET_REQUIRED: NvmlCode = NvmlCode(16);
    pub const IN_USE: NvmlCode = NvmlCode(19);
    pub const INSUFFICIENT_RESOURCES: NvmlCode = NvmlCode(23);
    pub const UNKNOWN: NvmlCode = NvmlCode(999);

    /// The `NVML_…` constant name, or `None` for a code this table does not know.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "NVML_ERROR_UNINITIALIZED",
            2 => "NVML_ERROR_INVALID_ARGUMENT",
            3 => "NVML_ERROR_NOT_SUPPORTED",
            4 => "NVML_ERROR_NO_PERMISSION",
            5 => "NVML_ERROR_ALREADY_INITIALIZED",
            6 => "NVML_ERROR_NOT_FOUND",
            7 => "NVML_ERROR_INSUFFICIENT_SIZE",
            8 => "NVML_ERROR_INSUFFICIENT_POWER",
            9 => "NVML_ERROR_DRIVER_NOT_LOADED",
            10 => "NVML_ERROR_TIMEOUT",
            11 => "NVML_ERROR_IRQ_ISSUE",
            12 => "NVML_ERROR_LIBRARY_NOT_FOUND",
            13 => "NVML_ERROR_FUNCTION_NOT_FOUND",
            14 => "NVML_ERROR_CORRUPTED_INFOROM",
            15 => "NVML_ERROR_GPU_IS_LOST",
            16 => "NVML_ERROR_RESET_REQUIRED",
            17 => "NVML_ERROR_OPERATING_SYSTEM",
            18 => "NVML_ERROR_LIB_RM_VERSION_MISMATCH",
            19 => "NVML_ERROR_IN_USE",
            20 => "NVML_ERROR_MEMORY",
            21 => "NVML_ERROR_NO_DATA",
            22 => "NVML_ERROR_VGPU_ECC_NOT_SUPPORTED",
            23 => "NVML_ERROR_INSUFFICIENT_RESOURCES",
            24 => "NVML_ERROR_FREQ_NOT_SUPPORTED",
            25 => "NVML_ERROR_ARGUMENT_VERSION_MISMATCH",
            26 => "NVML_ERROR_DEPRECATED",
            27 => "NVML_ERROR_NOT_READY",
            28 => "NVML_ERROR_GPU_NOT_FOUND",
            29 => "NVML_ERROR_INVALID_STATE",
            30 => "NVML_ERROR_RESET_TYPE_NOT_SUPPORTED",
            999 => "NVML_ERROR_UNKNOWN",
            _ => return None,
        })
    }

    /// The words nvidia-smi prints for this code (`nvmlErrorString`'s text).
    pub fn text(self) -> &'static str {
        match self.0 {
            1 => "Uninitialized",
            2 => "Invalid Argument",
            3 => "Not Supported",
            4 => "Insufficient Permissions",
            5 => "Already Initialized",
            6 => "Not Found",
            7 => "Insufficient Size",
            8 => "Insufficient External Power",
            9 => "Driver Not Loaded",
            10 => "Timeout",
            11 => "Interrupt request issue",
            12 => "NVML Shared Library Not Found",
            13 => "Function Not Found",
            14 => "Corrupted infoROM",
            15 => "GPU is lost",
            16 => "GPU requires reset",
            17 => "GPU access blocked by the operating system",
            18 => "Driver/library version mismatch",
            19 => "In use by another client",
            20 => "Insufficient Memory",
            21 => "No data",
            22 => {
                "The requested vgpu operation is not available on target device because ECC is enabled"
            }
            23 => "Insufficient Resources",
            24 => "Frequency not supported",
            25 => "Argument version mismatch",
            26 => "Deprecated",
            27 => "Not ready",
            28 => "GPU not found",
            29 => "Invalid state",
            30 => "Reset type not supported",
            _ => "Unknown Error",
        }
    }
}

impl fmt::Display for NvmlCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{} ({name})", self.text()),
            None => write!(f, "{} (NVML code {})", self.text(), self.0),
        }
    }
}

/// A failed NVML call of the safe layer: which function, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The function ran and returned an error code.
    #[error("{function} failed: {code}")]
    Failed {
        function: &'static str,
        code: NvmlCode,
    },
    /// The loaded library does not export the function; a raw call would have panicked.
    #[error(
        "the NVML library does not export {symbol}: the driver is too old for this operation, or --nvml-lib points at something that is not NVML"
    )]
    MissingSymbol { symbol: String },
    /// nvml-wrapper failed for a reason that is not an NVML code (bad UTF-8 in a name, …).
    #[error("{function}: {message}")]
    Wrapper {
        function: &'static str,
        message: String,
    },
}

impl CallError {
    /// The NVML code, if the call got as far as returning one.
    pub fn code(&self) -> Option<NvmlCode> {
        match self {
            CallError::Failed { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether NVML returned exactly `code`.
    pub fn is(&self, code: NvmlCode) -> bool {
        self.code() == Some(code)
    }

    /// Convert an error of nvml-wrapper's safe API. `UnexpectedVariant(23…30)` becomes the
    /// named code it really is; `FailedToLoadSymbol` becomes [`CallError::MissingSymbol`].
    pub fn from_wrapper(function: &'static str, err: nvml_wrapper::error::NvmlError) -> CallError {
        use nvml_wrapper::error::NvmlError as W;
        match err {
            W::UnexpectedVariant(code) => CallError::Failed {
                function,
                code: NvmlCode(code),
            },
            W::FailedToLoadSymbol(desc) => CallError::MissingSymbol {
                symbol: desc
                    .rsplit("undefined symbol: ")
                    .next()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .unwrap_or(function)
                    .to_string(),
            },
            W::Utf8Error(_)
            | W::NulError(_)
            | W::LibloadingError(_)
            | W::StringTooLong { .. }
            | W::IncorrectBits(_)
            | W::SetReleaseFailed
            | W::GetPciInfoFailed
            | W::PciInfoToCFailed => CallError::Wrapper {
                function,
                message: err.to_string(),
            },
            other => {
                let code: u32 = other.into();
                CallError::Failed {
                    function,
                    code: NvmlCode(code),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nvml_wrapper::error::NvmlError as W;

    #[test]
    fn unexpected_variants_23_to_30_become_named_codes() {
        for code in 23..=30 {
            let e = CallError::from_wrapper("f", W::UnexpectedVariant(code));
            assert_eq!(e.code(), Some(NvmlCode(code)));
            assert!(NvmlCode(code).name().is_some(), "code {code} has a name");
        }
        let e = CallError::from_wrapper("nvmlDeviceCreateGpuInstance", W::UnexpectedVariant(23));
        assert!(e.is(NvmlCode::INSUFFICIENT_RESOURCES));
        assert_eq!(
            e.to_string(),
            "nvmlDeviceCreateGpuInstance failed: Insufficient Resources (NVML_ERROR_INSUFFICIENT_RESOURCES)"
        );
    }

    #[test]
    fn named_wrapper_errors_keep_their_code() {
        assert!(CallError::from_wrapper("f", W::InUse).is(NvmlCode::IN_USE));
        assert!(CallError::from_wrapper("f", W::NoPermission).is(NvmlCode::NO_PERMISSION));
        assert!(CallError::from_wrapper("f", W::NotFound).is(NvmlCode::NOT_FOUND));
    }

    #[test]
    fn failed_to_load_symbol_names_the_symbol() {
        let e = CallError::from_wrapper(
            "nvmlDeviceGetMigMode",
            W::FailedToLoadSymbol("/x/libfoo.so: undefined symbol: nvmlDeviceGetMigMode".into()),
        );
        assert_eq!(
            e,
            CallError::MissingSymbol {
                symbol: "nvmlDeviceGetMigMode".into()
            }
        );
    }
}
