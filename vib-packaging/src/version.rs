//! VIB names, vendors and versions, checked once at the edge.
//!
//! ESXi refuses to install a VIB whose name and version match an installed one but whose
//! content differs, and compares versions to decide upgrades. So every build must get a
//! new, *larger* version. [`derive`] makes one from the crate version and the build's
//! `SOURCE_DATE_EPOCH` (see `docs/packaging.md`, "Versions").

use std::fmt;

/// The ESXi release/build suffix VMware gives partner VIBs built for ESXi 7.0 and later
/// (`OEM.<major><minor><update>.<patch>.<x>.<ESXi 7.0 GA build>`), as in
/// `Intel-i40en 1.12.3.0-1OEM.700.1.0.15843807`.
pub const OEM_SUFFIX: &str = "OEM.700.1.0.15843807";

/// Longest name, vendor or version VMware's VIB template allows.
pub const MAX_LEN: usize = 35;

/// Why a name, vendor or version is not acceptable to ESXi.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    /// Bad VIB or vendor name.
    #[error("{what} `{value}` must be 1..={MAX_LEN} characters from [0-9A-Za-z_.-]")]
    BadName {
        /// "VIB name" or "vendor".
        what: &'static str,
        /// The value.
        value: String,
    },
    /// Bad version.
    #[error(
        "VIB version `{0}` must look like `<version>-<release>` (both starting with a digit, \
         characters [0-9A-Za-z.], at most {MAX_LEN} in all), e.g. `1.0.0-1{OEM_SUFFIX}`"
    )]
    BadVersion(String),
}

fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// Checks a VIB name (`what` = "VIB name") or vendor (`what` = "vendor").
///
/// # Errors
/// [`IdError::BadName`].
pub fn check_name(what: &'static str, value: &str) -> Result<(), IdError> {
    if name_ok(value) {
        Ok(())
    } else {
        Err(IdError::BadName {
            what,
            value: value.to_string(),
        })
    }
}

/// A VIB version string such as `0.1.0-29612345OEM.700.1.0.15843807`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct VibVersion(String);

impl VibVersion {
    /// Validates `s`.
    ///
    /// # Errors
    /// [`IdError::BadVersion`].
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let part_ok = |p: &str| {
            p.starts_with(|c: char| c.is_ascii_digit())
                && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
        };
        match s.split_once('-') {
            Some((v, r)) if s.len() <= MAX_LEN && part_ok(v) && part_ok(r) => {
                Ok(Self(s.to_string()))
            }
            _ => Err(IdError::BadVersion(s.to_string())),
        }
    }

    /// The version as written in the descriptor.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VibVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The build number for `epoch` seconds: whole minutes since 1970. It grows with every
/// later build (so ESXi sees an upgrade) and fits 8 digits until the year 2160.
pub fn build_number(epoch: u64) -> u64 {
    epoch / 60
}

/// `<upstream>-<build number>OEM.700.1.0.15843807`.
///
/// # Errors
/// [`IdError::BadVersion`] if the result is not a valid VIB version (e.g. too long).
pub fn derive(upstream: &str, epoch: u64) -> Result<VibVersion, IdError> {
    VibVersion::parse(&format!("{upstream}-{}{OEM_SUFFIX}", build_number(epoch)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_esxi_style_versions() {
        let v = derive("0.1.0", 1_776_000_000).unwrap();
        assert_eq!(v.as_str(), "0.1.0-29600000OEM.700.1.0.15843807");
        assert!(v.as_str().len() <= MAX_LEN);
        assert_ne!(derive("0.1.0", 1_776_000_060).unwrap(), v);
        assert!(derive("10.10.10", 1_776_000_000).is_err());
    }

    #[test]
    fn validates() {
        for ok in ["1.0.0-0.0.0", "535.104.06-1OEM.800.1.0.20613240"] {
            VibVersion::parse(ok).unwrap();
        }
        for bad in [
            "1.0.0",
            "a-1",
            "1-b",
            "1.0-1 x",
            "1.0.0-1OEM.700.1.0.15843807.99999999999",
        ] {
            assert!(VibVersion::parse(bad).is_err(), "{bad}");
        }
        check_name("vendor", "virtuallyGhetto").unwrap();
        assert!(check_name("vendor", "a b").is_err());
    }
}
