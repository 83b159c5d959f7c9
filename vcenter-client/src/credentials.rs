//! Login credentials, the logged-in session as vCenter describes it, and the `Login` request.
//!
//! The password lives in [`Password`], whose `Debug` and `Display` never
//! print it, so credentials can sit in structs that get logged. The client
//! ([`crate::Client`]) logs in with these and re-logs in once, transparently, when a call
//! faults with `NotAuthenticated` (vCenter expires idle sessions after 30 minutes).

use std::fmt;

use serde::Serialize;

use crate::error::Result;
use crate::moref::{MoRef, SessionKey};
use crate::soap::decode::Node;
use crate::soap::encode::Request;

/// A password that never appears in `Debug` or `Display` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(p: impl Into<String>) -> Self {
        Self(p.into())
    }

    /// The secret itself; only the `Login` request should call this.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A user name and password for `SessionManager.Login`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: Password,
}

impl Credentials {
    /// Builds credentials, e.g. `Credentials::new("svc-vmig@vsphere.local", pw)`.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            password: Password::new(password),
        }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The password (redacted when printed).
    pub fn password(&self) -> &Password {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &self.password)
            .finish()
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (password ***)", self.user)
    }
}

/// The `UserSession` returned by `Login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserSession {
    /// Session key, for `SessionIsActive` / `TerminateSession`.
    pub key: SessionKey,
    /// The logged-in user.
    pub user_name: String,
    /// Full name, if the directory has one.
    pub full_name: Option<String>,
    /// Login time (xsd:dateTime text).
    pub login_time: Option<String>,
}

impl UserSession {
    pub(crate) fn from_node(n: &Node) -> Result<Self> {
        Ok(UserSession {
            key: SessionKey(
                n.child_string("key")
                    .ok_or_else(|| n.bad("a UserSession with a key"))?,
            ),
            user_name: n.child_string("userName").unwrap_or_default(),
            full_name: n.child_string("fullName").filter(|s| !s.is_empty()),
            login_time: n.child_string("loginTime"),
        })
    }
}

pub(crate) fn login_request(session_manager: &MoRef, creds: &Credentials) -> Result<String> {
    let mut r = Request::new("Login", session_manager);
    r.text("userName", creds.user())?;
    r.text("password", creds.password().expose())?;
    Ok(r.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_never_printed() {
        let c = Credentials::new("administrator@vsphere.local", "s3cr3t-P@ss");
        let dbg = format!("{c:?}");
        let disp = format!("{c}");
        for s in [&dbg, &disp] {
            assert!(!s.contains("s3cr3t"), "{s}");
            assert!(s.contains("administrator@vsphere.local"), "{s}");
        }
        assert_eq!(c.password().expose(), "s3cr3t-P@ss");
        assert_eq!(format!("{}", c.password()), "***");
    }

    #[test]
    fn login_request_escapes_password() {
        let r = login_request(
            &MoRef::new("SessionManager", "SessionManager"),
            &Credentials::new("u", "a<b&c"),
        )
        .unwrap();
        assert!(
            r.contains("<userName>u</userName><password>a&lt;b&amp;c</password></Login>"),
            "{r}"
        );
    }
}
